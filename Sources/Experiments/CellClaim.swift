import Foundation
import ResultsStore

/// A process's claim on one cell of a results file while it computes it: an exclusive `flock` on
/// `<folder>/.<file>.cells/<cell>.lock`. The kernel drops it when the process ends, however it
/// ends, so a killed run leaves no stale claim; processes sharing a grid (`--jobs`, or runs started
/// by hand) each take the next unclaimed cell instead of computing the same one twice.
///
/// Whoever recorded the cell removes the lock file (and the folder, once empty); a process that
/// still locks the removed file, or creates a new one, re-checks the results file and finds the
/// cell there. A claim given up without recording keeps its file, so every later claimant locks
/// that same file.
struct CellClaim {
    private let descriptor: Int32
    private let lockPath: String

    /// Claims `cell` of the results file at `path`. Returns nil when another process holds it and
    /// `wait` is false; with `wait`, blocks until that process releases it.
    init?(cell: String, of path: String, wait: Bool) throws {
        let folder = parentFolder(of: path)
        let directory = (folder.isEmpty ? "." : folder) + "/." + (path as NSString).lastPathComponent + ".cells"
        lockPath = directory + "/" + cell + ".lock"
        var opened: Int32 = -1
        // Another process may remove the (empty) folder between our mkdir and open: try again.
        for _ in 0..<10 where opened < 0 {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            opened = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if opened < 0 && errno != ENOENT { break }
        }
        guard opened >= 0 else { throw LockError(path: lockPath, reason: String(cString: strerror(errno))) }
        guard flock(opened, wait ? LOCK_EX : LOCK_EX | LOCK_NB) == 0 else {
            close(opened)
            return nil
        }
        descriptor = opened
    }

    /// Gives the cell up; `recorded` says the cell is now in the results file.
    func release(recorded: Bool) {
        if recorded {
            unlink(lockPath)
            rmdir(parentFolder(of: lockPath))  // fails while other claims exist
        }
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    struct LockError: Error, CustomStringConvertible {
        let path: String, reason: String
        var description: String { "cannot create the cell lock \(path) (\(reason)); is the results folder writable?" }
    }
}

import ExperimentGrid
import Foundation
import ResultsStore

/// A process's claim on one cell of a results file while it computes it: an exclusive `flock` on
/// `<folder>/.<file>.cells/<cell>.lock`. The kernel drops the lock when the process ends, however
/// it ends, so a killed run leaves no stale claim; processes sharing a grid (`--jobs`, or runs
/// started by hand) each take the next unclaimed cell instead of computing the same one twice.
///
/// The holder removes the lock file, and the folder once empty, when it gives the claim up
/// (recorded or not) and when SIGINT, SIGTERM or SIGHUP ends it (`RemovedOnSignal`); only SIGKILL
/// leaves them, and the next claimant of that cell removes them. Removing a lock file that others
/// may be waiting on is safe because a claimant, once it holds the lock, checks that the path
/// still names the file it locked; if the holder removed it meanwhile, it starts over on the
/// path's new file, and after that re-checks the results file, where it finds a recorded cell.
struct CellClaim {
    private let descriptor: Int32
    private let lockPath: String
    private let registrations: [Int?]

    /// Claims `cell` of the results file at `path`. Returns nil when another process holds it and
    /// `wait` is false; with `wait`, blocks until that process releases it.
    init?(cell: String, of path: String, wait: Bool) throws {
        let folder = parentFolder(of: path)
        let directory = (folder.isEmpty ? "." : folder) + "/." + (path as NSString).lastPathComponent + ".cells"
        lockPath = directory + "/" + cell + ".lock"
        var held: Int32 = -1
        // Each retry follows another process's removal (of the folder between our mkdir and open,
        // or of the lock file while we waited): progress elsewhere, so a bounded count suffices.
        for _ in 0..<1000 where held < 0 {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let opened = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            if opened < 0 {
                if errno == ENOENT { continue }
                break
            }
            guard flock(opened, wait ? LOCK_EX : LOCK_EX | LOCK_NB) == 0 else {
                close(opened)
                return nil
            }
            if Self.path(lockPath, names: opened) { held = opened } else { close(opened) }
        }
        guard held >= 0 else { throw LockError(path: lockPath, reason: String(cString: strerror(errno))) }
        descriptor = held
        registrations = [RemovedOnSignal.register(lockPath), RemovedOnSignal.register(directory, as: .emptyFolder)]
    }

    /// Gives the cell up and removes its lock file (and the folder, once no other claim is in it).
    func release() {
        // Forgotten by the signal handler first: after the unlink the path may name another
        // process's new lock file, which a late signal here must not remove.
        registrations.forEach(RemovedOnSignal.unregister)
        unlink(lockPath)
        rmdir(parentFolder(of: lockPath))  // fails while other claims exist
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }

    /// Whether `path` is the file open as `descriptor` (not removed, nor replaced by a new one).
    private static func path(_ path: String, names descriptor: Int32) -> Bool {
        var opened = stat(), named = stat()
        guard fstat(descriptor, &opened) == 0, stat(path, &named) == 0 else { return false }
        return opened.st_dev == named.st_dev && opened.st_ino == named.st_ino
    }

    struct LockError: Error, CustomStringConvertible {
        let path: String, reason: String
        var description: String { "cannot create the cell lock \(path) (\(reason)); is the results folder writable?" }
    }
}

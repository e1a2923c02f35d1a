import ExperimentGrid
import Foundation
import ResultsStore

/// What every executable checks about its results file before it computes anything.
public enum OutputCheck {
    /// Throws `FileError` unless `path` can be written (folder, permissions) and, if it exists
    /// and is not being `replaced` (--fresh), is a readable HDF5 file. Removes temporary copies
    /// left by dead processes, saying so.
    public static func check(_ path: String, replacing: Bool) throws {
        for stale in ResultsFile.removeStaleTemporaries(of: path) {
            log("removed \(stale): a temporary copy left by a process that is no longer running")
        }
        do {
            try ResultsFile.checkWritable(path)
            if !replacing && FileManager.default.fileExists(atPath: path) { try ResultsFile.read(at: path) { _ in } }
        } catch let error as ResultsStoreError {
            switch error {
            case .notHDF5, .cannotOpen:
                throw FileError("\(error); move it aside, choose another --out, or rerun with --fresh (the old file is kept as <file>.<time>.bak)")
            default:
                throw FileError("\(error)")
            }
        }
    }

    /// Throws `FileError` unless a file (a report, say) can be written at `path`.
    public static func checkWritable(_ path: String) throws {
        do { try ResultsFile.checkWritable(path) } catch { throw FileError("\(error)") }
    }

    /// `<path>.<unix time>.bak`, the name an old results file is kept under by --fresh.
    public static func backupName(for path: String) -> String { "\(path).\(Int(Date().timeIntervalSince1970)).bak" }

    /// Creates the folder of `path` when it is missing (after `check` has passed).
    public static func prepareFolder(of path: String) throws {
        do { try ResultsFile.createFolder(of: path) } catch { throw FileError("\(error)") }
    }
}

public enum MemoryCheck {
    /// Physical memory in bytes (MemTotal of /proc/meminfo; nil where it cannot be read).
    public static var physicalBytes: Double? {
        guard let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
              let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
              let kib = Double(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kib * 1024
    }

    /// Throws `ResourceError` when `bytes`, a lower bound on what `what` needs, exceeds the
    /// machine's physical memory.
    public static func require(_ bytes: Double, for what: String, physical: Double? = physicalBytes) throws {
        guard let physical, bytes > physical else { return }
        throw ResourceError(description: String(format: "%@ needs at least %.1f GiB of memory and this machine has %.1f GiB; choose a smaller dimension (or fewer test points)",
                                                what, bytes / 1_073_741_824, physical / 1_073_741_824))
    }
}

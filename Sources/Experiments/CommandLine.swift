import ArgumentParser
import Foundation
import ResultsStore

/// An error in what the user asked for — a flag, a config file, an output file — found before
/// any computation. Executables exit with 64 (EX_USAGE, as swift-argument-parser does for its own
/// errors) for these, and with 1 for a failure during a run.
public protocol UsageError: Error, CustomStringConvertible {}

/// The command cannot use a file it was given (its results file, or a file to read); nothing was
/// computed or changed.
public struct FileError: UsageError {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The paragraph every grid executable's --help ends with.
public let gridCommandChecks = """
    Before computing anything a run checks the config (the whole file, its quick: block \
    included), the flags, the memory the largest cell needs and the results file (its folder \
    must take a new file; an existing file must hold this experiment under the same config hash, \
    or be replaced with --fresh, which keeps it as <out>.<time>.bak). Exit status: 0 on success, \
    64 for a usage error (nothing was computed or written), 1 for a failure during the run \
    (every cell finished before it is kept; rerun to resume).
    """

extension ParsableCommand {
    /// Parses the command line and runs the command. Exit status: 0 on success, 64 for a usage
    /// error (a bad flag, config or output file: nothing was computed), 1 for a failure during
    /// the run (results finished before it are kept).
    public static func mainWithExitCodes() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let error as any UsageError {
            FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}

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

/// The machine cannot hold a run; nothing was computed.
public struct ResourceError: UsageError {
    public let description: String
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

/// The paragraph the grid executables that run on clusters (figure1, table1, figure3, figure4) add.
public let clusterCommandHelp = """
    On a cluster (README, "Running on a cluster"): --list-cells prints the cells still missing; \
    --cell ID computes one into results/<name>.cells/ID.h5 and nothing else; `inspect merge \
    results/<name>.cells --into results/<name>.h5` folds those files in (all or nothing; run it \
    again at will). --submit slurm does all three: it writes results/<name>.slurm/array.sbatch \
    (one task per missing cell, one core, OPENBLAS_NUM_THREADS=1) and merge.sbatch, submits the \
    array, then the merge with --dependency=afterany, and prints the job ids; rerun it after \
    failed or cancelled tasks to submit only the cells still missing.
    """

/// `tool` found on PATH (nil when it is not there).
public func executableOnPath(_ tool: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    for folder in path.split(separator: ":") {
        let candidate = "\(folder)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Runs a program to completion; its exit status, standard output and standard error.
func runProcess(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Standard error is read on another thread, so a tool that fills one pipe never blocks.
    nonisolated(unsafe) var errors = Data()
    let readErrors = DispatchWorkItem { errors = err.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(execute: readErrors)
    let output = out.fileHandleForReading.readDataToEndOfFile()
    readErrors.wait()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: errors, as: UTF8.self))
}

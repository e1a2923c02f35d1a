import Autodiff
import Foundation

/// Extra processes of this executable that compute cells of the same grid alongside this one
/// (`--jobs`). They share the results file: each cell is claimed before it is computed
/// (`CellClaim`) and file updates are serialised, so no cell is computed twice and none is lost.
/// Each process uses one OpenBLAS thread unless OPENBLAS_NUM_THREADS says otherwise: on this
/// model's small matrices, processes scale better than BLAS threads.
struct Workers {
    private var processes: [Process] = []

    /// Starts `count` workers running this executable with `arguments` (which must name the
    /// results file and must not ask for --fresh or --jobs); their standard output (the summary
    /// table) is dropped, their progress lines go to this process's standard error.
    init(count: Int, arguments: [String]) throws {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var environment = ProcessInfo.processInfo.environment
        if count > 0 && environment["OPENBLAS_NUM_THREADS"] == nil {
            environment["OPENBLAS_NUM_THREADS"] = "1"
            setOpenBLASThreadCount(1)
        }
        for _ in 0..<count {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            do { try process.run() } catch { terminate(); throw error }
            processes.append(process)
        }
    }

    /// Stops the workers (when this process fails).
    func terminate() {
        for process in processes where process.isRunning { process.terminate() }
    }

    /// Waits for every worker; throws if one failed (its own message is on standard error).
    func wait() throws {
        for process in processes { process.waitUntilExit() }
        let failed = processes.filter { $0.terminationStatus != 0 }
        guard failed.isEmpty else {
            throw WorkerError(statuses: failed.map { ($0.processIdentifier, $0.terminationStatus) })
        }
    }

    struct WorkerError: Error, CustomStringConvertible {
        let statuses: [(Int32, Int32)]
        var description: String {
            "worker process(es) failed: " + statuses.map { "pid \($0.0) exited with status \($0.1)" }.joined(separator: ", ")
                + " (their messages are above; every cell they recorded is kept, rerun to finish the grid)"
        }
    }
}

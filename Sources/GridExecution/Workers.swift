import ExperimentGrid
import Autodiff
import CRuntime
import Foundation

/// Extra processes of this executable that compute cells of the same grid alongside this one
/// (`--jobs`). They share the results file: each cell is claimed before it is computed
/// (`CellClaim`) and file updates are serialised, so no cell is computed twice and none is lost.
/// Each process uses one OpenBLAS thread unless OPENBLAS_NUM_THREADS says otherwise: on this
/// model's small matrices, processes scale better than BLAS threads. Workers share this process's
/// process group (Ctrl-C stops all) and are sent SIGTERM if this process dies.
public struct Workers {
    private var pids: [pid_t] = []

    /// Starts `count` workers running this executable with `arguments` (which must name the
    /// results file and must not ask for --fresh or --jobs); their standard output (the summary
    /// table) is dropped, their progress lines go to this process's standard error.
    public init(count: Int, arguments: [String]) throws {
        guard count > 0 else { return }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var environment = ProcessInfo.processInfo.environment
        if environment["OPENBLAS_NUM_THREADS"] == nil { environment["OPENBLAS_NUM_THREADS"] = "1" }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        for _ in 0..<count {
            let pid = ssm_spawn_worker(executable, argv, envp)
            guard pid > 0 else {
                let reason = String(cString: strerror(errno))
                terminate()
                throw WorkerError(description: "could not start a worker process (\(executable)): \(reason)")
            }
            pids.append(pid)
        }
    }

    /// With more than one job, this process too computes on one OpenBLAS thread, unless
    /// OPENBLAS_NUM_THREADS says otherwise; with one job the thread count is left alone.
    public static func configureBLASThreads(jobs: Int) {
        if jobs > 1 && ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil { setOpenBLASThreadCount(1) }
    }

    /// Stops the workers (when this process fails).
    public func terminate() {
        for pid in pids { kill(pid, SIGTERM) }
    }

    /// Waits for every worker and returns those that failed, as "pid P ended with status S"
    /// (their own messages are on standard error).
    public func wait() -> [String] {
        pids.map { ($0, ssm_wait_worker($0)) }.filter { $0.1 != 0 }.map { "pid \($0.0) ended with status \($0.1)" }
    }

    public struct WorkerError: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }
}

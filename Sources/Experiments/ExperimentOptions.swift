import ArgumentParser
import Foundation
import Objectives
import ResultsStore

/// The options every experiment executable shares.
public struct ExperimentOptions: ParsableArguments {
    @Option(help: "Experiment config (YAML). Defaults to experiments/<experiment>.yml.")
    public var config: String?

    @Option(help: "Comma-separated dimensions, overriding the config's dims (e.g. 10,20).")
    public var dims: String?

    @Option(help: "Comma-separated methods, overriding the config's (\(Estimator.allCases.map(\.rawValue).joined(separator: ", "))).")
    public var methods: String?

    @Option(help: "Comma-separated seeds, overriding the config's (e.g. 0,1,2).")
    public var seeds: String?

    @Flag(help: "Apply the config's quick: block (a small grid and protocol, minutes on 2 cores).")
    public var quick = false

    @Option(help: "Results file (HDF5). Defaults to results/<experiment>.h5, or results/quick/<experiment>.h5 with --quick.")
    public var out: String?

    @Flag(help: "Start a new results file instead of resuming (the old file is kept as <out>.<time>.bak).")
    public var fresh = false

    @Option(help: "Processes computing cells at once, sharing the results file; each uses one OpenBLAS thread unless OPENBLAS_NUM_THREADS is set.")
    public var jobs = 1

    public init() {}

    public func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1, got \(jobs)") }
    }

    /// The arguments that make another process run this same grid into `out`.
    func workerArguments(out: String) -> [String] {
        var arguments: [String] = []
        if let config { arguments += ["--config", config] }
        if let dims { arguments += ["--dims", dims] }
        if let methods { arguments += ["--methods", methods] }
        if let seeds { arguments += ["--seeds", seeds] }
        if quick { arguments.append("--quick") }
        return arguments + ["--out", out]
    }

    /// The effective config (file, quick block, then command-line overrides), the file's config
    /// without the overrides (the whole grid, which a results file records), and its source text.
    public func resolve(experiment: String) throws -> (config: ExperimentConfig, fileConfig: ExperimentConfig, text: String, out: String) {
        let path = config ?? "experiments/\(experiment).yml"
        var (resolved, text) = try ExperimentConfig.load(path, quick: quick)
        let fileConfig = resolved
        func list<T>(_ text: String?, _ name: String, _ parse: (String) -> T?) throws -> [T]? {
            guard let text else { return nil }
            let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let parsed = items.map(parse)
            guard !items.isEmpty, !parsed.contains(where: { $0 == nil }) else {
                throw ValidationError("--\(name) must be a comma-separated list, got '\(text)'")
            }
            return parsed.map { $0! }
        }
        if let d = try list(dims, "dims", { Int($0) }) { resolved.dims = d }
        if let m = try list(methods, "methods", { $0 }) { resolved.methods = m }
        if let s = try list(seeds, "seeds", { Int($0) }) { resolved.seeds = s }
        try resolved.validate(file: path + " with command-line overrides")
        let output = out ?? (quick ? "results/quick/\(experiment).h5" : "results/\(experiment).h5")
        let folder = (output as NSString).deletingLastPathComponent
        if !folder.isEmpty { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        return (resolved, fileConfig, text, output)
    }
}

/// What an experiment executable reads back after running its grid: the effective config, the
/// results file, this grid's finished cells and the series in legend order.
public struct FinishedGrid {
    public var config: ExperimentConfig
    public var out: String
    public var records: [CellRecord]
    public var seriesOrder: [String]
}

extension ExperimentOptions {
    /// Resolves the config, runs every missing cell of its grid into the results file (resuming),
    /// and reads the grid's cells back.
    public func runGrid(experiment: String, skip: (Cell, ExperimentConfig, String) throws -> String? = { _, _, _ in nil },
                        compute: (Cell, ExperimentConfig) throws -> (ResultsGroup) throws -> Void) throws -> FinishedGrid {
        let (config, fileConfig, text, out) = try resolve(experiment: experiment)
        let cells = try config.cells
        // The file records the config file's whole grid; --dims/--methods/--seeds run part of it.
        let grid = try ResultsGrid(path: out, experiment: experiment, config: fileConfig, configText: text, fresh: fresh)
        let workers = try Workers(count: jobs - 1, arguments: workerArguments(out: out))
        do {
            try grid.run(cells, skip: { try skip($0, config, out) }) { try compute($0, config) }
        } catch {
            workers.terminate()
            throw error
        }
        let failedWorkers = workers.wait()
        let names = Set(cells.map(\.name))
        if !failedWorkers.isEmpty {
            // This process computes what a dead worker left, so a failure matters only if cells are missing.
            let missing = names.subtracting(try grid.finishedCells()).sorted()
            let report = "worker process(es) failed: " + failedWorkers.joined(separator: ", ") + " (their messages are above)"
            guard missing.isEmpty else { throw Workers.WorkerError(description: report + "; cells missing: \(missing.joined(separator: ", ")); every recorded cell is kept, rerun to finish the grid") }
            log(report + "; every cell of the grid is in the file")
        }
        return FinishedGrid(config: config, out: out, records: try CellRecord.all(in: out).filter { names.contains($0.name) },
                            seriesOrder: uniqued(cells.map(\.series)))
    }
}

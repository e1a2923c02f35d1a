import GridExecution
import ExperimentGrid
import ArgumentParser
import Reports
import Foundation
import GSLNumerics
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

    @Option(help: "Comma-separated target distributions, overriding the config's targets (\(Target.allCases.map(\.rawValue).joined(separator: ", "))); their parameters come from the config's target: block.")
    public var targets: String?

    @Flag(help: "Apply the config's quick: block (a small grid and protocol: 5 s to 1.5 min on 2 cores, figure2 the longest).")
    public var quick = false

    @Option(help: "Results file (HDF5). Defaults to results/<experiment>.h5, or results/quick/<experiment>.h5 with --quick.")
    public var out: String?

    @Flag(help: "Start a new results file instead of resuming (the old file is kept as <out>.<time>.bak).")
    public var fresh = false

    @Option(help: "Processes computing cells at once, sharing the results file; each uses one OpenBLAS thread unless OPENBLAS_NUM_THREADS is set. At most \(ExperimentOptions.maximumJobs) (4 per core); never more than the cells left to compute.")
    public var jobs = 1

    public init() {}

    /// More processes than this only slow each other down (each computes one cell on one core).
    public static var maximumJobs: Int { 4 * ProcessInfo.processInfo.activeProcessorCount }

    public func validate() throws {
        guard jobs >= 1 else { throw ValidationError("--jobs must be at least 1, got \(jobs)") }
        guard jobs <= Self.maximumJobs else {
            throw ValidationError("--jobs \(jobs) is more than \(Self.maximumJobs), 4 per core of this machine's \(ProcessInfo.processInfo.activeProcessorCount); each process computes one cell on one core, so more only slow each other down")
        }
    }

    /// The arguments that make another process run this same grid into `out`.
    func workerArguments(out: String) -> [String] {
        var arguments: [String] = []
        if let config { arguments += ["--config", config] }
        if let dims { arguments += ["--dims", dims] }
        if let methods { arguments += ["--methods", methods] }
        if let seeds { arguments += ["--seeds", seeds] }
        if let targets { arguments += ["--targets", targets] }
        if quick { arguments.append("--quick") }
        return arguments + ["--out", out]
    }

    /// The effective config (file, quick block, then command-line overrides), the file's config
    /// without the overrides (the whole grid, which a results file records), and its source text.
    public func resolve(experiment: String) throws -> (config: ExperimentConfig, fileConfig: ExperimentConfig, text: String, out: String) {
        let path = config ?? "experiments/\(experiment).yml"
        var (resolved, text) = try ExperimentConfig.load(path, quick: quick, isDefault: config == nil)
        let fileConfig = resolved
        var flags: [String: String] = [:]
        if let d = try Self.list(dims, flag: "--dims", kind: "integers", Int.init) { resolved.dims = d; flags["dims"] = "--dims" }
        if let m = try Self.list(methods, flag: "--methods", kind: "method names", { $0 }) { resolved.methods = m; flags["methods"] = "--methods" }
        if let s = try Self.list(seeds, flag: "--seeds", kind: "integers", Int.init) { resolved.seeds = s; flags["seeds"] = "--seeds" }
        if let t = try Self.list(targets, flag: "--targets", kind: "target names", { $0 }) { resolved.targets = t; flags["targets"] = "--targets" }
        try resolved.validate(file: path, flags: flags)
        let output = out ?? (quick ? "results/quick/\(experiment).h5" : "results/\(experiment).h5")
        return (resolved, fileConfig, text, output)
    }

    /// A comma-separated flag value as a list; an empty element (`4,,8`, `4,`) or one that does
    /// not parse is an error naming the flag.
    public static func list<T>(_ text: String?, flag: String, kind: String, _ parse: (String) -> T?) throws -> [T]? {
        guard let text else { return nil }
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return try items.map { item in
            guard !item.isEmpty else { throw ConfigError.flag(name: flag, reason: "empty element in '\(text)'; give a comma-separated list of \(kind) such as 4,8") }
            guard let value = parse(item) else { throw ConfigError.flag(name: flag, reason: "'\(item)' in '\(text)' is not one of the \(kind) it takes") }
            return value
        }
    }
}

extension ExperimentOptions {
    /// Cells computed one at a time (`--cell`, a SLURM array) under this grid's config but not
    /// merged yet are merged before a local run (not one with --fresh), so it does not compute them again. Per-cell files
    /// of another config are left alone (they are computed again here, and refused by a merge).
    func mergeCellFiles(of out: String, experiment: String, configHash: String) throws {
        let files = CellFiles(resultsPath: out, experiment: experiment, configHash: configHash)
        let ready = try files.unmerged()
        guard !ready.isEmpty else { return }
        let report = try CellMerge.merge(files: ready, into: out)
        log("\(experiment): merged \(report.added.count) cell(s) computed one at a time (\(files.folder)/) into \(out) first; they are not computed again")
    }
}

/// What an experiment executable reads back after running its grid: the effective config, the
/// results file, this grid's finished cells and the series in legend order.
public struct FinishedGrid {
    public var config: ExperimentConfig
    public var out: String
    public var records: [CellRecord]
    public var seriesOrder: [String]

    /// Writes the results file's report beside it (`results/figure1.md`, as `inspect report`
    /// does), prints it, and says where it went.
    public func publishReport(experiment: String) throws {
        let report = try Report(resultsAt: out)
        let path = try report.write()
        print(try report.markdown, terminator: "")
        log("\(experiment): wrote \(path)")
    }
}

extension ExperimentOptions {
    /// Resolves the config, runs every missing cell of its grid into the results file (resuming),
    /// and reads the grid's cells back.
    public func runGrid(experiment: String, skip: (Cell, ExperimentConfig, String) throws -> String? = { _, _, _ in nil },
                        compute: (Cell, ExperimentConfig) throws -> (ResultsGroup) throws -> Void) throws -> FinishedGrid {
        // Everything the run needs is checked before anything is created or computed.
        let (config, fileConfig, text, out) = try resolve(experiment: experiment)
        let cells = try config.cells
        try OutputCheck.check(out, replacing: fresh)
        for d in Set(config.dims) {
            try MemoryCheck.require(config.protocolSettings.minimumMemoryBytes(for: config.dkefConfiguration(dimension: d)), for: "a cell at D = \(d)")
        }
        // Before the file records this process's provenance (its blas_threads).
        Workers.configureBLASThreads(jobs: jobs)
        try OutputCheck.prepareFolder(of: out)
        // The file records the config file's whole grid; --dims/--methods/--seeds run part of it.
        let grid = try ResultsGrid(path: out, experiment: experiment, config: fileConfig, configText: text, fresh: fresh)
        if !fresh { try mergeCellFiles(of: out, experiment: experiment, configHash: fileConfig.hash) }
        let left = cells.count - (try grid.finishedCells()).intersection(cells.map(\.name)).count
        let processes = max(1, min(jobs, left))
        if processes < jobs { log("\(experiment): --jobs \(jobs) but only \(left) cell(s) left to compute; starting \(processes) process(es)") }
        let workers = try Workers(count: processes - 1, arguments: workerArguments(out: out))
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

/// The output options of the executables that write one run to one file (train-dkef, sample):
/// an existing file is only replaced with --fresh, and then kept as `<out>.<time>.bak`.
public struct SingleRunOutput: ParsableArguments {
    @Option(help: "HDF5 file to write when the run succeeds; its folder is created if missing.")
    public var out: String

    @Flag(help: "Replace an existing --out file (the old one is kept as <out>.<time>.bak).")
    public var fresh = false

    public init() {}

    /// Before any compute: the file can be written, and an existing one is replaced only with
    /// --fresh. Creates the folder when it is missing.
    public func check() throws {
        try OutputCheck.check(out, replacing: fresh)
        if FileManager.default.fileExists(atPath: out) && !fresh {
            let holds = (try? ResultsGrid.experiment(of: out)).map { "\($0) results" } ?? "a results file"
            throw FileError("\(out) exists (it holds \(holds)); rerun with --fresh to replace it (the old file is kept as \(out).<time>.bak), or choose another --out")
        }
        try OutputCheck.prepareFolder(of: out)
    }

    /// Writes the file atomically, keeping an old one as a backup (and saying so).
    public func write(_ body: (ResultsGroup) throws -> Void) throws {
        let backup = FileManager.default.fileExists(atPath: out) ? OutputCheck.backupName(for: out) : nil
        try ResultsFile.write(to: out, keepingOldAs: backup, body)
        if let backup { log("kept the old \(out) as \(backup)") }
    }
}

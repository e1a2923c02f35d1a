import GridExecution
import ExperimentGrid
import ArgumentParser
import Foundation
import ResultsStore

/// Where a grid's cells can be sent to instead of this machine's processes.
public enum Scheduler: String, ExpressibleByArgument, CaseIterable, Sendable {
    case slurm
}

/// The options of the grid executables that split a grid into cells a scheduler can run: list
/// the missing cells, compute one into a file of its own, or submit them all as a SLURM array.
public struct ClusterOptions: ParsableArguments {
    @Flag(help: "Print the grid's cells computed neither in the results file nor in results/<name>.cells/, one id a line, in the grid's order; compute nothing.")
    public var listCells = false

    @Option(help: ArgumentHelp("Compute exactly this cell of the grid into results/<name>.cells/<cell>.h5 (never the results file; fold it in with `inspect merge`). Nothing is computed when the cell is already in either.", valueName: "id"))
    public var cell: String?

    @Option(help: ArgumentHelp("Submit the missing cells to a scheduler instead of computing them here: slurm (an sbatch job array, one task per cell, then a merge job).", valueName: "scheduler"))
    public var submit: Scheduler?

    @Flag(help: "With --submit: write the sbatch scripts and print them and the sbatch commands, without submitting.")
    public var dryRun = false

    @Option(help: "With --submit: the SLURM partition(s) (sbatch --partition).")
    public var partition: String?

    @Option(help: "With --submit: time limit per task, in SLURM's format (minutes, HH:MM:SS, D-HH:MM, …; sbatch --time).")
    public var time: String?

    @Option(help: "With --submit: memory per task (e.g. 4G; sbatch --mem).")
    public var mem: String?

    @Option(help: "With --submit: the account charged (sbatch --account).")
    public var account: String?

    @Option(help: "With --submit: at most this many tasks of the array at once (the array's %N).")
    public var maxParallel: Int?

    public init() {}

    public func validate() throws {
        let modes = [listCells ? "--list-cells" : nil, cell.map { _ in "--cell" }, submit.map { _ in "--submit" }].compactMap { $0 }
        guard modes.count <= 1 else { throw ValidationError("\(modes.joined(separator: " and ")) cannot be combined: give one") }
        if submit == nil {
            let given = [dryRun ? "--dry-run" : nil, partition.map { _ in "--partition" }, time.map { _ in "--time" },
                         mem.map { _ in "--mem" }, account.map { _ in "--account" }, maxParallel.map { _ in "--max-parallel" }].compactMap { $0 }
            guard given.isEmpty else { throw ValidationError("\(given.joined(separator: ", ")) only apply with --submit slurm") }
        }
        if let cell, cell.isEmpty || cell.contains("/") || cell.hasPrefix(".") {
            throw ValidationError("--cell '\(cell)' is not a cell id (ids look like ssm_d10_seed0; --list-cells prints them)")
        }
        if let maxParallel, maxParallel < 1 { throw ValidationError("--max-parallel must be at least 1, got \(maxParallel)") }
        if let time, !Self.matches(time, #"^([0-9]+|[0-9]+:[0-9]{1,2}(:[0-9]{1,2})?|[0-9]+-[0-9]+(:[0-9]{1,2}(:[0-9]{1,2})?)?)$"#) {
            throw ValidationError("--time '\(time)' is not a SLURM time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)")
        }
        if let mem, !Self.matches(mem, #"^[0-9]+[KMGT]?$"#) {
            throw ValidationError("--mem '\(mem)' is not a SLURM memory size (a number with an optional unit K, M, G or T, e.g. 4G)")
        }
        for (flag, value) in [("--partition", partition), ("--account", account)] {
            if let value, !Self.matches(value, #"^[A-Za-z0-9_.,-]+$"#) {
                throw ValidationError("\(flag) '\(value)' has characters SLURM names do not use (letters, digits, _ . , - only)")
            }
        }
    }

    static func matches(_ text: String, _ pattern: String) -> Bool { text.range(of: pattern, options: .regularExpression) != nil }

    var resources: SlurmSubmission.Resources {
        .init(partition: partition, time: time, memory: mem, account: account, maxParallel: maxParallel)
    }
}

extension ExperimentOptions {
    /// Runs what `cluster` asks for (`--list-cells`, `--cell`, `--submit`) and returns true; returns
    /// false when it asks for none of them (an ordinary run of the grid on this machine).
    public func runClusterMode(_ cluster: ClusterOptions, experiment: String,
                               compute: (Cell, ExperimentConfig) throws -> (ResultsGroup) throws -> Void) throws -> Bool {
        let mode = cluster.listCells ? "--list-cells" : cluster.cell != nil ? "--cell" : cluster.submit != nil ? "--submit" : nil
        guard let mode else { return false }
        guard jobs == 1 else { throw ConfigError.flag(name: "--jobs", reason: "\(jobs) does not apply with \(mode): a cell is one process; the scheduler decides how many run at once (--max-parallel)") }
        if fresh && mode != "--submit" { throw ConfigError.flag(name: "--fresh", reason: "does not apply with \(mode) (with --submit it starts the grid over)") }
        let (config, fileConfig, text, out) = try resolve(experiment: experiment)
        let files = CellFiles(resultsPath: out, experiment: experiment, configHash: fileConfig.hash)
        if let id = cluster.cell {
            try computeCell(id, config: config, fileConfig: fileConfig, text: text, files: files, experiment: experiment, compute: compute)
        } else if cluster.listCells {
            let cells = try config.cells
            let missing = try readingResults { try files.missing(cells) }
            for cell in missing { print(cell.name) }
            log("\(experiment): \(missing.count) of \(cells.count) cells computed neither in \(out) nor in \(files.folder)/")
        } else {
            try submitToSLURM(cluster, config: config, fileConfig: fileConfig, text: text, files: files, experiment: experiment)
        }
        return true
    }

    /// A results file that cannot be read is a usage error naming it (nothing was computed).
    private func readingResults<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as ResultsStoreError { throw FileError("\(error)") }
    }

    /// `--cell ID`: computes the cell into its own file, unless it is already computed.
    private func computeCell(_ id: String, config: ExperimentConfig, fileConfig: ExperimentConfig, text: String, files: CellFiles,
                             experiment: String, compute: (Cell, ExperimentConfig) throws -> (ResultsGroup) throws -> Void) throws {
        let cells = try config.cells
        guard let cell = cells.first(where: { $0.name == id }) else {
            let hint = cells.prefix(3).map(\.name).joined(separator: ", ")
            throw ConfigError.flag(name: "--cell", reason: "'\(id)' is not a cell of \(experiment)'s grid with these flags (\(cells.count) cells, e.g. \(hint); --list-cells prints those still missing)")
        }
        // Only reads here: on a cluster other nodes may be writing beside these files.
        if try readingResults({ try !files.missing([cell]).contains(cell) }) {
            log("\(experiment): \(id) is already computed (in \(files.resultsPath) or \(files.path(of: id))); nothing to do")
            return
        }
        let path = files.path(of: id)
        var backup: String?
        if case let .other(reason) = files.state(of: id) {
            backup = OutputCheck.backupName(for: path)
            log("\(experiment): \(path) is replaced (\(reason)); the old file is kept as \(backup!)")
        }
        try OutputCheck.checkWritable(path)
        try MemoryCheck.require(config.protocolSettings.minimumMemoryBytes(for: config.dkefConfiguration(dimension: cell.dimension)), for: "the cell \(id)")
        try OutputCheck.prepareFolder(of: path)
        let grid = ResultsGrid(unopened: files.resultsPath, experiment: experiment, config: fileConfig, configText: text)
        log("\(experiment): computing \(id) into \(path)")
        let start = Date()
        let write = try compute(cell, config)
        let seconds = Date().timeIntervalSince(start)
        try grid.recordAlone(cell, at: path, keepingOldAs: backup, wallSeconds: seconds, write)
        log(String(format: "%@: %@ done in %.1f s, written to %@ (fold it in with: inspect merge %@ --into %@)",
                   experiment, id, seconds, path, files.folder, files.resultsPath))
    }

    /// `--submit slurm`: the missing cells as a job array and a merge job after it.
    private func submitToSLURM(_ cluster: ClusterOptions, config: ExperimentConfig, fileConfig: ExperimentConfig, text: String,
                               files: CellFiles, experiment: String) throws {
        let sbatch = executableOnPath("sbatch")
        if sbatch == nil && !cluster.dryRun {
            throw FileError("sbatch is not on PATH: --submit slurm runs where SLURM's commands are (a cluster's login node, or this machine after experiments/slurm/local-cluster.sh start); --dry-run writes the scripts without submitting")
        }
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let inspect = parentFolder(of: executable) + "/inspect"
        guard FileManager.default.isExecutableFile(atPath: inspect) else {
            throw FileError("\(inspect) is missing: the merge job runs inspect from the folder of \(experiment) (build every product: swift build -c release)")
        }
        let out = files.resultsPath
        try OutputCheck.checkWritable(out)
        var submission = SlurmSubmission(experiment: experiment, cells: [], executable: executable,
                                         gridArguments: workerArguments(out: out), inspect: inspect, resultsPath: out,
                                         workingDirectory: FileManager.default.currentDirectoryPath,
                                         resources: cluster.resources, commit: Provenance.currentCommit())
        // A submission still queued or running would compute the same cells again.
        let active = SlurmSubmission.active(submission.lastSubmission(), squeue: executableOnPath("squeue"))
        guard active.isEmpty else {
            throw FileError("the last submission of this grid is still queued or running (jobs \(active.joined(separator: ", ")); squeue -j \(active.joined(separator: ","))): wait for it, or scancel it, before submitting again")
        }
        let cells = try config.cells
        if fresh && !cluster.dryRun {
            // Start over: the results file and the per-cell files are kept as backups.
            let stamp = Int(Date().timeIntervalSince1970)
            if FileManager.default.fileExists(atPath: files.folder) {
                try FileManager.default.moveItem(atPath: files.folder, toPath: "\(files.folder).\(stamp).bak")
                log("\(experiment): kept the old \(files.folder) as \(files.folder).\(stamp).bak")
            }
        }
        if !cluster.dryRun {
            // Creates the results file (or checks it holds this grid), so the merge job only adds cells.
            try OutputCheck.prepareFolder(of: out)
            _ = try readingResults { try ResultsGrid(path: out, experiment: experiment, config: fileConfig, configText: text, fresh: fresh) }
        }
        submission.cells = fresh && cluster.dryRun ? cells.map(\.name) : try readingResults { try files.missing(cells) }.map(\.name)
        guard !submission.cells.isEmpty else {
            let unmerged = try readingResults { try files.unmerged() }
            log("\(experiment): every cell of the grid is computed; nothing to submit" + (unmerged.isEmpty ? "" :
                ". \(unmerged.count) per-cell file(s) are not merged yet: \(inspect) merge \(files.folder) --into \(out)"))
            return
        }
        if let size = SlurmSubmission.maxArraySize(scontrol: executableOnPath("scontrol")) { submission.maxArraySize = size }
        try submission.writeScripts()
        let limit = cluster.maxParallel.map { ", at most \($0) at once" } ?? ""
        let split = submission.arrays.count > 1
            ? " in \(submission.arrays.count) arrays of at most \(submission.maxArraySize) (the cluster's MaxArraySize)" + (cluster.maxParallel != nil ? ", each after the one before" : "")
            : ""
        if cluster.dryRun {
            print(submission.arrayScript)
            print(submission.mergeScript)
            let arrays = submission.arrayArguments.enumerated().map { i, arguments in
                let chained = cluster.maxParallel != nil && i > 0 ? " --dependency=afterany:$a\(i)" : ""
                return "  a\(i + 1)=$(sbatch \(arguments[0])\(chained) \(arguments.dropFirst().joined(separator: " ")))"
            }
            let all = (1...submission.arrays.count).map { "$a\($0)" }.joined(separator: ":")
            log("""
                \(experiment): dry run: wrote \(submission.arrayScriptPath) (\(submission.cells.count) tasks\(limit)\(split)) and \(submission.mergeScriptPath); nothing was submitted. To submit them by hand:
                \(arrays.joined(separator: "\n"))
                  sbatch --dependency=afterany:\(all) \(submission.mergeScriptPath)
                """)
            return
        }
        let (arrays, merge) = try submission.submit(using: sbatch!)
        let ids = arrays.joined(separator: ",")
        log("""
            \(experiment): submitted array job\(arrays.count > 1 ? "s" : "") \(arrays.joined(separator: ", ")) (\(submission.cells.count) tasks\(limit)\(split), one per missing cell; script \(submission.arrayScriptPath)) and merge job \(merge) (after the array\(arrays.count > 1 ? "s" : ""), however \(arrays.count > 1 ? "they end" : "it ends"))
              watch:   squeue -j \(ids),\(merge)
              after:   sacct -j \(ids),\(merge) --format=JobID,JobName,State,Elapsed,ExitCode   (needs SLURM accounting)
              logs:    \(submission.logFolder)/
              results: \(files.folder)/<cell>.h5 per task, merged into \(out) by job \(merge); rerun this command to submit any cell still missing
            """)
    }
}

import ExperimentGrid
import Autodiff
import Foundation
import ResultsStore

/// A results file for one experiment: per-file provenance and config at the root, one group per
/// finished cell under `cells/`. Each cell is written atomically as soon as it finishes; a rerun
/// with the same config hash skips the cells present, so an interrupted run resumes.
///
///     /                   attrs: experiment, config_text, config_json, config_hash, git_commit,
///                                swift_version, swift_packages, gsl_version, hdf5_version, openblas, cpu_model,
///                                cores, blas_threads, host, started, updated
///     /cells/<cell name>/ attrs: method, dimension, sigma (DSM), cp_noise (CP), target (all but standard_normal),
///                                dataset and model (network cells), seed, config_hash, finished,
///                                wall_seconds, git_commit (at the run's start), openblas,
///                                blas_threads, host, cpu_model;
///                                datasets: metrics (units as attributes), curves
///
/// Several processes may fill one file (e.g. split by --seeds): updates are serialised.
public struct ResultsGrid {
    public let path: String
    public let experiment: String
    public let config: ExperimentConfig
    public let configText: String
    /// The working tree's commit when this run started (`make` builds just before it runs), which
    /// every cell it computes records: asking git when a cell finishes would name whatever is
    /// checked out hours later, not the code that computed it.
    let commit = Provenance.currentCommit()

    /// An existing results file this grid cannot add to. A usage error: nothing was computed.
    public enum GridError: UsageError, Equatable {
        case otherConfig(path: String, stored: String, current: String)
        case otherExperiment(path: String, stored: String, current: String)
        public var description: String {
            switch self {
            case let .otherConfig(path, stored, current):
                "\(path) holds results of another configuration (hash \(stored), this run \(current)); rerun with --fresh (the old file is kept as a .bak copy) or choose another --out"
            case let .otherExperiment(path, stored, current):
                "\(path) holds \(stored) results, not \(current) ones; choose another --out, or rerun with --fresh to start a \(current) file there (the old file is kept as a .bak copy)"
            }
        }
    }

    /// What the results file at `path` holds, as its `experiment` attribute says: "figure1",
    /// "train-dkef", …; "train-dkef" for single-run files written before the attribute existed,
    /// "unknown" for any other HDF5 file.
    public static func experiment(of path: String) throws -> String {
        try ResultsFile.read(at: path) { root in
            if let name = (try? root.attribute("experiment"))?.stringValue { return name }
            return root.contains("metrics") ? "train-dkef" : "unknown"
        }
    }

    /// A grid whose file is not opened or created: for checks and for cells written as files of
    /// their own (`recordAlone`).
    public init(unopened path: String, experiment: String, config: ExperimentConfig, configText: String) {
        self.path = path
        self.experiment = experiment
        self.config = config
        self.configText = configText
    }

    /// Opens (or prepares) the file. With `fresh`, an existing file is kept as
    /// `<path>.<time>.bak` (a hard link made just before the new file replaces it) and a new one
    /// started; otherwise an existing file must hold this experiment with this config's hash.
    public init(path: String, experiment: String, config: ExperimentConfig, configText: String, fresh: Bool) throws {
        self.path = path
        self.experiment = experiment
        self.config = config
        self.configText = configText
        let exists = FileManager.default.fileExists(atPath: path)
        if exists && !fresh {
            try Self.checkCompatible(path, experiment: experiment, configHash: config.hash)
        } else {
            let backup = exists ? OutputCheck.backupName(for: path) : nil
            let provenance = Provenance.current()  // before the file is open: it runs git
            try ResultsFile.write(to: path, keepingOldAs: backup) { root in try writeHeader(to: root, provenance: provenance) }
            if let backup { log("kept the old \(path) as \(backup)") }
        }
    }

    /// Throws unless the existing results file at `path` holds `experiment` results under the
    /// config hash `configHash` (so cells of this grid can be added to it or read from it).
    public static func checkCompatible(_ path: String, experiment: String, configHash: String) throws {
        let storedExperiment = try Self.experiment(of: path)
        guard storedExperiment == experiment else { throw GridError.otherExperiment(path: path, stored: storedExperiment, current: experiment) }
        let stored = try ResultsFile.read(at: path) { try $0.attribute("config_hash").stringValue ?? "" }
        guard stored == configHash else { throw GridError.otherConfig(path: path, stored: stored, current: configHash) }
    }

    /// The root of a new results file of this grid: experiment, config, provenance, `cells/`.
    func writeHeader(to root: ResultsGroup, provenance: Provenance) throws {
        try root.setAttribute("experiment", .string(experiment))
        try root.setAttribute("config_text", .string(configText))
        try root.setAttribute("config_json", .string(config.canonicalJSON))
        try root.setAttribute("config_hash", .string(config.hash))
        try root.setAttribute("started", .string(timestamp()))
        try provenance.write(to: root)
        try root.createGroup("cells")
    }

    /// Names of the cells already in the file.
    public func finishedCells() throws -> Set<String> {
        try ResultsFile.read(at: path) { root in
            guard root.contains("cells") else { return [] }
            return Set(try root.group("cells").childNames())
        }
    }

    /// Writes one finished cell (atomically: the file is replaced only when the write succeeds),
    /// with the code version and BLAS setup that computed it (a grid may be finished by later runs).
    public func record(_ cell: Cell, wallSeconds: Double, _ body: (ResultsGroup) throws -> Void) throws {
        try ResultsFile.update(at: path) { root in
            try write(cell, wallSeconds: wallSeconds, body, into: root)
        }
    }

    /// Writes `cell` as a file of its own at `cellPath` (`--cell`): a results file of this grid
    /// holding that one cell, written atomically in one step. An old file there is kept as
    /// `backup` when given.
    public func recordAlone(_ cell: Cell, at cellPath: String, keepingOldAs backup: String?, wallSeconds: Double,
                            _ body: (ResultsGroup) throws -> Void) throws {
        let provenance = Provenance.current()
        try ResultsFile.write(to: cellPath, keepingOldAs: backup) { root in
            try writeHeader(to: root, provenance: provenance)
            try write(cell, wallSeconds: wallSeconds, body, into: root)
        }
    }

    /// The group `cells/<cell name>`: what the cell is, when and where it was computed, then
    /// whatever `body` writes.
    private func write(_ cell: Cell, wallSeconds: Double, _ body: (ResultsGroup) throws -> Void, into root: ResultsGroup) throws {
        let group = try root.createGroup("cells").createGroup(cell.name)
        try group.setAttribute("method", .string(cell.estimator.name))
        if case .kernel(_, let variant) = cell.estimator { try group.setAttribute("kernel_variant", .string(variant.rawValue)) }
        if let m = cell.sampleCount { try group.setAttribute("sample_count", .int(m)) }
        try group.setAttribute("dimension", .int(cell.dimension))
        if let sigma = cell.sigma { try group.setAttribute("sigma", .double(sigma)) }
        if let layout = cell.cpNoise { try group.setAttribute("cp_noise", .string(layout.rawValue)) }
        if cell.target != .standardNormal { try group.setAttribute("target", .string(cell.target.rawValue)) }
        if let dataset = cell.dataset { try group.setAttribute("dataset", .string(dataset.rawValue)) }
        if let kind = cell.modelKind { try group.setAttribute("model", .string(kind.rawValue)) }
        try group.setAttribute("seed", .int(cell.seed))
        try group.setAttribute("config_hash", .string(config.hash))
        try group.setAttribute("finished", .string(timestamp()))
        try group.setAttribute("wall_seconds", .double(wallSeconds))
        try group.setAttribute("git_commit", .string(commit))
        try group.setAttribute("openblas", .string(openBLASConfiguration))
        try group.setAttribute("blas_threads", .int(openBLASThreadCount))
        try group.setAttribute("host", .string(ProcessInfo.processInfo.hostName))
        try group.setAttribute("cpu_model", .string(cpuModel()))
        try body(group)
        try root.setAttribute("updated", .string(timestamp()))
    }

    /// Runs every cell of `cells` not yet in the file, writing each as it finishes, with a
    /// progress line per cell (elapsed, ETA) on stderr.
    /// `skip` may name a reason to pass over a cell (asked just before it would run).
    ///
    /// Several processes may run one grid at once: each cell is claimed (`CellClaim`) before it
    /// is computed, so a process passes over cells another one is computing, then waits for those
    /// at the end and computes any whose process died without recording it. On return every
    /// cell of `cells` that was not skipped is in the file.
    public func run(_ cells: [Cell], skip: (Cell) throws -> String? = { _ in nil },
                    _ compute: (Cell) throws -> (ResultsGroup) throws -> Void) throws {
        let done = try finishedCells()
        let todo = cells.filter { !done.contains($0.name) }
        if cells.count > todo.count {
            log("\(experiment): \(cells.count - todo.count) of \(cells.count) cells already in \(path) (same config \(config.hash)); running the other \(todo.count)")
        }
        let start = Date()
        let names = Set(cells.map(\.name)), alreadyDone = cells.count - todo.count
        var claimedElsewhere: [Cell] = []
        func attempt(_ cell: Cell, wait: Bool) throws -> Bool {
            if let reason = try skip(cell) {
                log("\(experiment): \(cell.name) skipped: \(reason)")
                return true
            }
            guard let claim = try CellClaim(cell: cell.name, of: path, wait: wait) else { return false }
            defer { claim.release() }
            // Another process may have recorded it since `done` was read.
            guard try !finishedCells().contains(cell.name) else { return true }
            let cellStart = Date()
            let write = try compute(cell)
            let seconds = Date().timeIntervalSince(cellStart)
            try record(cell, wallSeconds: seconds, write)
            // Progress counts every process's cells: the file is the one record of all of them.
            let inGrid = try finishedCells().intersection(names).count
            let elapsed = Date().timeIntervalSince(start)
            let eta = elapsed / Double(max(inGrid - alreadyDone, 1)) * Double(cells.count - inGrid)
            log(String(format: "%@: %@ done in %.1f s; %d/%d cells in the file | elapsed %.0f s, ETA %.0f s",
                       experiment, cell.name, seconds, inGrid, cells.count, elapsed, eta))
            return true
        }
        for cell in todo where try !attempt(cell, wait: false) {
            claimedElsewhere.append(cell)
        }
        if !claimedElsewhere.isEmpty {
            log("\(experiment): waiting for \(claimedElsewhere.count) cell(s) another process is computing: \(claimedElsewhere.map(\.name).joined(separator: ", "))")
        }
        for cell in claimedElsewhere { _ = try attempt(cell, wait: true) }
    }
}

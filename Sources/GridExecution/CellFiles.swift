import ExperimentGrid
import Foundation
import ResultsStore

/// The files of one grid's cells computed one at a time (`--cell`, a SLURM array task each):
/// `results/<name>.cells/<cell>.h5` beside the results file `results/<name>.h5`. Each is a
/// complete results file of the grid (experiment, config, provenance at the root) holding one cell,
/// written atomically; `inspect merge` folds them into the results file.
///
/// Nothing here locks: every task writes a file of its own, so nodes sharing an NFS or Lustre
/// folder never write one file together, and `flock` (unreliable there) is not needed.
public struct CellFiles {
    /// The grid's results file, e.g. `results/figure1.h5`.
    public let resultsPath: String
    public let experiment: String
    public let configHash: String

    public init(resultsPath: String, experiment: String, configHash: String) {
        self.resultsPath = resultsPath
        self.experiment = experiment
        self.configHash = configHash
    }

    /// `results/figure1.h5` → `results/figure1.cells`.
    public var folder: String { Self.folder(for: resultsPath) }

    public static func folder(for resultsPath: String) -> String { (resultsPath as NSString).deletingPathExtension + ".cells" }

    /// `results/figure1.cells/ssm_d10_seed0.h5`.
    public func path(of cell: String) -> String { folder + "/" + cell + ".h5" }

    /// What the file of `cell` holds.
    public enum State: Equatable {
        case absent
        /// The cell, computed under this grid's experiment and config hash.
        case computed
        /// Something else (another config, another experiment, not the cell, not readable): the
        /// cell still has to be computed; the file is kept as a backup when it is.
        case other(reason: String)
    }

    public func state(of cell: String) -> State {
        let path = path(of: cell)
        guard FileManager.default.fileExists(atPath: path) else { return .absent }
        do {
            return try ResultsFile.read(at: path) { root in
                let experiment = (try? root.attribute("experiment"))?.stringValue ?? "unknown"
                guard experiment == self.experiment else { return .other(reason: "it holds \(experiment) results") }
                let hash = (try? root.attribute("config_hash"))?.stringValue ?? "none"
                guard hash == configHash else { return .other(reason: "it was computed under config hash \(hash), this grid's is \(configHash)") }
                guard root.contains("cells"), try root.group("cells").contains(cell) else { return .other(reason: "it does not hold the cell") }
                return .computed
            }
        } catch {
            return .other(reason: "\(error)")
        }
    }

    /// The cells of `cells` computed neither in the results file nor in a file of their own, in
    /// the grid's order. The results file, when it exists, must hold this grid's experiment under
    /// its config hash.
    public func missing(_ cells: [Cell]) throws -> [Cell] {
        let done = try cellsInResultsFile()
        return cells.filter { !done.contains($0.name) && state(of: $0.name) != .computed }
    }

    /// The files in the folder holding their cell under this grid's experiment and config hash
    /// whose cell is not in the results file yet (nothing when the folder is missing): what a merge
    /// adds.
    public func unmerged() throws -> [String] {
        let done = try cellsInResultsFile()
        return CellMerge.sourceFiles(in: folder).filter { file in
            let cell = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            return !done.contains(cell) && state(of: cell) == .computed
        }
    }

    /// The cells in the results file (none when it does not exist), which must hold this grid's
    /// experiment under its config hash.
    private func cellsInResultsFile() throws -> Set<String> {
        guard FileManager.default.fileExists(atPath: resultsPath) else { return [] }
        try ResultsGrid.checkCompatible(resultsPath, experiment: experiment, configHash: configHash)
        return try ResultsFile.read(at: resultsPath) { root in
            root.contains("cells") ? Set(try root.group("cells").childNames()) : []
        }
    }
}

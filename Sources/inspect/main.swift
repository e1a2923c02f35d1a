import ArgumentParser
import Experiments
import Foundation
import ResultsStore

@main
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print what a results file holds (provenance, cells, metrics, missing cells), or check it against thresholds.",
        discussion: "Exit status: 0 on success, 64 for a file it cannot use (missing, corrupt, of another kind), 1 when `check` finds a broken threshold.",
        subcommands: [Show.self, Check.self],
        defaultSubcommand: Show.self)

    static func main() { mainWithExitCodes() }
}

/// Reads a results file the user named, turning a missing, corrupt or foreign file into a usage
/// error that names it.
func readingUserFile<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as ResultsStoreError { throw FileError("\(error)") }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Print a results file's provenance, cells (or a single run's metrics) and missing cells.")

    @Argument(help: "An HDF5 results file written by figure1, figure2, table1 or train-dkef.")
    var file: String

    func run() throws {
        let (attributes, configJSON, experiment) = try readingUserFile {
            try ResultsFile.read(at: file) { root -> ([(String, String)], String?, String) in
                let names = try root.attributeNames()
                let pairs = try names.filter { $0 != "config_text" && $0 != "config_json" }.map { ($0, "\(try root.attribute($0))") }
                return (pairs, try? root.attribute("config_json").stringValue, try ResultsGrid.experiment(of: file))
            }
        }
        print("\(file)")
        for (name, value) in attributes { print("  \(name): \(value)") }
        if experiment == "train-dkef" {
            // A single run: its metrics are at /metrics, its curves and checkpoint beside them.
            let metrics = try readingUserFile { try CellRecord.singleRunMetrics(in: file) }
            print("\nsingle run (train-dkef), \(metrics.count) metrics:")
            for (name, value) in metrics.sorted(by: { $0.key < $1.key }) { print("  \(name) = \(String(format: "%.6g", value))") }
            return
        }
        let records = try readingUserFile { try CellRecord.all(in: file) }
        print("\n\(records.count) finished cells:")
        for r in records.sorted(by: { ($0.series, $0.dimension, $0.seed) < ($1.series, $1.dimension, $1.seed) }) {
            let metrics = r.values.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.4g", $0.value))" }.joined(separator: " ")
            print("  \(r.name): \(metrics)")
        }
        if let json = configJSON, let config = try? JSONDecoder().decode(ExperimentConfig.self, from: Data(json.utf8)) {
            let present = Set(records.map(\.name))
            let missing = try config.cells.filter { !present.contains($0.name) }
            print("\n\(missing.count) cells of the stored config's grid are missing" + (missing.isEmpty ? "." : ":"))
            for cell in missing { print("  \(cell.name)") }
        }
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Compare quick-grid results with the paper's claims in a thresholds file; exit 1 naming each broken threshold.")

    @Option(help: "Thresholds (YAML).")
    var thresholds = "experiments/thresholds.yml"

    @Option(help: "Folder with figure1.h5, figure2.h5 and table1.h5.")
    var results = "results/quick"

    func run() throws {
        let outcomes = try readingUserFile { try ThresholdCheck.run(thresholdsFile: thresholds, resultsFolder: results) }
        for o in outcomes { print((o.passed ? "ok     " : "BROKEN ") + o.description) }
        let broken = outcomes.filter { !$0.passed }
        print("thresholds: \(outcomes.count - broken.count) passed, \(broken.count) failed")
        if !broken.isEmpty { throw ExitCode(1) }
    }
}

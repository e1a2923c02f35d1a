import ArgumentParser
import ExperimentCommands
import ExperimentGrid
import GridExecution
import PaperClaims
import Reports
import Foundation
import ResultsStore

@main
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print what a results file holds (provenance, cells, metrics, missing cells), check it against thresholds, write or check its Markdown report, merge per-cell files into it, or compare two.",
        discussion: "Exit status: 0 on success, 64 for a file it cannot use (missing, corrupt, of another kind) or a merge it refuses, 1 when `check` finds a broken threshold, `report --check` a stale report or `compare` a difference.",
        subcommands: [Show.self, Check.self, Report.self, Merge.self, Compare.self],
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
        let (attributes, experiment) = try readingUserFile {
            try ResultsFile.read(at: file) { root -> ([(String, String)], String) in
                let names = try root.attributeNames()
                let pairs = try names.filter { $0 != "config_text" && $0 != "config_json" }.map { ($0, "\(try root.attribute($0))") }
                return (pairs, try ResultsGrid.experiment(of: file))
            }
        }
        print("\(file)")
        for (name, value) in attributes { print("  \(name): \(value)") }
        if experiment == "train-dkef" || experiment == "train-network" {
            // A single run: its metrics are at /metrics, its curves and checkpoint beside them.
            let metrics = try readingUserFile { try CellRecord.singleRunMetrics(in: file) }
            print("\nsingle run (\(experiment)), \(metrics.count) metrics:")
            for (name, value) in metrics.sorted(by: { $0.key < $1.key }) { print("  \(name) = \(String(format: "%.6g", value))") }
            return
        }
        let records = try readingUserFile { try CellRecord.all(in: file) }
        print("\n\(records.count) finished cells:")
        for r in records.sorted(by: { ($0.series, $0.dimension, $0.seed) < ($1.series, $1.dimension, $1.seed) }) {
            let metrics = r.values.sorted { $0.key < $1.key }.map { "\($0.key)=\(String(format: "%.4g", $0.value))" }.joined(separator: " ")
            print("  \(r.name): \(metrics)")
        }
        // The grid of the config the file was computed with (its config_text, parsed as the
        // executables parse it: the JSON form leaves out the grid lists outside the hash, such as
        // figure 5's datasets and model kinds).
        if let config = try? Reports.Report.storedConfig(of: file) {
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

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fold per-cell files (--cell, a SLURM array's tasks) into a grid's results file, all or nothing.",
        discussion: """
        SOURCE is a folder of per-cell files (results/<name>.cells: every *.h5 in it) or one results \
        file of the same grid. Every source is checked before anything is written; the new cells are \
        then added in one atomic update (a missing results file is created with the first source's \
        config and provenance). A cell already in the results file with the same config hash and \
        bit-for-bit the same metrics is skipped, so merging again changes nothing. Refused, with the \
        results file unchanged (exit 64): a source that is not a readable results file (truncated, \
        damaged), another experiment or config hash, or one cell with different numbers in two places.
        """)

    @Argument(help: "A folder of per-cell files (e.g. results/figure1.cells) or a results file.")
    var source: String

    @Option(help: "The results file to add the cells to (e.g. results/figure1.h5).")
    var into: String

    func run() throws {
        let report = try readingUserFile { try CellMerge.merge(source, into: into) }
        guard !report.sources.isEmpty else {
            print("merge: no per-cell files (*.h5) in \(source); \(into) is unchanged")
            return
        }
        let verb = report.created ? "created \(into) with" : report.added.isEmpty ? "\(into) unchanged:" : "added to \(into):"
        print("merge: \(verb) \(report.added.count) new cell(s) from \(report.sources.count) file(s); \(report.alreadyPresent.count) already there with the same numbers")
        for cell in report.added { print("  + \(cell)") }
    }
}

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare two results files' cells and metrics bit for bit; exit 1 on any difference.",
        discussion: "Lists cells present in only one file and every scalar metric that differs (its two values). Timings, curves and provenance are not compared: they differ between any two runs.")

    @Argument(help: "A results file.")
    var first: String

    @Argument(help: "Another results file.")
    var second: String

    @Flag(help: "Only require FIRST's cells to be in SECOND with the same metrics (SECOND may hold more).")
    var subset = false

    func run() throws {
        let a = try readingUserFile { try CellRecord.all(in: first) }, b = try readingUserFile { try CellRecord.all(in: second) }
        let byName = Dictionary(uniqueKeysWithValues: b.map { ($0.name, $0) })
        var problems: [String] = []
        let onlyFirst = Set(a.map(\.name)).subtracting(byName.keys).sorted(), onlySecond = Set(byName.keys).subtracting(a.map(\.name)).sorted()
        problems += onlyFirst.map { "\($0): only in \(first)" } + (subset ? [] : onlySecond.map { "\($0): only in \(second)" })
        var equalMetrics = 0
        for record in a.sorted(by: { $0.name < $1.name }) {
            guard let other = byName[record.name] else { continue }
            let differences = CellMerge.differences(record.values, other.values)
            problems += differences.map { "\(record.name): \($0)" }
            equalMetrics += Set(record.values.keys).union(other.values.keys).count - differences.count
        }
        for problem in problems { print(problem) }
        let shared = a.count - onlyFirst.count
        print("compare: \(shared) cell(s) in both, \(equalMetrics) metric(s) bitwise equal, \(problems.count) difference(s)")
        if !problems.isEmpty { throw ExitCode(1) }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write every results file's Markdown report (results/figure1.h5 → results/figure1.md), or check that the reports on disk are what the results files give.",
        discussion: """
        Reads each grid results file directly in --results (figure1, figure2, table1, figure3, \
        figure4) and each folder of train-dkef files in it (results/dkef-d10/ → results/dkef-d10.md), \
        and writes its report (and the headline table in --readme): per figure and table, each metric's mean ± standard error over seeds \
        per method and D, the wall time per cell, and where the cells were computed. The report \
        depends on the results file alone, so the same file always gives the same bytes. With \
        --check nothing is written: the command lists every report that is missing or differs \
        from what its results file gives, and exits 1 if there is one (make check runs this).
        """)

    @Option(help: "The folder of results files.")
    var results = "results"

    @Flag(help: "Write nothing; exit 1 if a report on disk is missing or differs from what its results file gives.")
    var check = false

    @Option(help: "A Markdown file whose headline block (between the headline markers) is the table of the paper's claims from --results' figure1, figure2 and table1 files; skipped when the file or its markers are absent, or --results holds none of those three files.")
    var readme = "README.md"

    func run() throws {
        guard FileManager.default.fileExists(atPath: results) else { throw FileError("--results: \(results) does not exist") }
        let names = try FileManager.default.contentsOfDirectory(atPath: results).sorted()
        var reports: [(path: String, text: String)] = []
        for name in names {
            let path = results + "/" + name
            var isFolder: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
            if isFolder.boolValue {
                if !name.hasPrefix("."), !name.hasSuffix(".cells"), let folder = try readingUserFile({ try RunFolderReport(folder: path) }) {
                    reports.append((folder.markdownPath, folder.markdown))
                }
            } else if name.hasSuffix(".h5"), Reports.Report.experiments.contains(try readingUserFile { try ResultsGrid.experiment(of: path) }) {
                let report = try readingUserFile { try Reports.Report(resultsAt: path) }
                reports.append((Reports.Report.markdownPath(for: path), try report.markdown))
            }
        }
        // The headline comes from figure 1, 2 and table 1's files: a folder with none of them
        // (a scratch run of another grid) leaves README's table as it is.
        let headlineSources = ["figure1", "figure2", "table1"].filter { FileManager.default.fileExists(atPath: results + "/" + $0 + ".h5") }
        if !headlineSources.isEmpty, let text = try? String(contentsOfFile: readme, encoding: .utf8),
           let updated = try readingUserFile({ try HeadlineReport(resultsFolder: results) }).replacingBlock(in: text) {
            reports.append((readme, updated))
        }
        var stale: [String] = []
        for (path, text) in reports {
            if check {
                let onDisk = try? String(contentsOfFile: path, encoding: .utf8)
                if onDisk != text {
                    stale.append(path)
                    print("report: \(path) \(onDisk == nil ? "is missing" : "differs from what its results file gives")")
                }
            } else {
                try text.write(toFile: path, atomically: true, encoding: .utf8)
                print("report: wrote \(path)")
            }
        }
        if check {
            print("report: \(reports.count - stale.count) of \(reports.count) report(s) in \(results) match their results files")
            if !stale.isEmpty {
                print("report: run `make report` (inspect report --results \(results)) and commit the regenerated files")
                throw ExitCode.failure
            }
        }
    }
}

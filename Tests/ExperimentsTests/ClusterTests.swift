import ArgumentParser
@testable import CellExperiments
@testable import ExperimentCommands
@testable import ExperimentGrid
@testable import GridExecution
@testable import PaperClaims
@testable import Reports
import Foundation
import ResultsStore
import Testing

/// sha256 of a file's bytes, through the system's sha256sum (what the command-line tests compare).
func checksum(_ path: String) throws -> String {
    let (status, output, _) = try runProcess("/usr/bin/sha256sum", [path])
    #expect(status == 0)
    return String(output.prefix(64))
}

@Suite struct CellFilesAndMerge {
    let config = try! ExperimentConfig.parse("methods: [ssm]\ndims: [2]\nseeds: [0, 1, 2]\n", file: "x.yml", quick: false)

    /// A per-cell file as `--cell` writes it, with a metric `fisher_divergence` = `value`.
    func writeCellFile(_ cell: Cell, value: Double, in files: CellFiles, config: ExperimentConfig? = nil, experiment: String = "test") throws {
        let config = config ?? self.config
        try FileManager.default.createDirectory(atPath: files.folder, withIntermediateDirectories: true)
        let grid = ResultsGrid(unopened: files.resultsPath, experiment: experiment, config: config, configText: "t")
        try grid.recordAlone(cell, at: files.path(of: cell.name), keepingOldAs: nil, wallSeconds: 1) { group in
            try group.write("fisher_divergence", doubles: [value], shape: [])
            try group.write("curve", doubles: [1, 2, 3])
        }
    }

    func cellFiles(_ dir: String) -> CellFiles { CellFiles(resultsPath: dir + "/grid.h5", experiment: "test", configHash: config.hash) }

    /// Per-cell files are complete results files; a merge creates the results file from them with
    /// their numbers, and merging again changes nothing (the file's bytes included).
    @Test func mergeCreatesTheFileAndIsIdempotent() throws {
        let files = cellFiles(folder())
        let cells = try config.cells
        for (i, cell) in cells.enumerated() { try writeCellFile(cell, value: 0.25 * Double(i + 1), in: files) }
        #expect(files.folder.hasSuffix("/grid.cells"))
        #expect(try files.missing(cells).isEmpty)
        #expect(files.state(of: "ssm_d2_seed1") == .computed)

        let report = try CellMerge.merge(files.folder, into: files.resultsPath)
        #expect(report.created && report.added == cells.map(\.name) && report.alreadyPresent.isEmpty)
        let records = try CellRecord.all(in: files.resultsPath).sorted { $0.name < $1.name }
        #expect(records.map { $0.values["fisher_divergence"] } == [0.25, 0.5, 0.75])
        try ResultsGrid.checkCompatible(files.resultsPath, experiment: "test", configHash: config.hash)
        try ResultsFile.read(at: files.resultsPath) { root in
            let cell = try root.group("cells").group("ssm_d2_seed2")
            #expect(try cell.readDoubles("curve").values == [1, 2, 3])
            #expect(try cell.attribute("cpu_model").stringValue?.isEmpty == false)
        }

        let sum = try checksum(files.resultsPath)
        let again = try CellMerge.merge(files.folder, into: files.resultsPath)
        #expect(again.added.isEmpty && again.alreadyPresent == cells.map(\.name) && !again.created)
        #expect(try checksum(files.resultsPath) == sum)
    }

    /// Into an existing results file: its cells with the same numbers are skipped, the rest added;
    /// the result equals computing the grid in one file.
    @Test func mergeAddsOnlyWhatIsMissing() throws {
        let dir = folder()
        let files = cellFiles(dir)
        let cells = try config.cells
        let grid = try ResultsGrid(path: files.resultsPath, experiment: "test", config: config, configText: "t", fresh: false)
        try grid.run([cells[0]]) { _ in { try $0.write("fisher_divergence", doubles: [0.25], shape: []) } }
        for (i, cell) in cells.enumerated() { try writeCellFile(cell, value: 0.25 * Double(i + 1), in: files) }
        let report = try CellMerge.merge(files.folder, into: files.resultsPath)
        #expect(report.added == ["ssm_d2_seed1", "ssm_d2_seed2"] && report.alreadyPresent == ["ssm_d2_seed0"] && !report.created)

        let local = try ResultsGrid(path: dir + "/local.h5", experiment: "test", config: config, configText: "t", fresh: false)
        try local.run(cells) { cell in { try $0.write("fisher_divergence", doubles: [0.25 * Double(cell.seed + 1)], shape: []) } }
        let merged = Dictionary(uniqueKeysWithValues: try CellRecord.all(in: files.resultsPath).map { ($0.name, $0.values) })
        for record in try CellRecord.all(in: local.path) {
            #expect(CellMerge.differences(record.values, merged[record.name] ?? [:]).isEmpty)
        }
    }

    /// Every refusal names the cell or file and leaves the results file byte for byte as it was:
    /// another config hash, another experiment, different numbers for one cell, a truncated
    /// per-cell file, and a folder where one file of several is bad (all or nothing).
    @Test func refusalsLeaveTheResultsFileUnchanged() throws {
        let cells = try config.cells
        var other = config
        other.protocolSettings.epochs += 1
        func setUp() throws -> (CellFiles, String) {
            let files = cellFiles(folder())
            let grid = try ResultsGrid(path: files.resultsPath, experiment: "test", config: config, configText: "t", fresh: false)
            try grid.run([cells[0]]) { _ in { try $0.write("fisher_divergence", doubles: [0.25], shape: []) } }
            try writeCellFile(cells[1], value: 0.5, in: files)  // good, new
            return (files, try checksum(files.resultsPath))
        }
        func refused(_ files: CellFiles, _ phrases: [String]) throws {
            do {
                _ = try CellMerge.merge(files.folder, into: files.resultsPath)
                Issue.record("merge was not refused")
            } catch let refusal as CellMerge.Refusal {
                for phrase in phrases { #expect(refusal.description.contains(phrase), "\(refusal) lacks \(phrase)") }
                #expect(refusal.description.contains("the results file is unchanged"))
            }
        }

        var (files, sum) = try setUp()
        try writeCellFile(cells[2], value: 0.75, in: files, config: other)
        try refused(files, ["ssm_d2_seed2", other.hash, config.hash, files.path(of: "ssm_d2_seed2"), files.resultsPath])
        #expect(try checksum(files.resultsPath) == sum)
        #expect(files.state(of: "ssm_d2_seed2") != .computed)  // listed as missing: recomputed under this config

        (files, sum) = try setUp()
        try writeCellFile(cells[2], value: 0.75, in: files, experiment: "table1")
        try refused(files, ["ssm_d2_seed2", "table1", "test"])
        #expect(try checksum(files.resultsPath) == sum)

        (files, sum) = try setUp()
        try writeCellFile(cells[0], value: 0.3, in: files)
        try refused(files, ["ssm_d2_seed0", "different numbers", "fisher_divergence 0.3 vs 0.25", files.path(of: "ssm_d2_seed0"), files.resultsPath])
        #expect(try checksum(files.resultsPath) == sum)

        (files, sum) = try setUp()
        try writeCellFile(cells[2], value: 0.75, in: files)
        let truncated = files.path(of: "ssm_d2_seed2")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: truncated))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: truncated))
        try refused(files, [truncated, "truncated"])
        #expect(try checksum(files.resultsPath) == sum)
        #expect(files.state(of: "ssm_d2_seed2") != .computed)
        #expect(try files.missing(cells).map(\.name) == ["ssm_d2_seed2"])

        // Into a file that does not exist yet: a refusal creates nothing.
        let fresh = CellFiles(resultsPath: folder() + "/new.h5", experiment: "test", configHash: config.hash)
        try writeCellFile(cells[0], value: 0.25, in: fresh)
        try writeCellFile(cells[1], value: 0.5, in: fresh, config: other)
        #expect(throws: CellMerge.Refusal.self) { try CellMerge.merge(fresh.folder, into: fresh.resultsPath) }
        #expect(!FileManager.default.fileExists(atPath: fresh.resultsPath))
    }

    /// A cell counts as computed in the results file or in a file of its own under this grid's
    /// experiment and hash; temporaries and backups in the folder are not sources.
    @Test func missingCountsBothPlaces() throws {
        let files = cellFiles(folder())
        let cells = try config.cells
        let grid = try ResultsGrid(path: files.resultsPath, experiment: "test", config: config, configText: "t", fresh: false)
        try grid.run([cells[0]]) { _ in { try $0.write("fisher_divergence", doubles: [0.25], shape: []) } }
        try writeCellFile(cells[1], value: 0.5, in: files)
        #expect(try files.missing(cells).map(\.name) == ["ssm_d2_seed2"])
        #expect(try files.unmerged() == [files.path(of: "ssm_d2_seed1")])
        for junk in ["ssm_d2_seed2.h5.tmp-99999", "ssm_d2_seed2.h5.1700000000.bak", ".hidden.h5"] {
            _ = FileManager.default.createFile(atPath: files.folder + "/" + junk, contents: Data("x".utf8))
        }
        #expect(CellMerge.sourceFiles(in: files.folder) == [files.path(of: "ssm_d2_seed1")])
        var other = config
        other.protocolSettings.epochs += 1
        try writeCellFile(cells[2], value: 0.75, in: files, config: other)
        if case .other(let reason) = files.state(of: "ssm_d2_seed2") { #expect(reason.contains("config hash")) } else { Issue.record("not .other") }
        #expect(try files.missing(cells).map(\.name) == ["ssm_d2_seed2"])
    }
}

@Suite struct SLURMSubmissions {
    func submission(_ cells: [String], resources: SlurmSubmission.Resources = .init(), executable: String = "/bin/echo") -> SlurmSubmission {
        SlurmSubmission(experiment: "figure1", cells: cells, executable: executable,
                        gridArguments: ["--quick", "--out", "results/my run/figure1.h5"], inspect: "/opt/ssm/inspect",
                        resultsPath: "results/my run/figure1.h5", workingDirectory: "/work/project", resources: resources, commit: "abc1234")
    }

    /// The array has one task per cell; task i runs the executable on the i-th cell with the
    /// grid's arguments (run here with bash, /bin/echo standing in for figure1).
    @Test func arrayTaskIComputesCellI() throws {
        let cells = ["sm_d4_seed0", "ssm_d4_seed0", "dsm_sigma0.1_d4_seed1"]
        let script = submission(cells).arrayScript
        #expect(script.contains("#SBATCH --array=0-2\n"))
        #expect(script.contains("#SBATCH --cpus-per-task=1") && script.contains("export OPENBLAS_NUM_THREADS=1"))
        #expect(script.contains("#SBATCH --chdir=/work/project") && script.contains("#SBATCH --output=results/my run/figure1.slurm/logs/%A_%a.out"))
        #expect(!script.contains("--partition") && !script.contains("--time") && !script.contains("--mem") && !script.contains("--account"))
        let path = folder() + "/array.sbatch"
        try script.write(toFile: path, atomically: true, encoding: .utf8)
        for (i, cell) in cells.enumerated() {
            let (status, output, errors) = try runProcess("/usr/bin/env", ["SLURM_ARRAY_TASK_ID=\(i)", "SLURM_ARRAY_JOB_ID=7", "bash", path])
            #expect(status == 0, "\(errors)")
            #expect(output == "figure1: task 7_\(i) on \(ProcessInfo.processInfo.hostName): cell \(cell)\n--quick --out results/my run/figure1.h5 --cell \(cell)\n")
        }
        let merge = submission(cells).mergeScript
        #expect(merge.contains("exec /opt/ssm/inspect merge 'results/my run/figure1.cells' --into 'results/my run/figure1.h5'"))
        #expect(merge.contains("#SBATCH --job-name=figure1-merge"))
    }

    /// More cells than MaxArraySize: several arrays of the one script, each told its offset; task
    /// i of the array at offset k computes cell k + i (run with bash), so every cell is one task.
    @Test func largeGridsAreSplitIntoArrays() throws {
        let cells = (0..<5).map { "ssm_d4_seed\($0)" }
        var s = submission(cells, resources: .init(maxParallel: 3))
        s.maxArraySize = 2
        #expect(s.arrays.map(\.offset) == [0, 2, 4] && s.arrays.map(\.count) == [2, 2, 1])
        #expect(s.arrayArguments == [["--parsable", "--array=0-1%3", "--export=ALL,SSM_TASK_OFFSET=0", s.arrayScriptPath],
                                     ["--parsable", "--array=0-1%3", "--export=ALL,SSM_TASK_OFFSET=2", s.arrayScriptPath],
                                     ["--parsable", "--array=0-0%3", "--export=ALL,SSM_TASK_OFFSET=4", s.arrayScriptPath]])
        #expect(s.arrayScript.contains("#SBATCH --array=0-1%3\n"))
        let path = folder() + "/array.sbatch"
        try s.arrayScript.write(toFile: path, atomically: true, encoding: .utf8)
        var computed: [String] = []
        for array in s.arrays {
            for task in 0..<array.count {
                let (status, output, _) = try runProcess("/usr/bin/env", ["SSM_TASK_OFFSET=\(array.offset)", "SLURM_ARRAY_TASK_ID=\(task)", "SLURM_ARRAY_JOB_ID=7", "bash", path])
                #expect(status == 0)
                computed.append(String(output.split(separator: " ").last!.dropLast()))
            }
        }
        #expect(computed == cells)
        s.maxArraySize = 5
        #expect(s.arrays.count == 1 && s.arrayArguments == [["--parsable", s.arrayScriptPath]])
    }

    /// MaxArraySize as `scontrol show config` prints it (a stand-in scontrol here).
    @Test func maxArraySizeIsReadFromTheCluster() throws {
        let dir = folder()
        let scontrol = dir + "/scontrol"
        try "#!/bin/bash\necho 'MaxArraySize            = 40'\necho 'MaxJobCount             = 10000'\n".write(toFile: scontrol, atomically: true, encoding: .utf8)
        chmod(scontrol, 0o755)
        #expect(SlurmSubmission.maxArraySize(scontrol: scontrol) == 40)
        #expect(SlurmSubmission.maxArraySize(scontrol: nil) == nil)
        #expect(SlurmSubmission.maxArraySize(scontrol: "/bin/false") == nil)
    }

    @Test func resourcesBecomeDirectives() {
        let resources = SlurmSubmission.Resources(partition: "short,long", time: "1-02:00:00", memory: "4G", account: "proj-42", maxParallel: 8)
        for script in [submission(["a", "b"], resources: resources).arrayScript, submission(["a", "b"], resources: resources).mergeScript] {
            for line in ["#SBATCH --partition=short,long", "#SBATCH --time=1-02:00:00", "#SBATCH --mem=4G", "#SBATCH --account=proj-42"] {
                #expect(script.contains(line + "\n"), "missing \(line)")
            }
        }
        #expect(submission(["a", "b"], resources: resources).arrayScript.contains("#SBATCH --array=0-1%8\n"))
    }

    /// bash reads a quoted word back as the original text, whatever it holds.
    @Test func shellQuotingRoundTrips() throws {
        let words = ["plain", "with space", "it's", "$HOME", "a\"b", "back\\slash", "", "tab\there", "--out=x/y.h5"]
        let (status, output, _) = try runProcess("/bin/bash", ["-c", "printf '%s\\n' " + words.map(shellQuoted).joined(separator: " ")])
        #expect(status == 0)
        #expect(output == words.map { $0 + "\n" }.joined())
        #expect(shellQuoted("results/figure1.h5") == "results/figure1.h5")
    }

    /// The last submission's ids, and which of them squeue still lists (a stand-in squeue here).
    @Test func aSubmissionStillQueuedIsFound() throws {
        let dir = folder()
        var s = submission(["a"])
        s.resultsPath = dir + "/figure1.h5"
        try FileManager.default.createDirectory(atPath: s.folder, withIntermediateDirectories: true)
        try "2026-01-01T00:00:00Z array=12 merge=13 cells=4 commit=x\n2026-01-02T00:00:00Z array=20,22 merge=23 cells=1 commit=y\n"
            .write(toFile: s.recordPath, atomically: true, encoding: .utf8)
        #expect(s.lastSubmission() == ["20", "22", "23"])
        let squeue = dir + "/squeue"
        try "#!/bin/bash\n[ \"$3\" = 20,22,23 ] && echo 23\n".write(toFile: squeue, atomically: true, encoding: .utf8)
        chmod(squeue, 0o755)
        #expect(SlurmSubmission.active(s.lastSubmission(), squeue: squeue) == ["23"])
        #expect(SlurmSubmission.active([], squeue: squeue).isEmpty)
        #expect(SlurmSubmission.active(["20"], squeue: nil).isEmpty)
    }

    @Test func clusterFlagsAreChecked() throws {
        #expect(try ClusterOptions.parse(["--submit", "slurm", "--time", "90", "--mem", "4G", "--max-parallel", "3"]).maxParallel == 3)
        for time in ["90", "1:30", "01:30:00", "2-12", "2-12:30", "2-12:30:00"] {
            #expect(try ClusterOptions.parse(["--submit", "slurm", "--time", time]).time == time)
        }
        for arguments in [["--list-cells", "--cell", "a"], ["--cell", "a", "--submit", "slurm"], ["--dry-run"], ["--partition", "x"],
                          ["--submit", "slurm", "--time", "1h"], ["--submit", "slurm", "--mem", "4GB"], ["--submit", "slurm", "--max-parallel", "0"],
                          ["--submit", "slurm", "--partition", "a b"], ["--cell", "../x"], ["--submit", "pbs"]] {
            #expect(throws: (any Error).self, "\(arguments)") { try ClusterOptions.parse(arguments) }
        }
    }
}

import ExperimentGrid
import Foundation

/// A grid's missing cells as a SLURM job array (one task per cell, one core each) and a merge job
/// that runs after the array however it ends (`--dependency=afterany`). Both scripts are written
/// to `results/<name>.slurm/` (`array.sbatch`, `merge.sbatch`), readable and editable; each
/// submission is appended to `submissions` there (time, job ids, cells), task logs go to `logs/`.
///
/// The array script lists its cells itself: SLURM keeps a copy of a script when it is submitted,
/// so a later `--submit` (which rewrites the file) cannot change what a queued task computes.
/// A grid with more cells than the cluster's `MaxArraySize` is submitted as several arrays of the
/// one script (`--array` on the command line, `SSM_TASK_OFFSET` saying where each starts); with
/// `--max-parallel` each array waits for the one before it, so the limit holds for the grid.
public struct SlurmSubmission {
    /// The sbatch options the user passed through (`--partition`, `--time`, `--mem`, `--account`)
    /// and the array's `%` limit (`--max-parallel`).
    public struct Resources: Equatable {
        public var partition: String?
        public var time: String?
        public var memory: String?
        public var account: String?
        public var maxParallel: Int?
        public init(partition: String? = nil, time: String? = nil, memory: String? = nil, account: String? = nil, maxParallel: Int? = nil) {
            (self.partition, self.time, self.memory, self.account, self.maxParallel) = (partition, time, memory, account, maxParallel)
        }
    }

    public var experiment: String
    /// The cells to compute, one array task each (task i computes `cells[i]`).
    public var cells: [String]
    /// The executable and the arguments that select this grid (config, overrides, --quick, --out).
    public var executable: String
    public var gridArguments: [String]
    /// `inspect`, which merges.
    public var inspect: String
    /// The grid's results file and per-cell folder, as the grid arguments name them.
    public var resultsPath: String
    public var workingDirectory: String
    public var resources: Resources
    public var commit: String
    /// The most tasks one array may have (the cluster's MaxArraySize: indices 0 … MaxArraySize − 1).
    public var maxArraySize = 1001

    public init(experiment: String, cells: [String], executable: String, gridArguments: [String], inspect: String,
                resultsPath: String, workingDirectory: String, resources: Resources, commit: String) {
        (self.experiment, self.cells, self.executable, self.gridArguments, self.inspect) = (experiment, cells, executable, gridArguments, inspect)
        (self.resultsPath, self.workingDirectory, self.resources, self.commit) = (resultsPath, workingDirectory, resources, commit)
    }

    /// `results/figure1.h5` → `results/figure1.slurm`.
    public var folder: String { (resultsPath as NSString).deletingPathExtension + ".slurm" }
    public var arrayScriptPath: String { folder + "/array.sbatch" }
    public var mergeScriptPath: String { folder + "/merge.sbatch" }
    public var recordPath: String { folder + "/submissions" }
    public var logFolder: String { folder + "/logs" }
    var cellFolder: String { CellFiles.folder(for: resultsPath) }

    /// The sbatch lines the two jobs share.
    private var sharedDirectives: [String] {
        var lines = ["#SBATCH --chdir=\(workingDirectory)", "#SBATCH --ntasks=1", "#SBATCH --cpus-per-task=1"]
        if let p = resources.partition { lines.append("#SBATCH --partition=\(p)") }
        if let a = resources.account { lines.append("#SBATCH --account=\(a)") }
        if let t = resources.time { lines.append("#SBATCH --time=\(t)") }
        if let m = resources.memory { lines.append("#SBATCH --mem=\(m)") }
        return lines
    }

    /// The array's `%N` (at most N tasks at once), or nothing.
    private var arrayLimit: String { resources.maxParallel.map { "%\($0)" } ?? "" }

    public var arrayScript: String {
        let command = ([executable] + gridArguments).map(shellQuoted).joined(separator: " ")
        return """
            #!/bin/bash
            # \(experiment): one SLURM array task per cell still missing (\(cells.count) cells), written by
            # `\(experiment) --submit slurm` on \(timestamp()) at commit \(commit).
            # Task i computes the i-th cell of the list below into \(cellFolder)/<cell>.h5 (never the
            # results file); \(mergeScriptPath) then folds them into \(resultsPath).
            # Edit and submit by hand with: sbatch \(arrayScriptPath)
            #SBATCH --job-name=\(experiment)
            #SBATCH --array=0-\(min(cells.count, maxArraySize) - 1)\(arrayLimit)
            #SBATCH --output=\(logFolder)/%A_%a.out
            \(sharedDirectives.joined(separator: "\n"))
            set -euo pipefail
            # One core per task: OpenBLAS must not start a thread per core of the node.
            export OPENBLAS_NUM_THREADS=1
            cells=(
            \(cells.map { "  " + $0 }.joined(separator: "\n"))
            )
            # SSM_TASK_OFFSET: where this array starts in the list, when the grid is split into several.
            cell=${cells[$(( ${SSM_TASK_OFFSET:-0} + SLURM_ARRAY_TASK_ID ))]}
            echo "\(experiment): task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID} on $(hostname): cell $cell"
            exec \(command) --cell "$cell"

            """
    }

    public var mergeScript: String {
        let command = [inspect, "merge", cellFolder, "--into", resultsPath].map(shellQuoted).joined(separator: " ")
        return """
            #!/bin/bash
            # \(experiment): folds the per-cell files of the array into the results file (submitted
            # with --dependency=afterany on the array, so it also keeps what a partly failed array
            # computed). Written by `\(experiment) --submit slurm` on \(timestamp()).
            #SBATCH --job-name=\(experiment)-merge
            #SBATCH --output=\(logFolder)/merge_%j.out
            \(sharedDirectives.joined(separator: "\n"))
            set -euo pipefail
            exec \(command)

            """
    }

    /// Writes both scripts (and the log and cell folders the jobs write into).
    public func writeScripts() throws {
        do {
            for folder in [logFolder, cellFolder] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            try arrayScript.write(toFile: arrayScriptPath, atomically: true, encoding: .utf8)
            try mergeScript.write(toFile: mergeScriptPath, atomically: true, encoding: .utf8)
        } catch {
            throw FileError("cannot write the sbatch scripts in \(folder): \(error.localizedDescription)")
        }
    }

    /// The job ids of the last submission recorded in `submissions` (its arrays, then its merge).
    public func lastSubmission() -> [String] {
        guard let text = try? String(contentsOfFile: recordPath, encoding: .utf8),
              let line = text.split(separator: "\n").last else { return [] }
        return line.split(separator: " ").flatMap { field -> [String] in
            for key in ["array=", "merge="] where field.hasPrefix(key) {
                return field.dropFirst(key.count).split(separator: ",").map(String.init).filter { $0 != "none" }
            }
            return []
        }
    }

    /// The arrays' task ranges: (offset into `cells`, tasks), each at most `maxArraySize` tasks.
    public var arrays: [(offset: Int, count: Int)] {
        stride(from: 0, to: cells.count, by: max(maxArraySize, 1)).map { ($0, min(maxArraySize, cells.count - $0)) }
    }

    /// The sbatch arguments of each array, in order.
    public var arrayArguments: [[String]] {
        guard arrays.count > 1 else { return [["--parsable", arrayScriptPath]] }
        return arrays.map { ["--parsable", "--array=0-\($0.count - 1)\(arrayLimit)", "--export=ALL,SSM_TASK_OFFSET=\($0.offset)", arrayScriptPath] }
    }

    /// Submits the arrays (with --max-parallel, each after the one before), then the merge job
    /// after all of them; records and returns their ids.
    public func submit(using sbatch: String) throws -> (arrays: [String], merge: String) {
        var ids: [String] = []
        do {
            for arguments in arrayArguments {
                let chained = resources.maxParallel != nil && !ids.isEmpty ? ["--dependency=afterany:\(ids.last!)"] : []
                ids.append(try Self.run(sbatch, [arguments[0]] + chained + arguments.dropFirst(), what: "array job \(ids.count + 1) of \(arrays.count)"))
            }
        } catch {
            if !ids.isEmpty { try? record(arrays: ids, merge: "none") }
            let submitted = ids.isEmpty ? "nothing was submitted" : "array job(s) \(ids.joined(separator: ", ")) were submitted: scancel them, or merge by hand once they have ended (`\(inspect) merge \(cellFolder) --into \(resultsPath)`)"
            throw SubmissionError(description: "\(error); \(submitted)")
        }
        let merge: String
        do {
            merge = try Self.run(sbatch, ["--parsable", "--dependency=afterany:" + ids.joined(separator: ":"), mergeScriptPath], what: "the merge job")
        } catch {
            try? record(arrays: ids, merge: "none")
            throw SubmissionError(description: "\(error); the array job(s) \(ids.joined(separator: ", ")) were submitted: once they have ended, merge by hand with `\(inspect) merge \(cellFolder) --into \(resultsPath)`")
        }
        try record(arrays: ids, merge: merge)
        return (ids, merge)
    }

    private func record(arrays: [String], merge: String) throws {
        let line = "\(timestamp()) array=\(arrays.joined(separator: ",")) merge=\(merge) cells=\(cells.count) commit=\(commit)\n"
        if let handle = FileHandle(forWritingAtPath: recordPath) {
            handle.seekToEndOfFile()
            handle.write(Data(line.utf8))
            handle.closeFile()
        } else {
            try line.write(toFile: recordPath, atomically: true, encoding: .utf8)
        }
    }

    /// The cluster's MaxArraySize as `scontrol show config` reports it (nil when it cannot say).
    public static func maxArraySize(scontrol: String?) -> Int? {
        guard let scontrol, let (status, output, _) = try? runProcess(scontrol, ["show", "config"]), status == 0,
              let line = output.split(separator: "\n").first(where: { $0.hasPrefix("MaxArraySize") }),
              let value = line.split(separator: "=").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }), value > 0 else { return nil }
        return value
    }

    /// Runs `tool` with `arguments`; returns its standard output's first field (`--parsable`
    /// prints `id` or `id;cluster`), or throws with its standard error.
    public static func run(_ tool: String, _ arguments: [String], what: String) throws -> String {
        let (status, output, errors) = try runProcess(tool, arguments)
        let id = output.split(separator: "\n").first.map { String($0.split(separator: ";").first ?? "") } ?? ""
        guard status == 0, !id.isEmpty else {
            throw SubmissionError(description: "submitting \(what) failed: `\(([tool] + arguments).joined(separator: " "))` exited with status \(status): \(errors.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return id.trimmingCharacters(in: .whitespaces)
    }

    /// The ids among `jobs` that `squeue` still lists (queued or running); empty when squeue
    /// knows none of them (or is not there to ask).
    public static func active(_ jobs: [String], squeue: String?) -> [String] {
        guard let squeue, !jobs.isEmpty,
              let (status, output, _) = try? runProcess(squeue, ["-h", "-j", jobs.joined(separator: ","), "-o", "%i"]),
              status == 0 else { return [] }
        return output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    public struct SubmissionError: Error, CustomStringConvertible {
        public let description: String
    }
}

/// `text` as one word for bash: as it is when it has only safe characters, else in single quotes.
func shellQuoted(_ text: String) -> String {
    let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,/:=+@%")
    if !text.isEmpty, text.unicodeScalars.allSatisfy({ safe.contains($0) }) { return text }
    return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

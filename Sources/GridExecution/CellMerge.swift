import ExperimentGrid
import Foundation
import ResultsStore

/// Folds results files of one grid — the per-cell files of `--cell` runs, or any results file of
/// the same experiment and config — into its results file (`inspect merge`).
///
/// All or nothing: every source is read and checked first; then the new cells are copied in one
/// atomic update (or, when the results file does not exist yet, one atomic write whose root is
/// the first source's). Idempotent: a cell already in the results file under the same config hash
/// with bit-for-bit the same scalar metrics is skipped. Refused, leaving the results file as it
/// was: a source that is not a readable results file, another experiment or config hash, and a
/// cell present twice with different metrics.
public enum CellMerge {
    public struct Report: Equatable {
        /// Cells copied into the results file, in name order.
        public var added: [String] = []
        /// Cells already there with the same numbers.
        public var alreadyPresent: [String] = []
        /// The source files read.
        public var sources: [String] = []
        /// Whether the results file was created by this merge.
        public var created = false
    }

    /// A merge that was refused; nothing was changed.
    public struct Refusal: UsageError, Equatable {
        public let description: String
        init(_ description: String) { self.description = "\(description); nothing was merged, the results file is unchanged" }
    }

    /// The `*.h5` files directly in `folder`, in name order (temporaries and backups are not
    /// results: `x.h5.tmp-123`, `x.h5.1700000000.bak`).
    public static func sourceFiles(in folder: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.filter { $0.hasSuffix(".h5") && !$0.hasPrefix(".") }.sorted().map { folder + "/" + $0 }
    }

    /// One source's or the destination's identity and cells.
    struct Contents {
        var path: String
        var experiment: String
        var configHash: String
        /// Cell name → (its config_hash attribute, its scalar datasets).
        var cells: [String: (hash: String, values: [String: Double])]
    }

    static func contents(of path: String, role: String) throws -> Contents {
        do {
            return try ResultsFile.read(at: path) { root in
                guard let experiment = (try? root.attribute("experiment"))?.stringValue,
                      let hash = (try? root.attribute("config_hash"))?.stringValue, root.contains("cells") else {
                    throw Refusal("\(role) \(path) is not a grid's results file (it lacks the experiment, config_hash or cells/ a grid writes)")
                }
                let group = try root.group("cells")
                var cells: [String: (hash: String, values: [String: Double])] = [:]
                for name in try group.childNames() {
                    let cell = try group.group(name)
                    cells[name] = ((try? cell.attribute("config_hash"))?.stringValue ?? hash, try cell.scalarDatasets())
                }
                return Contents(path: path, experiment: experiment, configHash: hash, cells: cells)
            }
        } catch let error as ResultsStoreError {
            let hint = role == "source" ? " (a truncated or damaged file: move it aside; its cell is then listed as missing and can be computed again with --cell)" : ""
            throw Refusal("\(role) \(path) cannot be read: \(error)\(hint)")
        }
    }

    /// The names of the metrics on which two records of a cell differ (bit for bit; a metric one
    /// of them lacks counts as a difference), with both values.
    public static func differences(_ a: [String: Double], _ b: [String: Double]) -> [String] {
        Set(a.keys).union(b.keys).sorted().compactMap { name in
            let x = a[name], y = b[name]
            if let x, let y, x.bitPattern == y.bitPattern { return nil }
            return "\(name) \(x.map { "\($0)" } ?? "absent") vs \(y.map { "\($0)" } ?? "absent")"
        }
    }

    /// Merges `source` (a folder of per-cell files, or one results file) into the results file
    /// at `destination`.
    public static func merge(_ source: String, into destination: String) throws -> Report {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isFolder) else {
            throw FileError("\(source) does not exist (name the folder of per-cell files, e.g. results/figure1.cells, or a results file)")
        }
        return try merge(files: isFolder.boolValue ? sourceFiles(in: source) : [source], into: destination)
    }

    /// Merges the results files `files` into the results file at `destination`.
    public static func merge(files: [String], into destination: String) throws -> Report {
        var report = Report(sources: files)
        guard !files.isEmpty else { return report }
        try OutputCheck.checkWritable(destination)

        let exists = FileManager.default.fileExists(atPath: destination)
        let target = exists ? try contents(of: destination, role: "results file") : nil
        // Where each cell comes from: the destination, or the first source that has it.
        var known: [String: (values: [String: Double], from: String)] = target?.cells.mapValues { ($0.values, destination) } ?? [:]
        let sources = try files.map { try contents(of: $0, role: "source") }
        // What every cell must match: the results file's experiment and hash, or the first source's.
        let reference = target ?? sources[0]
        var copies: [(cell: String, from: String)] = []
        for contents in sources {
            let file = contents.path
            for (cell, record) in contents.cells.sorted(by: { $0.key < $1.key }) {
                guard contents.experiment == reference.experiment else {
                    throw Refusal("cell \(cell): \(file) holds \(contents.experiment) results, \(reference.path) holds \(reference.experiment) results")
                }
                guard record.hash == reference.configHash else {
                    throw Refusal("cell \(cell): config hash \(record.hash) in \(file), \(reference.configHash) in \(reference.path) (computed under another config; recompute it, or merge it into another file)")
                }
                if let earlier = known[cell] {
                    let diff = differences(record.values, earlier.values)
                    guard diff.isEmpty else {
                        throw Refusal("cell \(cell) has different numbers in \(file) and \(earlier.from): \(diff.joined(separator: ", "))")
                    }
                    if earlier.from == destination, !report.alreadyPresent.contains(cell) { report.alreadyPresent.append(cell) }
                } else {
                    known[cell] = (record.values, file)
                    copies.append((cell, file))
                }
            }
        }
        guard !copies.isEmpty else { return report }

        // Everything is checked: write.
        let bySource = Dictionary(grouping: copies, by: \.from)
        func copyCells(into root: ResultsGroup) throws {
            let cells = try root.createGroup("cells")
            for (file, entries) in bySource.sorted(by: { $0.key < $1.key }) {
                try ResultsFile.read(at: file) { sourceRoot in
                    let sourceCells = try sourceRoot.group("cells")
                    for entry in entries { try cells.copy(entry.cell, from: sourceCells) }
                }
            }
            try root.setAttribute("updated", .string(timestamp()))
        }
        do {
            if exists {
                try ResultsFile.update(at: destination, copyCells)
            } else {
                try OutputCheck.prepareFolder(of: destination)
                // The new file's root (experiment, config, provenance) is the first source's.
                try ResultsFile.write(to: destination) { root in
                    try ResultsFile.read(at: reference.path) { sourceRoot in
                        for name in try sourceRoot.attributeNames() { try root.setAttribute(name, try sourceRoot.attribute(name)) }
                    }
                    try copyCells(into: root)
                }
                report.created = true
            }
        } catch let error as ResultsStoreError {
            throw FileError("merging into \(destination) failed: \(error); the results file is unchanged")
        }
        report.added = copies.map(\.cell).sorted()
        report.alreadyPresent.sort()
        return report
    }
}

import ExperimentGrid
import Foundation
import GridExecution
import Objectives

/// Writes an experiment's Markdown report beside its results file (`results/x.h5` → `results/x.md`,
/// replaced atomically), prints it, and logs where it went.
public func publishMarkdown(_ lines: [String], besides out: String, experiment: String) throws {
    let table = lines.joined(separator: "\n")
    let path = (out as NSString).deletingPathExtension + ".md"
    try table.write(toFile: path, atomically: true, encoding: .utf8)
    print(table)
    log("\(experiment): wrote \(path)")
}

/// A series as a table row names it: methods beyond the paper's six (FSM) say so.
public func tableLabel(_ series: String) -> String {
    let method = series.split(separator: " ").first.map(String.init) ?? series
    guard let estimator = Estimator(rawValue: method), !Estimator.paper.contains(estimator) else { return series }
    return series + " (not in the paper)"
}

/// Mean ± standard error of `metric` per (series, D) over seeds.
public func summarize(_ records: [CellRecord], metric: String) -> [String: [Int: (mean: Double, standardError: Double, count: Int)]] {
    var grouped: [String: [Int: [Double]]] = [:]
    for r in records { if let v = r.values[metric] { grouped[r.series, default: [:]][r.dimension, default: []].append(v) } }
    return grouped.mapValues { byD in byD.mapValues { let s = meanAndStandardError($0); return (s.mean, s.standardError, $0.count) } }
}

/// A Markdown table: rows are series, columns dimensions, cells "mean ± se" (the mean alone
/// where only one seed is in: no standard error to give).
public func markdownTable(_ summary: [String: [Int: (mean: Double, standardError: Double, count: Int)]], seriesOrder: [String], digits: Int = 3) -> String {
    let dims = Set(summary.values.flatMap(\.keys)).sorted()
    var lines = ["| method | " + dims.map { "D=\($0)" }.joined(separator: " | ") + " |",
                 "|---|" + dims.map { _ in "---|" }.joined()]
    for series in seriesOrder where summary[series] != nil {
        let cells = dims.map { d in summary[series]![d].map {
            formattedMeanAndError(mean: $0.mean, standardError: $0.standardError, count: $0.count, digits: digits)
        } ?? "–" }
        lines.append("| \(tableLabel(series)) | " + cells.joined(separator: " | ") + " |")
    }
    return lines.joined(separator: "\n")
}

import Autodiff
import ArgumentParser
import CRuntime
import Experiments
import Foundation
import Objectives

@main
struct Table1: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table1",
        abstract: "Table 1: DSM's sensitivity to sigma against SSM, SSM-VR and SM (Fisher divergence, exact SM, test log-likelihood).",
        discussion: """
        Runs the DKEF HighDim protocol for DSM at each sigma in dsm_sigmas and for the other
        methods, at each D in dims (default experiments/table1.yml), resuming like figure1. Writes
        the table, mean ± standard error over seeds, to results/table1.md (results/quick/table1.md
        with --quick) and prints it.
        """)

    @OptionGroup var options: ExperimentOptions

    func run() throws {
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        let run = try options.runGrid(experiment: "table1", compute: ProtocolExperiment.compute)
        let (config, out, records, order) = (run.config, run.out, run.records, run.seriesOrder)
        let metrics = [("fisher_divergence", "Fisher divergence"), ("exact_sm", "exact SM"), ("test_log_likelihood", "test log-likelihood")]
        var lines = ["# Table 1: DSM's sensitivity to σ (DKEF, N(0, I_D) data)", "",
                     "Config \(config.hash); seeds \(config.seeds); mean ± standard error over seeds. Produced by `table1` into \(out).", ""]
        for d in config.dims {
            let atD = records.filter { $0.dimension == d }
            let truth = meanAndStandardError(atD.compactMap { $0.values["true_test_log_likelihood"] })
            lines.append("## D = \(d)")
            lines.append("")
            lines.append("| method | " + metrics.map(\.1).joined(separator: " | ") + " |")
            lines.append("|---|" + metrics.map { _ in "---|" }.joined())
            for series in order {
                let rows = atD.filter { $0.series == series }
                guard !rows.isEmpty else { continue }
                let cells = metrics.map { metric -> String in
                    let s = meanAndStandardError(rows.compactMap { $0.values[metric.0] })
                    return String(format: "%.3f ± %.3f", s.mean, s.standardError)
                }
                lines.append("| \(series) | " + cells.joined(separator: " | ") + " |")
            }
            lines.append("")
            lines.append(String(format: "True test log-likelihood (the data's own density): %.3f ± %.3f.", truth.mean, truth.standardError))
            lines.append("")
        }
        let table = lines.joined(separator: "\n")
        let tablePath = (out as NSString).deletingPathExtension + ".md"
        try table.write(toFile: tablePath, atomically: true, encoding: .utf8)
        print(table)
        log("table1: wrote \(tablePath)")
    }
}

import Autodiff
import ArgumentParser
import CRuntime
import CellExperiments
import ExperimentCommands
import ExperimentGrid
import Reports
import Foundation
import Objectives

@main
struct Table1: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "table1",
        abstract: "Table 1: DSM's sensitivity to sigma against SSM, SSM-VR and SM (Fisher divergence, exact SM, test log-likelihood).",
        discussion: """
        Runs the DKEF HighDim protocol for DSM at each sigma in dsm_sigmas and for the other \
        methods, at each D in dims (default experiments/table1.yml), resuming like figure1. Writes \
        the table, mean ± standard error over seeds, to results/table1.md (results/quick/table1.md \
        with --quick) and prints it.
        """ + "\n\n" + gridCommandChecks + "\n\n" + clusterCommandHelp)

    @OptionGroup var options: ExperimentOptions
    @OptionGroup(title: "Cells and clusters") var cluster: ClusterOptions

    func run() throws {
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        if try options.runClusterMode(cluster, experiment: "table1", compute: ProtocolExperiment.compute) { return }
        let run = try options.runGrid(experiment: "table1", compute: ProtocolExperiment.compute)
        let (config, out, records, order) = (run.config, run.out, run.records, run.seriesOrder)
        let metrics = [("fisher_divergence", "Fisher divergence"), ("exact_sm", "exact SM"), ("test_log_likelihood", "test log-likelihood")]
        var lines = ["# Table 1: DSM's sensitivity to σ (DKEF, N(0, I_D) data)", "",
                     "Config \(config.hash); seeds \(config.seeds); mean ± standard error over seeds. Produced by `table1` into \(out).", ""]
        for d in config.dims {
            let atD = records.filter { $0.dimension == d }
            // One value per seed: every method of a seed sees the same test set.
            let truth = formattedMeanAndError(Dictionary(grouping: atD, by: \.seed).values.compactMap { $0.first?.values["true_test_log_likelihood"] })
            lines.append("## D = \(d)")
            lines.append("")
            lines.append("| method | " + metrics.map(\.1).joined(separator: " | ") + " |")
            lines.append("|---|" + metrics.map { _ in "---|" }.joined())
            for series in order {
                let rows = atD.filter { $0.series == series }
                guard !rows.isEmpty else { continue }
                let cells = metrics.map { metric in formattedMeanAndError(rows.compactMap { $0.values[metric.0] }) }
                let seeds = rows.count == config.seeds.count ? "" : " (\(rows.count) of \(config.seeds.count) seeds)"
                lines.append("| \(tableLabel(series))\(seeds) | " + cells.joined(separator: " | ") + " |")
            }
            lines.append("")
            lines.append("True test log-likelihood (the data's own density N(0, I), same test sets): \(truth).")
            lines.append("")
        }
        let p = config.protocolSettings
        lines.append(String(format: "Test log-likelihood = mean log p̃(x) − log Ẑ, with Ẑ estimated by importance sampling from N(0, %g²I) with %ld draws; its error grows exponentially with D (README: \"Test log-likelihoods are unreliable\"), so at large D read the Fisher divergence and exact SM columns.", p.importanceSigma, p.importanceSamples))
        lines.append("")
        try publishMarkdown(lines, besides: out, experiment: "table1")
    }
}

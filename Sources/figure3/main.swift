import ArgumentParser
import Autodiff
import CRuntime
import CellExperiments
import ExperimentCommands
import ExperimentGrid
import Reports
import Foundation
import GSLNumerics

@main
struct Figure3: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "figure3",
        abstract: "Figure 3 (beyond the paper): test Fisher divergence of each score-matching method on targets beyond N(0, I): correlated, multimodal, heavy-tailed.",
        discussion: """
        Runs the authors' DKEF HighDim protocol, unchanged, for every cell of the grid methods × \
        targets × dims × seeds in the config (default experiments/figure3.yml), with the data \
        drawn from each target (its parameters in the config's target: block) and the Fisher \
        divergence taken against the target's exact score; resumes like figure1. Writes the table, \
        mean ± standard error over seeds per target, to results/figure3.md (results/quick/figure3.md \
        with --quick) and prints it. Plot with `make figure3` (experiments/plot.py).
        """ + "\n\n" + gridCommandChecks + "\n\n" + clusterCommandHelp)

    @OptionGroup var options: ExperimentOptions
    @OptionGroup(title: "Cells and clusters") var cluster: ClusterOptions

    func run() throws {
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        if try options.runClusterMode(cluster, experiment: "figure3", compute: ProtocolExperiment.compute) { return }
        let run = try options.runGrid(experiment: "figure3", compute: ProtocolExperiment.compute)
        let (config, out, records, order) = (run.config, run.out, run.records, run.seriesOrder)
        let parameters = config.targetParameters ?? TargetParameters()
        var lines = ["# Figure 3: score-matching methods across targets (DKEF, the authors' HighDim protocol)", "",
                     "Config \(config.hash); seeds \(config.seeds); mean ± standard error over seeds. Produced by `figure3` into \(out).", ""]
        for name in config.targets {
            let target = try Target(named: name)
            let rows = records.filter { $0.target == name }
            lines.append("## \(TargetSettings(target, parameters: parameters).description)")
            lines.append("")
            lines.append("Test Fisher divergence ½ E‖s − s_d‖²:")
            lines.append("")
            lines.append(markdownTable(summarize(rows, metric: "fisher_divergence"), seriesOrder: order))
            lines.append("")
            // Importance sampling of log Z: how many of the draws carry it (median over the cells).
            let ess = config.dims.map { d -> String in
                let values = rows.filter { $0.dimension == d }.compactMap { $0.values["log_z_ess"] }
                return values.isEmpty ? "D=\(d): –" : String(format: "D=%d: %.3g", d, median(values))
            }
            lines.append("Median effective sample size of log Z's importance weights (of \(config.protocolSettings.importanceSamples) draws): " + ess.joined(separator: ", ") + ".")
            lines.append("")
        }
        try publishMarkdown(lines, besides: out, experiment: "figure3")
    }
}

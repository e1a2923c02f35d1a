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
struct Figure4: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "figure4",
        abstract: "Figure 4 (beyond the paper): samples from DKEFs trained by each method (MALA and Langevin), their KSD and MMD to the target, and a picture at D = 2.",
        discussion: """
        Runs the authors' DKEF HighDim protocol for every cell of the grid methods × targets × dims × \
        seeds in the config (default experiments/figure4.yml: a Gaussian mixture at D = 2 and 10), \
        then draws MALA and unadjusted Langevin samples from each trained model with the config's \
        sampling: settings, starting from the model's base density; stores the samples, MALA's \
        acceptance rate, KSD² (against the target's exact score) and MMD² (against exact target \
        draws), and at D = 2 the model's and the target's log densities on a grid. Resumes like \
        figure1. Writes the table, mean ± standard error over seeds, to results/figure4.md \
        (results/quick/figure4.md with --quick) and prints it. Plot with `make figure4`.
        """ + "\n\n" + gridCommandChecks + "\n\n" + clusterCommandHelp)

    @OptionGroup var options: ExperimentOptions
    @OptionGroup(title: "Cells and clusters") var cluster: ClusterOptions

    func run() throws {
        // The sampling: block is checked before anything is computed.
        let resolved = try options.resolve(experiment: "figure4")
        guard resolved.config.samplerSettings != nil else {
            throw ConfigError.invalid(file: options.config ?? "experiments/figure4.yml", key: "sampling",
                                      reason: "figure4 samples the trained models and needs a sampling: block (step_size, steps, burn_in, thinning, chains)")
        }
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        if try options.runClusterMode(cluster, experiment: "figure4", compute: SamplingExperiment.compute) { return }
        let run = try options.runGrid(experiment: "figure4", compute: SamplingExperiment.compute)
        let (config, out, records, order) = (run.config, run.out, run.records, run.seriesOrder)
        let s = config.samplerSettings!
        let columns = [("mala_ksd", "MALA KSD²"), ("mala_mmd", "MALA MMD²"), ("langevin_ksd", "Langevin KSD²"),
                       ("langevin_mmd", "Langevin MMD²"), ("mala_acceptance", "MALA acceptance"), ("fisher_divergence", "Fisher divergence")]
        var lines = ["# Figure 4: samples from the trained models (DKEF, the authors' HighDim protocol)", "",
                     "Config \(config.hash); seeds \(config.seeds); mean ± standard error over seeds. Produced by `figure4` into \(out).",
                     "", String(format: "%d chains from the base density q₀, τ = %g, %d steps, kept after %d every %d. KSD² against the target's exact score, MMD² against as many exact target draws; both unbiased, so ≈ 0 (and possibly negative) for exact samples.", s.chains, s.stepSize, s.steps, s.burnIn, s.thinning), ""]
        let parameters = config.targetParameters ?? TargetParameters()
        for name in config.targets {
            for d in config.dims {
                let rows = records.filter { $0.target == name && $0.dimension == d }
                lines.append("## \(TargetSettings(try Target(named: name), parameters: parameters).description), D = \(d)")
                lines.append("")
                lines.append("| method | " + columns.map(\.1).joined(separator: " | ") + " |")
                lines.append("|---|" + columns.map { _ in "---|" }.joined())
                // The floor: exact draws, one set per seed (every method of a seed has the same).
                let perSeed = Dictionary(grouping: rows, by: \.seed).values.compactMap(\.first)
                let exact = [formattedMeanAndError(perSeed.compactMap { $0.values["exact_ksd"] }),
                             formattedMeanAndError(perSeed.compactMap { $0.values["exact_mmd"] })]
                lines.append("| exact target samples | \(exact[0]) | \(exact[1]) | \(exact[0]) | \(exact[1]) | – | 0 |")
                for series in order {
                    let cells = rows.filter { $0.series == series }
                    guard !cells.isEmpty else { continue }
                    let values = columns.map { metric in formattedMeanAndError(cells.compactMap { $0.values[metric.0] }) }
                    lines.append("| \(tableLabel(series)) | " + values.joined(separator: " | ") + " |")
                }
                lines.append("")
            }
        }
        try publishMarkdown(lines, besides: out, experiment: "figure4")
    }
}

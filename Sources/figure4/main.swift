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
        try options.runGrid(experiment: "figure4", compute: SamplingExperiment.compute).publishReport(experiment: "figure4")
    }
}

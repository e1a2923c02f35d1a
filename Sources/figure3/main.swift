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
        try options.runGrid(experiment: "figure3", compute: ProtocolExperiment.compute).publishReport(experiment: "figure3")
    }
}

import ArgumentParser
import Autodiff
import CRuntime
import CellExperiments
import ExperimentCommands
import Foundation

@main
struct Figure6: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "figure6",
        abstract: "Figure 6 (beyond the paper): score estimation from samples — score networks trained by SSM, SSM-VR, DSM, exact SM and FSM against the Stein and spectral (SSGE) kernel estimators, on targets whose score is exact.",
        discussion: """
        Runs every cell of the grid estimators × targets × (D, M) × seeds in the config (default \
        experiments/figure6.yml): M samples of a target (N(0, I), the correlated normal, the \
        Gaussian mixture, Student t), an estimator fitted to them — a kernel estimator at the \
        authors' settings or with η, the bandwidth and SSGE's cut chosen on held-out samples, or a \
        score network trained for a fixed budget of steps (DSM's σ chosen on held-out samples) — \
        then its relative error E‖ŝ − s‖²/E‖s‖² against the exact score at fresh points and at the \
        samples, its fit seconds, seconds per 1000 queries and peak memory. Hyperparameters are \
        chosen by the held-out score-matching objective, never by the exact score. Resumes like \
        figure1. Writes the report, mean ± standard error over seeds, to results/figure6.md \
        (results/quick/figure6.md with --quick) and prints it.
        """ + "\n\n" + gridCommandChecks + "\n\n" + clusterCommandHelp)

    @OptionGroup var options: ExperimentOptions
    @OptionGroup(title: "Cells and clusters") var cluster: ClusterOptions

    func run() throws {
        selectOpenBLASCore()
        // Memory is one of the measurements: freed blocks go back to the system.
        ssm_return_freed_memory()
        if try options.runClusterMode(cluster, experiment: "figure6", compute: ScoreEstimationExperiment.compute) { return }
        try options.runGrid(experiment: "figure6", compute: ScoreEstimationExperiment.compute).publishReport(experiment: "figure6")
    }
}

import ArgumentParser
import Autodiff
import CRuntime
import CellExperiments
import ExperimentCommands
import Foundation

@main
struct Figure5: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "figure5",
        abstract: "Figure 5 (beyond the paper): energy networks and score networks trained by SM, SSM, SSM-VR, DSM, FSM and DEEN on 2-D toy datasets; their samples, fields and metrics.",
        discussion: """
        Runs every cell of the grid methods × models × datasets × seeds in the config (default \
        experiments/figure5.yml; each method with the model kinds it applies to: DEEN only on \
        energy networks): a network trained as toy_gradlogp trains its energies (score networks \
        with NCSN's toy architecture and batch), then its test Fisher divergence where the dataset \
        has an exact score, Langevin (and for energies MALA) samples from U[−4, 4]² with MMD² and \
        KSD², the score field and the energy grid; resumes like figure1. Writes the report, mean ± \
        standard error over seeds, to results/figure5.md (results/quick/figure5.md with --quick) \
        and prints it.
        """ + "\n\n" + gridCommandChecks + "\n\n" + clusterCommandHelp)

    @OptionGroup var options: ExperimentOptions
    @OptionGroup(title: "Cells and clusters") var cluster: ClusterOptions

    func run() throws {
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        if try options.runClusterMode(cluster, experiment: "figure5", compute: NetworkExperiment.compute) { return }
        try options.runGrid(experiment: "figure5", compute: NetworkExperiment.compute).publishReport(experiment: "figure5")
    }
}

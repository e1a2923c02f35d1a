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
        try options.runGrid(experiment: "table1", compute: ProtocolExperiment.compute).publishReport(experiment: "table1")
    }
}

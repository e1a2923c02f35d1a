import Autodiff
import ArgumentParser
import CRuntime
import CellExperiments
import ExperimentCommands
import Reports
import Foundation
import Objectives

@main
struct Figure1: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "figure1",
        abstract: "Figure 1: test Fisher divergence (SM loss) and exact SM objective vs data dimension, per method.",
        discussion: """
        Runs the DKEF HighDim protocol (train, finalise, evaluate) for every cell of the grid \
        methods × dims × DSM sigmas × seeds in the config (default experiments/figure1.yml), writing \
        each cell to the HDF5 results file as soon as it finishes. A rerun resumes: cells already in \
        the file with the same config hash are skipped. Writes the report (mean ± standard error over seeds per method and D) to results/figure1.md and prints it. \
        Plot with `make figure1` (experiments/plot.py).

        With --jobs N, N processes compute cells at once, one OpenBLAS thread each; processes \
        started by hand on the same results file cooperate the same way (each cell is claimed \
        while it is computed, and each process waits for the others' cells of its grid before it prints).
        """ + "\n\n" + gridCommandChecks + "\n\n" + clusterCommandHelp)

    @OptionGroup var options: ExperimentOptions
    @OptionGroup(title: "Cells and clusters") var cluster: ClusterOptions

    func run() throws {
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        if try options.runClusterMode(cluster, experiment: "figure1", compute: ProtocolExperiment.compute) { return }
        try options.runGrid(experiment: "figure1", compute: ProtocolExperiment.compute).publishReport(experiment: "figure1")
    }
}

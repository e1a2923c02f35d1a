import Autodiff
import ArgumentParser
import CRuntime
import CellExperiments
import ExperimentCommands
import ExperimentGrid
import GridExecution
import Reports
import Foundation
import Objectives

@main
struct Figure2: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "figure2",
        abstract: "Figure 2: seconds per training iteration vs data dimension, per method, with a phase breakdown.",
        discussion: """
        One iteration = alpha on X_t (100 points) + the objective on X_v (100 points) + the \
        parameter gradient + an Adam step, on a freshly initialised DKEF. Reports the median of the \
        timed iterations after warm-up (timing: in the config, default experiments/figure2.yml) per \
        phase (alpha, objective, backward, optimizer). Exact SM stops growing D once a cell's median \
        iteration exceeds timing.budget_seconds. Writes the report (medians per method and D, each method's log-log slope of time vs D, the phases at its largest D) to results/figure2.md and prints it.
        """ + "\n\n" + gridCommandChecks)

    @OptionGroup var options: ExperimentOptions

    func validate() throws {
        guard options.jobs == 1 else {
            throw ValidationError("figure2 measures time per iteration: cells must not share the cores, so --jobs must be 1 (got \(options.jobs))")
        }
    }

    func run() throws {
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        let run = try options.runGrid(experiment: "figure2", skip: { cell, config, out in
            guard cell.method == .sm else { return nil }
            let over = try CellRecord.all(in: out).first { $0.method == "sm" && $0.seed == cell.seed && $0.overBudget && $0.dimension < cell.dimension }
            return over.map { "exact SM exceeded the \(config.timing.budgetSeconds) s budget at D=\($0.dimension)" }
        }, compute: TimingExperiment.compute)
        try run.publishReport(experiment: "figure2")
    }
}

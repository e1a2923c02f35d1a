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
        iteration exceeds timing.budget_seconds. Prints each method's log-log slope of time vs D.
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
        let (config, out, records, order) = (run.config, run.out, run.records, run.seriesOrder)
        print("figure2 (\(out), config \(config.hash)): median seconds per training iteration, \(cpuModel())\n")
        print(markdownTable(summarize(records, metric: "median_total_seconds"), seriesOrder: order, digits: 4) + "\n")
        for phase in ["alpha", "objective", "backward", "optimizer"] {
            print("Phase \(phase):\n" + markdownTable(summarize(records, metric: "median_\(phase)_seconds"), seriesOrder: order, digits: 4) + "\n")
        }
        print("Log-log slope of time vs D (time ∝ D^slope):")
        for series in order {
            let points = records.filter { $0.series == series }.compactMap { r in r.values["median_total_seconds"].map { (Double(r.dimension), $0) } }
            print("  \(series): \(String(format: "%.2f", logLogSlope(x: points.map(\.0), y: points.map(\.1)))) over D = \(points.map { Int($0.0) }.sorted())")
        }
    }
}

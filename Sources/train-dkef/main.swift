import ArgumentParser
import Autodiff
import DKEFModel
import CRuntime
import CellExperiments
import ExperimentCommands
import ExperimentGrid
import GridExecution
import Foundation
import GSLNumerics
import Objectives
import ResultsStore
import Training

/// Runs the full HighDim DKEF protocol for one method, dimension and seed, and writes the
/// checkpoint, metrics and curves to an HDF5 file.
@main
struct TrainDKEF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-dkef",
        abstract: "Train, finalise and evaluate a DKEF with one score-matching method (the authors' HighDim protocol) on data from a target (default N(0, I_D), the authors').",
        discussion: """
        Everything is checked before training starts: the flags, the memory the run needs, and \
        the output file (its folder must take a new file; an existing file is only replaced with \
        --fresh, which keeps it as <out>.<time>.bak). Exit status: 0 on success, 64 for a usage \
        error (nothing was computed or written), 1 for a failure during the run (no output was \
        written; an existing file is unchanged).
        """)

    @Option(help: "Method: \(Estimator.allCases.map(\.rawValue).joined(separator: ", ")).")
    var method: String

    @Option(help: "Data dimension D.")
    var dimension: Int = 10

    @Option(help: "Target distribution of the data: \(Target.allCases.map(\.rawValue).joined(separator: ", ")), with issue 12's default parameters (condition number 100; 4 components at distance 3, scale 1; 5 degrees of freedom). Figure 3's config sets others.")
    var target: String = Target.standardNormal.rawValue

    @Option(help: "Seed for data, initialisation and every random draw.")
    var seed: UInt64 = 0

    @Option(help: "DSM noise scale sigma.")
    var sigma: Double = 0.1

    @Option(help: "CP's noise layout: per_point (one draw per point and node, the default) or per_pair (one per (point, inducing point) pair and node, as the authors' expansion). Read by --method cp only.")
    var cpNoise: String = CurvaturePropagationNoise.perPoint.rawValue

    @Option(help: "Inducing points M (at most the 4860 training points).")
    var inducingPoints: Int = 200

    @Option(help: "Training epochs (24 iterations each); 0 finalises and evaluates the initial model.")
    var epochs: Int = 5

    @Option(help: "Finalisation steps on log10 lambda.")
    var finalizeSteps: Int = 1000

    @Option(help: "Importance samples for log Z.")
    var importanceSamples: Int = 1_000_000

    @OptionGroup var output: SingleRunOutput

    static func main() { mainWithExitCodes() }

    var settings: ProtocolSettings {
        var settings = ProtocolSettings()
        settings.epochs = epochs
        settings.finalizeSteps = finalizeSteps
        settings.importanceSamples = importanceSamples
        return settings
    }

    var dkefConfiguration: DKEFConfiguration { DKEFConfiguration(dimension: dimension, inducingPoints: inducingPoints) }

    func validate() throws {
        do { _ = try Estimator(named: method) } catch { throw ValidationError("--method: \(error)") }
        do { _ = try Target(named: target) } catch { throw ValidationError("--target: \(error)") }
        guard dimension >= 1 else { throw ValidationError("--dimension must be ≥ 1, got \(dimension)") }
        guard sigma > 0, sigma.isFinite else { throw ValidationError("--sigma must be finite and > 0, got \(sigma)") }
        do { _ = try CurvaturePropagationNoise(named: cpNoise) } catch { throw ValidationError("--cp-noise: \(error)") }
        guard epochs >= 0 else { throw ValidationError("--epochs must be ≥ 0 (0: finalise and evaluate the initial model), got \(epochs)") }
        guard finalizeSteps >= 0 else { throw ValidationError("--finalize-steps must be ≥ 0, got \(finalizeSteps)") }
        guard importanceSamples >= 1 else { throw ValidationError("--importance-samples must be ≥ 1, got \(importanceSamples)") }
        guard inducingPoints >= 1, inducingPoints <= settings.trainCount else {
            throw ValidationError("--inducing-points must be in 1...\(settings.trainCount) (the training points it is drawn from), got \(inducingPoints)")
        }
    }

    func run() throws {
        // Everything the run needs is checked before the first second of compute.
        try MemoryCheck.require(settings.minimumMemoryBytes(for: dkefConfiguration), for: "train-dkef at D = \(dimension)")
        try output.check()
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        let provenance = Provenance.current()
        var trainer = DKEFTrainer(estimator: try Estimator(named: method), objectiveSettings: ObjectiveSettings(sigma: sigma, curvaturePropagationNoise: try CurvaturePropagationNoise(named: cpNoise)),
                                  configuration: dkefConfiguration, settings: settings, seed: seed)
        trainer.target = TargetSettings(try Target(named: target))
        trainer.progress = { log($0) }
        let start = Date()
        let result = try trainer.run()
        let wall = Date().timeIntervalSince(start)
        try output.write { root in
            try root.setAttribute("experiment", .string("train-dkef"))
            try provenance.write(to: root)
            try root.setAttribute("method", .string(method))
            try root.setAttribute("target", .string(trainer.target.description))
            try root.setAttribute("dimension", .int(dimension))
            try root.setAttribute("seed", .int(Int(seed)))
            try root.setAttribute("sigma", .double(sigma))
            try root.setAttribute("cp_noise", .string(cpNoise))
            try root.setAttribute("inducing_points", .int(inducingPoints))
            try root.setAttribute("epochs", .int(epochs))
            try root.setAttribute("finalize_steps", .int(finalizeSteps))
            try root.setAttribute("importance_samples", .int(importanceSamples))
            try root.setAttribute("wall_seconds", .double(wall))
            try root.setAttribute("finished", .string(timestamp()))
            let metrics = try root.createGroup("metrics")
            for (name, value) in result.metrics.sorted(by: { $0.key < $1.key }) {
                try metrics.write(name, doubles: [value], shape: [])
                try metrics.setAttribute("units", .string(metricUnits[name] ?? ""), on: name)
            }
            try root.write("train_loss", doubles: result.trainLoss)
            try root.write("validation_loss", doubles: result.validationLoss)
            try root.write("finalize_loss", doubles: result.finalizeLoss)
            try root.write("iteration_seconds", doubles: result.iterationSeconds)
            try DKEFCheckpoint.write(result.model, alpha: result.alpha, system: result.system, to: root.createGroup("checkpoint"))
        }
        let stage = { (name: String) in result.stageSeconds[name] ?? .nan }
        let iteration = result.iterationSeconds.isEmpty ? "no training iterations"
            : String(format: "median iteration %.3f s", median(result.iterationSeconds))
        print("\(method) D=\(dimension) seed=\(seed): " + result.metrics.sorted(by: { $0.key < $1.key }).map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", ")
              + String(format: "; wall %.1f s (train %.1f, finalize %.1f, evaluate %.1f); ", wall, stage("train"), stage("finalize"), stage("evaluate"))
              + iteration)
    }
}

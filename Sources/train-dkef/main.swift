import ArgumentParser
import Autodiff
import DKEFModel
import CRuntime
import Foundation
import Objectives
import ResultsStore
import Training

/// Runs the full HighDim DKEF protocol for one method, dimension and seed, and writes the
/// checkpoint, metrics and curves to an HDF5 file.
@main
struct TrainDKEF: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-dkef",
        abstract: "Train, finalise and evaluate a DKEF on N(0, I_D) data with one score-matching method (the authors' HighDim protocol).")

    @Option(help: "Method: \(Estimator.allCases.map(\.rawValue).joined(separator: ", ")).")
    var method: String

    @Option(help: "Data dimension D.")
    var dimension: Int = 10

    @Option(help: "Seed for data, initialisation and every random draw.")
    var seed: UInt64 = 0

    @Option(help: "DSM noise scale sigma.")
    var sigma: Double = 0.1

    @Option(help: "Inducing points M.")
    var inducingPoints: Int = 200

    @Option(help: "Training epochs (24 iterations each with the default sizes).")
    var epochs: Int = 5

    @Option(help: "Finalisation steps on log10 lambda.")
    var finalizeSteps: Int = 1000

    @Option(help: "Importance samples for log Z.")
    var importanceSamples: Int = 1_000_000

    @Option(help: "HDF5 file to write (replaced atomically when the run succeeds).")
    var out: String

    func validate() throws {
        _ = try Estimator(named: method)
        guard dimension >= 1 else { throw ValidationError("--dimension must be ≥ 1, got \(dimension)") }
        guard sigma > 0, sigma.isFinite else { throw ValidationError("--sigma must be finite and > 0, got \(sigma)") }
    }

    func run() throws {
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        var settings = ProtocolSettings()
        settings.epochs = epochs
        settings.finalizeSteps = finalizeSteps
        settings.importanceSamples = importanceSamples
        var trainer = DKEFTrainer(estimator: try Estimator(named: method), objectiveSettings: ObjectiveSettings(sigma: sigma),
                                  configuration: DKEFConfiguration(dimension: dimension, inducingPoints: inducingPoints),
                                  settings: settings, seed: seed)
        trainer.progress = { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) }
        let start = Date()
        let result = try trainer.run()
        let wall = Date().timeIntervalSince(start)
        try ResultsFile.write(to: out) { root in
            try root.setAttribute("method", .string(method))
            try root.setAttribute("dimension", .int(dimension))
            try root.setAttribute("seed", .int(Int(seed)))
            try root.setAttribute("wall_seconds", .double(wall))
            let metrics = try root.createGroup("metrics")
            for (name, value) in result.metrics.sorted(by: { $0.key < $1.key }) { try metrics.write(name, doubles: [value], shape: []) }
            try root.write("train_loss", doubles: result.trainLoss)
            try root.write("validation_loss", doubles: result.validationLoss)
            try root.write("finalize_loss", doubles: result.finalizeLoss)
            try root.write("iteration_seconds", doubles: result.iterationSeconds)
            try DKEFCheckpoint.write(result.model, alpha: result.alpha, system: result.system, to: root.createGroup("checkpoint"))
        }
        print("\(method) D=\(dimension) seed=\(seed): " + result.metrics.sorted(by: { $0.key < $1.key }).map { "\($0.key) \(String(format: "%.4f", $0.value))" }.joined(separator: ", ")
              + String(format: "; wall %.1f s (train %.1f, finalize %.1f, evaluate %.1f); median iteration %.3f s",
                       wall, result.stageSeconds["train"]!, result.stageSeconds["finalize"]!, result.stageSeconds["evaluate"]!,
                       result.iterationSeconds.sorted()[result.iterationSeconds.count / 2]))
    }
}

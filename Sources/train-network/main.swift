import ArgumentParser
import Autodiff
import CRuntime
import CellExperiments
import ExperimentCommands
import ExperimentGrid
import Foundation
import GSLNumerics
import GridExecution
import NeuralModels
import Objectives
import ResultsStore

/// Trains one deep score model (an energy network or a score network) by one estimator on a 2-D
/// toy dataset, as toy_gradlogp trains its energies, then measures it and writes one HDF5 file.
@main
struct TrainNetwork: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train-network",
        abstract: "Train an energy network or a score network with one score-matching method on a 2-D toy dataset; write its metrics, samples, fields and parameters to HDF5.",
        discussion: """
        The defaults are toy_gradlogp's: an MLP 2 → 300 → 300 → 1 (energy) or → 2 (score) with \
        softplus, 10⁶ training points, batch 100, 4 epochs, Adam 1e-3, gradient norm clipped at 100, \
        one Gaussian projection, σ = 0.1; then 1000 Langevin chains of 100 steps with ε = 0.01 from \
        U[−4, 4]² (and MALA for an energy network). Metrics: the test Fisher divergence where the \
        dataset has an exact score (8gaussians, rings, ncsn_mixture), MMD² of the samples against \
        fresh data, KSD² where the score is exact, seconds per training step. Everything is checked \
        before training starts (an estimator the model kind cannot take, a bad width, σ or step); \
        exit status 0 on success, 64 for a usage error (nothing computed or written), 1 for a \
        failure during the run (a NaN stops it with the step named; nothing is written).
        """)

    @Option(help: "Dataset: \(ToyDataset.allCases.map(\.rawValue).joined(separator: ", ")).")
    var dataset: String

    @Option(help: "Model kind: energy (log p̃ = −E, an MLP to R), score (an MLP to R^2, no log-density) or noise_conditional (s(x, σ), trained by NCSN's objective over σ from 20 to 1 and sampled by annealed Langevin; --method dsm, a mixture dataset).")
    var model: String = ModelKind.energy.rawValue

    @Option(help: "Method: \(Estimator.allCases.filter { !$0.needsLayeredModel }.map(\.rawValue).joined(separator: ", ")) (deen: energy networks only).")
    var method: String

    @Option(help: "Seed for the data, the initialisation and every random draw.")
    var seed: Int = 0

    @Option(help: "Hidden widths, comma-separated.")
    var hidden: String = "300,300"

    @Option(help: "Activation: \(MLP.Activation.allCases.map(\.rawValue).joined(separator: ", ")).")
    var activation: String = MLP.Activation.softplus.rawValue

    @Option(help: "DSM/DEEN noise scale σ.")
    var sigma: Double = 0.1

    @Option(help: "Training points (drawn once).")
    var train: Int = 1_000_000

    @Option(help: "Epochs over the training points.")
    var epochs: Int = 4

    @Option(help: "Batch size.")
    var batchSize: Int = 100

    @Option(help: "Adam's learning rate.")
    var learningRate: Double = 1e-3

    @OptionGroup var output: SingleRunOutput

    static func main() { mainWithExitCodes() }

    func experiment() throws -> NetworkExperiment {
        let parsedDataset: ToyDataset, kind: ModelKind, estimator: Estimator, act: MLP.Activation
        do { parsedDataset = try ToyDataset(named: dataset) } catch { throw ValidationError("--dataset: \(error)") }
        do { kind = try ModelKind(named: model) } catch { throw ValidationError("--model: \(error)") }
        do { estimator = try Estimator(named: method) } catch { throw ValidationError("--method: \(error)") }
        do { act = try MLP.Activation(named: activation) } catch { throw ValidationError("--activation: \(error)") }
        guard let widths = try ExperimentOptions.list(hidden, flag: "--hidden", kind: "widths", { Int($0) }), widths.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--hidden: widths must be integers ≥ 1, got '\(hidden)'")
        }
        var run = NetworkExperiment(dataset: parsedDataset, kind: kind, method: estimator, seed: seed)
        run.hidden = widths
        run.activation = act
        run.objective.sigma = sigma
        run.training.trainCount = train
        run.training.epochs = epochs
        run.training.batchSize = batchSize
        run.training.learningRate = learningRate
        do { try run.validate() } catch { throw ValidationError("\(error)") }
        return run
    }

    func validate() throws {
        guard sigma > 0, sigma.isFinite else { throw ValidationError("--sigma must be finite and > 0, got \(sigma)") }
        _ = try experiment()
    }

    func run() throws {
        let run = try experiment()
        try output.check()
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        let provenance = Provenance.current()
        let start = Date()
        let result = try run.run(log: { log($0) })
        let wall = Date().timeIntervalSince(start)
        let peak = peakResidentMiB()
        try output.write { root in
            try root.setAttribute("experiment", .string("train-network"))
            try provenance.write(to: root)
            try root.setAttribute("dataset", .string(run.dataset.rawValue))
            try root.setAttribute("model", .string(run.kind.rawValue))
            try root.setAttribute("method", .string(run.method.rawValue))
            try root.setAttribute("seed", .int(run.seed))
            try root.setAttribute("hidden", .string(run.hidden.map(String.init).joined(separator: ",")))
            try root.setAttribute("activation", .string(run.activation.rawValue))
            try root.setAttribute("sigma", .double(run.objective.sigma))
            try root.setAttribute("train", .int(run.training.trainCount))
            try root.setAttribute("epochs", .int(run.training.epochs))
            try root.setAttribute("batch_size", .int(run.training.batchSize))
            try root.setAttribute("learning_rate", .double(run.training.learningRate))
            try root.setAttribute("wall_seconds", .double(wall))
            try root.setAttribute("finished", .string(timestamp()))
            try result.write(to: root.createGroup("metrics"), peakResidentMiB: peak)
        }
        print("\(run.dataset.rawValue) \(run.kind.rawValue) \(run.method.rawValue) seed=\(run.seed): "
              + result.metrics.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.4g", $0.value.value))" }.joined(separator: ", ")
              + String(format: "; wall %.1f s", wall))
    }
}

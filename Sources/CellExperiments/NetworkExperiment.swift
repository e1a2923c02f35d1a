import Autodiff
import ExperimentGrid
import Foundation
import GSLNumerics
import GridExecution
import NeuralModels
import Objectives
import ResultsStore
import Sampling
import Training

/// One deep-score-model run: a network of one kind trained by one estimator on a toy dataset, then
/// measured. The training follows toy_gradlogp (`NetworkTrainingSettings`); the samples follow
/// its picture: unadjusted Langevin, `chains` chains from U[−4, 4]², `steps` steps of its ε
/// (this suite's τ = ε/2), and for energy networks MALA with the same settings.
///
/// Streams: the training and test data from the dataset's stream for the seed, the network's
/// initialisation and every training draw from the seed's stream, the samplers from
/// `SamplingExperiment.samplingStream(seed:)`; so the data are the same for every method of a seed.
public struct NetworkExperiment: Sendable {
    public var dataset: ToyDataset
    public var kind: ModelKind
    public var method: Estimator
    public var seed: Int
    public var hidden: [Int] = [300, 300]
    public var activation: MLP.Activation = .softplus
    public var objective = ObjectiveSettings(projection: .gaussian, projectionCount: 1, sigma: 0.1)
    public var training = NetworkTrainingSettings()
    /// toy_gradlogp's Langevin: ε = 0.01, 100 steps, from U[−4, 4]²; `chains` chains.
    public var langevinEpsilon = 0.01
    public var langevinSteps = 100
    public var chains = 1000

    public init(dataset: ToyDataset, kind: ModelKind, method: Estimator, seed: Int) {
        (self.dataset, self.kind, self.method, self.seed) = (dataset, kind, method, seed)
    }

    /// Refuses, before any compute, what cannot run: an estimator the model kind cannot take
    /// (those needing layer structure; those needing a log-density on a score network), bad
    /// widths, bad training or sampling settings.
    public func validate() throws {
        if method.needsLayeredModel { throw ObjectiveError.needsLayeredModel(estimator: method.rawValue) }
        if kind == .score && method.needsLogDensity { throw ObjectiveError.needsLogDensity(estimator: method.rawValue) }
        guard !hidden.isEmpty, hidden.allSatisfy({ $0 >= 1 }) else { throw NetworkError.invalidWidths([2] + hidden + [1]) }
        _ = try method.objective(objective)
        try training.validate()
        guard langevinEpsilon > 0, langevinEpsilon.isFinite else { throw SamplingError.invalidSetting("langevin_epsilon", "must be finite and > 0, got \(langevinEpsilon)") }
        guard langevinSteps >= 1, chains >= 2 else { throw SamplingError.invalidSetting("langevin_steps/chains", "need ≥ 1 step and ≥ 2 chains, got \(langevinSteps), \(chains)") }
    }

    static func dataStream(seed: Int) -> RandomStream { RandomStream(seed: 0x6461_7461_0000_0000 &+ UInt64(seed)) }

    /// The network, freshly initialised from `stream`.
    func network(using stream: RandomStream) throws -> any ScoreModel {
        switch kind {
        case .energy: try EnergyNetwork(dimension: 2, hidden: hidden, activation: activation, using: stream)
        case .score: try ScoreNetwork(dimension: 2, hidden: hidden, activation: activation, using: stream)
        }
    }

    /// What a run measured and what it keeps.
    public struct Result {
        public var model: any ScoreModel
        public var metrics: [String: (value: Double, units: String)]
        public var stepLoss: [Double]
        public var stepSeconds: [Double]
        public var arrays: [String: Tensor]
    }

    /// Trains and measures, logging progress lines through `log`.
    public func run(log: @escaping (String) -> Void = { _ in }) throws -> Result {
        try validate()
        let data = Self.dataStream(seed: seed)
        let train = dataset.sample(training.trainCount, using: data), test = dataset.sample(training.testCount, using: data)
        let stream = RandomStream(seed: UInt64(seed))
        var trainer = try NetworkTrainer(model: try network(using: stream), objective: try method.objective(objective), settings: training)
        trainer.progress = { log("[\(dataset.rawValue) \(kind.rawValue) \(method.rawValue) seed=\(seed)] \($0)") }
        let trained = try trainer.run(on: train, using: stream)
        let model = trained.model
        var metrics: [String: (value: Double, units: String)] = [
            "median_step_seconds": (median(trained.stepSeconds), "s"),
            "final_loss": (trained.stepLoss.suffix(100).reduce(0, +) / Double(min(100, trained.stepLoss.count)), "the objective's value, mean of the last 100 steps"),
        ]
        if let reference = dataset.reference {
            metrics["fisher_divergence"] = (try fisherDivergence(of: model, from: reference, at: test).mean, "squared score, 1/x^2 (½ E‖s − s_d‖², fresh test points)")
        }
        // Samples, as toy_gradlogp draws its picture's.
        let sampling = SamplingExperiment.samplingStream(seed: seed)
        let start = sampling.uniform(shape: [chains, 2], in: -4..<4)
        let settings = SamplerSettings(stepSize: langevinEpsilon / 2, steps: langevinSteps, burnIn: langevinSteps - 1, thinning: 1, chains: chains)
        let fresh = dataset.sample(chains, using: sampling)
        var arrays: [String: Tensor] = ["data_samples": fresh]
        var runs: [(String, Tensor)] = [("langevin", try UnadjustedLangevin(settings).run(scoreOf: model, from: start, using: sampling).samples)]
        if let density = model as? any LogDensityFunction {
            let mala = try MetropolisAdjustedLangevin(settings).run(density, from: start, using: sampling)
            runs.append(("mala", mala.samples))
            metrics["mala_acceptance"] = (mala.acceptanceRate ?? .nan, SamplingExperiment.units["acceptance"]!)
        }
        for (name, samples) in runs {
            arrays["\(name)_samples"] = samples
            metrics["\(name)_mmd"] = (maximumMeanDiscrepancy(samples, fresh).mmdSquared, SamplingExperiment.units["mmd"]!)
            if let reference = dataset.reference {
                metrics["\(name)_ksd"] = (kernelSteinDiscrepancy(samples: samples, score: try reference.score(samples)), SamplingExperiment.units["ksd"]!)
            }
        }
        // The pictures' fields: the score on a 20 × 20 grid, the energy (energy networks) on 100 × 100.
        arrays["score_grid_axis"] = Self.axis(20)
        arrays["score_field"] = scoreValues(of: model, at: Self.grid(20))
        if let energy = model as? EnergyNetwork {
            arrays["energy_grid_axis"] = Self.axis(100)
            arrays["energy_grid"] = withoutGradients { energy.energy(Self.grid(100)) }.reshaped([100, 100])
        }
        return Result(model: model, metrics: metrics, stepLoss: trained.stepLoss, stepSeconds: trained.stepSeconds, arrays: arrays)
    }

    /// k points from −4 to 4.
    static func axis(_ k: Int) -> Tensor { Tensor((0..<k).map { -4 + 8 * Double($0) / Double(k - 1) }) }

    /// The k × k grid of `axis(k)`, row-major in (y, x): point i·k + j is (axis[j], axis[i]).
    static func grid(_ k: Int) -> Tensor {
        let a = axis(k).scalars
        return Tensor(shape: [k * k, 2], scalars: (0..<(k * k)).flatMap { [a[$0 % k], a[$0 / k]] })
    }
}

extension NetworkExperiment.Result {
    /// Metrics (with units), the loss curve as means over blocks of 100 steps, the step times'
    /// quartiles, the samples and fields, and the parameters by name (`checkpoint/`).
    public func write(to group: ResultsGroup, peakResidentMiB: Double) throws {
        for (name, metric) in metrics {
            try group.write(name, doubles: [metric.value], shape: [])
            try group.setAttribute("units", .string(metric.units), on: name)
        }
        let blocks = stride(from: 0, to: stepLoss.count, by: 100).map { first in
            let block = stepLoss[first..<min(first + 100, stepLoss.count)]
            return block.reduce(0, +) / Double(block.count)
        }
        try group.write("loss_per_100_steps", doubles: blocks)
        let sorted = stepSeconds.sorted()
        if !sorted.isEmpty {
            try group.write("step_seconds_quartiles", doubles: [0.25, 0.5, 0.75].map { sorted[Int(Double(sorted.count - 1) * $0)] })
            try group.setAttribute("units", .string("s (25th, 50th, 75th percentile of every step)"), on: "step_seconds_quartiles")
        }
        try group.setAttribute("steps", .int(stepLoss.count))
        try group.setAttribute("peak_resident_mib", .double(peakResidentMiB))
        for (name, array) in arrays.sorted(by: { $0.key < $1.key }) { try group.write(name, doubles: array.scalars, shape: array.shape) }
        let checkpoint = try group.createGroup("checkpoint")
        let names: [String]
        switch model {
        case let energy as EnergyNetwork: names = energy.network.parameterNames
        case let score as ScoreNetwork: names = score.network.parameterNames
        default: names = model.parameters.indices.map { "parameter\($0)" }
        }
        for (name, parameter) in zip(names, model.parameters) { try checkpoint.write(name, doubles: parameter.scalars, shape: parameter.shape) }
    }
}

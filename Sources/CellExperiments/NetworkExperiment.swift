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
/// its picture: unadjusted Langevin, `chains` chains from U[−h, h]² (h = 4, or 8 for NCSN's mixture
/// whose modes sit at ±(5, 5): the dataset's `pictureHalfWidth`), `steps` steps of its ε
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
    /// Noise-conditional networks: NCSN's toy schedule, σ geometric from 20 to 1 in 10 levels,
    /// 100 annealed Langevin steps per level with ε = 0.1 at the last level.
    public var annealSigmas = AnnealedLangevin.geometric(from: 20, to: 1, levels: 10)
    public var annealStepsPerLevel = 100
    public var annealEpsilon = 0.1

    public init(dataset: ToyDataset, kind: ModelKind, method: Estimator, seed: Int) {
        (self.dataset, self.kind, self.method, self.seed) = (dataset, kind, method, seed)
    }

    /// Refuses, before any compute, what cannot run: an estimator the model kind cannot take
    /// (those needing layer structure; those needing a log-density on a score network), bad
    /// widths, bad training or sampling settings.
    public func validate() throws {
        if method.needsLayeredModel { throw ObjectiveError.needsLayeredModel(estimator: method.rawValue) }
        if kind == .noiseConditional {
            guard method == .dsm else { throw ObjectiveError.needsLogDensity(estimator: method.rawValue) }
            guard dataset.reference is GaussianMixture else {
                throw GSLError.invalidArgument("a noise-conditional network is measured against its dataset's blurred mixture score: choose 8gaussians or ncsn_mixture, not \(dataset.rawValue)")
            }
            _ = try NoiseConditionalDenoising(sigmas: annealSigmas)
            _ = try AnnealedLangevin(sigmas: annealSigmas, stepsPerLevel: annealStepsPerLevel, baseStep: annealEpsilon)
        }
        if kind == .score && method.needsLogDensity { throw ObjectiveError.needsLogDensity(estimator: method.rawValue) }
        guard !hidden.isEmpty, hidden.allSatisfy({ $0 >= 1 }) else { throw NetworkError.invalidWidths([2] + hidden + [1]) }
        _ = try method.objective(objective)
        try training.validate()
        guard langevinEpsilon > 0, langevinEpsilon.isFinite else { throw SamplingError.invalidSetting("langevin_epsilon", "must be finite and > 0, got \(langevinEpsilon)") }
        guard langevinSteps >= 1, chains >= 2 else { throw SamplingError.invalidSetting("langevin_steps/chains", "need ≥ 1 step and ≥ 2 chains, got \(langevinSteps), \(chains)") }
    }

    /// The run of a network cell of a grid, with the config's `networks:` and `objective:` settings.
    public init(_ cell: Cell, config: ExperimentConfig) throws {
        guard let dataset = cell.dataset, let kind = cell.modelKind else { throw ConfigError.invalid(file: "(config)", key: "datasets", reason: "\(cell.name) is not a network cell") }
        self.init(dataset: dataset, kind: kind, method: cell.method, seed: cell.seed)
        let n = config.networks ?? ExperimentConfig.NetworkSettings()
        hidden = kind == .energy ? n.hidden : n.scoreHidden
        activation = try MLP.Activation(named: n.activation)
        objective = try config.objectiveSettings(sigma: n.sigma)
        training = n.training
        if kind == .score { training.batchSize = n.scoreBatchSize }
        (langevinEpsilon, langevinSteps, chains) = (n.langevinEpsilon, n.langevinSteps, n.chains)
    }

    /// figure 5's cell computation: train, measure, and the writer of the cell's group. A training
    /// whose loss or gradient becomes NaN or infinite is an outcome of the grid, not a failure of
    /// the run: the cell records `diverged_at_step` (and nothing else to average), so the grid
    /// completes and the report names it. (`train-network`, a single run, stops with the error.)
    public static func compute(_ cell: Cell, config: ExperimentConfig) throws -> (ResultsGroup) throws -> Void {
        let result: Result
        do {
            result = try NetworkExperiment(cell, config: config).run(log: { ExperimentGrid.log($0) })
        } catch let TrainingError.nonFinite(stage, iteration, what) where stage == "training" {
            ExperimentGrid.log("\(cell.name): \(what) became NaN or infinite at training step \(iteration); recorded as diverged")
            let peak = peakResidentMiB()
            return { group in
                try group.write("diverged_at_step", doubles: [Double(iteration)], shape: [])
                try group.setAttribute("units", .string("the training step at which \(what) became NaN or infinite"), on: "diverged_at_step")
                try group.setAttribute("peak_resident_mib", .double(peak))
            }
        }
        let peak = peakResidentMiB()
        return { group in try result.write(to: group, peakResidentMiB: peak) }
    }

    static func dataStream(seed: Int) -> RandomStream { RandomStream(seed: 0x6461_7461_0000_0000 &+ UInt64(seed)) }

    /// The network, freshly initialised from `stream`.
    func network(using stream: RandomStream) throws -> any ScoreModel {
        switch kind {
        case .energy: try EnergyNetwork(dimension: 2, hidden: hidden, activation: activation, using: stream)
        case .score: try ScoreNetwork(dimension: 2, hidden: hidden, activation: activation, using: stream)
        case .noiseConditional: preconditionFailure("noise-conditional networks take runAnnealing()")
        }
    }

    /// What a run measured and what it keeps.
    public struct Result {
        public var model: any TrainableModel
        public var metrics: [String: (value: Double, units: String)]
        public var stepLoss: [Double]
        public var stepSeconds: [Double]
        public var arrays: [String: Tensor]
    }

    /// Trains and measures, logging progress lines through `log`.
    public func run(log: @escaping (String) -> Void = { _ in }) throws -> Result {
        try validate()
        if kind == .noiseConditional { return try runAnnealing(log: log) }
        let data = Self.dataStream(seed: seed)
        let train = dataset.sample(training.trainCount, using: data), test = dataset.sample(training.testCount, using: data)
        let stream = RandomStream(seed: UInt64(seed))
        let initial = try network(using: stream)
        // The reference's scores at the test points, once for the untrained and the trained network.
        let testScores = try dataset.reference.map { try $0.score(test) }
        let untrained = try testScores.map { try fisherDivergence(of: initial, targetScores: $0, at: test).mean }
        var trainer = try NetworkTrainer(model: initial, objective: try method.objective(objective), settings: training)
        trainer.progress = { log("[\(dataset.rawValue) \(kind.rawValue) \(method.rawValue) seed=\(seed)] \($0)") }
        let trained = try trainer.run(on: train, using: stream)
        let model = trained.model as! any ScoreModel
        var metrics: [String: (value: Double, units: String)] = [
            "median_step_seconds": (median(trained.stepSeconds), "s"),
            "final_loss": (trained.stepLoss.suffix(100).reduce(0, +) / Double(min(100, trained.stepLoss.count)), "the objective's value, mean of the last 100 steps"),
        ]
        if let testScores, let untrained {
            metrics["fisher_divergence"] = (try fisherDivergence(of: model, targetScores: testScores, at: test).mean, "squared score, 1/x^2 (½ E‖s − s_d‖², fresh test points)")
            metrics["untrained_fisher_divergence"] = (untrained, "squared score, 1/x^2 (the initial network, the same test points)")
        }
        // Samples, as toy_gradlogp draws its picture's.
        let sampling = SamplingExperiment.samplingStream(seed: seed)
        let h = dataset.pictureHalfWidth
        let start = sampling.uniform(shape: [chains, 2], in: -h..<h)
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
        arrays["score_grid_axis"] = Self.axis(20, halfWidth: h)
        arrays["score_field"] = scoreValues(of: model, at: Self.grid(20, halfWidth: h))
        if let energy = model as? EnergyNetwork {
            arrays["energy_grid_axis"] = Self.axis(100, halfWidth: h)
            arrays["energy_grid"] = withoutGradients { energy.energy(Self.grid(100, halfWidth: h)) }.reshaped([100, 100])
        }
        return Result(model: model, metrics: metrics, stepLoss: trained.stepLoss, stepSeconds: trained.stepSeconds, arrays: arrays)
    }

    /// NCSN's toy experiment with a learned network: a noise-conditional score network trained by
    /// NCSN's objective over `annealSigmas` on the training set, then chains from U[−8, 8]² by
    /// plain Langevin (1000 steps of ε at the last level, with the network there and with the
    /// data's exact score) and by annealed Langevin (with the network and with the exact blurred
    /// mixture score Σₖ πₖ N(μₖ, (s² + σ²)I)). Each sample goes to its nearest component mean;
    /// the metrics are the largest error of those fractions against the weights, and the
    /// network's Fisher divergence from the exact blurred score at σ_L on test points.
    func runAnnealing(log: @escaping (String) -> Void) throws -> Result {
        guard let mixture = dataset.reference as? GaussianMixture else { preconditionFailure("validated") }
        let data = Self.dataStream(seed: seed)
        let train = dataset.sample(training.trainCount, using: data), test = dataset.sample(training.testCount, using: data)
        let stream = RandomStream(seed: UInt64(seed))
        let network = try NoiseConditionalScoreNetwork(dimension: 2, hidden: hidden, activation: activation, using: stream)
        let objective = try NoiseConditionalDenoising(sigmas: annealSigmas)
        var trainer = try NetworkTrainer(model: network, objectiveName: "ncsn", settings: training) { model, batch, stream in
            let (levels, epsilon) = objective.drawNoise(points: batch.shape[0], dimension: batch.shape[1], using: stream)
            return try objective.loss(model as! NoiseConditionalScoreNetwork, at: batch, levels: levels, epsilon: epsilon)
        }
        trainer.progress = { log("[\(dataset.rawValue) noise_conditional ncsn seed=\(seed)] \($0)") }
        let trained = try trainer.run(on: train, using: stream)
        let model = trained.model as! NoiseConditionalScoreNetwork
        let scale = mixture.components[0].covariance[0, 0].squareRoot()
        let exact = BlurredMixtureScore(weights: mixture.weights, means: mixture.components.map(\.mean), scale: scale)
        let last = annealSigmas.last!
        let lastLevels = Tensor([Double](repeating: last, count: test.shape[0]))
        let networkScore = withoutGradients { model.score(at: test, sigmas: lastLevels) }
        let exactScore = exact.score(at: test, sigmas: lastLevels)
        var metrics: [String: (value: Double, units: String)] = [
            "median_step_seconds": (median(trained.stepSeconds), "s"),
            "final_loss": (trained.stepLoss.suffix(100).reduce(0, +) / Double(min(100, trained.stepLoss.count)), "NCSN's objective, mean of the last 100 steps"),
            "fisher_divergence_at_last_sigma": (withoutGradients { (networkScore - exactScore).square().sum(alongAxis: 1).mean().scalar * 0.5 },
                                                "squared score, 1/x^2 (½ E‖s(x, σ_L) − s_{q_σL}(x)‖² on test points)"),
        ]
        let sampling = SamplingExperiment.samplingStream(seed: seed)
        let start = sampling.uniform(shape: [chains, 2], in: -8..<8)
        let annealed = try AnnealedLangevin(sigmas: annealSigmas, stepsPerLevel: annealStepsPerLevel, baseStep: annealEpsilon)
        let plain = try UnadjustedLangevin(SamplerSettings(stepSize: annealEpsilon / 2, steps: annealSigmas.count * annealStepsPerLevel,
                                                           burnIn: annealSigmas.count * annealStepsPerLevel - 1, thinning: 1, chains: chains))
        let runs: [(String, Tensor)] = [
            ("network_annealed", try annealed.run(model, from: start, using: sampling)),
            ("network_langevin", try plain.run(scoreOf: model.atLevel(last), from: start, using: sampling).samples),
            ("exact_annealed", try annealed.run(exact, from: start, using: sampling)),
            ("exact_langevin", try plain.run(TargetDensity(mixture), from: start, using: sampling).samples),
        ]
        var arrays: [String: Tensor] = ["data_samples": dataset.sample(chains, using: sampling), "mixture_weights": Tensor(mixture.weights)]
        for (name, samples) in runs {
            let fractions = Self.nearestFractions(samples, means: mixture.components.map(\.mean))
            arrays["\(name)_samples"] = samples
            arrays["\(name)_mode_fractions"] = Tensor(fractions)
            metrics["\(name)_weight_error"] = (zip(fractions, mixture.weights).map { abs($0 - $1) }.max()!, "largest |fraction of samples nearest a mode − its weight|")
        }
        return Result(model: model, metrics: metrics, stepLoss: trained.stepLoss, stepSeconds: trained.stepSeconds, arrays: arrays)
    }

    /// The fraction of rows of `x` nearest each mean.
    static func nearestFractions(_ x: Tensor, means: [[Double]]) -> [Double] {
        var counts = [Double](repeating: 0, count: means.count)
        let d = x.shape[1]
        for n in 0..<x.shape[0] {
            let distances = means.map { mu in (0..<d).map { j in (x.scalars[n * d + j] - mu[j]) * (x.scalars[n * d + j] - mu[j]) }.reduce(0, +) }
            counts[distances.firstIndex(of: distances.min()!)!] += 1
        }
        return counts.map { $0 / Double(x.shape[0]) }
    }

    /// k points from −4 to 4.
    static func axis(_ k: Int, halfWidth h: Double) -> Tensor { Tensor((0..<k).map { -h + 2 * h * Double($0) / Double(k - 1) }) }

    /// The k × k grid of `axis(k)`, row-major in (y, x): point i·k + j is (axis[j], axis[i]).
    static func grid(_ k: Int, halfWidth h: Double) -> Tensor {
        let a = axis(k, halfWidth: h).scalars
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
        case let conditional as NoiseConditionalScoreNetwork: names = conditional.network.parameterNames
        default: names = model.parameters.indices.map { "parameter\($0)" }
        }
        for (name, parameter) in zip(names, model.parameters) { try checkpoint.write(name, doubles: parameter.scalars, shape: parameter.shape) }
    }
}

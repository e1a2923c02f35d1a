import Autodiff
import Foundation
import GSLNumerics
import NeuralModels
import Objectives
import Training

/// How figure 6's score networks are fitted to M samples: an MLP s_θ: R^D → R^D (NCSN's toy score
/// network, 128 × 128 softplus, by default), Adam with the gradient norm clipped, minibatches from
/// the M samples for a fixed budget of steps, the same for every estimator and every M (so the
/// comparison is at equal samples and equal steps).
public struct NetworkFitSettings: Codable, Equatable, Sendable {
    public var hidden = [128, 128]
    public var activation = MLP.Activation.softplus.rawValue
    /// Optimiser steps: epochs = ⌈steps / ⌈M / batch⌉⌉ over the samples (exactly `steps` when
    /// ⌈M / batch⌉ divides it, as for M = 100, 300, 1000, 3000 at batch 100 and 3000 steps).
    public var steps = 3000
    public var batchSize = 100
    public var learningRate = 1e-3
    public var clipNorm = 100.0
    /// SSM's and SSM-VR's projection law and count per point.
    public var projection = Projection.gaussian.rawValue
    public var projections = 1
    /// DSM's σ candidates, as factors of the samples' scale s̄ = √(mean of the per-coordinate
    /// sample variances); σ is chosen among them by the held-out criterion.
    public var dsmSigmaFactors = [0.03, 0.1, 0.3, 1.0]
    /// FSM's displacement ε as a factor of s̄.
    public var fsmEpsilonFactor = 0.1

    public init() {}

    /// Throws `ScoreEstimationError.invalidSetting` naming the setting.
    public func validate() throws {
        func check(_ ok: Bool, _ key: String, _ reason: String) throws { if !ok { throw ScoreEstimationError.invalidSetting(key, reason) } }
        try check(!hidden.isEmpty && hidden.allSatisfy { $0 >= 1 }, "hidden", "must be a non-empty list of widths ≥ 1, got \(hidden)")
        try check(MLP.Activation(rawValue: activation) != nil, "activation",
                  "must be one of \(MLP.Activation.allCases.map(\.rawValue).joined(separator: ", ")), got '\(activation)'")
        try check(steps >= 1, "steps", "must be ≥ 1, got \(steps)")
        try check(batchSize >= 1, "batch_size", "must be ≥ 1, got \(batchSize)")
        try check(learningRate.isFinite && learningRate > 0, "learning_rate", "must be finite and > 0, got \(learningRate)")
        try check(clipNorm.isFinite && clipNorm > 0, "clip_norm", "must be finite and > 0, got \(clipNorm)")
        try check(Projection(rawValue: projection) != nil, "projection",
                  "must be one of \(Projection.allCases.map(\.rawValue).joined(separator: ", ")), got '\(projection)'")
        try check(projections >= 1, "projections", "must be ≥ 1, got \(projections)")
        try check(!dsmSigmaFactors.isEmpty && dsmSigmaFactors.allSatisfy { $0.isFinite && $0 > 0 }, "dsm_sigma_factors",
                  "must be a non-empty list of finite numbers > 0, got \(dsmSigmaFactors)")
        try check(fsmEpsilonFactor.isFinite && fsmEpsilonFactor > 0, "fsm_epsilon_factor", "must be finite and > 0, got \(fsmEpsilonFactor)")
    }

    /// The training settings for M samples.
    func training(samples m: Int) -> NetworkTrainingSettings {
        var t = NetworkTrainingSettings()
        t.trainCount = m
        t.testCount = 1
        t.batchSize = min(batchSize, m)
        let batches = (m + t.batchSize - 1) / t.batchSize
        t.epochs = (steps + batches - 1) / batches
        t.learningRate = learningRate
        t.clipNorm = clipNorm
        return t
    }
}

/// s̄ = √(mean over coordinates of the sample variance) of samples `[M, D]`: the scale DSM's σ
/// and FSM's ε are set against (from the samples only).
public func sampleScale(_ samples: Tensor) -> Double {
    let (m, d) = (samples.shape[0], samples.shape[1])
    var total = 0.0
    for c in 0..<d {
        var (mean, square) = (0.0, 0.0)
        for i in 0..<m { mean += samples.scalars[i * d + c] }
        mean /= Double(m)
        for i in 0..<m { let r = samples.scalars[i * d + c] - mean; square += r * r }
        total += square / Double(max(m - 1, 1))
    }
    return (total / Double(d)).squareRoot()
}

/// A score network fitted to samples, with what it cost and how DSM's σ was chosen.
public struct NetworkFit {
    public let method: Estimator
    public let network: ScoreNetwork
    /// DSM's chosen σ (nil for the others) and FSM's ε.
    public let sigma: Double?
    public let epsilon: Double?
    /// Seconds of the chosen network's training.
    public let fitSeconds: Double
    /// Seconds of every candidate's training and criterion (DSM's σ search; for the others the
    /// one training).
    public let selectionSeconds: Double
    public let steps: Int
    /// The held-out criterion J of the chosen network, and each σ candidate's (DSM).
    public let heldOutCriterion: Double
    public let candidates: [(sigma: Double, criterion: Double)]
    /// The chosen training's loss at every step.
    public let stepLoss: [Double]
}

/// Trains a score network by `method` on samples `[M, D]`; DSM's σ is chosen by `criterion`.
/// Every candidate starts from the same initial weights and the same stream state (`seed`).
/// - Throws: `ScoreEstimationError.invalidSetting` for an estimator a score network cannot take
///   (DEEN needs an energy; CP and Approx BP a layered model), before any training;
///   `TrainingError.nonFinite` for a training that became NaN (DSM: only if every σ did).
public func fitScoreNetwork(_ method: Estimator, samples: Tensor, criterion: HeldOutCriterion, settings: NetworkFitSettings,
                            seed: UInt64, progress: @escaping (String) -> Void = { _ in }) throws -> NetworkFit {
    guard !method.needsLogDensity, !method.needsLayeredModel else {
        throw ScoreEstimationError.invalidSetting("method", "\(method.rawValue) cannot train a score network (it needs \(method.needsLogDensity ? "a log-density" : "a layered model"))")
    }
    try settings.validate()
    let (m, d) = (samples.shape[0], samples.shape[1])
    let scale = sampleScale(samples)
    let training = settings.training(samples: m)
    let activation = try MLP.Activation(named: settings.activation)
    let projection = try Projection(named: settings.projection)
    let epsilon = method == .fsm ? settings.fsmEpsilonFactor * scale : nil
    let sigmas: [Double?] = method == .dsm ? settings.dsmSigmaFactors.map { $0 * scale } : [nil]
    var best: (sigma: Double?, criterion: Double, network: ScoreNetwork, seconds: Double, losses: [Double])? = nil
    var candidates: [(sigma: Double, criterion: Double)] = []
    var lastError: Error? = nil
    let start = DispatchTime.now().uptimeNanoseconds
    for sigma in sigmas {
        let stream = RandomStream(seed: seed)
        let network = try ScoreNetwork(dimension: d, hidden: settings.hidden, activation: activation, using: stream)
        let objective = try method.objective(ObjectiveSettings(projection: projection, projectionCount: settings.projections,
                                                                sigma: sigma ?? 0.1, epsilon: epsilon ?? 0.1))
        var trainer = try NetworkTrainer(model: network, objective: objective, settings: training)
        trainer.progress = { line in progress((sigma.map { String(format: "σ = %.3g: ", $0) } ?? "") + line) }
        let trainStart = DispatchTime.now().uptimeNanoseconds
        let result: NetworkTrainer.Result
        do { result = try trainer.run(on: samples, using: stream) } catch {
            // A σ whose training diverges is a failed candidate; the only one is the cell's failure.
            lastError = error
            if let sigma { candidates.append((sigma, .infinity)) }
            continue
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - trainStart) / 1e9
        let trained = result.model as! ScoreNetwork
        let value = (try? criterion.value(of: trained)) ?? .infinity
        if let sigma { candidates.append((sigma, value)) }
        if best == nil || value < best!.criterion { best = (sigma, value, trained, seconds, result.stepLoss) }
    }
    guard let best else { throw lastError ?? ScoreEstimationError.noCandidate("no \(method.rawValue) training finished") }
    return NetworkFit(method: method, network: best.network, sigma: best.sigma, epsilon: epsilon, fitSeconds: best.seconds,
                      selectionSeconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, steps: training.steps,
                      heldOutCriterion: best.criterion, candidates: candidates, stepLoss: best.losses)
}

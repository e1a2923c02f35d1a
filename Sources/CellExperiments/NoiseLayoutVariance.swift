import GridExecution
import ExperimentGrid
import Autodiff
import DKEFModel
import Foundation
import GSLNumerics
import Objectives
import Training

/// Issue 17's measurement: how much CP's estimates scatter under each noise layout
/// (`CurvaturePropagationNoise`) on a trained DKEF, against the exact values.
///
/// For a model with its α fixed, points x `[N, D]` and draws s = 1…S (the same CP seeds for both
/// layouts), with T̂ₛ(xₙ) CP's estimate of tr ∇ₓ² log p̃(xₙ), ĝₛ the gradient in θ (every network
/// and kernel parameter) of the CP objective (1/N) Σₙ ½‖s(xₙ)‖² + T̂ₛ(xₙ), and T, g their exact
/// counterparts (exact score matching's trace and gradient):
///
///     trace variance   = (1/N) Σₙ Var_s T̂ₛ(xₙ)          (sample variance over draws, mean over points)
///     trace bias / SE  = max over n of |mean_s T̂ₛ(xₙ) − T(xₙ)| / SE   (≈ N(0,1)-sized if unbiased)
///     gradient MSE     = (1/S) Σₛ ‖ĝₛ − g‖²
///     gradient norm    = mean and standard deviation over s of ‖ĝₛ‖
///
/// α stays at the checkpoint's value: the layouts differ only in the objective's trace term (CP's α
/// system draws per pair in both), so this is the part of a training step's gradient where they
/// differ.
public enum NoiseLayoutVariance {
    public struct Row: Sendable {
        public var layout: CurvaturePropagationNoise
        public var traceVariance: Double
        public var traceBiasOverSE: Double
        public var gradientMSE: Double
        public var gradientNormMean: Double
        public var gradientNormSD: Double
        public var exactGradientNorm: Double
        public var secondsPerDraw: Double
    }

    /// Both layouts' rows for `model` with `alpha` at the points x, over `draws` CP seeds drawn from
    /// `seed`.
    public static func measure(model: DKEF, alpha: Tensor, at x: Tensor, draws: Int, seed: UInt64,
                               layouts: [CurvaturePropagationNoise] = CurvaturePropagationNoise.allCases) throws -> [Row] {
        precondition(draws >= 2, "NoiseLayoutVariance: needs at least 2 draws")
        var model = model
        model.parameters = model.parameters.map { $0.detached().requiringGradient() }
        let density = model.density(alpha: alpha.detached())
        let (exactTrace, exactGradient) = try estimate(ScoreMatching.exact, density, model, x, noise: .none)
        let seeds = RandomStream(seed: seed)
        let noises = (0..<draws).map { _ in ObjectiveNoise(curvatureSeed: UInt64(seeds.integer(below: Int(Int32.max)))) }
        return try layouts.map { layout in
            let objective = ScoreMatching.curvaturePropagation(layout: layout)
            let start = Date()
            var traces: [[Double]] = [], gradients: [[Double]] = []
            for noise in noises {
                let (t, g) = try estimate(objective, density, model, x, noise: noise)
                traces.append(t)
                gradients.append(g)
            }
            let seconds = Date().timeIntervalSince(start) / Double(draws)
            let n = x.shape[0], s = Double(draws)
            var variance = 0.0, worstBias = 0.0
            for i in 0..<n {
                let values = traces.map { $0[i] }
                let mean = values.reduce(0, +) / s
                let v = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (s - 1)
                variance += v / Double(n)
                worstBias = max(worstBias, abs(mean - exactTrace[i]) / max((v / s).squareRoot(), 1e-300))
            }
            let norms = gradients.map { norm($0) }
            let normMean = norms.reduce(0, +) / s
            let normSD = (norms.map { ($0 - normMean) * ($0 - normMean) }.reduce(0, +) / (s - 1)).squareRoot()
            var mse = 0.0
            for g in gradients {
                for (a, b) in zip(g, exactGradient) { mse += (a - b) * (a - b) }
            }
            mse /= s
            return Row(layout: layout, traceVariance: variance, traceBiasOverSE: worstBias, gradientMSE: mse,
                       gradientNormMean: normMean, gradientNormSD: normSD, exactGradientNorm: norm(exactGradient), secondsPerDraw: seconds)
        }
    }

    /// The objective's trace term per point and its parameter gradient, flattened.
    static func estimate(_ objective: any ScoreObjective, _ density: DKEF.Density, _ model: DKEF, _ x: Tensor,
                         noise: ObjectiveNoise) throws -> (trace: [Double], gradient: [Double]) {
        let value = try objective.evaluate(density, at: x, noise: noise, createGraph: true)
        guard let trace = value.terms.linear else { preconditionFailure("score matching has a trace term") }
        let g = Autodiff.gradients(of: value.value, with: model.parameters)
        return (trace.detached().scalars, g.flatMap(\.scalars))
    }

    static func norm(_ v: [Double]) -> Double { v.map { $0 * $0 }.reduce(0, +).squareRoot() }
}

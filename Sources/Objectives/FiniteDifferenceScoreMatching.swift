import Autodiff
import Foundation
import GSLNumerics

/// Finite-difference sliced score matching, FD-SSM (Pang, Xu, Li, Song, Ermon & Zhu 2020; the form
/// of `efficient_score_matching_conjugate` in their code): sliced score matching with projections
/// v on the sphere of radius √D (E[v vᵀ] = I) and both directional derivatives of f = log p̃
/// replaced by central differences along v with step h = ε/√D (a displacement of length ε):
///
///     vᵀs ≈ (f₊ − f₋) / (2h),   vᵀ∇ₓ²f v ≈ (f₊ − 2f + f₋) / h²,   f± = f(x ± h v),
///     ℓ(x) = ½ (vᵀs)² + vᵀ∇ₓ²f v = (D/ε²) [ (f₊ − f₋)²/8 + f₊ + f₋ − 2f ],
///
/// averaged over n projections per point. Both differences are O(h²) from the derivatives, so ℓ
/// tends to SSM's with the same v as ε → 0 (tested). It needs values of f only (no derivative in
/// x), so its parameter gradient is one first-order reverse pass. Linear in f: terms residual
/// (f₊ − f₋)/(2h√n) `[N, n]`, linear term the mean of (f₊ − 2f + f₋)/h² `[N]`.
public struct FiniteDifferenceScoreMatching: ScoreObjective {
    /// ε, the length of each displacement.
    public var epsilon: Double
    public var count: Int

    /// - Throws: `ObjectiveError.invalidEpsilon` unless ε is finite and > 0,
    ///   `ObjectiveError.invalidProjectionCount` for n < 1.
    public init(epsilon: Double = 0.1, count: Int = 1) throws {
        guard epsilon > 0, epsilon.isFinite else { throw ObjectiveError.invalidEpsilon(epsilon) }
        guard count >= 1 else { throw ObjectiveError.invalidProjectionCount(count) }
        self.epsilon = epsilon
        self.count = count
    }

    public var name: String { Estimator.fsm.rawValue }
    public var description: String { "fsm: SSM by central differences of log p̃, v on the √D sphere, ε = \(epsilon), \(count) per point" }

    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise {
        ObjectiveNoise(projections: Projection.sphere.draw(count: count, points: points, dimension: dimension, using: stream))
    }

    /// Blocks [x; x + h v₁ … x + h vₙ; x − h v₁ … x − h vₙ]; residual j = (f₊ⱼ − f₋ⱼ)/(2h√n),
    /// linear = Σⱼ (f₊ⱼ + f₋ⱼ)/(h²n) − 2f/h².
    public func valueForm(at x: Tensor, noise: ObjectiveNoise) -> ValueForm? {
        guard let v = noise.projections, v.rank == 3, v.shape[1] == x.shape[0], v.shape[2] == x.shape[1] else { return nil }
        let n = v.shape[0]
        let h = epsilon / Double(x.shape[1]).squareRoot()
        let point = x.detached(), step = v * h
        let shifted = (0..<n).map { point + step.select($0, alongAxis: 0) } + (0..<n).map { point - step.select($0, alongAxis: 0) }
        let blocks = 1 + 2 * n
        let c = 1 / (2 * h * Double(n).squareRoot())
        let residual = (0..<n).map { j -> [Double] in
            var w = [Double](repeating: 0, count: blocks)
            w[1 + j] = c
            w[1 + n + j] = -c
            return w
        }
        let linear = [-2 / (h * h)] + [Double](repeating: 1 / (h * h * Double(n)), count: 2 * n)
        return ValueForm(points: Tensor.concatenate([point] + shifted, alongAxis: 0), blocks: blocks,
                         residualWeights: residual, linearWeights: linear)
    }

    /// A log-density: its values at the shifted points (`valueForm`). A score network, which has
    /// no values: Pang et al.'s form for score models, central differences of vᵀs along v,
    ///
    ///     vᵀs ≈ (vᵀs₊ + vᵀs₋)/2,   vᵀ∇ₓs v ≈ (vᵀs₊ − vᵀs₋)/(2h),   s± = s(x ± h v),
    ///
    /// both O(h²) from the derivatives (so it too tends to SSM's with the same v), residual
    /// (vᵀs₊ + vᵀs₋)/(2√n) `[N, n]`, linear term the mean of (vᵀs₊ − vᵀs₋)/(2h) `[N]`.
    public func terms(of model: any ScoreFunction, at x: Tensor, noise: ObjectiveNoise, createGraph: Bool) throws -> ObjectiveTerms {
        guard let form = valueForm(at: x, noise: noise) else {
            throw ObjectiveError.badBatch(shape: noise.projections?.shape ?? [], expected: "projections [n, \(x.shape[0]), \(x.shape[1])]")
        }
        if let density = model as? any LogDensityFunction {
            let (residual, linear) = form.combine(density.logDensity(form.points))
            return ObjectiveTerms(residual: residual, linear: linear)
        }
        let v = noise.projections!, n = v.shape[0], points = x.shape[0]
        let h = epsilon / Double(x.shape[1]).squareRoot()
        // The blocks x + h vⱼ (j < n) and x − h vⱼ of the value form, scored in one call.
        let s = model.modelScore(at: form.points.slice(points..<((1 + 2 * n) * points), alongAxis: 0))
        let projected = (s * Tensor.concatenate([v, v], alongAxis: 0).reshaped([2 * n * points, x.shape[1]])).sum(alongAxis: 1)
        let plus = projected.slice(0..<(n * points), alongAxis: 0).reshaped([n, points])
        let minus = projected.slice((n * points)..<(2 * n * points), alongAxis: 0).reshaped([n, points])
        let residual = ((plus + minus) * (0.5 / Double(n).squareRoot())).transposed()
        let linear = ((plus - minus) * (0.5 / (h * Double(n)))).sum(alongAxis: 0)
        return ObjectiveTerms(residual: residual, linear: linear)
    }
}

import Autodiff
import Foundation
import GSLNumerics

/// Sliced score matching (Song et al. 2019, eq. 7), n projections per point:
///
///     ℓ(x) = (1/n) Σⱼ [ ½ (vⱼᵀ s(x))² + vⱼᵀ ∇ₓ s(x) vⱼ ],
///
/// unbiased for exact score matching because E[v vᵀ] = I. Each vⱼᵀ∇ₓs vⱼ is a Hessian-vector
/// product (one backward pass). Terms: residual (vⱼᵀ s)/√n `[N, n]` (so ½‖r‖² is the mean of the
/// ½ (vⱼᵀs)²), linear term the mean of vⱼᵀ∇ₓs vⱼ `[N]`.
public struct SlicedScoreMatching: ScoreObjective {
    public var projection: Projection
    public var count: Int

    public init(projection: Projection = .rademacher, count: Int = 1) throws {
        guard count >= 1 else { throw ObjectiveError.invalidProjectionCount(count) }
        self.projection = projection
        self.count = count
    }

    public var name: String { Estimator.ssm.rawValue }
    public var description: String { "ssm: ½(vᵀs)² + vᵀ∇s v, v \(projection.rawValue), \(count) per point" }

    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise {
        ObjectiveNoise(projections: projection.draw(count: count, points: points, dimension: dimension, using: stream))
    }

    /// Residual (vⱼᵀs)/√n and linear term (1/n) Σⱼ vⱼᵀ∇ₓs vⱼ.
    public func directionalForm(noise: ObjectiveNoise) -> DirectionalForm? {
        let v = noise.projections!.permuted([1, 0, 2])  // [N, n, D]
        let n = Double(v.shape[1])
        return DirectionalForm(first: .given(v), firstScale: 1 / n.squareRoot(), curvature: .sum(.given(v), weight: 1 / n))
    }

    public func terms(of model: any ScoreFunction, at x: Tensor, noise: ObjectiveNoise, createGraph: Bool) throws -> ObjectiveTerms {
        directionalForm(noise: noise)!.terms(of: model, at: x, createGraph: createGraph)
    }
}

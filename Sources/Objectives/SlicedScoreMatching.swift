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

    public func terms(of logDensity: any LogDensityFunction, at x: Tensor, noise: ObjectiveNoise, createGraph: Bool) throws -> ObjectiveTerms {
        let v = noise.projections!
        let leaf = x.requiringGradient()
        let s = score(of: logDensity, at: leaf)
        var slices: [Tensor] = [], quadratic: Tensor? = nil
        for j in 0..<v.shape[0] {
            let vj = v.select(j, alongAxis: 0)
            let sv = s * vj
            slices.append(sv.sum(alongAxis: 1))
            let hv = gradient(of: sv.sum(), with: leaf, createGraph: createGraph)
            let q = (hv * vj).sum(alongAxis: 1)
            quadratic = quadratic.map { $0 + q } ?? q
        }
        let n = Double(v.shape[0])
        return ObjectiveTerms(residual: Tensor.stack(slices, alongAxis: 1) / n.squareRoot(), linear: quadratic! / n)
    }
}

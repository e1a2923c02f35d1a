import Autodiff
import GSLNumerics
import KernelEstimators
import Objectives

/// The held-out criterion that chooses every hyperparameter of figure 6 (the kernels' η,
/// bandwidth and eigenvalue cut; DSM's σ) without the exact score: the score-matching objective
///
///     J(ŝ) = E_q[½‖ŝ(x)‖² + tr ∇ₓŝ(x)] = ½ E_q‖ŝ(x) − ∇log q(x)‖² − ½ E_q‖∇log q(x)‖²
///
/// (Hyvärinen's identity: the Fisher divergence up to a constant that does not depend on ŝ) on
/// held-out samples of q. ŝ is a black box (a kernel estimate or a network), so the trace is FSM's
/// score-only form (Pang et al.): with v on the √D sphere (E[vvᵀ] = I) and s± = ŝ(x ± hv),
/// h = ε/√D, the per-point term ½((vᵀs₊ + vᵀs₋)/2)² + (vᵀs₊ − vᵀs₋)/(2h), O(h²) from J's, averaged
/// over `projections` directions per point. The directions are drawn once, so every candidate is
/// scored on the same draws (common random numbers: the differences between candidates carry
/// less noise than the values).
public struct HeldOutCriterion {
    public let points: Tensor
    let objective: FiniteDifferenceScoreMatching
    let noise: ObjectiveNoise

    /// - Parameters: points `[N, D]` from q (never the training samples); ε the displacement
    ///   length; the directions from `stream`.
    public init(points: Tensor, projections: Int, epsilon: Double, using stream: RandomStream) throws {
        guard points.rank == 2, points.shape[0] >= 1, points.shape[1] >= 1 else {
            throw ObjectiveError.badBatch(shape: points.shape, expected: "held-out points [N, D] with N, D ≥ 1")
        }
        self.points = points
        objective = try FiniteDifferenceScoreMatching(epsilon: epsilon, count: projections)
        noise = objective.drawNoise(points: points.shape[0], dimension: points.shape[1], using: stream)
    }

    /// J(ŝ) on the held-out points. Throws `ObjectiveError.nonFinite` for a score that is not
    /// finite there.
    public func value(of score: any ScoreFunction) throws -> Double {
        try objective.evaluate(score, at: points, noise: noise, createGraph: false).value.scalar
    }
}

/// A fitted kernel estimate as a score function (a constant: no parameters, no graph).
public struct KernelScoreFunction: ScoreFunction {
    public let estimate: any KernelScoreEstimate

    public init(_ estimate: any KernelScoreEstimate) { self.estimate = estimate }

    /// ŝ at the rows of x; NaN for points the estimate refuses (a wrong width, non-finite
    /// points), which every caller's finiteness check then reports.
    public func modelScore(at x: Tensor) -> Tensor {
        (try? estimate.scores(at: x.detached())) ?? Tensor(repeating: .nan, shape: x.shape)
    }
}

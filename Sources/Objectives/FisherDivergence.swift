import Autodiff
import GSLNumerics

/// The Fisher divergence of the model from a reference density on a sample (the paper's "SM loss"):
///
///     F = ½ E_x ‖s(x) − s_d(x)‖²,   s the model's score (∇ₓ log p̃, or a score network's),
///     s_d = ∇ₓ log p_d (exact, from GSLNumerics),
///
/// estimated by the mean over the rows of x. Returns the mean and the per-sample values.
/// By Hyvärinen's identity F = J(θ) + ½ E‖s_d‖² in expectation, J the score-matching objective;
/// for N(0, I) data ½ E‖s_d‖² = D/2.
public func fisherDivergence(of model: any ScoreFunction, from reference: some ReferenceDistribution,
                             at x: Tensor) throws -> (mean: Double, perSample: Tensor) {
    guard x.rank == 2, x.shape[0] > 0, x.shape[1] == reference.dimension else {
        throw ObjectiveError.badBatch(shape: x.shape, expected: "[N, \(reference.dimension)] with N ≥ 1")
    }
    return try fisherDivergence(of: model, targetScores: try reference.score(x), at: x)
}

/// The same with the reference's scores at x already computed (`[N, D]`), for a reference whose
/// score is costly (2spirals' quadrature) and test points shared by several models.
public func fisherDivergence(of model: any ScoreFunction, targetScores target: Tensor, at x: Tensor) throws -> (mean: Double, perSample: Tensor) {
    guard x.rank == 2, x.shape[0] > 0, target.shape == x.shape else {
        throw ObjectiveError.badBatch(shape: target.shape, expected: "the points' shape \(x.shape)")
    }
    let s = GradientMode.$isRecording.withValue(true) { model.modelScore(at: x.detached().requiringGradient()) }.detached()
    let perSample = withoutGradients { (s - target).square().sum(alongAxis: 1) * 0.5 }
    let mean = perSample.mean().scalar
    guard mean.isFinite else { throw ObjectiveError.nonFinite(what: "the Fisher divergence") }
    return (mean, perSample)
}

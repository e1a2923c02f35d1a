import Autodiff

/// A nonparametric score estimator: given M samples x₁ … x_M of an unknown density q, it returns
/// an estimate ŝ(y) ≈ ∇ log q(y) at query points, with no model and no training.
///
/// Both estimators here (Stein, `SteinScoreEstimator`; spectral, `SpectralScoreEstimator`) rest on
/// Stein's identity E_q[h(x) ∇log q(x)ᵀ + ∇h(x)] = 0 for test functions h that vanish at infinity,
/// with h built from the RBF kernel k(x, y) = exp(−‖x − y‖² / (2h²)) on the samples. They are not
/// score-matching objectives (nothing is minimised over parameters), so they have this protocol of
/// their own instead of `ScoreObjective`.
///
/// `fit` does the O(M²D) kernel work and the O(M³) factorisation once; the estimate it returns
/// answers any number of query batches.
public protocol KernelScoreEstimator: Sendable {
    associatedtype Estimate: KernelScoreEstimate
    /// Fits on samples `[M, D]` (M ≥ 2, finite). Throws before any O(M³) work for bad input.
    func fit(_ samples: Tensor) throws(KernelEstimatorError) -> Estimate
}

/// A fitted kernel score estimate.
public protocol KernelScoreEstimate: Sendable {
    /// The samples it was fitted on, `[M, D]`.
    var samples: Tensor { get }
    /// The RBF bandwidth h used.
    var bandwidth: Double { get }
    /// ŝ at the samples themselves, `[M, D]` (the in-sample estimate).
    var sampleScores: Tensor { get }
    /// ŝ at query points `[N, D]`, `[N, D]` (the out-of-sample estimate: each query point is
    /// treated on its own, so the estimate at a point does not depend on the other query points).
    func scores(at points: Tensor) throws(KernelEstimatorError) -> Tensor
}

/// How the RBF bandwidth h is chosen.
public enum BandwidthRule: Sendable, Equatable {
    /// The authors' heuristic (`heuristic_kernel_width` in their kernel_score_estimators.py): the
    /// ⌊M²/2⌋-th largest of the M² distances ‖xᵢ − xⱼ‖ between the samples, self-distances 0
    /// included — the median of the pairwise distances, counting each pair twice.
    case medianDistance
    /// The median heuristic's h times a factor (held-out selection searches over these).
    case scaledMedian(Double)
    /// A fixed h > 0.
    case fixed(Double)

    /// h for samples `[M, D]`.
    public func bandwidth(for samples: Tensor) throws(KernelEstimatorError) -> Double {
        let (m, d) = try checkedSamples(samples)
        return try bandwidth(squaredDistances: samples.scalars.withUnsafeBufferPointer { squaredDistances($0, count: m, dimension: d) }, samples: samples)
    }

    /// h from the samples' squared distances `[M·M]` (`squaredDistances`), which a fit shares
    /// with its kernel matrix.
    func bandwidth(squaredDistances s: [Double], samples: Tensor) throws(KernelEstimatorError) -> Double {
        switch self {
        case .fixed(let h):
            guard h.isFinite, h > 0 else { throw .bandwidthNotPositive(h) }
            return h
        case .medianDistance:
            return try medianPairwiseDistance(squared: s, samples: samples)
        case .scaledMedian(let factor):
            guard factor.isFinite, factor > 0 else { throw .bandwidthNotPositive(factor) }
            return try factor * medianPairwiseDistance(squared: s, samples: samples)
        }
    }
}

/// Bad input to a kernel estimator, refused with what is wrong and what is allowed.
public enum KernelEstimatorError: Error, Equatable, CustomStringConvertible {
    case tooFewSamples(Int)
    case badShape(String)
    case nonFiniteInput(String)
    case bandwidthNotPositive(Double)
    case coincidentSamples
    case regularisationNegative(Double)
    case eigenvalueThresholdOutOfRange(Double)
    case eigenvalueCountOutOfRange(count: Int, samples: Int)
    case singularKernelMatrix(eta: Double)
    case factorisationFailed(String)

    public var description: String {
        switch self {
        case .tooFewSamples(let m):
            return "a kernel score estimator needs at least 2 samples, got \(m)"
        case .badShape(let what):
            return what
        case .nonFiniteInput(let what):
            return "\(what) holds NaN or infinite values"
        case .bandwidthNotPositive(let h):
            return "the kernel bandwidth must be finite and > 0, got \(h)"
        case .coincidentSamples:
            return "the median pairwise distance of the samples is 0 (at least half of the sample pairs coincide); "
                + "give a fixed bandwidth or samples with distinct points"
        case .regularisationNegative(let eta):
            return "the regulariser η must be finite and ≥ 0, got \(eta)"
        case .eigenvalueThresholdOutOfRange(let t):
            return "the eigenvalue threshold (fraction of the spectrum kept) must be in (0, 1], got \(t)"
        case .eigenvalueCountOutOfRange(let count, let m):
            return "the eigenvalue count must be in 1...\(m) (the number of samples), got \(count)"
        case .singularKernelMatrix(let eta):
            return "K + ηI (η = \(eta)) is singular, or numerically so (reciprocal condition number below machine ε): "
                + "duplicate or nearly duplicate samples make the kernel matrix singular; use η > 0 (the authors' 0.001)"
        case .factorisationFailed(let what):
            return what
        }
    }
}

/// Checks samples `[M, D]` (M ≥ 2, D ≥ 1, finite) and returns (M, D).
func checkedSamples(_ samples: Tensor) throws(KernelEstimatorError) -> (m: Int, d: Int) {
    guard samples.rank == 2 else { throw .badShape("samples must be a matrix [M, D], got shape \(samples.shape)") }
    let (m, d) = (samples.shape[0], samples.shape[1])
    guard m >= 2 else { throw .tooFewSamples(m) }
    guard d >= 1 else { throw .badShape("samples must have at least one coordinate, got shape \(samples.shape)") }
    guard samples.isFinite else { throw .nonFiniteInput("the samples") }
    return (m, d)
}

/// Checks query points `[N, D]` against the fitted dimension.
func checkedQueries(_ points: Tensor, dimension d: Int) throws(KernelEstimatorError) -> Int {
    guard points.rank == 2, points.shape[1] == d else {
        throw .badShape("query points must be [N, \(d)] (the samples' dimension), got shape \(points.shape)")
    }
    guard points.isFinite else { throw .nonFiniteInput("the query points") }
    return points.shape[0]
}

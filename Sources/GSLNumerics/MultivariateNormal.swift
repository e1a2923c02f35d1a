import Autodiff
import CGSL

/// Reference distributions with exact log-density and exact score ∇ₓ log p(x).
public protocol ReferenceDistribution {
    /// Dimension D of the sample space.
    var dimension: Int { get }
    /// log p(x) for each row of x `[N, D]` → `[N]`.
    func logDensity(_ x: Tensor) throws -> Tensor
    /// ∇ₓ log p(x) for each row of x `[N, D]` → `[N, D]`.
    func score(_ x: Tensor) throws -> Tensor
    /// N independent draws, `[N, D]`.
    func sample(_ count: Int, using stream: RandomStream) -> Tensor
    /// The same family spread c > 0 times wider: for a unimodal distribution the law of
    /// μ + c(X − μ), density c^{−D} p(μ + (x − μ)/c); for a mixture each component about its own
    /// mean. Importance sampling of log Z draws from the target widened (c = 2 by default), a
    /// proposal that covers the target, and a model close to it, in every direction.
    func widened(by factor: Double) throws -> any ReferenceDistribution
}

extension ReferenceDistribution {
    /// Throws unless x is `[N, D]`, naming the distribution and the operation.
    func checkRows(_ x: Tensor, _ op: String) throws {
        guard x.rank == 2, x.shape[1] == dimension else {
            throw GSLError.invalidArgument("\(Self.self).\(op): x has shape \(x.shape), expected [N, \(dimension)]")
        }
    }

    /// Throws unless a widening factor is finite and > 0.
    func checkWidening(_ factor: Double) throws {
        guard factor > 0, factor.isFinite else {
            throw GSLError.invalidArgument("\(Self.self).widened: the factor must be finite and > 0, got \(factor)")
        }
    }
}

/// The multivariate normal N(μ, Σ), through GSL's Cholesky factor Σ = L Lᵀ.
///
/// log p(x) = −½ (x−μ)ᵀ Σ⁻¹ (x−μ) − ½ log det(2π Σ)  (GSL `gsl_ran_multivariate_gaussian_log_pdf`);
/// ∇ₓ log p(x) = −Σ⁻¹ (x − μ), with Σ⁻¹ from the Cholesky factor.
public final class MultivariateNormal: ReferenceDistribution {
    public let mean: [Double]
    /// Σ, `[D, D]`.
    public let covariance: Tensor
    /// Σ⁻¹, `[D, D]`.
    public let precision: Tensor
    public var dimension: Int { mean.count }
    private let cholesky: UnsafeMutablePointer<gsl_matrix>
    private let meanVector: UnsafeMutablePointer<gsl_vector>
    private let work: UnsafeMutablePointer<gsl_vector>

    /// - Throws: `GSLError.invalidArgument` for mismatched sizes or non-finite entries,
    ///   `GSLError.notPositiveDefinite` when Σ has no Cholesky factor.
    public init(mean: [Double], covariance: Tensor) throws {
        ensureGSLErrorsReturn()
        let d = mean.count
        guard d > 0 else { throw GSLError.invalidArgument("MultivariateNormal: the mean is empty") }
        guard covariance.shape == [d, d] else {
            throw GSLError.invalidArgument("MultivariateNormal: covariance has shape \(covariance.shape), expected [\(d), \(d)] for a mean of length \(d)")
        }
        guard mean.allSatisfy(\.isFinite), covariance.isFinite else {
            throw GSLError.invalidArgument("MultivariateNormal: mean or covariance has a NaN or infinite entry")
        }
        for i in 0..<d { for j in 0..<i where covariance[i, j] != covariance[j, i] {
            throw GSLError.invalidArgument("MultivariateNormal: covariance is not symmetric at (\(i), \(j))")
        } }
        self.mean = mean
        self.covariance = covariance
        let l = gsl_matrix_alloc(d, d)!
        let mu = gsl_vector_alloc(d)!
        let w = gsl_vector_alloc(d)!
        cholesky = l; meanVector = mu; work = w
        for i in 0..<d {
            gsl_vector_set(mu, i, mean[i])
            for j in 0..<d { gsl_matrix_set(l, i, j, covariance.scalars[i * d + j]) }
        }
        guard gsl_linalg_cholesky_decomp1(l) == 0 else {
            precision = covariance
            throw GSLError.notPositiveDefinite(what: "MultivariateNormal covariance (\(d)×\(d))")
        }
        let inverse = gsl_matrix_alloc(d, d)!
        defer { gsl_matrix_free(inverse) }
        gsl_matrix_memcpy(inverse, l)
        try check(gsl_linalg_cholesky_invert(inverse), "gsl_linalg_cholesky_invert")
        var p = [Double](repeating: 0, count: d * d)
        for i in 0..<d { for j in 0..<d { p[i * d + j] = gsl_matrix_get(inverse, i, j) } }
        precision = Tensor(shape: [d, d], scalars: p)
    }

    /// N(0, I_D).
    public static func standard(dimension: Int) throws -> MultivariateNormal {
        var identity = [Double](repeating: 0, count: dimension * dimension)
        for i in 0..<dimension { identity[i * dimension + i] = 1 }
        return try MultivariateNormal(mean: [Double](repeating: 0, count: dimension),
                                      covariance: Tensor(shape: [dimension, dimension], scalars: identity))
    }

    /// N(μ, c² Σ).
    public func widened(by factor: Double) throws -> any ReferenceDistribution { try widenedNormal(by: factor) }

    /// N(μ, c² Σ), as its concrete type.
    public func widenedNormal(by factor: Double) throws -> MultivariateNormal {
        try checkWidening(factor)
        return try MultivariateNormal(mean: mean, covariance: Tensor(shape: covariance.shape, scalars: covariance.scalars.map { factor * factor * $0 }))
    }

    deinit {
        gsl_matrix_free(cholesky)
        gsl_vector_free(meanVector)
        gsl_vector_free(work)
    }

    public func logDensity(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "logDensity")
        let n = x.shape[0], d = dimension
        var out = [Double](repeating: 0, count: n)
        var row = x.scalars
        try row.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<n {
                var view = gsl_vector_view_array(buffer.baseAddress! + i * d, d)
                var result = 0.0
                try check(gsl_ran_multivariate_gaussian_log_pdf(&view.vector, meanVector, cholesky, &result, work),
                          "gsl_ran_multivariate_gaussian_log_pdf")
                out[i] = result
            }
        }
        return Tensor(out)
    }

    /// −(x − μ) Σ⁻¹ for each row (Σ⁻¹ is symmetric), one GEMM.
    public func score(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "score")
        return withoutGradients { -Tensor.matmul(x - Tensor(mean), precision) }
    }

    public func sample(_ count: Int, using stream: RandomStream) -> Tensor {
        let d = dimension
        var out = [Double](repeating: 0, count: count * d)
        out.withUnsafeMutableBufferPointer { buffer in
            for i in 0..<count {
                var view = gsl_vector_view_array(buffer.baseAddress! + i * d, d)
                _ = gsl_ran_multivariate_gaussian(stream.pointer, meanVector, cholesky, &view.vector)
            }
        }
        return Tensor(shape: [count, d], scalars: out)
    }
}

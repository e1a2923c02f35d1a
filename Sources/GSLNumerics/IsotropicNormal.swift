import Autodiff
import CGSL
import Foundation

/// The isotropic normal N(0, σ² I_D), stored as D and σ alone: no D × D matrix, so it serves any D
/// the data fit in memory (the dense `MultivariateNormal` needs 4 D² doubles: 320 GB at D = 10⁵).
///
/// log p(x) = −½‖x‖²/σ² − D log σ − (D/2) log 2π,   ∇ₓ log p(x) = −x/σ².
///
/// Computed as GSL computes `MultivariateNormal` with Σ = σ²I (its Cholesky factor is σI), in the
/// same order — draws z ~ N(0, 1) by `gsl_ran_ugaussian` coordinate by coordinate, then σz;
/// y = x/σ, ‖y‖² by BLAS ddot, log σ summed D times — so the two agree to the last bit when σ is a
/// power of two (σ = 1 for the data, σ = 2 for importance sampling; tested).
public final class IsotropicNormal: ReferenceDistribution {
    public let dimension: Int
    public let sigma: Double
    /// Σᵢ log σ, summed as GSL sums the log-diagonal of the Cholesky factor.
    private let logSqrtDeterminant: Double

    /// - Throws: `GSLError.invalidArgument` for D < 1 or σ not finite and > 0.
    public init(dimension: Int, sigma: Double = 1) throws {
        guard dimension >= 1 else { throw GSLError.invalidArgument("IsotropicNormal: dimension must be ≥ 1, got \(dimension)") }
        guard sigma > 0, sigma.isFinite else { throw GSLError.invalidArgument("IsotropicNormal: sigma must be finite and > 0, got \(sigma)") }
        ensureGSLErrorsReturn()
        self.dimension = dimension
        self.sigma = sigma
        var sum = 0.0
        for _ in 0..<dimension { sum += log(sigma) }
        logSqrtDeterminant = sum
    }

    public func logDensity(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "logDensity")
        let n = x.shape[0], d = dimension
        let constant = 0.5 * Double(d) * log(2 * Double.pi)
        var y = [Double](repeating: 0, count: d)
        var out = [Double](repeating: 0, count: n)
        x.scalars.withUnsafeBufferPointer { rows in
            for i in 0..<n {
                for j in 0..<d { y[j] = rows[i * d + j] / sigma }
                let quadratic = cblas_ddot(Int32(d), y, 1, y, 1)
                out[i] = -0.5 * quadratic - logSqrtDeterminant - constant
            }
        }
        return Tensor(out)
    }

    public func score(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "score")
        let precision = 1 / (sigma * sigma)
        return Tensor(shape: x.shape, scalars: x.scalars.map { -($0 * precision) })
    }

    /// N(0, (cσ)² I).
    public func widened(by factor: Double) throws -> any ReferenceDistribution {
        try checkWidening(factor)
        return try IsotropicNormal(dimension: dimension, sigma: factor * sigma)
    }

    public func sample(_ count: Int, using stream: RandomStream) -> Tensor {
        var out = [Double](repeating: 0, count: count * dimension)
        for i in out.indices { out[i] = sigma * gsl_ran_ugaussian(stream.pointer) }
        return Tensor(shape: [count, dimension], scalars: out)
    }
}

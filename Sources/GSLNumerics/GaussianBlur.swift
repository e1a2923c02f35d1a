import Autodiff
import Foundation

/// A distribution whose law blurred by Gaussian noise, X + σZ with Z ~ N(0, I) independent of X,
/// is again in closed form: p_σ = p ∗ N(0, σ²I).
///
/// Denoising score matching at noise σ (and DEEN, which is DSM scaled by σ⁴) is minimised by the
/// score of p_σ, not of p, so even a perfect fit keeps the Fisher divergence
/// ½ E_p ‖∇log p − ∇log p_σ‖² from the data's own score: DSM's floor at that σ
/// (`fisherDivergence(between:and:draws:using:)`).
public protocol GaussianBlurrable: ReferenceDistribution {
    /// The law of X + σZ. - Throws: `GSLError.invalidArgument` unless σ is finite and > 0.
    func blurred(by sigma: Double) throws -> any ReferenceDistribution
}

extension GaussianBlurrable {
    func checkBlur(_ sigma: Double) throws {
        guard sigma.isFinite, sigma > 0 else {
            throw GSLError.invalidArgument("\(Self.self).blurred: σ must be finite and > 0, is \(sigma)")
        }
    }
}

extension MultivariateNormal: GaussianBlurrable {
    /// N(μ, Σ + σ²I).
    public func blurred(by sigma: Double) throws -> any ReferenceDistribution { try blurredNormal(by: sigma) }

    func blurredNormal(by sigma: Double) throws -> MultivariateNormal {
        try checkBlur(sigma)
        var c = covariance.scalars
        for i in 0..<dimension { c[i * dimension + i] += sigma * sigma }
        return try MultivariateNormal(mean: mean, covariance: Tensor(shape: covariance.shape, scalars: c))
    }
}

extension GaussianMixture: GaussianBlurrable {
    /// Σₖ πₖ N(μₖ, Σₖ + σ²I): each component blurred, the weights kept.
    public func blurred(by sigma: Double) throws -> any ReferenceDistribution {
        try checkBlur(sigma)
        return try GaussianMixture(weights: weights, components: components.map { try $0.blurredNormal(by: sigma) })
    }
}

extension BlurredRings: GaussianBlurrable {
    /// The same rings with blur √(s² + σ²) (two independent Gaussian blurs add their variances).
    public func blurred(by sigma: Double) throws -> any ReferenceDistribution {
        try checkBlur(sigma)
        return BlurredRings(radii: radii, weights: weights, blur: (blur * blur + sigma * sigma).squareRoot())
    }
}

extension TwoSpirals: GaussianBlurrable {
    /// The same spirals with blur √(s² + σ²), the uniform offset and the arms unchanged.
    public func blurred(by sigma: Double) throws -> any ReferenceDistribution {
        try checkBlur(sigma)
        var spirals = TwoSpirals(divisor: divisor, blur: (blur * blur + sigma * sigma).squareRoot())
        (spirals.pieces, spirals.skipMargin, spirals.tolerance) = (pieces, skipMargin, tolerance)
        return spirals
    }
}

/// The Fisher divergence of q from p, F = ½ E_{x∼p} ‖∇log p(x) − ∇log q(x)‖², estimated from
/// `draws` samples of p: the mean and its standard error (sample standard deviation / √n).
/// - Throws: `GSLError.invalidArgument` for fewer than 2 draws or different dimensions.
public func fisherDivergence(between p: any ReferenceDistribution, and q: any ReferenceDistribution,
                             draws: Int, using stream: RandomStream) throws -> (mean: Double, standardError: Double) {
    guard draws >= 2 else { throw GSLError.invalidArgument("fisherDivergence: needs at least 2 draws, got \(draws)") }
    guard p.dimension == q.dimension else {
        throw GSLError.invalidArgument("fisherDivergence: dimensions differ (\(p.dimension) and \(q.dimension))")
    }
    let x = p.sample(draws, using: stream)
    let a = try p.score(x).scalars, b = try q.score(x).scalars
    let d = p.dimension
    let values = (0..<draws).map { n in (0..<d).reduce(0.0) { sum, i in let e = a[n * d + i] - b[n * d + i]; return sum + e * e } * 0.5 }
    let mean = values.reduce(0, +) / Double(draws)
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(draws - 1)
    return (mean, (variance / Double(draws)).squareRoot())
}

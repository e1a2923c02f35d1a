import Autodiff
import GSLNumerics

/// NCSN's objective (Song & Ermon 2019, eq. 6) for a noise-conditional score s(x, σ): denoising
/// score matching at L noise levels at once, each weighted by λ(σ) = σ²,
///
///     ℓ(x) = E_i σᵢ² · ½ ‖s(x + σᵢε, σᵢ) + ε/σᵢ‖² = E_i ½ ‖σᵢ s(x + σᵢε, σᵢ) + ε‖²,
///
/// with each point's level i drawn uniformly (as NCSN's `anneal_dsm_score_estimation` draws one
/// label per sample) and ε ~ N(0, I). The weight makes every level's term of order one.
public struct NoiseConditionalDenoising: Sendable {
    /// σ₁ > … > σ_L.
    public let sigmas: [Double]

    /// - Throws: `ObjectiveError.invalidSigma` for a level that is not finite and > 0.
    public init(sigmas: [Double]) throws {
        guard !sigmas.isEmpty else { throw ObjectiveError.invalidSigma(.nan) }
        for sigma in sigmas where !(sigma > 0 && sigma.isFinite) { throw ObjectiveError.invalidSigma(sigma) }
        self.sigmas = sigmas
    }

    /// Each point's noise level `[N]` and ε `[N, D]`, from `stream`.
    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> (levels: Tensor, epsilon: Tensor) {
        let levels = Tensor((0..<points).map { _ in sigmas[stream.integer(below: sigmas.count)] })
        return (levels, stream.normal(shape: [points, dimension]))
    }

    /// The batch mean of ℓ, differentiable in the model's parameters.
    public func loss(_ model: any NoiseConditionalScoreFunction, at x: Tensor, levels: Tensor, epsilon: Tensor) throws -> Tensor {
        guard x.rank == 2, epsilon.shape == x.shape, levels.shape == [x.shape[0]] else {
            throw ObjectiveError.badBatch(shape: x.shape, expected: "[N, D] with ε [N, D] and levels [N]")
        }
        let sigma = levels.reshaped([x.shape[0], 1])
        let s = model.score(at: x.detached() + epsilon * sigma, sigmas: levels)
        let value = (s * sigma + epsilon).square().sum(alongAxis: 1).mean() * 0.5
        guard value.isFinite else { throw ObjectiveError.nonFinite(what: "the noise-conditional DSM objective") }
        return value
    }
}

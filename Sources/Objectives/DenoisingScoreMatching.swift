import Autodiff
import GSLNumerics

/// Denoising score matching (Vincent 2011) with Gaussian noise of scale σ.
///
/// x̃ = x + σε, ε ~ N(0, I); the target is ∇_x̃ log q(x̃ | x) = −(x̃ − x)/σ² = −ε/σ. Scaling as in
/// the authors' code, which minimises σ⁴ times the textbook ½‖s(x̃) + ε/σ‖²:
///
///     ℓ(x) = ½ ‖σ² s(x̃) + σε‖².
///
/// Terms: residual σ² s(x̃) `[N, D]`, offset σε `[N, D]`, no linear term.
public struct DenoisingScoreMatching: ScoreObjective {
    public let sigma: Double

    /// - Throws: `ObjectiveError.invalidSigma` unless σ is finite and positive.
    public init(sigma: Double) throws {
        guard sigma.isFinite, sigma > 0 else { throw ObjectiveError.invalidSigma(sigma) }
        self.sigma = sigma
    }

    public var name: String { Estimator.dsm.rawValue }
    public var description: String { "dsm: ½‖σ² s(x+σε) + σε‖², σ = \(sigma)" }

    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise {
        ObjectiveNoise(perturbation: stream.normal(shape: [points, dimension]))
    }

    /// At x̃ = x + σε: residual σ² s(x̃), offset σε.
    public func directionalForm(noise: ObjectiveNoise) -> DirectionalForm? {
        let shift = noise.perturbation! * sigma
        return DirectionalForm(shift: shift, offset: shift, first: .coordinates, firstScale: sigma * sigma, curvature: .none)
    }

    public func terms(of logDensity: any LogDensityFunction, at x: Tensor, noise: ObjectiveNoise, createGraph: Bool) throws -> ObjectiveTerms {
        directionalForm(noise: noise)!.terms(of: logDensity, at: x, createGraph: createGraph)
    }
}

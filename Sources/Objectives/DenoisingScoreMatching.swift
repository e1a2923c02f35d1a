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
///
/// DEEN (Saremi, Mehrjou, Schölkopf & Hyvärinen 2018), ½‖x − x̃ + σ²∇ₓ̃E(x̃)‖² for an energy E, is
/// this loss term for term: x − x̃ = −σε and ∇E = −s give ½‖−σε − σ²s(x̃)‖². So DEEN is σ⁴ times the
/// textbook DSM loss on the same draw, and so are its parameter gradients (tested against both
/// formulas written out); `deepEnergyEstimator(sigma:)` is this type under DEEN's name, for energy
/// models only.
public struct DenoisingScoreMatching: ScoreObjective {
    public let sigma: Double
    public let name: String
    /// DEEN is stated for an energy model: a score network is refused under its name.
    let requiresLogDensity: Bool

    /// - Throws: `ObjectiveError.invalidSigma` unless σ is finite and positive.
    public init(sigma: Double) throws {
        try self.init(sigma: sigma, name: Estimator.dsm.rawValue, requiresLogDensity: false)
    }

    /// DEEN at noise scale σ (see above).
    public static func deepEnergyEstimator(sigma: Double) throws -> DenoisingScoreMatching {
        try DenoisingScoreMatching(sigma: sigma, name: Estimator.deen.rawValue, requiresLogDensity: true)
    }

    init(sigma: Double, name: String, requiresLogDensity: Bool) throws {
        guard sigma.isFinite, sigma > 0 else { throw ObjectiveError.invalidSigma(sigma) }
        self.sigma = sigma
        self.name = name
        self.requiresLogDensity = requiresLogDensity
    }

    public var description: String { "\(name): ½‖σ² s(x+σε) + σε‖², σ = \(sigma)" }

    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise {
        ObjectiveNoise(perturbation: stream.normal(shape: [points, dimension]))
    }

    /// At x̃ = x + σε: residual σ² s(x̃), offset σε.
    public func directionalForm(noise: ObjectiveNoise) -> DirectionalForm? {
        let shift = noise.perturbation! * sigma
        return DirectionalForm(shift: shift, offset: shift, first: .coordinates, firstScale: sigma * sigma, curvature: .none)
    }

    public func terms(of model: any ScoreFunction, at x: Tensor, noise: ObjectiveNoise, createGraph: Bool) throws -> ObjectiveTerms {
        if requiresLogDensity && !(model is any LogDensityFunction) { throw ObjectiveError.needsLogDensity(estimator: name) }
        return directionalForm(noise: noise)!.terms(of: model, at: x, createGraph: createGraph)
    }
}

import Autodiff
import GSLNumerics
import Objectives

/// The two kinds of deep score model, by name.
public enum ModelKind: String, CaseIterable, Sendable, Codable {
    /// An energy network E_θ: R^D → R, log p̃ = −E, score −∇ₓE (`EnergyNetwork`).
    case energy
    /// A score network s_θ: R^D → R^D, a score with no log-density (`ScoreNetwork`).
    case score
    /// A noise-conditional score network s_θ(x, σ) (`NoiseConditionalScoreNetwork`), trained by
    /// NCSN's objective over its noise levels and sampled by annealed Langevin dynamics.
    case noiseConditional = "noise_conditional"

    /// Parses a name, or throws `NetworkError.unknownModelKind` listing the valid ones.
    public init(named name: String) throws {
        guard let kind = Self(rawValue: name) else { throw NetworkError.unknownModelKind(name) }
        self = kind
    }
}

/// An energy network: log p̃(x) = −E_θ(x) with E an MLP from R^D to R (toy_gradlogp's `Energy`
/// around `ToyMLP`). Its score −∇ₓE comes from reverse mode, as any log-density's, so every
/// estimator applies, and MALA can use its log-density.
public struct EnergyNetwork: LogDensityModel, Sendable {
    public var network: MLP

    /// - Throws: `NetworkError` for hidden widths or an activation that cannot be built.
    public init(dimension: Int, hidden: [Int], activation: MLP.Activation, using stream: RandomStream) throws {
        network = try MLP(widths: [dimension] + hidden + [1], activation: activation, using: stream)
    }

    public var parameters: [Tensor] {
        get { network.parameters }
        set { network.parameters = newValue }
    }

    /// E_θ(x) per row, `[N]`.
    public func energy(_ x: Tensor) -> Tensor { network(x).reshaped([-1]) }

    /// −E_θ(x) per row, `[N]`.
    public func logDensity(_ x: Tensor) -> Tensor { -energy(x) }
}

/// A score network: s_θ(x) an MLP from R^D to R^D (NCSN's toy score network). It has no
/// log-density: the estimators that need one are refused for it, and FSM takes its score form.
/// Exact SM's trace tr ∇ₓs takes one backward pass per dimension (reverse mode: the pass for
/// coordinate i gives row i of the Jacobian for every point at once, and only its i-th entry is
/// kept); forward mode would give the same trace with D Jacobian-vector products of the same cost,
/// so reverse mode, which every other estimator here shares, serves both model kinds.
public struct ScoreNetwork: ScoreModel, Sendable {
    public var network: MLP

    /// - Throws: `NetworkError` for hidden widths or an activation that cannot be built.
    public init(dimension: Int, hidden: [Int], activation: MLP.Activation, using stream: RandomStream) throws {
        network = try MLP(widths: [dimension] + hidden + [dimension], activation: activation, using: stream)
    }

    public var parameters: [Tensor] {
        get { network.parameters }
        set { network.parameters = newValue }
    }

    /// s_θ(x) per row, `[N, D]`.
    public func modelScore(at x: Tensor) -> Tensor { network(x) }
}

/// A noise-conditional score network s_θ(x, σ) = MLP([x, log σ]) / σ: one network for every
/// noise level of annealed Langevin dynamics (NCSN, Song & Ermon 2019). Dividing by σ makes the
/// output's scale follow the true score's, whose size is about 1/σ at noise level σ (the
/// parametrisation of Song & Ermon 2020); log σ as an input tells the levels apart.
public struct NoiseConditionalScoreNetwork: NoiseConditionalScoreFunction, TrainableModel, Sendable {
    public var network: MLP

    /// - Throws: `NetworkError` for hidden widths or an activation that cannot be built.
    public init(dimension: Int, hidden: [Int], activation: MLP.Activation, using stream: RandomStream) throws {
        network = try MLP(widths: [dimension + 1] + hidden + [dimension], activation: activation, using: stream)
    }

    public var parameters: [Tensor] {
        get { network.parameters }
        set { network.parameters = newValue }
    }

    /// s_θ(x, σₙ) per row, `[N, D]`, with each row's noise level in `sigmas` `[N]`.
    public func score(at x: Tensor, sigmas: Tensor) -> Tensor {
        let n = x.shape[0]
        let input = Tensor.concatenate([x, sigmas.log().reshaped([n, 1])], alongAxis: 1)
        return network(input) / sigmas.reshaped([n, 1])
    }

    /// The network at one noise level, as a score model (for Langevin dynamics and the Fisher
    /// divergence at that level).
    public func atLevel(_ sigma: Double) -> some ScoreFunction { Level(network: self, sigma: sigma) }

    struct Level: ScoreFunction {
        let network: NoiseConditionalScoreNetwork
        let sigma: Double
        func modelScore(at x: Tensor) -> Tensor {
            network.score(at: x, sigmas: Tensor([Double](repeating: sigma, count: x.shape[0])))
        }
    }
}

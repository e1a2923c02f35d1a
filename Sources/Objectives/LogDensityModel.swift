import Autodiff
import GSLNumerics

/// What a score-matching objective is evaluated on: a model of the score s(x) = ∇ₓ log p(x),
/// `[N, D]` → `[N, D]`, row n depending on row n of the input only, written with differentiable
/// operations so that ∇ₓ s and parameter gradients flow through it. A log-density (below) has
/// one, by reverse mode; a score network gives s directly and has no log-density.
public protocol ScoreFunction {
    /// s(x) per row, `[N, D]`, kept in the graph (x must require a gradient wherever the caller
    /// differentiates s again in x).
    func modelScore(at x: Tensor) -> Tensor
}

/// A score for every noise level σ: s(x, σ) ≈ ∇ₓ log q_σ(x), q_σ the data's law blurred by
/// N(0, σ²I) (a noise-conditional score network, or an exact mixture's blurred score), for
/// annealed Langevin dynamics and NCSN's denoising objective.
public protocol NoiseConditionalScoreFunction {
    /// s(xₙ, σₙ) per row, `[N, D]`, with each row's level in `sigmas` `[N]`.
    func score(at x: Tensor, sigmas: Tensor) -> Tensor
}

/// An unnormalised log-density log p̃: a batch `[N, D]` maps to one value per row, `[N]`.
/// Row n of the output must depend on row n of the input only (so ∇ₓ Σₙ log p̃(xₙ) gives every
/// row's score in one backward pass).
public protocol LogDensityFunction: ScoreFunction {
    /// log p̃(x) per row: `[N, D]` → `[N]`.
    func logDensity(_ x: Tensor) -> Tensor
}

extension LogDensityFunction {
    /// ∇ₓ log p̃ by reverse mode, kept in the graph (`score(of:at:)`); x must require a gradient.
    public func modelScore(at x: Tensor) -> Tensor { score(of: self, at: x) }
}

/// A model with trainable parameters θ.
public protocol TrainableModel {
    /// θ: tensors that require a gradient.
    var parameters: [Tensor] { get set }
}

/// A score model with trainable parameters θ: a score network, or a log-density model.
public protocol ScoreModel: ScoreFunction, TrainableModel {}

/// A log-density with trainable parameters θ.
public protocol LogDensityModel: LogDensityFunction, ScoreModel {}

/// A log-density given by a closure.
public struct LogDensityClosure: LogDensityFunction {
    public let body: (Tensor) -> Tensor
    public init(_ body: @escaping (Tensor) -> Tensor) { self.body = body }
    public func logDensity(_ x: Tensor) -> Tensor { body(x) }
}

/// How to estimate the diagonal of the Hessian ∇ₓ² log p̃ by a special backward pass.
public enum DiagonalHessianMethod {
    /// Becker & LeCun (1988) / Kingma & LeCun (2010): the backward pass carries h ≈ diag ∇²,
    /// dropping off-diagonal terms: linear y = W x gives h_x = (W∘W)ᵀ h_y; elementwise y = f(a)
    /// gives h_a = f″(a) g + f′(a)² h.
    case approximateBackpropagation
    /// Martens, Sutskever & Swersky (2012): the backward pass carries a complex vector S with
    /// E[S Sᵀ] = ∇², injecting √M ∘ v (v Rademacher, fresh at each node; negative curvature in
    /// the imaginary part) at every node with local curvature M; diag ∇² ≈ Re(S∘S) = S_r² − S_i².
    /// `noise` says where a model that is a weighted sum of basis functions draws it.
    case curvaturePropagation(RandomStream, noise: CurvaturePropagationNoise = .perPoint)
}

/// Where curvature propagation draws its noise in a model log p̃ = log q₀ + Σ_m α_m k_m whose
/// basis functions k_m(x) = k(φ(x), φ(z_m)) share the feature nets φ (DKEF). Both are unbiased for
/// tr ∇ₓ² log p̃; their variances differ.
///
/// - `perPoint`: the inducing-point terms are summed at φ(x), and one draw per point and node
///   element goes back through the nets: the estimate carries an `[N, H]` state per channel (and
///   the distance node's `[N, M, H]` draws). Cost per point ≈ one backward pass of the nets.
/// - `perPair`: every (point, inducing point) pair goes through the nets on its own, with its own
///   draws at every node, as on the authors' (N, M, D) expansion of log p̃ (their DKEF code): the
///   estimate is Σ_m α_m T_m with T_m CP's estimate of tr ∇ₓ² k_m, and q₀'s exact −D/σ₀² (which CP
///   gives for any draws). Carries an `[N·M, H]` state per channel: about M times the per-point
///   cost, the same pass as CP's α system.
/// A model without basis functions has one layout, and ignores this.
public enum CurvaturePropagationNoise: String, CaseIterable, Sendable, Codable {
    case perPoint = "per_point"
    case perPair = "per_pair"

    /// Parses a name, or throws `ObjectiveError.unknownNoiseLayout` listing the valid ones.
    public init(named name: String) throws {
        guard let layout = Self(rawValue: name) else { throw ObjectiveError.unknownNoiseLayout(name) }
        self = layout
    }
}

/// A log-density whose layer structure supports the special backward passes of approximate
/// backpropagation and curvature propagation.
public protocol DiagonalHessianEstimating: LogDensityFunction {
    /// The exact score ∇ₓ log p̃ and an estimate of diag ∇ₓ² log p̃, both `[N, D]`, written with
    /// differentiable operations (parameter gradients flow through both).
    func scoreAndDiagonalHessian(at x: Tensor, method: DiagonalHessianMethod) -> (score: Tensor, diagonal: Tensor)
    /// The trace estimate Σ_d of the diagonal estimate, `[N]`: what the trace estimators use. A
    /// model may compute it without the diagonal (the default sums `scoreAndDiagonalHessian`).
    func traceOfDiagonalHessian(at x: Tensor, method: DiagonalHessianMethod) -> Tensor
}

extension DiagonalHessianEstimating {
    public func traceOfDiagonalHessian(at x: Tensor, method: DiagonalHessianMethod) -> Tensor {
        scoreAndDiagonalHessian(at: x, method: method).diagonal.sum(alongAxis: 1)
    }
}

/// A log-density that gives its score in closed form, written with operations differentiable in
/// its parameters, for objectives that do not differentiate the score again in x (the special
/// passes of CP and Approx BP read x itself): cheaper than reverse mode through the tape, which
/// `score(of:at:)` uses for every other log-density and for those objectives' tests.
public protocol ExplicitScore: LogDensityFunction {
    /// ∇ₓ log p̃ per row, `[N, D]`.
    func score(at x: Tensor) -> Tensor
}

/// The model score s(x) = ∇ₓ log p̃(x) per row, `[N, D]`, kept in the graph so that it can be
/// differentiated again (for ∇ₓ s and for parameter gradients). `x` must require a gradient.
public func score(of f: any LogDensityFunction, at x: Tensor) -> Tensor {
    GradientMode.$isRecording.withValue(true) {
        gradient(of: f.logDensity(x).sum(), with: x, createGraph: true)
    }
}

import Autodiff
import GSLNumerics

/// Hyvärinen's score matching (2005) with a pluggable trace estimator:
///
///     J(θ) = E_x[ ½ ‖s(x)‖² + tr ∇ₓ s(x) ],   s = ∇ₓ log p̃(x; θ).
///
/// With `ExactTrace` this is exact score matching ("sm"); with `HutchinsonTrace` it is the
/// variance-reduced sliced score matching of Song et al. (2019), SSM-VR ("ssm_vr"):
/// ½ ‖s‖² + vᵀ (∇ₓ s) v, unbiased for J because E[v vᵀ] = I; with
/// `CurvaturePropagationTrace` ("cp") and `ApproximateBackpropagationTrace` ("approx_bp") it is
/// the paper's two baselines.
/// Terms: residual s `[N, D]`, linear term the trace estimate `[N]`.
public struct ScoreMatching<Trace: TraceEstimator>: ScoreObjective {
    public var traceEstimator: Trace
    public let name: String

    public init(trace: Trace, name: String) {
        self.traceEstimator = trace
        self.name = name
    }

    public var description: String { "\(name): ½‖s‖² + tr ∇s by \(traceEstimator.name)" }

    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise {
        traceEstimator.drawNoise(points: points, dimension: dimension, using: stream)
    }

    public var drawsNoise: Bool { traceEstimator.drawsNoise }

    /// Residual s, linear term the trace as directional derivatives, when the trace estimator is
    /// one (exact: all coordinates; Hutchinson: the projections).
    public func directionalForm(noise: ObjectiveNoise) -> DirectionalForm? {
        traceEstimator.curvature(noise: noise).map { DirectionalForm(first: .coordinates, curvature: $0) }
    }

    /// Residual s and linear term Σ diag-estimate from the trace estimator's special pass (CP, Approx BP).
    public func diagonalHessianMethod(noise: ObjectiveNoise) -> DiagonalHessianMethod? {
        traceEstimator.diagonalMethod(noise: noise)
    }

    public func terms(of model: any ScoreFunction, at x: Tensor, noise: ObjectiveNoise, createGraph: Bool) throws -> ObjectiveTerms {
        if let form = directionalForm(noise: noise) { return form.terms(of: model, at: x, createGraph: createGraph) }
        if diagonalHessianMethod(noise: noise) != nil, let explicit = model as? ExplicitScore {
            // The special passes read x, not the score's graph: the score in closed form.
            let point = x.detached()
            let s = GradientMode.$isRecording.withValue(createGraph) { explicit.score(at: point) }
            let trace = try traceEstimator.trace(of: s, at: point, model: model, noise: noise, createGraph: createGraph)
            return ObjectiveTerms(residual: s, linear: trace)
        }
        let leaf = x.requiringGradient()
        let s = model.modelScore(at: leaf)
        let trace = try traceEstimator.trace(of: s, at: leaf, model: model, noise: noise, createGraph: createGraph)
        return ObjectiveTerms(residual: s, linear: trace)
    }
}

extension ScoreMatching where Trace == ExactTrace {
    /// Exact score matching, the trace by one backward pass per dimension.
    public static var exact: ScoreMatching<ExactTrace> { ScoreMatching(trace: ExactTrace(), name: Estimator.sm.rawValue) }
}

extension ScoreMatching where Trace == HutchinsonTrace {
    /// SSM-VR: ½ ‖s‖² + (1/n) Σⱼ vⱼᵀ ∇ₓs vⱼ.
    public static func varianceReduced(projection: Projection = .rademacher, count: Int = 1) throws -> Self {
        ScoreMatching(trace: try HutchinsonTrace(projection: projection, count: count), name: Estimator.ssmVR.rawValue)
    }
}

extension ScoreMatching where Trace == CurvaturePropagationTrace {
    /// Curvature propagation: ½ ‖s‖² + Σᵢ (S_r² − S_i²)ᵢ.
    public static var curvaturePropagation: Self { curvaturePropagation(layout: .perPoint) }

    /// Curvature propagation with its noise where `layout` says (`CurvaturePropagationNoise`).
    public static func curvaturePropagation(layout: CurvaturePropagationNoise) -> Self {
        ScoreMatching(trace: CurvaturePropagationTrace(layout: layout), name: Estimator.cp.rawValue)
    }
}

extension ScoreMatching where Trace == ApproximateBackpropagationTrace {
    /// Approximate backpropagation: ½ ‖s‖² + Σᵢ hᵢ.
    public static var approximateBackpropagation: Self {
        ScoreMatching(trace: ApproximateBackpropagationTrace(), name: Estimator.approxBP.rawValue)
    }
}

import Autodiff
import GSLNumerics

/// An estimator of tr ∇ₓ s(x) per point, the second term of Hyvärinen's objective.
public protocol TraceEstimator: Sendable {
    var name: String { get }
    /// The random draws it needs for N points in D dimensions.
    func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise
    /// The trace as a sum of second directional derivatives, when it is one (exact, Hutchinson).
    func curvature(noise: ObjectiveNoise) -> DirectionalForm.Curvature?
    /// The special backward pass the trace is the sum of, when it is one (CP, Approx BP).
    func diagonalMethod(noise: ObjectiveNoise) -> DiagonalHessianMethod?
    /// tr ∇ₓ s per row, `[N]`, given s = model.modelScore(at: x) (with its graph) and the leaf x.
    /// Directional estimators get it from `curvature` (see the extension).
    func trace(of score: Tensor, at x: Tensor, model: any ScoreFunction, noise: ObjectiveNoise,
               createGraph: Bool) throws -> Tensor
    /// Whether `drawNoise` draws anything (false: it returns `.none` and leaves the stream as is).
    var drawsNoise: Bool { get }
}

extension TraceEstimator {
    public var drawsNoise: Bool { true }
}

extension TraceEstimator {
    /// The trace of a directional estimator: weight · Σ uᵀ∇²f u over its directions, by reverse mode.
    public func trace(of score: Tensor, at x: Tensor, model: any ScoreFunction, noise: ObjectiveNoise,
                      createGraph: Bool) throws -> Tensor {
        guard case let .sum(directions, weight)? = curvature(noise: noise) else {
            preconditionFailure("\(name) is not a directional trace estimator and must implement trace(of:at:…)")
        }
        return DirectionalForm.secondDirectionalDerivatives(score: score, at: x, along: directions, createGraph: createGraph)
            .sum(alongAxis: 1) * weight
    }
}

/// tr ∇ₓ s = Σᵢ ∂sᵢ/∂xᵢ exactly, as a reverse-mode library does: one backward pass per dimension
/// (pass i gives row-wise ∇ₓ Σₙ sᵢ(xₙ), of which column i is kept). Cost grows linearly with D.
public struct ExactTrace: TraceEstimator {
    public init() {}
    public var name: String { "exact" }
    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise { .none }
    public var drawsNoise: Bool { false }

    public func curvature(noise: ObjectiveNoise) -> DirectionalForm.Curvature? { .sum(.coordinates, weight: 1) }
    public func diagonalMethod(noise: ObjectiveNoise) -> DiagonalHessianMethod? { nil }

}

/// Hutchinson's estimator tr A ≈ (1/n) Σⱼ vⱼᵀ A vⱼ with E[v vᵀ] = I, A = ∇ₓ s (the Hessian of
/// log p̃), each A vⱼ a Hessian-vector product by one extra backward pass: A v = ∇ₓ (sᵀv).
public struct HutchinsonTrace: TraceEstimator {
    public var projection: Projection
    public var count: Int

    public init(projection: Projection = .rademacher, count: Int = 1) throws {
        guard count >= 1 else { throw ObjectiveError.invalidProjectionCount(count) }
        self.projection = projection
        self.count = count
    }

    public var name: String { "hutchinson(\(projection.rawValue), n=\(count))" }

    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise {
        ObjectiveNoise(projections: projection.draw(count: count, points: points, dimension: dimension, using: stream))
    }

    public func diagonalMethod(noise: ObjectiveNoise) -> DiagonalHessianMethod? { nil }

    public func curvature(noise: ObjectiveNoise) -> DirectionalForm.Curvature? {
        let v = noise.projections!.permuted([1, 0, 2])  // [N, n, D]
        return .sum(.given(v), weight: 1 / Double(v.shape[1]))
    }

}

/// tr ∇ₓ s ≈ Σᵢ hᵢ, h the diagonal of the Hessian carried by approximate backpropagation
/// (Becker & LeCun 1988; Kingma & LeCun 2010). Biased where the Hessian has off-diagonal terms;
/// exact where it is diagonal. Needs a model with layer structure (`DiagonalHessianEstimating`).
public struct ApproximateBackpropagationTrace: TraceEstimator {
    public init() {}
    public var name: String { "approximate backpropagation" }
    public func curvature(noise: ObjectiveNoise) -> DirectionalForm.Curvature? { nil }
    public func diagonalMethod(noise: ObjectiveNoise) -> DiagonalHessianMethod? { .approximateBackpropagation }
    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise { .none }
    public var drawsNoise: Bool { false }

    public func trace(of score: Tensor, at x: Tensor, model: any ScoreFunction, noise: ObjectiveNoise,
                      createGraph: Bool) throws -> Tensor {
        guard let layered = model as? DiagonalHessianEstimating else { throw ObjectiveError.needsLayeredModel(estimator: Estimator.approxBP.rawValue) }
        return layered.traceOfDiagonalHessian(at: x.detached(), method: diagonalMethod(noise: noise)!)
    }
}

/// tr ∇ₓ s ≈ Σᵢ (S_r² − S_i²)ᵢ by curvature propagation (Martens, Sutskever & Swersky 2012):
/// unbiased, with node-wise Rademacher noise from a stream seeded by `noise.curvatureSeed`.
/// Needs a model with layer structure (`DiagonalHessianEstimating`).
public struct CurvaturePropagationTrace: TraceEstimator {
    /// Where a model with basis functions draws the noise (`CurvaturePropagationNoise`).
    public var layout: CurvaturePropagationNoise
    public init(layout: CurvaturePropagationNoise = .perPoint) { self.layout = layout }
    public var name: String { layout == .perPoint ? "curvature propagation" : "curvature propagation (\(layout.rawValue) noise)" }
    public func curvature(noise: ObjectiveNoise) -> DirectionalForm.Curvature? { nil }
    public func diagonalMethod(noise: ObjectiveNoise) -> DiagonalHessianMethod? {
        .curvaturePropagation(RandomStream(seed: noise.curvatureSeed ?? 0), noise: layout)
    }
    public func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise {
        ObjectiveNoise(curvatureSeed: UInt64(stream.integer(below: Int(Int32.max))))
    }

    public func trace(of score: Tensor, at x: Tensor, model: any ScoreFunction, noise: ObjectiveNoise,
                      createGraph: Bool) throws -> Tensor {
        guard let layered = model as? DiagonalHessianEstimating else { throw ObjectiveError.needsLayeredModel(estimator: Estimator.cp.rawValue) }
        // Recording only when the caller keeps the graph: a model may then take a pass built for
        // constants (DKEF's per-pair traces do), with the same draws and values.
        return GradientMode.$isRecording.withValue(createGraph) {
            layered.traceOfDiagonalHessian(at: x.detached(), method: diagonalMethod(noise: noise)!)
        }
    }
}

import Autodiff

/// Random draws an objective uses on one batch, drawn before evaluation so that the same draws can
/// be reused (finite differences, several models on one batch, DKEF's closed form).
public struct ObjectiveNoise: Sendable {
    /// Projection directions `[n, N, D]`, n per point (SSM, SSM-VR, Hutchinson).
    public var projections: Tensor?
    /// Standard normal draws ε `[N, D]` (DSM's perturbation x̃ = x + σε).
    public var perturbation: Tensor?
    /// Seed of the stream curvature propagation draws its node-wise Rademacher noise from (the
    /// noise's shapes follow the model's layers, so it is drawn during the backward pass).
    public var curvatureSeed: UInt64?

    public init(projections: Tensor? = nil, perturbation: Tensor? = nil, curvatureSeed: UInt64? = nil) {
        self.projections = projections
        self.perturbation = perturbation
        self.curvatureSeed = curvatureSeed
    }

    /// The draws of each point repeated `times` times in a row (point i becomes rows
    /// i·times ..< (i+1)·times), for evaluating several functions at the same point with the
    /// same draws. The curvature seed is kept.
    public func repeatingPoints(_ times: Int) -> ObjectiveNoise {
        func repeated(_ t: Tensor, pointAxis: Int) -> Tensor {
            var shape = t.shape
            let expanded = t.expandingShape(at: pointAxis + 1)
            var target = expanded.shape
            target[pointAxis + 1] = times
            shape[pointAxis] *= times
            return withoutGradients { expanded.expanded(to: target).reshaped(shape) }
        }
        return ObjectiveNoise(projections: projections.map { repeated($0, pointAxis: 1) },
                              perturbation: perturbation.map { repeated($0, pointAxis: 0) },
                              curvatureSeed: curvatureSeed)
    }

    public static let none = ObjectiveNoise()
}

/// Every objective here is, per data point i, a quadratic in log p̃:
///
///     ℓᵢ = ½ ‖rᵢ + cᵢ‖² + tᵢ,
///
/// with rᵢ (`residual`, `[N, R]`) and tᵢ (`linear`, `[N]`) linear in log p̃ and cᵢ (`offset`,
/// `[N, R]`) independent of the model. The objective is the batch mean of ℓᵢ. This form is what
/// lets a model that is linear in some coefficients (DKEF's α) solve for them in closed form.
public struct ObjectiveTerms {
    public var residual: Tensor
    public var offset: Tensor?
    public var linear: Tensor?

    public init(residual: Tensor, offset: Tensor? = nil, linear: Tensor? = nil) {
        self.residual = residual
        self.offset = offset
        self.linear = linear
    }

    /// ℓᵢ = ½ ‖rᵢ + cᵢ‖² + tᵢ, `[N]`.
    public var perSample: Tensor {
        let r = offset.map { residual + $0 } ?? residual
        let quadratic = r.square().sum(alongAxis: 1) * 0.5
        return linear.map { quadratic + $0 } ?? quadratic
    }

    /// The same terms cut off from the graph.
    public func detached() -> ObjectiveTerms {
        ObjectiveTerms(residual: residual.detached(), offset: offset?.detached(), linear: linear?.detached())
    }
}

/// An evaluated objective: the batch mean (a rank-0 tensor, differentiable in θ when evaluated
/// with `createGraph`) and the per-sample values (constants).
public struct ObjectiveValue {
    public var value: Tensor
    public var perSample: Tensor
    public var terms: ObjectiveTerms
}

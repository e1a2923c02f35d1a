import Autodiff

/// The terms of SM, SSM, SSM-VR and DSM are directional derivatives of log p̃ at (possibly
/// shifted) points:
///
///     rᵢ = scale · (∇f(x̂ᵢ) · u)_{u ∈ Uᵢ},     tᵢ = weight · Σ_{u ∈ U′ᵢ} uᵀ ∇²f(x̂ᵢ) u,     x̂ = x + shift,
///
/// with U the coordinate vectors e₁…e_D or given projections. A `DirectionalForm` states an
/// objective's terms that way, once; they are then evaluated either by reverse mode on any
/// log-density (a Hessian-vector product per direction, or one backward pass per coordinate for
/// the trace; a score network's score likewise) or, for a model that provides them (`DirectionalDerivatives`), by forward-mode
/// derivatives of its layers, with the same numbers.
public struct DirectionalForm {
    public enum Directions {
        /// e₁ … e_D.
        case coordinates
        /// Given directions `[N, R, D]` (R per point).
        case given(Tensor)
    }

    public enum Curvature {
        case none
        /// weight · Σ over the directions of uᵀ∇²f u.
        case sum(Directions, weight: Double)
    }

    public var shift: Tensor?
    public var offset: Tensor?
    public var first: Directions
    public var firstScale: Double
    public var curvature: Curvature

    public init(shift: Tensor? = nil, offset: Tensor? = nil, first: Directions, firstScale: Double = 1, curvature: Curvature) {
        self.shift = shift
        self.offset = offset
        self.first = first
        self.firstScale = firstScale
        self.curvature = curvature
    }

    /// The directions as a tensor `[N, R, D]` (coordinates: the identity for every point).
    public static func matrix(_ directions: Directions, points n: Int, dimension d: Int) -> Tensor {
        switch directions {
        case let .given(u): return u
        case .coordinates:
            let eye = Tensor(shape: [d, d], scalars: (0..<(d * d)).map { $0 / d == $0 % d ? 1 : 0 })
            return withoutGradients { eye.expandingShape(at: 0).expanded(to: [n, d, d]) }
        }
    }

    /// The directions of the curvature term, if any.
    public var curvatureDirections: Directions? {
        if case let .sum(directions, _) = curvature { return directions }
        return nil
    }

    /// Residual and linear term from the directional derivatives: first `[…, R₁]` ↦ scale · first,
    /// secondSum `[…]` (Σ over the curvature directions of uᵀ∇²f u) ↦ weight · secondSum.
    public func assemble(first: Tensor, secondSum: Tensor?) -> (residual: Tensor, linear: Tensor?) {
        (firstScale == 1 ? first : first * firstScale, linearTerm(secondSum: secondSum))
    }

    /// The linear term weight · secondSum (nil without a curvature term).
    public func linearTerm(secondSum: Tensor?) -> Tensor? {
        guard case let .sum(_, weight) = curvature, let secondSum else { return nil }
        return weight == 1 ? secondSum : secondSum * weight
    }

    /// The terms of f at x (called with recording on; x is a constant).
    public func terms(of f: any ScoreFunction, at x: Tensor, createGraph: Bool) -> ObjectiveTerms {
        let point = shift.map { x + $0 } ?? x
        if let fast = f as? DirectionalDerivatives {
            // Forward mode needs no graph of x; record one only for parameter gradients.
            return GradientMode.$isRecording.withValue(createGraph) {
                let (g1, g2) = fast.directionalDerivatives(at: point, first: self.first, second: curvatureDirections)
                let (residual, linear) = assemble(first: g1, secondSum: g2)
                return ObjectiveTerms(residual: residual, offset: offset, linear: linear)
            }
        }
        let leaf = point.requiringGradient()
        let s = f.modelScore(at: leaf)
        let first: Tensor
        switch self.first {
        case .coordinates: first = s
        case let .given(u): first = (s.expandingShape(at: 1) * u).sum(alongAxis: 2)
        }
        let secondSum = curvatureDirections.map {
            Self.secondDirectionalDerivatives(score: s, at: leaf, along: $0, createGraph: createGraph).sum(alongAxis: 1)
        }
        let (residual, linear) = assemble(first: first, secondSum: secondSum)
        return ObjectiveTerms(residual: residual, offset: offset, linear: linear)
    }

    /// uᵀ∇²f u per point and direction, `[N, R]`, by reverse mode from s = ∇f (with its graph):
    /// for coordinates one backward pass per dimension (column i of ∇ₓ Σₙ sᵢ), for given
    /// directions one Hessian-vector product ∇ₓ(s·u) per direction.
    public static func secondDirectionalDerivatives(score s: Tensor, at x: Tensor, along directions: Directions,
                                                    createGraph: Bool) -> Tensor {
        var columns: [Tensor] = []
        switch directions {
        case .coordinates:
            for i in 0..<x.shape[1] {
                columns.append(gradient(of: s.select(i, alongAxis: 1).sum(), with: x, createGraph: createGraph).select(i, alongAxis: 1))
            }
        case let .given(u):
            for r in 0..<u.shape[1] {
                let ur = u.select(r, alongAxis: 1)
                let hv = gradient(of: (s * ur).sum(), with: x, createGraph: createGraph)
                columns.append((hv * ur).sum(alongAxis: 1))
            }
        }
        return Tensor.stack(columns, alongAxis: 1)
    }
}

/// A log-density that computes its own directional derivatives (forward mode through its layers),
/// equal to reverse mode's.
public protocol DirectionalDerivatives: LogDensityFunction {
    /// first `[N, R₁]`: ∇f(xₙ)·u for the R₁ first directions u of point n; secondSum `[N]`:
    /// Σ_u uᵀ∇²f(xₙ)u over the second directions (only the sum enters an objective).
    func directionalDerivatives(at x: Tensor, first: DirectionalForm.Directions,
                                second: DirectionalForm.Directions?) -> (first: Tensor, secondSum: Tensor?)
}

extension DirectionalForm.Directions {
    /// R, the directions per point, in dimension d.
    public func count(dimension d: Int) -> Int {
        switch self {
        case .coordinates: d
        case let .given(u): u.shape[1]
        }
    }

    /// Whether both are the coordinates or the same given directions (same shape and values).
    public func isSame(as other: Self) -> Bool {
        switch (self, other) {
        case (.coordinates, .coordinates): true
        case let (.given(a), .given(b)): a.shape == b.shape && a.scalars == b.scalars
        default: false
        }
    }
}

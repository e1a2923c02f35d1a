import Autodiff
import Objectives

/// Forward-mode directional derivatives of DKEF, computed once per point and contracted with
/// every inducing point — instead of pushing each point through the feature nets M times (the
/// authors' (N, M, D) expansion) and differentiating twice in reverse mode.
///
/// For a direction u and feature net φ (rows are points, weights `[in, out]`):
///
///     a₁ = xW₁ + b₁,  ȧ₁ = uW₁,           s₁ = softplus(a₁),  ṡ₁ = σ(a₁)ȧ₁,  s̈₁ = σ′(a₁)ȧ₁²,
///     a₂ = s₁W₂ + b₂, ȧ₂ = ṡ₁W₂, ä₂ = s̈₁W₂, ṡ₂ = σ(a₂)ȧ₂,  s̈₂ = σ′(a₂)ȧ₂² + σ(a₂)ä₂,
///     φ = s₂W₃ + b₃ + xW_s,  φ̇ = ṡ₂W₃ + uW_s,  φ̈ = s̈₂W₃
///
/// (φ̇ = J u, φ̈ = uᵀ∇²φ u). For k = exp(−‖a‖²/(2h)) with a = φ(x) − φ(z_m):
///
///     ∇k·u = −k (a·φ̇)/h,     uᵀ∇²k u = k [ (a·φ̇)²/h² − ‖φ̇‖²/h − (a·φ̈)/h ].
///
/// Nothing of size N × M × R is formed elementwise:
///
/// - first derivatives factor through the features: with c = −w k/h `[N, M]`,
///   ∇k_m·u_r = c_m (φ·φ̇_r − φ(z_m)·φ̇_r) = c_m ([1, φ(z_m)] · [φ·φ̇_r, −φ̇_r]), so contractions
///   with α or with a target over r happen before the product with the inducing points;
/// - objectives need only Σ_r uᵀ∇²k u. Its pieces are sums over r computed before the
///   contraction with the inducing points: Σ_r φ̈_r (from Σ_r ȧ₁², Σ_r ȧ₂², as ä and s̈ are linear
///   in them), Σ_r ‖φ̇_r‖², and Σ_r (a·φ̇_r)² = Σ_r A_r² − 2 φ(z_m)·Σ_r A_r φ̇_r + φ(z_m)ᵀ(Σ_r φ̇_r φ̇_rᵀ)φ(z_m)
///   with A_r = φ·φ̇_r.
///
/// Coordinate directions (u = e_d) use ȧ₁ = W₁ and the skip tangent W_s directly. Everything is
/// differentiable tensor operations, so parameter gradients are one reverse pass over this.
extension DKEF {
    /// First directional derivatives of all M basis functions in factored form, and the sum of the
    /// second ones. Per kernel j: scales c_j = −w_j k_j/h_j `[N, M]`, inducing features
    /// Z_j = [1, φ_j(Z)] `[M, 1+H]` and coordinates E_j = [φ_j·φ̇, −φ̇] `[N, R₁, 1+H]`, with
    ///
    ///     ∇k_m(xₙ)·u_r = Σ_j c_j[n, m] (Z_j E_j[n]ᵀ)[m, r].
    public struct KernelDirectionalDerivatives {
        public var scales: [Tensor]
        public var inducingFeatures: [Tensor]
        public var coordinates: [Tensor]
        /// Σ over the second directions of uᵀ∇²k_m(xₙ) u, `[N, M]` (nil without second directions).
        public var secondSum: Tensor?

        /// R₁, the first directions per point.
        public var directionCount: Int { coordinates[0].shape[1] }
        /// Q = Σ_j (1 + H).
        public var featureCount: Int { inducingFeatures.reduce(0) { $0 + $1.shape[1] } }

        /// Σ_j body(c_j, Z_j, E_j).
        func summedOverKernels(_ body: (_ c: Tensor, _ z: Tensor, _ e: Tensor) -> Tensor) -> Tensor {
            scales.indices.map { body(scales[$0], inducingFeatures[$0], coordinates[$0]) }.summed()
        }

        /// ∇k_m(xₙ)·u_r, `[N, M, R₁]`.
        public var first: Tensor {
            summedOverKernels { c, z, e in c.expandingShape(at: 2) * Tensor.matmul(z, e, transposeB: true) }
        }

        /// The factors C `[N, M, Q]` (C[n, m, (j, q)] = c_j[n, m] Z_j[m, q]) and E `[N, R₁, Q]`:
        /// ∇k_m(xₙ)·u_r = Σ_q C[n, m, q] E[n, r, q].
        public var factors: (coefficients: Tensor, coordinates: Tensor) {
            let c = zip(scales, inducingFeatures).map { $0.expandingShape(at: 2) * $1.expandingShape(at: 0) }
            return (Tensor.concatenate(c, alongAxis: 2), Tensor.concatenate(coordinates, alongAxis: 2))
        }

        /// Σ_m α_m ∇k_m(xₙ)·u_r, `[N, R₁]`, contracting α with c_j and Z_j first.
        public func weighted(by alpha: Tensor) -> Tensor {
            let n = scales[0].shape[0]
            return summedOverKernels { c, z, e in
                let row = Tensor.matmul(c * alpha.reshaped([1, -1]), z).expandingShape(at: 1)       // [N, 1, 1+H]
                return Tensor.matmul(row, e, transposeB: true).reshaped([n, -1])
            }
        }

        /// Σₙ Σ_r ∇k_m(xₙ)·u_r tₙ[r] for targets t `[N, R₁]`, `[M]`.
        public func contracted(with target: Tensor) -> Tensor {
            summedOverKernels { c, z, e in
                let projected = Tensor.matmul(e, target.expandingShape(at: 2), transposeA: true)      // E_jᵀt, [N, 1+H, 1]
                let values = Tensor.matmul(projected.reshaped([c.shape[0], -1]), z, transposeB: true)  // [N, M]
                return (c * values).sum(alongAxis: 0)
            }
        }

        /// The same with E scaled by s (first derivatives times s).
        public func scaled(by s: Double) -> Self {
            s == 1 ? self : Self(scales: scales, inducingFeatures: inducingFeatures, coordinates: coordinates.map { $0 * s }, secondSum: secondSum)
        }

        public func detached() -> Self {
            Self(scales: scales.map { $0.detached() }, inducingFeatures: inducingFeatures.map { $0.detached() },
                 coordinates: coordinates.map { $0.detached() }, secondSum: secondSum?.detached())
        }
    }

    /// Second directions up to this many per point square φ(Z)·φ̇ directly; beyond it they go
    /// through the Gram matrix Σ_r φ̇_r φ̇_rᵀ (`H × H` per point). Both give the same numbers.
    public static var gramDirectionThreshold: Int { 32 }

    /// The derivatives of the kernel k = Σ_j w_j k_j (without α or q₀) along `first` and `second`
    /// at each point of x `[N, D]`.
    public func kernelDirectionalDerivatives(at x: Tensor, first u1: DirectionalForm.Directions,
                                             second u2: DirectionalForm.Directions?,
                                             gramThreshold: Int = DKEF.gramDirectionThreshold) -> KernelDirectionalDerivatives {
        let sameDirections = u2.map { $0.isSame(as: u1) } ?? false
        let w = kernelWeights
        var scales: [Tensor] = [], inducingFeatures: [Tensor] = [], coordinates: [Tensor] = []
        var secondSum: Tensor? = nil
        for j in 0..<configuration.kernelCount {
            let pass = features(j, x)
            let sig1 = pass.sigma1, sig2 = pass.sigma2
            /// u·W for every direction, `[N, R, out]` (`[1, D, out]` for the coordinates, the same
            /// for every point: it broadcasts).
            func applied(_ u: DirectionalForm.Directions, _ weight: Tensor) -> Tensor {
                switch u {
                case .coordinates: weight.expandingShape(at: 0)
                case let .given(u): Tensor.matmul(u, weight)
                }
            }
            /// φ̇ `[N, R, H]` with the pre-activation tangents ȧ₁, ȧ₂.
            func tangents(_ u: DirectionalForm.Directions) -> (da1: Tensor, da2: Tensor, dphi: Tensor) {
                let da1 = applied(u, layer(j, 0))
                let da2 = Tensor.matmul(sig1.expandingShape(at: 1) * da1, layer(j, 2))
                let dphi = Tensor.matmul(sig2.expandingShape(at: 1) * da2, layer(j, 4)) + applied(u, layer(j, 6))
                return (da1, da2, dphi)
            }
            let fz = featuresOfInducingPoints(j)                                          // [M, H]
            let h = bandwidth(j), wj = w.select(j, alongAxis: 0)
            let distance = DKEF.squaredDistances(pass.phi, fz)
            let k = (distance / (h * -2)).exp() * wj                                          // w_j k_j, [N, M]
            let t1 = tangents(u1)
            scales.append(k / (-h))
            inducingFeatures.append(Tensor.concatenate([Tensor.ones([fz.shape[0], 1]), fz], alongAxis: 1))
            let along1 = (pass.phi.expandingShape(at: 1) * t1.dphi).sum(alongAxis: 2, keepingDimensions: true)   // [N, R₁, 1]
            coordinates.append(Tensor.concatenate([along1, -t1.dphi], alongAxis: 2))
            guard let u2 else { continue }
            let t2 = sameDirections ? t1 : tangents(u2)
            // Σ_r φ̈_r, [N, H].
            let dds1 = sig1 * (1 - sig1) * t2.da1.square().sum(alongAxis: 1)
            let dds2 = sig2 * (1 - sig2) * t2.da2.square().sum(alongAxis: 1) + sig2 * Tensor.matmul(dds1, layer(j, 2))
            let ddphi = Tensor.matmul(dds2, layer(j, 4))
            // Σ_r (a·φ̇_r)², [N, M].
            let along2 = (pass.phi.expandingShape(at: 1) * t2.dphi).sum(alongAxis: 2)                           // A, [N, R₂]
            let weighted = (along2.expandingShape(at: 2) * t2.dphi).sum(alongAxis: 1)                            // Σ A_r φ̇_r, [N, H]
            let inducingSquares: Tensor                                                                           // Σ_r (φ(z_m)·φ̇_r)²
            if t2.dphi.shape[1] <= gramThreshold {
                inducingSquares = Tensor.matmul(fz, t2.dphi, transposeB: true).square().sum(alongAxis: 2)
            } else {
                let gram = Tensor.matmul(t2.dphi, t2.dphi, transposeA: true)                                    // [N, H, H]
                inducingSquares = (Tensor.matmul(fz, gram) * fz.expandingShape(at: 0)).sum(alongAxis: 2)
            }
            let squares = along2.square().sum(alongAxis: 1, keepingDimensions: true)
                - Tensor.matmul(weighted, fz, transposeB: true) * 2 + inducingSquares
            let tangentNorms = t2.dphi.square().sum(alongAxes: [1, 2]).expandingShape(at: 1)                    // [N, 1]
            let curvature = (pass.phi * ddphi).sum(alongAxis: 1, keepingDimensions: true) - Tensor.matmul(ddphi, fz, transposeB: true)
            let term = k * (squares / h.square() - (tangentNorms + curvature) / h)
            secondSum = secondSum.map { $0 + term } ?? term
        }
        return KernelDirectionalDerivatives(scales: scales, inducingFeatures: inducingFeatures, coordinates: coordinates, secondSum: secondSum)
    }
}

extension DKEF {
    /// ∇ₓ Σ_m α_m k(x, z_m) `[N, D]` by one reverse sweep through each net (a vector–Jacobian
    /// product, R = D directions for the cost of one): with κ = w_j k_j `[N, M]` and β = κ ⊙ α,
    ///
    ///     ū = ∂/∂φ = (β φ(Z) − (Σ_m β_m) φ) / h,
    ///     ∇ₓ = σ₁ ⊙ ((σ₂ ⊙ ūW₃ᵀ) W₂ᵀ) W₁ᵀ + ūW_sᵀ,   summed over the kernels j.
    ///
    /// The same numbers as `kernelDirectionalDerivatives(first: .coordinates).weighted(by: α)` up
    /// to rounding (tested), which costs D tangents through every net. Differentiable in θ and α.
    public func kernelScore(at x: Tensor, alpha: Tensor) -> Tensor {
        let w = kernelWeights
        return (0..<configuration.kernelCount).map { j -> Tensor in
            let pass = features(j, x)
            let fz = featuresOfInducingPoints(j)
            let h = bandwidth(j)
            let beta = (DKEF.squaredDistances(pass.phi, fz) / (h * -2)).exp() * w.select(j, alongAxis: 0) * alpha.reshaped([1, -1])
            let u = (Tensor.matmul(beta, fz) - pass.phi * beta.sum(alongAxis: 1, keepingDimensions: true)) / h      // [N, H]
            let a2 = pass.sigma2 * Tensor.matmul(u, layer(j, 4), transposeB: true)
            let a1 = pass.sigma1 * Tensor.matmul(a2, layer(j, 2), transposeB: true)
            return Tensor.matmul(a1, layer(j, 0), transposeB: true) + Tensor.matmul(u, layer(j, 6), transposeB: true)
        }.summed()
    }
}

extension DKEF.Density: DirectionalDerivatives {
    /// q₀'s exact terms plus Σ_m α_m times the kernel's. Along the coordinates without the
    /// coordinates' curvature (DSM, SSM-VR, scores) the first derivatives are the score by one
    /// reverse sweep (`kernelScore`), and the curvature directions alone go forward.
    public func directionalDerivatives(at x: Tensor, first u1: DirectionalForm.Directions,
                                       second u2: DirectionalForm.Directions?) -> (first: Tensor, secondSum: Tensor?) {
        let base = model.base.directionalDerivatives(at: x, first: u1, second: u2)
        if case .coordinates = u1, !(u2?.isSame(as: .coordinates) ?? false) {
            let first = base.first + model.kernelScore(at: x, alpha: alpha)
            let secondSum = u2.map { u2 in
                let kernel = model.kernelDirectionalDerivatives(at: x, first: u2, second: u2)
                return base.secondSum! + Tensor.matmul(kernel.secondSum!, alpha.reshaped([-1, 1])).reshaped([-1])
            }
            return (first, secondSum)
        }
        let kernel = model.kernelDirectionalDerivatives(at: x, first: u1, second: u2)
        let first = base.first + kernel.weighted(by: alpha)
        let secondSum = kernel.secondSum.map { base.secondSum! + Tensor.matmul($0, alpha.reshaped([-1, 1])).reshaped([-1]) }
        return (first, secondSum)
    }
}

extension DKEF.Base: DirectionalDerivatives {
    /// log q₀ = −‖x‖²/(2σ₀²): ∇·u = −(x·u)/σ₀², uᵀ∇²u = −‖u‖²/σ₀².
    public func directionalDerivatives(at x: Tensor, first u1: DirectionalForm.Directions,
                                       second u2: DirectionalForm.Directions?) -> (first: Tensor, secondSum: Tensor?) {
        let s2 = model.configuration.baseSigma * model.configuration.baseSigma
        let first: Tensor
        switch u1 {
        case .coordinates: first = x / (-s2)
        case let .given(u): first = (x.expandingShape(at: 1) * u).sum(alongAxis: 2) / (-s2)
        }
        let secondSum: Tensor? = u2.map {
            switch $0 {
            case .coordinates: Tensor(repeating: -Double(x.shape[1]) / s2, shape: [x.shape[0]])
            case let .given(u): u.square().sum(alongAxes: [1, 2]) / (-s2)
            }
        }
        return (first, secondSum)
    }
}

extension Array where Element == Tensor {
    /// The sum of a non-empty list of tensors of one shape.
    func summed() -> Tensor { dropFirst().reduce(self[0], +) }
}

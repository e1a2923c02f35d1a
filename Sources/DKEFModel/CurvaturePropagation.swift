import Autodiff
import GSLNumerics
import Objectives

/// Approximate backpropagation and curvature propagation through DKEF's layers: one backward pass
/// that carries, next to the exact gradient g = ∂y/∂u, a second quantity for diag ∂²y/∂u²:
///
/// * Approx BP carries h ≈ diag ∂²y/∂u² (Becker & LeCun 1988), dropping off-diagonal terms:
///   linear u ↦ u W: h_in = h_out (W∘W)ᵀ; a node y = f(u) with local gradient f′ and local
///   Hessian diagonal f″: h_u = f″ g_y + f′² h_y.
/// * CP carries S = S_r + i S_i with E[S Sᵀ] = ∂²y/∂u² (Martens et al. 2012): linear maps
///   propagate S by Jᵀ; a node with local curvature M = g_y f″ adds √M⁺ v to S_r and √M⁻ v to
///   S_i (v Rademacher, fresh per node and element). diag ∂²y/∂u² ≈ S_r² − S_i², unbiased.
///
/// The nodes of DKEF are: q₀ (exact: g = −x/σ₀², curvature −1/σ₀²); per kernel j and inducing
/// point p the exp node k = eᵉ (f′ = f″ = k) and the scaled distance e = −‖φ − φ_p‖²/(2h)
/// (∂e/∂φ = −(φ − φ_p)/h, ∂²e/∂φ² = −I/h); then the feature net's linear and softplus layers
/// (softplus′ = σ, softplus″ = σ(1 − σ)) and its linear skip. Contributions of the M inducing
/// points are summed at φ before the net (exact for Approx BP, whose rules are linear in (g, h);
/// for CP this is curvature propagation on the summed graph, equally unbiased).
/// Approx BP is exact only where every node's Hessian is diagonal; besides dense layers it also
/// drops the cross term where x fans out into the net and the skip and both reach the nonlinear
/// kernel (2 g″ f′ w_s in one dimension). Additive fan-outs (over inducing points and kernels)
/// are exact. Everything is written with differentiable tensor operations, so parameter
/// gradients flow.
extension DKEF {
    enum Partners {
        /// Each row against all M inducing points, output Σ_m α_m k(x, z_m).
        case all(alpha: Tensor)
        /// Rows in groups of M, row r against z_{r mod M} only, output k(x_r, z_{r mod M}).
        case paired
        /// Each row against each inducing point separately: the M outputs k(x, z_m), propagated
        /// with an M axis (`[N, M, ·]`) after one forward pass per point.
        case each
    }

    /// The second channel of the backward pass.
    enum Curvature {
        case approximate(h: Tensor)
        case propagated(real: Tensor, imaginary: Tensor)

        /// Through u ↦ u W (W `[in, out]`, rows are points; also batched `[N, P, out]`).
        func throughLinear(_ w: Tensor) -> Curvature {
            switch self {
            case let .approximate(h): .approximate(h: Tensor.matmul(h, w.square(), transposeB: true))
            case let .propagated(r, i): .propagated(real: Tensor.matmul(r, w, transposeB: true), imaginary: Tensor.matmul(i, w, transposeB: true))
            }
        }

        /// Through a node y = f(u) acting elementwise (or with a diagonal local Hessian): local
        /// gradient `slope`, local second derivative `bend`, incoming gradient `g`.
        func throughNode(slope: Tensor, bend: Tensor, gradient g: Tensor, noise: RandomStream?) -> Curvature {
            switch self {
            case let .approximate(h):
                return .approximate(h: bend * g + slope.square() * h)
            case let .propagated(r, i):
                let m = bend * g
                let v = noise!.rademacher(shape: m.shape)
                return .propagated(real: Tensor.productPlusRootOfPositivePart(slope, r, root: m, times: v),
                                   imaginary: Tensor.productPlusRootOfPositivePart(slope, i, root: -m, times: v))
            }
        }

        static func + (a: Curvature, b: Curvature) -> Curvature {
            switch (a, b) {
            case let (.approximate(x), .approximate(y)): .approximate(h: x + y)
            case let (.propagated(r1, i1), .propagated(r2, i2)): .propagated(real: r1 + r2, imaginary: i1 + i2)
            default: preconditionFailure("mixed curvature channels")
            }
        }

        func summed(alongAxis axis: Int) -> Curvature {
            switch self {
            case let .approximate(h): .approximate(h: h.sum(alongAxis: axis))
            case let .propagated(r, i): .propagated(real: r.sum(alongAxis: axis), imaginary: i.sum(alongAxis: axis))
            }
        }

        /// The estimate of diag ∂²y/∂u².
        var diagonal: Tensor {
            switch self {
            case let .approximate(h): h
            case let .propagated(r, i): r.square() - i.square()
            }
        }
    }

    /// (∇ₓ y, diag estimate), both `[N, D]`, for y = [log q₀] + Σ_j w_j Σ_p c_p k_j(x, z_p).
    /// With `scores: false` the score is not formed (a zero `[N, D]` placeholder is returned in
    /// its place, whatever the partners); the diagonal and the draws are the same. Recorded, with
    /// one basis function per partner, CP then takes `eachPartnerChannel`.
    func propagate(_ x: Tensor, partners: Partners?, includeBase: Bool, method: DiagonalHessianMethod,
                   scores: Bool = true) -> (score: Tensor, diagonal: Tensor) {
        let (n, d) = (x.shape[0], x.shape[1])
        let noise: RandomStream?
        if case let .curvaturePropagation(stream, _) = method { noise = stream } else { noise = nil }
        func zeroCurvature(_ shape: [Int]) -> Curvature {
            noise == nil ? .approximate(h: Tensor.zeros(shape)) : .propagated(real: Tensor.zeros(shape), imaginary: Tensor.zeros(shape))
        }

        var g = Tensor.zeros([n, d])
        var curvature = zeroCurvature([n, d])
        if includeBase {
            // log q₀ = −‖x‖²/(2σ₀²): gradient −x/σ₀², local Hessian −I/σ₀² (exact, diagonal).
            let s2 = configuration.baseSigma * configuration.baseSigma
            g = x * (-1 / s2)
            let bend = Tensor(repeating: -1 / s2, shape: [n, d])
            curvature = zeroCurvature([n, d]).throughNode(slope: Tensor.zeros([n, d]), bend: bend, gradient: Tensor.ones([n, d]), noise: noise)
        }

        guard let partners else { return (g, curvature.diagonal) }
        var perPartner: (Tensor?, Curvature)? = nil
        func accumulate(_ gx: Tensor?, _ cx: Curvature) {
            perPartner = perPartner.map { old in (gx.map { old.0! + $0 }, old.1 + cx) } ?? (gx, cx)
        }
        let w = kernelWeights
        for j in 0..<configuration.kernelCount {
            let pass = features(j, x)
            let fz = featuresOfInducingPoints(j)                       // [M, H]
            let h = bandwidth(j)
            // Rows against partners: diff [N, P, H], coefficients c [·, P].
            if GradientMode.isRecording, !scores, let noise, case .each = partners {
                accumulate(nil, eachPartnerChannel(j, pass, inducing: fz, bandwidth: h, noise: noise))
                continue
            }
            let diff: Tensor, c: Tensor
            switch partners {
            case let .all(alpha):
                diff = pass.phi.expandingShape(at: 1) - fz.expandingShape(at: 0)
                c = (alpha * w.select(j, alongAxis: 0)).expandingShape(at: 0)
            case .paired:
                let m = configuration.inducingPoints
                diff = (pass.phi.reshaped([n / m, m, -1]) - fz).reshaped([n, 1, -1])
                c = w.select(j, alongAxis: 0).reshaped([1, 1])
            case .each:
                diff = pass.phi.expandingShape(at: 1) - fz.expandingShape(at: 0)
                c = w.select(j, alongAxis: 0).reshaped([1, 1])
            }
            let distance = diff.square().sum(alongAxis: 2)                // [N, P]
            let k = (distance / (h * -2)).exp()                            // [N, P]
            // exp node: y = Σ c k; g_k = c; f′ = f″ = k.
            let gk = c.expanded(to: k.shape)
            let ge = gk * k
            let ce = zeroCurvature(k.shape).throughNode(slope: k, bend: k, gradient: gk, noise: noise)
            // Scaled distance node e(φ): ∂e/∂φ = −diff/h, ∂²e/∂φ² = −I/h.
            let slope = diff / (-h)                                         // [N, P, H]
            let geExpanded = ge.expandingShape(at: 2)
            let gPhi = geExpanded * slope
            var cPhi: Curvature
            switch ce {
            case let .approximate(he):
                cPhi = .approximate(h: slope.square() * he.expandingShape(at: 2) + geExpanded / (-h))
            case let .propagated(re, ie):
                let m = (geExpanded / (-h)).expanded(to: slope.shape)
                let v = noise!.rademacher(shape: slope.shape)
                cPhi = .propagated(real: Tensor.productPlusRootOfPositivePart(slope, re.expandingShape(at: 2), root: m, times: v),
                                   imaginary: Tensor.productPlusRootOfPositivePart(slope, ie.expandingShape(at: 2), root: -m, times: v))
            }
            if case .each = partners {
                // Keep the partner axis: g and curvature become [N, M, D].
                let (gx, cx) = featureNetBackward(j, pass, gradient: gPhi, curvature: cPhi, noise: noise, gradientAtInput: scores)
                accumulate(gx, cx)
                continue
            }
            // Sum over partners, then back through the feature net.
            let (gx, cx) = featureNetBackward(j, pass, gradient: gPhi.sum(alongAxis: 1), curvature: cPhi.summed(alongAxis: 1), noise: noise,
                                              gradientAtInput: scores)
            if let gx { g = g + gx }
            curvature = curvature + cx
        }
        if let perPartner { return (perPartner.0 ?? Tensor.zeros([n, d]), perPartner.1.diagonal) }
        return (g, curvature.diagonal)
    }

    /// From (g, curvature) at φ_j(x) `[N, H]` (or `[N, M, H]`) back to x `[N, D]` (`[N, M, D]`)
    /// through feature net j: the linear skip, W₃, softplus, W₂, softplus, W₁. The gradient at x
    /// is nil when `gradientAtInput` is false (only the curvature is wanted; the nodes still use
    /// the gradient inside the net, and the draws are the same).
    func featureNetBackward(_ j: Int, _ pass: FeaturePass, gradient gPhi: Tensor, curvature cPhi: Curvature,
                            noise: RandomStream?, gradientAtInput: Bool = true) -> (Tensor?, Curvature) {
        var gUp = gPhi, cUp = cPhi
        let gSkip = gradientAtInput ? Tensor.matmul(gUp, layer(j, 6), transposeB: true) : nil
        let cSkip = cUp.throughLinear(layer(j, 6))
        for (weight, slope) in [(layer(j, 4), pass.sigma2), (layer(j, 2), pass.sigma1)] {
            (gUp, cUp) = throughSoftplus(slope: slope, gradient: Tensor.matmul(gUp, weight, transposeB: true), curvature: cUp.throughLinear(weight), noise: noise)
        }
        return (gSkip.map { Tensor.matmul(gUp, layer(j, 0), transposeB: true) + $0 }, cUp.throughLinear(layer(j, 0)) + cSkip)
    }

    /// Through a softplus node with slopes σ `[N, H]` (broadcast over a partner axis of `[N, M, H]`
    /// inputs), given the gradient and the channel at its output: σ g, and the channel through the
    /// node with local curvature σ(1 − σ) g. Without a graph CP's node is one pass
    /// (`CurvaturePropagationKernels.softplusNode`, bitwise the same).
    func throughSoftplus(slope: Tensor, gradient gS: Tensor, curvature cS: Curvature, noise: RandomStream?) -> (Tensor, Curvature) {
        if !GradientMode.isRecording, let noise, case let .propagated(r, i) = cS {
            let node = CurvaturePropagationKernels.softplusNode(slope: slope, gradient: gS, real: r, imaginary: i, noise: noise)
            return (node.gradient, .propagated(real: node.real, imaginary: node.imaginary))
        }
        let sigma = gS.rank == 3 ? slope.expandingShape(at: 1) : slope
        return (sigma * gS, cS.throughNode(slope: sigma, bend: sigma * (1 - sigma), gradient: gS, noise: noise))
    }

    /// CP's channel at x `[N, M, D]` for one basis function per partner (`.each`) through net j,
    /// recorded for parameter gradients, without the x-level gradient. The exp node's coefficient
    /// is w_j ≥ 0 (a softmax), so its curvature k w_j is ≥ 0 and the distance node's, γ/(−ℓ), is
    /// ≤ 0: the imaginary channel leaves the exp node at 0 and the real one gets no noise at the
    /// distance node. So g_φ = (γ/−ℓ) δ and S_φ = (S_e/−ℓ) δ are a scalar per pair times
    /// δ = φ(xₙ) − φ(z_m), and their products with W₃ᵀ and W_sᵀ come from φ(xₙ)Wᵀ − φ(z_m)Wᵀ (one
    /// GEMM per point set instead of per pair); S̃_φ = √(γ/ℓ) v₂ alone goes through the per-pair
    /// GEMMs. The same draws in the same order as the tensor form in `propagate`, and equal to it
    /// up to rounding (the squared distances come from one GEMM, as in the kernel matrix).
    func eachPartnerChannel(_ j: Int, _ pass: FeaturePass, inducing fz: Tensor, bandwidth h: Tensor, noise: RandomStream) -> Curvature {
        let c = kernelWeights.select(j, alongAxis: 0)
        precondition(c.scalar >= 0, "eachPartnerChannel: needs a kernel weight ≥ 0, has \(c.scalar)")
        let k = (DKEF.squaredDistances(pass.phi, fz) / (h * -2)).exp()                       // [N, M]
        let gk = c.reshaped([1, 1]).expanded(to: k.shape)
        let zero = Tensor.zeros(k.shape)
        guard case let .propagated(realE, _) = Curvature.propagated(real: zero, imaginary: zero)
            .throughNode(slope: k, bend: k, gradient: gk, noise: noise) else { preconditionFailure() }
        let v2 = noise.rademacher(shape: [k.shape[0], k.shape[1], fz.shape[1]])
        let local = gk * k / (-h)                                                             // γ/(−ℓ) ≤ 0
        let realScale = (realE / (-h)).expandingShape(at: 2)
        let imaginary = (-local).squareRootOfPositivePart().expandingShape(at: 2) * v2       // S̃_φ [N, M, H]
        let (w3, ws) = (layer(j, 4), layer(j, 6))
        /// φ(xₙ)Wᵀ − φ(z_m)Wᵀ, `[N, M, ·]`.
        func differences(_ w: Tensor) -> Tensor {
            Tensor.matmul(pass.phi, w, transposeB: true).expandingShape(at: 1) - Tensor.matmul(fz, w, transposeB: true).expandingShape(at: 0)
        }
        let first = differences(w3)
        var (gUp, cUp) = throughSoftplus(slope: pass.sigma2, gradient: local.expandingShape(at: 2) * first,
                                         curvature: .propagated(real: realScale * first, imaginary: Tensor.matmul(imaginary, w3, transposeB: true)),
                                         noise: noise)
        (gUp, cUp) = throughSoftplus(slope: pass.sigma1, gradient: Tensor.matmul(gUp, layer(j, 2), transposeB: true),
                                     curvature: cUp.throughLinear(layer(j, 2)), noise: noise)
        let skip = Curvature.propagated(real: realScale * differences(ws), imaginary: Tensor.matmul(imaginary, ws, transposeB: true))
        return cUp.throughLinear(layer(j, 0)) + skip
    }

    /// For tests of the feature-net rules alone: (∇ₓ y, diag estimate) for y = φ_j(x) · head,
    /// head `[H]`.
    func featureNetScoreAndDiagonal(_ j: Int, _ x: Tensor, head: Tensor, method: DiagonalHessianMethod) -> (score: Tensor, diagonal: Tensor) {
        let noise: RandomStream?
        if case let .curvaturePropagation(stream, _) = method { noise = stream } else { noise = nil }
        let pass = features(j, x)
        let gPhi = head.expandingShape(at: 0).expanded(to: pass.phi.shape)
        let zero = Tensor.zeros(pass.phi.shape)
        let c: Curvature = noise == nil ? .approximate(h: zero) : .propagated(real: zero, imaginary: zero)
        let (g, curvature) = featureNetBackward(j, pass, gradient: gPhi, curvature: c, noise: noise)
        return (g!, curvature.diagonal)
    }
}

extension DKEF {
    /// For each point and inducing point: ∇ₓ k(x, z_m) and the diagonal estimate of ∇ₓ² k(x, z_m),
    /// both `[N, M, D]`, by one forward pass per point and a backward pass with an M axis — the
    /// same numbers (and, for CP, the same draws in the same order) as the special passes of
    /// `DKEF.Basis` on points repeated M times.
    public func basisScoresAndDiagonalHessians(at x: Tensor, method: DiagonalHessianMethod) -> (scores: Tensor, diagonals: Tensor) {
        let (scores, diagonals) = propagate(x, partners: .each, includeBase: false, method: method)
        return (scores, diagonals)
    }
}

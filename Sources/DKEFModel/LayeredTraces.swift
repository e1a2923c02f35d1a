import Autodiff
import GSLNumerics
import Objectives

/// Approximate backpropagation's trace estimate without a tensor of size N × M × H.
///
/// Approx BP's rules are linear in the pair (g, h) it carries back (`DKEF.Curvature`), so for one
/// point the trace estimate Σ_d h_x,d is a linear functional of the pair at φ = φ_j(x):
///
///     Σ_d h_x,d = a · g_φ + b · h_φ,
///
/// with per-point vectors a, b `[H]` from one sweep through the net (weights `[in, out]`,
/// squares elementwise, colsq(W)_o = Σ_i W_io²):
///
///     u₁ = σ₁(1 − σ₁) ⊙ colsq(W₁),   v₁ = σ₁² ⊙ colsq(W₁),
///     p = u₁W₂,  q = v₁(W₂∘W₂),      u₂ = σ₂ ⊙ p + σ₂(1 − σ₂) ⊙ q,   v₂ = σ₂² ⊙ q,
///     a = u₂W₃,  b = v₂(W₃∘W₃) + colsq(W_s).
///
/// For basis function m the pair at φ is g_φ = −(κ/ℓ) δ and h_φ = (κ/ℓ²) δ∘δ − κ/ℓ, with
/// δ = φ − φ(z_m), κ = w_j k_j(x, z_m) and ℓ the bandwidth (the exp node gives g = h = κ at the
/// distance node). Expanding δ, the bracket of
///
///     Σ_d h_x,d = κ [ −(a·δ)/ℓ + (b·δ∘δ)/ℓ² − Σb/ℓ ]
///
/// is X Yᵀ with X = [−(a·φ)/ℓ + (b·φ∘φ)/ℓ² − Σb/ℓ, a/ℓ − 2 b∘φ/ℓ², b/ℓ²] `[N, 1+2H]` and
/// Y = [1, φ(Z), φ(Z)∘φ(Z)] `[M, 1+2H]`: one GEMM per kernel instead of pushing an N × M × H
/// pair through the net. The same numbers as `propagate` up to rounding (tested to 1e-10).
extension DKEF {
    /// Approx BP's estimate of tr ∇ₓ² of every basis function Σ_j w_j k_j(·, z_m) at every point,
    /// `[N, M]` (no α, no q₀). Differentiable in θ.
    public func approximateBackpropagationTraces(at x: Tensor) -> Tensor {
        let w = kernelWeights
        var total: Tensor? = nil
        for j in 0..<configuration.kernelCount {
            let pass = features(j, x)
            let fz = featuresOfInducingPoints(j)                                              // [M, H]
            let l = bandwidth(j)
            let distance = DKEF.squaredDistances(pass.phi, fz)
            let kappa = (distance / (l * -2)).exp() * w.select(j, alongAxis: 0)                // w_j k_j, [N, M]
            let (a, b) = traceFunctionals(j, pass)
            let phi = pass.phi
            let row = (a * phi).sum(alongAxis: 1, keepingDimensions: true) / (-l)
                + (b * phi.square()).sum(alongAxis: 1, keepingDimensions: true) / l.square()
                - b.sum(alongAxis: 1, keepingDimensions: true) / l
            let left = Tensor.concatenate([row, a / l - b * phi * 2 / l.square(), b / l.square()], alongAxis: 1)
            let right = Tensor.concatenate([Tensor.ones([fz.shape[0], 1]), fz, fz.square()], alongAxis: 1)
            let term = kappa * Tensor.matmul(left, right, transposeB: true)
            total = total.map { $0 + term } ?? term
        }
        return total!
    }

    /// The vectors (a, b), each `[N, H]`, with Σ_d h_x,d = a·g_φ + b·h_φ for Approx BP through
    /// feature net j at the points of `pass` (see above).
    func traceFunctionals(_ j: Int, _ pass: FeaturePass) -> (a: Tensor, b: Tensor) {
        let (w1, w2, w3, ws) = (layer(j, 0), layer(j, 2), layer(j, 4), layer(j, 6))
        let (s1, s2) = (pass.sigma1, pass.sigma2)
        let c1 = w1.square().sum(alongAxis: 0)                                                  // [H]
        let u1 = s1 * (1 - s1) * c1, v1 = s1.square() * c1
        let p = Tensor.matmul(u1, w2), q = Tensor.matmul(v1, w2.square())
        let u2 = s2 * p + s2 * (1 - s2) * q, v2 = s2.square() * q
        return (Tensor.matmul(u2, w3), Tensor.matmul(v2, w3.square()) + ws.square().sum(alongAxis: 0))
    }

    /// The basis terms of the methods with a special backward pass, for `QuadraticSystem.fit`:
    /// the residuals ∇ₓ k_m(xₙ), the exact scores in factored forward mode along the coordinates
    /// for both methods, and the trace estimates `[N, M]`: Approx BP's
    /// `approximateBackpropagationTraces`; CP's `curvaturePropagationBasisTraces`.
    func basisResidualsAndTraces(at x: Tensor, method: DiagonalHessianMethod) -> (BasisResidual, Tensor) {
        let residual = BasisResidual.factored(kernelDirectionalDerivatives(at: x, first: .coordinates, second: nil))
        switch method {
        case .approximateBackpropagation: return (residual, approximateBackpropagationTraces(at: x))
        case let .curvaturePropagation(noise, _): return (residual, curvaturePropagationBasisTraces(at: x, noise: noise))
        }
    }

    /// CP's estimate of tr ∇ₓ² k_m(xₙ) for every point and basis function, `[N, M]`: the backward
    /// pass with an M axis (`basisScoresAndDiagonalHessians`) without its scores, summed over the
    /// coordinates. Without a graph, or for a model whose parameters are constants (`frozen`,
    /// finalisation's steps), `CurvaturePropagationKernels.basisTraces` gives it from the same
    /// draws with the last layer of every net in one GEMM (equal up to rounding).
    func curvaturePropagationBasisTraces(at x: Tensor, noise: RandomStream) -> Tensor {
        if !GradientMode.isRecording || !parameters.contains(where: \.requiresGradient) {
            return withoutGradients { CurvaturePropagationKernels.basisTraces(self, at: x, noise: noise) }
        }
        return propagate(x, partners: .each, includeBase: false, method: .curvaturePropagation(noise), scores: false).diagonal.sum(alongAxis: 2)
    }
}

extension DKEF.Density {
    /// Σ_d of the diagonal estimate, `[N]`. Approx BP: q₀'s exact −D/σ₀² plus the basis traces
    /// contracted with α (its rules are linear, so this is the sum over inducing points that
    /// `propagate` takes at φ); CP with per-point noise: `curvaturePropagationTrace`; CP with
    /// per-pair noise: q₀'s −D/σ₀² plus Σ_m α_m T_m with T the per-basis traces of CP's α system
    /// (`curvaturePropagationBasisTraces`, the draws from the start of the stream).
    public func traceOfDiagonalHessian(at x: Tensor, method: DiagonalHessianMethod) -> Tensor {
        let s2 = model.configuration.baseSigma * model.configuration.baseSigma
        let traces: Tensor
        switch method {
        case let .curvaturePropagation(stream, .perPoint):
            return model.curvaturePropagationTrace(at: x, alpha: alpha, noise: stream)
        case let .curvaturePropagation(stream, .perPair):
            traces = model.curvaturePropagationBasisTraces(at: x, noise: stream)
        case .approximateBackpropagation:
            traces = model.approximateBackpropagationTraces(at: x)
        }
        return Tensor.matmul(traces, alpha.reshaped([-1, 1])).reshaped([-1]) - Double(x.shape[1]) / s2
    }
}

/// Curvature propagation's trace estimate for the density without a tensor of size N × M × H
/// beyond its own noise.
///
/// With the inducing points summed at φ (as `propagate` does for `.all`), the distance node's
/// contribution is linear in each partner's quantities except for the injected noise:
///
///     Σ_m g_φ = −(1/ℓ) [ (Σ_m γ_m) φ − γ φ(Z) ],   γ = α_m w_j k_j `[N, M]`,
///     Σ_m S_φ = −(1/ℓ) [ (Σ_m S_m) φ − S φ(Z) ] + Σ_m √(−γ_m/ℓ)⁺ v_m,
///
/// with S `[N, M]` the exp node's part and v `[N, M, H]` its Rademacher draws; the last sum is
/// `Tensor.signProducts` on the packed draws (no dense N × M × H tensor, no per-point GEMMs).
/// The draws are the same, in the same order, as in `propagate` (q₀, then per kernel the exp node, the distance node and the net's two nodes), so
/// the estimate equals it up to rounding (tested to 1e-12 on small models). CP's √M⁺ is not
/// Lipschitz at M = 0, so over many training steps rounding differences grow; they do so between
/// CPUs too (see docs/performance.md, "CP and rounding").
extension DKEF {
    func curvaturePropagationTrace(at x: Tensor, alpha: Tensor, noise: RandomStream) -> Tensor {
        let (n, d) = (x.shape[0], x.shape[1])
        let s2 = configuration.baseSigma * configuration.baseSigma
        var curvature = Curvature.propagated(real: Tensor.zeros([n, d]), imaginary: Tensor.zeros([n, d]))
            .throughNode(slope: Tensor.zeros([n, d]), bend: Tensor(repeating: -1 / s2, shape: [n, d]),
                         gradient: Tensor.ones([n, d]), noise: noise)
        let w = kernelWeights
        for j in 0..<configuration.kernelCount {
            let pass = features(j, x), phi = pass.phi
            let fz = featuresOfInducingPoints(j)                                              // [M, H]
            let l = bandwidth(j)
            let distance = DKEF.squaredDistances(phi, fz)
            let k = (distance / (l * -2)).exp()                                                 // [N, M]
            let gk = (alpha * w.select(j, alongAxis: 0)).expandingShape(at: 0)
            let gamma = gk * k
            // Exp node: local curvature g·k, noise v₁ `[N, M]`.
            let bend = k * gk
            let v1 = noise.rademacher(shape: k.shape)
            let (real, imaginary) = (bend.squareRootOfPositivePart() * v1, (-bend).squareRootOfPositivePart() * v1)
            // Distance node, summed over partners: local curvature γ/(−ℓ) on every feature.
            let v2 = noise.rademacherSigns(shape: [n, fz.shape[0], fz.shape[1]])
            func summed(_ s: Tensor) -> Tensor {
                (phi * s.sum(alongAxis: 1, keepingDimensions: true) - Tensor.matmul(s, fz)) / (-l)
            }
            // Σ_m √root⁺[n, m] v₂[n, m, ·] from the packed signs (one of the two roots is 0 per pair).
            func injected(_ root: Tensor) -> Tensor { Tensor.signProducts(root.squareRootOfPositivePart(), v2) }
            let local = gamma / (-l)
            let cPhi = Curvature.propagated(real: summed(real) + injected(local), imaginary: summed(imaginary) + injected(-local))
            curvature = curvature + featureNetBackward(j, pass, gradient: summed(gamma), curvature: cPhi, noise: noise, gradientAtInput: false).1
        }
        return curvature.diagonal.sum(alongAxis: 1)
    }
}

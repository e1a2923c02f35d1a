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
///     ∇k·u = −k (a·φ̇)/h,     uᵀ∇²k u = k [ (a·φ̇)²/h² − ‖φ̇‖²/h − (a·φ̈)/h ],
///
/// with a·φ̇ = φ·φ̇ − φ(z_m)·φ̇ for all m by one product. Everything is differentiable tensor
/// operations, so parameter gradients are one reverse pass over this forward computation.
extension DKEF {
    /// For each point, inducing point and direction: k(x, z_m) `[N, M]`, ∇k·u `[N, M, R₁]` and
    /// uᵀ∇²k u `[N, M, R₂]` (the kernel k = Σ_j w_j k_j, without α or q₀).
    public func kernelDirectionalDerivatives(at x: Tensor, first u1: Tensor, second u2: Tensor?) -> (value: Tensor, first: Tensor, second: Tensor?) {
        let r1 = u1.shape[1]
        let directions = u2.map { Tensor.concatenate([u1, $0], alongAxis: 1) } ?? u1   // [N, R, D]
        let w = kernelWeights
        var value: Tensor? = nil, first: Tensor? = nil, second: Tensor? = nil
        for j in 0..<configuration.kernelCount {
            let pass = features(j, x)
            // Tangents through the feature net.
            let da1 = Tensor.matmul(directions, layer(j, 0))                              // [N, R, H]
            let sig1 = pass.a1.sigmoid().expandingShape(at: 1)
            let ds1 = sig1 * da1, dds1 = sig1 * (1 - sig1) * da1.square()
            let da2 = Tensor.matmul(ds1, layer(j, 2)), dda2 = Tensor.matmul(dds1, layer(j, 2))
            let sig2 = pass.a2.sigmoid().expandingShape(at: 1)
            let ds2 = sig2 * da2, dds2 = sig2 * (1 - sig2) * da2.square() + sig2 * dda2
            let dphi = Tensor.matmul(ds2, layer(j, 4)) + Tensor.matmul(directions, layer(j, 6))   // [N, R, H]
            let ddphi = Tensor.matmul(dds2, layer(j, 4))
            // Contractions with every inducing point.
            let fz = features(j, inducingPoints).phi                                          // [M, H]
            let h = bandwidth(j)
            let distance = pass.phi.square().sum(alongAxis: 1, keepingDimensions: true)
                + fz.square().sum(alongAxis: 1).expandingShape(at: 0) - Tensor.matmul(pass.phi, fz, transposeB: true) * 2
            let k = (distance / (h * -2)).exp()                                               // [N, M]
            func dotWithDifference(_ t: Tensor) -> Tensor {                                   // a·t, [N, M, R]
                (pass.phi.expandingShape(at: 1) * t).sum(alongAxis: 2).expandingShape(at: 1) - Tensor.matmul(fz, t, transposeB: true)
            }
            let p = dotWithDifference(dphi)
            let kk = k.expandingShape(at: 2) * w.select(j, alongAxis: 0)
            let kj = k * w.select(j, alongAxis: 0)
            value = value.map { $0 + kj } ?? kj
            let firstAll = kk * p / (-h)                                                      // [N, M, R]
            let f1 = u2 == nil ? firstAll : firstAll.slice(0..<r1, alongAxis: 2)
            first = first.map { $0 + f1 } ?? f1
            if u2 != nil {
                let p2 = p.slice(r1..<p.shape[2], alongAxis: 2)
                let q = dotWithDifference(ddphi.slice(r1..<ddphi.shape[1], alongAxis: 1))
                let c = dphi.slice(r1..<dphi.shape[1], alongAxis: 1).square().sum(alongAxis: 2).expandingShape(at: 1)   // [N, 1, R₂]
                let f2 = kk * (p2.square() / h.square() - c / h - q / h)
                second = second.map { $0 + f2 } ?? f2
            }
        }
        return (value!, first!, second)
    }
}

extension DKEF.Density: DirectionalDerivatives {
    /// q₀'s exact terms plus Σ_m α_m times the kernel's.
    public func directionalDerivatives(at x: Tensor, first u1: Tensor, second u2: Tensor?) -> (first: Tensor, second: Tensor?) {
        let base = model.base.directionalDerivatives(at: x, first: u1, second: u2)
        let kernel = model.kernelDirectionalDerivatives(at: x, first: u1, second: u2)
        let a = alpha.reshaped([1, -1, 1])
        let first = base.first + (kernel.first * a).sum(alongAxis: 1)
        let second = kernel.second.map { base.second! + ($0 * a).sum(alongAxis: 1) }
        return (first, second)
    }
}

extension DKEF.Base: DirectionalDerivatives {
    /// log q₀ = −‖x‖²/(2σ₀²): ∇·u = −(x·u)/σ₀², uᵀ∇²u = −‖u‖²/σ₀².
    public func directionalDerivatives(at x: Tensor, first u1: Tensor, second u2: Tensor?) -> (first: Tensor, second: Tensor?) {
        let s2 = model.configuration.baseSigma * model.configuration.baseSigma
        let first = (x.expandingShape(at: 1) * u1).sum(alongAxis: 2) / (-s2)
        return (first, u2.map { $0.square().sum(alongAxis: 2) / (-s2) })
    }
}

import Autodiff
import COpenBLAS
import Foundation
import GSLNumerics

/// Curvature propagation's elementwise stages in one pass each, for evaluations that record no
/// graph (validation, test metrics), reading the Rademacher signs from the same positions of the
/// stream as the tensor form (`RandomStream.rademacherSigns`). The softplus node computes, element
/// by element, the very operations of `featureNetBackward` in their order, so the two agree to the
/// last bit (tested); the per-basis traces (`basisTraces`) reorder sums and agree to rounding.
enum CurvaturePropagationKernels {
    /// The signs a node draws, flat and packed: a block of rows reads the part the whole batch drew
    /// for it (`SignTensor.dropping(first:)`).
    static func draw(_ count: Int, _ noise: RandomStream) -> SignTensor { noise.rademacherSigns(shape: [count]) }

    /// A buffer of `count` values for a kernel that writes every one of them: three distinct
    /// arrays (`re = g` would share storage and copy it on the first write) and no zero fill.
    static func outputBuffer(_ count: Int) -> [Double] {
        [Double](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
    }

    /// Calls `body(pair, p, φᵢ, φ(z_p), k)` for every row i of φ `[N, H]` and partner p of φ(Z)
    /// `[M, H]` in row-major order (pair = i·M + p), with k = exp(‖φᵢ − φ(z_p)‖² / scale), the
    /// squares summed in feature order as the tensor form sums them.
    @inline(__always)
    static func forEachPair(_ phi: Tensor, _ fz: Tensor, scale: Double,
                            _ body: (_ pair: Int, _ p: Int, _ row: UnsafePointer<Double>, _ zp: UnsafePointer<Double>, _ k: Double) -> Void) {
        let (n, h, m) = (phi.shape[0], phi.shape[1], fz.shape[0])
        phi.scalars.withUnsafeBufferPointer { phi in
            fz.scalars.withUnsafeBufferPointer { z in
                for i in 0..<n {
                    let row = phi.baseAddress! + i * h
                    for p in 0..<m {
                        let zp = z.baseAddress! + p * h
                        var s = 0.0
                        for e in 0..<h { let d = row[e] - zp[e]; s += d * d }
                        body(i * m + p, p, row, zp, Foundation.exp((0 + s) / scale))
                    }
                }
            }
        }
    }

    /// A softplus node of the feature net: with σ the slopes `[N, H]` (broadcast over the partner
    /// axis of `[N, M, H]` inputs), g the gradient at the node's output and (S, S̃) the channel,
    ///
    ///     M = (σ(1 − σ)) g,   g ← σ g,   S ← σ S + √M⁺ v,   S̃ ← σ S̃ + √(−M)⁺ v.
    static func softplusNode(slope sigma: Tensor, gradient gS: Tensor, real rS: Tensor, imaginary iS: Tensor,
                             noise: RandomStream) -> (gradient: Tensor, real: Tensor, imaginary: Tensor) {
        softplusNode(slope: sigma, gradient: gS, real: rS, imaginary: iS, signs: draw(gS.count, noise))
    }

    /// The same with the node's signs given: element i of the inputs takes sign `signs.offset + i`.
    static func softplusNode(slope sigma: Tensor, gradient gS: Tensor, real rS: Tensor, imaginary iS: Tensor,
                             signs drawn: SignTensor) -> (gradient: Tensor, real: Tensor, imaginary: Tensor) {
        precondition(!GradientMode.isRecording, "CurvaturePropagationKernels: for evaluations without a graph")
        let shape = gS.shape, h = sigma.shape[1]
        let rows = gS.count / h, perPoint = rows / sigma.shape[0]
        let (bits, first) = (drawn.words, drawn.offset)
        let bend = sigma.scalars.map { $0 * (1 - $0) }
        var (g, re, im) = (outputBuffer(gS.count), outputBuffer(gS.count), outputBuffer(gS.count))
        var signs = [Double](repeating: 0, count: h)
        sigma.scalars.withUnsafeBufferPointer { sigma in
            bend.withUnsafeBufferPointer { bend in
                gS.scalars.withUnsafeBufferPointer { gs in
                    rS.scalars.withUnsafeBufferPointer { rs in
                        iS.scalars.withUnsafeBufferPointer { isv in
                            g.withUnsafeMutableBufferPointer { g in
                                re.withUnsafeMutableBufferPointer { re in
                                    im.withUnsafeMutableBufferPointer { im in
                                        signs.withUnsafeMutableBufferPointer { signs in
                                          bits.withUnsafeBufferPointer { words in
                                            let signs = signs.baseAddress!
                                            for r in 0..<rows {
                                                let (s, b) = (sigma.baseAddress! + (r / perPoint) * h, bend.baseAddress! + (r / perPoint) * h)
                                                let offset = r * h
                                                let (gi, ri, ii) = (gs.baseAddress! + offset, rs.baseAddress! + offset, isv.baseAddress! + offset)
                                                let (go, ro, io) = (g.baseAddress! + offset, re.baseAddress! + offset, im.baseAddress! + offset)
                                                SignPatterns.expand(words, from: first + offset, count: h, scale: 1, into: signs)
                                                for e in 0..<h {
                                                    let mv = b[e] * gi[e], root = mv.magnitude.squareRoot()
                                                    go[e] = s[e] * gi[e]
                                                    ro[e] = s[e] * ri[e] + (mv > 0 ? root : 0) * signs[e]
                                                    io[e] = s[e] * ii[e] + (mv < 0 ? root : 0) * signs[e]
                                                }
                                            }
                                          }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return (Tensor(shape: shape, scalars: g), Tensor(shape: shape, scalars: re), Tensor(shape: shape, scalars: im))
    }

    /// CP's trace estimate of every basis function Σ_j w_j k_j(·, z_m) at every point, `[N, M]`,
    /// without a graph: per kernel the exp and distance nodes, W₃ᵀ, the σ₂ node, W₂ᵀ and the σ₁
    /// node as in `propagate` with the partner axis (the same draws in the same order; the
    /// gradient channel stops at the σ₁ node, as nothing below it needs it).
    ///
    /// Two things make it cheaper than the tensor form. With one basis function per partner the
    /// exp node's coefficient is w_j > 0, so its curvature k w_j is ≥ 0 and the distance node's,
    /// γ/(−ℓ), is ≤ 0: below the distance node the gradient and the real channel carry no noise,
    /// and both are a scalar per pair times δ = φ(xₙ) − φ(z_m),
    ///
    ///     g_φ = (γ/−ℓ) δ,   S_φ = (√(k w_j) v₁ / −ℓ) δ,   S̃_φ = √(γ/ℓ) v₂,
    ///
    /// so their products with W₃ᵀ and W_sᵀ are the scalar times φ(xₙ)Wᵀ − φ(z_m)Wᵀ (a GEMM per
    /// point and per inducing point instead of per pair); only S̃_φ needs the per-pair GEMM. And
    /// the channels' last linear maps (W₁ᵀ and W_sᵀ of every net) add up at x, so they accumulate
    /// into one `[N·M, D]` result per channel; trace[n, m] = Σ_d S_x² − S̃_x². Equal to
    /// `propagate`'s diagonal summed over d up to the order of the sums (tested to 1e-12).
    ///
    /// The batch is processed in blocks of `pointsPerBlock` points (all their pairs, every kernel),
    /// so the `[points·M, H]` channels of a block stay in cache; the signs are drawn for the whole
    /// batch first, in the unblocked order (per kernel v₁, v₂, the σ₂ node's, the σ₁ node's), and
    /// each block reads its own. Every row sees the same operations whatever the blocking.
    static func basisTraces(_ model: DKEF, at x: Tensor, noise: RandomStream, pointsPerBlock: Int = 4) -> Tensor {
        precondition(!GradientMode.isRecording, "CurvaturePropagationKernels: for evaluations without a graph")
        precondition(pointsPerBlock >= 1, "basisTraces: pointsPerBlock must be ≥ 1")
        let (n, d) = (x.shape[0], x.shape[1])
        let (m, h, kernels) = (model.configuration.inducingPoints, model.configuration.hiddenWidth, model.configuration.kernelCount)
        let kernelWeights = model.kernelWeights.scalars
        // Per kernel, for the whole batch: the forward pass, φ(xₙ)W₃ᵀ, φ(z_m)W₃ᵀ, φ(xₙ)W_sᵀ,
        // φ(z_m)W_sᵀ, and the signs.
        struct Kernel {
            var pass: DKEF.FeaturePass, inducing: Tensor, coefficient: Double, bandwidth: Double
            var a: Tensor, b: Tensor, skipA: [Double], skipB: [Double]
            var w1: Tensor, w2: Tensor, w3: Tensor, ws: Tensor
            var v1: SignTensor, v2: SignTensor, sigma2: SignTensor, sigma1: SignTensor
        }
        let parts = (0..<kernels).map { j -> Kernel in
            let pass = model.features(j, x), fz = model.featuresOfInducingPoints(j)
            let (w3, ws) = (model.layer(j, 4), model.layer(j, 6))
            let (v1, v2) = (draw(n * m, noise), draw(n * m * h, noise))
            let (sigma2, sigma1) = (draw(n * m * h, noise), draw(n * m * h, noise))
            return Kernel(pass: pass, inducing: fz, coefficient: kernelWeights[j], bandwidth: model.bandwidth(j).scalar,
                          a: Tensor.matmul(pass.phi, w3, transposeB: true), b: Tensor.matmul(fz, w3, transposeB: true),
                          skipA: Tensor.matmul(pass.phi, ws, transposeB: true).scalars, skipB: Tensor.matmul(fz, ws, transposeB: true).scalars,
                          w1: model.layer(j, 0), w2: model.layer(j, 2), w3: w3, ws: ws, v1: v1, v2: v2, sigma2: sigma2, sigma1: sigma1)
        }
        let maxRows = min(pointsPerBlock, n) * m
        // S_x, S̃_x of a block `[rows, D]`, each written first by assignment, then accumulated.
        let (real, imaginary) = (UnsafeMutablePointer<Double>.allocate(capacity: maxRows * d), UnsafeMutablePointer<Double>.allocate(capacity: maxRows * d))
        defer { real.deallocate(); imaginary.deallocate() }
        var trace = [Double](repeating: 0, count: n * m)
        for start in stride(from: 0, to: n, by: pointsPerBlock) {
            let points = start..<min(start + pointsPerBlock, n)
            let rows = points.count * m
            var startedImaginary = false
            /// S_x (or S̃_x) += S Wᵀ for a channel S `[rows, H]` and W `[D, H]`.
            func accumulate(_ channel: Tensor, through w: Tensor, intoReal: Bool, beta: Double) {
                w.scalars.withUnsafeBufferPointer { w in
                    channel.scalars.withUnsafeBufferPointer { c in
                        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(d), Int32(h), 1, c.baseAddress, Int32(h),
                                    w.baseAddress, Int32(h), beta, intoReal ? real : imaginary, Int32(d))
                    }
                }
            }
            for (j, k) in parts.enumerated() {
                let rowsOf = { (t: Tensor) in t.slice(points, alongAxis: 0) }
                let node = pairScalars(phi: rowsOf(k.pass.phi), inducing: k.inducing, coefficient: k.coefficient, bandwidth: k.bandwidth,
                                       v1: k.v1.dropping(first: start * m), v2: k.v2.dropping(first: start * m * h))
                // S_x = (S_e/−ℓ)(φ(xₙ)W_sᵀ − φ(z_m)W_sᵀ) from this kernel's skip.
                for (i, point) in points.enumerated() {
                    for p in 0..<m {
                        let (row, scale) = (real + (i * m + p) * d, node.realScale[i * m + p])
                        for e in 0..<d {
                            let value = scale * (k.skipA[point * d + e] - k.skipB[p * d + e])
                            row[e] = j == 0 ? value : row[e] + value
                        }
                    }
                }
                accumulate(node.imaginary, through: k.ws, intoReal: false, beta: startedImaginary ? 1 : 0)
                startedImaginary = true
                let a = rowsOf(k.a)
                var (g, re, im) = softplusNode(slope: rowsOf(k.pass.sigma2), gradient: pairwiseDifferences(node.gradientScale, a, k.b),
                                               real: pairwiseDifferences(node.realScale, a, k.b),
                                               imaginary: Tensor.matmul(node.imaginary, k.w3, transposeB: true),
                                               signs: k.sigma2.dropping(first: start * m * h))
                (g, re, im) = softplusNode(slope: rowsOf(k.pass.sigma1), gradient: Tensor.matmul(g, k.w2, transposeB: true),
                                           real: Tensor.matmul(re, k.w2, transposeB: true), imaginary: Tensor.matmul(im, k.w2, transposeB: true),
                                           signs: k.sigma1.dropping(first: start * m * h))
                accumulate(re, through: k.w1, intoReal: true, beta: 1)
                accumulate(im, through: k.w1, intoReal: false, beta: 1)
            }
            for r in 0..<rows {
                let (a, b) = (real + r * d, imaginary + r * d)
                var sum = 0.0
                for i in 0..<d { sum += a[i] * a[i] - b[i] * b[i] }
                trace[start * m + r] = sum
            }
        }
        return Tensor(shape: [n, m], scalars: trace)
    }

    /// The exp and distance nodes of one basis function per partner (coefficient c ≥ 0, bandwidth
    /// ℓ > 0) for rows φ `[N, H]` against φ(Z) `[M, H]`, as scalars per pair: g_φ = gradientScale·δ,
    /// S_φ = realScale·δ, and S̃_φ = √(γ/ℓ) v₂ `[N, M, H]`, with v₁ `[N, M]` drawn before v₂, as the
    /// tensor form in `propagate` draws them. Pair i takes v₁'s
    /// sign i, its element e v₂'s sign i·H + e.
    static func pairScalars(phi: Tensor, inducing fz: Tensor, coefficient c: Double, bandwidth l: Double,
                            v1: SignTensor, v2: SignTensor) -> (gradientScale: [Double], realScale: [Double], imaginary: Tensor) {
        precondition(c >= 0 && l > 0, "pairScalars: needs a coefficient ≥ 0 and a bandwidth > 0, have \(c) and \(l)")
        let (n, h, m) = (phi.shape[0], phi.shape[1], fz.shape[0])
        let (scale, negative) = (l * -2, -l)
        let (bits2, first2) = (v2.words, v2.offset)
        var (gradientScale, realScale, imaginary) = (outputBuffer(n * m), outputBuffer(n * m), outputBuffer(n * m * h))
        imaginary.withUnsafeMutableBufferPointer { im in
            bits2.withUnsafeBufferPointer { bits2 in
                forEachPair(phi, fz, scale: scale) { pair, _, _, _, k in
                    let gamma = c * k
                    let se = (k * c).squareRoot() * v1[pair]
                    gradientScale[pair] = gamma / negative
                    realScale[pair] = se / negative
                    let root = (gamma / negative).magnitude.squareRoot()
                    SignPatterns.expand(bits2, from: first2 + pair * h, count: h, scale: root, into: im.baseAddress! + pair * h)
                }
            }
        }
        return (gradientScale, realScale, Tensor(shape: [n, m, h], scalars: imaginary))
    }

    /// scale[n·M + m] (a[n] − b[m]) for a `[N, K]`, b `[M, K]`, `[N, M, K]`.
    static func pairwiseDifferences(_ scale: [Double], _ a: Tensor, _ b: Tensor) -> Tensor {
        let (n, m, k) = (a.shape[0], b.shape[0], a.shape[1])
        var out = outputBuffer(n * m * k)
        a.scalars.withUnsafeBufferPointer { a in
            b.scalars.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { out in
                    for i in 0..<n {
                        for p in 0..<m {
                            let (o, s) = (out.baseAddress! + (i * m + p) * k, scale[i * m + p])
                            for e in 0..<k { o[e] = s * (a[i * k + e] - b[p * k + e]) }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, m, k], scalars: out)
    }
}

import Autodiff
import COpenBLAS
import Foundation
import GSLNumerics
import Objectives

/// A deep kernel exponential family (Wenliang et al. 2019) as in the authors' code:
///
///     log p̃(x) = log q₀(x) + Σ_m α_m k(x, z_m),   log q₀(x) = −‖x‖² / (2σ₀²),
///     k(x, z) = Σ_j w_j exp(−‖φ_j(x) − φ_j(z)‖² / (2 · 10^{l_j})),   w = softmax(u),
///     φ_j(x) = W₃ softplus(W₂ softplus(W₁ x + b₁) + b₂) + b₃ + W_s x
///
/// (the bandwidth 10^{l_j} is not squared, as in the authors' code). Rows are points; a weight
/// W is stored `[in, out]`, so a layer is x W + b. α is not a parameter: it is the closed-form
/// minimiser of the training objective (`QuadraticSystem`).
///
/// The parameters θ, in `parameters` order: z `[M, D]`; per kernel j: W₁ `[D, H]`, b₁ `[H]`,
/// W₂ `[H, H]`, b₂ `[H]`, W₃ `[H, H]`, b₃ `[H]`, W_s `[D, H]`; l `[K]`; u `[K]`; log₁₀ λ `[]`.
public struct DKEF: LogDensityModel {
    public let configuration: DKEFConfiguration
    public var parameters: [Tensor] {
        didSet { inducingFeatureCache = nil }
    }
    /// φ_j(Z) per kernel, kept by `frozen()`. Any change of `parameters` drops it, so it always
    /// equals what `features(j, inducingPoints)` would compute now.
    private var inducingFeatureCache: [Tensor]? = nil

    static let layerNames = ["W1", "b1", "W2", "b2", "W3", "b3", "Wskip"]

    /// Parameters drawn as in the authors' code: weights and biases N(0, 1)/√(out features);
    /// l_j, u = 0 and log₁₀ λ from the configuration.
    /// - Parameter inducingPoints: z `[M, D]`, e.g. random training points.
    public init(_ configuration: DKEFConfiguration, inducingPoints z: Tensor, using stream: RandomStream) throws {
        try configuration.validate()
        let (d, m, h) = (configuration.dimension, configuration.inducingPoints, configuration.hiddenWidth)
        guard z.shape == [m, d] else { throw DKEFError.badInducingPoints(shape: z.shape, expected: [m, d]) }
        var p: [Tensor] = [z.detached()]
        for _ in 0..<configuration.kernelCount {
            for (shape, out) in [([d, h], h), ([h], h), ([h, h], h), ([h], h), ([h, h], h), ([h], h), ([d, h], h)] {
                p.append(stream.normal(shape: shape) / Double(out).squareRoot())
            }
        }
        p.append(Tensor(configuration.initialLogBandwidths))
        p.append(Tensor.zeros([configuration.kernelCount]))
        p.append(Tensor(configuration.initialLogLambda))
        self.configuration = configuration
        self.parameters = p.map { $0.requiringGradient() }
    }

    /// A model with given parameter values (checkpoints); shapes are checked.
    public init(_ configuration: DKEFConfiguration, parameters: [Tensor]) throws {
        try configuration.validate()
        let expected = DKEF.parameterShapes(configuration)
        guard parameters.map(\.shape) == expected else {
            throw DKEFError.badParameters("shapes \(parameters.map(\.shape)) do not match the configuration's \(expected)")
        }
        self.configuration = configuration
        self.parameters = parameters.map { $0.requiresGradient ? $0 : $0.requiringGradient() }
    }

    /// The parameter names, in `parameters` order ("z", "kernel0.W1", …, "logBandwidths",
    /// "kernelLogits", "logLambda").
    public static func parameterNames(_ configuration: DKEFConfiguration) -> [String] {
        ["z"] + (0..<configuration.kernelCount).flatMap { j in layerNames.map { "kernel\(j).\($0)" } }
            + ["logBandwidths", "kernelLogits", "logLambda"]
    }

    public static func parameterShapes(_ c: DKEFConfiguration) -> [[Int]] {
        let (d, h) = (c.dimension, c.hiddenWidth)
        return [[c.inducingPoints, d]] + (0..<c.kernelCount).flatMap { _ in [[d, h], [h], [h, h], [h], [h, h], [h], [d, h]] }
            + [[c.kernelCount], [c.kernelCount], []]
    }

    // MARK: Named access

    public var inducingPoints: Tensor { parameters[0] }
    func layer(_ kernel: Int, _ index: Int) -> Tensor { parameters[1 + 7 * kernel + index] }
    var logBandwidths: Tensor { parameters[1 + 7 * configuration.kernelCount] }
    var kernelLogits: Tensor { parameters[2 + 7 * configuration.kernelCount] }
    /// log₁₀ λ.
    public var logLambda: Tensor { parameters[3 + 7 * configuration.kernelCount] }
    /// Index of log₁₀ λ in `parameters`.
    public var logLambdaIndex: Int { 3 + 7 * configuration.kernelCount }

    /// w = softmax(u), `[K]`.
    var kernelWeights: Tensor { kernelLogits.softmax(alongAxis: 0) }
    /// 10^{l_j} for kernel j, `[]`.
    func bandwidth(_ j: Int) -> Tensor { (logBandwidths.select(j, alongAxis: 0) * Foundation_log10).exp() }

    /// The model with its parameters detached (constants: no gradient flows into them) and the
    /// inducing points' features φ_j(Z) computed once, for the many evaluations of a fixed model
    /// (finalisation's 1000 steps on log λ, validation, test metrics). Same values to the last bit
    /// as recomputing them.
    public func frozen() -> DKEF {
        var model = self
        model.parameters = parameters.map { $0.detached() }
        model.inducingFeatureCache = (0..<configuration.kernelCount).map { model.featureValues($0, model.inducingPoints) }
        return model
    }

    /// φ_j(Z), `[M, H]`: from the cache of a frozen model, else computed.
    func featuresOfInducingPoints(_ j: Int) -> Tensor { inducingFeatureCache?[j] ?? features(j, inducingPoints).phi }

    // MARK: Pieces

    /// The forward pass of feature net j with its intermediate values; σ₁ = σ(a₁), σ₂ = σ(a₂) are
    /// the activations' slopes (softplus′ = σ), computed with them from the same exponentials.
    struct FeaturePass {
        var a1: Tensor, s1: Tensor, sigma1: Tensor, a2: Tensor, s2: Tensor, sigma2: Tensor, phi: Tensor
    }

    func features(_ j: Int, _ x: Tensor) -> FeaturePass {
        let a1 = Tensor.matmul(x, layer(j, 0)) + layer(j, 1)
        let (s1, sigma1) = a1.softplusAndSigmoid()
        let a2 = Tensor.matmul(s1, layer(j, 2)) + layer(j, 3)
        let (s2, sigma2) = a2.softplusAndSigmoid()
        let phi = Tensor.matmul(s2, layer(j, 4)) + layer(j, 5) + Tensor.matmul(x, layer(j, 6))
        return FeaturePass(a1: a1, s1: s1, sigma1: sigma1, a2: a2, s2: s2, sigma2: sigma2, phi: phi)
    }

    /// φ_j(x) alone, `[N, H]`: the forward pass without the slopes σ₁, σ₂, for evaluations that
    /// need no derivatives (the same operations on the values as `features`). `softplus` may be
    /// replaced for test metrics (`VectorMath.softplus`).
    func featureValues(_ j: Int, _ x: Tensor, softplus: (Tensor) -> Tensor = { $0.softplus() }) -> Tensor {
        let s1 = softplus(Tensor.matmul(x, layer(j, 0)) + layer(j, 1))
        let s2 = softplus(Tensor.matmul(s1, layer(j, 2)) + layer(j, 3))
        return Tensor.matmul(s2, layer(j, 4)) + layer(j, 5) + Tensor.matmul(x, layer(j, 6))
    }

    /// φ_j(x) of every kernel j, as `featureValues`, with the products of x with every net's W₁
    /// and W_s in one GEMM `[N, D] × [D, 2HK]`, so x is read (and packed by the GEMM) once instead
    /// of 2K times. Equal to `featureValues` up to the GEMM's rounding (tested).
    func allFeatureValues(_ x: Tensor, softplus: (Tensor) -> Tensor = { $0.softplus() }) -> [Tensor] {
        let h = configuration.hiddenWidth
        let weights = Tensor.concatenate((0..<configuration.kernelCount).flatMap { [layer($0, 0), layer($0, 6)] }, alongAxis: 1)
        let products = Tensor.matmul(x, weights)                                              // [N, 2HK]
        return (0..<configuration.kernelCount).map { j in
            let s1 = softplus(products.slice((2 * h * j)..<(2 * h * j + h), alongAxis: 1) + layer(j, 1))
            let s2 = softplus(Tensor.matmul(s1, layer(j, 2)) + layer(j, 3))
            return Tensor.matmul(s2, layer(j, 4)) + layer(j, 5) + products.slice((2 * h * j + h)..<(2 * h * (j + 1)), alongAxis: 1)
        }
    }

    /// Σₖ a[k]·b[k] over n values with eight running sums (lanes k mod 8), then the rest in order:
    /// vectorised, and the same rounding on every run and thread.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, _ n: Int) -> Double {
        var lanes = SIMD8<Double>(repeating: 0)
        var k = 0
        while k + 8 <= n {
            lanes += UnsafeRawPointer(a + k).loadUnaligned(as: SIMD8<Double>.self) * UnsafeRawPointer(b + k).loadUnaligned(as: SIMD8<Double>.self)
            k += 8
        }
        var sum = lanes.sum()
        while k < n { sum += a[k] * b[k]; k += 1 }
        return sum
    }

    /// ‖φₙ − φ(z_m)‖² for features φ `[N, H]` and inducing features φ(Z) `[M, H]`, `[N, M]`, from one
    /// GEMM: ‖φₙ‖² + ‖φ(z_m)‖² − 2 φₙ·φ(z_m).
    static func squaredDistances(_ phi: Tensor, _ fz: Tensor) -> Tensor {
        phi.square().sum(alongAxis: 1, keepingDimensions: true) + fz.square().sum(alongAxis: 1).expandingShape(at: 0)
            - Tensor.matmul(phi, fz, transposeB: true) * 2
    }

    /// log q₀(x) = −‖x‖² / (2σ₀²), `[N]`.
    func baseLogDensity(_ x: Tensor) -> Tensor {
        x.square().sum(alongAxis: 1) * (-0.5 / (configuration.baseSigma * configuration.baseSigma))
    }

    /// The kernel matrix k(x, z_m) = Σ_j w_j K_j, `[N, M]`, with the squared distances from one
    /// GEMM: ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b.
    ///
    /// With graph recording off (log Z, test log-likelihoods) the elementwise work after the GEMM
    /// is one pass per kernel instead of seven (`accumulatedKernel`), with the same operations in
    /// the same order, so the two paths agree to the last bit (tested).
    public func kernelMatrix(_ x: Tensor) -> Tensor {
        let w = kernelWeights
        var total: Tensor? = nil
        for j in 0..<configuration.kernelCount {
            let fx = GradientMode.isRecording ? features(j, x).phi : featureValues(j, x), fz = featuresOfInducingPoints(j)
            let xNorms = fx.square().sum(alongAxis: 1, keepingDimensions: true), zNorms = fz.square().sum(alongAxis: 1)
            let products = Tensor.matmul(fx, fz, transposeB: true), scale = bandwidth(j) * -2, weight = w.select(j, alongAxis: 0)
            if !GradientMode.isRecording {
                total = Self.accumulatedKernel(total, xNorms: xNorms, zNorms: zNorms, products: products, scale: scale, weight: weight)
                continue
            }
            let distance = xNorms + zNorms.expandingShape(at: 0) - products * 2
            let kj = (distance / scale).exp() * weight
            total = total.map { $0 + kj } ?? kj
        }
        return total!
    }

    /// total + exp(((‖φ(x_n)‖² + ‖φ(z_m)‖²) − 2 φ(x_n)·φ(z_m)) / s) · w for every (n, m), in one
    /// pass, evaluating each element exactly as the tensor expression of `kernelMatrix` does
    /// (without `total`: the kernel term alone). A constant: for use with recording off.
    static func accumulatedKernel(_ total: Tensor?, xNorms: Tensor, zNorms: Tensor, products: Tensor, scale: Tensor, weight: Tensor) -> Tensor {
        let (n, m) = (products.shape[0], products.shape[1])
        let s = scale.scalar, w = weight.scalar
        var out = total?.scalars ?? [Double](repeating: 0, count: n * m)
        out.withUnsafeMutableBufferPointer { out in
            xNorms.scalars.withUnsafeBufferPointer { a in
                zNorms.scalars.withUnsafeBufferPointer { b in
                    products.scalars.withUnsafeBufferPointer { g in
                        for i in 0..<n {
                            let row = i * m, ai = a[i]
                            if total == nil {
                                for k in 0..<m { out[row + k] = Foundation.exp(((ai + b[k]) - g[row + k] * 2) / s) * w }
                            } else {
                                for k in 0..<m { out[row + k] = out[row + k] + Foundation.exp(((ai + b[k]) - g[row + k] * 2) / s) * w }
                            }
                        }
                    }
                }
            }
        }
        return Tensor(shape: [n, m], scalars: out)
    }

    /// log p̃(x) with α `[M]`, `[N]`, with libmvec's exp and log1p (`VectorMath`, a few ulp from
    /// libm's) in the feature nets and the kernel, every net's first layer in one GEMM
    /// (`allFeatureValues`) and Σ_j K_j (w_j α) by row sums in a fixed order (`dot`): for test
    /// metrics (log Z by importance sampling, test log-likelihoods), never for anything training or
    /// finalisation uses. A constant.
    ///
    /// Rows go through in blocks of `rowBlock` (every step is row by row, so the blocks give the
    /// same numbers as one pass up to the GEMMs' rounding), which keeps each block's [B, M] kernel
    /// matrices and [B, H] activations in the core's cache: for log Z's chunks of 10⁴ draws a
    /// [10⁴, M] matrix is 16 MB and each elementwise pass over it went to memory.
    public func evaluationLogDensity(_ x: Tensor, alpha: Tensor, rowBlock: Int = DKEF.evaluationRowBlock) -> Tensor {
        precondition(rowBlock >= 1, "evaluationLogDensity: rowBlock must be ≥ 1")
        let n = x.shape[0]
        guard n > rowBlock else { return evaluationLogDensityBlock(x, alpha: alpha) }
        return withoutGradients {
            var out = [Double]()
            out.reserveCapacity(n)
            for start in stride(from: 0, to: n, by: rowBlock) {
                out += evaluationLogDensityBlock(x.slice(start..<Swift.min(start + rowBlock, n), alongAxis: 0), alpha: alpha).scalars
            }
            return Tensor(shape: [n], scalars: out)
        }
    }

    /// Rows per block of `evaluationLogDensity`: [256, 200] doubles are 400 KB, inside a core's L2.
    public static var evaluationRowBlock: Int { 256 }

    private func evaluationLogDensityBlock(_ x: Tensor, alpha: Tensor) -> Tensor {
        withoutGradients {
            let (n, m) = (x.shape[0], configuration.inducingPoints)
            let (w, a) = (kernelWeights.scalars, alpha.scalars)
            // Σ_j K_j (w_j α), K_j `[N, M]` formed in place of the GEMM's products.
            var kernelTerm = [Double](repeating: 0, count: n), weighted = [Double](repeating: 0, count: m)
            let features = allFeatureValues(x, softplus: VectorMath.softplus)
            for j in 0..<configuration.kernelCount {
                let fx = features[j]
                let fz = featuresOfInducingPoints(j)
                let xNorms = fx.square().sum(alongAxis: 1).scalars, zNorms = fz.square().sum(alongAxis: 1).scalars
                var kernel = Tensor.matmul(fx, fz, transposeB: true).scalars
                // −‖φ(x) − φ(z)‖² / (2ℓ²) by the reciprocal: a multiply, not a divide, per element.
                let inverseScale = 1 / (bandwidth(j) * -2).scalar
                for k in 0..<m { weighted[k] = a[k] * w[j] }
                kernel.withUnsafeMutableBufferPointer { kernel in
                    zNorms.withUnsafeBufferPointer { zNorms in
                        let z = zNorms.baseAddress!
                        for i in 0..<n {
                            let (xn, p) = (xNorms[i], kernel.baseAddress! + i * m)
                            for k in 0..<m { p[k] = ((xn + z[k]) - p[k] * 2) * inverseScale }
                        }
                    }
                    VectorMath.exp(kernel)
                    // Row sums in a fixed order (not dgemv, whose rounding can depend on how
                    // OpenBLAS splits the rows among threads: the same seed must give the same run).
                    weighted.withUnsafeBufferPointer { c in
                        for i in 0..<n { kernelTerm[i] += DKEF.dot(kernel.baseAddress! + i * m, c.baseAddress!, m) }
                    }
                }
            }
            return baseLogDensity(x) + Tensor(shape: [n], scalars: kernelTerm)
        }
    }

    /// log p̃(x) with the given α `[M]`, `[N]`.
    public func logDensity(_ x: Tensor, alpha: Tensor) -> Tensor {
        baseLogDensity(x) + Tensor.matmul(kernelMatrix(x), alpha.reshaped([-1, 1])).reshaped([-1])
    }

    /// `LogDensityModel`: log p̃ with α = 0 (the base density); use `density(alpha:)` for a fitted model.
    public func logDensity(_ x: Tensor) -> Tensor { baseLogDensity(x) }

    /// The model density with coefficients α, as a log-density function with layer structure.
    public func density(alpha: Tensor) -> Density { Density(model: self, alpha: alpha) }
    /// log q₀ alone.
    public var base: Base { Base(model: self) }
    /// The basis functions x ↦ k(x, z_m) on repeated rows (see `Basis`).
    public var basis: Basis { Basis(model: self) }

    /// log p̃ = log q₀ + Σ_m α_m k(·, z_m).
    public struct Density: DiagonalHessianEstimating, ExplicitScore {
        public let model: DKEF
        public let alpha: Tensor
        public func logDensity(_ x: Tensor) -> Tensor { model.logDensity(x, alpha: alpha) }
        /// −x/σ₀² + `kernelScore` (one reverse sweep per net, no tape through x).
        public func score(at x: Tensor) -> Tensor {
            x / (-model.configuration.baseSigma * model.configuration.baseSigma) + model.kernelScore(at: x, alpha: alpha)
        }
        /// CP with per-pair noise: every basis function's pass with its own draws
        /// (`basisScoresAndDiagonalHessians`), contracted with α, and q₀'s exact score and −1/σ₀².
        public func scoreAndDiagonalHessian(at x: Tensor, method: DiagonalHessianMethod) -> (score: Tensor, diagonal: Tensor) {
            guard case .curvaturePropagation(_, .perPair) = method else {
                return model.propagate(x, partners: .all(alpha: alpha), includeBase: true, method: method)
            }
            let s2 = model.configuration.baseSigma * model.configuration.baseSigma
            let (scores, diagonals) = model.basisScoresAndDiagonalHessians(at: x, method: method)     // [N, M, D] each
            let a = alpha.reshaped([1, -1, 1])
            return ((scores * a).sum(alongAxis: 1) + x * (-1 / s2), (diagonals * a).sum(alongAxis: 1) - 1 / s2)
        }
    }

    /// log q₀.
    public struct Base: DiagonalHessianEstimating {
        public let model: DKEF
        public func logDensity(_ x: Tensor) -> Tensor { model.baseLogDensity(x) }
        public func scoreAndDiagonalHessian(at x: Tensor, method: DiagonalHessianMethod) -> (score: Tensor, diagonal: Tensor) {
            model.propagate(x, partners: nil, includeBase: true, method: method)
        }
    }

    /// The M basis functions on a batch whose rows come in groups of M: row r is paired with
    /// inducing point z_{r mod M} and maps to k(x_r, z_{r mod M}). With each point repeated M
    /// times (`x` `[N·M, D]`), an objective's terms on this function are the terms of each basis
    /// function at each point: the authors' (N, M, D) expansion.
    public struct Basis: DiagonalHessianEstimating {
        public let model: DKEF
        public func logDensity(_ x: Tensor) -> Tensor { model.pairedKernel(x) }
        public func scoreAndDiagonalHessian(at x: Tensor, method: DiagonalHessianMethod) -> (score: Tensor, diagonal: Tensor) {
            model.propagate(x, partners: .paired, includeBase: false, method: method)
        }
    }

    /// k(x_r, z_{r mod M}) for rows in groups of M, `[N·M]`.
    func pairedKernel(_ x: Tensor) -> Tensor {
        let m = configuration.inducingPoints
        precondition(x.shape[0] % m == 0, "DKEF.Basis: \(x.shape[0]) rows are not groups of M = \(m)")
        let n = x.shape[0] / m, w = kernelWeights
        var total: Tensor? = nil
        for j in 0..<configuration.kernelCount {
            let fx = features(j, x).phi.reshaped([n, m, -1]), fz = featuresOfInducingPoints(j)
            let kj = ((fx - fz).square().sum(alongAxis: 2) / (bandwidth(j) * -2)).exp() * w.select(j, alongAxis: 0)
            total = total.map { $0 + kj } ?? kj
        }
        return total!.reshaped([-1])
    }
}

let Foundation_log10 = 2.302585092994046  // ln 10: 10^l = e^{l ln 10}

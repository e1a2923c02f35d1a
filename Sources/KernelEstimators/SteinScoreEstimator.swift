import Autodiff
import COpenBLAS

/// The Stein gradient estimator (Li & Turner, "Gradient estimators for implicit models", ICLR 2018).
///
/// **In sample.** With K_ij = k(xᵢ, xⱼ) `[M, M]` and ⟨∇, K⟩ᵢ = Σⱼ ∂k(xᵢ, xⱼ)/∂xⱼ `[M, D]`, the
/// estimate of the scores at the samples is the ridge solution
///
///     Ĝ = −(K + ηI)⁻¹ ⟨∇, K⟩,   ⟨∇, K⟩ᵢ = (rᵢ xᵢ − (K X)ᵢ) / h²,  rᵢ = Σⱼ K_ij
///
/// (one GEMM, one Cholesky factorisation of K + ηI, one triangular solve with D right-hand sides).
///
/// **Out of sample.** A query point y is added to the samples and the (M + 1)-point estimator is
/// solved exactly; its last row, by the block inverse of K' = [[K_η, k], [kᵀ, κ + η]] with
/// kⱼ = k(xⱼ, y), κ = k(y, y) = 1, is
///
///     ŝ(y) = −(kᵀĜ − Σⱼ (Sⱼ + 1) kⱼ (xⱼ − y)/h²) / (κ + η − kᵀK_η⁻¹k),   S = kᵀ K_η⁻¹,
///
/// the formula of the authors' `SteinScoreEstimator` (one query point per call there). Here a batch
/// Y `[N, D]` is done at once: S = K_yx K_η⁻¹ `[N, M]` by one solve with N right-hand sides against
/// the fit's Cholesky factor, and the two sums by two GEMMs; each row is still exactly the
/// (M + 1)-point estimator at its own point (tested against that solve). The Schur complement
/// κ + η − kᵀK_η⁻¹k is ≥ η and loses digits when y is close to the samples' span and η is small.
public struct SteinScoreEstimator: KernelScoreEstimator {
    /// The ridge η added to K (the authors' default 0.001).
    public var eta: Double
    public var bandwidth: BandwidthRule

    public init(eta: Double = 0.001, bandwidth: BandwidthRule = .medianDistance) {
        self.eta = eta
        self.bandwidth = bandwidth
    }

    public func fit(_ samples: Tensor) throws(KernelEstimatorError) -> Estimate {
        let (m, d) = try checkedSamples(samples)
        guard eta.isFinite, eta >= 0 else { throw .regularisationNegative(eta) }
        let x = samples.scalars
        var factor = x.withUnsafeBufferPointer { squaredDistances($0, count: m, dimension: d) }
        let h = try bandwidth.bandwidth(squaredDistances: factor, samples: samples)
        RBFKernel(bandwidth: h).toGram(&factor)  // the distances become K, then K + ηI, then its factor
        let divergence = kernelDivergence(factor, x, count: m, dimension: d, bandwidth: h)  // ⟨∇, K⟩, [M, D]
        var norm = 0.0  // ‖K_η‖₁: the largest column sum, = row sum (K_η is symmetric, its entries ≥ 0)
        for i in 0..<m {
            factor[i * m + i] += eta
            var sum = 0.0
            for j in 0..<m { sum += factor[i * m + j] }
            norm = max(norm, sum)
        }
        // K_η is symmetric, so its row-major and column-major storage agree: factor it as a
        // column-major lower Cholesky factor L (K_η = L Lᵀ). LAPACK's own routines throughout
        // (LAPACKE's _work forms: no transposed copies, no NaN scans of inputs known finite).
        let lower = Int8(UInt8(ascii: "L"))
        let info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, lower, Int32(m), &factor, Int32(m))
        guard info == 0 else {
            if info > 0 { throw .singularKernelMatrix(eta: eta) }
            throw .factorisationFailed("dpotrf: argument \(-info) was illegal")
        }
        // Two equal samples make K singular, yet rounding can leave a tiny positive pivot:
        // refuse a factor whose reciprocal condition number is below machine ε.
        var reciprocalCondition = 0.0
        var work = [Double](repeating: 0, count: 3 * m), iwork = [Int32](repeating: 0, count: m)
        let conditioned = LAPACKE_dpocon_work(LAPACK_COL_MAJOR, lower, Int32(m), factor, Int32(m), norm, &reciprocalCondition, &work, &iwork)
        guard conditioned == 0, reciprocalCondition >= Double.ulpOfOne else { throw .singularKernelMatrix(eta: eta) }
        // Ĝ = −K_η⁻¹ ⟨∇, K⟩: the right-hand sides column-major, [M, D].
        var rhs = [Double](repeating: 0, count: m * d)
        for i in 0..<m { for c in 0..<d { rhs[c * m + i] = divergence[i * d + c] } }
        let solved = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, lower, Int32(m), Int32(d), factor, Int32(m), &rhs, Int32(m))
        guard solved == 0 else { throw .factorisationFailed("dpotrs: argument \(-solved) was illegal") }
        var gradient = [Double](repeating: 0, count: m * d)
        for i in 0..<m { for c in 0..<d { gradient[i * d + c] = -rhs[c * m + i] } }
        return Estimate(samples: samples, bandwidth: h, eta: eta, choleskyFactor: factor,
                        sampleScores: Tensor(shape: [m, d], scalars: gradient))
    }

    public struct Estimate: KernelScoreEstimate {
        public let samples: Tensor
        public let bandwidth: Double
        public let eta: Double
        /// The column-major lower Cholesky factor L of K + ηI, `[M·M]`.
        let choleskyFactor: [Double]
        /// Ĝ, `[M, D]`.
        public let sampleScores: Tensor

        public func scores(at points: Tensor) throws(KernelEstimatorError) -> Tensor {
            let (m, d) = (samples.shape[0], samples.shape[1])
            let n = try checkedQueries(points, dimension: d)
            guard n > 0 else { return Tensor(shape: [0, d], scalars: []) }
            let h2 = bandwidth * bandwidth
            let (x, y) = (samples.scalars, points.scalars)
            let kyx = x.withUnsafeBufferPointer { x in
                y.withUnsafeBufferPointer { y in RBFKernel(bandwidth: bandwidth).cross(y, count: n, x, count: m, dimension: d) }
            }
            // Row-major K_yx [N, M] is column-major K_yxᵀ [M, N]: solving K_η Z = K_yxᵀ in place
            // leaves column-major Z = K_η⁻¹ K_yxᵀ, which read row-major is S = K_yx K_η⁻¹ [N, M].
            var s = kyx
            let info = LAPACKE_dpotrs_work(LAPACK_COL_MAJOR, Int8(UInt8(ascii: "L")), Int32(m), Int32(n), choleskyFactor, Int32(m), &s, Int32(m))
            guard info == 0 else { throw .factorisationFailed("dpotrs: argument \(-info) was illegal") }
            // W = (S + 1) ∘ K_yx, its row sums, and the Schur complements 1 + η − Σⱼ Sⱼ kⱼ.
            var w = [Double](repeating: 0, count: n * m)
            var rowSums = [Double](repeating: 0, count: n), schur = [Double](repeating: 1 + eta, count: n)
            for i in 0..<n {
                var (sum, quadratic) = (0.0, 0.0)
                for j in 0..<m {
                    let k = kyx[i * m + j], sj = s[i * m + j]
                    w[i * m + j] = (sj + 1) * k
                    sum += (sj + 1) * k
                    quadratic += sj * k
                }
                rowSums[i] = sum
                schur[i] -= quadratic
            }
            let kg = product(kyx, sampleScores.scalars, rows: n, inner: m, columns: d)   // K_yx Ĝ, [N, D]
            let wx = product(w, x, rows: n, inner: m, columns: d)                        // W X, [N, D]
            var out = [Double](repeating: 0, count: n * d)
            for i in 0..<n {
                for c in 0..<d {
                    let inner = kg[i * d + c] - (wx[i * d + c] - rowSums[i] * y[i * d + c]) / h2
                    out[i * d + c] = -inner / schur[i]
                }
            }
            return Tensor(shape: [n, d], scalars: out)
        }
    }
}

/// ⟨∇, K⟩ᵢ = Σⱼ ∂k(xᵢ, xⱼ)/∂xⱼ = Σⱼ K_ij (xᵢ − xⱼ)/h² = (rᵢ xᵢ − (K X)ᵢ)/h² for the RBF gram
/// matrix K `[M·M]` (symmetric) of x `[M, D]`, `[M·D]`. By the kernel's symmetry this is also
/// Σⱼ ∂k(xⱼ, xᵢ)/∂xⱼ, the sum SSGE takes over the first argument.
func kernelDivergence(_ k: [Double], _ x: [Double], count m: Int, dimension d: Int, bandwidth h: Double) -> [Double] {
    var out = product(k, x, rows: m, inner: m, columns: d)
    let h2 = h * h
    for i in 0..<m {
        var r = 0.0
        for j in 0..<m { r += k[i * m + j] }
        for c in 0..<d { out[i * d + c] = (r * x[i * d + c] - out[i * d + c]) / h2 }
    }
    return out
}

/// A B for row-major A `[rows, inner]`, B `[inner, columns]` (one `dgemm`).
func product(_ a: [Double], _ b: [Double], rows: Int, inner: Int, columns: Int) -> [Double] {
    var out = [Double](repeating: 0, count: rows * columns)
    guard rows > 0, columns > 0 else { return out }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(columns), Int32(inner), 1, a, Int32(inner),
                b, Int32(columns), 0, &out, Int32(columns))
    return out
}

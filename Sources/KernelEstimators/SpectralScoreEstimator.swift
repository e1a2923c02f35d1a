import Autodiff
import COpenBLAS

/// The spectral Stein gradient estimator, SSGE (Shi, Sun & Zhu, "A spectral approach to gradient
/// estimation for implicit distributions", ICML 2018).
///
/// The score is expanded in the eigenfunctions ψⱼ of the kernel's integral operator under q, which
/// the Nyström method estimates from the eigenpairs (μⱼ, uⱼ) of K + ηI `[M, M]`:
///
///     ψⱼ(y) = (√M / μⱼ) Σₘ k(y, xₘ) u_mj,
///
/// and by Stein's identity its coefficients are βⱼ = −E_q[∇ψⱼ] ≈ −(1/M) Σᵢ ∇ψⱼ(xᵢ), so
///
///     ŝ(y) = Σⱼ βⱼ ψⱼ(y) = K_yx B,   B = −U_J Λ_J⁻² U_Jᵀ ⟨∇, K⟩   `[M, D]`,
///
/// with ⟨∇, K⟩ᵢ = Σₘ ∂k(xₘ, xᵢ)/∂xₘ (`kernelDivergence`, no η) and J the eigenpairs kept, the
/// largest. The fit is one `dsyrk`, one `dsyevd` and four GEMMs; a query batch is one GEMM, K_yx B.
///
/// With all M eigenpairs and η = 0, at the samples, K B = −K⁻¹⟨∇, K⟩ is Stein's estimate with
/// η = 0 (tested); with η > 0 the two differ (SSGE's Nyström uses K without η: K B =
/// −Σⱼ λⱼ/μⱼ² uⱼuⱼᵀ⟨∇, K⟩ against Stein's −Σⱼ 1/μⱼ uⱼuⱼᵀ⟨∇, K⟩).
public struct SpectralScoreEstimator: KernelScoreEstimator {
    /// Which eigenpairs are kept.
    public enum EigenvalueCut: Sendable, Equatable {
        /// The authors' rule (their `n_eigen_threshold`, 0.99): with the eigenvalues in decreasing
        /// order and cⱼ the fraction of their sum held by the first j, keep J = #{j : cⱼ < t}
        /// (for a nonnegative spectrum, the leading eigenvalues before the one that reaches t), at
        /// least 1. (Their code keeps
        /// every eigenvalue when that count is 0, through a slice `[-0:]`; here J ≥ 1.)
        case fraction(Double)
        /// Exactly the J largest.
        case count(Int)
    }

    public var cut: EigenvalueCut
    /// The ridge η added to K before the eigendecomposition (the authors' default: none).
    public var eta: Double
    public var bandwidth: BandwidthRule

    public init(cut: EigenvalueCut = .fraction(0.99), eta: Double = 0, bandwidth: BandwidthRule = .medianDistance) {
        self.cut = cut
        self.eta = eta
        self.bandwidth = bandwidth
    }

    public func fit(_ samples: Tensor) throws(KernelEstimatorError) -> Estimate {
        try spectrum(of: samples).estimate(cut: cut)
    }

    /// The eigendecomposition of K + ηI for samples `[M, D]` (the O(M³) part of a fit), from
    /// which estimates at any number of eigenvalue cuts follow in O(M²D) each. `cut` is checked
    /// here too, so a fit with a bad cut fails before the decomposition.
    public func spectrum(of samples: Tensor) throws(KernelEstimatorError) -> Spectrum {
        let (m, d) = try checkedSamples(samples)
        guard eta.isFinite, eta >= 0 else { throw .regularisationNegative(eta) }
        try Self.check(cut, samples: m)
        let x = samples.scalars
        let distances = x.withUnsafeBufferPointer { squaredDistances($0, count: m, dimension: d) }
        let h = try bandwidth.bandwidth(squaredDistances: distances, samples: samples)
        let k = RBFKernel(bandwidth: h).gram(squaredDistances: distances)
        var vectors = k
        for i in 0..<m { vectors[i * m + i] += eta }
        // K + ηI is symmetric (its storage the same in either order); LAPACK's dsyevd leaves the
        // eigenvalues ascending and, column-major, eigenvector j in column j: read row-major,
        // row j of the [M, M] result is uⱼ.
        var values = [Double](repeating: 0, count: m)
        let (jobz, uplo) = (Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "L")))
        var workSize = 0.0, iworkSize: Int32 = 0
        let query = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, uplo, Int32(m), &vectors, Int32(m), &values, &workSize, -1, &iworkSize, -1)
        guard query == 0 else { throw .factorisationFailed("dsyevd's workspace query failed (\(query))") }
        var work = [Double](repeating: 0, count: Int(workSize)), iwork = [Int32](repeating: 0, count: Int(iworkSize))
        let info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, uplo, Int32(m), &vectors, Int32(m), &values, &work, Int32(work.count), &iwork, Int32(iwork.count))
        guard info == 0 else {
            throw .factorisationFailed(info > 0 ? "dsyevd did not converge (\(info) eigenvalues)" : "dsyevd: argument \(-info) was illegal")
        }
        return Spectrum(samples: samples, bandwidth: h, eta: eta, kernel: k, ascendingValues: values, vectors: vectors,
                        divergence: kernelDivergence(k, x, count: m, dimension: d, bandwidth: h))
    }

    static func check(_ cut: EigenvalueCut, samples m: Int) throws(KernelEstimatorError) {
        switch cut {
        case .fraction(let t): guard t > 0, t <= 1 else { throw .eigenvalueThresholdOutOfRange(t) }
        case .count(let j): guard j >= 1, j <= m else { throw .eigenvalueCountOutOfRange(count: j, samples: m) }
        }
    }

    /// K's eigendecomposition with what every cut's estimate needs.
    public struct Spectrum: Sendable {
        public let samples: Tensor
        public let bandwidth: Double
        public let eta: Double
        /// K (no η), `[M·M]`.
        let kernel: [Double]
        /// The eigenvalues of K + ηI, ascending, and its eigenvectors (row j of the row-major
        /// `[M, M]` matrix is uⱼ).
        let ascendingValues: [Double]
        let vectors: [Double]
        /// ⟨∇, K⟩, `[M·D]`.
        let divergence: [Double]

        /// The estimate that keeps the eigenpairs `cut` selects.
        public func estimate(cut: EigenvalueCut) throws(KernelEstimatorError) -> Estimate {
            let (m, d) = (samples.shape[0], samples.shape[1])
            try SpectralScoreEstimator.check(cut, samples: m)
            let kept = SpectralScoreEstimator.keptCount(cut, ascending: ascendingValues)
            let first = m - kept  // kept columns: first ..< m
            guard ascendingValues[first] > 0 else {
                throw .factorisationFailed("SSGE keeps an eigenvalue \(ascendingValues[first]) ≤ 0 of K + ηI (η = \(eta)): keep fewer eigenvalues or use η > 0")
            }
            // P = U_Jᵀ ⟨∇, K⟩ [J, D] (U_Jᵀ: rows first ..< M of `vectors`), scaled by −1/μⱼ², then
            // B = U_J P [M, D].
            var p = [Double](repeating: 0, count: kept * d)
            vectors.withUnsafeBufferPointer { u in
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(kept), Int32(d), Int32(m), 1, u.baseAddress! + first * m, Int32(m),
                            divergence, Int32(d), 0, &p, Int32(d))
            }
            for j in 0..<kept {
                let mu = ascendingValues[first + j]
                for c in 0..<d { p[j * d + c] *= -1 / (mu * mu) }
            }
            var b = [Double](repeating: 0, count: m * d)
            vectors.withUnsafeBufferPointer { u in
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(d), Int32(kept), 1, u.baseAddress! + first * m, Int32(m),
                            p, Int32(d), 0, &b, Int32(d))
            }
            let inSample = product(kernel, b, rows: m, inner: m, columns: d)
            return Estimate(samples: samples, bandwidth: bandwidth, eta: eta, eigenvalues: Array(ascendingValues[first...].reversed()),
                            coefficients: b, sampleScores: Tensor(shape: [m, d], scalars: inSample))
        }
    }

    /// J for eigenvalues in ascending order.
    static func keptCount(_ cut: EigenvalueCut, ascending values: [Double]) -> Int {
        switch cut {
        case .count(let j):
            return j
        case .fraction(let t):
            let total = values.reduce(0, +)
            var (cumulative, count) = (0.0, 0)
            for value in values.reversed() {
                cumulative += value
                if cumulative / total < t { count += 1 }
            }
            return max(count, 1)
        }
    }

    public struct Estimate: KernelScoreEstimate {
        public let samples: Tensor
        public let bandwidth: Double
        public let eta: Double
        /// The kept eigenvalues μⱼ of K + ηI, largest first (their count is J).
        public let eigenvalues: [Double]
        /// B = −U_J Λ_J⁻² U_Jᵀ ⟨∇, K⟩, `[M·D]`: ŝ(y) = K_yx B.
        let coefficients: [Double]
        public let sampleScores: Tensor

        public func scores(at points: Tensor) throws(KernelEstimatorError) -> Tensor {
            let (m, d) = (samples.shape[0], samples.shape[1])
            let n = try checkedQueries(points, dimension: d)
            let kyx = samples.scalars.withUnsafeBufferPointer { x in
                points.scalars.withUnsafeBufferPointer { y in RBFKernel(bandwidth: bandwidth).cross(y, count: n, x, count: m, dimension: d) }
            }
            return Tensor(shape: [n, d], scalars: product(kyx, coefficients, rows: n, inner: m, columns: d))
        }
    }
}

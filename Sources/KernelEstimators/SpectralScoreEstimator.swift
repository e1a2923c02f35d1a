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
/// largest. The fit is one `dsyrk`, one eigendecomposition (`EigenSolver`) and four GEMMs; a query batch is one GEMM, K_yx B.
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

    /// How the eigenpairs are computed.
    public enum EigenSolver: Sendable {
        /// Every eigenpair (LAPACK `dsyevd`, divide and conquer): the plain path, kept as the
        /// oracle of the other.
        case all
        /// The eigenvalues first, then eigenvectors only for the largest J the cuts keep:
        /// `dsytrd` (the reduction to tridiagonal form, which both paths do), `dsterf` (every
        /// eigenvalue, O(M²)), the tridiagonal matrix's J eigenvectors — by `dstemr` (MRRR, O(MJ))
        /// when J ≤ M/3, else by `dstedc` (divide and conquer, all of them, as dsyevd) — and
        /// `dormtr` (the back-transformation of the J kept, 2M²J). The same eigenpairs as `all`
        /// to rounding (tested against it); it saves the back-transformation of the M − J vectors
        /// no cut keeps, and for small J the divide and conquer too.
        case selected
    }

    /// The eigendecomposition of K + ηI for samples `[M, D]` (the O(M³) part of a fit), from
    /// which estimates at any of `cuts` follow in O(M²D) each (default: this estimator's cut).
    /// The cuts are checked here, so a fit with a bad cut fails before the decomposition.
    public func spectrum(of samples: Tensor, cuts: [EigenvalueCut]? = nil, solver: EigenSolver = .selected) throws(KernelEstimatorError) -> Spectrum {
        let (m, d) = try checkedSamples(samples)
        guard eta.isFinite, eta >= 0 else { throw .regularisationNegative(eta) }
        let cuts = cuts ?? [cut]
        for c in cuts { try Self.check(c, samples: m) }
        let x = samples.scalars
        var k = x.withUnsafeBufferPointer { squaredDistances($0, count: m, dimension: d) }
        let h = try bandwidth.bandwidth(squaredDistances: k, samples: samples)
        RBFKernel(bandwidth: h).toGram(&k)  // the distances become K
        var a = k
        for i in 0..<m { a[i * m + i] += eta }
        // K + ηI is symmetric: its storage is the same in either order, and LAPACK reads it
        // column-major. Both solvers leave eigenvector j contiguous (column j, column-major):
        // read row-major, row j of the result is uⱼ.
        let (values, vectors) = try solver == .all ? Self.allEigenpairs(&a, m) : Self.selectedEigenpairs(&a, m, cuts: cuts)
        return Spectrum(samples: samples, bandwidth: h, eta: eta, kernel: k, ascendingValues: values, vectors: vectors,
                        divergence: kernelDivergence(k, x, count: m, dimension: d, bandwidth: h))
    }

    /// dsyevd: (every eigenvalue ascending, every eigenvector) of the symmetric `a` `[M·M]`.
    static func allEigenpairs(_ a: inout [Double], _ m: Int) throws(KernelEstimatorError) -> ([Double], [Double]) {
        var values = [Double](repeating: 0, count: m)
        let (jobz, uplo) = (Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "L")))
        var workSize = 0.0, iworkSize: Int32 = 0
        let query = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, uplo, Int32(m), &a, Int32(m), &values, &workSize, -1, &iworkSize, -1)
        guard query == 0 else { throw .factorisationFailed("dsyevd's workspace query failed (\(query))") }
        var work = [Double](repeating: 0, count: Int(workSize)), iwork = [Int32](repeating: 0, count: Int(iworkSize))
        let info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, uplo, Int32(m), &a, Int32(m), &values, &work, Int32(work.count), &iwork, Int32(iwork.count))
        guard info == 0 else {
            throw .factorisationFailed(info > 0 ? "dsyevd did not converge (\(info) eigenvalues)" : "dsyevd: argument \(-info) was illegal")
        }
        return (values, a)
    }

    /// dsytrd, dsterf, dstemr, dormtr: (every eigenvalue ascending, the eigenvectors of the
    /// largest J any of `cuts` keeps, [J·M], ascending) of the symmetric `a` `[M·M]`.
    static func selectedEigenpairs(_ a: inout [Double], _ m: Int, cuts: [EigenvalueCut]) throws(KernelEstimatorError) -> ([Double], [Double]) {
        let lower = Int8(UInt8(ascii: "L"))
        var diagonal = [Double](repeating: 0, count: m), off = [Double](repeating: 0, count: max(m - 1, 1)), tau = [Double](repeating: 0, count: max(m - 1, 1))
        var size = 0.0
        guard LAPACKE_dsytrd_work(LAPACK_COL_MAJOR, lower, Int32(m), &a, Int32(m), &diagonal, &off, &tau, &size, -1) == 0 else {
            throw .factorisationFailed("dsytrd's workspace query failed")
        }
        var work = [Double](repeating: 0, count: max(Int(size), 1))
        let reduced = LAPACKE_dsytrd_work(LAPACK_COL_MAJOR, lower, Int32(m), &a, Int32(m), &diagonal, &off, &tau, &work, Int32(work.count))
        guard reduced == 0 else { throw .factorisationFailed("dsytrd: argument \(-reduced) was illegal") }
        var values = diagonal, scratch = off
        let sorted = LAPACKE_dsterf_work(Int32(m), &values, &scratch)
        guard sorted == 0 else { throw .factorisationFailed("dsterf did not converge (\(sorted))") }
        let kept = cuts.map { keptCount($0, ascending: values) }.max()!
        var z: [Double]
        var d = diagonal, e = off + [0]
        var iSize: Int32 = 0
        if 3 * kept <= m {
            // Few vectors: MRRR for the J largest eigenpairs of the tridiagonal matrix (indices
            // M − J + 1 … M, 1-based), O(MJ).
            var found: Int32 = 0, tryRelative: Int32 = 1
            var w = [Double](repeating: 0, count: m), support = [Int32](repeating: 0, count: 2 * kept)
            z = [Double](repeating: 0, count: m * kept)
            let (jobz, range) = (Int8(UInt8(ascii: "V")), Int8(UInt8(ascii: "I")))
            guard LAPACKE_dstemr_work(LAPACK_COL_MAJOR, jobz, range, Int32(m), &d, &e, 0, 0, Int32(m - kept + 1), Int32(m), &found, &w, &z, Int32(m),
                                      Int32(kept), &support, &tryRelative, &size, -1, &iSize, -1) == 0 else {
                throw .factorisationFailed("dstemr's workspace query failed")
            }
            work = [Double](repeating: 0, count: max(Int(size), 1))
            var iwork = [Int32](repeating: 0, count: max(Int(iSize), 1))
            let solved = LAPACKE_dstemr_work(LAPACK_COL_MAJOR, jobz, range, Int32(m), &d, &e, 0, 0, Int32(m - kept + 1), Int32(m), &found, &w, &z, Int32(m),
                                             Int32(kept), &support, &tryRelative, &work, Int32(work.count), &iwork, Int32(iwork.count))
            guard solved == 0, found == Int32(kept) else { throw .factorisationFailed("dstemr failed (info \(solved), \(found) of \(kept) eigenpairs)") }
        } else {
            // Many: divide and conquer for every eigenvector of the tridiagonal matrix (dsyevd's own
            // middle stage, mostly GEMMs; faster than MRRR for many vectors), of which only the J
            // largest are carried back.
            var all = [Double](repeating: 0, count: m * m)
            let compz = Int8(UInt8(ascii: "I"))
            guard LAPACKE_dstedc_work(LAPACK_COL_MAJOR, compz, Int32(m), &d, &e, &all, Int32(m), &size, -1, &iSize, -1) == 0 else {
                throw .factorisationFailed("dstedc's workspace query failed")
            }
            work = [Double](repeating: 0, count: max(Int(size), 1))
            var iwork = [Int32](repeating: 0, count: max(Int(iSize), 1))
            let solved = LAPACKE_dstedc_work(LAPACK_COL_MAJOR, compz, Int32(m), &d, &e, &all, Int32(m), &work, Int32(work.count), &iwork, Int32(iwork.count))
            guard solved == 0 else { throw .factorisationFailed("dstedc did not converge (\(solved))") }
            z = Array(all[((m - kept) * m)...])
        }
        // Back to K's basis: z ← Q z, Q the product of dsytrd's reflectors.
        let (left, plain) = (Int8(UInt8(ascii: "L")), Int8(UInt8(ascii: "N")))
        guard LAPACKE_dormtr_work(LAPACK_COL_MAJOR, left, lower, plain, Int32(m), Int32(kept), a, Int32(m), tau, &z, Int32(m), &size, -1) == 0 else {
            throw .factorisationFailed("dormtr's workspace query failed")
        }
        work = [Double](repeating: 0, count: max(Int(size), 1))
        let transformed = LAPACKE_dormtr_work(LAPACK_COL_MAJOR, left, lower, plain, Int32(m), Int32(kept), a, Int32(m), tau, &z, Int32(m), &work, Int32(work.count))
        guard transformed == 0 else { throw .factorisationFailed("dormtr: argument \(-transformed) was illegal") }
        // Every eigenvalue from dsterf (dstemr's own agree to rounding), so the cuts read one list.
        return (values, z)
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
        /// The eigenvalues of K + ηI, ascending, and the eigenvectors of the largest J of them,
        /// `[J·M]` ascending (row i is u of eigenvalue M − J + i).
        let ascendingValues: [Double]
        let vectors: [Double]
        var vectorCount: Int { vectors.count / samples.shape[0] }
        /// ⟨∇, K⟩, `[M·D]`.
        let divergence: [Double]

        /// The estimate that keeps the eigenpairs `cut` selects.
        public func estimate(cut: EigenvalueCut) throws(KernelEstimatorError) -> Estimate {
            let (m, d) = (samples.shape[0], samples.shape[1])
            try SpectralScoreEstimator.check(cut, samples: m)
            let kept = SpectralScoreEstimator.keptCount(cut, ascending: ascendingValues)
            guard kept <= vectorCount else {
                throw .factorisationFailed("this spectrum holds the largest \(vectorCount) eigenvectors and the cut keeps \(kept): list the cut when computing the spectrum")
            }
            let first = m - kept  // kept eigenvalues: first ..< m; their vectors from row `offset` on
            let offset = (first - (m - vectorCount)) * m
            guard ascendingValues[first] > 0 else {
                throw .factorisationFailed("SSGE keeps an eigenvalue \(ascendingValues[first]) ≤ 0 of K + ηI (η = \(eta)): keep fewer eigenvalues or use η > 0")
            }
            // P = U_Jᵀ ⟨∇, K⟩ [J, D] (U_Jᵀ: the last J rows of `vectors`), scaled by −1/μⱼ², then
            // B = U_J P [M, D].
            var p = [Double](repeating: 0, count: kept * d)
            vectors.withUnsafeBufferPointer { u in
                cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(kept), Int32(d), Int32(m), 1, u.baseAddress! + offset, Int32(m),
                            divergence, Int32(d), 0, &p, Int32(d))
            }
            for j in 0..<kept {
                let mu = ascendingValues[first + j]
                for c in 0..<d { p[j * d + c] *= -1 / (mu * mu) }
            }
            var b = [Double](repeating: 0, count: m * d)
            vectors.withUnsafeBufferPointer { u in
                cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(d), Int32(kept), 1, u.baseAddress! + offset, Int32(m),
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

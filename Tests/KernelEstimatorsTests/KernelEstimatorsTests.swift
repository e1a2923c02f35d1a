import Autodiff
import Foundation
import GSLNumerics
@testable import KernelEstimators
import Testing

// Brute-force references: every kernel term by explicit loops over pairs, systems solved by LU
// (Autodiff's dgesv) and eigenpairs by cyclic Jacobi rotations, none of which the estimators use.

/// Row i of x `[n, D]`.
private func row(_ x: Tensor, _ i: Int) -> [Double] { let d = x.shape[1]; return Array(x.scalars[(i * d)..<((i + 1) * d)]) }
private func squaredDistance(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) }
private func rbf(_ a: [Double], _ b: [Double], _ h: Double) -> Double { exp(-squaredDistance(a, b) / (2 * h * h)) }
/// ∂k(a, b)/∂b = k(a, b) (a − b)/h².
private func rbfGradientInSecond(_ a: [Double], _ b: [Double], _ h: Double) -> [Double] {
    let k = rbf(a, b, h)
    return zip(a, b).map { k * ($0 - $1) / (h * h) }
}

/// The median heuristic as the authors write it: all M² distances, sorted, the ⌊M²/2⌋-th largest.
private func bruteMedian(_ x: Tensor) -> Double {
    let m = x.shape[0]
    var all = [Double]()
    for i in 0..<m { for j in 0..<m { all.append(squaredDistance(row(x, i), row(x, j)).squareRoot()) } }
    return all.sorted(by: >)[m * m / 2 - 1]
}

/// The Stein estimator on points p₁ … p_P (rows of the result): −(K + ηI)⁻¹⟨∇, K⟩ with every
/// entry by loops and the solve by LU.
private func bruteStein(_ points: [[Double]], eta: Double, h: Double) -> [[Double]] {
    let p = points.count, d = points[0].count
    var k = [Double](repeating: 0, count: p * p), divergence = [Double](repeating: 0, count: p * d)
    for i in 0..<p {
        for j in 0..<p {
            k[i * p + j] = rbf(points[i], points[j], h) + (i == j ? eta : 0)
            let g = rbfGradientInSecond(points[i], points[j], h)
            for c in 0..<d { divergence[i * d + c] += g[c] }
        }
    }
    let solved = Tensor.solve(Tensor(shape: [p, p], scalars: k), Tensor(shape: [p, d], scalars: divergence))
    return (0..<p).map { i in (0..<d).map { -solved.scalars[i * d + $0] } }
}

/// Eigenpairs of a symmetric matrix `[n·n]` by cyclic Jacobi rotations: (values, vectors) with
/// vectors[j] the j-th eigenvector, unsorted.
private func jacobiEigen(_ matrix: [Double], _ n: Int) -> ([Double], [[Double]]) {
    var a = matrix
    var v = [Double](repeating: 0, count: n * n)
    for i in 0..<n { v[i * n + i] = 1 }
    for _ in 0..<100 {
        var off = 0.0
        for i in 0..<n { for j in 0..<n where i != j { off += a[i * n + j] * a[i * n + j] } }
        if off < 1e-26 { break }
        for p in 0..<n {
            for q in (p + 1)..<n where abs(a[p * n + q]) > 1e-300 {
                let theta = (a[q * n + q] - a[p * n + p]) / (2 * a[p * n + q])
                let t = (theta >= 0 ? 1 : -1) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {  // A ← A J (columns p, q)
                    let (akp, akq) = (a[k * n + p], a[k * n + q])
                    a[k * n + p] = c * akp - s * akq
                    a[k * n + q] = s * akp + c * akq
                }
                for k in 0..<n {  // A ← Jᵀ A (rows p, q)
                    let (apk, aqk) = (a[p * n + k], a[q * n + k])
                    a[p * n + k] = c * apk - s * aqk
                    a[q * n + k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q])
                    v[k * n + p] = c * vkp - s * vkq
                    v[k * n + q] = s * vkp + c * vkq
                }
            }
        }
    }
    return ((0..<n).map { a[$0 * n + $0] }, (0..<n).map { j in (0..<n).map { v[$0 * n + j] } })
}

private func maxRelativeDifference(_ a: Tensor, _ b: Tensor) -> Double {
    let scale = b.scalars.map { abs($0) }.max() ?? 1
    return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max()! / scale
}

/// E‖ŝ − s‖² / E‖s‖² over the rows.
private func relativeError(_ estimate: Tensor, _ truth: Tensor) -> Double {
    zip(estimate.scalars, truth.scalars).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / truth.scalars.map { $0 * $0 }.reduce(0, +)
}

@Suite("Kernel score estimators") struct KernelEstimatorsTests {
    // The median heuristic is the ⌊M²/2⌋-th largest of all M² distances (zeros included): the
    // selection over the distinct pairs equals sorting the full list, for even and odd M.
    @Test func medianHeuristicEqualsSortingAllDistances() throws {
        for (m, d) in [(2, 1), (3, 2), (7, 3), (40, 5), (41, 2)] {
            let x = RandomStream(seed: UInt64(m * 10 + d)).normal(shape: [m, d])
            let h = try BandwidthRule.medianDistance.bandwidth(for: x)
            let expected = bruteMedian(x)
            #expect(abs(h - expected) <= 1e-12 * expected, "M = \(m), D = \(d): \(h) vs \(expected)")
            #expect(try BandwidthRule.scaledMedian(0.5).bandwidth(for: x) == 0.5 * h)
        }
    }

    // The radix selection of nonnegative values (large arrays) returns the k-th largest, with
    // ties, zeros and values spread over many binades or crowded into one bucket.
    @Test func radixSelectionEqualsSorting() {
        let stream = RandomStream(seed: 4)
        let sets: [[Double]] = [
            (0..<20_000).map { _ in stream.uniform() * 50 },
            (0..<9_000).map { _ in Double(stream.integer(below: 40)) },  // ties and zeros
            (0..<6_000).map { _ in exp(30 * stream.uniform() - 15) },     // many binades
            (0..<5_000).map { _ in 1 + 1e-9 * stream.uniform() },         // one bucket
        ]
        for values in sets {
            let sorted = values.sorted(by: >)
            for k in [1, 2, values.count / 3, values.count / 2, values.count - 1, values.count] {
                var copy = values
                #expect(copy.withUnsafeMutableBufferPointer { kthLargestNonnegative($0, k) } == sorted[k - 1], "n = \(values.count), k = \(k)")
            }
        }
    }

    // Hoare selection returns the k-th largest for every k, with ties.
    @Test func selectionEqualsSorting() {
        let stream = RandomStream(seed: 3)
        for n in [1, 2, 5, 64, 257] {
            let values = (0..<n).map { _ in Double(stream.integer(below: 9)) }
            let sorted = values.sorted(by: >)
            for k in 1...n {
                var copy = values
                #expect(kthLargest(&copy, k) == sorted[k - 1], "n = \(n), k = \(k)")
            }
        }
    }

    // In sample, Stein's GEMM-and-Cholesky estimate equals −(K + ηI)⁻¹⟨∇, K⟩ built by loops and
    // solved by LU.
    @Test func steinInSampleEqualsTheRidgeSolution() throws {
        let x = RandomStream(seed: 11).normal(shape: [30, 3])
        for eta in [0.001, 0.1] {
            let fit = try SteinScoreEstimator(eta: eta).fit(x)
            let expected = bruteStein((0..<30).map { row(x, $0) }, eta: eta, h: fit.bandwidth)
            let difference = maxRelativeDifference(fit.sampleScores, Tensor(rows: expected))
            #expect(difference < 1e-10, "η = \(eta): \(difference)")
            #expect(fit.sampleScores.shape == [30, 3])
        }
    }

    // Out of sample, each row of the batch formula is the (M + 1)-point Stein estimator solved with
    // the query point added to the samples: its last row.
    @Test func steinOutOfSampleEqualsTheAugmentedSolvePerPoint() throws {
        let stream = RandomStream(seed: 12)
        let x = stream.normal(shape: [25, 2]), y = stream.normal(shape: [6, 2]) * 1.5
        let fit = try SteinScoreEstimator(eta: 0.001).fit(x)
        let batch = try fit.scores(at: y)
        #expect(batch.shape == [6, 2])
        let samples = (0..<25).map { row(x, $0) }
        for n in 0..<6 {
            let augmented = bruteStein(samples + [row(y, n)], eta: 0.001, h: fit.bandwidth)
            let expected = Tensor(augmented[25]), got = Tensor(row(batch, n))
            #expect(maxRelativeDifference(got, expected) < 1e-8, "query \(n): \(got) vs \(expected)")
        }
        // A batch answers as its points one at a time do.
        let single = try fit.scores(at: Tensor(shape: [1, 2], scalars: row(y, 4)))
        #expect(maxRelativeDifference(single, Tensor(shape: [1, 2], scalars: row(batch, 4))) < 1e-12)
        #expect(try fit.scores(at: Tensor(shape: [0, 2], scalars: [])).shape == [0, 2])
    }

    // SSGE against its definition term by term: Jacobi eigenpairs of K + ηI, the Nyström
    // eigenfunctions ψⱼ(y) = √M/μⱼ Σₘ k(y, xₘ) u_mj, βⱼ = −(1/M) Σᵢ ∇ψⱼ(xᵢ) from ψ's gradient,
    // ŝ(y) = Σⱼ βⱼ ψⱼ(y) over the J largest.
    @Test func spectralEqualsTheNystromExpansion() throws {
        let stream = RandomStream(seed: 13)
        let (m, d) = (20, 2)
        let x = stream.normal(shape: [m, d]), y = stream.normal(shape: [5, d])
        for (cut, eta) in [(SpectralScoreEstimator.EigenvalueCut.count(6), 0.0), (.count(12), 0.01), (.fraction(0.99), 0.0)] {
            let fit = try SpectralScoreEstimator(cut: cut, eta: eta).fit(x)
            let h = fit.bandwidth
            let samples = (0..<m).map { row(x, $0) }
            var k = [Double](repeating: 0, count: m * m)
            for i in 0..<m { for j in 0..<m { k[i * m + j] = rbf(samples[i], samples[j], h) + (i == j ? eta : 0) } }
            let (values, vectors) = jacobiEigen(k, m)
            let order = values.indices.sorted { values[$0] > values[$1] }.prefix(fit.eigenvalues.count)
            for (j, index) in order.enumerated() { #expect(abs(fit.eigenvalues[j] - values[index]) < 1e-10 * values[order.first!]) }
            func psi(_ point: [Double], _ j: Int) -> Double {
                (Double(m).squareRoot() / values[j]) * (0..<m).map { rbf(point, samples[$0], h) * vectors[j][$0] }.reduce(0, +)
            }
            func psiGradient(_ point: [Double], _ j: Int) -> [Double] {  // ∂k(p, xₘ)/∂p = −∂k(p, xₘ)/∂xₘ
                var g = [Double](repeating: 0, count: d)
                for mm in 0..<m {
                    let gk = rbfGradientInSecond(point, samples[mm], h)
                    for c in 0..<d { g[c] -= gk[c] * vectors[j][mm] }
                }
                return g.map { $0 * Double(m).squareRoot() / values[j] }
            }
            let beta = order.map { j in
                (0..<d).map { c in -(0..<m).map { psiGradient(samples[$0], j)[c] }.reduce(0, +) / Double(m) }
            }
            let expected = (0..<5).map { n in
                (0..<d).map { c in order.enumerated().map { beta[$0.offset][c] * psi(row(y, n), $0.element) }.reduce(0, +) }
            }
            let got = try fit.scores(at: y)
            #expect(maxRelativeDifference(got, Tensor(rows: expected)) < 1e-9, "cut \(cut), η = \(eta)")
            // In sample = the same expansion at the samples.
            #expect(maxRelativeDifference(fit.sampleScores, try fit.scores(at: x)) < 1e-12)
        }
    }

    // With all M eigenpairs and η = 0, SSGE at the samples is K B = −K⁻¹⟨∇, K⟩: Stein's estimate
    // with η = 0, on points spread enough that K is well conditioned.
    @Test func spectralWithEveryEigenvalueIsSteinWithoutRidge() throws {
        let x = RandomStream(seed: 14).normal(shape: [12, 2]) * 3
        let rule = BandwidthRule.fixed(1.0)
        let spectral = try SpectralScoreEstimator(cut: .count(12), eta: 0, bandwidth: rule).fit(x)
        let stein = try SteinScoreEstimator(eta: 0, bandwidth: rule).fit(x)
        let difference = maxRelativeDifference(spectral.sampleScores, stein.sampleScores)
        #expect(difference < 1e-9, "\(difference)")
        // With η > 0 they differ (SSGE's Nyström step uses K without η).
        let spectralRidge = try SpectralScoreEstimator(cut: .count(12), eta: 0.5, bandwidth: rule).fit(x)
        let steinRidge = try SteinScoreEstimator(eta: 0.5, bandwidth: rule).fit(x)
        #expect(maxRelativeDifference(spectralRidge.sampleScores, steinRidge.sampleScores) > 1e-3)
    }

    // One eigendecomposition serves every cut it was computed for: its estimates are a fit's at
    // that cut (to rounding: the fit computes only its own cut's eigenvectors); a cut that keeps
    // more eigenvectors than it holds is refused.
    @Test func oneSpectrumServesEveryCut() throws {
        let x = RandomStream(seed: 15).normal(shape: [40, 3]), y = RandomStream(seed: 16).normal(shape: [7, 3])
        let cuts: [SpectralScoreEstimator.EigenvalueCut] = [.fraction(0.9), .fraction(0.99), .count(5), .count(40)]
        let spectrum = try SpectralScoreEstimator().spectrum(of: x, cuts: cuts)
        for cut in cuts {
            let shared = try spectrum.estimate(cut: cut), own = try SpectralScoreEstimator(cut: cut).fit(x)
            #expect(maxRelativeDifference(shared.sampleScores, own.sampleScores) < 1e-10)
            #expect(maxRelativeDifference(try shared.scores(at: y), try own.scores(at: y)) < 1e-10)
        }
        #expect(throws: KernelEstimatorError.eigenvalueCountOutOfRange(count: 41, samples: 40)) { try spectrum.estimate(cut: .count(41)) }
        let narrow = try SpectralScoreEstimator().spectrum(of: x, cuts: [.count(3)])
        #expect(throws: KernelEstimatorError.self) { try narrow.estimate(cut: .count(10)) }
    }

    // The selected-eigenvector path (dsytrd, dsterf, dstemr, dormtr) gives the estimates of
    // every eigenpair by dsyevd, its oracle, to 1e-10 relative at every cut, in and out of sample.
    @Test func selectedEigenvectorsEqualTheFullDecomposition() throws {
        let stream = RandomStream(seed: 17)
        for (m, d) in [(60, 2), (300, 10), (500, 40)] {
            let x = stream.normal(shape: [m, d]), y = stream.normal(shape: [50, d])
            // Many vectors (the 1 − 10⁻⁴ cut: divide and conquer) and few (M/4: MRRR).
            for cuts in [[SpectralScoreEstimator.EigenvalueCut.fraction(0.9), .fraction(0.99), .fraction(0.9999), .count(m / 3)], [.count(m / 4)]] {
            let full = try SpectralScoreEstimator().spectrum(of: x, cuts: cuts, solver: .all)
            let selected = try SpectralScoreEstimator().spectrum(of: x, cuts: cuts, solver: .selected)
            #expect(selected.vectorCount < m && full.vectorCount == m)
            if cuts.count == 1 { #expect(selected.vectorCount == m / 4) }
            for cut in cuts {
                let (a, b) = (try full.estimate(cut: cut), try selected.estimate(cut: cut))
                #expect(a.eigenvalues.count == b.eigenvalues.count, "M = \(m), \(cut)")
                let inSample = maxRelativeDifference(b.sampleScores, a.sampleScores), outOfSample = maxRelativeDifference(try b.scores(at: y), try a.scores(at: y))
                #expect(inSample < 1e-10 && outOfSample < 1e-10, "M = \(m), D = \(d), \(cut): \(inSample), \(outOfSample)")
            }
            }
        }
    }

    // The authors' cut: with the spectrum in decreasing order and cⱼ its cumulative fraction,
    // J = #{j : cⱼ < t}, at least 1.
    @Test func eigenvalueCutCountsLeadingFractionsBelowTheThreshold() {
        let ascending = [0.05, 0.15, 0.3, 0.5]  // fractions 0.5, 0.8, 0.95, 1.0
        for (t, expected) in [(0.4, 1), (0.5, 1), (0.6, 1), (0.9, 2), (0.96, 3), (0.99, 3), (1.0, 3)] {
            #expect(SpectralScoreEstimator.keptCount(.fraction(t), ascending: ascending) == expected, "t = \(t)")
        }
        #expect(SpectralScoreEstimator.keptCount(.count(2), ascending: ascending) == 2)
    }

    // Consistency: on N(0, I₂) and on a 1-D mixture the out-of-sample relative error
    // E‖ŝ − s‖²/E‖s‖² (mean over 3 seeds, 500 fresh points) falls as M grows (M = 50, 200, 800),
    // at the median bandwidth, Stein with η = 0.001. SSGE at the authors' 99% cut on N(0, I₂); on
    // the mixture 0.5 N(−2, 0.5²) + 0.5 N(2, 0.5²) that cut keeps J = 3 eigenfunctions at every M
    // (measured: error 0.99–1.00, the estimate ≈ 0 — three smooth functions at h ≈ 2 cannot follow
    // the slope −4 inside each mode), so there the consistency claim is tested at a cut that keeps
    // 1 − 10⁻⁶ of the spectrum (J = 7; errors measured 0.23, 0.09, 0.05 on seed 0). Stein's
    // η = 0.001 is weak regularisation: on N(0, I₂) its error is 1.9, 0.94, 0.28 here (in sample
    // and out of sample alike; η = 0.1 gives 0.47, 0.14, 0.05), which is why figure 6 also runs
    // the estimators with η chosen on held-out samples.
    @Test func errorFallsAsTheSampleGrows() throws {
        let normal = try IsotropicNormal(dimension: 2)
        let mixture = try GaussianMixture(weights: [0.5, 0.5], components: [
            MultivariateNormal(mean: [-2], covariance: Tensor(shape: [1, 1], scalars: [0.25])),
            MultivariateNormal(mean: [2], covariance: Tensor(shape: [1, 1], scalars: [0.25])),
        ])
        let cases: [(String, any ReferenceDistribution, SpectralScoreEstimator.EigenvalueCut)] =
            [("N(0, I₂)", normal, .fraction(0.99)), ("mixture", mixture, .fraction(1 - 1e-6))]
        for (name, target, cut) in cases {
            var errors: [(stein: Double, spectral: Double)] = []
            for m in [50, 200, 800] {
                var (stein, spectral) = (0.0, 0.0)
                for seed in 0..<3 {
                    let stream = RandomStream(seed: UInt64(100 * m + seed))
                    let samples = target.sample(m, using: stream), queries = target.sample(500, using: stream)
                    let truth = try target.score(queries)
                    stein += relativeError(try SteinScoreEstimator().fit(samples).scores(at: queries), truth) / 3
                    spectral += relativeError(try SpectralScoreEstimator(cut: cut).fit(samples).scores(at: queries), truth) / 3
                }
                errors.append((stein, spectral))
            }
            for i in 1..<errors.count {
                #expect(errors[i].stein < errors[i - 1].stein, "\(name) Stein: \(errors)")
                #expect(errors[i].spectral < errors[i - 1].spectral, "\(name) SSGE: \(errors)")
            }
        }
    }

    // Bad input is refused with what is wrong; duplicates need η > 0.
    @Test func badInputIsRefused() throws {
        let one = Tensor(shape: [1, 2], scalars: [0, 0])
        #expect(throws: KernelEstimatorError.tooFewSamples(1)) { try SteinScoreEstimator().fit(one) }
        #expect(throws: KernelEstimatorError.tooFewSamples(1)) { try SpectralScoreEstimator().fit(one) }
        let x = RandomStream(seed: 5).normal(shape: [10, 2])
        #expect(throws: KernelEstimatorError.bandwidthNotPositive(0)) { try SteinScoreEstimator(bandwidth: .fixed(0)).fit(x) }
        #expect(throws: KernelEstimatorError.bandwidthNotPositive(-1)) { try SpectralScoreEstimator(bandwidth: .scaledMedian(-1)).fit(x) }
        #expect(throws: KernelEstimatorError.regularisationNegative(-0.1)) { try SteinScoreEstimator(eta: -0.1).fit(x) }
        for t in [0.0, 1.5, -0.2] {
            #expect(throws: KernelEstimatorError.eigenvalueThresholdOutOfRange(t)) { try SpectralScoreEstimator(cut: .fraction(t)).fit(x) }
        }
        #expect(throws: KernelEstimatorError.eigenvalueCountOutOfRange(count: 11, samples: 10)) { try SpectralScoreEstimator(cut: .count(11)).fit(x) }
        let same = Tensor(shape: [4, 2], scalars: [1, 2, 1, 2, 1, 2, 1, 2])
        #expect(throws: KernelEstimatorError.coincidentSamples) { try SteinScoreEstimator().fit(same) }
        // Two copies of one point among distinct ones: K is singular without a ridge, fine with one.
        var scalars = x.scalars
        scalars[2] = scalars[0]; scalars[3] = scalars[1]
        let duplicated = Tensor(shape: [10, 2], scalars: scalars)
        #expect(throws: KernelEstimatorError.singularKernelMatrix(eta: 0)) { try SteinScoreEstimator(eta: 0).fit(duplicated) }
        #expect(try SteinScoreEstimator(eta: 0.001).fit(duplicated).sampleScores.isFinite)
        var bad = x.scalars
        bad[3] = .nan
        #expect(throws: KernelEstimatorError.nonFiniteInput("the samples")) { try SpectralScoreEstimator().fit(Tensor(shape: [10, 2], scalars: bad)) }
        let fit = try SteinScoreEstimator().fit(x)
        #expect(throws: KernelEstimatorError.self) { try fit.scores(at: Tensor(shape: [3, 3], scalars: Array(repeating: 0, count: 9))) }
        #expect(KernelEstimatorError.tooFewSamples(1).description.contains("at least 2 samples"))
    }
}

import Autodiff
import Foundation
import GSLNumerics
import Objectives
import Sampling
import Testing

/// Mean and its standard error.
func meanAndSE(_ xs: [Double]) -> (mean: Double, se: Double) {
    let m = xs.reduce(0, +) / Double(xs.count)
    let v = xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)
    return (m, (v / Double(xs.count)).squareRoot())
}

/// Column j of x `[n, D]`.
func column(_ x: Tensor, _ j: Int) -> [Double] { (0..<x.shape[0]).map { x.scalars[$0 * x.shape[1] + j] } }

/// Each entry of the mean and covariance of x `[n, D]` against the closed forms, within `z`
/// standard errors of the sample estimates (x's rows independent).
func expectMoments(_ x: Tensor, mean: [Double], covariance: [Double], z: Double = 5, _ label: String) {
    let d = x.shape[1]
    for i in 0..<d {
        let (m, se) = meanAndSE(column(x, i))
        #expect(abs(m - mean[i]) < z * se, "\(label): mean[\(i)] \(m) vs \(mean[i]) ± \(se)")
        for j in 0..<d {
            let products = zip(column(x, i), column(x, j)).map { ($0 - mean[i]) * ($1 - mean[j]) }
            let (c, seC) = meanAndSE(products)
            #expect(abs(c - covariance[i * d + j]) < z * seC, "\(label): Σ[\(i),\(j)] \(c) vs \(covariance[i * d + j]) ± \(seC)")
        }
    }
}

@Suite struct Samplers {
    /// Langevin on N(0, 1) is the AR(1) chain x' = (1 − τ)x + √(2τ)z, stationary variance
    /// 2τ/(1 − (1 − τ)²) = 1/(1 − τ/2): its bias is O(τ), and the measured variance of 4000
    /// independent chains' last states matches it within 5 SE (SE of a normal variance v√(2/n)) at
    /// τ = 0.05, 0.2, 0.5; at τ = 0.5 the bias (1/3) is 10 SE from the truth, so the test sees it.
    @Test(arguments: [0.05, 0.2, 0.5])
    func langevinHasItsKnownStationaryVariance(tau: Double) throws {
        let settings = SamplerSettings(stepSize: tau, steps: 400, burnIn: 399, thinning: 1, chains: 4000)
        let target = TargetDensity(try IsotropicNormal(dimension: 1))
        let run = try UnadjustedLangevin(settings).run(target, from: Tensor.zeros([4000, 1]), using: RandomStream(seed: 1))
        #expect(run.samples.shape == [4000, 1] && run.acceptanceRate == nil)
        let v = run.samples.scalars.map { $0 * $0 }.reduce(0, +) / 4000
        let expected = 1 / (1 - tau / 2)
        #expect(abs(v - expected) < 5 * expected * (2.0 / 4000).squareRoot(), "τ = \(tau): variance \(v), theory \(expected)")
        if tau == 0.5 { #expect(abs(v - 1) > 5 * (2.0 / 4000).squareRoot(), "the bias at τ = 0.5 is visible") }
    }

    /// MALA on N(0, I₂) from a far start (all chains at (3, −3)) with a step at which Langevin is
    /// badly biased (τ = 0.8: variance 1/(1 − 0.4) = 1.67): mean and covariance of 3000 chains'
    /// last states within 5 SE of 0 and I, acceptance in a sane range.
    @Test func malaIsExactWhereLangevinIsNot() throws {
        let settings = SamplerSettings(stepSize: 0.8, steps: 300, burnIn: 299, thinning: 1, chains: 3000)
        let target = TargetDensity(try IsotropicNormal(dimension: 2))
        let start = Tensor(shape: [3000, 2], scalars: (0..<6000).map { $0 % 2 == 0 ? 3 : -3 })
        let run = try MetropolisAdjustedLangevin(settings).run(target, from: start, using: RandomStream(seed: 2))
        expectMoments(run.samples, mean: [0, 0], covariance: [1, 0, 0, 1], "MALA N(0, I)")
        let rate = try #require(run.acceptanceRate)
        #expect(rate > 0.4 && rate < 0.95, "acceptance \(rate)")
    }

    /// MALA keeps the target invariant: 3000 chains started at exact draws of a 2-D mixture (four
    /// components N(μₖ, 0.7² I), ‖μₖ‖ = 2.5) are still distributed as the mixture after 100 steps
    /// (its mean and covariance within 5 SE). A wrong Metropolis–Hastings ratio (e.g. the proposal
    /// densities swapped) moves them off it.
    @Test func malaKeepsAMixtureInvariant() throws {
        var parameters = TargetParameters()
        (parameters.components, parameters.separation, parameters.scale) = (4, 2.5, 0.7)
        let mixture = try TargetSettings(.gaussianMixture, parameters: parameters).distribution(dimension: 2) as! GaussianMixture
        let start = mixture.sample(3000, using: RandomStream(seed: 3))
        let settings = SamplerSettings(stepSize: 0.3, steps: 100, burnIn: 99, thinning: 1, chains: 3000)
        let run = try MetropolisAdjustedLangevin(settings).run(TargetDensity(mixture), from: start, using: RandomStream(seed: 4))
        var mean = [0.0, 0.0], covariance = [Double](repeating: 0, count: 4)
        for c in mixture.components { for i in 0..<2 { mean[i] += c.mean[i] / 4 } }
        for c in mixture.components { for i in 0..<2 { for j in 0..<2 {
            covariance[i * 2 + j] += ((c.mean[i] - mean[i]) * (c.mean[j] - mean[j]) + c.covariance.scalars[i * 2 + j]) / 4
        } } }
        expectMoments(run.samples, mean: mean, covariance: covariance, "MALA mixture")
        let rate = try #require(run.acceptanceRate)
        #expect(rate > 0.5 && rate < 1, "acceptance \(rate)")
    }

    /// A model given only by log p̃ (no closed-form score) is sampled through its reverse-mode
    /// score: the same chains as with the closed form, to rounding.
    @Test func aLogDensityWithoutAScoreIsSampledThroughAutodiff() throws {
        let exact = TargetDensity(try IsotropicNormal(dimension: 3))
        let plain = LogDensityClosure { x in x.square().sum(alongAxis: 1) * -0.5 }
        let settings = SamplerSettings(stepSize: 0.3, steps: 20, burnIn: 10, thinning: 5, chains: 7)
        let start = RandomStream(seed: 5).normal(shape: [7, 3])
        let a = try MetropolisAdjustedLangevin(settings).run(exact, from: start, using: RandomStream(seed: 6))
        let b = try MetropolisAdjustedLangevin(settings).run(plain, from: start, using: RandomStream(seed: 6))
        #expect(a.samples.shape == [14, 3])
        #expect(zip(a.samples.scalars, b.samples.scalars).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(a.acceptanceRate == b.acceptanceRate)
    }

    @Test func badSettingsAndNaNsAreNamed() throws {
        for (settings, words) in [(SamplerSettings(stepSize: 0), "'step_size' must be finite and > 0"),
                                  (SamplerSettings(steps: 10, burnIn: 10), "'burn_in' must be in 0..<steps"),
                                  (SamplerSettings(steps: 10, burnIn: 5, thinning: 6), "'thinning' must be in 1...(steps − burn_in) = 5"),
                                  (SamplerSettings(chains: 0), "'chains' must be ≥ 1")] {
            #expect(throws: SamplingError.self) { try MetropolisAdjustedLangevin(settings) }
            do { _ = try UnadjustedLangevin(settings) } catch { #expect("\(error)".contains(words), "\(error)") }
        }
        let settings = SamplerSettings(stepSize: 0.1, steps: 5, burnIn: 0, thinning: 1, chains: 2)
        let broken = LogDensityClosure { x in x.sum(alongAxis: 1) * .nan }
        #expect(throws: SamplingError.nonFinite(sampler: "mala", step: 0)) {
            try MetropolisAdjustedLangevin(settings).run(broken, from: Tensor.zeros([2, 2]), using: RandomStream(seed: 7))
        }
        #expect(throws: SamplingError.nonFinite(sampler: "langevin", step: 1)) {
            try UnadjustedLangevin(settings).run(broken, from: Tensor.zeros([2, 2]), using: RandomStream(seed: 7))
        }
        #expect(throws: SamplingError.self) {
            try UnadjustedLangevin(settings).run(broken, from: Tensor.zeros([3, 2]), using: RandomStream(seed: 7))
        }
    }
}

@Suite struct SampleQuality {
    /// The Stein kernel's closed form against central differences of the IMQ kernel: for two
    /// points, KSD² is k_p(x, y) = sₓᵀs_y k + sₓᵀ∇_y k + s_yᵀ∇_x k + tr ∇_x∇_y k, each derivative here
    /// numeric (step 1e-4 for the mixed second derivative).
    @Test func steinKernelMatchesFiniteDifferences() {
        let x = [0.3, -1.2, 0.5], y = [1.1, 0.4, -0.7], sx = [0.2, 0.9, -1.5], sy = [-0.6, 0.1, 0.8]
        func k(_ a: [Double], _ b: [Double]) -> Double { Foundation.pow(1 + zip(a, b).map { ($0 - $1) * ($0 - $1) }.reduce(0, +), -0.5) }
        func shifted(_ a: [Double], _ i: Int, _ h: Double) -> [Double] { var b = a; b[i] += h; return b }
        let h = 1e-4
        var numeric = zip(sx, sy).map(*).reduce(0, +) * k(x, y)
        for i in 0..<3 {
            let dxk = (k(shifted(x, i, h), y) - k(shifted(x, i, -h), y)) / (2 * h)
            let dyk = (k(x, shifted(y, i, h)) - k(x, shifted(y, i, -h))) / (2 * h)
            let dxdyk = (k(shifted(x, i, h), shifted(y, i, h)) - k(shifted(x, i, h), shifted(y, i, -h))
                         - k(shifted(x, i, -h), shifted(y, i, h)) + k(shifted(x, i, -h), shifted(y, i, -h))) / (4 * h * h)
            numeric += sx[i] * dyk + sy[i] * dxk + dxdyk
        }
        let closed = kernelSteinDiscrepancy(samples: Tensor(shape: [2, 3], scalars: x + y), score: Tensor(shape: [2, 3], scalars: sx + sy))
        #expect(abs(closed - numeric) < 1e-7, "closed \(closed), numeric \(numeric)")
    }

    /// Both discrepancies are unbiased U-statistics, 0 in expectation for exact samples: the mean
    /// over 40 replicates of n = 150 exact draws is within 4 SE of 0, for N(0, I₂) and a 2-D
    /// mixture; shifted by 0.7 in every coordinate, or narrowed to half the spread, the mean is
    /// more than 10 SE above 0.
    @Test(arguments: [Target.standardNormal, .gaussianMixture])
    func discrepanciesVanishOnlyForTheTarget(target: Target) throws {
        let p = try TargetSettings(target).distribution(dimension: 2)
        let stream = RandomStream(seed: 8)
        func replicates(_ transform: (Tensor) -> Tensor) throws -> (ksd: (mean: Double, se: Double), mmd: (mean: Double, se: Double)) {
            var ksd: [Double] = [], mmd: [Double] = []
            for _ in 0..<40 {
                let x = transform(p.sample(150, using: stream))
                ksd.append(kernelSteinDiscrepancy(samples: x, score: try p.score(x)))
                mmd.append(maximumMeanDiscrepancy(x, p.sample(150, using: stream)).mmdSquared)
            }
            return (meanAndSE(ksd), meanAndSE(mmd))
        }
        let exact = try replicates { $0 }
        #expect(abs(exact.ksd.mean) < 4 * exact.ksd.se, "\(target) exact: KSD² \(exact.ksd)")
        #expect(abs(exact.mmd.mean) < 4 * exact.mmd.se, "\(target) exact: MMD² \(exact.mmd)")
        let mean = try TargetSettings(target).distribution(dimension: 2).sample(20_000, using: RandomStream(seed: 9))
            .mean(alongAxis: 0).reshaped([1, 2])
        for (name, transform) in [("shifted", { (x: Tensor) in x + 0.7 }), ("narrowed", { (x: Tensor) in (x - mean) * 0.5 + mean })] {
            let off = try replicates(transform)
            #expect(off.ksd.mean > 10 * off.ksd.se, "\(target) \(name): KSD² \(off.ksd)")
            #expect(off.mmd.mean > 10 * off.mmd.se, "\(target) \(name): MMD² \(off.mmd)")
        }
    }

    /// The median heuristic: for the points 0, 1, 3 on a line (and their copies shifted by 10 as y)
    /// the bandwidth is the median of the 15 pairwise distances.
    @Test func medianHeuristicBandwidth() {
        let x = Tensor(shape: [3, 1], scalars: [0, 1, 3]), y = Tensor(shape: [3, 1], scalars: [10, 11, 13])
        let all = [0.0, 1, 3, 10, 11, 13]
        var distances: [Double] = []
        for i in 0..<6 { for j in (i + 1)..<6 { distances.append(abs(all[i] - all[j])) } }
        distances.sort()
        #expect(maximumMeanDiscrepancy(x, y).bandwidth == distances[7])
    }
}

/// Annealed Langevin dynamics: each level's step and noise scaled together, and NCSN's finding on
/// an unequal mixture.
@Suite struct Annealing {
    /// On N(0, σ²) at every level (NCSN's exact score, components of standard deviation σ), chains
    /// started at level 1's stationary law v₁ = σ₁²/(1 − α₁/4σ₁²) keep it through level 1 (which
    /// fails when the noise is not √α₁), then contract to level 2's as an AR(1) chain: after k
    /// steps a^{2k} v₁ + (1 − a^{2k}) v₂, a = 1 − α₂/2σ₂², v₂ = σ₂²/(1 − α₂/4σ₂²); within 5 SE.
    @Test func eachLevelHasItsStationaryLaw() throws {
        let (s1, s2, epsilon, k, chains) = (4.0, 1.0, 0.1, 5, 20_000)
        let sampler = try AnnealedLangevin(sigmas: [s1, s2], stepsPerLevel: k, baseStep: epsilon)
        let alpha1 = epsilon * (s1 / s2) * (s1 / s2), alpha2 = epsilon
        let v1 = s1 * s1 / (1 - alpha1 / (4 * s1 * s1)), v2 = s2 * s2 / (1 - alpha2 / (4 * s2 * s2))
        let a = 1 - alpha2 / (2 * s2 * s2)
        let expected = pow(a, Double(2 * k)) * v1 + (1 - pow(a, Double(2 * k))) * v2
        let stream = RandomStream(seed: 21)
        let start = stream.normal(shape: [chains, 1]) * v1.squareRoot()
        let exact = BlurredMixtureScore(weights: [1], means: [[0]], scale: 0, blurred: false)
        let x = try sampler.run(exact, from: start, using: stream).scalars
        let variance = x.map { $0 * $0 }.reduce(0, +) / Double(chains)
        let se = expected * (2 / Double(chains)).squareRoot()
        #expect(abs(variance - expected) < 5 * se, "variance \(variance), expected \(expected) ± \(se)")
    }

    /// NCSN's toy experiment: the mixture 0.8 N((5, 5), I) + 0.2 N((−5, −5), I), chains uniform on
    /// [−8, 8]². Annealed Langevin (σ from 20 to 1 in 10 levels, 100 steps each, ε = 0.1) puts
    /// 0.8 ± 0.05 of them in the heavier mode; plain Langevin on the exact score (300 steps of the
    /// same ε) keeps the start's split, about ½.
    @Test func annealingRecoversTheMixtureWeights() throws {
        let stream = RandomStream(seed: 22)
        let chains = 1280
        let start = stream.uniform(shape: [chains, 2], in: -8..<8)
        func heavier(_ x: Tensor) -> Double { Double((0..<chains).filter { x.scalars[2 * $0] + x.scalars[2 * $0 + 1] > 0 }.count) / Double(chains) }
        let exact = BlurredMixtureScore(weights: [0.8, 0.2], means: [[5, 5], [-5, -5]], scale: 1, blurred: false)
        let annealed = try AnnealedLangevin(sigmas: AnnealedLangevin.geometric(from: 20, to: 1, levels: 10), stepsPerLevel: 100, baseStep: 0.1)
        let annealedShare = heavier(try annealed.run(exact, from: start, using: stream))
        let target = try #require(ToyDataset.ncsnMixture.reference)
        let plain = try UnadjustedLangevin(SamplerSettings(stepSize: 0.05, steps: 300, burnIn: 299, thinning: 1, chains: chains))
        let plainShare = heavier(try plain.run(TargetDensity(target), from: start, using: stream).samples)
        #expect(abs(annealedShare - 0.8) < 0.05, "annealed: \(annealedShare) in the heavier mode")
        #expect(abs(plainShare - 0.5) < 0.1 && abs(plainShare - 0.8) > 0.15, "plain Langevin: \(plainShare) in the heavier mode")
    }

    @Test func badSchedulesAreRefusedByName() {
        #expect(throws: SamplingError.invalidSetting("sigmas", "must be finite, > 0 and decreasing, got [1.0, 2.0]")) {
            try AnnealedLangevin(sigmas: [1, 2], stepsPerLevel: 10, baseStep: 0.1)
        }
        #expect(throws: SamplingError.self) { try AnnealedLangevin(sigmas: [2, 1], stepsPerLevel: 0, baseStep: 0.1) }
        #expect(throws: SamplingError.self) { try AnnealedLangevin(sigmas: [2, 1], stepsPerLevel: 5, baseStep: -1) }
        let levels = AnnealedLangevin.geometric(from: 20, to: 1, levels: 10)
        #expect(levels.count == 10 && abs(levels[0] - 20) < 1e-12 && abs(levels[9] - 1) < 1e-12)
    }
}

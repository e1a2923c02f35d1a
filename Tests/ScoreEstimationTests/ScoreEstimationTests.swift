import Autodiff
import Foundation
import GSLNumerics
import KernelEstimators
import NeuralModels
import Objectives
@testable import ScoreEstimation
import Testing

/// ŝ(x) = −a x.
private struct ScaledScore: ScoreFunction {
    let a: Double
    func modelScore(at x: Tensor) -> Tensor { x * -a }
}

@Suite("Score estimation from samples") struct ScoreEstimationTests {
    // Hyvärinen's identity on N(0, I_D) with ŝ = −a x: J(ŝ) = E[½a²‖x‖² − aD] = (a²/2 − a) D, the
    // Fisher divergence ½(a − 1)² D minus ½E‖s‖² = D/2. The criterion's FD trace is exact for a
    // linear score and v on the √D sphere (vᵀ(−aI)v = −aD), so only ½(vᵀŝ)²'s projection noise
    // is left: within 5 standard errors, and the candidates rank as their Fisher divergences.
    @Test func criterionIsTheFisherDivergenceUpToAConstant() throws {
        let d = 5, n = 20_000
        let x = RandomStream(seed: 1).normal(shape: [n, d])
        let criterion = try HeldOutCriterion(points: x, projections: 4, epsilon: 0.01, using: RandomStream(seed: 2))
        var values: [Double] = []
        for a in [0.5, 1.0, 1.5] {
            let value = try criterion.value(of: ScaledScore(a: a))
            let expected = (a * a / 2 - a) * Double(d)
            // ½(vᵀŝ)² averaged over 4 directions: Var ≈ a⁴(‖x‖⁴ + …)/… — bound it by the sample SD
            // of ½a²‖x‖², which is larger than the projection-averaged term's.
            var halfNorms = [Double](repeating: 0, count: n)
            for i in 0..<n { for c in 0..<d { halfNorms[i] += 0.5 * a * a * x.scalars[i * d + c] * x.scalars[i * d + c] } }
            let mean = halfNorms.reduce(0, +) / Double(n)
            var variance = 0.0
            for h in halfNorms { variance += (h - mean) * (h - mean) / Double(n - 1) }
            let sd = variance.squareRoot()
            #expect(abs(value - expected) < 5 * 2 * sd / Double(n).squareRoot(), "a = \(a): J = \(value), expected \(expected)")
            values.append(value)
        }
        #expect(values[1] < values[0] && values[1] < values[2], "the exact score (a = 1) has the least J: \(values)")
    }

    // The authors' variant is the plain fit at their settings, bit for bit; the tuned variant
    // scores every candidate of its grid and keeps the least J, which is at most the authors'
    // (their settings are in the grid).
    @Test func kernelFitsFollowTheirVariant() throws {
        let target = try IsotropicNormal(dimension: 3)
        let stream = RandomStream(seed: 4)
        let samples = target.sample(200, using: stream), heldOut = target.sample(300, using: stream), y = target.sample(50, using: stream)
        let criterion = try HeldOutCriterion(points: heldOut, projections: 2, epsilon: 1e-3, using: stream)
        let settings = KernelSearchSettings()
        let steinAuthors = try fitKernelEstimator(.stein, .authors, samples: samples, criterion: criterion, settings: settings)
        #expect(try steinAuthors.estimate.scores(at: y).scalars == SteinScoreEstimator(eta: 0.001).fit(samples).scores(at: y).scalars)
        #expect(steinAuthors.selectionSeconds == 0 && steinAuthors.candidates.isEmpty && steinAuthors.fitSeconds > 0)
        let ssgeAuthors = try fitKernelEstimator(.ssge, .authors, samples: samples, criterion: criterion, settings: settings)
        #expect(try ssgeAuthors.estimate.scores(at: y).scalars == SpectralScoreEstimator(cut: .fraction(0.99)).fit(samples).scores(at: y).scalars)
        #expect(ssgeAuthors.keptEigenvalues == (ssgeAuthors.estimate as? SpectralScoreEstimator.Estimate)?.eigenvalues.count)
        for (method, authors, count) in [(KernelMethod.stein, steinAuthors, settings.etas.count), (.ssge, ssgeAuthors, settings.thresholds.count)] {
            let tuned = try fitKernelEstimator(method, .tuned, samples: samples, criterion: criterion, settings: settings)
            #expect(tuned.candidates.count == count * settings.bandwidthFactors.count)
            let least = tuned.candidates.map(\.criterion).min()!
            // The chosen settings, refitted, give the estimate whose criterion was the least (to
            // rounding: SSGE's search computed the eigenvectors of every candidate cut at once).
            #expect(abs(tuned.heldOutCriterion - least) <= 1e-9 * abs(least), "\(method): \(tuned.heldOutCriterion) vs \(least)")
            #expect(tuned.candidates.contains { $0.criterion == least && $0.eta == tuned.eta && $0.bandwidthFactor == tuned.bandwidthFactor && $0.threshold == tuned.threshold })
            #expect(least <= authors.heldOutCriterion, "\(method): tuned \(least) vs authors \(authors.heldOutCriterion)")
            #expect(try criterion.value(of: KernelScoreFunction(tuned.estimate)) == tuned.heldOutCriterion)
            #expect(tuned.selectionSeconds > 0)
        }
    }

    // Steps: epochs are ⌈steps / ⌈M / batch⌉⌉, so 3000 steps at batch 100 are exactly 3000 for
    // M = 100, 300, 1000, 3000, and M below the batch is one batch per epoch.
    @Test func aFixedBudgetOfSteps() {
        let settings = NetworkFitSettings()
        for m in [100, 300, 1000, 3000] { #expect(settings.training(samples: m).steps == 3000, "M = \(m)") }
        #expect(settings.training(samples: 40).batchSize == 40)
        #expect(settings.training(samples: 40).steps == 3000)
        #expect(settings.training(samples: 250).steps >= 3000)
    }

    // s̄² is the mean of the per-coordinate unbiased variances.
    @Test func sampleScaleIsTheRootMeanVariance() {
        let x = Tensor(rows: [[0, 0], [2, 4], [4, 8]])  // variances 4 and 16
        #expect(abs(sampleScale(x) - (10.0).squareRoot()) < 1e-14)
    }

    // A score network trained by SSM-VR on N(0, I₂) ends much closer to the exact score than it
    // started; DSM scores each of its σ candidates and keeps the least J; DEEN is refused.
    @Test func scoreNetworksFitTheirSamples() throws {
        let target = try IsotropicNormal(dimension: 2)
        let stream = RandomStream(seed: 7)
        let samples = target.sample(400, using: stream), heldOut = target.sample(400, using: stream), test = target.sample(1000, using: stream)
        let criterion = try HeldOutCriterion(points: heldOut, projections: 2, epsilon: 1e-3, using: stream)
        var settings = NetworkFitSettings()
        settings.hidden = [32, 32]
        settings.steps = 400
        let untrained = try ScoreNetwork(dimension: 2, hidden: [32, 32], activation: .softplus, using: RandomStream(seed: 9))
        let before = try fisherDivergence(of: untrained, from: target, at: test).mean
        let ssmVR = try fitScoreNetwork(.ssmVR, samples: samples, criterion: criterion, settings: settings, seed: 9)
        let after = try fisherDivergence(of: ssmVR.network, from: target, at: test).mean
        #expect(after < 0.2 * before, "Fisher divergence \(before) → \(after)")
        #expect(ssmVR.steps == 400 && ssmVR.stepLoss.count == 400 && ssmVR.sigma == nil)
        let dsm = try fitScoreNetwork(.dsm, samples: samples, criterion: criterion, settings: settings, seed: 9)
        #expect(dsm.candidates.count == settings.dsmSigmaFactors.count)
        #expect(dsm.heldOutCriterion == dsm.candidates.map(\.criterion).min())
        #expect(dsm.candidates.contains { $0.sigma == dsm.sigma && $0.criterion == dsm.heldOutCriterion })
        #expect(throws: ScoreEstimationError.self) { try fitScoreNetwork(.deen, samples: samples, criterion: criterion, settings: settings, seed: 9) }
    }
}

import Autodiff
import Foundation
import GSLNumerics
import Objectives
import Testing
import Training

extension Estimator {
    /// The estimators that work on any log-density (CP and Approx BP need layer structure; they
    /// are tested on DKEF).
    static var generic: [Estimator] { allCases.filter { !$0.needsLayeredModel } }
}

/// Data N(μ₀, Σ₀) in D = 3, model N(μ, P⁻¹) as an unnormalised Gaussian.
struct GaussianSetting {
    let d = 3
    let mu0: [Double] = [0.3, -0.5, 1.0]
    let sigma0 = Tensor(rows: [[1.5, 0.3, 0.1], [0.3, 0.8, -0.2], [0.1, -0.2, 0.6]])
    var data: MultivariateNormal { try! MultivariateNormal(mean: mu0, covariance: sigma0) }
    var q: Tensor { data.precision }  // Σ₀⁻¹

    func model(seed: UInt64) -> GaussianModel {
        let s = RandomStream(seed: seed)
        return GaussianModel(mean: s.normal(shape: [d]) * 0.5, precision: symmetricPositiveDefinite(d, using: s))
    }
}

@Suite struct ClosedForms {
    let g = GaussianSetting()

    /// On any sample, exact SM is ½ mean‖P(x − μ)‖² − tr P and the Fisher divergence is
    /// ½ mean‖−P(x − μ) + Σ₀⁻¹(x − μ₀)‖², to rounding.
    @Test func exactObjectiveAndFisherDivergenceOnASample() throws {
        let model = g.model(seed: 1)
        let x = g.data.sample(50, using: RandomStream(seed: 2))
        let mu = model.parameters[0].detached(), p = model.parameters[1].detached()
        let residual = Tensor.matmul(x - mu, p)
        let expectedJ = (residual.square().sum(alongAxis: 1) * 0.5).mean().scalar - trace(p)
        let j = try ScoreMatching.exact.evaluate(model, at: x, using: RandomStream(seed: 0), createGraph: false)
        #expect(abs(j.value.scalar - expectedJ) < 1e-11)
        let expectedF = ((-residual + Tensor.matmul(x - Tensor(g.mu0), g.q)).square().sum(alongAxis: 1) * 0.5).mean().scalar
        let f = try fisherDivergence(of: model, from: g.data, at: x)
        #expect(abs(f.mean - expectedF) < 1e-11)
    }

    /// Population closed forms, with δ = μ₀ − μ:
    ///   J = ½ tr(P Σ₀ P) + ½ ‖P δ‖² − tr P,
    ///   F = ½ tr((P − Σ₀⁻¹) Σ₀ (P − Σ₀⁻¹)) + ½ ‖P δ‖²;
    /// the sample means over 100000 points lie within 5 standard errors. And Hyvärinen's identity:
    /// F − J = ½ E‖s_d‖² = ½ tr Σ₀⁻¹ whatever the model.
    @Test(arguments: [3, 4, 5] as [UInt64])
    func populationClosedFormsAndHyvarinensIdentity(seed: UInt64) throws {
        let model = g.model(seed: seed)
        let x = g.data.sample(100_000, using: RandomStream(seed: seed + 10))
        let mu = model.parameters[0].detached(), p = model.parameters[1].detached()
        let pDelta = Tensor.matmul((Tensor(g.mu0) - mu).reshaped([1, -1]), p)
        let pSigmaP = Tensor.matmul(Tensor.matmul(p, g.sigma0), p)
        let jClosed = 0.5 * trace(pSigmaP) + 0.5 * pDelta.square().sum().scalar - trace(p)
        let diff = p - g.q
        let fClosed = 0.5 * trace(Tensor.matmul(Tensor.matmul(diff, g.sigma0), diff)) + 0.5 * pDelta.square().sum().scalar

        let j = try ScoreMatching.exact.evaluate(model, at: x, using: RandomStream(seed: 0), createGraph: false)
        let f = try fisherDivergence(of: model, from: g.data, at: x)
        let jStats = meanAndStandardError(j.perSample.scalars)
        let fStats = meanAndStandardError(f.perSample.scalars)
        #expect(abs(jStats.mean - jClosed) < 5 * jStats.se, "J \(jStats) vs closed form \(jClosed)")
        #expect(abs(fStats.mean - fClosed) < 5 * fStats.se, "F \(fStats) vs closed form \(fClosed)")
        let gap = meanAndStandardError(zip(f.perSample.scalars, j.perSample.scalars).map { $0 - $1 })
        #expect(abs(gap.mean - 0.5 * trace(g.q)) < 5 * gap.se, "F − J = \(gap), ½ tr Σ₀⁻¹ = \(0.5 * trace(g.q))")
    }
}

@Suite struct Unbiasedness {
    /// E_v[SSM] = E_v[SSM-VR] = exact SM on a fixed batch, because E[v vᵀ] = I: the mean over 400
    /// independent projection draws lies within 4.5 standard errors of the exact value, for each
    /// projection law. SSM-VR's variance over the same draws is below SSM's.
    @Test(arguments: Projection.allCases)
    func slicedObjectivesAreUnbiased(projection: Projection) throws {
        let stream = RandomStream(seed: 21)
        let model = MLPModel(dimension: 4, using: stream)
        let x = stream.normal(shape: [20, 4])
        let exact = try ScoreMatching.exact.evaluate(model, at: x, using: stream, createGraph: false).value.scalar
        let ssm = try SlicedScoreMatching(projection: projection)
        let vr = try ScoreMatching.varianceReduced(projection: projection)
        var ssmValues: [Double] = [], vrValues: [Double] = []
        for _ in 0..<400 {
            let noise = ssm.drawNoise(points: 20, dimension: 4, using: stream)
            ssmValues.append(try ssm.evaluate(model.logDensity, at: x, noise: noise, createGraph: false).value.scalar)
            vrValues.append(try vr.evaluate(model.logDensity, at: x, noise: noise, createGraph: false).value.scalar)
        }
        let s = meanAndStandardError(ssmValues), v = meanAndStandardError(vrValues)
        #expect(abs(s.mean - exact) < 4.5 * s.se, "SSM \(s) vs exact \(exact)")
        #expect(abs(v.mean - exact) < 4.5 * v.se, "SSM-VR \(v) vs exact \(exact)")
        #expect(variance(vrValues) < variance(ssmValues))
    }

    /// With n projections per point, SSM is the mean of the n single-projection objectives on the
    /// same directions (so the residual's 1/√n scaling is right).
    @Test func manyProjectionsAverageSingleOnes() throws {
        let stream = RandomStream(seed: 5)
        let model = MLPModel(dimension: 3, using: stream)
        let x = stream.normal(shape: [6, 3])
        let ssm4 = try SlicedScoreMatching(count: 4), ssm1 = try SlicedScoreMatching(count: 1)
        let noise = ssm4.drawNoise(points: 6, dimension: 3, using: stream)
        let together = try ssm4.evaluate(model.logDensity, at: x, noise: noise, createGraph: false).value.scalar
        let separately = try (0..<4).map { j in
            try ssm1.evaluate(model.logDensity, at: x, noise: ObjectiveNoise(projections: noise.projections!.slice(j..<(j + 1), alongAxis: 0)),
                              createGraph: false).value.scalar
        }
        #expect(abs(together - separately.reduce(0, +) / 4) < 1e-12)
    }

    /// Draws come from the seeded stream: the same seed gives the same loss, another seed another.
    @Test func sameSeedSameLoss() throws {
        let model = MLPModel(dimension: 3, using: RandomStream(seed: 1))
        let x = RandomStream(seed: 2).normal(shape: [8, 3])
        for estimator in Estimator.generic {
            let objective = try estimator.objective()
            let a = try objective.evaluate(model, at: x, using: RandomStream(seed: 9), createGraph: false).value.scalar
            let b = try objective.evaluate(model, at: x, using: RandomStream(seed: 9), createGraph: false).value.scalar
            #expect(a == b, "\(estimator)")
            if estimator != .sm {
                let c = try objective.evaluate(model, at: x, using: RandomStream(seed: 10), createGraph: false).value.scalar
                #expect(a != c, "\(estimator): another seed should change the draws")
            }
        }
    }
}

@Suite struct Gradients {
    /// ∂J/∂θ by reverse mode through the objective (third order for SM/SSM: θ-gradient of ∇ₓ²)
    /// against central differences of J with the same draws.
    @Test(arguments: Estimator.generic)
    func parameterGradientsMatchFiniteDifferences(estimator: Estimator) throws {
        let stream = RandomStream(seed: 31)
        let model = MLPModel(dimension: 3, width: 5, using: stream)
        let x = stream.normal(shape: [5, 3])
        let objective = try estimator.objective(ObjectiveSettings(projectionCount: 2, sigma: 0.3))
        let noise = objective.drawNoise(points: 5, dimension: 3, using: stream)
        let value = try objective.evaluate(model.logDensity, at: x, noise: noise).value
        let analytic = gradients(of: value, with: model.parameters)
        let h = 1e-5
        for (k, parameter) in model.parameters.enumerated() {
            var worst = 0.0
            for i in 0..<parameter.count {
                func j(_ delta: Double) throws -> Double {
                    var shifted = model
                    var scalars = parameter.scalars
                    scalars[i] += delta
                    shifted.parameters[k] = Tensor(shape: parameter.shape, scalars: scalars).requiringGradient()
                    return try objective.evaluate(shifted.logDensity, at: x, noise: noise, createGraph: false).value.scalar
                }
                let numeric = (try j(h) - j(-h)) / (2 * h)
                worst = max(worst, abs(numeric - analytic[k].scalars[i]) / max(1, abs(numeric)))
            }
            #expect(worst < 1e-6, "\(estimator) parameter \(k): relative error \(worst)")
        }
    }
}

@Suite struct TrainingWithEachObjective {
    /// DSM's minimiser for N(0, I) data and the model N(μ, τI) is τ = 1 + σ², μ = 0 (the model
    /// matches the noised data x̃ ~ N(0, (1 + σ²) I)). Trained by Adam on a fixed sample of 20000
    /// points and fixed noise; τ within 3%.
    @Test(arguments: [0.5, 1.0])
    func dsmMinimiserIsTheNoisedData(sigma: Double) throws {
        let stream = RandomStream(seed: 41)
        let x = stream.normal(shape: [20_000, 2])
        let dsm = try DenoisingScoreMatching(sigma: sigma)
        let noise = dsm.drawNoise(points: 20_000, dimension: 2, using: stream)
        var parameters = [Tensor([0.0]).requiringGradient(), Tensor([0.3, -0.2]).requiringGradient()]  // log τ, μ
        func logDensity(_ p: [Tensor]) -> (Tensor) -> Tensor {
            { x in (x - p[1]).square().sum(alongAxis: 1) * (-p[0]).exp() * -0.5 }
        }
        var adam = Adam(learningRate: 0.05)
        for _ in 0..<300 {
            let value = try dsm.evaluate(logDensity(parameters), at: x, noise: noise).value
            parameters = adam.step(parameters, gradients: gradients(of: value, with: parameters))
        }
        let tau = Foundation.exp(parameters[0].scalar)
        #expect(abs(tau / (1 + sigma * sigma) - 1) < 0.03, "τ = \(tau), expected \(1 + sigma * sigma)")
        #expect(parameters[1].scalars.allSatisfy { abs($0) < 0.05 })
    }

    /// A small MLP energy started far from the data (N(0, 4I)-like) and trained with each objective
    /// on N(0, I) data ends with at most half its initial Fisher divergence on held-out data.
    @Test(arguments: Estimator.generic)
    func trainingLowersTheFisherDivergence(estimator: Estimator) throws {
        let stream = RandomStream(seed: 51)
        let data = try MultivariateNormal.standard(dimension: 2)
        let train = data.sample(1000, using: stream), test = data.sample(1000, using: stream)
        var model = MLPModel(dimension: 2, logPrecision: Foundation.log(0.25), using: stream)
        let objective = try estimator.objective(ObjectiveSettings(sigma: 0.1))
        let before = try fisherDivergence(of: model, from: data, at: test).mean
        var adam = Adam(learningRate: 0.02)
        for step in 0..<150 {
            let batch = train.slice((step % 10) * 100..<((step % 10) + 1) * 100, alongAxis: 0)
            let value = try objective.evaluate(model, at: batch, using: stream).value
            model.parameters = adam.step(model.parameters, gradients: gradients(of: value, with: model.parameters))
        }
        let after = try fisherDivergence(of: model, from: data, at: test).mean
        #expect(after < 0.5 * before, "\(estimator): Fisher divergence \(before) → \(after)")
    }
}

@Suite struct Optimiser {
    /// Adam's buffer loop against the textbook loop (PyTorch's formula over plain arrays), bit for
    /// bit, over 50 steps of random gradients on two parameter tensors.
    @Test func adamMatchesItsFormulaToTheLastBit() {
        let stream = RandomStream(seed: 7)
        var parameters = [stream.normal(shape: [3, 4]).requiringGradient(), stream.normal(shape: [5]).requiringGradient()]
        var expected = parameters.map(\.scalars)
        var m = expected.map { [Double](repeating: 0, count: $0.count) }, v = m
        let (lr, b1, b2, eps) = (0.01, 0.9, 0.999, 1e-8)
        var adam = Adam(learningRate: lr)
        for t in 1...50 {
            let grads = parameters.map { stream.normal(shape: $0.shape) * 3 }
            parameters = adam.step(parameters, gradients: grads)
            let c1 = 1 - Foundation.pow(b1, Double(t)), c2 = 1 - Foundation.pow(b2, Double(t))
            for k in expected.indices {
                let g = grads[k].scalars
                for i in expected[k].indices {
                    m[k][i] = b1 * m[k][i] + (1 - b1) * g[i]
                    v[k][i] = b2 * v[k][i] + (1 - b2) * g[i] * g[i]
                    expected[k][i] -= lr * (m[k][i] / c1) / ((v[k][i] / c2).squareRoot() + eps)
                }
            }
        }
        #expect(parameters.map(\.scalars) == expected)
        #expect(parameters.allSatisfy { $0.requiresGradient })
    }
}

@Suite struct BadInput {
    @Test func invalidSettingsNameTheParameter() {
        for sigma in [0, -1, Double.nan, Double.infinity] {
            do {
                _ = try DenoisingScoreMatching(sigma: sigma)
                Issue.record("sigma \(sigma) was accepted")
            } catch {
                #expect("\(error)" == "sigma must be a finite number > 0, got \(sigma)")
            }
        }
        #expect(throws: ObjectiveError.invalidProjectionCount(0)) { try SlicedScoreMatching(count: 0) }
        #expect(throws: ObjectiveError.invalidProjectionCount(-2)) { try ScoreMatching.varianceReduced(count: -2) }
        #expect(throws: ObjectiveError.invalidProjectionCount(0)) { try Estimator.ssm.objective(ObjectiveSettings(projectionCount: 0)) }
        #expect(throws: ObjectiveError.invalidSigma(0)) { try Estimator.dsm.objective(ObjectiveSettings(sigma: 0)) }
        do {
            _ = try Projection(named: "radermacher")
            Issue.record("a misspelt projection was accepted")
        } catch {
            #expect("\(error)" == "unknown projection 'radermacher'; choose one of rademacher, gaussian, sphere")
        }
        #expect(throws: ObjectiveError.unknownEstimator("sliced_VR")) { try Estimator(named: "sliced_VR") }
    }

    @Test func badShapesAreErrorsNotCrashes() throws {
        let stream = RandomStream(seed: 1)
        let model = MLPModel(dimension: 3, using: stream)
        for estimator in Estimator.generic {
            let objective = try estimator.objective()
            #expect(throws: ObjectiveError.badBatch(shape: [5], expected: "[N, D]")) {
                try objective.evaluate(model, at: Tensor.zeros([5]), using: stream)
            }
            #expect(throws: ObjectiveError.self) { try objective.evaluate(model, at: Tensor.zeros([0, 3]), using: stream) }
            #expect(throws: ObjectiveError.nonFinite(what: "the data batch")) {
                try objective.evaluate(model, at: Tensor(rows: [[1, .nan, 0]]), using: stream)
            }
            let wrongOutput: (Tensor) -> Tensor = { $0 }  // [N, D], not [N]
            #expect(throws: ObjectiveError.badModelOutput(shape: [1, 3], expected: [1])) {
                try objective.evaluate(wrongOutput, at: Tensor.zeros([4, 3]), noise: objective.drawNoise(points: 4, dimension: 3, using: stream))
            }
        }
        #expect(throws: ObjectiveError.self) {
            try fisherDivergence(of: model, from: try MultivariateNormal.standard(dimension: 2), at: Tensor.zeros([4, 3]))
        }
        for estimator in Estimator.allCases where estimator.needsLayeredModel {
            #expect(throws: ObjectiveError.needsLayeredModel(estimator: estimator.rawValue)) {
                try estimator.objective().evaluate(model, at: Tensor.zeros([4, 3]), using: stream)
            }
        }
    }
}

/// FSM (finite-difference sliced score matching) against SSM and exact SM.
@Suite struct FiniteDifferences {
    /// With the same projections, FSM → SSM (sphere projections) as ε → 0, with error O(ε²):
    /// halving ε quarters it.
    @Test func convergesToSlicedScoreMatchingAtSecondOrder() throws {
        let stream = RandomStream(seed: 40)
        let model = MLPModel(dimension: 4, using: stream)
        let x = stream.normal(shape: [10, 4])
        let fsm = try FiniteDifferenceScoreMatching(epsilon: 0.2, count: 2)
        let noise = fsm.drawNoise(points: 10, dimension: 4, using: stream)
        let ssm = try SlicedScoreMatching(projection: .sphere, count: 2).evaluate(model.logDensity, at: x, noise: noise, createGraph: false).value.scalar
        let errors = try [0.2, 0.1, 0.05, 0.025].map { eps in
            abs(try FiniteDifferenceScoreMatching(epsilon: eps, count: 2).evaluate(model.logDensity, at: x, noise: noise, createGraph: false).value.scalar - ssm)
        }
        for (a, b) in zip(errors, errors.dropFirst()) {
            #expect(b / a > 0.2 && b / a < 0.3, "errors \(errors): ratio \(b / a), expected ≈ 1/4")
        }
        #expect(errors.last! < 1e-3 * max(1, abs(ssm)))
    }

    /// Over many projections at small ε its mean is exact SM's value (within 4.5 standard errors).
    @Test func unbiasedForScoreMatchingAtSmallEpsilon() throws {
        let stream = RandomStream(seed: 41)
        let model = MLPModel(dimension: 4, using: stream)
        let x = stream.normal(shape: [20, 4])
        let exact = try ScoreMatching.exact.evaluate(model, at: x, using: stream, createGraph: false).value.scalar
        let fsm = try FiniteDifferenceScoreMatching(epsilon: 1e-3)
        let values = try (0..<400).map { _ in try fsm.evaluate(model, at: x, using: stream, createGraph: false).value.scalar }
        let s = meanAndStandardError(values)
        #expect(abs(s.mean - exact) < 4.5 * s.se, "FSM \(s) vs exact \(exact)")
    }

    /// ε and n are checked, by name, through the estimator's settings too.
    @Test func badEpsilonIsRefused() {
        for bad in [0.0, -0.1, .infinity, .nan] {
            #expect(throws: ObjectiveError.self) { try FiniteDifferenceScoreMatching(epsilon: bad) }
            do {
                _ = try Estimator.fsm.objective(ObjectiveSettings(epsilon: bad))
                Issue.record("ε = \(bad) was accepted")
            } catch {
                #expect("\(error)".contains("FSM's epsilon must be finite and > 0"))
            }
        }
        #expect(throws: ObjectiveError.invalidProjectionCount(0)) { try FiniteDifferenceScoreMatching(count: 0) }
    }
}

import Autodiff
import DKEFModel
import Foundation
import GSLNumerics
import Objectives
import ResultsStore
import Testing
import Training

/// A protocol small enough for unit tests: D = 5, M = 20, width 10, 400/100/200 points,
/// batches of 100 (X_t, X_v of 50), validation α on 200 points, 50 finalisation steps.
func tinyTrainer(_ estimator: Estimator, epochs: Int, seed: UInt64 = 3) -> DKEFTrainer {
    var settings = ProtocolSettings()
    settings.trainCount = 400
    settings.validationCount = 100
    settings.testCount = 200
    settings.batchSize = 100
    settings.epochs = epochs
    settings.validationAlphaPoints = 200
    settings.alphaBatch = 50
    settings.finalizeSteps = 50
    settings.finalizeBatch = 50
    settings.importanceSamples = 20_000
    settings.importanceChunk = 5_000
    return DKEFTrainer(estimator: estimator, objectiveSettings: ObjectiveSettings(sigma: 0.1),
                       configuration: DKEFConfiguration(dimension: 5, inducingPoints: 20, hiddenWidth: 10),
                       settings: settings, seed: seed)
}

@Suite struct Protocol {
    /// Training (8 epochs of 4 iterations) lowers the test Fisher divergence against the exact
    /// N(0, I) score below that of the same model finalised without training, for the methods
    /// whose objective is exact or unbiased with modest noise. A single tiny run is noisy, and 12
    /// iterations were too few for SSM (mean over seeds 3-5: 0.393 untrained → 0.423), so the
    /// claim is on the mean over seeds 3, 4, 5 after 32 iterations.
    @Test(arguments: [Estimator.sm, .ssm, .ssmVR, .dsm])
    func trainingLowersTheTestFisherDivergence(estimator: Estimator) throws {
        var untrained = 0.0, trained = 0.0
        for seed: UInt64 in [3, 4, 5] {
            untrained += try tinyTrainer(estimator, epochs: 0, seed: seed).run().metrics["fisher_divergence"]! / 3
            trained += try tinyTrainer(estimator, epochs: 8, seed: seed).run().metrics["fisher_divergence"]! / 3
        }
        #expect(trained < untrained, "\(estimator): mean test Fisher divergence \(untrained) untrained → \(trained) trained")
    }

    /// CP is unbiased but noisy: training lowers its own validation objective; on the test
    /// Fisher divergence it is seed-dependent at this size (seeds 3, 4, 5: 0.33 → 0.63,
    /// 0.49 → 0.38, 0.50 → 0.45 after 6 epochs), so that is reported, not asserted.
    @Test func curvaturePropagationLowersItsOwnObjective() throws {
        let result = try tinyTrainer(.cp, epochs: 3).run()
        #expect(result.validationLoss.min()! < result.validationLoss[0])
    }

    /// Approx BP's trace estimate is biased (it drops off-diagonal curvature), and training
    /// exploits that: its own objective falls far below −D/2, the least value exact SM can take in
    /// expectation for these data (J = F − D/2 ≥ −D/2), while the true fit worsens. A property of
    /// the estimator, tested so that a change in it is noticed.
    @Test func approximateBackpropagationIsExploitedByTraining() throws {
        let untrained = try tinyTrainer(.approxBP, epochs: 0).run().metrics["fisher_divergence"]!
        let result = try tinyTrainer(.approxBP, epochs: 3).run()
        #expect(result.validationLoss.min()! < -5 * 2.5)
        #expect(result.metrics["fisher_divergence"]! > untrained)
    }

    /// The same seed gives the same run, bit for bit.
    @Test func sameSeedSameRun() throws {
        let a = try tinyTrainer(.ssmVR, epochs: 1).run(), b = try tinyTrainer(.ssmVR, epochs: 1).run()
        #expect(a.metrics == b.metrics)
        #expect(a.trainLoss == b.trainLoss)
        let c = try tinyTrainer(.ssmVR, epochs: 1, seed: 4).run()
        #expect(a.metrics != c.metrics)
    }

    /// Hyvärinen's identity for a trained DKEF: with N(0, I) data, per point
    /// Fᵢ − Jᵢ = ½‖s − s_d‖² − ½‖s‖² − tr∇s has mean ½E‖s_d‖² = D/2 (integration by parts), so on
    /// 20000 fresh points the mean of Fᵢ − Jᵢ lies within 4.5 standard errors of D/2 = 2.5.
    @Test func fisherDivergenceMatchesHyvarinensIdentity() throws {
        let result = try tinyTrainer(.ssmVR, epochs: 1).run()
        let reference = try MultivariateNormal.standard(dimension: 5)
        let x = reference.sample(20_000, using: RandomStream(seed: 99))
        let density = result.model.density(alpha: result.alpha)
        let f = try fisherDivergence(of: density, from: reference, at: x).perSample.scalars
        let j = try ScoreMatching.exact.evaluate(density, at: x, noise: .none, createGraph: false).perSample.scalars
        let gaps = zip(f, j).map { $0 - $1 }
        let mean = gaps.reduce(0, +) / Double(gaps.count)
        let se = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(gaps.count - 1) / Double(gaps.count)).squareRoot()
        #expect(abs(mean - 2.5) < 4.5 * se, "mean of F − J \(mean) ± \(se), expected 2.5")
    }

    /// A run that diverges stops with an error naming the stage and iteration.
    @Test func divergenceIsAClearError() throws {
        var trainer = tinyTrainer(.dsm, epochs: 1)
        trainer.settings.learningRate = 1e200
        do {
            _ = try trainer.run()
            Issue.record("a diverging run was not stopped")
        } catch let error as TrainingError {
            guard case let .nonFinite(stage, iteration, _) = error else { Issue.record("\(error)"); return }
            #expect(["train", "validation", "finalize", "evaluate"].contains(stage))
            #expect(iteration >= 0)
            #expect(error.description.contains("stage '\(stage)'"))
        }
    }

    /// A run on another target draws its data from that target and evaluates against it: the true
    /// test log-likelihood is the target's log density (structure from its own stream) on the test
    /// set the run's stream draws, bit for bit, and the ESS of log Z is in [1, S].
    @Test func aTargetRunUsesTheTarget() throws {
        var trainer = tinyTrainer(.ssm, epochs: 0)
        trainer.settings.finalizeSteps = 2
        trainer.target = TargetSettings(.studentT)
        let result = try trainer.run()
        let reference = try TargetSettings(.studentT).distribution(dimension: 5)
        let data = HighDimData(reference: reference, settings: trainer.settings, using: RandomStream(seed: trainer.seed))
        #expect(result.metrics["true_test_log_likelihood"]! == (try reference.logDensity(data.test).mean().scalar))
        let ess = result.metrics["log_z_ess"]!
        #expect(ess >= 1 && ess <= Double(trainer.settings.importanceSamples), "ESS \(ess)")
        #expect(result.metrics["fisher_divergence"]! != (try tinyTrainer(.ssm, epochs: 0).run().metrics["fisher_divergence"]!))
    }

    /// log Z by importance sampling from each target widened by 2, on the model with α = 0, whose
    /// p̃ = exp(−‖x‖²/(2σ₀²)) has log Z = (D/2) log(2πσ₀²): within 5 standard errors, the
    /// relative SE of Ẑ taken from the ESS, √((S/ESS − 1)/S).
    @Test(arguments: Target.allCases)
    func importanceSamplingFindsTheBaseNormaliser(target: Target) throws {
        let trainer = tinyTrainer(.ssm, epochs: 0)
        let stream = RandomStream(seed: 11)
        let configuration = trainer.configuration
        let model = try DKEF(configuration, inducingPoints: stream.normal(shape: [configuration.inducingPoints, 5]), using: stream)
        let proposal = try TargetSettings(target).distribution(dimension: 5).widened(by: 2)
        let (logZ, ess) = try trainer.logNormalizer(model, alpha: Tensor.zeros([configuration.inducingPoints]), proposal: proposal, stream: stream)
        let exact = 2.5 * Foundation.log(2 * Double.pi * configuration.baseSigma * configuration.baseSigma)
        let s = Double(trainer.settings.importanceSamples)
        let se = ((s / ess - 1) / s).squareRoot()
        #expect(abs(logZ - exact) < 5 * se + 1e-12, "\(target): log Z \(logZ) vs \(exact) ± \(se) (ESS \(ess))")
        // Enough effective draws for the SE above to mean something (correlated_normal, whose
        // widened Σ is up to 10 times wider than the base's 2I, gets the fewest: 232 of 20 000).
        #expect(ess > 100, "\(target): ESS \(ess) of \(s)")
    }

    @Test func badSettingsAreRejected() {
        var trainer = tinyTrainer(.sm, epochs: 1)
        trainer.settings.batchSize = 3
        #expect(throws: TrainingError.self) { try trainer.run() }
    }
}

/// Kish's effective sample size and the log-mean of importance weights, kept in logs by chunks.
@Suite struct ImportanceWeightSums {
    @Test func closedForms() {
        var equal = ImportanceWeights()
        equal.add(logWeights: [Double](repeating: -3, count: 1000))
        #expect(abs(equal.effectiveSampleSize - 1000) < 1e-9 && abs(equal.logMean + 3) < 1e-12)
        var one = ImportanceWeights()
        one.add(logWeights: [0] + [Double](repeating: -800, count: 999))
        #expect(abs(one.effectiveSampleSize - 1) < 1e-12 && abs(one.logMean + Foundation.log(1000)) < 1e-12)
        // w = 1, 2, 3: ESS = 36/14, log mean = log 2.
        var three = ImportanceWeights()
        three.add(logWeights: [1.0, 2, 3].map { Foundation.log($0) })
        #expect(abs(three.effectiveSampleSize - 36.0 / 14) < 1e-12 && abs(three.logMean - Foundation.log(2)) < 1e-12)
    }

    /// Chunks (log Σ w and log Σ w² per chunk, as log Z's loop adds them) equal weights added one
    /// by one, with weights spanning 600 nats.
    @Test func chunksEqualOneByOne() {
        let stream = RandomStream(seed: 5)
        let logWeights = stream.normal(shape: [3000]).scalars.map { $0 * 100 }
        var single = ImportanceWeights(), chunked = ImportanceWeights()
        single.add(logWeights: logWeights)
        for start in stride(from: 0, to: 3000, by: 700) {
            let chunk = Tensor(shape: [1, min(700, 3000 - start)], scalars: Array(logWeights[start..<min(start + 700, 3000)]))
            chunked.add(count: chunk.shape[1], logSum: chunk.logSumExp(alongAxis: 1).scalar, logSumOfSquares: (chunk * 2).logSumExp(alongAxis: 1).scalar)
        }
        #expect(single.count == chunked.count)
        #expect(abs(single.logMean - chunked.logMean) < 1e-12 * abs(single.logMean))
        #expect(abs(single.effectiveSampleSize - chunked.effectiveSampleSize) < 1e-10 * single.effectiveSampleSize)
    }
}

@Suite struct Checkpoints {
    /// Parameters, α and the system survive an HDF5 round trip bit for bit.
    @Test func roundTripIsBitExact() throws {
        let stream = RandomStream(seed: 5)
        let configuration = DKEFConfiguration(dimension: 4, inducingPoints: 7, hiddenWidth: 6)
        let model = try DKEF(configuration, inducingPoints: stream.normal(shape: [7, 4]), using: stream)
        let system = try QuadraticSystem.fit(Estimator.ssm.objective(), model: model, at: stream.normal(shape: [9, 4]),
                                             noise: Estimator.ssm.objective().drawNoise(points: 9, dimension: 4, using: stream), createGraph: false)
        let alpha = withoutGradients { system.alpha(logLambda: model.logLambda) }
        let path = NSTemporaryDirectory() + "ckpt-\(UUID().uuidString).h5"
        try ResultsFile.write(to: path) { try DKEFCheckpoint.write(model, alpha: alpha, system: system, to: $0.createGroup("model")) }
        let back = try ResultsFile.read(at: path) { try DKEFCheckpoint.read(from: $0.group("model")) }
        #expect(back.model.configuration == configuration)
        #expect(zip(back.model.parameters, model.parameters).allSatisfy { $0.shape == $1.shape && $0.scalars == $1.scalars })
        #expect(back.alpha?.scalars == alpha.scalars)
        #expect(back.system?.gramSum.scalars == system.gramSum.scalars && back.system?.linearSum.scalars == system.linearSum.scalars)
        #expect(back.system?.count == 9)
        let x = stream.normal(shape: [3, 4])
        #expect(back.model.logDensity(x, alpha: alpha).scalars == model.logDensity(x, alpha: alpha).scalars)
    }
}

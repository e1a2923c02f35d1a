import Autodiff
import DKEFModel
import Foundation
import GSLNumerics
import Objectives

/// The authors' `HighDim` protocol for one method, one dimension, one seed:
///
/// 1. Train: per iteration a batch of 200 training points is split into X_t (α = −(G + λI)⁻¹b
///    from the method's `QuadraticSystem` on X_t, differentiable) and X_v (the method's objective
///    of the DKEF density with that α); Adam on all parameters, gradients clipped at norm 100.
///    After each iteration α is recomputed on 1000 random training points and the objective is
///    evaluated on the whole validation set; the parameters with the best value are kept.
/// 2. Finalise: α's system from the whole training set; then only log₁₀ λ is trained (Adam,
///    1000 steps on validation batches of 100; for objectives without draws, from the validation
///    points' terms computed once, `FixedModelObjective`).
/// 3. Evaluate on the test set: Fisher divergence against the target's exact score, the exact SM
///    objective, log Z by importance sampling from the target widened by σ_q (N(0, σ_q² I) for the
///    authors' N(0, I)) with the effective sample size of its weights, test log-likelihood, and
///    the true test log-likelihood (the target's exact log density).
/// The data come from `target` (default N(0, I_D), the authors'), its random structure from a
/// stream of its own (`TargetParameters.structureStream`).
/// Every draw comes from one `RandomStream(seed:)`. A NaN or infinity stops the run with
/// `TrainingError.nonFinite` naming the stage and iteration.
public struct DKEFTrainer {
    public var estimator: Estimator
    public var objectiveSettings: ObjectiveSettings
    public var configuration: DKEFConfiguration
    public var settings: ProtocolSettings
    public var seed: UInt64
    /// The distribution the data come from.
    public var target = TargetSettings()
    /// Receives one human-readable progress line per step (e.g. print it to stderr).
    public var progress: (String) -> Void = { _ in }

    public init(estimator: Estimator, objectiveSettings: ObjectiveSettings = ObjectiveSettings(),
                configuration: DKEFConfiguration, settings: ProtocolSettings = ProtocolSettings(), seed: UInt64) {
        self.estimator = estimator
        self.objectiveSettings = objectiveSettings
        self.configuration = configuration
        self.settings = settings
        self.seed = seed
    }

    /// Everything a run produces.
    public struct Result {
        public var model: DKEF
        public var alpha: Tensor
        public var system: QuadraticSystem
        /// Test metrics: fisher_divergence, exact_sm, log_z, log_z_ess, test_log_likelihood,
        /// true_test_log_likelihood.
        public var metrics: [String: Double]
        /// Per training iteration: the training objective and the validation objective.
        public var trainLoss: [Double], validationLoss: [Double]
        /// Per finalisation step: the objective on the validation batch.
        public var finalizeLoss: [Double]
        public var bestIteration: Int
        /// Seconds per training iteration (step only: α on X_t, objective on X_v, gradient, Adam).
        public var iterationSeconds: [Double]
        /// Wall seconds per stage: train, finalize, evaluate.
        public var stageSeconds: [String: Double]
    }

    public func run() throws -> Result {
        try settings.validate()
        try configuration.validate()
        let objective = try estimator.objective(objectiveSettings)
        let stream = RandomStream(seed: seed)
        let d = configuration.dimension
        let data = HighDimData(reference: try target.distribution(dimension: d), settings: settings, using: stream)
        let inducing = data.train.rows(stream.permutation(settings.trainCount).prefix(configuration.inducingPoints))
        var model = try DKEF(configuration, inducingPoints: inducing, using: stream)
        let label = "[\(estimator.rawValue)\(target.target == .standardNormal ? "" : " " + target.target.rawValue) D=\(d) seed=\(seed)]"

        // 1. Train.
        var adam = Adam(learningRate: settings.learningRate)
        var trainLoss: [Double] = [], validationLoss: [Double] = [], iterationSeconds: [Double] = []
        var best = (value: Double.infinity, iteration: -1, parameters: model.parameters)  // kept as is with 0 epochs
        let totalIterations = settings.epochs * settings.iterationsPerEpoch
        let half = settings.batchSize / 2
        let trainStart = Date()
        for epoch in 0..<settings.epochs {
            let order = stream.permutation(settings.trainCount)
            for step in 0..<settings.iterationsPerEpoch {
                let iteration = epoch * settings.iterationsPerEpoch + step
                let start = Date()
                let xt = data.train.rows(order[(step * settings.batchSize)..<(step * settings.batchSize + half)])
                let xv = data.train.rows(order[(step * settings.batchSize + half)..<((step + 1) * settings.batchSize)])
                let outcome = try within("train", iteration) {
                    try Self.trainingStep(&model, optimizer: &adam, objective: objective, alphaBatch: xt, lossBatch: xv,
                                          clipNorm: settings.clipNorm, stream: stream)
                }
                try requireFinite(outcome.loss, "train", iteration, "the training objective")
                try requireFinite(outcome.gradientNorm, "train", iteration, "the gradient norm")
                iterationSeconds.append(Date().timeIntervalSince(start))
                trainLoss.append(outcome.loss)

                let value = try within("validation", iteration) {
                    try validate(model.frozen(), objective: objective, data: data, stream: stream, iteration: iteration)
                }
                validationLoss.append(value)
                if value < best.value { best = (value, iteration, model.parameters) }
                let elapsed = Date().timeIntervalSince(trainStart)
                let eta = elapsed / Double(iteration + 1) * Double(totalIterations - iteration - 1)
                progress("\(label) train \(iteration + 1)/\(totalIterations) loss \(format(outcome.loss)) val \(format(value)) best \(format(best.value)) @\(best.iteration + 1) | \(format(elapsed, 1))s, ETA \(format(eta, 0))s")
            }
        }
        model.parameters = best.parameters
        let trainSeconds = Date().timeIntervalSince(trainStart)

        // 2. Finalise.
        let finalizeStart = Date()
        var system: QuadraticSystem? = nil
        for start in stride(from: 0, to: settings.trainCount, by: settings.alphaBatch) {
            let batch = data.train.slice(start..<min(start + settings.alphaBatch, settings.trainCount), alongAxis: 0)
            let part = try within("finalize", 0) {
                try QuadraticSystem.fit(objective, model: model, at: batch,
                                        noise: objective.drawNoise(points: batch.shape[0], dimension: d, using: stream), createGraph: false)
            }
            system = system.map { $0 + part } ?? part
        }
        let frozen = model.frozen()
        // Without draws the objective of the fixed model is a known quadratic in α on the
        // validation points: their terms are computed once, not in each of the 1000 steps.
        let fixed = objective.drawsNoise ? nil : try within("finalize", 0) {
            try FixedModelObjective(objective, model: frozen, at: data.validation, chunk: settings.alphaBatch)
        }
        var logLambda = model.logLambda.detached().requiringGradient()
        var lambdaAdam = Adam(learningRate: settings.finalizeLearningRate)
        var finalizeLoss: [Double] = []
        var validationOrder: [Int] = []
        for step in 0..<settings.finalizeSteps {
            if validationOrder.isEmpty { validationOrder = stream.permutation(settings.validationCount) }
            let take = Array(validationOrder.prefix(settings.finalizeBatch))
            validationOrder.removeFirst(take.count)
            let alpha = system!.alpha(logLambda: logLambda)
            let loss = try within("finalize", step) {
                try fixed?.value(alpha: alpha, rows: take)
                    ?? objective.evaluate(frozen.density(alpha: alpha), at: data.validation.rows(take), using: stream).value
            }
            try requireFinite(loss.scalar, "finalize", step, "the finalisation objective")
            logLambda = lambdaAdam.step([logLambda], gradients: [gradient(of: loss, with: logLambda)])[0]
            finalizeLoss.append(loss.scalar)
            if step % 100 == 99 || step == settings.finalizeSteps - 1 {
                progress("\(label) finalize \(step + 1)/\(settings.finalizeSteps) loss \(format(loss.scalar)) log10 λ \(format(logLambda.scalar))")
            }
        }
        model.parameters[model.logLambdaIndex] = logLambda
        let alpha = withoutGradients { system!.alpha(logLambda: logLambda) }
        try requireFinite(alpha.isFinite ? 0 : .nan, "finalize", settings.finalizeSteps, "α")
        let finalizeSeconds = Date().timeIntervalSince(finalizeStart)

        // 3. Evaluate.
        let evaluateStart = Date()
        let metrics = try within("evaluate", 0) { try evaluate(model.frozen(), alpha: alpha, data: data, stream: stream) }
        progress("\(label) test Fisher divergence \(format(metrics["fisher_divergence"]!)), exact SM \(format(metrics["exact_sm"]!)), log Z \(format(metrics["log_z"]!)), test LL \(format(metrics["test_log_likelihood"]!)) (true \(format(metrics["true_test_log_likelihood"]!)))")
        return Result(model: model, alpha: alpha, system: system!, metrics: metrics, trainLoss: trainLoss,
                      validationLoss: validationLoss, finalizeLoss: finalizeLoss, bestIteration: best.iteration,
                      iterationSeconds: iterationSeconds,
                      stageSeconds: ["train": trainSeconds, "finalize": finalizeSeconds, "evaluate": Date().timeIntervalSince(evaluateStart)])
    }

    /// Seconds spent in each phase of one training iteration.
    public struct StepTiming: Sendable {
        /// α on X_t: the quadratic system and the solve.
        public var alpha: Double
        /// The objective of the density with that α on X_v.
        public var objective: Double
        /// The parameter gradient (reverse mode through all of the above).
        public var backward: Double
        /// Gradient clipping and the Adam update.
        public var optimizer: Double
        public var total: Double { alpha + objective + backward + optimizer }
    }

    /// One training iteration: α from X_t, the objective on X_v, its parameter gradient clipped
    /// to `clipNorm`, an Adam step. Returns the loss, the gradient norm before clipping and the
    /// time of each phase. Shared by training and figure 2's timing.
    public static func trainingStep(_ model: inout DKEF, optimizer: inout Adam, objective: any ScoreObjective,
                                    alphaBatch xt: Tensor, lossBatch xv: Tensor, clipNorm: Double,
                                    stream: RandomStream) throws -> (loss: Double, gradientNorm: Double, timing: StepTiming) {
        var clock = DispatchTime.now().uptimeNanoseconds
        func lap() -> Double {
            let now = DispatchTime.now().uptimeNanoseconds
            defer { clock = now }
            return Double(now - clock) / 1e9
        }
        let system = try QuadraticSystem.fit(objective, model: model, at: xt,
                                             noise: objective.drawNoise(points: xt.shape[0], dimension: xt.shape[1], using: stream), createGraph: true)
        let alpha = system.alpha(logLambda: model.logLambda)
        let alphaSeconds = lap()
        let loss = try objective.evaluate(model.density(alpha: alpha), at: xv, using: stream).value
        let objectiveSeconds = lap()
        let grads = gradients(of: loss, with: model.parameters)
        let backwardSeconds = lap()
        let (clipped, norm) = clipByGlobalNorm(grads, maxNorm: clipNorm)
        if norm.isFinite { model.parameters = optimizer.step(model.parameters, gradients: clipped) }
        let optimizerSeconds = lap()
        return (loss.scalar, norm, StepTiming(alpha: alphaSeconds, objective: objectiveSeconds, backward: backwardSeconds, optimizer: optimizerSeconds))
    }

    /// The method's objective on the whole validation set, α from random training points.
    public func validate(_ model: DKEF, objective: any ScoreObjective, data: HighDimData, stream: RandomStream, iteration: Int) throws -> Double {
        let d = configuration.dimension
        let points = stream.permutation(settings.trainCount).prefix(settings.validationAlphaPoints)
        var system: QuadraticSystem? = nil
        for start in stride(from: 0, to: points.count, by: settings.alphaBatch) {
            let batch = data.train.rows(points.dropFirst(start).prefix(settings.alphaBatch))
            let part = try QuadraticSystem.fit(objective, model: model, at: batch,
                                               noise: objective.drawNoise(points: batch.shape[0], dimension: d, using: stream), createGraph: false)
            system = system.map { $0 + part } ?? part
        }
        let alpha = withoutGradients { system!.alpha(logLambda: model.logLambda) }
        let value = try objective.evaluate(model.density(alpha: alpha), at: data.validation, using: stream, createGraph: false).value.scalar
        try requireFinite(value, "validation", iteration, "the validation objective")
        return value
    }

    /// Test metrics of the finalised model.
    func evaluate(_ model: DKEF, alpha: Tensor, data: HighDimData, stream: RandomStream) throws -> [String: Double] {
        let density = model.density(alpha: alpha)
        let fisher = try fisherDivergence(of: density, from: data.reference, at: data.test).mean
        let exactSM = try ScoreMatching.exact.evaluate(density, at: data.test, noise: .none, createGraph: false).value.scalar
        let (logZ, ess) = try logNormalizer(model, alpha: alpha, proposal: data.reference.widened(by: settings.importanceSigma), stream: stream)
        let testLogLikelihood = withoutGradients { model.evaluationLogDensity(data.test, alpha: alpha).mean() }.scalar - logZ
        let trueLogLikelihood = try data.reference.logDensity(data.test).mean().scalar
        for (name, value) in [("Fisher divergence", fisher), ("exact SM", exactSM), ("log Z", logZ), ("test log-likelihood", testLogLikelihood)] {
            try requireFinite(value, "evaluate", 0, "the \(name)")
        }
        return ["fisher_divergence": fisher, "exact_sm": exactSM, "log_z": logZ, "log_z_ess": ess,
                "test_log_likelihood": testLogLikelihood, "true_test_log_likelihood": trueLogLikelihood]
    }

    /// log Z ≈ log (1/S) Σₛ wₛ, wₛ = p̃(xₛ)/q(xₛ), xₛ ~ q (the target widened by σ_q), accumulated
    /// by log-sum-exp over chunks; p̃ with libmvec's exp and log1p (`DKEF.evaluationLogDensity`), as
    /// the test log-likelihood. Also Kish's effective sample size of the weights,
    /// ESS = (Σ w)² / Σ w² ∈ [1, S]: far below S, a few draws carry the estimate and log Z (with
    /// the test log-likelihood) is unreliable, most likely too low.
    public func logNormalizer(_ model: DKEF, alpha: Tensor, proposal q: any ReferenceDistribution,
                       stream: RandomStream) throws -> (logZ: Double, effectiveSampleSize: Double) {
        var weights = ImportanceWeights()
        while weights.count < settings.importanceSamples {
            let count = min(settings.importanceChunk, settings.importanceSamples - weights.count)
            let x = q.sample(count, using: stream)
            let logWeights = try withoutGradients { model.evaluationLogDensity(x, alpha: alpha) - (try q.logDensity(x)) }
            withoutGradients {
                weights.add(count: count, logSum: logWeights.reshaped([1, -1]).logSumExp(alongAxis: 1).scalar,
                            logSumOfSquares: (logWeights * 2).reshaped([1, -1]).logSumExp(alongAxis: 1).scalar)
            }
        }
        return (weights.logMean, weights.effectiveSampleSize)
    }

    /// Runs one stage's step, reporting an objective's NaN or infinity as the trainer's error
    /// naming the stage and iteration.
    func within<T>(_ stage: String, _ iteration: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let ObjectiveError.nonFinite(what) {
            throw TrainingError.nonFinite(stage: stage, iteration: iteration, what: what)
        }
    }

    func requireFinite(_ value: Double, _ stage: String, _ iteration: Int, _ what: String) throws {
        guard value.isFinite else { throw TrainingError.nonFinite(stage: stage, iteration: iteration, what: what) }
    }
}

func format(_ x: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", x) }

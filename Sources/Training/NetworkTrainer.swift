import Autodiff
import Foundation
import GSLNumerics
import Objectives

/// How a deep score model is trained, as the toy suites train theirs (toy_gradlogp's
/// `Trainer.learn`: a fixed training set, shuffled minibatches, Adam, the gradient norm clipped).
public struct NetworkTrainingSettings: Sendable, Equatable, Codable {
    /// Points drawn once from the dataset and trained on for `epochs` passes.
    public var trainCount = 1_000_000
    /// Fresh points for the test metrics (Fisher divergence, the test objective).
    public var testCount = 10_000
    public var batchSize = 100
    public var epochs = 4
    public var learningRate = 1e-3
    public var clipNorm = 100.0

    public init() {}

    /// Optimiser steps in all: ⌈trainCount / batchSize⌉ per epoch (the last batch may be short).
    public var steps: Int { epochs * ((trainCount + batchSize - 1) / batchSize) }

    /// Throws `TrainingError.invalidSettings` naming the setting.
    public func validate() throws {
        guard trainCount >= 1 else { throw TrainingError.invalidSettings("train must be ≥ 1, got \(trainCount)") }
        guard testCount >= 1 else { throw TrainingError.invalidSettings("test must be ≥ 1, got \(testCount)") }
        guard batchSize >= 1, batchSize <= trainCount else { throw TrainingError.invalidSettings("batch_size must be in 1...train (\(trainCount)), got \(batchSize)") }
        guard epochs >= 0 else { throw TrainingError.invalidSettings("epochs must be ≥ 0, got \(epochs)") }
        guard learningRate > 0, learningRate.isFinite else { throw TrainingError.invalidSettings("learning_rate must be finite and > 0, got \(learningRate)") }
        guard clipNorm > 0, clipNorm.isFinite else { throw TrainingError.invalidSettings("clip_norm must be finite and > 0, got \(clipNorm)") }
    }
}

/// Trains a score model (an energy or a score network) by one objective on a fixed training set.
/// Each epoch visits the points in a fresh permutation from `stream`, in batches; each step draws
/// the objective's noise from the same stream, takes the parameter gradient, clips its norm and
/// makes an Adam step. A non-finite loss or gradient stops the run with the step named.
public struct NetworkTrainer {
    public var model: any TrainableModel
    /// The objective's name (progress lines, errors).
    public let objectiveName: String
    /// The batch loss of the model, differentiable in its parameters; it draws its noise from the stream.
    public let loss: (any TrainableModel, Tensor, RandomStream) throws -> Tensor
    public let settings: NetworkTrainingSettings
    /// Called with a progress line (step, loss, steps/s, ETA) at most every `progressSeconds`.
    public var progress: (String) -> Void = { _ in }
    public var progressSeconds = 5.0

    /// A score model trained by a score-matching objective.
    public init(model: any ScoreModel, objective: any ScoreObjective, settings: NetworkTrainingSettings) throws {
        try self.init(model: model, objectiveName: objective.name, settings: settings) { model, batch, stream in
            try objective.evaluate(model as! any ScoreModel, at: batch, using: stream).value
        }
    }

    /// Any trainable model with its loss (NCSN's noise-conditional objective, say).
    public init(model: any TrainableModel, objectiveName: String, settings: NetworkTrainingSettings,
                loss: @escaping (any TrainableModel, Tensor, RandomStream) throws -> Tensor) throws {
        try settings.validate()
        self.model = model
        self.objectiveName = objectiveName
        self.loss = loss
        self.settings = settings
    }

    /// What a run gives: the losses of every step, the seconds of every step, the trained model.
    public struct Result {
        public var model: any TrainableModel
        public var stepLoss: [Double]
        public var stepSeconds: [Double]
    }

    /// One step on a batch: the loss, its clipped parameter gradient, Adam. Returns the loss.
    func step(_ model: inout any TrainableModel, optimizer: inout Adam, batch: Tensor, stream: RandomStream) throws -> Double {
        let value = try loss(model, batch, stream)
        let grads = gradients(of: value, with: model.parameters)
        let (clipped, norm) = clipByGlobalNorm(grads, maxNorm: settings.clipNorm)
        guard norm.isFinite else { throw ObjectiveError.nonFinite(what: "the parameter gradient") }
        model.parameters = optimizer.step(model.parameters, gradients: clipped)
        return value.scalar
    }

    public mutating func run(on data: Tensor, using stream: RandomStream) throws -> Result {
        guard data.rank == 2, data.shape[0] == settings.trainCount else {
            throw TrainingError.invalidSettings("train the training set has shape \(data.shape), expected [\(settings.trainCount), D]")
        }
        var optimizer = Adam(learningRate: settings.learningRate)
        var losses: [Double] = [], seconds: [Double] = []
        losses.reserveCapacity(settings.steps)
        seconds.reserveCapacity(settings.steps)
        let start = Date()
        var lastLine = start
        let total = settings.steps
        for epoch in 0..<settings.epochs {
            let order = stream.permutation(settings.trainCount)
            for first in stride(from: 0, to: settings.trainCount, by: settings.batchSize) {
                let batch = data.rows(Array(order[first..<min(first + settings.batchSize, settings.trainCount)]))
                let stepStart = Date()
                let value: Double
                do {
                    value = try step(&model, optimizer: &optimizer, batch: batch, stream: stream)
                } catch let error as ObjectiveError {
                    if case .nonFinite = error {
                        throw TrainingError.nonFinite(stage: "training", iteration: losses.count + 1, what: "\(objectiveName)'s loss or gradient")
                    }
                    throw error
                }
                seconds.append(Date().timeIntervalSince(stepStart))
                losses.append(value)
                if Date().timeIntervalSince(lastLine) >= progressSeconds || losses.count == total {
                    let elapsed = Date().timeIntervalSince(start), rate = Double(losses.count) / max(elapsed, 1e-9)
                    progress(String(format: "step %d/%d (epoch %d/%d) loss %.4g | %.0f steps/s, elapsed %.0f s, ETA %.0f s",
                                    losses.count, total, epoch + 1, settings.epochs, value, rate, elapsed, Double(total - losses.count) / rate))
                    lastLine = Date()
                }
            }
        }
        return Result(model: model, stepLoss: losses, stepSeconds: seconds)
    }
}

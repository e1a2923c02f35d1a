import DKEFModel

/// The hyperparameters of the authors' `HighDim` DKEF experiment (runners/dkef_runner.py with
/// configs/dkef_perf/*), one place for their defaults.
public struct ProtocolSettings: Sendable, Equatable, Codable {
    /// Points drawn from N(0, I_D) for training, validation and test.
    public var trainCount = 4860
    public var validationCount = 540
    public var testCount = 600
    /// A training batch, split in halves: X_t (for α) and X_v (for the loss).
    public var batchSize = 200
    public var learningRate = 0.01
    /// Gradient-norm clipping threshold.
    public var clipNorm = 100.0
    public var epochs = 5
    /// Training points α is recomputed on for each validation, and the batch size of α sums.
    public var validationAlphaPoints = 1000
    public var alphaBatch = 100
    /// Finalisation: Adam steps on log₁₀ λ alone, its learning rate and validation batch size.
    public var finalizeSteps = 1000
    public var finalizeLearningRate = 1e-3
    public var finalizeBatch = 100
    /// Importance sampling of log Z with q = N(0, σ_q² I).
    public var importanceSamples = 1_000_000
    public var importanceChunk = 10_000
    public var importanceSigma = 2.0

    public init() {}

    /// Iterations per epoch: ⌊train / batch⌋ (24 with the defaults).
    public var iterationsPerEpoch: Int { trainCount / batchSize }

    /// A lower bound, in bytes, on the memory one run of the protocol needs at `configuration`:
    /// the train, validation and test sets (8 bytes per value), and the forward-mode tangents of
    /// the exact SM objective on the whole test set, which every run evaluates — per kernel,
    /// coordinates E `[test, D, 1 + H]` (`DKEF.KernelDirectionalDerivatives`). Measured peaks are
    /// above it (one SSM run with --epochs 0: 1.35 GiB at D = 1000, 2.42 GiB at D = 2000, against
    /// bounds of 0.46 and 0.92 GiB), so a run it refuses could not have finished.
    public func minimumMemoryBytes(for configuration: DKEFConfiguration) -> Double {
        let (d, h, k) = (configuration.dimension, configuration.hiddenWidth, configuration.kernelCount)
        let data = Double(trainCount + validationCount + testCount) * Double(d)
        let testTangents = Double(testCount) * Double(d) * Double(1 + h) * Double(k)
        return 8 * (data + testTangents)
    }

    /// Throws `TrainingError.invalidSettings` naming the bad field.
    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws { if !ok { throw TrainingError.invalidSettings(message) } }
        try require(trainCount >= batchSize && batchSize >= 2 && batchSize % 2 == 0, "batch size must be even, ≥ 2 and ≤ the training count (\(batchSize), \(trainCount))")
        try require(validationCount >= 1 && testCount >= 1, "validation and test counts must be ≥ 1")
        try require(learningRate > 0 && finalizeLearningRate > 0, "learning rates must be > 0")
        try require(clipNorm > 0, "clip norm must be > 0")
        try require(epochs >= 0, "epochs must be ≥ 0 (0: finalise and evaluate the initial model)")
        try require(validationAlphaPoints >= 1 && validationAlphaPoints <= trainCount, "validation alpha points must be in 1...\(trainCount)")
        try require(alphaBatch >= 1 && finalizeBatch >= 1, "batch sizes must be ≥ 1")
        try require(finalizeSteps >= 0, "finalize steps must be ≥ 0")
        try require(importanceSamples >= 1 && importanceChunk >= 1, "importance samples and chunk must be ≥ 1")
        try require(importanceSigma > 0, "importance sigma must be > 0")
    }
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case invalidSettings(String)
    /// A NaN or infinity, with the stage ("train", "validation", "finalize", "evaluate") and step.
    case nonFinite(stage: String, iteration: Int, what: String)

    public var description: String {
        switch self {
        case let .invalidSettings(m): "training settings: \(m)"
        case let .nonFinite(stage, iteration, what):
            "\(what) became NaN or infinite in stage '\(stage)' at iteration \(iteration); nothing was written for this run"
        }
    }
}

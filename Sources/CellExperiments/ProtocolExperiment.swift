import Autodiff
import DKEFModel
import ExperimentGrid
import Foundation
import GSLNumerics
import GridExecution
import Objectives
import ResultsStore
import Training

/// The units of each stored metric (an attribute `units` on its dataset).
public let metricUnits: [String: String] = [
    "fisher_divergence": "squared score, 1/x^2 (½ E‖s − s_d‖²)",
    "exact_sm": "squared score, 1/x^2 (E[½‖s‖² + tr ∇s])",
    "log_z": "nats",
    "log_z_ess": "importance samples (Kish: (Σw)²/Σw², of importance_samples draws)",
    "test_log_likelihood": "nats per point",
    "true_test_log_likelihood": "nats per point",
]

/// figure 1, table 1 and figure 3: the full protocol per cell, writing its test metrics, training
/// curves, timings and checkpoint.
public enum ProtocolExperiment {
    public static func compute(_ cell: Cell, config: ExperimentConfig) throws -> (ResultsGroup) throws -> Void {
        let result = try train(cell, config: config)
        let peak = peakResidentMiB()
        return { group in try write(result, peakResidentMiB: peak, to: group) }
    }

    /// Runs the protocol for one cell, logging at most a line every 5 s.
    public static func train(_ cell: Cell, config: ExperimentConfig) throws -> DKEFTrainer.Result {
        var trainer = DKEFTrainer(estimator: cell.method,
                                  objectiveSettings: try config.objectiveSettings(for: cell),
                                  configuration: config.dkefConfiguration(dimension: cell.dimension),
                                  settings: config.protocolSettings, seed: UInt64(cell.seed))
        trainer.target = config.targetSettings(for: cell)
        var lastLine = Date.distantPast
        trainer.progress = { line in
            // At most one line every 5 s (and every stage summary), so long cells stay readable.
            if Date().timeIntervalSince(lastLine) > 5 || line.contains("test Fisher") || line.contains("finalize 1000") {
                log(line)
                lastLine = Date()
            }
        }
        return try trainer.run()
    }

    /// A cell's metrics (with units), curves, timings and checkpoint.
    public static func write(_ result: DKEFTrainer.Result, peakResidentMiB peak: Double, to group: ResultsGroup) throws {
        for (name, value) in result.metrics {
            try group.write(name, doubles: [value], shape: [])
            try group.setAttribute("units", .string(metricUnits[name] ?? ""), on: name)
        }
        try group.write("train_loss", doubles: result.trainLoss)
        try group.write("validation_loss", doubles: result.validationLoss)
        try group.write("finalize_loss", doubles: result.finalizeLoss)
        try group.write("iteration_seconds", doubles: result.iterationSeconds)
        try group.setAttribute("units", .string("s"), on: "iteration_seconds")
        try group.setAttribute("best_iteration", .int(result.bestIteration))
        for (stage, seconds) in result.stageSeconds { try group.setAttribute("\(stage)_seconds", .double(seconds)) }
        try group.setAttribute("peak_resident_mib", .double(peak))
        try DKEFCheckpoint.write(result.model, alpha: result.alpha, system: result.system, to: group.createGroup("checkpoint"))
    }
}

/// figure 2: seconds per training iteration (α on X_t + objective on X_v + parameter gradient +
/// Adam step) after warm-up, median of the timed iterations, per phase.
public enum TimingExperiment {
    public static let phases = ["alpha", "objective", "backward", "optimizer", "total"]

    public static func compute(_ cell: Cell, config: ExperimentConfig) throws -> (ResultsGroup) throws -> Void {
        let p = config.protocolSettings
        let objective = try cell.method.objective(try config.objectiveSettings(for: cell))
        let stream = RandomStream(seed: UInt64(cell.seed))
        let data = try HighDimData(dimension: cell.dimension, settings: p, using: stream)
        let configuration = config.dkefConfiguration(dimension: cell.dimension)
        let inducing = data.train.rows(stream.permutation(p.trainCount).prefix(configuration.inducingPoints))
        var model = try DKEF(configuration, inducingPoints: inducing, using: stream)
        var adam = Adam(learningRate: p.learningRate)
        let half = p.batchSize / 2
        var samples: [DKEFTrainer.StepTiming] = []
        for iteration in 0..<(config.timing.warmup + config.timing.iterations) {
            let order = stream.permutation(p.trainCount)
            let xt = data.train.rows(order.prefix(half)), xv = data.train.rows(order.dropFirst(half).prefix(half))
            let step = try DKEFTrainer.trainingStep(&model, optimizer: &adam, objective: objective, alphaBatch: xt, lossBatch: xv,
                                                    clipNorm: p.clipNorm, stream: stream)
            guard step.loss.isFinite else { throw TrainingError.nonFinite(stage: "timing", iteration: iteration, what: "the training objective") }
            if iteration >= config.timing.warmup { samples.append(step.timing) }
            // A single iteration over the budget is enough to know the cell is over it.
            if step.timing.total > config.timing.budgetSeconds && samples.isEmpty { samples.append(step.timing) ; break }
            if step.timing.total > config.timing.budgetSeconds { break }
        }
        let columns: [String: [Double]] = [
            "alpha": samples.map(\.alpha), "objective": samples.map(\.objective), "backward": samples.map(\.backward),
            "optimizer": samples.map(\.optimizer), "total": samples.map(\.total),
        ]
        let peak = peakResidentMiB()
        return { group in
            for phase in phases {
                try group.write("\(phase)_seconds", doubles: columns[phase]!)
                try group.setAttribute("units", .string("s"), on: "\(phase)_seconds")
                try group.write("median_\(phase)_seconds", doubles: [median(columns[phase]!)], shape: [])
                try group.setAttribute("units", .string("s"), on: "median_\(phase)_seconds")
            }
            try group.setAttribute("timed_iterations", .int(samples.count))
            try group.setAttribute("over_budget", .int(median(columns["total"]!) > config.timing.budgetSeconds ? 1 : 0))
            try group.setAttribute("peak_resident_mib", .double(peak))
        }
    }
}

import Autodiff
import DKEFModel
import Foundation
import GSLNumerics
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

/// A finished cell as read back from a results file.
public struct CellRecord {
    public var name: String
    public var method: String
    public var dimension: Int
    public var sigma: Double?
    public var seed: Int
    public var values: [String: Double]
    public var overBudget: Bool
    /// CP's noise layout (`cp_noise`; per_point for CP cells written before it existed), else nil.
    public var cpNoise: String? = nil
    /// The target's name (`target`; standard_normal for cells without the attribute).
    public var target: String = Target.standardNormal.rawValue

    /// As `Cell.series`: the method, with σ for DSM and the layout for CP's per-pair cells.
    public var series: String {
        if let sigma { return "\(method) (σ=\(sigma))" }
        if let cpNoise, cpNoise != CurvaturePropagationNoise.perPoint.rawValue { return "\(method) (\(cpNoise) noise)" }
        return method
    }

    /// Every finished cell of the file at `path`, with its scalar datasets.
    public static func all(in path: String) throws -> [CellRecord] {
        try ResultsFile.read(at: path) { root in
            guard root.contains("cells") else { return [] }
            let cells = try root.group("cells")
            return try cells.childNames().map { name in
                let g = try cells.group(name)
                let values = try g.scalarDatasets()
                let sigma = (try? g.attribute("sigma"))?.doubleValue
                let method = try g.attribute("method").stringValue ?? "?"
                let layout = (try? g.attribute("cp_noise"))?.stringValue
                    ?? (method == Estimator.cp.rawValue ? CurvaturePropagationNoise.perPoint.rawValue : nil)
                return CellRecord(name: name, method: method,
                                  dimension: try g.attribute("dimension").intValue ?? 0, sigma: sigma,
                                  seed: try g.attribute("seed").intValue ?? 0, values: values,
                                  overBudget: ((try? g.attribute("over_budget"))?.intValue ?? 0) == 1, cpNoise: layout,
                                  target: (try? g.attribute("target"))?.stringValue ?? Target.standardNormal.rawValue)
            }
        }
    }
}

extension CellRecord {
    /// The scalar metrics of a single-run file (train-dkef's `/metrics`).
    public static func singleRunMetrics(in path: String) throws -> [String: Double] {
        try ResultsFile.read(at: path) { root in
            root.contains("metrics") ? try root.group("metrics").scalarDatasets() : [:]
        }
    }
}

extension ResultsGroup {
    /// The group's scalar (rank-0) datasets by name: a cell's or a run's metrics.
    func scalarDatasets() throws -> [String: Double] {
        var values: [String: Double] = [:]
        for name in try childNames() where kind(of: name) == .dataset {
            let (shape, v) = try readDoubles(name)
            if shape.isEmpty, let value = v.first { values[name] = value }
        }
        return values
    }
}

/// Writes an experiment's Markdown report beside its results file (`results/x.h5` → `results/x.md`,
/// replaced atomically), prints it, and logs where it went.
public func publishMarkdown(_ lines: [String], besides out: String, experiment: String) throws {
    let table = lines.joined(separator: "\n")
    let path = (out as NSString).deletingPathExtension + ".md"
    try table.write(toFile: path, atomically: true, encoding: .utf8)
    print(table)
    log("\(experiment): wrote \(path)")
}

/// A series as a table row names it: methods beyond the paper's six (FSM) say so.
public func tableLabel(_ series: String) -> String {
    let method = series.split(separator: " ").first.map(String.init) ?? series
    guard let estimator = Estimator(rawValue: method), !Estimator.paper.contains(estimator) else { return series }
    return series + " (not in the paper)"
}

/// Mean ± standard error of `metric` per (series, D) over seeds.
public func summarize(_ records: [CellRecord], metric: String) -> [String: [Int: (mean: Double, standardError: Double, count: Int)]] {
    var grouped: [String: [Int: [Double]]] = [:]
    for r in records { if let v = r.values[metric] { grouped[r.series, default: [:]][r.dimension, default: []].append(v) } }
    return grouped.mapValues { byD in byD.mapValues { let s = meanAndStandardError($0); return (s.mean, s.standardError, $0.count) } }
}

/// A Markdown table: rows are series, columns dimensions, cells "mean ± se" (the mean alone
/// where only one seed is in: no standard error to give).
public func markdownTable(_ summary: [String: [Int: (mean: Double, standardError: Double, count: Int)]], seriesOrder: [String], digits: Int = 3) -> String {
    let dims = Set(summary.values.flatMap(\.keys)).sorted()
    var lines = ["| method | " + dims.map { "D=\($0)" }.joined(separator: " | ") + " |",
                 "|---|" + dims.map { _ in "---|" }.joined()]
    for series in seriesOrder where summary[series] != nil {
        let cells = dims.map { d in summary[series]![d].map {
            formattedMeanAndError(mean: $0.mean, standardError: $0.standardError, count: $0.count, digits: digits)
        } ?? "–" }
        lines.append("| \(tableLabel(series)) | " + cells.joined(separator: " | ") + " |")
    }
    return lines.joined(separator: "\n")
}

import DKEFModel
import ExperimentGrid
import Foundation
import GridExecution
import Objectives
import ScoreEstimation

/// A series as a table row names it, from one of its cells: the method's display name, DSM's σ,
/// CP's per-pair layout, and "(not in the paper)" for methods beyond the paper's six (FSM).
public func tableLabel(_ record: CellRecord) -> String {
    if let variant = record.kernelVariant, let method = KernelMethod(rawValue: record.method) {
        return method.displayName + (variant == KernelVariant.authors.rawValue ? " (the authors' settings)" : " (tuned on held-out samples)")
    }
    guard let estimator = Estimator(rawValue: record.method) else { return record.series }
    var label = estimator.displayName
    if let kind = record.modelKind {
        label += kind == "energy" ? ", energy network" : kind == "score" ? ", score network" : ", noise-conditional score network"
    }
    if let sigma = record.sigma { label += String(format: " σ = %g", sigma) }
    if let layout = record.cpNoise, layout != CurvaturePropagationNoise.perPoint.rawValue {
        label += layout == CurvaturePropagationNoise.perPair.rawValue ? " (per-pair noise, as the authors)" : " (\(layout) noise)"
    }
    if !Estimator.paper.contains(estimator) { label += " (not in the paper)" }
    return label
}

/// Where a cell's series goes in a table: the kernel estimators first (Stein, SSGE; the authors'
/// settings before the tuned), then the estimators' order, then DSM's σ, then CP's layout, then
/// the model kind (energy networks first).
public func seriesRank(_ record: CellRecord) -> (Int, Double, Int, Int) {
    if let variant = record.kernelVariant, let kernel = KernelMethod.allCases.firstIndex(where: { $0.rawValue == record.method }) {
        return (kernel - KernelMethod.allCases.count, 0, variant == KernelVariant.authors.rawValue ? 0 : 1, 0)
    }
    let method = Estimator.allCases.firstIndex { $0.rawValue == record.method } ?? Estimator.allCases.count
    return (method, record.sigma ?? 0, record.cpNoise == nil || record.cpNoise == CurvaturePropagationNoise.perPoint.rawValue ? 0 : 1,
            record.modelKind == "energy" || record.modelKind == nil ? 0 : record.modelKind == "score" ? 1 : 2)
}

/// Mean ± standard error of `metric` per (series, D) over seeds.
public func summarize(_ records: [CellRecord], metric: String) -> [String: [Int: (mean: Double, standardError: Double, count: Int)]] {
    var grouped: [String: [Int: [Double]]] = [:]
    for r in records { if let v = r.values[metric] { grouped[r.series, default: [:]][r.dimension, default: []].append(v) } }
    return grouped.mapValues { byD in byD.mapValues { let s = meanAndStandardError($0); return (s.mean, s.standardError, $0.count) } }
}

/// The mean of `metric` over seeds per D for one series.
public func seriesMeans(_ records: [CellRecord], _ series: String, _ metric: String) -> [Int: Double] {
    summarize(records, metric: metric)[series]?.mapValues(\.mean) ?? [:]
}

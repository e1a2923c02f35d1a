import DKEFModel
import ExperimentGrid
import Foundation
import GSLNumerics
import Objectives
import ResultsStore

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
    /// Where and how long the cell was computed (`wall_seconds`, `git_commit`, `cpu_model`, and the
    /// kernel OpenBLAS chose, from `openblas`); nil where a cell predates the attribute.
    public var wallSeconds: Double? = nil
    public var gitCommit: String? = nil
    public var cpuModel: String? = nil
    public var openBLAS: String? = nil
    /// The process's peak resident set when the cell finished (`peak_resident_mib`), where recorded.
    public var peakResidentMiB: Double? = nil
    /// A network cell's toy dataset and model kind (`dataset`, `model`); nil for DKEF cells.
    public var dataset: String? = nil
    public var modelKind: String? = nil
    /// A score-estimation cell's sample count M (`sample_count`) and, for a kernel estimator, its
    /// settings variant (`kernel_variant`); nil for the other cells.
    public var sampleCount: Int? = nil
    public var kernelVariant: String? = nil

    /// As `Cell.series`: the method, with σ for DSM and the layout for CP's per-pair cells.
    public var series: String {
        if let kernelVariant { return "\(method) (\(kernelVariant))" }
        if let modelKind { return "\(method) (\(modelKind))" }
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
                                  target: (try? g.attribute("target"))?.stringValue ?? Target.standardNormal.rawValue,
                                  wallSeconds: (try? g.attribute("wall_seconds"))?.doubleValue,
                                  gitCommit: (try? g.attribute("git_commit"))?.stringValue,
                                  cpuModel: (try? g.attribute("cpu_model"))?.stringValue,
                                  openBLAS: (try? g.attribute("openblas"))?.stringValue.map(openBLASCore),
                                  peakResidentMiB: (try? g.attribute("peak_resident_mib"))?.doubleValue,
                                  dataset: (try? g.attribute("dataset"))?.stringValue,
                                  modelKind: (try? g.attribute("model"))?.stringValue,
                                  sampleCount: (try? g.attribute("sample_count"))?.intValue,
                                  kernelVariant: (try? g.attribute("kernel_variant"))?.stringValue)
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

/// The kernel named in an OpenBLAS configuration string ("OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH
/// NO_AFFINITY Cooperlake MAX_THREADS=64" → "Cooperlake"): its one word that is not a build option.
public func openBLASCore(_ configuration: String) -> String {
    let options: Set<Substring> = ["OpenBLAS", "NO_LAPACKE", "DYNAMIC_ARCH", "NO_AFFINITY"]
    return configuration.split(separator: " ").first { word in
        word.first?.isUppercase == true && !options.contains(word) && !word.hasPrefix("MAX_THREADS")
    }.map(String.init) ?? configuration
}

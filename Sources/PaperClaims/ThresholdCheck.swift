import Reports
import GridExecution
import ExperimentGrid
import Foundation
import ResultsStore
import Yams

/// The paper's claims as numeric thresholds on the quick grid (`make check`). Each claim is
/// computed from the results files and compared with its bound from experiments/thresholds.yml.
public enum ThresholdCheck {
    public struct Outcome: CustomStringConvertible {
        public var name: String
        public var value: Double
        public var bound: Double
        public var isMaximum: Bool
        public var detail: String
        public var passed: Bool { isMaximum ? value <= bound : value >= bound }
        public var description: String {
            "\(name): \(String(format: "%.3f", value)) \(isMaximum ? "≤" : "≥") \(bound) — \(detail)"
        }
    }

    /// Each claim: name → (needs which file, computes its value from the cell records).
    static let claims: [String: (file: String, isMaximum: Bool, detail: String, value: @Sendable ([CellRecord]) -> Double)] = [
        "ssm_vr_over_sm_fisher_max": ("figure1", true, "SSM-VR's test Fisher divergence over SM's (worst D; means over seeds)",
                                      { worstRatio($0, "ssm_vr", "sm", metric: "fisher_divergence") }),
        "ssm_over_approx_bp_fisher_max": ("figure1", true, "SSM's test Fisher divergence over Approx BP's (worst D)",
                                          { worstRatio($0, "ssm", "approx_bp", metric: "fisher_divergence") }),
        "ssm_vr_over_approx_bp_fisher_max": ("figure1", true, "SSM-VR's test Fisher divergence over Approx BP's (worst D)",
                                             { worstRatio($0, "ssm_vr", "approx_bp", metric: "fisher_divergence") }),
        "ssm_over_cp_fisher_max": ("figure1", true, "SSM's test Fisher divergence over CP's (worst D)",
                                   { worstRatio($0, "ssm", "cp", metric: "fisher_divergence") }),
        "ssm_vr_over_cp_fisher_max": ("figure1", true, "SSM-VR's test Fisher divergence over CP's (worst D)",
                                      { worstRatio($0, "ssm_vr", "cp", metric: "fisher_divergence") }),
        "dsm_worst_over_best_sigma_min": ("table1", false, "DSM's worst over best σ by test Fisher divergence (least over D)",
                                          { dsmSigmaSpread($0) }),
        "figure3_ssm_vr_over_sm_fisher_max": ("figure3", true, "SSM-VR's test Fisher divergence over SM's (worst target and D)",
                                              { worstRatioOverTargets($0, "ssm_vr", "sm") }),
        "figure3_fsm_over_ssm_fisher_max": ("figure3", true, "FSM's test Fisher divergence over SSM's (worst target and D)",
                                            { worstRatioOverTargets($0, "fsm", "ssm") }),
        "figure5_fisher_over_untrained_max": ("figure5", true, "every method's test Fisher divergence over the untrained network's (worst method, model kind and dataset; means over seeds)",
                                              { worstOverUntrained($0, methods: nil) }),
        "figure5_sm_ssm_vr_fisher_over_untrained_max": ("figure5", true, "SM's and SSM-VR's test Fisher divergence over the untrained network's (worst model kind and dataset)",
                                                        { worstOverUntrained($0, methods: ["sm", "ssm_vr"]) }),
        "figure5_exact_annealed_weight_error_max": ("figure5", true, "annealed Langevin on the exact blurred mixture score: largest error of the mode fractions (mean over seeds)",
                                                    { meanMetric($0, "exact_annealed_weight_error") }),
        "figure5_exact_langevin_weight_error_min": ("figure5", false, "plain Langevin on the exact score from the same start: largest error of the mode fractions (mean over seeds)",
                                                    { meanMetric($0, "exact_langevin_weight_error") }),
        "sm_minus_ssm_time_slope_min": ("figure2", false, "exact SM's log-log slope of iteration time vs D minus SSM's",
                                        { slope($0, "sm") - slope($0, "ssm") }),
    ]

    public static func run(thresholdsFile: String, resultsFolder: String) throws -> [Outcome] {
        let text: String
        do { text = try String(contentsOfFile: thresholdsFile, encoding: .utf8) } catch {
            throw ConfigError.unreadable(file: thresholdsFile, reason: "cannot read it (\(FileManager.default.fileExists(atPath: thresholdsFile) ? "not UTF-8 text" : "no such file"))")
        }
        let root: Any?
        do { root = try Yams.load(yaml: text) } catch { throw ConfigError.unreadable(file: thresholdsFile, reason: "not valid YAML: \(error)") }
        guard let map = root as? [String: Any], !map.isEmpty else {
            throw ConfigError.invalid(file: thresholdsFile, key: "(top level)", reason: "must map threshold names to numbers")
        }
        var records: [String: [CellRecord]] = [:]
        return try map.keys.sorted().map { name in
            guard let claim = claims[name] else {
                throw ConfigError.invalid(file: thresholdsFile, key: name, reason: "unknown threshold; known: \(claims.keys.sorted().joined(separator: ", "))")
            }
            guard let bound = (map[name] as? Double) ?? (map[name] as? Int).map(Double.init) else {
                throw ConfigError.invalid(file: thresholdsFile, key: name, reason: "must be a number")
            }
            let file = "\(resultsFolder)/\(claim.file).h5"
            if records[claim.file] == nil {
                let holds = try ResultsGrid.experiment(of: file)
                guard holds == claim.file else {
                    throw FileError("\(file) holds \(holds) results, but threshold '\(name)' needs \(claim.file) results there")
                }
                records[claim.file] = try CellRecord.all(in: file)
            }
            return Outcome(name: name, value: claim.value(records[claim.file] ?? []), bound: bound, isMaximum: claim.isMaximum, detail: claim.detail)
        }
    }

    /// max over D of mean(a)/mean(b); NaN if either is missing (NaN fails every bound).
    static func worstRatio(_ records: [CellRecord], _ a: String, _ b: String, metric: String) -> Double {
        let ma = seriesMeans(records, a, metric), mb = seriesMeans(records, b, metric)
        let ratios = ma.compactMap { d, value in mb[d].map { value / $0 } }
        return ratios.max() ?? .nan
    }

    /// max over targets of `worstRatio` on each target's cells; NaN if a target lacks either series.
    static func worstRatioOverTargets(_ records: [CellRecord], _ a: String, _ b: String) -> Double {
        let ratios = Set(records.map(\.target)).map { target in
            worstRatio(records.filter { $0.target == target }, a, b, metric: "fisher_divergence")
        }
        return ratios.contains(where: \.isNaN) ? .nan : ratios.max() ?? .nan
    }

    /// min over D of (worst σ / best σ) for DSM's mean test Fisher divergence; NaN without DSM
    /// cells that have one.
    static func dsmSigmaSpread(_ records: [CellRecord]) -> Double {
        let dsm = records.filter { $0.method == "dsm" }
        let spreads = Set(dsm.map(\.dimension)).compactMap { d -> Double? in
            let bySigma = summarize(dsm.filter { $0.dimension == d }, metric: "fisher_divergence").values.compactMap { $0[d]?.mean }
            guard let worst = bySigma.max(), let best = bySigma.min() else { return nil }
            return worst / best
        }
        return spreads.min() ?? .nan
    }

    /// max over (series, dataset) of mean Fisher divergence / mean untrained Fisher divergence,
    /// over the network cells of `methods` (nil: all) that have both; NaN when there is none.
    static func worstOverUntrained(_ records: [CellRecord], methods: Set<String>?) -> Double {
        let cells = records.filter { ($0.values["fisher_divergence"] != nil) && (methods?.contains($0.method) ?? true) }
        let groups = Dictionary(grouping: cells) { "\($0.series) \($0.dataset ?? "")" }
        let ratios = groups.values.map { group -> Double in
            let trained = group.compactMap { $0.values["fisher_divergence"] }, untrained = group.compactMap { $0.values["untrained_fisher_divergence"] }
            return (trained.reduce(0, +) / Double(trained.count)) / (untrained.reduce(0, +) / Double(untrained.count))
        }
        return ratios.max() ?? .nan
    }

    /// The mean over the cells that have `metric`; NaN when none has it.
    static func meanMetric(_ records: [CellRecord], _ metric: String) -> Double {
        let values = records.compactMap { $0.values[metric] }
        return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }

    static func slope(_ records: [CellRecord], _ method: String) -> Double {
        let points = records.filter { $0.method == method }.compactMap { r in r.values["median_total_seconds"].map { (Double(r.dimension), $0) } }
        return logLogSlope(x: points.map(\.0), y: points.map(\.1))
    }
}

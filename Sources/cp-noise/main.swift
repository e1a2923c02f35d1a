import ArgumentParser
import Autodiff
import CRuntime
import DKEFModel
import CellExperiments
import ExperimentCommands
import ExperimentGrid
import GridExecution
import Foundation
import GSLNumerics
import Objectives
import ResultsStore
import Training

/// Issue 17: CP's two noise layouts on the committed CP checkpoints of figure 1.
@main
struct CPNoise: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "cp-noise",
        abstract: "The variance of CP's trace estimate and parameter gradient under per-point and per-pair noise, on figure 1's CP checkpoints.",
        discussion: """
        For each CP cell cp_d<D>_seed<s> of the results file: its finalised DKEF and α, the first \
        --points test points of its data (regenerated from the seed), and --draws CP seeds shared by \
        both layouts; see NoiseLayoutVariance for the statistics. Writes <out>.md (a table with the \
        per-pair / per-point ratios) and <out>.h5 (every row, with provenance), each replaced \
        atomically when the run completes; exit 64 for a usage error, 1 for a failure (nothing \
        written).
        """)

    @Option(help: "Results file holding the CP checkpoints.")
    var results = "results/figure1.h5"

    @Option(help: "Comma-separated dimensions.")
    var dims = "10,50,100"

    @Option(help: "Comma-separated seeds (one checkpoint each).")
    var seeds = "0,1,2"

    @Option(help: "Test points per checkpoint.")
    var points = 100

    @Option(help: "CP draws per layout and checkpoint (at least 2).")
    var draws = 100

    @Option(help: "Output path without extension (.md and .h5 are written).")
    var out = "results/cp-noise"

    /// A comma-separated list of integers ≥ 0, checked as the grid executables check theirs.
    func parsed(_ list: String, _ flag: String) throws -> [Int] {
        try ExperimentOptions.list(list, flag: flag, kind: "integers ≥ 0") { Int($0).flatMap { $0 >= 0 ? $0 : nil } }!
    }

    func validate() throws {
        do {
            _ = try parsed(dims, "--dims")
            _ = try parsed(seeds, "--seeds")
        } catch { throw ValidationError("\(error)") }
        guard points >= 1 else { throw ValidationError("--points must be ≥ 1, got \(points)") }
        guard draws >= 2 else { throw ValidationError("--draws must be ≥ 2 (a variance needs two), got \(draws)") }
        guard FileManager.default.fileExists(atPath: results) else { throw ValidationError("--results: no such file \(results)") }
    }

    func run() throws {
        try OutputCheck.checkWritable(out + ".md")
        try OutputCheck.checkWritable(out + ".h5")
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        let provenance = Provenance.current()
        var table: [(cell: String, dimension: Int, rows: [NoiseLayoutVariance.Row])] = []
        for d in try parsed(dims, "--dims") {
            for seed in try parsed(seeds, "--seeds") {
                let name = "cp_d\(d)_seed\(seed)"
                let checkpoint = try ResultsFile.read(at: results) { root -> DKEFCheckpoint.Contents in
                    guard root.contains("cells"), try root.group("cells").contains(name) else {
                        throw FileError("\(results) has no cell \(name) (run make figure1 first)")
                    }
                    return try DKEFCheckpoint.read(from: try root.group("cells").group(name).group("checkpoint"))
                }
                guard let alpha = checkpoint.alpha else { throw FileError("\(results): \(name)'s checkpoint has no α") }
                let data = try HighDimData(dimension: d, settings: ProtocolSettings(), using: RandomStream(seed: UInt64(seed)))
                let x = data.test.slice(0..<min(points, data.test.shape[0]), alongAxis: 0)
                let rows = try NoiseLayoutVariance.measure(model: checkpoint.model, alpha: alpha, at: x, draws: draws, seed: UInt64(1000 + seed))
                for r in rows {
                    log(String(format: "cp-noise: %@ %@: trace variance %.4g, gradient MSE %.4g, ‖g‖ %.4g ± %.3g (exact %.4g), %.2f s per draw",
                               name, r.layout.rawValue, r.traceVariance, r.gradientMSE, r.gradientNormMean, r.gradientNormSD, r.exactGradientNorm, r.secondsPerDraw))
                }
                table.append((name, d, rows))
            }
        }
        try write(table, provenance: provenance)
    }

    func write(_ table: [(cell: String, dimension: Int, rows: [NoiseLayoutVariance.Row])], provenance: Provenance) throws {
        func row(_ rows: [NoiseLayoutVariance.Row], _ layout: CurvaturePropagationNoise) -> NoiseLayoutVariance.Row { rows.first { $0.layout == layout }! }
        var lines = [
            "# CP's noise layouts: variance on figure 1's checkpoints",
            "",
            "Per cell: \(points) test points, \(draws) CP draws per layout (the same seeds for both), α at the checkpoint's value. "
                + "Trace variance: per-point variance of CP's tr ∇² estimate over draws, mean over points. Gradient: of the CP objective in θ; "
                + "MSE = mean ‖ĝ − g‖² against exact SM's gradient g. Ratio = per-pair / per-point. Produced by `cp-noise` from \(results) "
                + "(commit \(provenance.gitCommit.prefix(12)), \(provenance.cpuModel)).",
            "",
            "| cell | trace var per-point | trace var per-pair | ratio | grad MSE per-point | grad MSE per-pair | ratio | ‖g‖ per-point (mean ± sd) | ‖g‖ per-pair | exact ‖g‖ | worst bias/SE (pt, pair) | s/draw (pt, pair) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for (cell, _, rows) in table {
            let (a, b) = (row(rows, .perPoint), row(rows, .perPair))
            lines.append(String(format: "| %@ | %.4g | %.4g | %.3g | %.4g | %.4g | %.3g | %.4g ± %.3g | %.4g ± %.3g | %.4g | %.2f, %.2f | %.2f, %.2f |",
                                cell, a.traceVariance, b.traceVariance, b.traceVariance / a.traceVariance,
                                a.gradientMSE, b.gradientMSE, b.gradientMSE / a.gradientMSE,
                                a.gradientNormMean, a.gradientNormSD, b.gradientNormMean, b.gradientNormSD, a.exactGradientNorm,
                                a.traceBiasOverSE, b.traceBiasOverSE, a.secondsPerDraw, b.secondsPerDraw))
        }
        let text = lines.joined(separator: "\n") + "\n"
        try ResultsFile.write(to: out + ".h5") { root in
            try provenance.write(to: root)
            try root.setAttribute("experiment", .string("cp-noise"))
            try root.setAttribute("results", .string(results))
            try root.setAttribute("points", .int(points))
            try root.setAttribute("draws", .int(draws))
            for (cell, d, rows) in table {
                for r in rows {
                    let g = try root.createGroup("\(cell)_\(r.layout.rawValue)")
                    try g.setAttribute("dimension", .int(d))
                    try g.setAttribute("layout", .string(r.layout.rawValue))
                    for (name, value, unit) in [("trace_variance", r.traceVariance, "squared score, 1/x^4"), ("trace_bias_over_se", r.traceBiasOverSE, "1"),
                                                ("gradient_mse", r.gradientMSE, "squared gradient"), ("gradient_norm_mean", r.gradientNormMean, "gradient"),
                                                ("gradient_norm_sd", r.gradientNormSD, "gradient"), ("exact_gradient_norm", r.exactGradientNorm, "gradient"),
                                                ("seconds_per_draw", r.secondsPerDraw, "s")] {
                        try g.write(name, doubles: [value], shape: [])
                        try g.setAttribute("units", .string(unit), on: name)
                    }
                }
            }
        }
        try text.write(toFile: out + ".md", atomically: true, encoding: .utf8)
        print(text)
    }
}

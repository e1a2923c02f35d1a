import ArgumentParser
import Autodiff
import COpenBLAS
import CRuntime
import DKEFModel
import ExperimentCommands
import ExperimentGrid
import GridExecution
import Foundation
import GSLNumerics
import Objectives
import ResultsStore
import Training

/// Seconds per DKEF training iteration, per method and dimension, against the authors' PyTorch
/// code on a machine of this kind (the performance issue's reference table).
@main
struct Bench: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time DKEF training iterations per method and D; compare with the authors' PyTorch code.",
        discussion: """
        Two units per cell, medians over the timed iterations after warm-up:
          (a) the authors' runner unit: a training step + alpha's matrices on 1000 training \
        points + the validation objective on the 540 validation points;
          (b) figure 2's unit: alpha on X_t (100) + objective on X_v (100) + parameter \
        gradient + Adam step.
        GEMM work is counted exactly (FlopCounter); GFLOP/s is that work over (a)'s time, next to \
        OpenBLAS dgemm measured in the same run. Peak resident memory is asked to reset per cell \
        (/proc/self/clear_refs); where the kernel ignores that (seen on this machine's container) \
        the column is the process's peak so far, and the RSS after the first and last iteration \
        shows per-cell use and growth. Exact SM runs while one iteration of (a) stays under --budget, \
        and at least to D = 100. Writes results/bench.md and results/bench.h5.
        """)

    @Option(help: "Comma-separated methods.")
    var methods: String = Estimator.paper.map(\.rawValue).joined(separator: ",")

    @Option(help: "Comma-separated CP noise layouts, one row each (per_pair rows are named cp_per_pair; the authors' reference is per-pair).")
    var cpNoise: String = CurvaturePropagationNoise.allCases.map(\.rawValue).joined(separator: ",")

    @Option(help: "Comma-separated dimensions.")
    var dims: String = "10,20,50,100,200,500"

    @Option(help: "Untimed warm-up iterations per cell.")
    var warmup: Int = 1

    @Option(help: "Timed iterations per cell (the median is reported).")
    var iterations: Int = 10

    @Option(help: "Seconds: exact SM stops growing D once one iteration of unit (a) exceeds this (always runs up to D = 100).")
    var budget: Double = 60

    @Option(help: "Markdown output.")
    var out: String = "results/bench.md"

    @Option(help: "HDF5 output.")
    var h5: String = "results/bench.h5"

    /// The authors' code (PyTorch, CPU, 2 threads), seconds per iteration of unit (a), median.
    static let reference: [String: [Int: Double]] = [
        "sm": [10: 22.5, 20: 37.9, 50: 50],
        "ssm": [10: 4.29, 20: 4.10, 50: 3.60, 100: 5.03, 200: 6.18, 500: 12.3],
        "ssm_vr": [10: 3.91, 20: 4.03, 50: 3.76, 100: 4.93, 200: 5.42, 500: 12.3],
        "dsm": [10: 1.55, 20: 2.00, 50: 1.86, 100: 2.96, 200: 4.22, 500: 6.54],
        "approx_bp": [10: 2.36, 20: 3.04, 50: 2.52, 100: 3.56, 200: 4.73, 500: 11.5],
        "cp": [10: 5.70, 20: 6.03, 50: 5.31, 100: 7.46, 200: 8.85, 500: 17.9],
    ]

    /// The reference row of a bench row: the authors' CP is the per-pair layout, so both CP rows
    /// compare with it.
    static func referenceMethod(_ row: String) -> String { row.hasPrefix("cp_") ? "cp" : row }

    func validate() throws {
        for m in methods.split(separator: ",") { _ = try Estimator(named: String(m)) }
        do { _ = try layouts } catch { throw ValidationError("--cp-noise: \(error)") }
        guard dims.split(separator: ",").allSatisfy({ (Int($0) ?? 0) > 0 }) else { throw ValidationError("--dims must be positive integers, got '\(dims)'") }
        guard iterations >= 10 || ProcessInfo.processInfo.environment["BENCH_ALLOW_FEW"] != nil else {
            throw ValidationError("--iterations must be at least 10 (medians of at least 10 iterations)")
        }
    }

    var layouts: [CurvaturePropagationNoise] {
        get throws { try cpNoise.split(separator: ",").map { try CurvaturePropagationNoise(named: String($0)) } }
    }

    struct Row {
        var method: String, dimension: Int
        var unitA: Double, unitB: Double, gemmGFLOP: Double, peakMiB: Double, rssFirstMiB: Double, rssLastMiB: Double
        var timed: Int
    }

    func run() throws {
        // Both reports are replaced at the end (a benchmark is regenerated, not resumed): check
        // now that they can be written, not after the timing.
        try OutputCheck.checkWritable(out)
        try OutputCheck.checkWritable(h5)
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        let dgemm = measureDGEMM()
        let settings = ProtocolSettings()
        var rows: [Row] = [], skipped: [String] = []
        for name in methods.split(separator: ",").map(String.init) {
            let estimator = try Estimator(named: name)
            for layout in estimator == .cp ? try layouts : [.perPoint] {
            let name = layout == .perPoint ? name : "\(name)_\(layout.rawValue)"
            for d in dims.split(separator: ",").compactMap({ Int($0) }) {
                if estimator == .sm, d > 100, let last = rows.last(where: { $0.method == "sm" }) {
                    if last.unitA > budget {
                        log("bench: sm D=\(d) skipped: one iteration took \(String(format: "%.1f", last.unitA)) s at D=\(last.dimension), over the \(budget) s budget")
                        continue
                    }
                    // Exact SM's memory grows linearly with D (D directions per point and basis
                    // function); skip a cell projected to need more than 80% of the machine.
                    let projected = last.peakMiB * Double(d) / Double(last.dimension)
                    if projected > 0.8 * totalMemoryMiB() {
                        log(String(format: "bench: sm D=%d skipped: projected peak memory %.0f MiB (from %.0f MiB at D=%d) exceeds 80%% of %.0f MiB",
                                   d, projected, last.peakMiB, last.dimension, totalMemoryMiB()))
                        skipped.append("sm D=\(d): projected peak memory \(Int(projected)) MiB > 80% of \(Int(totalMemoryMiB())) MiB")
                        continue
                    }
                }
                resetPeakResident()
                let row = try cell(estimator, layout: layout, dimension: d, settings: settings)
                rows.append(row)
                log(String(format: "bench: %@ D=%d: (a) %.3f s, (b) %.3f s, %.2f GFLOP GEMM, peak %.0f MiB", name, d, row.unitA, row.unitB, row.gemmGFLOP, row.peakMiB))
                try write(rows, dgemm: dgemm, skipped: skipped, quiet: true)   // after every cell: a killed run keeps the rest
            }
            }
        }
        try write(rows, dgemm: dgemm, skipped: skipped, quiet: false)
    }

    func cell(_ estimator: Estimator, layout: CurvaturePropagationNoise, dimension d: Int, settings: ProtocolSettings) throws -> Row {
        let objective = try estimator.objective(ObjectiveSettings(sigma: 0.1, curvaturePropagationNoise: layout))
        let stream = RandomStream(seed: 0)
        let data = try HighDimData(dimension: d, settings: settings, using: stream)
        let configuration = DKEFConfiguration(dimension: d)
        var model = try DKEF(configuration, inducingPoints: data.train.rows(stream.permutation(settings.trainCount).prefix(200)), using: stream)
        var adam = Adam(learningRate: settings.learningRate)
        let trainer = DKEFTrainer(estimator: estimator, configuration: configuration, settings: settings, seed: 0)
        let half = settings.batchSize / 2
        var unitA: [Double] = [], unitB: [Double] = [], flops = 0, rssFirst = 0.0
        for iteration in 0..<(warmup + iterations) {
            let order = stream.permutation(settings.trainCount)
            let xt = data.train.rows(order.prefix(half)), xv = data.train.rows(order.dropFirst(half).prefix(half))
            let start = DispatchTime.now().uptimeNanoseconds
            let (step, counted) = try FlopCounter.counting {
                let step = try DKEFTrainer.trainingStep(&model, optimizer: &adam, objective: objective, alphaBatch: xt, lossBatch: xv,
                                                        clipNorm: settings.clipNorm, stream: stream)
                _ = try trainer.validate(model, objective: objective, data: data, stream: stream, iteration: iteration)
                return step
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            guard step.loss.isFinite else { throw TrainingError.nonFinite(stage: "bench", iteration: iteration, what: "the training objective") }
            if iteration == 0 { rssFirst = residentMiB() }
            if iteration >= warmup {
                unitA.append(seconds)
                unitB.append(step.timing.total)
                flops = counted
            }
            if seconds > budget {   // one over-budget iteration is enough to know
                if unitA.isEmpty { unitA = [seconds]; unitB = [step.timing.total]; flops = counted }
                break
            }
        }
        return Row(method: layout == .perPoint ? estimator.rawValue : "\(estimator.rawValue)_\(layout.rawValue)", dimension: d, unitA: median(unitA), unitB: median(unitB), gemmGFLOP: Double(flops) / 1e9,
                   peakMiB: peakResidentMiB(), rssFirstMiB: rssFirst, rssLastMiB: residentMiB(), timed: unitA.count)
    }

    func write(_ rows: [Row], dgemm: Double, skipped: [String], quiet: Bool) throws {
        let provenance = Provenance.current()
        var lines = [
            "# bench: seconds per DKEF training iteration vs the authors' PyTorch code",
            "",
            "Machine: \(provenance.cpuModel), \(provenance.cores) cores, OpenBLAS threads \(provenance.blasThreads), kernels \(openBLASCore) (OpenBLAS 0.3.21 falls back to its SSE3 Prescott kernels on this CPU; the executables select the AVX-512 ones, see selectOpenBLASCore); commit \(provenance.gitCommit.prefix(12))\(provenance.gitDirty ? " (with uncommitted changes)" : "").",
            "OpenBLAS dgemm 1024³ in this run: \(String(format: "%.1f", dgemm)) GFLOP/s. Medians of \(iterations) iterations after \(warmup) warm-up (fewer where one iteration exceeded the \(budget) s budget: see 'timed').",
            "Unit (a): training step + α on 1000 training points + validation objective on 540 points (the authors' runner); unit (b): figure 2's (α on 100 + objective on 100 + gradient + Adam).",
            "Reference: the authors' code, PyTorch CPU 2 threads, unit (a), on a machine of this kind. Speed-up = reference / ours.",
            "",
            "| method | D | (a) s | reference s | speed-up | (b) s | GEMM GFLOP (a) | GEMM GFLOP/s | peak MiB | RSS first → last MiB | timed |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        lines.insert("Peak MiB is this process's peak so far when the kernel does not reset it per cell; RSS first → last shows each cell's own use and any growth across iterations.", at: 6)
        for r in rows {
            let reference = Self.reference[Self.referenceMethod(r.method)]?[r.dimension]
            let speedup = reference.map { String(format: "%.1f×", $0 / r.unitA) } ?? (r.method == "sm" && r.dimension >= 100 ? "ref. out of memory" : "–")
            let timed = r.timed == 1 && r.unitA > budget ? "1 (over budget)" : "\(r.timed)"
            lines.append(String(format: "| %@ | %d | %.3f | %@ | %@ | %.3f | %.2f | %.1f | %.0f | %.0f → %.0f | %@ |",
                                r.method, r.dimension, r.unitA, reference.map { String(format: "%.2f", $0) } ?? "–", speedup, r.unitB,
                                r.gemmGFLOP, r.gemmGFLOP / r.unitA, r.peakMiB, r.rssFirstMiB, r.rssLastMiB, timed))
        }
        if !skipped.isEmpty { lines += ["", "Skipped: " + skipped.joined(separator: "; ") + "."] }
        try (lines.joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        try ResultsFile.write(to: h5) { root in
            try provenance.write(to: root)
            try root.setAttribute("dgemm_gflops", .double(dgemm))
            try root.setAttribute("iterations", .int(iterations))
            for r in rows {
                let g = try root.createGroup("\(r.method)_d\(r.dimension)")
                try g.setAttribute("method", .string(r.method))
                try g.setAttribute("dimension", .int(r.dimension))
                for (name, value, unit) in [("unit_a_seconds", r.unitA, "s"), ("unit_b_seconds", r.unitB, "s"), ("gemm_gflop", r.gemmGFLOP, "GFLOP"),
                                            ("peak_resident_mib", r.peakMiB, "MiB")] {
                    try g.write(name, doubles: [value], shape: [])
                    try g.setAttribute("units", .string(unit), on: name)
                }
                if let reference = Self.reference[Self.referenceMethod(r.method)]?[r.dimension] {
                    try g.write("reference_seconds", doubles: [reference], shape: [])
                    try g.setAttribute("units", .string("s"), on: "reference_seconds")
                }
            }
        }
        if !quiet { print(lines.joined(separator: "\n")) }
    }
}

func totalMemoryMiB() -> Double {
    guard let info = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
          let line = info.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
          let kib = Double(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? "") else { return .infinity }
    return kib / 1024
}


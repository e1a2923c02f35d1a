import ArgumentParser
import Autodiff
import CRuntime
import Foundation
import GridExecution
import GSLNumerics
import NeuralModels
import Objectives
import Training

/// Seconds per training step of the deep score models (issue 27's benchmark): for each method,
/// model kind and D, `NetworkTrainer` runs `warmup + steps` steps on standard-normal data (the
/// very step figure5 and train-network take: the objective's noise, its value, the parameter
/// gradient, the clipped norm, Adam), and the median of the timed steps is reported with the
/// step's matrix-product FLOPs (FlopCounter) and the resident memory after the warm-up and after the
/// timed steps (less the timed run's larger training set). One JSON
/// object per cell on standard output, for `experiments/reference/bench_neural.py`, which runs the
/// PyTorch reference in the same run and writes results/bench-neural.md.
struct NetworkSteps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "networks",
        abstract: "Time one training step of energy and score networks for each method (JSON lines).")

    @Option(help: "Comma-separated data dimensions D.")
    var dims: String = "2,10,50,100"

    @Option(help: "Comma-separated methods (sm, ssm, ssm_vr, dsm, fsm, deen).")
    var methods: String = "sm,ssm,ssm_vr,dsm,fsm,deen"

    @Option(help: "Comma-separated model kinds (energy, score).")
    var models: String = "energy,score"

    @Option(help: "Hidden widths of the energy network.")
    var hidden: String = "300,300"

    @Option(help: "Hidden widths of the score network.")
    var scoreHidden: String = "128,128"

    @Option(help: "Batch size.")
    var batch: Int = 100

    @Option(help: "Untimed steps first.")
    var warmup: Int = 5

    @Option(help: "Timed steps (the median is reported).")
    var steps: Int = 30

    @Option(help: "DSM and DEEN noise scale σ.")
    var sigma: Double = 0.1

    @Flag(help: "Also time OpenBLAS dgemm on a 1024² product and print it as the first line.")
    var dgemm = false

    @Option(help: "Instead of timing: write, per model kind and method at the first of --dims, the initial network's parameters, a batch, the objective's noise, the loss and its parameter gradient as JSON to this file (bench_neural.py --verify recomputes them in PyTorch).")
    var verify: String?

    func validate() throws {
        guard batch > 0, warmup >= 0, steps > 0 else { throw ValidationError("--batch and --steps must be positive, --warmup ≥ 0") }
        guard parseDims(dims) != nil else { throw ValidationError("--dims must be positive integers separated by commas, got '\(dims)'") }
        guard parseDims(hidden) != nil, parseDims(scoreHidden) != nil else {
            throw ValidationError("--hidden and --score-hidden must be positive integers separated by commas")
        }
    }

    func run() throws {
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        let estimators = try methods.split(separator: ",").map { try Estimator(named: String($0)) }
        let kinds = try models.split(separator: ",").map { try ModelKind(named: String($0)) }
        if let verify {
            let d = parseDims(dims)![0]
            var cases: [[String: Any]] = []
            for kind in kinds {
                for estimator in estimators where !(kind == .score && estimator.needsLogDensity) {
                    cases.append(try reference(estimator, kind, dimension: d))
                }
            }
            let data = try JSONSerialization.data(withJSONObject: ["sigma": sigma, "cases": cases], options: [.sortedKeys])
            try data.write(to: URL(fileURLWithPath: verify), options: .atomic)
            return
        }
        if dgemm {
            emit(json(["dgemm_gflops": GridExecution.measureDGEMM(repeats: 5), "cpu": cpuModel(),
                        "blas_threads": openBLASThreadCount, "blas_kernels": openBLASCore]))
        }
        for d in parseDims(dims)! {
            for kind in kinds {
                for estimator in estimators {
                    if kind == .score && estimator.needsLogDensity { continue }
                    emit(json(try measure(estimator, kind, dimension: d)))
                }
            }
        }
    }

    /// One step's inputs and outputs for the PyTorch cross-check: parameters (W as [in, out]), the
    /// batch, the noise, the loss and its parameter gradient, all flattened row-major.
    func reference(_ estimator: Estimator, _ kind: ModelKind, dimension d: Int) throws -> [String: Any] {
        let stream = RandomStream(seed: 1)
        let widths = kind == .energy ? parseDims(hidden)! : parseDims(scoreHidden)!
        let model: any ScoreModel = kind == .energy
            ? try EnergyNetwork(dimension: d, hidden: widths, activation: .softplus, using: stream)
            : try ScoreNetwork(dimension: d, hidden: widths, activation: .softplus, using: stream)
        let objective = try estimator.objective(ObjectiveSettings(projection: .gaussian, sigma: sigma))
        let x = stream.normal(shape: [batch, d])
        let noise = objective.drawNoise(points: batch, dimension: d, using: stream)
        let loss = try objective.evaluate(model, at: x, noise: noise).value
        let grads = gradients(of: loss, with: model.parameters)
        func flat(_ t: Tensor) -> [String: Any] { ["shape": t.shape, "values": t.scalars] }
        var out: [String: Any] = ["method": estimator.rawValue, "model": kind.rawValue, "dim": d, "hidden": widths,
                                  "parameters": model.parameters.map(flat), "x": flat(x), "loss": loss.scalar,
                                  "gradients": grads.map(flat)]
        if let v = noise.projections { out["projections"] = flat(v) }
        if let e = noise.perturbation { out["perturbation"] = flat(e) }
        return out
    }

    func measure(_ estimator: Estimator, _ kind: ModelKind, dimension d: Int) throws -> [String: Any] {
        let stream = RandomStream(seed: 0)
        let widths = kind == .energy ? parseDims(hidden)! : parseDims(scoreHidden)!
        let model: any ScoreModel = kind == .energy
            ? try EnergyNetwork(dimension: d, hidden: widths, activation: .softplus, using: stream)
            : try ScoreNetwork(dimension: d, hidden: widths, activation: .softplus, using: stream)
        let objective = try estimator.objective(ObjectiveSettings(projection: .gaussian, sigma: sigma))
        func trainer(steps: Int) throws -> (NetworkTrainer, Tensor) {
            var settings = NetworkTrainingSettings()
            settings.trainCount = steps * batch
            settings.testCount = 1
            settings.batchSize = batch
            settings.epochs = 1
            return (try NetworkTrainer(model: model, objective: objective, settings: settings), stream.normal(shape: [steps * batch, d]))
        }
        // One step's matrix-product work.
        var (counted, oneBatch) = try trainer(steps: 1)
        var countError: Error?
        let flops = FlopCounter.counting { do { _ = try counted.run(on: oneBatch, using: stream) } catch { countError = error } }.flops
        if let countError { throw countError }
        // Memory after a run of the warm-up steps alone, then after the timed run (warm-up and timed
        // steps): flat when a step keeps nothing of the one before.
        var (short, shortData) = try trainer(steps: max(warmup, 1))
        short.progressSeconds = .infinity
        _ = try short.run(on: shortData, using: stream)
        let before = residentMiB()
        var (timed, data) = try trainer(steps: warmup + steps)
        timed.progressSeconds = .infinity
        let result = try timed.run(on: data, using: stream)
        // The timed run holds `steps` more batches of data than the warm-up run: not growth.
        let after = residentMiB() - Double(steps * batch * d * MemoryLayout<Double>.size) / (1024 * 1024)
        let seconds = Array(result.stepSeconds.dropFirst(warmup)).sorted()
        return ["method": estimator.rawValue, "model": kind.rawValue, "dim": d, "batch": batch,
                "hidden": widths, "median_seconds": seconds[seconds.count / 2],
                "q1_seconds": seconds[seconds.count / 4], "q3_seconds": seconds[(3 * seconds.count) / 4],
                "gemm_flops": flops, "resident_mib_before": before, "resident_mib_after": after,
                "steps": steps, "warmup": warmup]
    }
}

/// A line on standard output, written at once (a pipe would buffer `print`).
func emit(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

func json(_ object: [String: Any]) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}

import ArgumentParser
import Autodiff
import COpenBLAS
import CRuntime
import Foundation
import ExperimentCommands
import ExperimentGrid
import GridExecution
import GSLNumerics
import Objectives

/// The autodiff core microbenchmark: a 3-layer softplus MLP energy E(x) = w₃ᵀ softplus(W₂ softplus(W₁x + b₁) + b₂) + b₃
/// (widths D → 30 → 30 → 1) on an N × D batch, timing
///   forward        E(X) without a graph;
///   input grad     ∇ₓ Σ E(xᵢ);
///   HVP            H v = ∇ₓ (vᵀ ∇ₓ Σ E) with createGraph (a graph kept for the next step);
///   param grad     ∇_θ Σᵢ vᵢᵀ H vᵢ, differentiating through the HVP (third-order reverse mode).
/// GEMM GFLOP/s counts only matrix-product work (FlopCounter); dgemm GFLOP/s is OpenBLAS on a
/// 1024² product in the same run.
@main
struct BenchCore: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "bench-core",
        abstract: "Microbenchmarks of the autodiff core and the score-matching objectives (release build).",
        subcommands: [MLPSteps.self, ObjectiveSteps.self, NetworkSteps.self, KernelFitsBench.self],
        defaultSubcommand: MLPSteps.self)
}

struct MLPSteps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlp",
        abstract: "Time forward, input gradient, Hessian-vector product and its parameter gradient for a softplus MLP.")

    @Option(help: "Comma-separated data dimensions D.")
    var dims: String = "10,50,100"

    @Option(help: "Batch size N.")
    var batch: Int = 20_000

    @Option(help: "Timed repetitions per measurement (the median is reported).")
    var repeats: Int = 5

    @Option(help: "Seed for weights and data.")
    var seed: UInt64 = 0

    @Option(help: "Also write the table as Markdown to this file.")
    var out: String?

    func validate() throws {
        guard batch > 0 else { throw ValidationError("--batch must be positive, got \(batch)") }
        guard repeats > 0 else { throw ValidationError("--repeats must be positive, got \(repeats)") }
        guard parseDims(dims) != nil else {
            throw ValidationError("--dims must be positive integers separated by commas, got '\(dims)'")
        }
    }

    func run() throws {
        if let out { try OutputCheck.checkWritable(out) }
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        let stream = RandomStream(seed: seed)
        let dgemm = GridExecution.measureDGEMM(repeats: repeats)
        var lines = [
            "# bench-core: softplus MLP D→30→30→1, N = \(batch), median of \(repeats)",
            "",
            "Machine: \(cpuModel()), \(ProcessInfo.processInfo.activeProcessorCount) cores, OpenBLAS threads \(openBLASThreadCount), kernels \(openBLASCore).",
            "OpenBLAS dgemm 1024×1024 in this run: \(String(format: "%.1f", dgemm)) GFLOP/s (median).",
            "",
            "| D | step | seconds | GEMM GFLOP | GEMM GFLOP/s | share of dgemm |",
            "|---|---|---|---|---|---|",
        ]
        for d in parseDims(dims)! {
            let mlp = MLP(inputs: d, using: stream)
            let x = stream.normal(shape: [batch, d])
            let v = stream.rademacher(shape: [batch, d])
            let steps: [(String, () -> Void)] = [
                ("forward", { _ = withoutGradients { mlp.energy(x) } }),
                ("input grad", {
                    let xv = x.requiringGradient()
                    _ = gradient(of: mlp.energy(xv).sum(), with: xv)
                }),
                ("HVP (createGraph)", { _ = mlp.hessianVectorProduct(x, v) }),
                ("param grad of HVP", {
                    let hv = mlp.hessianVectorProduct(x, v)
                    _ = gradients(of: (hv * v).sum(), with: mlp.parameters)
                }),
            ]
            for (name, step) in steps {
                step()  // warm-up
                let flops = FlopCounter.counting(step).flops
                let seconds = median((0..<repeats).map { _ in time(step) })
                let gflops = Double(flops) / 1e9
                lines.append("| \(d) | \(name) | \(String(format: "%.4f", seconds)) | \(String(format: "%.3f", gflops)) | "
                             + "\(String(format: "%.1f", gflops / seconds)) | \(String(format: "%.0f%%", 100 * gflops / seconds / dgemm)) |")
                FileHandle.standardError.write("D=\(d) \(name): \(String(format: "%.4f", seconds)) s\n".data(using: .utf8)!)
            }
        }
        let text = lines.joined(separator: "\n") + "\n"
        print(text, terminator: "")
        if let out { try text.write(toFile: out, atomically: true, encoding: .utf8) }
    }
}

/// Weights W: [in, out] so a layer is X W + b on a row batch; weights and biases N(0, 1)/√out.
struct MLP: LogDensityModel {
    var parameters: [Tensor]

    /// log p̃(x) = −E(x), `[N]`.
    func logDensity(_ x: Tensor) -> Tensor { -energy(x).reshaped([-1]) }

    init(inputs d: Int, using stream: RandomStream) {
        func layer(_ i: Int, _ o: Int) -> [Tensor] {
            let scale = 1 / Double(o).squareRoot()
            return [(stream.normal(shape: [i, o]) * scale).requiringGradient(),
                    (stream.normal(shape: [o]) * scale).requiringGradient()]
        }
        parameters = layer(d, 30) + layer(30, 30) + layer(30, 1)
    }

    /// E(X): [N, D] → [N, 1].
    func energy(_ x: Tensor) -> Tensor {
        let p = parameters
        let h1 = (Tensor.matmul(x, p[0]) + p[1]).softplus()
        let h2 = (Tensor.matmul(h1, p[2]) + p[3]).softplus()
        return Tensor.matmul(h2, p[4]) + p[5]
    }

    /// H v per row, H = ∇ₓ² E(x), by reverse-over-reverse with the graph kept.
    func hessianVectorProduct(_ x: Tensor, _ v: Tensor) -> Tensor {
        let xv = x.requiringGradient()
        let g = gradient(of: energy(xv).sum(), with: xv, createGraph: true)
        return gradient(of: (g * v).sum(), with: xv, createGraph: true)
    }
}

/// Seconds per objective + parameter gradient for each estimator on a batch, the MLP energy.
struct ObjectiveSteps: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "objectives",
        abstract: "Time each estimator's objective and its parameter gradient on a softplus MLP energy (D→30→30→1).")

    @Option(help: "Comma-separated data dimensions D.")
    var dims: String = "10,100"

    @Option(help: "Batch size N.")
    var batch: Int = 100

    @Option(help: "Timed repetitions (the median is reported).")
    var repeats: Int = 10

    @Option(help: "DSM noise scale sigma.")
    var sigma: Double = 0.1

    @Option(help: "Also write the table as Markdown to this file.")
    var out: String?

    func validate() throws {
        guard batch > 0, repeats > 0 else { throw ValidationError("--batch and --repeats must be positive") }
        guard parseDims(dims) != nil else { throw ValidationError("--dims must be positive integers separated by commas, got '\(dims)'") }
    }

    func run() throws {
        if let out { try OutputCheck.checkWritable(out) }
        selectOpenBLASCore()
        ssm_retain_freed_memory()
        let stream = RandomStream(seed: 0)
        // CP and Approx BP need a model with layer structure; `bench` times them on DKEF.
        let estimators = Estimator.allCases.filter { !$0.needsLayeredModel }
        var lines = [
            "# bench-core objectives: softplus MLP energy D→30→30→1, batch \(batch), median of \(repeats)",
            "",
            "Machine: \(cpuModel()), \(ProcessInfo.processInfo.activeProcessorCount) cores, OpenBLAS threads \(openBLASThreadCount), kernels \(openBLASCore).",
            "Each cell: draw noise, objective with createGraph, gradient with respect to all parameters.",
            "",
            "| D | " + estimators.map(\.rawValue).joined(separator: " | ") + " |",
            "|---|" + estimators.map { _ in "---|" }.joined(),
        ]
        for d in parseDims(dims)! {
            let model = MLP(inputs: d, using: stream)
            let x = stream.normal(shape: [batch, d])
            var cells: [String] = []
            for estimator in estimators {
                let objective = try estimator.objective(ObjectiveSettings(sigma: sigma))
                func step() throws {
                    let value = try objective.evaluate(model, at: x, using: stream).value
                    _ = gradients(of: value, with: model.parameters)
                }
                try step()
                var samples: [Double] = []
                for _ in 0..<repeats {
                    let start = DispatchTime.now().uptimeNanoseconds
                    try step()
                    samples.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                }
                cells.append(String(format: "%.5f s", median(samples)))
                FileHandle.standardError.write("D=\(d) \(estimator.rawValue): \(cells.last!)\n".data(using: .utf8)!)
            }
            lines.append("| \(d) | " + cells.joined(separator: " | ") + " |")
        }
        let text = lines.joined(separator: "\n") + "\n"
        print(text, terminator: "")
        if let out { try text.write(toFile: out, atomically: true, encoding: .utf8) }
    }
}

func parseDims(_ text: String) -> [Int]? {
    let parts = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !parts.isEmpty, !parts.contains(nil), parts.allSatisfy({ $0! > 0 }) else { return nil }
    return parts.map { $0! }
}

func time(_ body: () -> Void) -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}




import ArgumentParser
import Autodiff
import CRuntime
import DKEFModel
import ExperimentCommands
import GridExecution
import Foundation
import GSLNumerics
import ResultsStore
import Sampling
import Training

/// Draws samples from a saved DKEF (a train-dkef file, or a cell of a grid's results file).
@main
struct Sample: ParsableCommand {
    static func main() { mainWithExitCodes() }

    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Draw MALA or unadjusted Langevin samples from a saved, finalised DKEF checkpoint into an HDF5 file.",
        discussion: """
        The checkpoint is /checkpoint of a train-dkef file, or /cells/<--cell>/checkpoint of a \
        figure1, figure3, figure4 or table1 results file (`inspect show` lists the cells). The \
        chains start from the model's base density q₀ = N(0, σ₀² I) and keep the states after \
        --burn-in, every --thinning steps. Everything is checked before sampling starts; an \
        existing --out is only replaced with --fresh (the old one is kept as <out>.<time>.bak). \
        Exit status: 0 on success, 64 for a usage error (nothing written), 1 for a failure during \
        the run (e.g. a chain became NaN: nothing written).
        """)

    @Option(help: "HDF5 file holding the checkpoint.")
    var checkpoint: String

    @Option(help: "The cell of a grid results file whose checkpoint to sample (not needed for a train-dkef file).")
    var cell: String?

    @Option(help: "Sampler: mala (Metropolis-adjusted, exact for the model) or langevin (unadjusted, biased by O(step size)).")
    var sampler: String = "mala"

    @Option(help: "Step size τ.")
    var stepSize: Double = 0.05

    @Option(help: "Steps per chain.")
    var steps: Int = 1000

    @Option(help: "Steps discarded before the first kept state.")
    var burnIn: Int = 500

    @Option(help: "Keep every n-th state after the burn-in.")
    var thinning: Int = 100

    @Option(help: "Chains, run together.")
    var chains: Int = 500

    @Option(help: "Seed of the starting points and of every draw.")
    var seed: UInt64 = 0

    @OptionGroup var output: SingleRunOutput

    var settings: SamplerSettings { SamplerSettings(stepSize: stepSize, steps: steps, burnIn: burnIn, thinning: thinning, chains: chains) }

    func validate() throws {
        guard ["mala", "langevin"].contains(sampler) else { throw ValidationError("--sampler: unknown sampler '\(sampler)'; choose mala or langevin") }
        do { try settings.validate() } catch let SamplingError.invalidSetting(name, reason) {
            throw ValidationError("--\(name.replacingOccurrences(of: "_", with: "-")) \(reason)")
        }
        guard FileManager.default.fileExists(atPath: checkpoint) else { throw ValidationError("--checkpoint: no such file \(checkpoint)") }
    }

    /// The finalised model and α from the file, or a usage error naming what is missing.
    func load() throws -> (model: DKEF, alpha: Tensor, source: String) {
        do {
            return try ResultsFile.read(at: checkpoint) { root in
                let path: String, group: ResultsGroup
                if let cell {
                    guard root.contains("cells"), try root.group("cells").contains(cell) else {
                        let cells = root.contains("cells") ? (try root.group("cells").childNames()).prefix(5).joined(separator: ", ") : "none"
                        throw ValidationError("--cell: \(checkpoint) has no cell '\(cell)' (cells: \(cells)…; `inspect show \(checkpoint)` lists them)")
                    }
                    path = "/cells/\(cell)/checkpoint"
                    group = try root.group("cells").group(cell).group("checkpoint")
                } else {
                    guard root.contains("checkpoint") else {
                        throw ValidationError("--checkpoint: \(checkpoint) has no /checkpoint; for a grid's results file name the cell with --cell")
                    }
                    path = "/checkpoint"
                    group = try root.group("checkpoint")
                }
                let contents = try DKEFCheckpoint.read(from: group)
                guard let alpha = contents.alpha else { throw ValidationError("\(checkpoint)\(path) holds no α: the model was not finalised") }
                return (contents.model, alpha, path)
            }
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError("--checkpoint: cannot read a DKEF checkpoint from \(checkpoint) (\(error))")
        }
    }

    func run() throws {
        let (model, alpha, source) = try load()
        try output.check()
        selectOpenBLASCore()
        // One BLAS thread unless OPENBLAS_NUM_THREADS says otherwise: the chains' matrices
        // ([chains, M] kernels) are small, and a second thread spins against anything else
        // running (measured under perf: 35% of the time in sched_yield next to a 2-process grid).
        if ProcessInfo.processInfo.environment["OPENBLAS_NUM_THREADS"] == nil { setOpenBLASThreadCount(1) }
        ssm_retain_freed_memory()
        let provenance = Provenance.current()
        let stream = RandomStream(seed: seed)
        let start = try IsotropicNormal(dimension: model.configuration.dimension, sigma: model.configuration.baseSigma).sample(chains, using: stream)
        let chosen: any Sampler = sampler == "mala" ? try MetropolisAdjustedLangevin(settings) : try UnadjustedLangevin(settings)
        let began = Date()
        let result = try chosen.run(model.density(alpha: alpha), from: start, using: stream)
        let seconds = Date().timeIntervalSince(began)
        try output.write { root in
            try root.setAttribute("experiment", .string("sample"))
            try provenance.write(to: root)
            try root.setAttribute("checkpoint_file", .string(checkpoint))
            try root.setAttribute("checkpoint_group", .string(source))
            try root.setAttribute("sampler", .string(sampler))
            try root.setAttribute("step_size", .double(stepSize))
            try root.setAttribute("steps", .int(steps))
            try root.setAttribute("burn_in", .int(burnIn))
            try root.setAttribute("thinning", .int(thinning))
            try root.setAttribute("chains", .int(chains))
            try root.setAttribute("seed", .int(Int(seed)))
            try root.setAttribute("seconds", .double(seconds))
            if let rate = result.acceptanceRate { try root.setAttribute("acceptance_rate", .double(rate)) }
            try root.write("samples", doubles: result.samples.scalars, shape: result.samples.shape)
        }
        print("\(sampler): \(result.samples.shape[0]) samples of D = \(model.configuration.dimension) from \(checkpoint)\(source) into \(output.out)"
              + (result.acceptanceRate.map { String(format: "; acceptance %.3f", $0) } ?? "") + String(format: "; %.1f s", seconds))
    }
}

import GridExecution
import ExperimentGrid
import Autodiff
import DKEFModel
import Foundation
import GSLNumerics
import ResultsStore
import Sampling
import Training

/// figure 4: the full protocol per cell (as figure 1), then MALA and unadjusted Langevin from the
/// trained model, and how far their samples are from the target.
///
/// Both samplers start from the same `chains` draws of the model's base density q₀ = N(0, σ₀² I)
/// (which knows nothing of the target) and run with the config's `sampling:` settings; their draws
/// come from a stream of their own per seed (`samplingStream`). Per sampler the cell stores the
/// kept states, KSD² against the target's exact score and MMD² against as many exact target draws;
/// `exact_ksd` and `exact_mmd` are the same statistics for exact draws (against a second exact set
/// for MMD²): the floor a perfect sampler of a perfect model would show at this sample size. At
/// D = 2 the cell also stores log p̃ of the model and log p of the target on a square grid, for the
/// picture.
public enum SamplingExperiment {
    /// Points per axis of the D = 2 density grids.
    public static let gridPoints = 121

    public static let units: [String: String] = [
        "ksd": "1/x^2 (KSD², U-statistic, IMQ kernel (1 + ‖x − y‖²)^(−1/2))",
        "mmd": "dimensionless (unbiased MMD², Gaussian kernel, median-heuristic bandwidth)",
        "acceptance": "fraction of proposals accepted",
    ]

    /// The samplers' stream for a seed, apart from the protocol's (seed s) and the targets' streams.
    public static func samplingStream(seed: Int) -> RandomStream { RandomStream(seed: 0x7361_6D70_6C65_0000 &+ UInt64(seed)) }

    public static func compute(_ cell: Cell, config: ExperimentConfig) throws -> (ResultsGroup) throws -> Void {
        guard let settings = config.samplerSettings else {
            throw ConfigError.invalid(file: "(config)", key: "sampling", reason: "figure 4 samples trained models and needs a sampling: block")
        }
        let result = try ProtocolExperiment.train(cell, config: config)
        let d = cell.dimension
        let target = try config.targetSettings(for: cell).distribution(dimension: d)
        let density = result.model.density(alpha: result.alpha)
        let stream = samplingStream(seed: cell.seed)
        let start = try IsotropicNormal(dimension: d, sigma: result.model.configuration.baseSigma).sample(settings.chains, using: stream)
        let began = Date()
        let mala = try MetropolisAdjustedLangevin(settings).run(density, from: start, using: stream)
        let malaSeconds = Date().timeIntervalSince(began)
        let langevin = try UnadjustedLangevin(settings).run(density, from: start, using: stream)
        let langevinSeconds = Date().timeIntervalSince(began) - malaSeconds
        let n = mala.samples.shape[0]
        let exact = target.sample(n, using: stream), exactAgain = target.sample(n, using: stream)
        var metrics: [String: (Double, String)] = [
            "mala_acceptance": (mala.acceptanceRate ?? .nan, units["acceptance"]!),
            "exact_ksd": (kernelSteinDiscrepancy(samples: exact, score: try target.score(exact)), units["ksd"]!),
            "exact_mmd": (maximumMeanDiscrepancy(exact, exactAgain).mmdSquared, units["mmd"]!),
        ]
        for (name, run) in [("mala", mala), ("langevin", langevin)] {
            metrics["\(name)_ksd"] = (kernelSteinDiscrepancy(samples: run.samples, score: try target.score(run.samples)), units["ksd"]!)
            metrics["\(name)_mmd"] = (maximumMeanDiscrepancy(run.samples, exact).mmdSquared, units["mmd"]!)
        }
        var grids: (axis: [Double], model: Tensor, target: Tensor)? = nil
        if d == 2 {
            // A square around the exact draws, one unit beyond the farthest coordinate.
            let half = (exact.scalars.map(abs).max() ?? 1) + 1
            let axis = (0..<gridPoints).map { -half + 2 * half * Double($0) / Double(gridPoints - 1) }
            let points = Tensor(shape: [gridPoints * gridPoints, 2], scalars: axis.flatMap { y in axis.flatMap { x in [x, y] } })
            grids = (axis, withoutGradients { density.logDensity(points) }.reshaped([gridPoints, gridPoints]),
                     try target.logDensity(points).reshaped([gridPoints, gridPoints]))
        }
        let peak = peakResidentMiB()
        return { group in
            try ProtocolExperiment.write(result, peakResidentMiB: peak, to: group)
            for (name, (value, unit)) in metrics {
                try group.write(name, doubles: [value], shape: [])
                try group.setAttribute("units", .string(unit), on: name)
            }
            try group.write("mala_samples", doubles: mala.samples.scalars, shape: mala.samples.shape)
            try group.write("langevin_samples", doubles: langevin.samples.scalars, shape: langevin.samples.shape)
            try group.write("target_samples", doubles: exact.scalars, shape: exact.shape)
            try group.setAttribute("mala_seconds", .double(malaSeconds))
            try group.setAttribute("langevin_seconds", .double(langevinSeconds))
            try group.setAttribute("sampler_step_size", .double(settings.stepSize))
            try group.setAttribute("sampler_steps", .int(settings.steps))
            if let grids {
                try group.write("grid_axis", doubles: grids.axis)
                try group.setAttribute("note", .string("rows: y = grid_axis[i], columns: x = grid_axis[j]"), on: "grid_axis")
                try group.write("model_log_density_grid", doubles: grids.model.scalars, shape: grids.model.shape)
                try group.setAttribute("units", .string("nats, unnormalised (log p̃; subtract log_z for log p)"), on: "model_log_density_grid")
                try group.write("target_log_density_grid", doubles: grids.target.scalars, shape: grids.target.shape)
                try group.setAttribute("units", .string("nats"), on: "target_log_density_grid")
            }
        }
    }
}

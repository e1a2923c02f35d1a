import GSLNumerics
import NeuralModels
import Objectives
import ScoreEstimation

/// What a cell runs: a score-matching objective (on DKEF or a network), or a nonparametric kernel
/// score estimator with its settings variant (figure 6).
public enum CellMethod: Hashable, Sendable {
    case objective(Estimator)
    case kernel(KernelMethod, KernelVariant)

    /// The `method` attribute of the cell's group: the estimator's or the kernel method's name.
    public var name: String {
        switch self {
        case .objective(let e): e.rawValue
        case .kernel(let k, _): k.rawValue
        }
    }
}

/// One independent unit of work: a method at a dimension (and DSM σ, CP noise layout) with a seed,
/// on a target distribution.
public struct Cell: Hashable, Sendable, CustomStringConvertible {
    /// What the cell runs.
    public var estimator: CellMethod
    /// The score-matching objective of every cell but a kernel estimator's (which has none: asking
    /// is a programming error, so it stops).
    public var method: Estimator {
        guard case .objective(let e) = estimator else { preconditionFailure("\(name) runs a kernel score estimator, not a score-matching objective") }
        return e
    }
    public var dimension: Int
    /// DSM's σ; nil for the other methods.
    public var sigma: Double?
    public var seed: Int
    /// CP's noise layout; nil for the other methods.
    public var cpNoise: CurvaturePropagationNoise?
    /// The distribution of the data (the authors' N(0, I) unless a config's `targets` says otherwise).
    public var target: Target
    /// A deep-score-model cell (figure 5): its 2-D toy dataset and model kind; nil for DKEF cells.
    public var dataset: ToyDataset? = nil
    public var modelKind: ModelKind? = nil
    /// A score-estimation cell (figure 6): the number M of samples the estimator is fitted to.
    public var sampleCount: Int? = nil

    public init(method: Estimator, dimension: Int, sigma: Double?, seed: Int, cpNoise: CurvaturePropagationNoise? = nil,
                target: Target = .standardNormal, dataset: ToyDataset? = nil, modelKind: ModelKind? = nil, sampleCount: Int? = nil) {
        self.init(estimator: .objective(method), dimension: dimension, sigma: sigma, seed: seed, cpNoise: cpNoise, target: target,
                  dataset: dataset, modelKind: modelKind, sampleCount: sampleCount)
    }

    public init(estimator: CellMethod, dimension: Int, sigma: Double? = nil, seed: Int, cpNoise: CurvaturePropagationNoise? = nil,
                target: Target = .standardNormal, dataset: ToyDataset? = nil, modelKind: ModelKind? = nil, sampleCount: Int? = nil) {
        self.target = target
        self.dataset = dataset
        self.modelKind = modelKind
        self.sampleCount = sampleCount
        self.estimator = estimator
        self.dimension = dimension
        self.sigma = sigma
        self.seed = seed
        self.cpNoise = cpNoise
    }

    /// The HDF5 group name, e.g. `ssm_vr_d10_seed0`, `ssm_vr_energy_8gaussians_seed0` (a network cell), `dsm_sigma0.1_d10_seed0`,
    /// `cp_per_pair_d10_seed0` (CP's default per-point layout keeps the name `cp_d10_seed0`), or
    /// `ssm_student_t_d10_seed0` (the standard normal target keeps the names it had); a
    /// score-estimation cell adds its sample count and, for a kernel estimator, its variant:
    /// `ssm_vr_gaussian_mixture_d20_m1000_seed0`, `stein_tuned_d20_m100_seed1`.
    public var name: String {
        if let dataset, let modelKind { return "\(method.rawValue)_\(modelKind.rawValue)_\(dataset.rawValue)_seed\(seed)" }
        let s = sigma.map { "_sigma\($0)" } ?? ""
        let layout = cpNoise.flatMap { $0 == .perPoint ? nil : "_\($0.rawValue)" } ?? ""
        let data = target == .standardNormal ? "" : "_\(target.rawValue)"
        let variant: String
        if case .kernel(_, let v) = estimator { variant = "_\(v.rawValue)" } else { variant = "" }
        let samples = sampleCount.map { "_m\($0)" } ?? ""
        return "\(estimator.name)\(variant)\(layout)\(s)\(data)_d\(dimension)\(samples)_seed\(seed)"
    }

    /// The legend label: the method, with σ for DSM and the noise layout for CP's per-pair cells.
    public var series: String {
        if case .kernel(let k, let v) = estimator { return "\(k.rawValue) (\(v.rawValue))" }
        if let modelKind { return "\(method.rawValue) (\(modelKind.rawValue))" }
        if let sigma { return "\(method.rawValue) (σ=\(sigma))" }
        if let cpNoise, cpNoise != .perPoint { return "\(method.rawValue) (\(cpNoise.rawValue) noise)" }
        return method.rawValue
    }

    public var description: String { name }
}

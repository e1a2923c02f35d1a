import GSLNumerics
import NeuralModels
import Objectives

/// One independent unit of work: a method at a dimension (and DSM σ, CP noise layout) with a seed,
/// on a target distribution.
public struct Cell: Hashable, Sendable, CustomStringConvertible {
    public var method: Estimator
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

    public init(method: Estimator, dimension: Int, sigma: Double?, seed: Int, cpNoise: CurvaturePropagationNoise? = nil,
                target: Target = .standardNormal, dataset: ToyDataset? = nil, modelKind: ModelKind? = nil) {
        self.target = target
        self.dataset = dataset
        self.modelKind = modelKind
        self.method = method
        self.dimension = dimension
        self.sigma = sigma
        self.seed = seed
        self.cpNoise = cpNoise
    }

    /// The HDF5 group name, e.g. `ssm_vr_d10_seed0`, `ssm_vr_energy_8gaussians_seed0` (a network cell), `dsm_sigma0.1_d10_seed0`,
    /// `cp_per_pair_d10_seed0` (CP's default per-point layout keeps the name `cp_d10_seed0`), or
    /// `ssm_student_t_d10_seed0` (the standard normal target keeps the names it had).
    public var name: String {
        if let dataset, let modelKind { return "\(method.rawValue)_\(modelKind.rawValue)_\(dataset.rawValue)_seed\(seed)" }
        let s = sigma.map { "_sigma\($0)" } ?? ""
        let layout = cpNoise.flatMap { $0 == .perPoint ? nil : "_\($0.rawValue)" } ?? ""
        let data = target == .standardNormal ? "" : "_\(target.rawValue)"
        return "\(method.rawValue)\(layout)\(s)\(data)_d\(dimension)_seed\(seed)"
    }

    /// The legend label: the method, with σ for DSM and the noise layout for CP's per-pair cells.
    public var series: String {
        if let modelKind { return "\(method.rawValue) (\(modelKind.rawValue))" }
        if let sigma { return "\(method.rawValue) (σ=\(sigma))" }
        if let cpNoise, cpNoise != .perPoint { return "\(method.rawValue) (\(cpNoise.rawValue) noise)" }
        return method.rawValue
    }

    public var description: String { name }
}

import Objectives

/// One independent unit of work: a method at a dimension (and DSM σ) with a seed.
public struct Cell: Hashable, Sendable, CustomStringConvertible {
    public var method: Estimator
    public var dimension: Int
    /// DSM's σ; nil for the other methods.
    public var sigma: Double?
    public var seed: Int

    public init(method: Estimator, dimension: Int, sigma: Double?, seed: Int) {
        self.method = method
        self.dimension = dimension
        self.sigma = sigma
        self.seed = seed
    }

    /// The HDF5 group name, e.g. `ssm_vr_d10_seed0` or `dsm_sigma0.1_d10_seed0`.
    public var name: String {
        let s = sigma.map { "_sigma\($0)" } ?? ""
        return "\(method.rawValue)\(s)_d\(dimension)_seed\(seed)"
    }

    /// The legend label: the method, with σ for DSM.
    public var series: String { sigma.map { "\(method.rawValue) (σ=\($0))" } ?? method.rawValue }

    public var description: String { name }
}

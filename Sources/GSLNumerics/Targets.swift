import Autodiff
import CGSL
import Foundation

/// The target distributions of the experiments (issue 12): one name, one type behind
/// `ReferenceDistribution`, exact log density and score, seeded construction and sampling.
///
/// | name | type | parameters |
/// |---|---|---|
/// | `standard_normal` | `IsotropicNormal` (σ = 1) | – |
/// | `correlated_normal` | `CorrelatedNormal` | condition number κ ≥ 1 |
/// | `gaussian_mixture` | `GaussianMixture` (`separated`) | components K ≥ 1, separation ≥ 0, scale > 0 |
/// | `student_t` | `StudentT` | degrees of freedom ν > 0 |
public enum Target: String, CaseIterable, Sendable, Codable {
    case standardNormal = "standard_normal"
    case correlatedNormal = "correlated_normal"
    case gaussianMixture = "gaussian_mixture"
    case studentT = "student_t"

    /// The `TargetParameters` it reads, by their config keys.
    public var parameterKeys: [String] {
        switch self {
        case .standardNormal: []
        case .correlatedNormal: ["condition_number", "seed"]
        case .gaussianMixture: ["components", "separation", "scale", "seed"]
        case .studentT: ["degrees_of_freedom"]
        }
    }

    /// Parses a name, or throws naming the valid ones.
    public init(named name: String) throws {
        guard let target = Target(rawValue: name) else {
            throw GSLError.invalidArgument("unknown target '\(name)'; choose one of \(Target.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = target
    }
}

/// The targets' parameters, each read only by the target that has it, and the seed of their random
/// structure. The defaults are issue 12's; configs' hashes depend on them (a test pins them).
public struct TargetParameters: Sendable, Equatable, Codable {
    /// `correlated_normal`: κ, the ratio of Σ's largest to smallest eigenvalue.
    public var conditionNumber = 100.0
    /// `gaussian_mixture`: K, the distance of each mean from 0, and the components' standard deviation.
    public var components = 4
    public var separation = 3.0
    public var scale = 1.0
    /// `student_t`: ν.
    public var degreesOfFreedom = 5.0
    /// Seeds the target's random structure (the rotation, the means): the same distribution for
    /// every method and seed of a grid at one D, drawn from a stream of its own.
    public var seed = 0

    public init() {}

    /// The config keys of the parameters that differ from the defaults.
    public var changedKeys: [String] {
        let d = TargetParameters()
        return [(conditionNumber != d.conditionNumber, "condition_number"), (components != d.components, "components"),
                (separation != d.separation, "separation"), (scale != d.scale, "scale"),
                (degreesOfFreedom != d.degreesOfFreedom, "degrees_of_freedom"), (seed != d.seed, "seed")]
            .filter(\.0).map(\.1)
    }

    /// The stream the structure is drawn from: seeded apart from the cells' streams (seeds 0, 1, …),
    /// so a target's structure is independent of any cell's data.
    public var structureStream: RandomStream { RandomStream(seed: 0x7461_7267_6574_0000 &+ UInt64(max(seed, 0))) }
}

/// A target with its parameters.
public struct TargetSettings: Sendable, Equatable {
    public var target: Target
    public var parameters: TargetParameters

    public init(_ target: Target = .standardNormal, parameters: TargetParameters = TargetParameters()) {
        self.target = target
        self.parameters = parameters
    }

    /// The distribution in D dimensions; random structure (rotation, means) from `stream`.
    /// - Throws: `GSLError.invalidArgument` naming the parameter that no distribution can have.
    public func distribution(dimension: Int, using stream: RandomStream) throws -> any ReferenceDistribution {
        guard dimension >= 1 else { throw GSLError.invalidArgument("\(target.rawValue): dimension must be ≥ 1, got \(dimension)") }
        let p = parameters
        switch target {
        case .standardNormal: return try IsotropicNormal(dimension: dimension, sigma: 1)
        case .correlatedNormal: return try CorrelatedNormal(dimension: dimension, conditionNumber: p.conditionNumber, using: stream)
        case .gaussianMixture:
            return try GaussianMixture.separated(dimension: dimension, components: p.components, separation: p.separation, scale: p.scale, using: stream)
        case .studentT: return try StudentT(dimension: dimension, degreesOfFreedom: p.degreesOfFreedom)
        }
    }

    /// The distribution in D dimensions, its structure from `parameters.structureStream`.
    /// - Throws: as the other form, and for a negative seed.
    public func distribution(dimension: Int) throws -> any ReferenceDistribution {
        guard parameters.seed >= 0 else { throw GSLError.invalidArgument("\(target.rawValue): seed must be ≥ 0, got \(parameters.seed)") }
        return try distribution(dimension: dimension, using: parameters.structureStream)
    }

    /// One line for legends and logs, e.g. "student_t: ν = 5".
    public var description: String {
        let p = parameters
        return switch target {
        case .standardNormal: "standard_normal: N(0, I)"
        case .correlatedNormal: "correlated_normal: N(0, QΛQᵀ), κ = \(p.conditionNumber)"
        case .gaussianMixture: "gaussian_mixture: \(p.components) components at distance \(p.separation), scale \(p.scale)"
        case .studentT: "student_t: ν = \(p.degreesOfFreedom)"
        }
    }
}

/// N(0, Σ) with Σ = Q diag(λ) Qᵀ: Q a Haar-random rotation (GSL normals, Householder QR, columns
/// signed so that R's diagonal is positive), λ log-spaced from 1 to κ (λᵢ = κ^{i/(D−1)}; λ = 1 at
/// D = 1). log p, ∇ log p and draws through `MultivariateNormal`.
public final class CorrelatedNormal: ReferenceDistribution {
    /// Q, `[D, D]`, orthogonal.
    public let rotation: Tensor
    /// λ, ascending.
    public let eigenvalues: [Double]
    public let normal: MultivariateNormal
    public var dimension: Int { normal.dimension }

    /// - Throws: `GSLError.invalidArgument` for D < 1 or κ not finite and ≥ 1.
    public init(dimension d: Int, conditionNumber kappa: Double, using stream: RandomStream) throws {
        ensureGSLErrorsReturn()
        guard d >= 1 else { throw GSLError.invalidArgument("correlated_normal: dimension must be ≥ 1, got \(d)") }
        guard kappa >= 1, kappa.isFinite else {
            throw GSLError.invalidArgument("correlated_normal: condition_number must be finite and ≥ 1, got \(kappa)")
        }
        let a = gsl_matrix_alloc(d, d)!, q = gsl_matrix_alloc(d, d)!, r = gsl_matrix_alloc(d, d)!, tau = gsl_vector_alloc(d)!
        defer { gsl_matrix_free(a); gsl_matrix_free(q); gsl_matrix_free(r); gsl_vector_free(tau) }
        for i in 0..<d { for j in 0..<d { gsl_matrix_set(a, i, j, stream.normal()) } }
        try check(gsl_linalg_QR_decomp(a, tau), "gsl_linalg_QR_decomp")
        try check(gsl_linalg_QR_unpack(a, tau, q, r), "gsl_linalg_QR_unpack")
        var rot = [Double](repeating: 0, count: d * d)
        for j in 0..<d {
            let sign: Double = gsl_matrix_get(r, j, j) < 0 ? -1 : 1
            for i in 0..<d { rot[i * d + j] = sign * gsl_matrix_get(q, i, j) }
        }
        let lambda = (0..<d).map { d == 1 ? 1 : Foundation.pow(kappa, Double($0) / Double(d - 1)) }
        // Σ_ij = Σ_k Q_ik λ_k Q_jk, formed for i ≤ j and mirrored (exactly symmetric).
        var sigma = [Double](repeating: 0, count: d * d)
        for i in 0..<d {
            for j in i..<d {
                var s = 0.0
                for k in 0..<d { s += rot[i * d + k] * lambda[k] * rot[j * d + k] }
                sigma[i * d + j] = s
                sigma[j * d + i] = s
            }
        }
        rotation = Tensor(shape: [d, d], scalars: rot)
        eigenvalues = lambda
        normal = try MultivariateNormal(mean: [Double](repeating: 0, count: d), covariance: Tensor(shape: [d, d], scalars: sigma))
    }

    public func logDensity(_ x: Tensor) throws -> Tensor { try normal.logDensity(x) }
    public func score(_ x: Tensor) throws -> Tensor { try normal.score(x) }
    public func sample(_ count: Int, using stream: RandomStream) -> Tensor { normal.sample(count, using: stream) }
    /// N(0, c² Σ).
    public func widened(by factor: Double) throws -> any ReferenceDistribution { try normal.widened(by: factor) }
}

/// The multivariate Student t with ν degrees of freedom, location 0 and scale s I (s = 1 for the
/// target):
///
///     log p(x) = log Γ((ν+D)/2) − log Γ(ν/2) − (D/2) log(νπ) − D log s − ((ν+D)/2) log(1 + ‖x‖²/(ν s²)),
///     ∇ₓ log p(x) = −(ν + D) x / (ν s² + ‖x‖²).
///
/// Heavy tails: moments of order ≥ ν do not exist (covariance s² ν/(ν−2) I for ν > 2). Draws
/// x = s z / √(u/ν) with z ~ N(0, I_D) (`gsl_ran_ugaussian`) and u ~ χ²_ν (`gsl_ran_chisq`), per row.
public final class StudentT: ReferenceDistribution {
    public let dimension: Int
    public let degreesOfFreedom: Double
    public let scale: Double
    private let logNormaliser: Double

    /// - Throws: `GSLError.invalidArgument` for D < 1, ν not finite and > 0, or s not finite and > 0.
    public init(dimension: Int, degreesOfFreedom nu: Double, scale: Double = 1) throws {
        ensureGSLErrorsReturn()
        guard dimension >= 1 else { throw GSLError.invalidArgument("student_t: dimension must be ≥ 1, got \(dimension)") }
        guard nu > 0, nu.isFinite else { throw GSLError.invalidArgument("student_t: degrees_of_freedom must be finite and > 0, got \(nu)") }
        guard scale > 0, scale.isFinite else { throw GSLError.invalidArgument("student_t: scale must be finite and > 0, got \(scale)") }
        self.dimension = dimension
        self.degreesOfFreedom = nu
        self.scale = scale
        let d = Double(dimension)
        logNormaliser = gsl_sf_lngamma((nu + d) / 2) - gsl_sf_lngamma(nu / 2) - d / 2 * Foundation.log(nu * Double.pi) - d * Foundation.log(scale)
    }

    private func squaredNorms(_ x: Tensor) -> [Double] {
        let d = dimension
        return (0..<x.shape[0]).map { i in (0..<d).reduce(0.0) { $0 + x.scalars[i * d + $1] * x.scalars[i * d + $1] } }
    }

    public func logDensity(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "logDensity")
        let (nu, d, s2) = (degreesOfFreedom, Double(dimension), scale * scale)
        return Tensor(squaredNorms(x).map { logNormaliser - (nu + d) / 2 * Foundation.log1p($0 / (nu * s2)) })
    }

    public func score(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "score")
        let (nu, d, s2) = (degreesOfFreedom, dimension, scale * scale)
        let factors = squaredNorms(x).map { -(nu + Double(d)) / (nu * s2 + $0) }
        return Tensor(shape: x.shape, scalars: x.scalars.indices.map { x.scalars[$0] * factors[$0 / d] })
    }

    public func sample(_ count: Int, using stream: RandomStream) -> Tensor {
        let d = dimension
        var out = [Double](repeating: 0, count: count * d)
        for i in 0..<count {
            for j in 0..<d { out[i * d + j] = gsl_ran_ugaussian(stream.pointer) }
            let factor = scale / (gsl_ran_chisq(stream.pointer, degreesOfFreedom) / degreesOfFreedom).squareRoot()
            for j in 0..<d { out[i * d + j] *= factor }
        }
        return Tensor(shape: [count, d], scalars: out)
    }

    /// The t with scale c s.
    public func widened(by factor: Double) throws -> any ReferenceDistribution {
        try checkWidening(factor)
        return try StudentT(dimension: dimension, degreesOfFreedom: degreesOfFreedom, scale: factor * scale)
    }
}

extension GaussianMixture {
    /// K equally weighted components N(μₖ, s² I) with μₖ = separation · zₖ/‖zₖ‖, zₖ ~ N(0, I_D)
    /// from `stream` (random directions, every mean at distance `separation` from 0).
    /// - Throws: `GSLError.invalidArgument` naming the parameter: D < 1, K < 1, separation < 0 or
    ///   not finite, scale not finite and > 0.
    public static func separated(dimension d: Int, components k: Int, separation: Double, scale: Double,
                                 using stream: RandomStream) throws -> GaussianMixture {
        guard d >= 1 else { throw GSLError.invalidArgument("gaussian_mixture: dimension must be ≥ 1, got \(d)") }
        guard k >= 1 else { throw GSLError.invalidArgument("gaussian_mixture: components must be ≥ 1, got \(k)") }
        guard separation >= 0, separation.isFinite else {
            throw GSLError.invalidArgument("gaussian_mixture: separation must be finite and ≥ 0, got \(separation)")
        }
        guard scale > 0, scale.isFinite else { throw GSLError.invalidArgument("gaussian_mixture: scale must be finite and > 0, got \(scale)") }
        var covariance = [Double](repeating: 0, count: d * d)
        for i in 0..<d { covariance[i * d + i] = scale * scale }
        let components = try (0..<k).map { _ -> MultivariateNormal in
            let z = (0..<d).map { _ in stream.normal() }
            let norm = z.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return try MultivariateNormal(mean: z.map { separation * $0 / norm }, covariance: Tensor(shape: [d, d], scalars: covariance))
        }
        return try GaussianMixture(weights: [Double](repeating: 1, count: k), components: components)
    }
}

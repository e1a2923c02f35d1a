import Autodiff
import CGSL
import Foundation

/// The 2-D toy datasets of toy_gradlogp (its `data.py`, after normalizing_flows) and the
/// unequal-weight mixture of NCSN's annealing experiment, sampled with GSL's generator, each with
/// the exact reference it admits.
///
/// | name | law | reference |
/// |---|---|---|
/// | `8gaussians` | ½√2 (½z + 4c), c one of 8 unit vectors at multiples of 45°: a mixture of N(2√2 c, (√2/4)² I) | exact (`GaussianMixture`) |
/// | `rings` | a ring of radius 3, 2.25, 1.5 or 0.75 with probability ¼ each, a uniform angle, plus N(0, 0.08² I) | exact (`BlurredRings`, through I₀) |
/// | `2spirals` | two arms ±(−n cos n + u₁/2, n sin n + u₂/2)/3, n = 3π√u, plus N(0, 0.1² I) | a 1-D integral by quadrature (`TwoSpirals`, to 1e-9) |
/// | `checkerboard` | uniform on 8 of the 16 squares of side 2 in [−4, 4]² | none (piecewise constant: sample metrics only) |
/// | `ncsn_mixture` | 0.8 N((5, 5), I) + 0.2 N((−5, −5), I) | exact (`GaussianMixture`) |
///
/// Differences from toy_gradlogp's sampler, none of which changes the law beyond the points
/// noted: rings take a continuous uniform angle where the repository takes a grid of n/4 angles
/// per ring and resamples the 4·(n/4) points with replacement (for its n = 10⁶ a grid step of
/// 2.5·10⁻⁵ rad, far below the blur of 0.08); 2spirals put every other point on the second arm
/// (the repository: the first half, then the second half; the training loop shuffles either way).
public enum ToyDataset: String, CaseIterable, Sendable, Codable {
    case eightGaussians = "8gaussians"
    case rings
    case twoSpirals = "2spirals"
    case checkerboard
    case ncsnMixture = "ncsn_mixture"

    /// Parses a name, or throws `GSLError.invalidArgument` listing the valid ones.
    public init(named name: String) throws {
        guard let dataset = Self(rawValue: name) else {
            throw GSLError.invalidArgument("unknown dataset '\(name)'; choose one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = dataset
    }

    /// The exact density and score, in closed form or (2spirals) by quadrature; nil for the
    /// checkerboard.
    public var reference: (any ReferenceDistribution)? {
        switch self {
        case .eightGaussians:
            let directions = (0..<8).map { Double($0) * Double.pi / 4 }
            let scale = 0.5 / 2.0.squareRoot()
            return try? GaussianMixture(weights: [Double](repeating: 1, count: 8), components: directions.map { angle in
                try MultivariateNormal(mean: [2 * 2.0.squareRoot() * cos(angle), 2 * 2.0.squareRoot() * sin(angle)],
                                       covariance: Tensor(rows: [[scale * scale, 0], [0, scale * scale]]))
            })
        case .rings: return BlurredRings.toy
        case .ncsnMixture:
            return try? GaussianMixture(weights: [0.8, 0.2], components: [
                MultivariateNormal(mean: [5, 5], covariance: Tensor(rows: [[1, 0], [0, 1]])),
                MultivariateNormal(mean: [-5, -5], covariance: Tensor(rows: [[1, 0], [0, 1]])),
            ])
        case .twoSpirals: return TwoSpirals.toy
        case .checkerboard: return nil
        }
    }

    /// The data's law blurred by N(0, σ²I), the density whose score DSM and DEEN at σ fit (in
    /// closed form for every dataset with a reference); nil for the checkerboard.
    public func blurred(by sigma: Double) throws -> (any ReferenceDistribution)? {
        guard let reference = reference as? any GaussianBlurrable else { return nil }
        return try reference.blurred(by: sigma)
    }

    /// Half the width of the square [−h, h]² the pictures and the Langevin starts cover:
    /// toy_gradlogp's 4, and 8 for NCSN's mixture (its modes at ±(5, 5); NCSN's runner starts
    /// its chains from U[−8, 8]²).
    public var pictureHalfWidth: Double { self == .ncsnMixture ? 8 : 4 }

    /// `count` independent draws, `[count, 2]`.
    public func sample(_ count: Int, using stream: RandomStream) -> Tensor {
        switch self {
        case .eightGaussians, .ncsnMixture, .rings, .twoSpirals: return reference!.sample(count, using: stream)
        case .checkerboard:
            var values: [Double] = []
            values.reserveCapacity(2 * count)
            for _ in 0..<count {
                let x1 = 4 * stream.uniform() - 2
                let band = stream.uniform() - 2 * Double(stream.integer(below: 2))
                let x2 = band + (floor(x1).truncatingRemainder(dividingBy: 2) + 2).truncatingRemainder(dividingBy: 2)
                values.append(2 * x1)
                values.append(2 * x2)
            }
            return Tensor(shape: [count, 2], scalars: values)
        }
    }
}

/// Circles of radii r_k, each chosen with probability w_k, a uniform angle, blurred by N(0, s² I)
/// in the plane. With ρ = ‖x‖ each ring's density is the circle's uniform law convolved with the
/// Gaussian:
///
///     p_k(x) = (1 / 2πs²) exp(−(ρ² + r_k²) / 2s²) I₀(r_k ρ / s²)
///            = (1 / 2πs²) exp(−(ρ − r_k)² / 2s²) I₀ₑ(r_k ρ / s²),   I₀ₑ(z) = e^{−z} I₀(z)
///
/// (GSL's scaled Bessel functions, which do not overflow), and ∇ₓ log p_k = x·c_k with
/// c_k = −1/s² + (r_k / s²ρ)·I₁(z)/I₀(z), z = r_kρ/s², which tends to −1/s² + r_k²/2s⁴ as ρ → 0.
public struct BlurredRings: ReferenceDistribution, Sendable {
    public let radii: [Double]
    public let weights: [Double]
    public let blur: Double
    public var dimension: Int { 2 }

    /// toy_gradlogp's rings: radii 3, 2.25, 1.5, 0.75, equal weights, blur 0.08.
    public static let toy = BlurredRings(radii: [3, 2.25, 1.5, 0.75], weights: [0.25, 0.25, 0.25, 0.25], blur: 0.08)

    public init(radii: [Double], weights: [Double], blur: Double) {
        precondition(radii.count == weights.count && !radii.isEmpty && blur > 0)
        let total = weights.reduce(0, +)
        self.radii = radii
        self.weights = weights.map { $0 / total }
        self.blur = blur
    }

    /// log w_k + log p_k(x) per row and ring.
    private func jointLogDensities(_ rho: Double) -> [Double] {
        let s2 = blur * blur
        let normaliser = Foundation.log(2 * Double.pi * s2)
        return zip(radii, weights).map { (r: Double, w: Double) -> Double in
            let distance = (rho - r) * (rho - r) / (2 * s2)
            let bessel = Foundation.log(gsl_sf_bessel_I0_scaled(r * rho / s2))
            return Foundation.log(w) - normaliser - distance + bessel
        }
    }

    private func norms(_ x: Tensor) -> [Double] {
        let v = x.scalars
        return (0..<x.shape[0]).map { (n: Int) -> Double in
            let a = v[2 * n], b = v[2 * n + 1]
            return (a * a + b * b).squareRoot()
        }
    }

    public func logDensity(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "logDensity")
        return Tensor(norms(x).map { rho in
            let joint = jointLogDensities(rho), top = joint.max()!
            return top + Foundation.log(joint.map { exp($0 - top) }.reduce(0, +))
        })
    }

    public func score(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "score")
        let s2 = blur * blur
        var out = [Double](repeating: 0, count: x.count)
        for (n, rho) in norms(x).enumerated() {
            let joint = jointLogDensities(rho), top = joint.max()!
            let responsibilities = joint.map { exp($0 - top) }
            let total = responsibilities.reduce(0, +)
            var c = 0.0
            for (k, r) in radii.enumerated() {
                let z = r * rho / s2
                let ratioOverRho = z < 1e-8 ? r / (2 * s2) : gsl_sf_bessel_I1_scaled(z) / gsl_sf_bessel_I0_scaled(z) / rho
                c += responsibilities[k] / total * (-1 / s2 + r / s2 * ratioOverRho)
            }
            out[2 * n] = c * x.scalars[2 * n]
            out[2 * n + 1] = c * x.scalars[2 * n + 1]
        }
        return Tensor(shape: x.shape, scalars: out)
    }

    public func sample(_ count: Int, using stream: RandomStream) -> Tensor {
        var values: [Double] = []
        values.reserveCapacity(2 * count)
        let cumulative = weights.indices.map { weights[0...$0].reduce(0, +) }
        for _ in 0..<count {
            let u = stream.uniform()
            let r = radii[cumulative.firstIndex { u < $0 } ?? radii.count - 1]
            let angle = 2 * Double.pi * stream.uniform()
            values.append(r * cos(angle) + blur * stream.normal())
            values.append(r * sin(angle) + blur * stream.normal())
        }
        return Tensor(shape: [count, 2], scalars: values)
    }

    /// The law of c·X: radii and blur c times larger.
    public func widened(by factor: Double) throws -> any ReferenceDistribution {
        try checkWidening(factor)
        return BlurredRings(radii: radii.map { $0 * factor }, weights: weights, blur: blur * factor)
    }
}

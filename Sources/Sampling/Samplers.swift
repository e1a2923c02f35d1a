import Autodiff
import Foundation
import GSLNumerics
import Objectives

/// The settings every sampler shares.
///
/// A run advances `chains` chains together for `steps` steps from given starting points, and keeps
/// the states after step `burnIn` (1-based steps burnIn + thinning, burnIn + 2·thinning, … up to
/// `steps`): ⌊(steps − burnIn)/thinning⌋ states per chain.
public struct SamplerSettings: Sendable, Equatable, Codable {
    /// τ > 0, the Langevin step.
    public var stepSize = 0.01
    public var steps = 1000
    public var burnIn = 500
    public var thinning = 500
    public var chains = 500

    public init(stepSize: Double = 0.01, steps: Int = 1000, burnIn: Int = 500, thinning: Int = 500, chains: Int = 500) {
        (self.stepSize, self.steps, self.burnIn, self.thinning, self.chains) = (stepSize, steps, burnIn, thinning, chains)
    }

    /// States kept per chain.
    public var keptPerChain: Int { (steps - burnIn) / thinning }

    /// Throws `SamplingError.invalidSetting` naming the setting.
    public func validate() throws {
        guard stepSize > 0, stepSize.isFinite else { throw SamplingError.invalidSetting("step_size", "must be finite and > 0, got \(stepSize)") }
        guard steps >= 1 else { throw SamplingError.invalidSetting("steps", "must be ≥ 1, got \(steps)") }
        guard burnIn >= 0, burnIn < steps else { throw SamplingError.invalidSetting("burn_in", "must be in 0..<steps (\(steps)), got \(burnIn)") }
        guard thinning >= 1, thinning <= steps - burnIn else {
            throw SamplingError.invalidSetting("thinning", "must be in 1...(steps − burn_in) = \(steps - burnIn), so that a state is kept, got \(thinning)")
        }
        guard chains >= 1 else { throw SamplingError.invalidSetting("chains", "must be ≥ 1, got \(chains)") }
    }
}

public enum SamplingError: Error, CustomStringConvertible, Equatable {
    case invalidSetting(String, String)
    /// A NaN or infinity in the chains' states or log densities, at a step.
    case nonFinite(sampler: String, step: Int)
    case shape(String)

    public var description: String {
        switch self {
        case let .invalidSetting(name, reason): "sampler setting '\(name)' \(reason)"
        case let .nonFinite(sampler, step):
            "\(sampler): a chain's state or log density became NaN or infinite at step \(step); lower the step size (nothing was kept)"
        case let .shape(message): message
        }
    }
}

/// The kept states and what the run measured.
public struct SampleRun: Sendable {
    /// `[kept per chain · chains, D]`, ordered by kept step, then chain.
    public var samples: Tensor
    /// MALA: the fraction of accepted proposals over all steps and chains; nil for Langevin.
    public var acceptanceRate: Double?
}

/// One Markov chain Monte Carlo method for a density known up to its normaliser.
public protocol Sampler: Sendable {
    /// The name in configs and files (`langevin`, `mala`).
    static var name: String { get }
    var settings: SamplerSettings { get }
    /// Runs `settings.chains` chains from the rows of `start` (`[chains, D]`).
    func run(_ density: any LogDensityFunction, from start: Tensor, using stream: RandomStream) throws -> SampleRun
}

/// log p̃ `[N]` and its score ∇ₓ log p̃ `[N, D]` at the rows of x: the closed form of an
/// `ExplicitScore` density, else one reverse pass.
public func logDensityAndScore(of density: any LogDensityFunction, at x: Tensor) -> (logDensity: Tensor, score: Tensor) {
    if let explicit = density as? any ExplicitScore {
        return withoutGradients { (explicit.logDensity(x), explicit.score(at: x)) }
    }
    let point = x.detached().requiringGradient()
    return GradientMode.$isRecording.withValue(true) {
        let value = density.logDensity(point)
        return (value.detached(), gradient(of: value.sum(), with: point))
    }
}

/// Unadjusted Langevin dynamics, x ← x + τ s(x) + √(2τ) z with z ~ N(0, I): needs only the score;
/// its stationary law is biased by O(τ) (for N(0, σ²) in one dimension the chain is AR(1) with
/// stationary variance σ²/(1 − τ/(2σ²))).
public struct UnadjustedLangevin: Sampler {
    public static let name = "langevin"
    public let settings: SamplerSettings
    public init(_ settings: SamplerSettings) throws {
        try settings.validate()
        self.settings = settings
    }

    public func run(_ density: any LogDensityFunction, from start: Tensor, using stream: RandomStream) throws -> SampleRun {
        try checkStart(start, settings)
        let (tau, noiseScale) = (settings.stepSize, (2 * settings.stepSize).squareRoot())
        var x = start.detached()
        var kept: [Tensor] = []
        for step in 1...settings.steps {
            let s = logDensityAndScore(of: density, at: x).score
            x = withoutGradients { x + s * tau + stream.normal(shape: x.shape) * noiseScale }
            guard x.isFinite else { throw SamplingError.nonFinite(sampler: Self.name, step: step) }
            if settings.keeps(step) { kept.append(x) }
        }
        return SampleRun(samples: Tensor.concatenate(kept, alongAxis: 0), acceptanceRate: nil)
    }
}

/// The Metropolis-adjusted Langevin algorithm: the Langevin proposal y = x + τ s(x) + √(2τ) z,
/// accepted with probability min(1, p̃(y) q(x | y) / (p̃(x) q(y | x))), q(y | x) =
/// N(y; x + τ s(x), 2τ I); per step one N(0, I_D) draw per chain, then one uniform per chain. Its
/// stationary law is p exactly, for any τ.
public struct MetropolisAdjustedLangevin: Sampler {
    public static let name = "mala"
    public let settings: SamplerSettings
    public init(_ settings: SamplerSettings) throws {
        try settings.validate()
        self.settings = settings
    }

    public func run(_ density: any LogDensityFunction, from start: Tensor, using stream: RandomStream) throws -> SampleRun {
        try checkStart(start, settings)
        let (n, d) = (start.shape[0], start.shape[1])
        let tau = settings.stepSize
        var x = start.detached().scalars
        var (logP, score) = logDensityAndScore(of: density, at: start)
        var (lp, s) = (logP.scalars, score.scalars)
        guard lp.allSatisfy(\.isFinite) else { throw SamplingError.nonFinite(sampler: Self.name, step: 0) }
        var accepted = 0
        var kept: [Tensor] = []
        /// log q(to | from) up to its constant: −‖to − from − τ s(from)‖² / (4τ), per chain.
        func logProposal(to: [Double], from: [Double], scoreAtFrom: [Double], chain i: Int) -> Double {
            var sum = 0.0
            for j in 0..<d {
                let r = to[i * d + j] - from[i * d + j] - tau * scoreAtFrom[i * d + j]
                sum += r * r
            }
            return -sum / (4 * tau)
        }
        for step in 1...settings.steps {
            let z = stream.normal(shape: [n, d]).scalars
            let noiseScale = (2 * tau).squareRoot()
            var y = [Double](repeating: 0, count: n * d)
            for k in 0..<(n * d) { y[k] = x[k] + tau * s[k] + noiseScale * z[k] }
            (logP, score) = logDensityAndScore(of: density, at: Tensor(shape: [n, d], scalars: y))
            let (lpY, sY) = (logP.scalars, score.scalars)
            for i in 0..<n {
                let logRatio = lpY[i] - lp[i] + logProposal(to: x, from: y, scoreAtFrom: sY, chain: i) - logProposal(to: y, from: x, scoreAtFrom: s, chain: i)
                let u = stream.uniform()
                // A proposal whose log density is NaN or infinite is rejected, never accepted.
                if lpY[i].isFinite, !logRatio.isNaN, Foundation.log(u) < logRatio {
                    accepted += 1
                    lp[i] = lpY[i]
                    for j in 0..<d { x[i * d + j] = y[i * d + j]; s[i * d + j] = sY[i * d + j] }
                }
            }
            guard x.allSatisfy(\.isFinite), s.allSatisfy(\.isFinite) else { throw SamplingError.nonFinite(sampler: Self.name, step: step) }
            if settings.keeps(step) { kept.append(Tensor(shape: [n, d], scalars: x)) }
        }
        return SampleRun(samples: Tensor.concatenate(kept, alongAxis: 0), acceptanceRate: Double(accepted) / Double(n * settings.steps))
    }
}

extension SamplerSettings {
    /// Whether the state after 1-based `step` is kept.
    func keeps(_ step: Int) -> Bool { step > burnIn && (step - burnIn) % thinning == 0 }
}

func checkStart(_ start: Tensor, _ settings: SamplerSettings) throws {
    guard start.rank == 2, start.shape[0] == settings.chains else {
        throw SamplingError.shape("sampler: the starting points have shape \(start.shape), expected [chains = \(settings.chains), D]")
    }
    guard start.isFinite else { throw SamplingError.shape("sampler: a starting point has a NaN or infinite coordinate") }
}

/// An exact target as a log density with its closed-form score, so samplers and the metrics take
/// it as they take a model. Points of another dimension than the target's give NaN (which a
/// sampler reports as a non-finite state at step 0), not a crash.
public struct TargetDensity: ExplicitScore {
    public let distribution: any ReferenceDistribution
    public init(_ distribution: any ReferenceDistribution) { self.distribution = distribution }
    public func logDensity(_ x: Tensor) -> Tensor {
        (try? distribution.logDensity(x)) ?? Tensor(shape: [x.shape.first ?? 0], scalars: .init(repeating: .nan, count: x.shape.first ?? 0))
    }
    public func score(at x: Tensor) -> Tensor {
        (try? distribution.score(x)) ?? Tensor(shape: x.shape, scalars: .init(repeating: .nan, count: x.scalars.count))
    }
}

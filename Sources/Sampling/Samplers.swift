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

/// The model's score at the rows of x, as a constant `[N, D]`: a log-density's as
/// `logDensityAndScore` gives it, a score network's by one forward pass.
public func scoreValues(of model: any ScoreFunction, at x: Tensor) -> Tensor {
    if let density = model as? any LogDensityFunction { return logDensityAndScore(of: density, at: x).score }
    return withoutGradients { model.modelScore(at: x.detached()) }
}

/// Unadjusted Langevin dynamics, x ← x + τ s(x) + √(2τ) z with z ~ N(0, I): needs only the score,
/// so it runs on score networks too; its stationary law is biased by O(τ) (for N(0, σ²) in one
/// dimension the chain is AR(1) with stationary variance σ²/(1 − τ/(2σ²))). toy_gradlogp and NCSN
/// write the same update as x + (ε/2) s + √ε z: their ε is 2τ.
public struct UnadjustedLangevin: Sampler {
    public static let name = "langevin"
    public let settings: SamplerSettings
    public init(_ settings: SamplerSettings) throws {
        try settings.validate()
        self.settings = settings
    }

    public func run(_ density: any LogDensityFunction, from start: Tensor, using stream: RandomStream) throws -> SampleRun {
        try run(scoreOf: density, from: start, using: stream)
    }

    /// Runs the chains on any score model (a log-density or a score network).
    public func run(scoreOf model: any ScoreFunction, from start: Tensor, using stream: RandomStream) throws -> SampleRun {
        try checkStart(start, settings)
        let (tau, noiseScale) = (settings.stepSize, (2 * settings.stepSize).squareRoot())
        var x = start.detached()
        var kept: [Tensor] = []
        for step in 1...settings.steps {
            let s = scoreValues(of: model, at: x)
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

/// Annealed Langevin dynamics (Song & Ermon 2019, algorithm 1) for a score at every noise level:
/// for σ₁ > σ₂ > … > σ_L, `stepsPerLevel` steps of
///
///     x ← x + (αᵢ/2) s(x, σᵢ) + √αᵢ z,   αᵢ = ε (σᵢ/σ_L)²,
///
/// each level's Langevin step αᵢ and its noise √αᵢ scaled together (toy_gradlogp's version keeps
/// the noise at √ε on every level, which samples a law of the wrong width). Chains start wide and
/// cross between modes while σ is large, so they end in the modes in the right proportions, where
/// plain Langevin started the same way keeps the proportions of its start. Keeps the state after
/// the last step.
public struct AnnealedLangevin: Sendable {
    public let sigmas: [Double]
    public let stepsPerLevel: Int
    /// ε, the step at the last level σ_L.
    public let baseStep: Double

    /// - Throws: `SamplingError.invalidSetting` unless the levels are finite, > 0 and decreasing,
    ///   and the step and step count positive.
    public init(sigmas: [Double], stepsPerLevel: Int, baseStep: Double) throws {
        guard !sigmas.isEmpty, sigmas.allSatisfy({ $0 > 0 && $0.isFinite }), zip(sigmas, sigmas.dropFirst()).allSatisfy({ $0 > $1 }) else {
            throw SamplingError.invalidSetting("sigmas", "must be finite, > 0 and decreasing, got \(sigmas)")
        }
        guard stepsPerLevel >= 1 else { throw SamplingError.invalidSetting("steps_per_level", "must be ≥ 1, got \(stepsPerLevel)") }
        guard baseStep > 0, baseStep.isFinite else { throw SamplingError.invalidSetting("step_size", "must be finite and > 0, got \(baseStep)") }
        (self.sigmas, self.stepsPerLevel, self.baseStep) = (sigmas, stepsPerLevel, baseStep)
    }

    /// NCSN's schedule: L levels geometric from `largest` to `smallest` (10 from 20 to 1 in its toy runner).
    public static func geometric(from largest: Double, to smallest: Double, levels: Int) -> [Double] {
        guard levels > 1 else { return [smallest] }
        return (0..<levels).map { largest * pow(smallest / largest, Double($0) / Double(levels - 1)) }
    }

    /// Runs one chain from each row of `start`; returns the final states `[chains, D]`.
    public func run(_ model: any NoiseConditionalScoreFunction, from start: Tensor, using stream: RandomStream) throws -> Tensor {
        guard start.rank == 2, start.isFinite else { throw SamplingError.shape("annealed Langevin: the starting points must be a finite [chains, D] matrix, got \(start.shape)") }
        var x = start.detached()
        let last = sigmas.last!
        for (level, sigma) in sigmas.enumerated() {
            let alpha = baseStep * (sigma / last) * (sigma / last)
            let levels = Tensor([Double](repeating: sigma, count: x.shape[0]))
            for step in 1...stepsPerLevel {
                let s = withoutGradients { model.score(at: x, sigmas: levels) }
                x = withoutGradients { x + s * (alpha / 2) + stream.normal(shape: x.shape) * alpha.squareRoot() }
                guard x.isFinite else { throw SamplingError.nonFinite(sampler: "annealed langevin", step: level * stepsPerLevel + step) }
            }
        }
        return x
    }
}

/// A Gaussian mixture Σₖ πₖ N(μₖ, s²I) blurred by N(0, σ²I): Σₖ πₖ N(μₖ, (s² + σ²)I), the exact
/// noise-conditional score of such data for annealed Langevin (tests, the figure's exact panel).
public struct BlurredMixtureScore: NoiseConditionalScoreFunction {
    public let weights: [Double]
    public let means: [[Double]]
    public let scale: Double
    /// NCSN's toy runner uses σ itself as the components' standard deviation (so its last level,
    /// σ = 1, is the data); `blurred` false reproduces that, true adds s² + σ².
    public let blurred: Bool

    public init(weights: [Double], means: [[Double]], scale: Double, blurred: Bool = true) {
        (self.weights, self.means, self.scale, self.blurred) = (weights, means, scale, blurred)
    }

    public func score(at x: Tensor, sigmas: Tensor) -> Tensor {
        let (n, d) = (x.shape[0], x.shape[1])
        var out = [Double](repeating: 0, count: n * d)
        for i in 0..<n {
            let sigma = sigmas.scalars[i]
            let variance = blurred ? scale * scale + sigma * sigma : sigma * sigma
            let logs = zip(weights, means).map { w, mu -> Double in
                var sq = 0.0
                for j in 0..<d { let r = x.scalars[i * d + j] - mu[j]; sq += r * r }
                return Foundation.log(w) - sq / (2 * variance)
            }
            let top = logs.max()!
            let r = logs.map { exp($0 - top) }, total = r.reduce(0, +)
            for (k, mu) in means.enumerated() {
                for j in 0..<d { out[i * d + j] += r[k] / total * (mu[j] - x.scalars[i * d + j]) / variance }
            }
        }
        return Tensor(shape: [n, d], scalars: out)
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

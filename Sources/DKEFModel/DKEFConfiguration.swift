/// The architecture of a deep kernel exponential family, with the defaults of the authors'
/// `configs/dkef_perf` (M = 200 inducing points, 3 kernels, feature nets of width 30 with a skip
/// connection, q₀ = N(0, 2² I) unnormalised, log₁₀ λ initialised at −2).
public struct DKEFConfiguration: Sendable, Equatable {
    /// Data dimension D.
    public var dimension: Int
    /// Number of inducing points M.
    public var inducingPoints: Int = 200
    /// Width H of each feature net.
    public var hiddenWidth: Int = 30
    /// Initial log₁₀ bandwidths l_j, one per kernel (their count is the number of kernels).
    public var initialLogBandwidths: [Double] = [0.0, 0.5185, 1.0]
    /// Standard deviation of the base density q₀ = N(0, σ₀² I).
    public var baseSigma: Double = 2.0
    /// Initial log₁₀ λ of the ridge in α = −(G + λI)⁻¹ b.
    public var initialLogLambda: Double = -2

    public init(dimension: Int, inducingPoints: Int = 200, hiddenWidth: Int = 30,
                initialLogBandwidths: [Double] = [0.0, 0.5185, 1.0], baseSigma: Double = 2.0, initialLogLambda: Double = -2) {
        self.dimension = dimension
        self.inducingPoints = inducingPoints
        self.hiddenWidth = hiddenWidth
        self.initialLogBandwidths = initialLogBandwidths
        self.baseSigma = baseSigma
        self.initialLogLambda = initialLogLambda
    }

    public var kernelCount: Int { initialLogBandwidths.count }

    /// Throws `DKEFError.invalidConfiguration` naming the bad field.
    public func validate() throws {
        guard dimension >= 1 else { throw DKEFError.invalidConfiguration("dimension must be ≥ 1, got \(dimension)") }
        guard inducingPoints >= 1 else { throw DKEFError.invalidConfiguration("inducing points M must be ≥ 1, got \(inducingPoints)") }
        guard hiddenWidth >= 1 else { throw DKEFError.invalidConfiguration("hidden width must be ≥ 1, got \(hiddenWidth)") }
        guard !initialLogBandwidths.isEmpty, initialLogBandwidths.allSatisfy(\.isFinite) else {
            throw DKEFError.invalidConfiguration("initial log bandwidths must be a non-empty list of finite numbers, got \(initialLogBandwidths)")
        }
        guard baseSigma > 0, baseSigma.isFinite else { throw DKEFError.invalidConfiguration("base sigma must be finite and > 0, got \(baseSigma)") }
        guard initialLogLambda.isFinite else { throw DKEFError.invalidConfiguration("initial log lambda must be finite") }
    }
}

public enum DKEFError: Error, CustomStringConvertible, Equatable {
    case invalidConfiguration(String)
    case badInducingPoints(shape: [Int], expected: [Int])
    case badParameters(String)

    public var description: String {
        switch self {
        case let .invalidConfiguration(m): "DKEF configuration: \(m)"
        case let .badInducingPoints(shape, expected): "DKEF inducing points have shape \(shape), expected \(expected)"
        case let .badParameters(m): "DKEF parameters: \(m)"
        }
    }
}

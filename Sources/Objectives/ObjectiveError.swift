/// A bad argument to an objective, naming the parameter, the value and what is allowed.
public enum ObjectiveError: Error, CustomStringConvertible, Equatable {
    case invalidSigma(Double)
    case invalidProjectionCount(Int)
    case invalidEpsilon(Double)
    case unknownProjection(String)
    case unknownEstimator(String)
    case unknownNoiseLayout(String)
    case badBatch(shape: [Int], expected: String)
    case badModelOutput(shape: [Int], expected: [Int])
    case nonFinite(what: String)
    case needsLayeredModel(estimator: String)
    case badScoreOutput(shape: [Int], expected: [Int])
    case needsLogDensity(estimator: String)

    public var description: String {
        switch self {
        case let .invalidSigma(s):
            "sigma must be a finite number > 0, got \(s)"
        case let .invalidEpsilon(e):
            "FSM's epsilon must be finite and > 0, got \(e)"
        case let .invalidProjectionCount(n):
            "projections per point must be at least 1, got \(n)"
        case let .unknownProjection(name):
            "unknown projection '\(name)'; choose one of \(Projection.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .unknownEstimator(name):
            "unknown estimator '\(name)'; choose one of \(Estimator.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .unknownNoiseLayout(name):
            "unknown CP noise layout '\(name)'; choose one of \(CurvaturePropagationNoise.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .badBatch(shape, expected):
            "data batch has shape \(shape), expected \(expected)"
        case let .badModelOutput(shape, expected):
            "the model's log-density has shape \(shape), expected \(expected) (one value per row of the batch)"
        case let .badScoreOutput(shape, expected):
            "the model's score has shape \(shape), expected \(expected) (one D-vector per row of the batch)"
        case let .needsLogDensity(estimator):
            "the \(estimator) estimator is defined through a log-density (an energy network's −E); a score network has none (for a score network, DEEN's loss is DSM's: use dsm)"
        case let .needsLayeredModel(estimator):
            "the \(estimator) estimator needs a model with layer structure (DiagonalHessianEstimating, e.g. DKEF); this model is only a log-density"
        case let .nonFinite(what):
            "\(what) is not finite (NaN or infinity)"
        }
    }
}

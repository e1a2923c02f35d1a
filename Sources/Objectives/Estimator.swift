/// The estimators by name: the one place that maps a name to an objective type.
/// Adding an estimator = one new type + one case here.
public enum Estimator: String, CaseIterable, Sendable {
    case sm
    case ssm
    case ssmVR = "ssm_vr"
    case dsm
    /// Curvature propagation (Martens et al. 2012); needs a `DiagonalHessianEstimating` model.
    case cp
    /// Approximate backpropagation (Kingma & LeCun 2010); needs a `DiagonalHessianEstimating` model.
    case approxBP = "approx_bp"
    /// Finite-difference sliced score matching (Pang et al. 2020); not in the paper.
    case fsm
    /// Deep energy estimator networks (Saremi et al. 2018): ½‖x − x̃ + σ²∇ₓ̃E(x̃)‖², x̃ = x + σz,
    /// for an energy model; term for term the σ⁴-scaled DSM this suite uses (`DenoisingScoreMatching`,
    /// proven in the tests); not in the paper.
    case deen

    /// The six methods of the paper's experiments (every estimator but FSM and DEEN): the default grid.
    public static var paper: [Estimator] { allCases.filter { $0 != .fsm && $0 != .deen } }

    /// The name tables and legends print (the paper's, where it has one).
    public var displayName: String {
        switch self {
        case .sm: "SM (exact)"
        case .ssm: "SSM"
        case .ssmVR: "SSM-VR"
        case .dsm: "DSM"
        case .cp: "CP"
        case .approxBP: "Approx BP"
        case .fsm: "FSM"
        case .deen: "DEEN"
        }
    }

    /// Whether the estimator is defined through a log-density (an energy), not a score alone: a
    /// score network is refused for it.
    public var needsLogDensity: Bool { self == .deen }

    /// Whether the estimator needs a model with layer structure (`DiagonalHessianEstimating`).
    public var needsLayeredModel: Bool { self == .cp || self == .approxBP }

    /// Parses a name, or throws `ObjectiveError.unknownEstimator` listing the valid ones.
    public init(named name: String) throws {
        guard let e = Estimator(rawValue: name) else { throw ObjectiveError.unknownEstimator(name) }
        self = e
    }

    /// The objective with the given settings (only the settings the estimator uses are read).
    public func objective(_ settings: ObjectiveSettings = ObjectiveSettings()) throws -> any ScoreObjective {
        switch self {
        case .sm: ScoreMatching.exact
        case .ssm: try SlicedScoreMatching(projection: settings.projection, count: settings.projectionCount)
        case .ssmVR: try ScoreMatching.varianceReduced(projection: settings.projection, count: settings.projectionCount)
        case .dsm: try DenoisingScoreMatching(sigma: settings.sigma)
        case .cp: ScoreMatching.curvaturePropagation(layout: settings.curvaturePropagationNoise)
        case .approxBP: ScoreMatching.approximateBackpropagation
        case .fsm: try FiniteDifferenceScoreMatching(epsilon: settings.epsilon, count: settings.projectionCount)
        case .deen: try DenoisingScoreMatching.deepEnergyEstimator(sigma: settings.sigma)
        }
    }
}

/// Settings shared by the estimators; defaults as in the paper's DKEF experiments.
public struct ObjectiveSettings: Sendable, Equatable {
    /// Projection law for SSM / SSM-VR.
    public var projection: Projection = .rademacher
    /// Projections per data point.
    public var projectionCount: Int = 1
    /// DSM's noise scale σ.
    public var sigma: Double = 0.1
    /// Where CP draws its noise in a model with basis functions.
    public var curvaturePropagationNoise: CurvaturePropagationNoise = .perPoint
    /// FSM's displacement ε (its projections are always on the √D sphere).
    public var epsilon: Double = 0.1

    public init(projection: Projection = .rademacher, projectionCount: Int = 1, sigma: Double = 0.1,
                curvaturePropagationNoise: CurvaturePropagationNoise = .perPoint, epsilon: Double = 0.1) {
        self.projection = projection
        self.projectionCount = projectionCount
        self.sigma = sigma
        self.curvaturePropagationNoise = curvaturePropagationNoise
        self.epsilon = epsilon
    }
}

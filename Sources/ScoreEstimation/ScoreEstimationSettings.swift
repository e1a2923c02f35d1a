/// How a figure-6 cell is computed (the config's `estimation:` block): the fresh points it is
/// measured on, the held-out points that choose hyperparameters, the criterion's draws, and the
/// networks' and kernel estimators' settings.
public struct ScoreEstimationSettings: Codable, Equatable, Sendable {
    /// Fresh points of the target for the out-of-sample error and the query timing.
    public var testPoints = 1000
    /// Held-out points of the target for the held-out criterion (never the exact score).
    public var heldOutPoints = 500
    /// The criterion's directions per held-out point, and its displacement ε as a factor of
    /// s̄√D (s̄ the samples' scale, `sampleScale`; s̄√D the typical norm of a centred sample).
    public var criterionProjections = 4
    public var criterionEpsilonFactor = 1e-3
    public var network = NetworkFitSettings()
    public var kernels = KernelSearchSettings()

    public init() {}

    static let keys = ["test", "held_out", "criterion_projections", "criterion_epsilon_factor", "network", "kernels"]

    /// Throws `ScoreEstimationError.invalidSetting` naming the setting.
    public func validate() throws {
        func check(_ ok: Bool, _ key: String, _ reason: String) throws { if !ok { throw ScoreEstimationError.invalidSetting(key, reason) } }
        try check(testPoints >= 1, "test", "must be ≥ 1, got \(testPoints)")
        try check(heldOutPoints >= 1, "held_out", "must be ≥ 1, got \(heldOutPoints)")
        try check(criterionProjections >= 1, "criterion_projections", "must be ≥ 1, got \(criterionProjections)")
        try check(criterionEpsilonFactor.isFinite && criterionEpsilonFactor > 0, "criterion_epsilon_factor", "must be finite and > 0, got \(criterionEpsilonFactor)")
        do { try network.validate() } catch ScoreEstimationError.invalidSetting(let key, let reason) { throw ScoreEstimationError.invalidSetting("network.\(key)", reason) }
        do { try kernels.validate() } catch ScoreEstimationError.invalidSetting(let key, let reason) { throw ScoreEstimationError.invalidSetting("kernels.\(key)", reason) }
    }
}

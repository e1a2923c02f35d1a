import Autodiff
import Foundation
import KernelEstimators

/// Figure 6's kernel score estimators, by name.
public enum KernelMethod: String, CaseIterable, Sendable, Codable {
    /// `SteinScoreEstimator` (Li & Turner 2018).
    case stein
    /// `SpectralScoreEstimator` (Shi, Sun & Zhu 2018).
    case ssge

    public var displayName: String {
        switch self {
        case .stein: "Stein"
        case .ssge: "SSGE"
        }
    }

    /// Parses a name, or throws `ScoreEstimationError.unknownKernelMethod` listing the valid ones.
    public init(named name: String) throws {
        guard let method = Self(rawValue: name) else { throw ScoreEstimationError.unknownKernelMethod(name) }
        self = method
    }
}

/// How a kernel estimator's hyperparameters are set.
public enum KernelVariant: String, CaseIterable, Sendable, Codable {
    /// As in the authors' code: Stein with η = 0.001, SSGE keeping 99% of the spectrum, both at
    /// the median bandwidth.
    case authors
    /// η (Stein), the eigenvalue cut (SSGE) and the bandwidth (both, as factors of the median)
    /// chosen from a small grid by the held-out criterion (`HeldOutCriterion`), never by the exact
    /// score: the same care as DSM's σ gets.
    case tuned

    public init(named name: String) throws {
        guard let variant = Self(rawValue: name) else { throw ScoreEstimationError.unknownKernelVariant(name) }
        self = variant
    }
}

/// The kernel estimators' settings: the authors' values and the held-out search grids.
public struct KernelSearchSettings: Codable, Equatable, Sendable {
    /// The authors' Stein ridge.
    public var steinEta = 0.001
    /// The authors' SSGE cut (fraction of the spectrum) and ridge (none).
    public var ssgeThreshold = 0.99
    public var ssgeEta = 0.0
    /// The tuned variant's grids: Stein's η; SSGE's cut; both estimators' bandwidth as factors of
    /// the median heuristic.
    public var etas = [0.001, 0.01, 0.1, 1.0]
    public var thresholds = [0.9, 0.99, 0.999, 0.9999]
    public var bandwidthFactors = [0.5, 1.0, 2.0]

    public init() {}

    /// Throws `ScoreEstimationError.invalidSetting` naming the setting.
    public func validate() throws {
        func check(_ ok: Bool, _ key: String, _ reason: String) throws { if !ok { throw ScoreEstimationError.invalidSetting(key, reason) } }
        try check(steinEta.isFinite && steinEta >= 0, "stein_eta", "must be finite and ≥ 0, got \(steinEta)")
        try check(ssgeEta.isFinite && ssgeEta >= 0, "ssge_eta", "must be finite and ≥ 0, got \(ssgeEta)")
        try check(ssgeThreshold > 0 && ssgeThreshold <= 1, "ssge_threshold", "must be in (0, 1], got \(ssgeThreshold)")
        try check(!etas.isEmpty && etas.allSatisfy { $0.isFinite && $0 >= 0 }, "etas", "must be a non-empty list of finite numbers ≥ 0, got \(etas)")
        try check(!thresholds.isEmpty && thresholds.allSatisfy { $0 > 0 && $0 <= 1 }, "thresholds", "must be a non-empty list of numbers in (0, 1], got \(thresholds)")
        try check(!bandwidthFactors.isEmpty && bandwidthFactors.allSatisfy { $0.isFinite && $0 > 0 }, "bandwidth_factors",
                  "must be a non-empty list of finite numbers > 0, got \(bandwidthFactors)")
    }
}

/// One kernel estimator fitted to samples, with how its settings were chosen and what it cost.
public struct KernelFit {
    public let method: KernelMethod
    public let variant: KernelVariant
    public let estimate: any KernelScoreEstimate
    /// Seconds of the chosen configuration's fit alone (timed once more after the search).
    public let fitSeconds: Double
    /// Seconds of the whole search (every candidate's fit and criterion); 0 for the authors' variant.
    public let selectionSeconds: Double
    /// The chosen ridge η, bandwidth factor (× the median heuristic) and, for SSGE, cut and the
    /// number of eigenpairs it kept.
    public let eta: Double
    public let bandwidthFactor: Double
    public let threshold: Double?
    public let keptEigenvalues: Int?
    /// The held-out criterion J of the returned estimate (the refit: for SSGE it may differ from
    /// its search candidate's in the last digits, the search having computed the eigenvectors
    /// every candidate cut needed at once).
    public let heldOutCriterion: Double
    /// Every candidate of the search: its settings and J (+∞ where the fit failed, e.g. a
    /// singular K at a small η), in search order.
    public let candidates: [(eta: Double, bandwidthFactor: Double, threshold: Double?, criterion: Double)]
}

/// Fits `method` to samples `[M, D]` as `variant` says, choosing by `criterion` (held-out points).
public func fitKernelEstimator(_ method: KernelMethod, _ variant: KernelVariant, samples: Tensor, criterion: HeldOutCriterion,
                               settings: KernelSearchSettings) throws -> KernelFit {
    typealias Candidate = (eta: Double, bandwidthFactor: Double, threshold: Double?, criterion: Double)
    let searchStart = DispatchTime.now().uptimeNanoseconds
    var candidates: [Candidate] = []
    var best: (candidate: Candidate, estimate: any KernelScoreEstimate)? = nil
    func consider(_ candidate: Candidate, _ estimate: any KernelScoreEstimate) {
        candidates.append(candidate)
        if candidate.criterion < (best?.candidate.criterion ?? .infinity) { best = (candidate, estimate) }
    }
    func score(_ estimate: any KernelScoreEstimate) -> Double {
        (try? criterion.value(of: KernelScoreFunction(estimate))) ?? .infinity
    }
    switch (method, variant) {
    case (.stein, .authors), (.ssge, .authors):
        break
    case (.stein, .tuned):
        for factor in settings.bandwidthFactors {
            for eta in settings.etas {
                guard let fit = try? SteinScoreEstimator(eta: eta, bandwidth: .scaledMedian(factor)).fit(samples) else {
                    candidates.append((eta, factor, nil, .infinity)); continue
                }
                consider((eta, factor, nil, score(fit)), fit)
            }
        }
    case (.ssge, .tuned):
        for factor in settings.bandwidthFactors {
            guard let spectrum = try? SpectralScoreEstimator(eta: settings.ssgeEta, bandwidth: .scaledMedian(factor)).spectrum(of: samples, cuts: settings.thresholds.map { .fraction($0) }) else {
                for t in settings.thresholds { candidates.append((settings.ssgeEta, factor, t, .infinity)) }
                continue
            }
            for t in settings.thresholds {
                guard let fit = try? spectrum.estimate(cut: .fraction(t)) else { candidates.append((settings.ssgeEta, factor, t, .infinity)); continue }
                consider((settings.ssgeEta, factor, t, score(fit)), fit)
            }
        }
    }
    let selectionSeconds = variant == .tuned ? Double(DispatchTime.now().uptimeNanoseconds - searchStart) / 1e9 : 0
    if variant == .tuned, best == nil {
        throw ScoreEstimationError.noCandidate("every candidate of \(method.rawValue)'s held-out search failed or scored non-finite: \(candidates)")
    }
    // The chosen settings (the authors' for that variant), fitted once more and timed.
    let eta = best?.candidate.eta ?? (method == .stein ? settings.steinEta : settings.ssgeEta)
    let factor = best?.candidate.bandwidthFactor ?? 1
    let threshold = method == .ssge ? (best?.candidate.threshold ?? settings.ssgeThreshold) : nil
    let rule: BandwidthRule = factor == 1 ? .medianDistance : .scaledMedian(factor)
    let fitStart = DispatchTime.now().uptimeNanoseconds
    let estimate: any KernelScoreEstimate
    switch method {
    case .stein: estimate = try SteinScoreEstimator(eta: eta, bandwidth: rule).fit(samples)
    case .ssge: estimate = try SpectralScoreEstimator(cut: .fraction(threshold!), eta: eta, bandwidth: rule).fit(samples)
    }
    let fitSeconds = Double(DispatchTime.now().uptimeNanoseconds - fitStart) / 1e9
    let kept = (estimate as? SpectralScoreEstimator.Estimate)?.eigenvalues.count
    return KernelFit(method: method, variant: variant, estimate: estimate, fitSeconds: fitSeconds, selectionSeconds: selectionSeconds,
                     eta: eta, bandwidthFactor: factor, threshold: threshold, keptEigenvalues: kept,
                     heldOutCriterion: score(estimate), candidates: candidates)
}

/// Bad settings or names for figure 6's estimators.
public enum ScoreEstimationError: Error, CustomStringConvertible, Equatable {
    case unknownKernelMethod(String)
    case unknownKernelVariant(String)
    case invalidSetting(String, String)
    case noCandidate(String)

    public var description: String {
        switch self {
        case .unknownKernelMethod(let name):
            "unknown kernel score estimator '\(name)'; choose one of \(KernelMethod.allCases.map(\.rawValue).joined(separator: ", "))"
        case .unknownKernelVariant(let name):
            "unknown kernel estimator setting '\(name)'; choose one of \(KernelVariant.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .invalidSetting(key, reason): "\(key) \(reason)"
        case .noCandidate(let what): what
        }
    }
}

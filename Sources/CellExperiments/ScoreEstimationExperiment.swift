import Autodiff
import ExperimentGrid
import Foundation
import GSLNumerics
import GridExecution
import KernelEstimators
import NeuralModels
import Objectives
import ResultsStore
import ScoreEstimation
import Training

/// One figure-6 cell: an estimator fitted to M samples of a target with an exact score, then
/// measured against that score.
///
/// Streams, so that the estimators of one (target, D, seed) see the same points: the held-out
/// and test points and the criterion's directions from a stream of (target, D, seed), the M
/// samples from one of (target, D, M, seed) — the test points are the same for every M — and a
/// network's initial weights and training draws from the seed.
///
/// Metrics (scalar datasets of the cell's group): the relative error E‖ŝ − s‖² / E‖s‖² at the test points (out of sample)
/// and at the samples (in sample), the Fisher divergence ½E‖ŝ − s‖² at the test points, the
/// held-out criterion of the fitted estimate, fit and selection seconds, seconds per 1000 queries,
/// and the process's resident memory at the start of the cell and its peak during it.
public enum ScoreEstimationExperiment {
    /// The cell's points: (samples `[M, D]`, held-out `[H, D]`, test `[T, D]`), and the criterion.
    public static func points(_ cell: Cell, target: any ReferenceDistribution, settings: ScoreEstimationSettings)
        throws -> (samples: Tensor, heldOut: Tensor, test: Tensor, criterion: HeldOutCriterion) {
        let (d, m) = (cell.dimension, cell.sampleCount!)
        let evaluation = RandomStream(seed: mix([0x6576_616c, UInt64(Target.allCases.firstIndex(of: cell.target)!), UInt64(d), UInt64(cell.seed)]))
        let heldOut = target.sample(settings.heldOutPoints, using: evaluation), test = target.sample(settings.testPoints, using: evaluation)
        let samples = target.sample(m, using: RandomStream(seed: mix([0x7361_6d70, UInt64(Target.allCases.firstIndex(of: cell.target)!), UInt64(d), UInt64(m), UInt64(cell.seed)])))
        let epsilon = settings.criterionEpsilonFactor * sampleScale(samples) * Double(d).squareRoot()
        let criterion = try HeldOutCriterion(points: heldOut, projections: settings.criterionProjections, epsilon: epsilon, using: evaluation)
        return (samples, heldOut, test, criterion)
    }

    /// FNV-1a over the words: a seed per tuple.
    static func mix(_ words: [UInt64]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for w in words { for byte in 0..<8 { h = (h ^ ((w >> (8 * UInt64(byte))) & 0xff)) &* 0x0000_0100_0000_01b3 } }
        return h
    }

    /// figure 6's cell computation and the writer of its group. A network whose training becomes
    /// NaN records `diverged_at_step`; a kernel fit that cannot be computed (a singular K at the
    /// authors' η, say) records `failure`; both are outcomes the report names, and the grid goes on.
    public static func compute(_ cell: Cell, config: ExperimentConfig) throws -> (ResultsGroup) throws -> Void {
        guard let settings = config.estimation, cell.sampleCount != nil else {
            throw ConfigError.invalid(file: "(config)", key: "estimation", reason: "\(cell.name) is not a score-estimation cell")
        }
        resetPeakResident()
        let startMiB = residentMiB()
        let target = try config.targetSettings(for: cell).distribution(dimension: cell.dimension)
        let (samples, _, test, criterion) = try points(cell, target: target, settings: settings)
        let (testScores, sampleScores) = (try target.score(test), try target.score(samples))

        var metrics: [String: (value: Double, units: String)] = [:]
        var arrays: [String: (values: [Double], units: String)] = [:]
        let queryStart: UInt64
        let estimated: Tensor, inSample: Tensor
        switch cell.estimator {
        case .kernel(let method, let variant):
            let fit: KernelFit
            do {
                fit = try fitKernelEstimator(method, variant, samples: samples, criterion: criterion, settings: settings.kernels)
            } catch {
                ExperimentGrid.log("\(cell.name): \(error); recorded as failed")
                return { group in try group.setAttribute("failure", .string("\(error)")) }
            }
            queryStart = DispatchTime.now().uptimeNanoseconds
            estimated = try fit.estimate.scores(at: test)
            inSample = fit.estimate.sampleScores
            metrics["fit_seconds"] = (fit.fitSeconds, "s (the chosen settings' fit alone)")
            metrics["selection_seconds"] = (fit.selectionSeconds, "s (the held-out search: every candidate's fit and criterion; 0 at the authors' settings)")
            metrics["held_out_criterion"] = (fit.heldOutCriterion, "squared score (J = E[½‖ŝ‖² + tr ∇ŝ] on the held-out points)")
            metrics["bandwidth"] = (fit.estimate.bandwidth, "x (the RBF kernel's h)")
            metrics["bandwidth_factor"] = (fit.bandwidthFactor, "h over the median heuristic's")
            metrics["eta"] = (fit.eta, "the ridge η added to K")
            if let t = fit.threshold { metrics["eigenvalue_threshold"] = (t, "fraction of the spectrum (SSGE's cut)") }
            if let j = fit.keptEigenvalues { metrics["kept_eigenvalues"] = (Double(j), "eigenpairs SSGE kept") }
            if !fit.candidates.isEmpty {
                arrays["candidate_eta"] = (fit.candidates.map(\.eta), "the search's η per candidate")
                arrays["candidate_bandwidth_factor"] = (fit.candidates.map(\.bandwidthFactor), "the search's bandwidth factor per candidate")
                if method == .ssge { arrays["candidate_threshold"] = (fit.candidates.map { $0.threshold ?? .nan }, "the search's cut per candidate") }
                arrays["candidate_criterion"] = (fit.candidates.map(\.criterion), "held-out criterion per candidate (inf: the fit failed)")
            }
        case .objective(let method):
            let fit: NetworkFit
            do {
                fit = try fitScoreNetwork(method, samples: samples, criterion: criterion, settings: settings.network, seed: UInt64(cell.seed),
                                          progress: { ExperimentGrid.log("[\(cell.name)] \($0)") })
            } catch let TrainingError.nonFinite(stage, iteration, what) where stage == "training" {
                ExperimentGrid.log("\(cell.name): \(what) became NaN or infinite at training step \(iteration); recorded as diverged")
                return { group in
                    try group.write("diverged_at_step", doubles: [Double(iteration)], shape: [])
                    try group.setAttribute("units", .string("the training step at which \(what) became NaN or infinite"), on: "diverged_at_step")
                }
            }
            queryStart = DispatchTime.now().uptimeNanoseconds
            estimated = withoutGradients { fit.network.modelScore(at: test) }
            inSample = withoutGradients { fit.network.modelScore(at: samples) }
            metrics["fit_seconds"] = (fit.fitSeconds, "s (the chosen network's training)")
            metrics["selection_seconds"] = (fit.selectionSeconds, "s (every candidate's training and criterion: DSM's σ search; else the one training)")
            metrics["held_out_criterion"] = (fit.heldOutCriterion, "squared score (J = E[½‖ŝ‖² + tr ∇ŝ] on the held-out points)")
            metrics["steps"] = (Double(fit.steps), "optimiser steps")
            metrics["final_loss"] = (fit.stepLoss.suffix(100).reduce(0, +) / Double(min(100, fit.stepLoss.count)), "the objective's value, mean of the last 100 steps")
            if let sigma = fit.sigma { metrics["sigma"] = (sigma, "x (DSM's chosen σ)") }
            if let epsilon = fit.epsilon { metrics["epsilon"] = (epsilon, "x (FSM's displacement)") }
            if !fit.candidates.isEmpty {
                arrays["candidate_sigma"] = (fit.candidates.map(\.sigma), "DSM's σ per candidate")
                arrays["candidate_criterion"] = (fit.candidates.map(\.criterion), "held-out criterion per candidate (inf: the training diverged)")
            }
            arrays["step_loss"] = (fit.stepLoss, "the objective's value at each step of the chosen training")
        }
        let querySeconds = Double(DispatchTime.now().uptimeNanoseconds - queryStart) / 1e9
        metrics["query_seconds_per_1000"] = (querySeconds * 1000 / Double(test.shape[0]), "s per 1000 query points (out of sample)")
        let outOfSample = relativeError(estimated, testScores), within = relativeError(inSample, sampleScores)
        metrics["relative_error"] = (outOfSample, "E‖ŝ − s‖² / E‖s‖² at the fresh test points")
        metrics["in_sample_relative_error"] = (within, "E‖ŝ − s‖² / E‖s‖² at the M samples")
        metrics["fisher_divergence"] = (fisherDivergence(estimated, testScores), "squared score (½ E‖ŝ − s‖², fresh test points)")
        let peak = peakResidentMiB()
        return { group in
            for (name, metric) in metrics.sorted(by: { $0.key < $1.key }) {
                try group.write(name, doubles: [metric.value], shape: [])
                try group.setAttribute("units", .string(metric.units), on: name)
            }
            for (name, array) in arrays.sorted(by: { $0.key < $1.key }) {
                try group.write(name, doubles: array.values, shape: [array.values.count])
                try group.setAttribute("units", .string(array.units), on: name)
            }
            try group.setAttribute("peak_resident_mib", .double(peak))
            try group.setAttribute("start_resident_mib", .double(startMiB))
        }
    }

    /// Σ‖ŝ − s‖² / Σ‖s‖² over the rows.
    static func relativeError(_ estimate: Tensor, _ truth: Tensor) -> Double {
        var (num, den) = (0.0, 0.0)
        for (e, t) in zip(estimate.scalars, truth.scalars) { num += (e - t) * (e - t); den += t * t }
        return num / den
    }

    static func fisherDivergence(_ estimate: Tensor, _ truth: Tensor) -> Double {
        var sum = 0.0
        for (e, t) in zip(estimate.scalars, truth.scalars) { sum += (e - t) * (e - t) }
        return 0.5 * sum / Double(truth.shape[0])
    }
}

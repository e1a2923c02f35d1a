import Autodiff
import GSLNumerics

/// A score-matching objective: one type per estimator.
///
/// An objective draws its noise for a batch, then gives the per-point quadratic terms (see
/// `ObjectiveTerms`) for an unnormalised log-density f at a batch x `[N, D]`. It always records x's
/// graph (second derivatives need it); `createGraph` says whether the terms must stay
/// differentiable with respect to the model's parameters.
public protocol ScoreObjective: CustomStringConvertible {
    /// The estimator's one spelling (config, CLI, HDF5, legends).
    var name: String { get }

    /// The random draws for a batch of N points in D dimensions.
    func drawNoise(points: Int, dimension: Int, using stream: RandomStream) -> ObjectiveNoise

    /// The per-point terms at x. Called with gradient recording on; x is a constant.
    func terms(of model: any ScoreFunction, at x: Tensor, noise: ObjectiveNoise, createGraph: Bool) throws -> ObjectiveTerms

    /// The terms as directional derivatives (`DirectionalForm`), for objectives that are; nil for
    /// those that are not (CP, Approx BP).
    func directionalForm(noise: ObjectiveNoise) -> DirectionalForm?

    /// For ½‖s‖² + Σ diag-estimate objectives (CP, Approx BP): the special backward pass; nil for
    /// the others.
    func diagonalHessianMethod(noise: ObjectiveNoise) -> DiagonalHessianMethod?

    /// Whether the objective draws random numbers (`drawNoise` gives `.none` and leaves the stream
    /// as it was when it does not: exact SM, Approx BP).
    var drawsNoise: Bool { get }

    /// The terms as fixed combinations of log p̃'s values at shifted points (FSM), for objectives
    /// that are; nil for the others.
    func valueForm(at x: Tensor, noise: ObjectiveNoise) -> ValueForm?
}

/// Terms that are fixed linear combinations of f = log p̃ at B blocks of shifted points: with
/// fᵦ[n] = f(points[b·N + n]),
///
///     residual[n, r] = Σ_b residualWeights[r][b] fᵦ[n],   linear[n] = Σ_b linearWeights[b] fᵦ[n].
///
/// A model linear in its coefficients (DKEF) gets every basis function's terms from its values at
/// the points, without any derivative in x.
public struct ValueForm {
    /// `[B·N, D]`, block b holding row n at b·N + n.
    public var points: Tensor
    public var blocks: Int
    /// R rows of B weights.
    public var residualWeights: [[Double]]
    /// B weights.
    public var linearWeights: [Double]

    public init(points: Tensor, blocks: Int, residualWeights: [[Double]], linearWeights: [Double]) {
        precondition(points.rank == 2 && points.shape[0] % blocks == 0, "ValueForm: \(points.shape) rows are not \(blocks) blocks")
        precondition(residualWeights.allSatisfy { $0.count == blocks } && linearWeights.count == blocks, "ValueForm: weights need \(blocks) entries")
        self.points = points
        self.blocks = blocks
        self.residualWeights = residualWeights
        self.linearWeights = linearWeights
    }

    /// The terms from values `[B·N]` or `[B·N, K]` (K functions at once, e.g. every basis
    /// function): residual `[N, R]` (or `[N, K, R]`), linear `[N]` (or `[N, K]`).
    public func combine(_ values: Tensor) -> (residual: Tensor, linear: Tensor) {
        let n = points.shape[0] / blocks
        let rest = Array(values.shape.dropFirst())
        let block = (0..<blocks).map { values.slice(($0 * n)..<(($0 + 1) * n), alongAxis: 0) }
        func combination(_ weights: [Double]) -> Tensor {
            var total: Tensor? = nil
            for (b, w) in weights.enumerated() where w != 0 {
                let term = block[b] * w
                total = total.map { $0 + term } ?? term
            }
            return total ?? Tensor.zeros([n] + rest)
        }
        let residual = Tensor.stack(residualWeights.map(combination), alongAxis: -1)
        return (residual, combination(linearWeights))
    }
}

extension ScoreObjective {
    public func valueForm(at x: Tensor, noise: ObjectiveNoise) -> ValueForm? { nil }
    public func directionalForm(noise: ObjectiveNoise) -> DirectionalForm? { nil }
    public func diagonalHessianMethod(noise: ObjectiveNoise) -> DiagonalHessianMethod? { nil }
    public var drawsNoise: Bool { true }
}

extension ScoreObjective {
    /// Evaluates the objective of the model f (a log-density or a score network) on the batch x
    /// with the given draws.
    /// - Parameter createGraph: keep the result differentiable in the model's parameters (training);
    ///   false for evaluation, where no graph outlives the call.
    /// - Throws: `ObjectiveError` for a batch that is not `[N, D]` with N, D ≥ 1, a model output
    ///   that is not `[N]` (a log-density) or `[N, D]` (a score), a model the estimator cannot
    ///   handle, or a non-finite value.
    public func evaluate(_ f: any ScoreFunction, at x: Tensor, noise: ObjectiveNoise,
                         createGraph: Bool = true) throws -> ObjectiveValue {
        guard x.rank == 2, x.shape[0] > 0, x.shape[1] > 0 else { throw ObjectiveError.badBatch(shape: x.shape, expected: "[N, D] with N, D ≥ 1") }
        guard x.isFinite else { throw ObjectiveError.nonFinite(what: "the data batch") }
        let n = x.shape[0]
        let row = x.slice(0..<1, alongAxis: 0)
        if let density = f as? any LogDensityFunction {
            let outputShape = withoutGradients { density.logDensity(row).shape }
            guard outputShape == [1] else { throw ObjectiveError.badModelOutput(shape: outputShape, expected: [1]) }
        } else {
            let outputShape = withoutGradients { f.modelScore(at: row).shape }
            guard outputShape == [1, x.shape[1]] else { throw ObjectiveError.badScoreOutput(shape: outputShape, expected: [1, x.shape[1]]) }
        }
        var terms = try GradientMode.$isRecording.withValue(true) {
            try self.terms(of: f, at: x.detached(), noise: noise, createGraph: createGraph)
        }
        if !createGraph { terms = terms.detached() }
        let perSample = GradientMode.$isRecording.withValue(createGraph) { terms.perSample }
        guard perSample.shape == [n] else { throw ObjectiveError.badModelOutput(shape: perSample.shape, expected: [n]) }
        let value = GradientMode.$isRecording.withValue(createGraph) { perSample.mean() }
        guard value.isFinite else { throw ObjectiveError.nonFinite(what: "the \(name) objective") }
        return ObjectiveValue(value: value, perSample: perSample.detached(), terms: terms)
    }

    /// Evaluates a log-density given as a closure.
    public func evaluate(_ f: @escaping (Tensor) -> Tensor, at x: Tensor, noise: ObjectiveNoise,
                         createGraph: Bool = true) throws -> ObjectiveValue {
        try evaluate(LogDensityClosure(f), at: x, noise: noise, createGraph: createGraph)
    }

    /// Draws noise from `stream`, then evaluates f on x.
    public func evaluate(_ f: any ScoreFunction, at x: Tensor, using stream: RandomStream,
                         createGraph: Bool = true) throws -> ObjectiveValue {
        guard x.rank == 2 else { throw ObjectiveError.badBatch(shape: x.shape, expected: "[N, D]") }
        let noise = drawNoise(points: x.shape[0], dimension: x.shape[1], using: stream)
        return try evaluate(f, at: x, noise: noise, createGraph: createGraph)
    }
}

import Autodiff
import GSLNumerics
import Objectives

/// The closed form for DKEF's α. log p̃ = log q₀ + Σ_m α_m k_m is linear in α, and every objective
/// is per point ½‖rᵢ + cᵢ‖² + tᵢ with r, t linear in log p̃ (`ObjectiveTerms`), so
///
///     J(α) = ½ αᵀ G α + bᵀ α + const,
///     G = (1/N) Σᵢ Rᵢᵀ Rᵢ,   b_m = (1/N) Σᵢ [ (rᵢ[q₀] + cᵢ) · rᵢ[k_m] + tᵢ[k_m] ],
///
/// with rᵢ[f], tᵢ[f] the objective's terms for the function f, and Rᵢ = (rᵢ[k_1] … rᵢ[k_M]).
/// The regularised minimiser is α = −(G + λI)⁻¹ b. G and b come from the objective types
/// themselves (terms of `DKEF.Base` and of `DKEF.Basis` on points repeated M times, with the same
/// draws), so each method's math has one definition. This keeps the cross term
/// (rᵢ[q₀] + cᵢ)·rᵢ[k_m] for every method, CP and Approx BP included (the authors' code drops it
/// for those two; with it, α minimises the method's own objective).
///
/// The system is kept as sums with a count, so batches add up (`+`).
public struct QuadraticSystem {
    /// Σᵢ Rᵢᵀ Rᵢ, `[M, M]`.
    public var gramSum: Tensor
    /// Σᵢ of the b terms, `[M]`.
    public var linearSum: Tensor
    /// Points summed over.
    public var count: Int

    public init(gramSum: Tensor, linearSum: Tensor, count: Int) {
        self.gramSum = gramSum
        self.linearSum = linearSum
        self.count = count
    }

    public var gram: Tensor { gramSum / Double(count) }
    public var linear: Tensor { linearSum / Double(count) }

    public static func + (a: QuadraticSystem, b: QuadraticSystem) -> QuadraticSystem {
        QuadraticSystem(gramSum: a.gramSum + b.gramSum, linearSum: a.linearSum + b.linearSum, count: a.count + b.count)
    }

    /// α = −(G + 10^{logLambda} I)⁻¹ b, differentiable in G, b and log₁₀ λ.
    public func alpha(logLambda: Tensor) -> Tensor {
        let m = gramSum.shape[0]
        var eye = [Double](repeating: 0, count: m * m)
        for i in 0..<m { eye[i * m + i] = 1 }
        let lambda = (logLambda * Foundation_log10).exp()
        return -Tensor.solve(gram + Tensor(shape: [m, m], scalars: eye) * lambda, linear)
    }

    /// The objective's value ½ αᵀGα + bᵀα without its α-independent constant.
    public func value(at alpha: Tensor) -> Tensor {
        let ga = Tensor.matmul(gram, alpha.reshaped([-1, 1])).reshaped([-1])
        return Tensor.dot(alpha, ga) * 0.5 + Tensor.dot(linear, alpha)
    }

    /// The system of `objective` for `model` on the batch x `[N, D]` with the draws `noise`.
    ///
    /// For objectives with a `DirectionalForm` (SM, SSM, SSM-VR, DSM) the basis terms come from
    /// DKEF's forward-mode directional derivatives, once per point for all M basis functions; for
    /// CP and Approx BP the residuals are the exact scores in forward mode, and the traces come
    /// from CP's backward pass with an M axis after one forward pass per point
    /// (`curvaturePropagationBasisTraces`) or as one GEMM per kernel (`approximateBackpropagationTraces`). With `expanded: true` they come from the objective's terms on `DKEF.Basis` with each
    /// point repeated M times (the authors' formulation). Both give the same numbers (tested to
    /// 1e-10; for CP with the same draws).
    /// - Parameter createGraph: keep G and b differentiable in θ (training).
    public static func fit(_ objective: any ScoreObjective, model: DKEF, at x: Tensor, noise: ObjectiveNoise,
                           createGraph: Bool, expanded: Bool = false) throws -> QuadraticSystem {
        let terms = try DensityTerms(objective, model: model, at: x, noise: noise, createGraph: createGraph, expanded: expanded)
        return GradientMode.$isRecording.withValue(createGraph) {
            var linearSum = terms.basis.contracted(with: terms.target)
            if let t = terms.basisLinear { linearSum = linearSum + t.sum(alongAxis: 0) }
            return QuadraticSystem(gramSum: terms.basis.gramSum, linearSum: linearSum, count: x.shape[0])
        }
    }
}

/// An objective's per-point terms for DKEF's density log q₀ + Σ_m α_m k_m as functions of α:
///
///     rᵢ(α) = uᵢ + Σ_m α_m Rᵢ[m],   tᵢ(α) = t⁰ᵢ + Σ_m α_m Tᵢ[m],   ℓᵢ = ½‖rᵢ(α)‖² + tᵢ(α),
///
/// with uᵢ = rᵢ[q₀] + cᵢ (q₀'s residual plus the offset), t⁰ᵢ = tᵢ[q₀], and Rᵢ[m], Tᵢ[m] the
/// terms of basis function k_m (see `QuadraticSystem`), all for one set of draws.
struct DensityTerms {
    /// u `[N, R]`.
    var target: Tensor
    /// t⁰ `[N]`, if the objective has a linear term.
    var baseLinear: Tensor?
    /// R `[N, M, R]`, dense or factored.
    var basis: BasisResidual
    /// T `[N, M]`, if the objective has a linear term.
    var basisLinear: Tensor?

    /// The terms of `objective` at x `[N, D]` with the draws `noise` (see `QuadraticSystem.fit`
    /// for the routes). With `createGraph` they stay differentiable in θ.
    init(_ objective: any ScoreObjective, model: DKEF, at x: Tensor, noise: ObjectiveNoise,
         createGraph: Bool, expanded: Bool = false) throws {
        let (n, m) = (x.shape[0], model.configuration.inducingPoints)
        self = try GradientMode.$isRecording.withValue(true) {
            var base = try objective.terms(of: model.base, at: x.detached(), noise: noise, createGraph: createGraph)
            var basis: BasisResidual, basisLinear: Tensor?                            // residual [N, M, R], linear [N, M]
            if !expanded, let form = objective.directionalForm(noise: noise) {
                let point = form.shift.map { x.detached() + $0 } ?? x.detached()
                // Forward mode needs no graph of x; record one only for parameter gradients.
                (basis, basisLinear) = GradientMode.$isRecording.withValue(createGraph) {
                    let derivatives = model.kernelDirectionalDerivatives(at: point, first: form.first, second: form.curvatureDirections)
                    return (.factored(derivatives.scaled(by: form.firstScale)), form.linearTerm(secondSum: derivatives.secondSum))
                }
            } else if !expanded, let form = objective.valueForm(at: x.detached(), noise: noise) {
                // Values at shifted points (FSM): every basis function's at once, one kernel matrix.
                (basis, basisLinear) = GradientMode.$isRecording.withValue(createGraph) {
                    let (residual, linear) = form.combine(model.kernelMatrix(form.points))     // [N, M, R], [N, M]
                    return (.dense(residual), linear)
                }
            } else if !expanded, let method = objective.diagonalHessianMethod(noise: noise) {
                // ½‖∇k_m‖² + Σ diag-estimate: residual ∇k_m, linear the trace estimate.
                (basis, basisLinear) = GradientMode.$isRecording.withValue(createGraph) {
                    model.basisResidualsAndTraces(at: x.detached(), method: method)
                }
            } else {
                let repeated = withoutGradients { x.detached().expandingShape(at: 1).expanded(to: [n, m, x.shape[1]]).reshaped([n * m, -1]) }
                let terms = try objective.terms(of: model.basis, at: repeated, noise: noise.repeatingPoints(m), createGraph: createGraph)
                basis = .dense(terms.residual.reshaped([n, m, -1]))
                basisLinear = terms.linear?.reshaped([n, m])
            }
            if !createGraph { base = base.detached(); basis = basis.detached(); basisLinear = basisLinear?.detached() }
            let target = GradientMode.$isRecording.withValue(createGraph) { base.offset.map { base.residual + $0 } ?? base.residual }
            return DensityTerms(target: target, baseLinear: base.linear, basis: basis, basisLinear: basisLinear)
        }
    }

    init(target: Tensor, baseLinear: Tensor?, basis: BasisResidual, basisLinear: Tensor?) {
        self.target = target
        self.baseLinear = baseLinear
        self.basis = basis
        self.basisLinear = basisLinear
    }
}

/// The residuals of the M basis functions at N points, `[N, M, R]`: a tensor, or DKEF's factored
/// first derivatives.
enum BasisResidual {
    case dense(Tensor)
    case factored(DKEF.KernelDirectionalDerivatives)

    func detached() -> BasisResidual {
        switch self {
        case let .dense(r): .dense(r.detached())
        case let .factored(f): .factored(f.detached())
        }
    }

    /// Σₙ Rₙ Rₙᵀ, `[M, M]`: one symmetric rank-k update over the rows [M, N·R] of the residual.
    /// For factored residuals Rₙ = CₙEₙᵀ: Σₙ Cₙ(EₙᵀEₙ)Cₙᵀ as one GEMM over [M, N·Q] (cost
    /// independent of R) when that is cheaper (`prefersFactoredGram`), the rank-k update of the
    /// stacked Rₙᵀ = EₙCₙᵀ (`stackedGramSum`) for many directions (`prefersStackedGram`), else the
    /// dense form `dense(f.first).gramSum`, which is also the tests' oracle for both.
    var gramSum: Tensor {
        switch self {
        case let .factored(f) where f.prefersFactoredGram:
            return f.factoredGramSum
        case let .factored(f) where f.prefersStackedGram:
            return f.stackedGramSum
        case let .factored(f):
            return Self.dense(f.first).gramSum
        case let .dense(r):
            return Tensor.gram(r.permuted([1, 0, 2]).reshaped([r.shape[1], -1]))          // rows [M, N·R]
        }
    }

    /// Σₙ Rₙ tₙ for targets t `[N, R]`, `[M]`.
    func contracted(with target: Tensor) -> Tensor {
        switch self {
        case let .dense(r): (r * target.expandingShape(at: 1)).sum(alongAxes: [0, 2])
        case let .factored(f): f.contracted(with: target)
        }
    }
}

extension DKEF.KernelDirectionalDerivatives {
    /// Whether G = Σₙ Cₙ(EₙᵀEₙ)Cₙᵀ takes fewer multiply-adds than forming Rₙ = CₙEₙᵀ and its
    /// symmetric rank-k update: per point 2Q²R + 2MQ² + 2M²Q against 2MQR + M²R (M inducing
    /// points, Q = Σ_j (1 + H), R directions). At M = 200, H = 30 (Q = 93) the factored form wins
    /// from R ≈ 180 on.
    var prefersFactoredGram: Bool {
        let (m, q, r) = (scales[0].shape[1], featureCount, directionCount)
        return 2 * q * q * r + 2 * m * q * q + 2 * m * m * q < 2 * m * q * r + m * m * r
    }

    /// Whether the stacked form beats the dense one: both do the same GEMM work, but the dense
    /// form makes about six elementwise passes over N × M × R values (the per-kernel scaling,
    /// the sum over kernels, the permute) where the stacked one makes two over N × M × Q (forming
    /// C); so stacked from R > Q/3 directions on (31 at Q = 93: DSM, SM, SSM-VR, CP and Approx BP
    /// at D = 50 and 100, not SSM's one projection or D ≤ 20).
    var prefersStackedGram: Bool { 3 * directionCount > featureCount }

    /// Σₙ RₙRₙᵀ, `[M, M]`, as XᵀX for X `[N·R, M]` the residuals Rₙᵀ = EₙCₙᵀ stacked: one GEMM
    /// `[R, Q] × [Q, M]` per point, written where the symmetric rank-k update reads it, so
    /// nothing of size N × M × R is formed elementwise or permuted.
    var stackedGramSum: Tensor {
        let (c, e) = factors
        return Tensor.gram(Tensor.matmul(e, c, transposeB: true).reshaped([-1, c.shape[1]]), transposed: true)
    }

    /// Σₙ Cₙ(EₙᵀEₙ)Cₙᵀ, `[M, M]`, as one GEMM over [M, N·Q].
    var factoredGramSum: Tensor {
        let (c, e) = factors
        let m = c.shape[1]
        let projected = Tensor.matmul(c, Tensor.matmul(e, e, transposeA: true))             // Cₙ EₙᵀEₙ, [N, M, Q]
        return Tensor.matmul(projected.permuted([1, 0, 2]).reshaped([m, -1]), c.permuted([1, 0, 2]).reshaped([m, -1]), transposeB: true)
    }
}

import Autodiff
import Objectives

/// A deterministic objective (no draws: exact SM, Approx BP) on a fixed set of points as a
/// function of α alone, from `DensityTerms` computed once: finalisation trains only log λ, so each
/// of its steps needs the objective of a fixed model at a new α on a batch of these points:
///
///     J_B(α) = (1/|B|) Σ_{i∈B} ½‖uᵢ + Rᵢᵀα‖² + t⁰ᵢ + Tᵢ·α,
///
/// one product with the batch's [|B|·R, M] block instead of the model's forward and derivative
/// passes. Equal to `ScoreObjective.evaluate` on the density up to rounding (tested).
public struct FixedModelObjective {
    /// u `[N, R]`, t⁰ `[N]` (zeros without a linear term), Rᵢᵀ `[N, R, M]`, T `[N, M]` (zeros without).
    let target: Tensor, baseLinear: Tensor, basis: Tensor, basisLinear: Tensor

    /// The terms of `objective` (which must draw nothing) for `model` at x `[N, D]`, computed in
    /// chunks of `chunk` points.
    public init(_ objective: any ScoreObjective, model: DKEF, at x: Tensor, chunk: Int = 100) throws {
        precondition(!objective.drawsNoise, "FixedModelObjective: \(objective.name) draws noise; its terms change with every batch")
        var targets: [Tensor] = [], bases: [Tensor] = [], basisTerms: [Tensor] = [], linears: [Tensor] = []
        let n = x.shape[0], m = model.configuration.inducingPoints
        for start in stride(from: 0, to: n, by: chunk) {
            let part = x.slice(start..<min(start + chunk, n), alongAxis: 0), rows = part.shape[0]
            let terms = try DensityTerms(objective, model: model, at: part, noise: .none, createGraph: false)
            try withoutGradients {
                let residual: Tensor
                switch terms.basis {
                case let .dense(r): residual = r
                case let .factored(f): residual = f.first
                }
                guard residual.shape[0] == rows, residual.shape[1] == m else {
                    throw ObjectiveError.badModelOutput(shape: residual.shape, expected: [rows, m, -1])
                }
                targets.append(terms.target)
                bases.append(terms.baseLinear ?? Tensor.zeros([rows]))
                basisTerms.append(residual.permuted([0, 2, 1]))
                linears.append(terms.basisLinear ?? Tensor.zeros([rows, m]))
            }
        }
        (target, baseLinear, basis, basisLinear) = withoutGradients {
            (Tensor.concatenate(targets, alongAxis: 0), Tensor.concatenate(bases, alongAxis: 0),
             Tensor.concatenate(basisTerms, alongAxis: 0), Tensor.concatenate(linears, alongAxis: 0))
        }
    }

    /// J_B(α) for the points at `rows` (a rank-0 tensor, differentiable in α `[M]`).
    public func value(alpha: Tensor, rows: [Int]) -> Tensor {
        let (r, m) = (basis.shape[1], basis.shape[2])
        let (u, t0, block, t) = withoutGradients { (target.rows(rows), baseLinear.rows(rows), basis.rows(rows), basisLinear.rows(rows)) }
        let residual = u + Tensor.matrixVectorProduct(block.reshaped([rows.count * r, m]), alpha).reshaped([rows.count, r])
        let perPoint = residual.square().sum(alongAxis: 1) * 0.5 + t0 + Tensor.matrixVectorProduct(t, alpha)
        return perPoint.mean()
    }

}

import Autodiff
import Foundation

/// How far samples are from a target, two ways (both V-statistics' unbiased U-forms, so their
/// expectation is exactly 0 when the samples are the target's and they can come out negative).

/// The kernel Stein discrepancy KSD² of samples x `[n, D]` from the density whose score at them
/// is s `[n, D]` (the target's exact score: no target samples needed), with the inverse
/// multiquadric kernel k(x, y) = (c² + ‖x − y‖²)^β, β = −½ (Gorham & Mackey 2017):
///
///     KSD² = 1/(n(n−1)) Σ_{i≠j} k_p(xᵢ, xⱼ),
///     k_p(x, y) = s(x)ᵀs(y) k + s(x)ᵀ∇_y k + s(y)ᵀ∇_x k + tr ∇_x∇_y k,
///
/// with r = x − y, u = c² + ‖r‖²: ∇_x k = 2β u^{β−1} r = −∇_y k and
/// tr ∇_x∇_y k = −2βD u^{β−1} − 4β(β−1) u^{β−2} ‖r‖². E_p[k_p(x, y)] = 0 for independent x, y ~ p,
/// and KSD² > 0 for any other law (for this kernel, Gorham & Mackey's theorem 8).
public func kernelSteinDiscrepancy(samples x: Tensor, score s: Tensor, c: Double = 1, beta: Double = -0.5) -> Double {
    precondition(x.rank == 2 && s.shape == x.shape && x.shape[0] >= 2, "kernelSteinDiscrepancy: x and s must be [n ≥ 2, D] alike")
    let (n, d) = (x.shape[0], x.shape[1])
    let (xs, ss) = (x.scalars, s.scalars)
    var total = 0.0
    for i in 0..<n {
        for j in (i + 1)..<n {
            var r2 = 0.0, ssDot = 0.0, sxR = 0.0, syR = 0.0
            for k in 0..<d {
                let r = xs[i * d + k] - xs[j * d + k]
                r2 += r * r
                ssDot += ss[i * d + k] * ss[j * d + k]
                sxR += ss[i * d + k] * r
                syR += ss[j * d + k] * r
            }
            let u = c * c + r2
            let kernel = Foundation.pow(u, beta)
            let g = 2 * beta * Foundation.pow(u, beta - 1)  // ∇_x k = g r, ∇_y k = −g r
            let trace = -2 * beta * Double(d) * Foundation.pow(u, beta - 1) - 4 * beta * (beta - 1) * Foundation.pow(u, beta - 2) * r2
            total += ssDot * kernel - g * sxR + g * syR + trace  // k_p is symmetric: each pair once
        }
    }
    return 2 * total / Double(n * (n - 1))
}

/// The unbiased squared maximum mean discrepancy between samples x `[m, D]` and y `[n, D]` with a
/// Gaussian kernel k(a, b) = exp(−‖a − b‖²/(2ℓ²)):
///
///     MMD²ᵤ = Σ_{i≠j} k(xᵢ, xⱼ)/(m(m−1)) + Σ_{i≠j} k(yᵢ, yⱼ)/(n(n−1)) − 2 Σ_{i,j} k(xᵢ, yⱼ)/(mn),
///
/// ℓ by the median heuristic (the median distance between distinct points of x ∪ y) unless given.
/// Returns MMD² and ℓ.
public func maximumMeanDiscrepancy(_ x: Tensor, _ y: Tensor, bandwidth: Double? = nil) -> (mmdSquared: Double, bandwidth: Double) {
    precondition(x.rank == 2 && y.rank == 2 && x.shape[1] == y.shape[1] && x.shape[0] >= 2 && y.shape[0] >= 2,
                 "maximumMeanDiscrepancy: x and y must be [≥ 2, D] with the same D")
    let (m, n) = (x.shape[0], y.shape[0])
    let pooled = Tensor.concatenate([x, y], alongAxis: 0)
    let distances = squaredDistances(pooled, pooled)
    let ell = bandwidth ?? {
        var off: [Double] = []
        off.reserveCapacity((m + n) * (m + n - 1) / 2)
        for i in 0..<(m + n) { for j in (i + 1)..<(m + n) { off.append(distances[i * (m + n) + j]) } }
        off.sort()
        let mid = off.count / 2
        let median2 = off.count % 2 == 1 ? off[mid] : (off[mid - 1] + off[mid]) / 2
        return median2.squareRoot()
    }()
    precondition(ell > 0, "maximumMeanDiscrepancy: bandwidth 0 (all points equal)")
    let scale = -1 / (2 * ell * ell)
    var xx = 0.0, yy = 0.0, xy = 0.0
    let size = m + n
    for i in 0..<size {
        for j in 0..<size where j != i {
            let k = Foundation.exp(distances[i * size + j] * scale)
            switch (i < m, j < m) {
            case (true, true): xx += k
            case (false, false): yy += k
            case (true, false): xy += k
            case (false, true): break  // each x–y pair once
            }
        }
    }
    return (xx / Double(m * (m - 1)) + yy / Double(n * (n - 1)) - 2 * xy / Double(m * n), ell)
}

/// ‖aᵢ − bⱼ‖² for rows of a `[p, D]` and b `[q, D]`, row-major `[p·q]`, computed directly (no
/// ‖a‖² + ‖b‖² − 2aᵀb cancellation).
func squaredDistances(_ a: Tensor, _ b: Tensor) -> [Double] {
    let (p, q, d) = (a.shape[0], b.shape[0], a.shape[1])
    let (xs, ys) = (a.scalars, b.scalars)
    var out = [Double](repeating: 0, count: p * q)
    for i in 0..<p {
        for j in 0..<q {
            var sum = 0.0
            for k in 0..<d { let r = xs[i * d + k] - ys[j * d + k]; sum += r * r }
            out[i * q + j] = sum
        }
    }
    return out
}

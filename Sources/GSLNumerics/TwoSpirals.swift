import Autodiff
import CGSL
import Foundation

/// toy_gradlogp's two spirals: an arm a = ±1 with probability ½ each, a position n = 3π√u along
/// it (u uniform, so n has density f(n) = 2n/(3π)² on [0, 3π]), a uniform offset U ∈ [0, 1]², and
/// a Gaussian blur:
///
///     X = a (c(n) + U/2) / k + s Z,   c(n) = (−n cos n, n sin n),   k = 3, s = 0.1.
///
/// Given a and n the coordinates are independent: a xᵢ − cᵢ(n)/k is the sum of a uniform on
/// [0, w], w = 1/(2k), and N(0, s²), whose density is g(t) = (Φ(t/s) − Φ((t − w)/s)) / w. So
///
///     p(x) = ½ Σₐ ∫₀^{3π} f(n) g(a x₁ − c₁(n)/k) g(a x₂ − c₂(n)/k) dn,
///     ∇ₓ p(x) = ½ Σₐ ∫₀^{3π} f(n) a (g′(t₁) g(t₂), g(t₁) g′(t₂)) dn,
///
/// one-dimensional integrals, computed here on 240 equal pieces of [0, 3π] by a 20-point
/// Gauss–Legendre rule (GSL's nodes) checked against the rule on the two halves and halved until
/// they agree to 1e-11 relative, all three integrands at once; pieces more than 12 s farther
/// from x than the nearest piece are skipped (their share is below e⁻⁴⁰ of p), and every factor
/// is taken in log space (so points far from the arms, where p underflows, still get a score).
/// The score is ∇p / p; it agrees with a run on 960 pieces with no skipping and a 1e-12
/// tolerance to 1e-9 relative (tested), the accuracy this suite claims for the reference.
public struct TwoSpirals: ReferenceDistribution, Sendable {
    /// k: the arms are c(n)/k.
    public let divisor: Double
    /// s, the Gaussian blur.
    public let blur: Double
    public var dimension: Int { 2 }
    /// Equal pieces of [0, 3π] integrated one by one, and the skip margin in units of s.
    public var pieces = 240
    public var skipMargin = 12.0
    /// The relative tolerance per piece.
    public var tolerance = 1e-11

    /// toy_gradlogp's spirals: k = 3, s = 0.1.
    public static let toy = TwoSpirals(divisor: 3, blur: 0.1)

    public init(divisor: Double, blur: Double) {
        precondition(divisor > 0 && blur > 0)
        self.divisor = divisor
        self.blur = blur
    }

    static let length = 3 * Double.pi

    public func sample(_ count: Int, using stream: RandomStream) -> Tensor {
        var values: [Double] = []
        values.reserveCapacity(2 * count)
        for i in 0..<count {
            let n = (stream.uniform()).squareRoot() * 3 * Double.pi
            let arm = i % 2 == 0 ? 1.0 : -1.0
            let u1 = stream.uniform(), u2 = stream.uniform()
            values.append(arm * (-cos(n) * n + 0.5 * u1) / divisor + blur * stream.normal())
            values.append(arm * (sin(n) * n + 0.5 * u2) / divisor + blur * stream.normal())
        }
        return Tensor(shape: [count, 2], scalars: values)
    }

    /// The law of c·X: arms c times larger (k/c), blur c·s.
    public func widened(by factor: Double) throws -> any ReferenceDistribution {
        try checkWidening(factor)
        return TwoSpirals(divisor: divisor / factor, blur: blur * factor)
    }

    public func logDensity(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "logDensity")
        return Tensor(try (0..<x.shape[0]).map { try integrals(x.scalars[2 * $0], x.scalars[2 * $0 + 1]).logDensity })
    }

    public func score(_ x: Tensor) throws -> Tensor {
        try checkRows(x, "score")
        var out: [Double] = []
        out.reserveCapacity(x.count)
        for row in 0..<x.shape[0] {
            let r = try integrals(x.scalars[2 * row], x.scalars[2 * row + 1])
            out += [r.gradient.0 / r.density, r.gradient.1 / r.density]
        }
        return Tensor(shape: x.shape, scalars: out)
    }

    // MARK: The integrals

    /// What the integrand needs: the point as seen from arm a (a·x), the constants, and the log
    /// shift (p is computed as e^shift times the integral of e^{log integrand − shift}).
    struct Integrand {
        var y1: Double, y2: Double
        var divisor: Double, width: Double, blur: Double
        var shift: Double

        /// log g(t) and g′(t)/g(t). g is symmetric about w/2 (g(t) = g(w − t), g′(t) = −g′(w − t)),
        /// so t is first folded to t ≤ w/2, where both normal tails are upper tails Q(A) > Q(B) with
        /// A = −t/s < B = (w − t)/s: log g = log(Q(A) − Q(B)) − log w, g′/g = (φ(A) − φ(B)) / (s (Q(A) − Q(B))).
        @inline(__always)
        func logG(_ t: Double) -> (log: Double, ratio: Double) {
            let folded = t <= width / 2
            let u = folded ? t : width - t
            let a = -u / blur, b = (width - u) / blur
            let logQA = gsl_sf_log_erfc(a / 2.0.squareRoot()) - Foundation.log(2.0)
            let logQB = gsl_sf_log_erfc(b / 2.0.squareRoot()) - Foundation.log(2.0)
            let logDifference = logQA + Foundation.log1p(-Foundation.exp(logQB - logQA))
            let logPhiA = -0.5 * a * a - 0.5 * Foundation.log(2 * Double.pi)
            let phiRatio = -Foundation.expm1(-0.5 * (b * b - a * a))  // 1 − φ(B)/φ(A)
            let ratio = Foundation.exp(logPhiA - logDifference) * phiRatio / blur
            return (logDifference - Foundation.log(width), folded ? ratio : -ratio)
        }

        /// The three integrands at n: f g₁ g₂ (for p) and f g₁′ g₂, f g₁ g₂′ (for ∇p, without a).
        @inline(__always)
        func callAsFunction(_ n: Double) -> SIMD3<Double> {
            let c1 = -n * Foundation.cos(n) / divisor, c2 = n * Foundation.sin(n) / divisor
            let g1 = logG(y1 - c1), g2 = logG(y2 - c2)
            let value = 2 * n / (TwoSpirals.length * TwoSpirals.length) * Foundation.exp(g1.log + g2.log - shift)
            return SIMD3(value, value * g1.ratio, value * g2.ratio)
        }

        /// The 20-point Gauss–Legendre rule on [a, b].
        func rule(_ a: Double, _ b: Double) -> SIMD3<Double> {
            let half = (b - a) / 2, centre = (a + b) / 2
            var sum = SIMD3<Double>(repeating: 0)
            for (node, weight) in zip(TwoSpirals.nodes, TwoSpirals.weights) { sum += weight * self(centre + half * node) }
            return half * sum
        }

        /// The rule on [a, b] against the rule on its two halves; accepted when they agree to
        /// `tolerance` relative (the gradient parts relative to p's part over s, their natural
        /// scale), else each half again, at most `depth` times. Returns the integrals and whether
        /// every part was accepted.
        func adaptive(_ a: Double, _ b: Double, whole: SIMD3<Double>, tolerance: Double, depth: Int) -> (SIMD3<Double>, Bool) {
            let middle = (a + b) / 2
            let left = rule(a, middle), right = rule(middle, b), halves = left + right
            let d = halves - whole
            let scale = Swift.max(Swift.abs(halves.x), Swift.max(Swift.abs(halves.y), Swift.abs(halves.z)) * blur)
            if Swift.max(Swift.abs(d.x), Swift.max(Swift.abs(d.y), Swift.abs(d.z)) * blur) <= tolerance * scale { return (halves, true) }
            guard depth > 0 else { return (halves, false) }
            let (l, lok) = adaptive(a, middle, whole: left, tolerance: tolerance, depth: depth - 1)
            let (r, rok) = adaptive(middle, b, whole: right, tolerance: tolerance, depth: depth - 1)
            return (l + r, lok && rok)
        }
    }

    /// Gauss–Legendre nodes and weights on [−1, 1], 20 points (GSL's table).
    static let (nodes, weights): ([Double], [Double]) = {
        let table = gsl_integration_glfixed_table_alloc(20)!
        defer { gsl_integration_glfixed_table_free(table) }
        var nodes: [Double] = [], weights: [Double] = []
        for i in 0..<20 {
            var x = 0.0, w = 0.0
            gsl_integration_glfixed_point(-1, 1, i, &x, &w, table)
            nodes.append(x)
            weights.append(w)
        }
        return (nodes, weights)
    }()

    /// log p(x), p(x) and ∇p(x), the last two scaled by the same e^{−shift} (only their ratio and
    /// log p are meaningful on their own).
    func integrals(_ x1: Double, _ x2: Double) throws -> (logDensity: Double, density: Double, gradient: (Double, Double)) {
        // A non-finite point (a diverged chain, say) gets NaN, as the closed-form references give.
        guard x1.isFinite && x2.isFinite else { return (.nan, .nan, (.nan, .nan)) }
        let width = 1 / (2 * divisor), step = TwoSpirals.length / Double(pieces)
        // Lower bounds on the distance from a·x to each piece's set {c(n)/k + [0, w]²}: the
        // distance to the piece's centre point less the piece's radius (|c′(n)| = √(1 + n²)).
        var bounds: [(arm: Double, piece: Int, distance: Double)] = []
        for arm in [1.0, -1.0] {
            let y1 = arm * x1, y2 = arm * x2
            for k in 0..<pieces {
                let mid = (Double(k) + 0.5) * step, end = Double(k + 1) * step
                let p1 = -mid * Foundation.cos(mid) / divisor + width / 2, p2 = mid * Foundation.sin(mid) / divisor + width / 2
                let radius = (1 + end * end).squareRoot() / divisor * step / 2 + width / 2.0.squareRoot()
                bounds.append((arm, k, Swift.max(0, ((y1 - p1) * (y1 - p1) + (y2 - p2) * (y2 - p2)).squareRoot() - radius)))
            }
        }
        let nearest = bounds.map(\.distance).min()!
        let shift = -(nearest * nearest) / (2 * blur * blur)
        var total = SIMD3<Double>(repeating: 0)
        for piece in bounds where piece.distance <= nearest + skipMargin * blur {
            let integrand = Integrand(y1: piece.arm * x1, y2: piece.arm * x2, divisor: divisor, width: width, blur: blur, shift: shift)
            let a = Double(piece.piece) * step, b = Double(piece.piece + 1) * step
            let (value, converged) = integrand.adaptive(a, b, whole: integrand.rule(a, b), tolerance: tolerance, depth: 12)
            guard converged else {
                throw GSLError.invalidArgument("2spirals: the quadrature at (\(x1), \(x2)) did not reach \(tolerance) on [\(a), \(b)]")
            }
            total += SIMD3(1, piece.arm, piece.arm) * value
        }
        let density = total.x / 2
        guard density > 0, density.isFinite else {
            throw GSLError.invalidArgument("2spirals: the density at (\(x1), \(x2)) underflows even after rescaling")
        }
        return (Foundation.log(density) + shift, density, (total.y / 2, total.z / 2))
    }
}

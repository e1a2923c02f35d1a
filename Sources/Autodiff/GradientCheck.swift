import Foundation

/// Checks of reverse-mode derivatives against central finite differences, at any order.
///
/// For a tensor function f(x₁, …, x_p) and fixed weight tensors, define scalars
///   L₁(x) = Σ w ⊙ (f(x)³/3 + f(x))                 (cubic, so third derivatives are nonzero)
///   L_{k+1}(x) = Σᵢ Σ uᵢ⁽ᵏ⁾ ⊙ ∂L_k/∂xᵢ              (∂L_k/∂xᵢ taken by autodiff with createGraph)
/// Order k compares ∇L_k by autodiff with central differences of L_k:
///   ∂L/∂x_j ≈ (L(x + h e_j) − L(x − h e_j)) / 2h,
/// so order k tests the k-th derivatives of every op in f (L_k's value uses order k−1, which the
/// check one order lower has established).
public struct GradientCheck {
    /// Per input: largest |autodiff − finite difference| and that error relative to
    /// max(1, largest |finite difference|).
    public struct Report: CustomStringConvertible {
        public var order: Int
        public var maxAbsoluteError: [Double]
        public var relativeError: [Double]
        public var worstRelativeError: Double { relativeError.max() ?? 0 }
        public var description: String {
            "order \(order): relative error per input \(relativeError.map { String(format: "%.2e", $0) })"
        }
    }

    public var step: Double = 1e-5

    public init(step: Double = 1e-5) { self.step = step }

    /// Compares order-`order` derivatives of `function` at `inputs`; `weights` supplies
    /// deterministic weight tensors of a requested shape (e.g. from a seeded generator).
    public func check(order: Int, at inputs: [Tensor], weights: (_ shape: [Int]) -> Tensor,
                      _ function: ([Tensor]) -> Tensor) -> Report {
        precondition(order >= 1, "GradientCheck: order must be ≥ 1")
        let output = withoutGradients { function(inputs) }
        let w = weights(output.shape)
        let u = (1..<Swift.max(order, 1)).map { _ in inputs.map { weights($0.shape) } }

        func objective(_ xs: [Tensor], order k: Int, createGraph: Bool) -> Tensor {
            if k == 1 {
                let y = function(xs)
                return (w * (y * y * y / 3 + y)).sum()
            }
            let inner = objective(xs, order: k - 1, createGraph: true)
            let g = gradients(of: inner, with: xs, createGraph: createGraph)
            return zip(u[k - 2], g).map { ($0 * $1).sum() }.reduce(Tensor(0), +)
        }

        let variables = inputs.map { $0.requiringGradient() }
        let analytic = gradients(of: objective(variables, order: order, createGraph: true), with: variables)

        var absolute: [Double] = [], relative: [Double] = []
        for (i, input) in inputs.enumerated() {
            var numeric = [Double](repeating: 0, count: input.count)
            for j in 0..<input.count {
                func value(shiftedBy delta: Double) -> Double {
                    var shifted = input.scalars
                    shifted[j] += delta
                    var xs = inputs
                    xs[i] = Tensor(shape: input.shape, scalars: shifted)
                    return objective(xs.map { $0.requiringGradient() }, order: order, createGraph: false).scalar
                }
                numeric[j] = (value(shiftedBy: step) - value(shiftedBy: -step)) / (2 * step)
            }
            let error = zip(analytic[i].scalars, numeric).map { Swift.abs($0 - $1) }.max() ?? 0
            let scale = Swift.max(1, numeric.map(Swift.abs).max() ?? 0)
            absolute.append(error)
            relative.append(error / scale)
        }
        return Report(order: order, maxAbsoluteError: absolute, relativeError: relative)
    }
}

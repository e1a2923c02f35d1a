import Autodiff
import CVectorMath
import Foundation

/// Adam (Kingma & Ba 2015), as in PyTorch's default form:
///
///     m ← β₁ m + (1−β₁) g,  v ← β₂ v + (1−β₂) g²,
///     θ ← θ − lr · (m / (1−β₁ᵗ)) / (√(v / (1−β₂ᵗ)) + ε).
///
/// A value: `step` returns the new parameters as fresh graph leaves.
public struct Adam {
    public var learningRate: Double
    public var beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8
    public private(set) var stepCount = 0
    private var m: [[Double]] = [], v: [[Double]] = []

    public init(learningRate: Double) { self.learningRate = learningRate }

    public mutating func step(_ parameters: [Tensor], gradients: [Tensor]) -> [Tensor] {
        precondition(parameters.count == gradients.count, "Adam: \(parameters.count) parameters, \(gradients.count) gradients")
        if m.isEmpty {
            m = parameters.map { [Double](repeating: 0, count: $0.count) }
            v = m
        }
        stepCount += 1
        let c1 = 1 - Foundation.pow(beta1, Double(stepCount)), c2 = 1 - Foundation.pow(beta2, Double(stepCount))
        let (beta1, beta2, epsilon, learningRate) = (beta1, beta2, epsilon, learningRate)
        return parameters.indices.map { k in
            precondition(gradients[k].count == parameters[k].count,
                         "Adam: parameter \(k) has \(parameters[k].count) entries, its gradient \(gradients[k].count)")
            var theta = parameters[k].scalars
            // One vectorised pass (CVectorMath): the formula above with each operation rounded
            // once in its written order, so the result is the scalar loop's to the last bit (tested).
            gradients[k].scalars.withUnsafeBufferPointer { g in
                m[k].withUnsafeMutableBufferPointer { m in
                    v[k].withUnsafeMutableBufferPointer { v in
                        theta.withUnsafeMutableBufferPointer { theta in
                            guard theta.count > 0 else { return }
                            ssm_adam_update(theta.baseAddress!, m.baseAddress!, v.baseAddress!, g.baseAddress!, theta.count,
                                            beta1, beta2, learningRate, c1, c2, epsilon)
                        }
                    }
                }
            }
            return Tensor(shape: parameters[k].shape, scalars: theta).requiringGradient()
        }
    }
}

/// Scales gradients so that their joint Euclidean norm is at most `maxNorm`
/// (PyTorch's clip_grad_norm_); returns them and the norm before clipping.
public func clipByGlobalNorm(_ gradients: [Tensor], maxNorm: Double) -> (gradients: [Tensor], norm: Double) {
    let norm = gradients.map { $0.scalars.reduce(0) { $0 + $1 * $1 } }.reduce(0, +).squareRoot()
    guard norm > maxNorm else { return (gradients, norm) }
    let scale = maxNorm / (norm + 1e-6)
    return (gradients.map { g in withoutGradients { g.detached() * scale } }, norm)
}

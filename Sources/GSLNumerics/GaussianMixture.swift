import Autodiff
import CGSL
import Foundation

/// A Gaussian mixture p(x) = Σₖ πₖ N(x; μₖ, Σₖ).
///
/// log p(x) = log Σₖ exp(log πₖ + log Nₖ(x)) (log-sum-exp), and
/// ∇ₓ log p(x) = Σₖ rₖ(x) ∇ₓ log Nₖ(x), with responsibilities rₖ(x) = πₖ Nₖ(x) / p(x).
public final class GaussianMixture: ReferenceDistribution {
    public let weights: [Double]
    public let components: [MultivariateNormal]
    public var dimension: Int { components[0].dimension }
    private let discrete: OpaquePointer

    /// - Throws: `GSLError.invalidArgument` unless the weights are positive, finite, as many as the
    ///   components, and the components share one dimension. Weights are normalised to sum to 1.
    public init(weights: [Double], components: [MultivariateNormal]) throws {
        ensureGSLErrorsReturn()
        guard !components.isEmpty, weights.count == components.count else {
            throw GSLError.invalidArgument("GaussianMixture: \(weights.count) weights for \(components.count) components")
        }
        guard weights.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw GSLError.invalidArgument("GaussianMixture: weights must be positive and finite, are \(weights)")
        }
        guard components.allSatisfy({ $0.dimension == components[0].dimension }) else {
            throw GSLError.invalidArgument("GaussianMixture: components have different dimensions \(components.map(\.dimension))")
        }
        let total = weights.reduce(0, +)
        self.weights = weights.map { $0 / total }
        self.components = components
        discrete = OpaquePointer(gsl_ran_discrete_preproc(weights.count, self.weights)!)
    }

    /// Every component widened about its own mean, N(μₖ, c² Σₖ), with the same weights: not the
    /// law of c·X, but the mixture's modes kept where they are, each covered c times wider.
    public func widened(by factor: Double) throws -> any ReferenceDistribution {
        try checkWidening(factor)
        return try GaussianMixture(weights: weights, components: components.map { try $0.widenedNormal(by: factor) })
    }

    deinit { gsl_ran_discrete_free(UnsafeMutablePointer(discrete)) }

    /// log πₖ + log Nₖ(x), `[N, K]`.
    private func jointLogDensities(_ x: Tensor) throws -> Tensor {
        let columns = try zip(weights, components).map { w, c in try c.logDensity(x) + Foundation.log(w) }
        return Tensor.stack(columns, alongAxis: 1)
    }

    public func logDensity(_ x: Tensor) throws -> Tensor {
        try withoutGradients { try jointLogDensities(x).logSumExp(alongAxis: 1) }
    }

    public func score(_ x: Tensor) throws -> Tensor {
        try withoutGradients {
            let responsibilities = try jointLogDensities(x).softmax(alongAxis: 1)  // [N, K]
            var total = Tensor.zeros(x.shape)
            for (k, component) in components.enumerated() {
                total = total + responsibilities.slice(k..<(k + 1), alongAxis: 1) * (try component.score(x))
            }
            return total
        }
    }

    public func sample(_ count: Int, using stream: RandomStream) -> Tensor {
        let rows = (0..<count).map { _ in
            components[Int(gsl_ran_discrete(stream.pointer, UnsafePointer(discrete)))].sample(1, using: stream)
        }
        return count == 0 ? Tensor.zeros([0, dimension]) : Tensor.concatenate(rows, alongAxis: 0)
    }
}

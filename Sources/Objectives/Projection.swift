import Autodiff
import Foundation
import GSLNumerics

/// The law of the random projection directions v of sliced score matching and Hutchinson's trace
/// estimator. Each has E[v vᵀ] = I, which makes E[vᵀ A v] = tr A and E[(vᵀ s)²] = ‖s‖²
/// (the sliced objectives are unbiased for the exact one).
public enum Projection: String, CaseIterable, Sendable {
    /// vᵢ = ±1 with probability ½ each (the authors' default; least variance of the three for vᵀAv).
    case rademacher
    /// v ~ N(0, I).
    case gaussian
    /// v uniform on the sphere of radius √D.
    case sphere

    /// Parses a name, or throws `ObjectiveError.unknownProjection` listing the valid ones.
    public init(named name: String) throws {
        guard let p = Projection(rawValue: name) else { throw ObjectiveError.unknownProjection(name) }
        self = p
    }

    /// `count` independent directions for each of N points in D dimensions: `[count, N, D]`.
    public func draw(count: Int, points: Int, dimension: Int, using stream: RandomStream) -> Tensor {
        let shape = [count, points, dimension]
        switch self {
        case .rademacher: return stream.rademacher(shape: shape)
        case .gaussian: return stream.normal(shape: shape)
        case .sphere:
            let g = stream.normal(shape: shape)
            return withoutGradients { g / (g.square().sum(alongAxis: 2, keepingDimensions: true) / Double(dimension)).sqrt() }
        }
    }
}

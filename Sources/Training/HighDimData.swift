import Autodiff
import GSLNumerics

/// The `HighDim` data: i.i.d. N(0, I_D) train, validation and test sets from one seeded stream.
public struct HighDimData {
    public let train: Tensor, validation: Tensor, test: Tensor
    /// N(0, I_D), with no D × D matrix (the same draws and densities as the dense form; tested).
    public let reference: IsotropicNormal

    public init(dimension: Int, settings: ProtocolSettings, using stream: RandomStream) throws {
        reference = try IsotropicNormal(dimension: dimension)
        train = reference.sample(settings.trainCount, using: stream)
        validation = reference.sample(settings.validationCount, using: stream)
        test = reference.sample(settings.testCount, using: stream)
    }
}

extension Tensor {
    /// Rows at the given indices, `[indices.count, D]`.
    public func rows(_ indices: some Collection<Int>) -> Tensor {
        let d = shape[1]
        var out = [Double]()
        out.reserveCapacity(indices.count * d)
        for i in indices { out.append(contentsOf: scalars[(i * d)..<((i + 1) * d)]) }
        return Tensor(shape: [indices.count, d], scalars: out)
    }
}

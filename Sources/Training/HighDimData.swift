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

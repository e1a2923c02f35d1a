import Autodiff
import GSLNumerics

/// The `HighDim` data: i.i.d. train, validation and test sets from one seeded stream, drawn from
/// a target distribution (the authors': N(0, I_D)).
public struct HighDimData {
    public let train: Tensor, validation: Tensor, test: Tensor
    /// The distribution the data come from: its exact score and log density are the evaluation's
    /// reference.
    public let reference: any ReferenceDistribution

    /// Draws the three sets from `reference`, in that order.
    public init(reference: any ReferenceDistribution, settings: ProtocolSettings, using stream: RandomStream) {
        self.reference = reference
        train = reference.sample(settings.trainCount, using: stream)
        validation = reference.sample(settings.validationCount, using: stream)
        test = reference.sample(settings.testCount, using: stream)
    }

    /// The authors' data: N(0, I_D), with no D × D matrix (the same draws and densities as the
    /// dense form; tested).
    public init(dimension: Int, settings: ProtocolSettings, using stream: RandomStream) throws {
        self.init(reference: try IsotropicNormal(dimension: dimension), settings: settings, using: stream)
    }
}

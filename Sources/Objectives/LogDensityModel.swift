import Autodiff

/// An unnormalised model density p̃(x; θ): a batch `[N, D]` maps to log p̃ per row, `[N]`.
/// Row n of the output must depend on row n of the input only (so ∇ₓ Σₙ log p̃(xₙ) gives every
/// row's score in one backward pass).
public protocol LogDensityModel {
    /// log p̃(x; θ) per row: `[N, D]` → `[N]`.
    func logDensity(_ x: Tensor) -> Tensor
    /// θ: tensors that require a gradient.
    var parameters: [Tensor] { get set }
}

/// The model score s(x) = ∇ₓ log p̃(x) per row, `[N, D]`, kept in the graph so that it can be
/// differentiated again (for ∇ₓ s and for parameter gradients). `x` must require a gradient.
public func score(of logDensity: (Tensor) -> Tensor, at x: Tensor) -> Tensor {
    GradientMode.$isRecording.withValue(true) {
        gradient(of: logDensity(x).sum(), with: x, createGraph: true)
    }
}

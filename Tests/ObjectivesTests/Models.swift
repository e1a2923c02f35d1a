import Autodiff
import GSLNumerics
import Objectives

/// log p̃(x) = −½ (x − μ)ᵀ P (x − μ): score −(x − μ)P (P symmetric), ∇ₓs = −P, tr ∇ₓs = −tr P.
struct GaussianModel: LogDensityModel {
    var parameters: [Tensor]  // μ [D], P [D, D]
    init(mean: Tensor, precision: Tensor) { parameters = [mean.requiringGradient(), precision.requiringGradient()] }
    func logDensity(_ x: Tensor) -> Tensor {
        let c = x - parameters[0]
        return (Tensor.matmul(c, parameters[1]) * c).sum(alongAxis: 1) * -0.5
    }
}

/// log p̃(x) = −½ e^a ‖x‖² + w₃ᵀ softplus(W₂ softplus(W₁x + b₁) + b₂): a small nonlinear energy.
struct MLPModel: LogDensityModel {
    var parameters: [Tensor]
    init(dimension d: Int, width: Int = 8, logPrecision: Double = 0, using stream: RandomStream) {
        func p(_ shape: [Int], _ scale: Double) -> Tensor { (stream.normal(shape: shape) * scale).requiringGradient() }
        parameters = [Tensor([logPrecision]).requiringGradient(),
                      p([d, width], 0.5), p([width], 0.5), p([width, width], 0.3), p([width], 0.3), p([width, 1], 0.3)]
    }
    func logDensity(_ x: Tensor) -> Tensor {
        let p = parameters
        let quadratic = x.square().sum(alongAxis: 1) * p[0].exp() * -0.5
        let h1 = (Tensor.matmul(x, p[1]) + p[2]).softplus()
        let h2 = (Tensor.matmul(h1, p[3]) + p[4]).softplus()
        return quadratic + Tensor.matmul(h2, p[5]).reshaped([-1])
    }
}

func symmetricPositiveDefinite(_ d: Int, using stream: RandomStream, shift: Double = 0.5) -> Tensor {
    let a = stream.normal(shape: [d, d]) * 0.5
    var identity = [Double](repeating: 0, count: d * d)
    for i in 0..<d { identity[i * d + i] = shift }
    return Tensor.matmul(a, a, transposeB: true) + Tensor(shape: [d, d], scalars: identity)
}

func trace(_ m: Tensor) -> Double { (0..<m.shape[0]).map { m[$0, $0] }.reduce(0, +) }

/// Mean and standard error of the values.
func meanAndStandardError(_ xs: [Double]) -> (mean: Double, se: Double) {
    let n = Double(xs.count)
    let mean = xs.reduce(0, +) / n
    let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)
    return (mean, (variance / n).squareRoot())
}

func variance(_ xs: [Double]) -> Double {
    let m = xs.reduce(0, +) / Double(xs.count)
    return xs.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(xs.count - 1)
}

import Autodiff
import GSLNumerics
import Objectives

/// A multilayer perceptron x ↦ W_L a(… a(W₁x + b₁) …) + b_L with the same activation a after
/// every hidden layer, as the toy suites build theirs (toy_gradlogp's `ToyMLP`, NCSN's toy score
/// network). Written with the autodiff core's differentiable operations, so its outputs can be
/// differentiated in x to any order and in the parameters.
public struct MLP: Sendable {
    /// The nonlinearity after each hidden layer.
    public enum Activation: String, CaseIterable, Sendable, Codable {
        /// softplus(a) = log(1 + eᵃ).
        case softplus
        /// swish(a) = a·σ(βa) with a learned β per unit, initialised to 1 (Ramachandran et al.
        /// 2017; toy_gradlogp's `Swish(dim)`).
        case swish

        /// Parses a name, or throws `NetworkError.unknownActivation` listing the valid ones.
        public init(named name: String) throws {
            guard let activation = Self(rawValue: name) else { throw NetworkError.unknownActivation(name) }
            self = activation
        }
    }

    /// [input, hidden…, output].
    public let widths: [Int]
    public let activation: Activation
    /// Per layer l: W_l `[in, out]`, b_l `[out]`, and for swish after a hidden layer β_l `[out]`.
    public var parameters: [Tensor]

    /// Weights and biases drawn as PyTorch's `nn.Linear` draws them, U(−1/√in, 1/√in) each, from
    /// `stream`; swish's β at 1.
    /// - Throws: `NetworkError.invalidWidths` unless there are at least two widths, all ≥ 1.
    public init(widths: [Int], activation: Activation, using stream: RandomStream) throws {
        guard widths.count >= 2, widths.allSatisfy({ $0 >= 1 }) else { throw NetworkError.invalidWidths(widths) }
        self.widths = widths
        self.activation = activation
        var parameters: [Tensor] = []
        for l in 0..<(widths.count - 1) {
            let bound = 1 / Double(widths[l]).squareRoot()
            parameters.append(stream.uniform(shape: [widths[l], widths[l + 1]], in: -bound..<bound).requiringGradient())
            parameters.append(stream.uniform(shape: [widths[l + 1]], in: -bound..<bound).requiringGradient())
            if activation == .swish && l < widths.count - 2 {
                parameters.append(Tensor.ones([widths[l + 1]]).requiringGradient())
            }
        }
        self.parameters = parameters
    }

    /// The parameters' names, in `parameters`' order: `layer0.W`, `layer0.b`, `layer0.beta`, ….
    public var parameterNames: [String] {
        (0..<(widths.count - 1)).flatMap { l -> [String] in
            ["layer\(l).W", "layer\(l).b"] + (activation == .swish && l < widths.count - 2 ? ["layer\(l).beta"] : [])
        }
    }

    /// The network at a batch `[N, in]`: `[N, out]`.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        var h = x
        var k = 0
        for l in 0..<(widths.count - 1) {
            h = Tensor.matmul(h, parameters[k]) + parameters[k + 1]
            k += 2
            guard l < widths.count - 2 else { break }
            switch activation {
            case .softplus: h = h.softplusAndSigmoid(vectorMath: true).softplus
            case .swish:
                h = h * (h * parameters[k]).sigmoid()
                k += 1
            }
        }
        return h
    }
}

/// A network that cannot be built as asked; nothing was computed.
public enum NetworkError: Error, CustomStringConvertible, Equatable {
    case invalidWidths([Int])
    case unknownActivation(String)
    case unknownModelKind(String)
    case invalidSigmas([Double])
    case parameterMismatch(expected: [[Int]], got: [[Int]])

    public var description: String {
        switch self {
        case let .invalidWidths(widths):
            "network widths must be at least an input and an output width, each ≥ 1; got \(widths)"
        case let .unknownActivation(name):
            "unknown activation '\(name)'; choose one of \(MLP.Activation.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .unknownModelKind(name):
            "unknown model kind '\(name)'; choose one of \(ModelKind.allCases.map(\.rawValue).joined(separator: ", "))"
        case let .invalidSigmas(sigmas):
            "noise levels σ must be finite and > 0, at least one; got \(sigmas)"
        case let .parameterMismatch(expected, got):
            "the stored parameters have shapes \(got), this network needs \(expected)"
        }
    }
}

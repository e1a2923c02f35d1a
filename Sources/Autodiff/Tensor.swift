/// A dense, row-major, contiguous array of `Double` with a shape, optionally a node of a
/// differentiation graph.
///
/// A tensor is a value: operations return new tensors and never mutate their inputs. A tensor that
/// *requires a gradient* carries a `Node`; every operation on it (while `GradientMode.isRecording`)
/// records a node whose backward rule is itself written with tensor operations, so gradients can be
/// differentiated again (see `gradients(of:with:createGraph:)`).
///
/// Shapes: rank 0 (`[]`, a scalar) and up. Element `(i₀, …, i_{r−1})` sits at
/// `Σ_k i_k · stride_k` with `stride_{r−1} = 1`, `stride_k = stride_{k+1} · shape_{k+1}`.
public struct Tensor {
    /// The extent of each axis, outermost first.
    public let shape: [Int]
    /// The elements in row-major order; `scalars.count == shape.reduce(1, *)`.
    public let scalars: [Double]
    /// The graph node when this tensor takes part in differentiation, else nil.
    let node: Node?

    init(shape: [Int], scalars: [Double], node: Node?) {
        self.shape = shape
        self.scalars = scalars
        self.node = node
    }

    /// A constant tensor (no gradient) with the given shape and row-major elements.
    public init(shape: [Int], scalars: [Double]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative extent in shape \(shape)")
        precondition(scalars.count == shape.reduce(1, *),
                      "Tensor: \(scalars.count) scalars do not fill shape \(shape)")
        self.init(shape: shape, scalars: scalars, node: nil)
    }

    /// A rank-0 constant.
    public init(_ value: Double) { self.init(shape: [], scalars: [value], node: nil) }

    /// A rank-1 constant.
    public init(_ values: [Double]) { self.init(shape: [values.count], scalars: values, node: nil) }

    /// A rank-2 constant from rows of equal length.
    public init(rows: [[Double]]) {
        let columns = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == columns }, "Tensor(rows:): rows of unequal length")
        self.init(shape: [rows.count, columns], scalars: rows.flatMap { $0 }, node: nil)
    }

    /// A constant filled with `value`.
    public init(repeating value: Double, shape: [Int]) {
        self.init(shape: shape, scalars: [Double](repeating: value, count: shape.reduce(1, *)))
    }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(repeating: 0, shape: shape) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(repeating: 1, shape: shape) }

    /// Number of axes.
    public var rank: Int { shape.count }
    /// Number of elements.
    public var count: Int { scalars.count }
    /// The single element of a one-element tensor.
    public var scalar: Double {
        precondition(scalars.count == 1, "Tensor.scalar: shape \(shape) has \(scalars.count) elements")
        return scalars[0]
    }

    /// Element at a full multi-index.
    public subscript(indices: Int...) -> Double {
        precondition(indices.count == rank, "Tensor subscript: \(indices.count) indices for rank \(rank)")
        var offset = 0
        for (axis, i) in indices.enumerated() {
            precondition(i >= 0 && i < shape[axis], "Tensor subscript: index \(i) out of 0..<\(shape[axis])")
            offset = offset * shape[axis] + i
        }
        return scalars[offset]
    }

    /// Whether gradients can be taken with respect to this tensor or flow through it.
    public var requiresGradient: Bool { node != nil }

    /// A fresh leaf of the differentiation graph holding the same values: gradients can be taken
    /// with respect to it.
    public func requiringGradient() -> Tensor {
        Tensor(shape: shape, scalars: scalars, node: Node(shape: shape, scalars: scalars))
    }

    /// The same values cut off from the graph (stop-gradient): ∂(x.detached())/∂x = 0.
    public func detached() -> Tensor { Tensor(shape: shape, scalars: scalars, node: nil) }

    /// Whether every element is finite (no NaN, no ±∞).
    public var isFinite: Bool { scalars.allSatisfy { $0.isFinite } }
}

/// Safe to share across threads: a tensor and the graph nodes behind it are immutable once made
/// (every stored property is a `let`; pullbacks capture only such values).
extension Tensor: @unchecked Sendable {}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(scalars.count > 8 ? ", …" : "")])"
    }
}

/// Row-major strides of a contiguous array of `shape`.
@inline(__always)
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var running = 1
    for axis in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[axis] = running
        running *= shape[axis]
    }
    return strides
}

/// An axis given from the end when negative (−1 is the last), checked against `rank`.
@inline(__always)
func normalizedAxis(_ axis: Int, rank: Int, _ op: String) -> Int {
    let a = axis < 0 ? axis + rank : axis
    precondition(a >= 0 && a < rank, "\(op): axis \(axis) out of range for rank \(rank)")
    return a
}

/// The reverse-mode differentiation graph.
///
/// Every differentiable operation is `Tensor.record(...)`: it computes its value, and when any
/// input requires a gradient and recording is on, it attaches a `Node` holding its inputs' nodes and
/// a *pullback* `(ḡ, y) ↦ (x̄₁, …, x̄ₖ)` with x̄ᵢ = (∂y/∂xᵢ)ᵀ ḡ. Pullbacks are written with tensor
/// operations, so with `createGraph: true` the gradients are themselves graph nodes and can be
/// differentiated again (second, third order …), as PyTorch's `create_graph=True`.

/// Whether operations record graph nodes (the analogue of `torch.no_grad`).
public enum GradientMode {
    /// On by default; `withoutGradients` turns it off for a scope.
    @TaskLocal public static var isRecording: Bool = true
}

/// Runs `body` with graph recording off: results carry no nodes and keep no graph alive.
public func withoutGradients<T>(_ body: () throws -> T) rethrows -> T {
    try GradientMode.$isRecording.withValue(false) { try body() }
}

/// (ḡ, output, needed) ↦ one gradient per input (nil where `needed[i]` is false).
typealias Pullback = (_ gradient: Tensor, _ output: Tensor, _ needed: [Bool]) -> [Tensor?]

final class Node {
    /// The nodes of the operation's inputs (nil for inputs that need no gradient).
    let inputs: [Node?]
    /// Nil for a leaf.
    let pullback: Pullback?
    /// The output's value, so a pullback can use y = f(x) without a reference cycle.
    let shape: [Int]
    let scalars: [Double]

    /// A leaf.
    init(shape: [Int], scalars: [Double]) {
        self.inputs = []
        self.pullback = nil
        self.shape = shape
        self.scalars = scalars
    }

    init(inputs: [Node?], shape: [Int], scalars: [Double], pullback: @escaping Pullback) {
        self.inputs = inputs
        self.pullback = pullback
        self.shape = shape
        self.scalars = scalars
    }

    /// The output tensor of this node, as a graph participant.
    var output: Tensor { Tensor(shape: shape, scalars: scalars, node: self) }
}

extension Tensor {
    /// The result of an operation on `inputs`: recorded in the graph when recording is on and some
    /// input requires a gradient.
    static func record(shape: [Int], scalars: [Double], inputs: [Tensor],
                       pullback: @escaping Pullback) -> Tensor {
        guard GradientMode.isRecording, inputs.contains(where: { $0.node != nil }) else {
            return Tensor(shape: shape, scalars: scalars, node: nil)
        }
        let node = Node(inputs: inputs.map(\.node), shape: shape, scalars: scalars, pullback: pullback)
        return Tensor(shape: shape, scalars: scalars, node: node)
    }
}

/// Gradients of a scalar `y` with respect to each tensor of `xs`: ∂y/∂xᵢ, shaped like xᵢ.
///
/// - Parameters:
///   - y: a one-element tensor (any shape with one element).
///   - xs: tensors that require a gradient (leaves or intermediate results of the graph of y).
///     A tensor y does not depend on gets zeros.
///   - createGraph: when true, the returned gradients are recorded in the graph (their own
///     gradients can be taken); when false, no graph is built during the backward pass and the
///     results are constants.
/// - Complexity: one visit of each node that lies on a path from some xᵢ to y.
public func gradients(of y: Tensor, with xs: [Tensor], createGraph: Bool = false) -> [Tensor] {
    precondition(y.count == 1, "gradients(of:): y must have one element, has shape \(y.shape)")
    for (i, x) in xs.enumerated() {
        precondition(x.node != nil, "gradients(of:with:): xs[\(i)] (shape \(x.shape)) does not require a gradient; make it with requiringGradient()")
    }
    guard let root = y.node else { return xs.map { Tensor.zeros($0.shape) } }
    let order = topologicalOrder(from: root)
    let targets = Set(xs.map { ObjectIdentifier($0.node!) })

    // A node matters when some target is at or below it.
    var leadsToTarget = Set<ObjectIdentifier>()
    for node in order {  // inputs before outputs
        let id = ObjectIdentifier(node)
        if targets.contains(id) || node.inputs.contains(where: { $0.map { leadsToTarget.contains(ObjectIdentifier($0)) } ?? false }) {
            leadsToTarget.insert(id)
        }
    }

    return GradientMode.$isRecording.withValue(createGraph) {
        var accumulated: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): Tensor.ones(y.shape)]
        var result: [ObjectIdentifier: Tensor] = [:]
        for node in order.reversed() {
            let id = ObjectIdentifier(node)
            guard leadsToTarget.contains(id), let gradient = accumulated.removeValue(forKey: id) else { continue }
            if targets.contains(id) { result[id] = gradient }
            guard let pullback = node.pullback else { continue }
            let needed = node.inputs.map { $0.map { leadsToTarget.contains(ObjectIdentifier($0)) } ?? false }
            guard needed.contains(true) else { continue }
            let inputGradients = pullback(gradient, node.output, needed)
            for (input, inputGradient) in zip(node.inputs, inputGradients) {
                guard let input, let inputGradient else { continue }
                let inputID = ObjectIdentifier(input)
                guard leadsToTarget.contains(inputID) else { continue }
                precondition(inputGradient.shape == input.shape,
                             "internal: gradient shape \(inputGradient.shape) for input of shape \(input.shape)")
                if let existing = accumulated[inputID] {
                    accumulated[inputID] = existing + inputGradient
                } else {
                    accumulated[inputID] = inputGradient
                }
            }
        }
        return xs.map { x in result[ObjectIdentifier(x.node!)] ?? Tensor.zeros(x.shape) }
    }
}

/// Gradient of a scalar with respect to one tensor.
public func gradient(of y: Tensor, with x: Tensor, createGraph: Bool = false) -> Tensor {
    gradients(of: y, with: [x], createGraph: createGraph)[0]
}

/// Nodes reachable from `root`, each after all of its inputs (iterative depth-first search).
private func topologicalOrder(from root: Node) -> [Node] {
    var order: [Node] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(node: Node, nextInput: Int)] = [(root, 0)]
    visited.insert(ObjectIdentifier(root))
    while !stack.isEmpty {
        let (node, next) = stack[stack.count - 1]
        if next < node.inputs.count {
            stack[stack.count - 1].nextInput += 1
            if let input = node.inputs[next], visited.insert(ObjectIdentifier(input)).inserted {
                stack.append((input, 0))
            }
        } else {
            order.append(node)
            stack.removeLast()
        }
    }
    return order
}

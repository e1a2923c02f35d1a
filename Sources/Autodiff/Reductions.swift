/// Sums, means, and the broadcast pair `expand` / `sumToShape` (each is the other's pullback).
extension Tensor {
    /// Σ over `axes` (negative axes count from the end). With `keepingDimensions` the summed axes
    /// stay with extent 1; otherwise they are removed. Pullback: x̄ = expand(reshape(ȳ, kept), x.shape).
    public func sum(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let reduced = Set(axes.map { normalizedAxis($0, rank: rank, "sum") })
        let keptShape = shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
        let outShape = keepingDimensions ? keptShape : shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
        var outStrides = contiguousStrides(keptShape)
        for axis in reduced { outStrides[axis] = 0 }
        let inStrides = contiguousStrides(shape)
        let inner = shape.last ?? 1, innerOut = outStrides.last ?? 0
        let value = makeBuffer(keptShape.reduce(1, *)) { out in
            out.initialize(repeating: 0)
            scalars.withUnsafeBufferPointer { x in
                guard let po = out.baseAddress, let px = x.baseAddress else { return }
                forEachRow(shape: shape, inStrides, outStrides, outStrides) { i, o, _ in
                    if innerOut == 0 {
                        // Along the row: one running sum, in order (no reassociation).
                        var s = 0.0
                        for j in 0..<inner { s += px[i + j] }
                        po[o] += s
                    } else {
                        // Across rows: each output element adds this row's element, in row order;
                        // the elements are independent, so the loop vectorises without reordering
                        // any sum.
                        let (row, target) = (px + i, po + o)
                        for j in 0..<inner { target[j] += row[j] }
                    }
                }
            }
        }
        let inputShape = shape
        return .record(shape: outShape, scalars: value, inputs: [self]) { g, _, _ in
            [g.reshaped(keptShape).expanded(to: inputShape)]
        }
    }

    public func sum(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        sum(alongAxes: [axis], keepingDimensions: keepingDimensions)
    }

    /// Σ of all elements, a rank-0 tensor.
    public func sum() -> Tensor { sum(alongAxes: Array(0..<rank)) }

    /// Mean over `axes`.
    public func mean(alongAxes axes: [Int], keepingDimensions: Bool = false) -> Tensor {
        let n = axes.map { shape[normalizedAxis($0, rank: rank, "mean")] }.reduce(1, *)
        return sum(alongAxes: axes, keepingDimensions: keepingDimensions) / Double(n)
    }

    public func mean(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        mean(alongAxes: [axis], keepingDimensions: keepingDimensions)
    }

    /// Mean of all elements, a rank-0 tensor.
    public func mean() -> Tensor { sum() / Double(Swift.max(count, 1)) }

    /// Broadcasts to `target` (NumPy rules) by repeating along axes of extent 1 and new leading
    /// axes. Pullback: x̄ = sumToShape(ȳ, x.shape).
    public func expanded(to target: [Int]) -> Tensor {
        if target == shape { return self }
        let value = gather(scalars, shape: target, strides: broadcastStrides(from: shape, to: target))
        let inputShape = shape
        return .record(shape: target, scalars: value, inputs: [self]) { g, _, _ in [g.sumToShape(inputShape)] }
    }

    /// The reverse of broadcasting: sums over the leading axes `target` lacks and over axes where
    /// `target` has extent 1, giving a tensor of shape `target`.
    public func sumToShape(_ target: [Int]) -> Tensor {
        if target == shape { return self }
        let lead = rank - target.count
        precondition(lead >= 0, "sumToShape: \(shape) has fewer axes than \(target)")
        var axes = Array(0..<lead)
        for (i, extent) in target.enumerated() where extent == 1 && shape[lead + i] != 1 { axes.append(lead + i) }
        for (i, extent) in target.enumerated() where extent != 1 {
            precondition(extent == shape[lead + i], "sumToShape: \(shape) does not reduce to \(target)")
        }
        return sum(alongAxes: axes, keepingDimensions: true).reshaped(target)
    }
}

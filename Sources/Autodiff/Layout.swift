/// Shape and layout operations: reshape, permute/transpose, slicing and padding along an axis,
/// index selection, concatenation and stacking.
extension Tensor {
    /// The same elements in row-major order under a new shape (one extent may be −1: inferred).
    /// Pullback: reshape back.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let inferred = newShape.firstIndex(of: -1) {
            let known = newShape.filter { $0 != -1 }.reduce(1, *)
            precondition(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) for \(count) elements")
            target[inferred] = count / known
        }
        precondition(target.reduce(1, *) == count, "reshape: \(shape) (\(count) elements) cannot become \(newShape)")
        if target == shape { return self }
        let inputShape = shape
        return .record(shape: target, scalars: scalars, inputs: [self]) { g, _, _ in [g.reshaped(inputShape)] }
    }

    /// Axes reordered: result axis i is input axis `permutation[i]`. Pullback: the inverse permutation.
    public func permuted(_ permutation: [Int]) -> Tensor {
        precondition(permutation.sorted() == Array(0..<rank), "permute: \(permutation) is not a permutation of 0..<\(rank)")
        if permutation == Array(0..<rank) { return self }
        let inStrides = contiguousStrides(shape)
        let outShape = permutation.map { shape[$0] }
        let value = gather(scalars, shape: outShape, strides: permutation.map { inStrides[$0] })
        var inverse = [Int](repeating: 0, count: rank)
        for (i, p) in permutation.enumerated() { inverse[p] = i }
        return .record(shape: outShape, scalars: value, inputs: [self]) { g, _, _ in [g.permuted(inverse)] }
    }

    /// The last two axes swapped (a matrix transpose for rank 2).
    public func transposed() -> Tensor {
        precondition(rank >= 2, "transposed: needs rank ≥ 2, has shape \(shape)")
        var p = Array(0..<rank)
        p.swapAt(rank - 1, rank - 2)
        return permuted(p)
    }

    /// Elements `range` along `axis` (the other axes whole). Pullback: zero-padded back to the
    /// input's extent.
    public func slice(_ range: Range<Int>, alongAxis axis: Int) -> Tensor {
        let a = normalizedAxis(axis, rank: rank, "slice")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a],
                     "slice: range \(range) out of 0..<\(shape[a]) on axis \(a) of \(shape)")
        var outShape = shape
        outShape[a] = range.count
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        let block = range.count * inner, stride = shape[a] * inner, start = range.lowerBound * inner
        let value = makeBuffer(outer * block) { out in
            scalars.withUnsafeBufferPointer { x in
                guard block > 0 else { return }
                for o in 0..<outer { (out.baseAddress! + o * block).update(from: x.baseAddress! + o * stride + start, count: block) }
            }
        }
        let before = range.lowerBound, after = shape[a] - range.upperBound
        return .record(shape: outShape, scalars: value, inputs: [self]) { g, _, _ in
            [g.padded(before: before, after: after, alongAxis: a)]
        }
    }

    /// Zeros added along `axis`: `before` in front, `after` behind. Pullback: the slice back.
    public func padded(before: Int, after: Int, alongAxis axis: Int) -> Tensor {
        let a = normalizedAxis(axis, rank: rank, "padded")
        precondition(before >= 0 && after >= 0, "padded: negative padding")
        if before == 0 && after == 0 { return self }
        var outShape = shape
        outShape[a] += before + after
        let outer = shape[..<a].reduce(1, *), inner = shape[(a + 1)...].reduce(1, *)
        let block = shape[a] * inner, stride = outShape[a] * inner, start = before * inner
        let value = makeBuffer(outer * stride) { out in
            out.initialize(repeating: 0)
            scalars.withUnsafeBufferPointer { x in
                guard block > 0 else { return }
                for o in 0..<outer { (out.baseAddress! + o * stride + start).update(from: x.baseAddress! + o * block, count: block) }
            }
        }
        let range = before..<(before + shape[a])
        return .record(shape: outShape, scalars: value, inputs: [self]) { g, _, _ in [g.slice(range, alongAxis: a)] }
    }

    /// Index `index` along `axis`, that axis removed (rank drops by one).
    /// The entries at `indices` along axis 0 (repeats allowed), `[indices.count, …]`: a constant
    /// (no graph), for batches of data and of precomputed terms.
    public func rows(_ indices: some Collection<Int>) -> Tensor {
        precondition(rank >= 1, "rows: a scalar has no rows")
        let width = shape.dropFirst().reduce(1, *)
        var out = [Double]()
        out.reserveCapacity(indices.count * width)
        scalars.withUnsafeBufferPointer { p in
            for i in indices { out.append(contentsOf: p[(i * width)..<((i + 1) * width)]) }
        }
        return Tensor(shape: [indices.count] + shape.dropFirst(), scalars: out)
    }

    public func select(_ index: Int, alongAxis axis: Int) -> Tensor {
        let a = normalizedAxis(axis, rank: rank, "select")
        var outShape = shape
        outShape.remove(at: a)
        return slice(index..<(index + 1), alongAxis: a).reshaped(outShape)
    }

    /// A new axis of extent 1 at `axis` (0...rank).
    public func expandingShape(at axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank + 1 : axis
        precondition(a >= 0 && a <= rank, "expandingShape: axis \(axis) out of range for rank \(rank)")
        var s = shape
        s.insert(1, at: a)
        return reshaped(s)
    }

    /// Tensors joined along an existing `axis`; all other extents must agree.
    /// Pullback: each input's slice of ȳ.
    public static func concatenate(_ tensors: [Tensor], alongAxis axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concatenate: no tensors")
        let first = tensors[0]
        let a = normalizedAxis(axis, rank: first.rank, "concatenate")
        for t in tensors {
            precondition(t.rank == first.rank && (0..<first.rank).allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] },
                         "concatenate: shape \(t.shape) does not match \(first.shape) off axis \(a)")
        }
        var outShape = first.shape
        outShape[a] = tensors.map { $0.shape[a] }.reduce(0, +)
        let outer = first.shape[..<a].reduce(1, *), inner = first.shape[(a + 1)...].reduce(1, *)
        let stride = outShape[a] * inner
        let value = makeBuffer(outer * stride) { out in
            var start = 0
            for t in tensors {
                let block = t.shape[a] * inner
                if block > 0 {
                    t.scalars.withUnsafeBufferPointer { x in
                        for o in 0..<outer { (out.baseAddress! + o * stride + start).update(from: x.baseAddress! + o * block, count: block) }
                    }
                }
                start += block
            }
        }
        var ranges: [Range<Int>] = []
        var offset = 0
        for t in tensors { ranges.append(offset..<(offset + t.shape[a])); offset += t.shape[a] }
        return record(shape: outShape, scalars: value, inputs: tensors) { g, _, needed in
            zip(ranges, needed).map { range, need in need ? g.slice(range, alongAxis: a) : nil }
        }
    }

    /// Tensors of one shape joined along a new axis.
    public static func stack(_ tensors: [Tensor], alongAxis axis: Int = 0) -> Tensor {
        concatenate(tensors.map { $0.expandingShape(at: axis) }, alongAxis: axis)
    }
}

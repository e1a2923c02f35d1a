/// Loops over strided views of contiguous buffers, shared by broadcasting, reductions and
/// permutations. No allocation per element: one counter array per call.

/// For each innermost row of the row-major index space `shape`, calls `body(o₀, o₁, o₂)` with the
/// offsets of the row's first element in three operands whose strides (per axis of `shape`) are
/// `s₀`, `s₁`, `s₂`. The row has `shape.last` elements; element j of the row is at `oₖ + j·sₖ.last`.
/// A rank-0 `shape` is one row of one element.
@inline(__always)
func forEachRow(shape: [Int], _ s0: [Int], _ s1: [Int], _ s2: [Int],
                _ body: (_ o0: Int, _ o1: Int, _ o2: Int) -> Void) {
    let rank = shape.count
    if rank <= 1 { body(0, 0, 0); return }
    if shape.contains(0) { return }
    var counter = [Int](repeating: 0, count: rank - 1)
    var o0 = 0, o1 = 0, o2 = 0
    while true {
        body(o0, o1, o2)
        var axis = rank - 2
        while axis >= 0 {
            counter[axis] += 1
            o0 += s0[axis]; o1 += s1[axis]; o2 += s2[axis]
            if counter[axis] < shape[axis] { break }
            o0 -= s0[axis] * shape[axis]; o1 -= s1[axis] * shape[axis]; o2 -= s2[axis] * shape[axis]
            counter[axis] = 0
            axis -= 1
        }
        if axis < 0 { return }
    }
}

/// `out[j] = f(x[j·ia], y[j·ib])` for j < count: one innermost row of a broadcast elementwise
/// operation. The contiguous and broadcast cases (strides 1 or 0) get loops of their own, which
/// the compiler vectorises; every case applies `f` to the same operands, so the results are the
/// same to the last bit whichever loop runs (tested against the generic one).
@inline(__always)
func forEachElement(_ count: Int, _ out: UnsafeMutablePointer<Double>,
                    _ x: UnsafePointer<Double>, _ ia: Int, _ y: UnsafePointer<Double>, _ ib: Int,
                    _ f: (Double, Double) -> Double) {
    switch (ia, ib) {
    case (1, 1): for j in 0..<count { out[j] = f(x[j], y[j]) }
    case (1, 0): let b = y[0]; for j in 0..<count { out[j] = f(x[j], b) }
    case (0, 1): let a = x[0]; for j in 0..<count { out[j] = f(a, y[j]) }
    default: for j in 0..<count { out[j] = f(x[j * ia], y[j * ib]) }
    }
}

/// Strides that read an array of shape `source` as if broadcast to `target` (NumPy rules: axes
/// aligned from the end; an axis of extent 1, or a missing leading axis, gets stride 0).
func broadcastStrides(from source: [Int], to target: [Int]) -> [Int] {
    let sourceStrides = contiguousStrides(source)
    let offset = target.count - source.count
    precondition(offset >= 0, "broadcast: shape \(source) has more axes than \(target)")
    return (0..<target.count).map { axis in
        guard axis >= offset else { return 0 }
        let extent = source[axis - offset]
        precondition(extent == target[axis] || extent == 1, "broadcast: shape \(source) does not broadcast to \(target)")
        return extent == 1 ? 0 : sourceStrides[axis - offset]
    }
}

/// The NumPy broadcast of two shapes.
func broadcastShape(_ a: [Int], _ b: [Int], _ op: String) -> [Int] {
    let rank = max(a.count, b.count)
    return (0..<rank).map { axis in
        let i = axis - (rank - a.count), j = axis - (rank - b.count)
        let x = i >= 0 ? a[i] : 1, y = j >= 0 ? b[j] : 1
        precondition(x == y || x == 1 || y == 1, "\(op): shapes \(a) and \(b) do not broadcast")
        return x == 1 ? y : x
    }
}

/// A new contiguous buffer of `count` elements filled by `fill`.
@inline(__always)
func makeBuffer(_ count: Int, _ fill: (UnsafeMutableBufferPointer<Double>) -> Void) -> [Double] {
    [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
        fill(buffer)
        initialized = count
    }
}

/// Reads `source` (of shape `sourceShape`) through `strides` (one per axis of `shape`) into a new
/// contiguous array of `shape`: used by expand (stride 0 on broadcast axes) and permute.
func gather(_ source: [Double], shape: [Int], strides: [Int]) -> [Double] {
    let count = shape.reduce(1, *)
    let outStrides = contiguousStrides(shape)
    let inner = shape.last ?? 1, innerStride = strides.last ?? 0
    return makeBuffer(count) { out in
        source.withUnsafeBufferPointer { src in
            forEachRow(shape: shape, outStrides, strides, outStrides) { o, s, _ in
                for j in 0..<inner { out[o + j] = src[s + j * innerStride] }
            }
        }
    }
}

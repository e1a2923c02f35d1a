/// Addition, subtraction, multiplication and division with NumPy broadcasting.
///
/// For z = a ∘ b with broadcast shape S, the pullbacks reduce back to each operand's shape:
/// ā = sumToShape(∂z/∂a ⊙ z̄, a.shape), b̄ likewise, so broadcasting is differentiable to any order
/// (sumToShape and expand are each other's pullbacks).
extension Tensor {
    /// Elementwise `f(aᵢ, bᵢ)` over the broadcast of the two shapes.
    @inline(__always)
    static func zipBroadcast(_ a: Tensor, _ b: Tensor, _ op: String,
                             _ f: (Double, Double) -> Double) -> (shape: [Int], scalars: [Double]) {
        if a.shape == b.shape {
            let out = makeBuffer(a.count) { out in
                a.scalars.withUnsafeBufferPointer { x in
                    b.scalars.withUnsafeBufferPointer { y in
                        for i in 0..<x.count { out[i] = f(x[i], y[i]) }
                    }
                }
            }
            return (a.shape, out)
        }
        let shape = broadcastShape(a.shape, b.shape, op)
        let count = shape.reduce(1, *)
        if b.count == 1 && count == a.count {
            let y = b.scalars[0]
            return (shape, makeBuffer(count) { out in
                a.scalars.withUnsafeBufferPointer { x in for i in 0..<count { out[i] = f(x[i], y) } }
            })
        }
        if a.count == 1 && count == b.count {
            let x = a.scalars[0]
            return (shape, makeBuffer(count) { out in
                b.scalars.withUnsafeBufferPointer { y in for i in 0..<count { out[i] = f(x, y[i]) } }
            })
        }
        let sa = broadcastStrides(from: a.shape, to: shape)
        let sb = broadcastStrides(from: b.shape, to: shape)
        let so = contiguousStrides(shape)
        let inner = shape.last ?? 1
        let ia = sa.last ?? 0, ib = sb.last ?? 0
        let out = makeBuffer(count) { out in
            a.scalars.withUnsafeBufferPointer { x in
                b.scalars.withUnsafeBufferPointer { y in
                    guard let po = out.baseAddress, let px = x.baseAddress, let py = y.baseAddress else { return }
                    forEachRow(shape: shape, so, sa, sb) { o, oa, ob in
                        forEachElement(inner, po + o, px + oa, ia, py + ob, ib, f)
                    }
                }
            }
        }
        return (shape, out)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let (shape, value) = zipBroadcast(a, b, "+", +)
        return record(shape: shape, scalars: value, inputs: [a, b]) { g, _, needed in
            [needed[0] ? g.sumToShape(a.shape) : nil, needed[1] ? g.sumToShape(b.shape) : nil]
        }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (shape, value) = zipBroadcast(a, b, "-", -)
        return record(shape: shape, scalars: value, inputs: [a, b]) { g, _, needed in
            [needed[0] ? g.sumToShape(a.shape) : nil, needed[1] ? (-g).sumToShape(b.shape) : nil]
        }
    }

    /// Elementwise product; ā = b ⊙ z̄, b̄ = a ⊙ z̄ (reduced to each shape).
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let (shape, value) = zipBroadcast(a, b, "*", *)
        return record(shape: shape, scalars: value, inputs: [a, b]) { g, _, needed in
            [needed[0] ? (g * b).sumToShape(a.shape) : nil, needed[1] ? (g * a).sumToShape(b.shape) : nil]
        }
    }

    /// Elementwise quotient z = a / b; ā = z̄ / b, b̄ = −z̄ ⊙ z / b.
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (shape, value) = zipBroadcast(a, b, "/", /)
        return record(shape: shape, scalars: value, inputs: [a, b]) { g, z, needed in
            [needed[0] ? (g / b).sumToShape(a.shape) : nil, needed[1] ? (-(g * z) / b).sumToShape(b.shape) : nil]
        }
    }

    public static func + (a: Tensor, b: Double) -> Tensor { a + Tensor(b) }
    public static func + (a: Double, b: Tensor) -> Tensor { Tensor(a) + b }
    public static func - (a: Tensor, b: Double) -> Tensor { a - Tensor(b) }
    public static func - (a: Double, b: Tensor) -> Tensor { Tensor(a) - b }
    public static func * (a: Tensor, b: Double) -> Tensor { a * Tensor(b) }
    public static func * (a: Double, b: Tensor) -> Tensor { Tensor(a) * b }
    public static func / (a: Tensor, b: Double) -> Tensor { a / Tensor(b) }
    public static func / (a: Double, b: Tensor) -> Tensor { Tensor(a) / b }
}

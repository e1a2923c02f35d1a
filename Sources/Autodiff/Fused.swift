/// Fused elementwise kernels for hot chains: one pass over memory instead of one per operation,
/// with pullbacks written in the ordinary tensor operations (so they differentiate again).
extension Tensor {
    /// y = a ⊙ b + √max(c, 0) ⊙ v, one pass. a and b broadcast to c's shape; v (a constant, e.g.
    /// Rademacher noise) has c's shape. Curvature propagation's update S ← f′ S + √M⁺ v.
    ///
    /// Pullbacks: ā = ȳ ⊙ b, b̄ = ȳ ⊙ a (reduced to their shapes), c̄ = ȳ ⊙ v ⊙ m / (2√c⁺ + 1 − m)
    /// with the constant mask m = 1[c > 0] (as `squareRootOfPositivePart`: no ∞·0 at c ≤ 0).
    public static func productPlusRootOfPositivePart(_ a: Tensor, _ b: Tensor, root c: Tensor, times v: Tensor) -> Tensor {
        precondition(v.shape == c.shape, "productPlusRootOfPositivePart: v \(v.shape) must have c's shape \(c.shape)")
        let shape = c.shape
        precondition(broadcastShape(broadcastShape(a.shape, b.shape, "productPlusRootOfPositivePart"), shape,
                                    "productPlusRootOfPositivePart") == shape,
                     "productPlusRootOfPositivePart: a \(a.shape) and b \(b.shape) must broadcast to c's shape \(shape)")
        let sa = broadcastStrides(from: a.shape, to: shape), sb = broadcastStrides(from: b.shape, to: shape)
        let so = contiguousStrides(shape)
        let inner = shape.last ?? 1, ia = sa.last ?? 0, ib = sb.last ?? 0
        let value = makeBuffer(c.count) { out in
            a.scalars.withUnsafeBufferPointer { pa in
                b.scalars.withUnsafeBufferPointer { pb in
                    c.scalars.withUnsafeBufferPointer { pc in
                        v.scalars.withUnsafeBufferPointer { pv in
                            guard let po = out.baseAddress, let xa = pa.baseAddress, let xb = pb.baseAddress,
                                  let xc = pc.baseAddress, let xv = pv.baseAddress else { return }
                            forEachRow(shape: shape, so, sa, sb) { o, oa, ob in
                                // a ⊙ b into the row, then + √c⁺ ⊙ v: the same two roundings per
                                // element as the one-line form, in loops that vectorise.
                                forEachElement(inner, po + o, xa + oa, ia, xb + ob, ib, *)
                                let (row, c, v) = (po + o, xc + o, xv + o)
                                // √ of the selected value (not a branch around √) vectorises;
                                // m ≤ 0 and NaN select +0, whose root is the +0 of the one-line form.
                                for j in 0..<inner {
                                    let m = c[j]
                                    row[j] = row[j] + (m > 0 ? m : 0).squareRoot() * v[j]
                                }
                            }
                        }
                    }
                }
            }
        }
        return record(shape: shape, scalars: value, inputs: [a, b, c, v]) { g, _, needed in
            var gc: Tensor? = nil
            if needed[2] {
                if GradientMode.isRecording {
                    let mask = c.step()
                    gc = g * v * mask / (c.squareRootOfPositivePart() * 2 + (1 - mask))
                } else {
                    gc = rootPullback(g, c, v)
                }
            }
            return [needed[0] ? (g * b).sumToShape(a.shape) : nil, needed[1] ? (g * a).sumToShape(b.shape) : nil, gc,
                    needed[3] ? (g * c.squareRootOfPositivePart()) : nil]
        }
    }

    /// c̄ = ȳ ⊙ v ⊙ m / (2√c⁺ + 1 − m), m = 1[c > 0], in one pass for pullbacks that record no
    /// graph: per element ((ȳ·v)·m) / ((√c⁺·2) + (1 − m)), the operations of the tensor form in its
    /// order, so the two agree to the last bit (tested). All three have c's shape.
    static func rootPullback(_ g: Tensor, _ c: Tensor, _ v: Tensor) -> Tensor {
        precondition(g.shape == c.shape && v.shape == c.shape, "rootPullback: shapes \(g.shape), \(c.shape), \(v.shape)")
        let value = makeBuffer(c.count) { out in
            g.scalars.withUnsafeBufferPointer { pg in
                c.scalars.withUnsafeBufferPointer { pc in
                    v.scalars.withUnsafeBufferPointer { pv in
                        for i in 0..<out.count {
                            let x = pc[i], mask: Double = x > 0 ? 1 : 0
                            out[i] = ((pg[i] * pv[i]) * mask) / (((x > 0 ? x : 0).squareRoot() * 2) + (1 - mask))
                        }
                    }
                }
            }
        }
        return Tensor(shape: c.shape, scalars: value)
    }
}

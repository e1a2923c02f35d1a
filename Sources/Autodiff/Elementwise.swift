import CVectorMath
import Foundation

/// Elementwise functions y = f(x), each with its pullback x̄ = f′(x) ⊙ ȳ written in tensor
/// operations (so second and third derivatives follow).
extension Tensor {
    /// Applies `f` to every element: a new contiguous buffer, no graph.
    @inline(__always)
    func mapScalars(_ f: (Double) -> Double) -> [Double] {
        makeBuffer(count) { out in
            scalars.withUnsafeBufferPointer { x in
                for i in 0..<x.count { out[i] = f(x[i]) }
            }
        }
    }

    /// An elementwise op with value `f` and pullback `pullback(ȳ, x, y)`.
    @inline(__always)
    func unary(_ f: (Double) -> Double, _ pullback: @escaping (Tensor, Tensor, Tensor) -> Tensor) -> Tensor {
        let x = self
        return .record(shape: shape, scalars: mapScalars(f), inputs: [x]) { g, y, _ in [pullback(g, x, y)] }
    }

    /// −x.
    public static prefix func - (x: Tensor) -> Tensor { x.unary({ -$0 }) { g, _, _ in -g } }

    /// eˣ; x̄ = y ⊙ ȳ.
    public func exp() -> Tensor { unary(Foundation.exp) { g, _, y in g * y } }

    /// ln x (x > 0); x̄ = ȳ / x.
    public func log() -> Tensor { unary(Foundation.log) { g, x, _ in g / x } }

    /// softplus(x) = ln(1 + eˣ), computed as max(x, 0) + ln(1 + e^{−|x|}); x̄ = σ(x) ⊙ ȳ.
    public func softplus() -> Tensor {
        unary({ Swift.max($0, 0) + Foundation.log1p(Foundation.exp(-Swift.abs($0))) }) { g, x, _ in g * x.sigmoid() }
    }

    /// softplus(x) and σ(x) together, from one e = exp(−|x|) per element:
    /// softplus = max(x, 0) + ln(1 + e), σ = 1/(1 + e) for x ≥ 0 and e/(1 + e) for x < 0 — the
    /// very expressions of `softplus()` and `sigmoid()`, so the values agree to the last bit. Both
    /// are differentiable: σ's pullback is `sigmoid()`'s, softplus's is ȳ ⊙ σ with this σ (the
    /// graph node of `sigmoid()`'s rule, so higher derivatives are unchanged).
    ///
    /// With `vectorMath`, e and ln(1 + e) come from glibc's vector math library (`VectorMath`, at
    /// most 4 ulp from libm's; tested to 1e-15 relative) over the whole buffer: several times
    /// faster, for the neural networks, whose softplus layers take a quarter of a step's time in
    /// libm. DKEF keeps libm's values (its numbers are checked against the authors' to 1e-13).
    public func softplusAndSigmoid(vectorMath: Bool = false) -> (softplus: Tensor, sigmoid: Tensor) {
        var softplusValues = [Double](repeating: 0, count: count), sigmoidValues = [Double](repeating: 0, count: count)
        scalars.withUnsafeBufferPointer { x in
            softplusValues.withUnsafeMutableBufferPointer { sp in
                sigmoidValues.withUnsafeMutableBufferPointer { sg in
                    if vectorMath {
                        // sg holds e = exp(−|x|), sp ln(1 + e), then both are finished in place.
                        for i in 0..<x.count { sg[i] = -Swift.abs(x[i]) }
                        VectorMath.exp(sg)
                        if let e = sg.baseAddress, let out = sp.baseAddress { ssm_vector_log1p(e, out, x.count) }
                        for i in 0..<x.count {
                            let v = x[i], e = sg[i]
                            sp[i] = Swift.max(v, 0) + sp[i]
                            sg[i] = v >= 0 ? 1 / (1 + e) : e / (1 + e)
                        }
                    } else {
                        for i in 0..<x.count {
                            let v = x[i], e = Foundation.exp(-Swift.abs(v))
                            sp[i] = Swift.max(v, 0) + Foundation.log1p(e)
                            sg[i] = v >= 0 ? 1 / (1 + e) : e / (1 + e)
                        }
                    }
                }
            }
        }
        let sigmoid = Tensor.record(shape: shape, scalars: sigmoidValues, inputs: [self]) { g, y, _ in [g * y * (1 - y)] }
        let softplus = Tensor.record(shape: shape, scalars: softplusValues, inputs: [self]) { g, _, _ in [g * sigmoid] }
        return (softplus, sigmoid)
    }

    /// σ(x) = 1 / (1 + e^{−x}); x̄ = y (1 − y) ⊙ ȳ.
    public func sigmoid() -> Tensor {
        unary({ $0 >= 0 ? 1 / (1 + Foundation.exp(-$0)) : Foundation.exp($0) / (1 + Foundation.exp($0)) }) { g, _, y in
            g * y * (1 - y)
        }
    }

    /// tanh x; x̄ = (1 − y²) ⊙ ȳ.
    public func tanh() -> Tensor { unary(Foundation.tanh) { g, _, y in g * (1 - y.square()) } }

    /// x²; x̄ = 2x ⊙ ȳ.
    public func square() -> Tensor { unary({ $0 * $0 }) { g, x, _ in g * x * 2 } }

    /// √x (x > 0); x̄ = ȳ / (2y).
    public func sqrt() -> Tensor { unary(Foundation.sqrt) { g, _, y in g / (y * 2) } }

    /// xᵖ for a constant p (x > 0 unless p is a whole number); x̄ = p x^{p−1} ⊙ ȳ.
    public func pow(_ p: Double) -> Tensor {
        if p == 1 { return unary({ $0 }) { g, _, _ in g } }
        return unary({ Foundation.pow($0, p) }) { g, x, _ in g * x.pow(p - 1) * p }
    }

    /// √max(x, 0); x̄ = ȳ / (2y) where x > 0 and 0 elsewhere (written m ȳ / (2y + 1 − m) with the
    /// constant mask m = 1[x > 0], so no ∞·0 arises at x ≤ 0, at any order). Curvature
    /// propagation's √M⁺ and √M⁻.
    public func squareRootOfPositivePart() -> Tensor {
        unary({ $0 > 0 ? Foundation.sqrt($0) : 0 }) { g, x, y in
            let m = x.step()
            return g * m / (y * 2 + (1 - m))
        }
    }

    /// max(x, 0); x̄ = 1[x > 0] ⊙ ȳ (the mask is constant: relu″ = 0 almost everywhere).
    public func relu() -> Tensor { unary({ Swift.max($0, 0) }) { g, x, _ in g * x.step() } }

    // MARK: Non-differentiable helpers (results are constants)

    /// sign(x) ∈ {−1, 0, 1}, a constant.
    public func sign() -> Tensor {
        Tensor(shape: shape, scalars: mapScalars { $0 > 0 ? 1 : ($0 < 0 ? -1 : 0) })
    }

    /// 1[x > 0], a constant.
    public func step() -> Tensor { Tensor(shape: shape, scalars: mapScalars { $0 > 0 ? 1 : 0 }) }

    /// The largest element (a plain number; no gradient).
    public func maxScalar() -> Double { scalars.max() ?? -.infinity }
}

/// Operations composed of primitives (their derivatives follow from the primitives').
extension Tensor {
    /// softmax along `axis`: yᵢ = e^{xᵢ} / Σⱼ e^{xⱼ}. The maximum subtracted for stability is
    /// detached; softmax is invariant to it, so derivatives are unaffected.
    public func softmax(alongAxis axis: Int = -1) -> Tensor {
        let shift = withoutGradients { maxAlong(axis) }
        let e = (self - shift).exp()
        return e / e.sum(alongAxis: axis, keepingDimensions: true)
    }

    /// log Σ exp along `axis` (kept with extent 1 when `keepingDimensions`), stabilised by a
    /// detached maximum.
    public func logSumExp(alongAxis axis: Int, keepingDimensions: Bool = false) -> Tensor {
        let shift = withoutGradients { maxAlong(axis) }
        let lse = (self - shift).exp().sum(alongAxis: axis, keepingDimensions: true).log() + shift
        if keepingDimensions { return lse }
        var s = shape
        s.remove(at: normalizedAxis(axis, rank: rank, "logSumExp"))
        return lse.reshaped(s)
    }

    /// Maximum along `axis`, kept with extent 1, as a constant.
    func maxAlong(_ axis: Int) -> Tensor {
        let a = normalizedAxis(axis, rank: rank, "max")
        let n = shape[a]
        var best = slice(0..<1, alongAxis: a).scalars
        for i in 1..<Swift.max(n, 1) {
            let s = slice(i..<(i + 1), alongAxis: a).scalars
            for j in 0..<best.count where s[j] > best[j] { best[j] = s[j] }
        }
        var kept = shape
        kept[a] = 1
        return Tensor(shape: kept, scalars: best)
    }

    /// Σ aᵢ bᵢ over all elements (shapes must match), a rank-0 tensor.
    public static func dot(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "dot: shapes \(a.shape) and \(b.shape) differ")
        return (a * b).sum()
    }
}

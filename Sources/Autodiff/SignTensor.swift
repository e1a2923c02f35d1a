/// A constant tensor of ±1 values (Rademacher noise) stored as bits: element i (row-major) is +1
/// when bit (offset + i) mod 32 of word (offset + i) / 32 is set, else −1. 64 times smaller than
/// its `dense` form, and read by the products below without ever forming that.
public struct SignTensor: Sendable, Equatable {
    public let shape: [Int]
    public let words: [UInt32]
    public let offset: Int

    public init(shape: [Int], words: [UInt32], offset: Int = 0) {
        precondition(shape.allSatisfy { $0 >= 0 } && offset >= 0, "SignTensor: bad shape \(shape) or offset \(offset)")
        precondition(offset + shape.reduce(1, *) <= words.count * 32,
                     "SignTensor: \(words.count) words hold \(words.count * 32) signs, shape \(shape) from \(offset) needs more")
        self.shape = shape
        self.words = words
        self.offset = offset
    }

    public var count: Int { shape.reduce(1, *) }

    /// Element i (row-major).
    @inlinable @inline(__always)
    public subscript(i: Int) -> Double {
        let b = offset + i
        return (words[b >> 5] >> UInt32(b & 31)) & 1 == 1 ? 1 : -1
    }

    /// The signs from element n on, flat (`[count − n]`): the block of a larger draw that starts
    /// at element n.
    public func dropping(first n: Int) -> SignTensor {
        precondition(n >= 0 && n <= count, "SignTensor.dropping: \(n) of \(count) signs")
        return SignTensor(shape: [count - n], words: words, offset: offset + n)
    }

    /// The ±1 values as an ordinary tensor (tests, and the oracle of the products).
    public var dense: Tensor { Tensor(shape: shape, scalars: (0..<count).map { self[$0] }) }
}

extension Tensor {
    /// y[n, h] = Σ_m r[n, m] v[n, m, h] for r `[N, M]` and signs v `[N, M, H]`, `[N, H]`: the
    /// batched product r_n V_n of `matmul(r.expandingShape(at: 1), v.dense)`, without the dense
    /// signs or N tiny GEMMs. Terms with r = 0 are skipped (r·(±1) = ±0 leaves a sum that starts at
    /// +0 unchanged). Linear in r; pullback r̄ = `signTransposedProducts(ȳ, v)`.
    public static func signProducts(_ r: Tensor, _ v: SignTensor) -> Tensor {
        precondition(r.rank == 2 && v.shape.count == 3 && v.shape[0] == r.shape[0] && v.shape[1] == r.shape[1],
                     "signProducts: r must be [N, M] and v [N, M, H], have \(r.shape) and \(v.shape)")
        let (n, m, h) = (v.shape[0], v.shape[1], v.shape[2])
        FlopCounter.current?.add(2 * n * m * h)
        let value = makeBuffer(n * h) { out in
            SignPatterns.withTable { table in
                r.scalars.withUnsafeBufferPointer { r in
                    v.words.withUnsafeBufferPointer { words in
                        let lanes = (h + 7) / 8
                        var row = [SIMD8<Double>](repeating: .zero, count: lanes)
                        for i in 0..<n {
                            for c in 0..<lanes { row[c] = .zero }
                            for p in 0..<m {
                                let x = r[i * m + p]
                                if x == 0 { continue }
                                let start = v.offset + (i * m + p) * h
                                for c in 0..<lanes {
                                    row[c] += SIMD8(repeating: x) * table[SignPatterns.byte(words, start + 8 * c)]
                                }
                            }
                            for e in 0..<h { out[i * h + e] = row[e / 8][e % 8] }
                        }
                    }
                }
            }
        }
        return record(shape: [n, h], scalars: value, inputs: [r]) { g, _, _ in [signTransposedProducts(g, v)] }
    }

    /// y[n, m] = Σ_h g[n, h] v[n, m, h] for g `[N, H]` and signs v `[N, M, H]`, `[N, M]`: the
    /// adjoint of `signProducts` (g_n V_nᵀ). Linear in g; pullback ḡ = `signProducts(ȳ, v)`.
    public static func signTransposedProducts(_ g: Tensor, _ v: SignTensor) -> Tensor {
        precondition(g.rank == 2 && v.shape.count == 3 && v.shape[0] == g.shape[0] && v.shape[2] == g.shape[1],
                     "signTransposedProducts: g must be [N, H] and v [N, M, H], have \(g.shape) and \(v.shape)")
        let (n, m, h) = (v.shape[0], v.shape[1], v.shape[2])
        FlopCounter.current?.add(2 * n * m * h)
        let value = makeBuffer(n * m) { out in
            SignPatterns.withTable { table in
                g.scalars.withUnsafeBufferPointer { g in
                    v.words.withUnsafeBufferPointer { words in
                        let lanes = (h + 7) / 8
                        // g's row padded with zeros to whole lanes: the bits past H multiply zeros.
                        var row = [SIMD8<Double>](repeating: .zero, count: lanes)
                        for i in 0..<n {
                            for e in 0..<h { row[e / 8][e % 8] = g[i * h + e] }
                            for p in 0..<m {
                                let start = v.offset + (i * m + p) * h
                                var sum = SIMD8<Double>.zero
                                for c in 0..<lanes { sum += row[c] * table[SignPatterns.byte(words, start + 8 * c)] }
                                out[i * m + p] = sum.sum()
                            }
                        }
                    }
                }
            }
        }
        return record(shape: [n, m], scalars: value, inputs: [g]) { gy, _, _ in [signProducts(gy, v)] }
    }
}

/// The 256 patterns of eight ±1 lanes (lane e is +1 when bit e of the byte is set) and the read of
/// eight consecutive sign bits from any position: packed Rademacher signs eight at a time.
public enum SignPatterns {
    static let table: [SIMD8<Double>] = (0..<256).map { byte in
        var lanes = SIMD8<Double>()
        for e in 0..<8 { lanes[e] = (byte >> e) & 1 == 1 ? 1 : -1 }
        return lanes
    }

    static func withTable<T>(_ body: (UnsafeBufferPointer<SIMD8<Double>>) -> T) -> T {
        table.withUnsafeBufferPointer(body)
    }

    /// out[e] = scale · (±1 of bit `first + e`) for e < count: the signs of packed words (bit i of
    /// word w is sign 32w + i, +1 when set), eight per table lookup. scale·(±1) is exact, so this
    /// equals the element-by-element product to the last bit.
    public static func expand(_ words: UnsafeBufferPointer<UInt32>, from first: Int, count: Int, scale: Double,
                              into out: UnsafeMutablePointer<Double>) {
        precondition(first >= 0 && first + count <= words.count * 32, "SignPatterns.expand: bits \(first)..<\(first + count) past \(words.count) words")
        withTable { table in
            let s = SIMD8(repeating: scale)
            var e = 0
            while e + 8 <= count {
                UnsafeMutableRawPointer(out + e).storeBytes(of: s * table[byte(words, first + e)], as: SIMD8<Double>.self)
                e += 8
            }
            if e < count {
                let lanes = s * table[byte(words, first + e)]
                for i in 0..<(count - e) { out[e + i] = lanes[i] }
            }
        }
    }

    /// Bits b … b + 7 of the packed words as a byte (bits past the last word read as 0).
    @inline(__always)
    static func byte(_ words: UnsafeBufferPointer<UInt32>, _ b: Int) -> Int {
        let w = b >> 5
        let low = UInt64(words[w]), high = w + 1 < words.count ? UInt64(words[w + 1]) : 0
        return Int(truncatingIfNeeded: ((low | high << 32) >> UInt64(b & 31)) & 0xFF)
    }
}

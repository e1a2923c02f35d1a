import Autodiff
import Testing

/// Forward values against direct definitions.
@Suite struct OperationValues {
    /// Cᵢⱼ = Σₖ op(A)ᵢₖ op(B)ₖⱼ, by a triple loop, for every transpose combination and batch mode.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulMatchesTripleLoop(_ flags: (Bool, Bool)) {
        let (tA, tB) = flags
        var rng = SplitMix(seed: 11)
        let n = 4, k = 3, m = 5, batch = 2
        for (aBatched, bBatched) in [(false, false), (true, true), (true, false), (false, true)] {
            let aShape = (aBatched ? [batch] : []) + (tA ? [k, n] : [n, k])
            let bShape = (bBatched ? [batch] : []) + (tB ? [m, k] : [k, m])
            let a = Tensor.random(aShape, using: &rng), b = Tensor.random(bShape, using: &rng)
            let c = Tensor.matmul(a, b, transposeA: tA, transposeB: tB)
            let batches = aBatched || bBatched ? batch : 1
            #expect(c.shape == (aBatched || bBatched ? [batch, n, m] : [n, m]))
            for p in 0..<batches {
                for i in 0..<n { for j in 0..<m {
                    var s = 0.0
                    for q in 0..<k {
                        let ai = (aBatched ? p * n * k : 0) + (tA ? q * n + i : i * k + q)
                        let bi = (bBatched ? p * k * m : 0) + (tB ? j * k + q : q * m + j)
                        s += a.scalars[ai] * b.scalars[bi]
                    }
                    #expect(abs(c.scalars[p * n * m + i * m + j] - s) < 1e-12)
                } }
            }
        }
    }

    /// gram(A) = A Aᵀ and gram(A, transposed) = Aᵀ A against GEMM, symmetric to the bit.
    @Test func gramMatchesProducts() {
        var rng = SplitMix(seed: 12)
        let a = Tensor.random([7, 4], using: &rng)
        let (rows, columns) = (Tensor.gram(a), Tensor.gram(a, transposed: true))
        #expect(rows.shape == [7, 7] && columns.shape == [4, 4])
        #expect(maxDifference(rows, Tensor.matmul(a, a, transposeB: true)) < 1e-12)
        #expect(maxDifference(columns, Tensor.matmul(a, a, transposeA: true)) < 1e-12)
        #expect(columns.scalars == columns.transposed().scalars)
    }

    /// A x = b holds for the solution; a singular A gives NaN, not a crash.
    @Test func solveSatisfiesSystem() {
        var rng = SplitMix(seed: 5)
        let a = Tensor.random([6, 6], using: &rng) + identity(6) * 2
        let b = Tensor.random([6, 3], using: &rng)
        let x = Tensor.solve(a, b)
        #expect(maxDifference(Tensor.matmul(a, x), b) < 1e-12)
        #expect(!Tensor.solve(Tensor.zeros([2, 2]), Tensor([1, 1])).isFinite)
    }

    @Test func broadcastingAddsAlongAlignedAxes() {
        let a = Tensor(shape: [2, 1, 3], scalars: [1, 2, 3, 4, 5, 6])
        let b = Tensor(rows: [[10, 20, 30], [40, 50, 60]])
        let c = a + b  // [2, 2, 3]: c[i, j, k] = a[i, 0, k] + b[j, k]
        #expect(c.shape == [2, 2, 3])
        #expect(c.scalars == [11, 22, 33, 41, 52, 63, 14, 25, 36, 44, 55, 66])
    }

    @Test func sumPermuteSliceConcatenate() {
        let x = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        #expect(x.sum(alongAxis: 0).scalars == [5, 7, 9])
        #expect(x.sum(alongAxis: 1, keepingDimensions: true).shape == [2, 1])
        #expect(x.sum(alongAxis: 1).scalars == [6, 15])
        #expect(x.sum().scalar == 21)
        #expect(x.transposed().scalars == [1, 4, 2, 5, 3, 6])
        #expect(x.slice(1..<3, alongAxis: 1).scalars == [2, 3, 5, 6])
        #expect(x.select(1, alongAxis: 0).scalars == [4, 5, 6])
        #expect(x.padded(before: 1, after: 0, alongAxis: 1).scalars == [0, 1, 2, 3, 0, 4, 5, 6])
        #expect(Tensor.concatenate([x, x.slice(0..<1, alongAxis: 1)], alongAxis: 1).scalars == [1, 2, 3, 1, 4, 5, 6, 4])
        #expect(Tensor.stack([Tensor([1, 2]), Tensor([3, 4])], alongAxis: 1).scalars == [1, 3, 2, 4])
        let y = Tensor(shape: [2, 3, 4], scalars: (0..<24).map(Double.init))
        #expect(y.permuted([2, 0, 1])[3, 1, 2] == y[1, 2, 3])
        #expect(y.sum(alongAxes: [0, 2]).scalars == [60, 92, 124])
    }

    /// Stable forms: softplus(±800), σ(±800), softmax rows sum to 1, log Σ exp of large values.
    @Test func numericallyStableForms() {
        let x = Tensor([-800, -1, 0, 1, 800])
        #expect(x.softplus().scalars[0] == 0)
        #expect(x.softplus().scalars[4] == 800)
        #expect(abs(x.softplus().scalars[2] - 0.6931471805599453) < 1e-15)
        let e = 2.718281828459045
        let expected: [Double] = [0, 1 / (1 + e), 0.5, 1 / (1 + 1 / e), 1]
        let sigmoid = x.sigmoid().scalars
        #expect(maxDifference(sigmoid, expected) < 1e-15)
        let s = Tensor(rows: [[1000, 1001], [-5, 7]]).softmax(alongAxis: 1)
        #expect(maxDifference(s.sum(alongAxis: 1), Tensor([1, 1])) < 1e-15)
        let lse = Tensor(rows: [[1000, 1000]]).logSumExp(alongAxis: 1)
        #expect(abs(lse.scalar - (1000 + 0.6931471805599453)) < 1e-12)
    }
}

/// The specialised loops of broadcast elementwise operations (contiguous and broadcast inner
/// axes) against the obviously correct form: each output element computed from its own index.
@Suite struct BroadcastLoops {
    static let shapePairs: [([Int], [Int])] = [
        ([3, 4, 5], [3, 4, 5]), ([3, 4, 5], [3, 4, 1]), ([3, 4, 1], [3, 4, 5]), ([3, 1, 5], [1, 4, 5]),
        ([5], [3, 4, 5]), ([3, 4, 5], [1]), ([2, 1, 3], [2, 4, 1]), ([4, 1], [1, 6]), ([2, 3, 1, 5], [3, 4, 1]),
    ]

    /// x[index broadcast to shape], read by the definition of broadcasting.
    static func element(_ t: Tensor, at index: [Int], in shape: [Int]) -> Double {
        let offset = shape.count - t.shape.count
        var flat = 0
        for (axis, extent) in t.shape.enumerated() { flat = flat * extent + (extent == 1 ? 0 : index[axis + offset]) }
        return t.scalars[flat]
    }

    static func indices(_ shape: [Int]) -> [[Int]] {
        shape.reduce([[]]) { prefixes, extent in prefixes.flatMap { p in (0..<extent).map { p + [$0] } } }
    }

    static func shape(_ a: [Int], _ b: [Int]) -> [Int] {
        let rank = max(a.count, b.count)
        return (0..<rank).map { axis in
            let x = axis - (rank - a.count) >= 0 ? a[axis - (rank - a.count)] : 1
            let y = axis - (rank - b.count) >= 0 ? b[axis - (rank - b.count)] : 1
            return max(x, y)
        }
    }

    @Test(arguments: shapePairs.indices)
    func arithmeticMatchesTheDefinitionBitwise(pair: Int) {
        var rng = SplitMix(seed: UInt64(pair + 1))
        let (sa, sb) = Self.shapePairs[pair]
        let a = Tensor.random(sa, using: &rng), b = Tensor.random(sb, in: 0.5...1.5, using: &rng)
        let shape = Self.shape(sa, sb)
        let ops: [(String, (Tensor, Tensor) -> Tensor, (Double, Double) -> Double)] = [("+", +, +), ("-", -, -), ("*", *, *), ("/", /, /)]
        for (name, op, scalar) in ops {
            let result = op(a, b)
            #expect(result.shape == shape)
            let expected = Self.indices(shape).map { scalar(Self.element(a, at: $0, in: shape), Self.element(b, at: $0, in: shape)) }
            #expect(result.scalars == expected, "\(name) on \(sa) and \(sb)")
        }
    }

    /// The fused a ⊙ b + √c⁺ ⊙ v gives what its one-line form gives, to the last bit, including
    /// at c = 0, −0, negative and NaN (all contribute +0).
    @Test(arguments: shapePairs.indices)
    func fusedNodeUpdateMatchesTheDefinitionBitwise(pair: Int) {
        var rng = SplitMix(seed: UInt64(pair + 100))
        let (sa, sb) = Self.shapePairs[pair]
        let shape = Self.shape(sa, sb)
        let a = Tensor.random(sa, using: &rng), b = Tensor.random(sb, using: &rng), v = Tensor.random(shape, using: &rng)
        var cs = Tensor.random(shape, using: &rng).scalars
        for (i, special) in [0.0, -0.0, -1.0, .nan].enumerated() where i < cs.count { cs[i] = special }
        let c = Tensor(shape: shape, scalars: cs)
        let fused = Tensor.productPlusRootOfPositivePart(a, b, root: c, times: v)
        let expected = Self.indices(shape).enumerated().map { flat, index -> Double in
            let m = cs[flat]
            return Self.element(a, at: index, in: shape) * Self.element(b, at: index, in: shape) + (m > 0 ? m.squareRoot() : 0) * v.scalars[flat]
        }
        #expect(fused.scalars.map(\.bitPattern) == expected.map(\.bitPattern), "on \(sa) and \(sb)")
    }
}

/// softplus and σ from one exponential equal `softplus()` and `sigmoid()` to the last bit, at
/// both signs, ±0, large |x|; NaN stays NaN (its sign bit, which no result reads, may differ).
@Test func sharedExponentialSoftplusAndSigmoidAreBitwiseTheSeparateOnes() {
    var rng = SplitMix(seed: 7)
    let values = Tensor.random([200], in: -40...40, using: &rng).scalars + [0, -0.0, 1e-300, -1e-300, 745, -745, 800, -800, .nan]
    let x = Tensor(values)
    let (softplus, sigmoid) = x.softplusAndSigmoid()
    func bits(_ t: Tensor) -> [UInt64] { t.scalars.map { $0.isNaN ? Double.nan.bitPattern : $0.bitPattern } }
    #expect(bits(softplus) == bits(x.softplus()))
    #expect(bits(sigmoid) == bits(x.sigmoid()))
    #expect(softplus.scalars.last!.isNaN && sigmoid.scalars.last!.isNaN)
}

/// The vector-math softplus and σ (libmvec's exp and log1p) against libm's: within 1e-15
/// relative (a few ulp) at both signs, ±0, tiny and huge |x|; NaN stays NaN.
@Test func vectorMathSoftplusAndSigmoidAreLibmsToAFewUlp() {
    var rng = SplitMix(seed: 8)
    let values = Tensor.random([1000], in: -40...40, using: &rng).scalars + [0, -0.0, 1e-300, -1e-300, 745, -745, 800, -800, .nan]
    let x = Tensor(values)
    let (vs, vg) = x.softplusAndSigmoid(vectorMath: true), (ls, lg) = x.softplusAndSigmoid()
    for (a, b) in zip(vs.scalars + vg.scalars, ls.scalars + lg.scalars) where !b.isNaN {
        #expect(abs(a - b) <= 1e-15 * abs(b), "\(a) vs \(b)")
    }
    #expect(vs.scalars.last!.isNaN && vg.scalars.last!.isNaN)
}

/// The fused update's pullback for c, computed in one pass when no graph is recorded, equals
/// its tensor form (recorded) to the last bit, at c > 0, c = 0, −0 and c < 0.
@Test func fusedRootPullbackIsBitwiseItsTensorForm() {
    var rng = SplitMix(seed: 8)
    let shape = [3, 4, 5]
    let a = Tensor.random(shape, using: &rng), b = Tensor.random([3, 4, 1], using: &rng), v = Tensor.random(shape, using: &rng)
    var cs = Tensor.random(shape, using: &rng).scalars
    cs[0] = 0; cs[1] = -0.0; cs[2] = -0.5
    let c = Tensor(shape: shape, scalars: cs).requiringGradient()
    let weights = Tensor.random(shape, using: &rng)
    let y = (Tensor.productPlusRootOfPositivePart(a, b, root: c, times: v) * weights).sum()
    let oneRecorded = gradient(of: y, with: c, createGraph: true)      // pullbacks record: tensor form
    let onePass = gradient(of: y, with: c, createGraph: false)         // recording off: one pass
    #expect(oneRecorded.scalars.map(\.bitPattern) == onePass.scalars.map(\.bitPattern))
}

/// Sums over leading axes add whole rows into the output in row order: each output element is
/// the running sum of its inputs in row-major order, to the last bit.
@Test func sumsAcrossRowsAreRunningSumsInRowOrder() {
    var rng = SplitMix(seed: 9)
    let x = Tensor.random([3, 4, 5], using: &rng)
    let sum = x.sum(alongAxes: [0, 1])
    var expected = [Double](repeating: 0, count: 5)
    for i in 0..<3 { for j in 0..<4 { for k in 0..<5 { expected[k] += x.scalars[(i * 4 + j) * 5 + k] } } }
    #expect(sum.scalars.map(\.bitPattern) == expected.map(\.bitPattern))
    let middle = x.sum(alongAxis: 1)
    var expectedMiddle = [Double](repeating: 0, count: 15)
    for i in 0..<3 { for j in 0..<4 { for k in 0..<5 { expectedMiddle[i * 5 + k] += x.scalars[(i * 4 + j) * 5 + k] } } }
    #expect(middle.scalars.map(\.bitPattern) == expectedMiddle.map(\.bitPattern))
}

/// The products with packed signs against the dense ±1 tensor and batched GEMMs, for widths
/// below, at and across the eight-lane chunks, an offset into the words, and zeros in r (skipped).
@Test(arguments: [1, 7, 8, 9, 30, 33])
func signProductsMatchTheDenseProducts(width h: Int) {
    var rng = SplitMix(seed: UInt64(h))
    let (n, m) = (3, 5)
    let v = SignTensor(shape: [n, m, h], words: (0..<((13 + n * m * h + 31) / 32)).map { _ in UInt32.random(in: 0...UInt32.max, using: &rng) }, offset: 13)
    let dense = v.dense
    #expect(dense.scalars.allSatisfy { $0 == 1 || $0 == -1 })
    var rs = Tensor.random([n, m], using: &rng).scalars
    rs[1] = 0; rs[7] = -0.0
    let r = Tensor(shape: [n, m], scalars: rs), g = Tensor.random([n, h], using: &rng)
    let products = Tensor.signProducts(r, v), expected = Tensor.matmul(r.expandingShape(at: 1), dense).reshaped([n, h])
    #expect(products.shape == [n, h] && maxAbsDifference(products, expected) < 1e-14)
    let transposed = Tensor.signTransposedProducts(g, v)
    let expectedTransposed = Tensor.matmul(dense, g.expandingShape(at: 2)).reshaped([n, m])
    #expect(transposed.shape == [n, m] && maxAbsDifference(transposed, expectedTransposed) < 1e-14)
    // Adjoint pair: ⟨r, Vᵀg⟩ = ⟨Vr, g⟩.
    #expect(abs((r * transposed).sum().scalar - (products * g).sum().scalar) < 1e-13)
}

private func maxAbsDifference(_ a: Tensor, _ b: Tensor) -> Double {
    zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
}

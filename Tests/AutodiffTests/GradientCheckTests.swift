import Autodiff
import Testing

/// One differentiable operation under test: how to draw its inputs (random shapes from a seeded
/// generator) and the tensor function to differentiate.
struct OpCase: Sendable, CustomTestStringConvertible {
    let name: String
    let inputs: @Sendable (inout SplitMix) -> [Tensor]
    let function: @Sendable ([Tensor]) -> Tensor
    var testDescription: String { name }

    /// Random extent in 1...3 (small, so central differences over every element stay cheap).
    static func extent(_ rng: inout SplitMix) -> Int { Int.random(in: 1...3, using: &rng) }

    static func unary(_ name: String, positive: Bool = false, awayFromZero: Bool = false,
                      _ f: @escaping @Sendable (Tensor) -> Tensor) -> OpCase {
        OpCase(name: name, inputs: { rng in
            let shape = [extent(&rng), extent(&rng) + 1, extent(&rng)]
            if positive { return [Tensor.random(shape, in: 0.5...2, using: &rng)] }
            if awayFromZero { return [Tensor.randomAwayFromZero(shape, using: &rng)] }
            return [Tensor.random(shape, using: &rng)]
        }, function: { f($0[0]) })
    }

    static func binary(_ name: String, _ shapes: @escaping @Sendable (inout SplitMix) -> ([Int], [Int]),
                       secondRange: ClosedRange<Double> = -1...1,
                       _ f: @escaping @Sendable (Tensor, Tensor) -> Tensor) -> OpCase {
        OpCase(name: name, inputs: { rng in
            let (a, b) = shapes(&rng)
            return [Tensor.random(a, using: &rng), Tensor.random(b, in: secondRange, using: &rng)]
        }, function: { f($0[0], $0[1]) })
    }

    static func matmul(_ name: String, a: @escaping @Sendable (Int, Int, Int) -> [Int], b: @escaping @Sendable (Int, Int, Int) -> [Int],
                       tA: Bool, tB: Bool) -> OpCase {
        // (n, k, m) drawn; the closures give the stored shapes (batch 2 where rank 3).
        binary(name, { rng in
            let n = extent(&rng) + 1, k = extent(&rng) + 1, m = extent(&rng)
            return (a(n, k, m), b(n, k, m))
        }) { Tensor.matmul($0, $1, transposeA: tA, transposeB: tB) }
    }
}

let opCases: [OpCase] = {
    var cases: [OpCase] = [
        // dgemv: y = A x and Aᵀ x.
        .binary("matrix-vector A x", { r in let (n, k) = (OpCase.extent(&r) + 1, OpCase.extent(&r) + 1); return ([n, k], [k]) }) {
            Tensor.matrixVectorProduct($0, $1) },
        .binary("matrix-vector Aᵀ x", { r in let (n, k) = (OpCase.extent(&r) + 1, OpCase.extent(&r) + 1); return ([k, n], [k]) }) {
            Tensor.matrixVectorProduct($0, $1, transposeA: true) },
        // Arithmetic with broadcasting.
        .binary("add same shape", { r in let s = [OpCase.extent(&r), OpCase.extent(&r)]; return (s, s) }, +),
        .binary("add broadcast [a,b,c]+[b,1]", { r in
            let a = OpCase.extent(&r), b = OpCase.extent(&r) + 1, c = OpCase.extent(&r) + 1
            return ([a, b, c], [b, 1]) }, +),
        .binary("add scalar", { r in ([], [OpCase.extent(&r), OpCase.extent(&r)]) }, +),
        .binary("sub broadcast [a,1,c]-[b,c]", { r in
            let a = OpCase.extent(&r), b = OpCase.extent(&r) + 1, c = OpCase.extent(&r)
            return ([a, 1, c], [b, c]) }, -),
        .binary("mul broadcast [a,b,c]*[c]", { r in
            let c = OpCase.extent(&r) + 1
            return ([OpCase.extent(&r), OpCase.extent(&r), c], [c]) }, *),
        .binary("mul same shape", { r in let s = [OpCase.extent(&r) + 1, OpCase.extent(&r)]; return (s, s) }, *),
        .binary("div broadcast [a,b]/[a,1]", { r in
            let a = OpCase.extent(&r) + 1
            return ([a, OpCase.extent(&r) + 1], [a, 1]) }, secondRange: 0.5...1.5, /),
        .binary("div scalar denominator", { r in ([OpCase.extent(&r), 2], []) }, secondRange: 0.5...1.5, /),
        .unary("neg") { -$0 },
        .unary("scalar arithmetic") { (2 - $0) * 3 / 1.5 + 0.25 },
        // Elementwise functions.
        .unary("exp") { $0.exp() },
        .unary("log", positive: true) { $0.log() },
        .unary("softplus") { $0.softplus() },
        .unary("softplus and sigmoid from one exp") { let (s, g) = $0.softplusAndSigmoid(); return s * 2 + g.square() },
        .unary("softplus and sigmoid by vector math") { let (s, g) = $0.softplusAndSigmoid(vectorMath: true); return s * 2 + g.square() },
        .unary("sigmoid") { $0.sigmoid() },
        .unary("tanh") { $0.tanh() },
        .unary("square") { $0.square() },
        .unary("sqrt", positive: true) { $0.sqrt() },
        .unary("pow 2.5", positive: true) { $0.pow(2.5) },
        .unary("pow 3 (any sign)") { $0.pow(3) },
        .unary("pow -1", positive: true) { $0.pow(-1) },
        .unary("relu (away from 0)", awayFromZero: true) { $0.relu() * $0 },
        .unary("sqrt of positive part (away from 0)", awayFromZero: true) { $0.squareRootOfPositivePart() + (-$0).squareRootOfPositivePart() * 2 },
        // Fused a ⊙ b + √c⁺ ⊙ v with a broadcast [a,1,c] and b [a,b,1]; c away from 0, both signs.
        OpCase(name: "fused product plus root of positive part", inputs: { rng in
            let (x, y, z) = (OpCase.extent(&rng), OpCase.extent(&rng) + 1, OpCase.extent(&rng) + 1)
            return [Tensor.random([x, 1, z], using: &rng), Tensor.random([x, y, 1], using: &rng),
                    Tensor.randomAwayFromZero([x, y, z], using: &rng), Tensor.random([x, y, z], using: &rng)]
        }, function: { Tensor.productPlusRootOfPositivePart($0[0], $0[1], root: $0[2], times: $0[3]) }),
        // Products with packed ±1 signs [N, M, H] (H = 11 spans two 8-lane chunks; the signs start
        // at bit 5 of their words), both linear ops composed with a nonlinear one.
        OpCase(name: "sign products r_n V_n", inputs: { rng in
            [Tensor.random([OpCase.extent(&rng) + 1, OpCase.extent(&rng) + 2], using: &rng)]
        }, function: { Tensor.signProducts($0[0].square() + $0[0], testSigns($0[0].shape[0], $0[0].shape[1], 11)) }),
        OpCase(name: "sign transposed products g_n V_nᵀ", inputs: { rng in
            [Tensor.random([OpCase.extent(&rng) + 1, 11], using: &rng)]
        }, function: { Tensor.signTransposedProducts($0[0].exp(), testSigns($0[0].shape[0], 3, 11)) }),
        .unary("sign and step are constants", awayFromZero: true) { $0 * $0.sign() + $0.step() },
        // Layout.
        .unary("reshape") { $0.reshaped([-1]).reshaped([1, -1]) * 1.5 },
        .unary("permute [2,0,1]") { $0.permuted([2, 0, 1]) },
        .unary("transpose last two axes") { $0.transposed() },
        .unary("expand [a,b,c] -> [2,a,b,c]") { $0.expanded(to: [2] + $0.shape) },
        .unary("expand axis of extent 1") { $0.sum(alongAxis: 1, keepingDimensions: true).expanded(to: $0.shape) * $0 },
        .unary("slice axis 1") { $0.slice(1..<$0.shape[1], alongAxis: 1) },
        .unary("select index on axis 2") { $0.select($0.shape[2] - 1, alongAxis: 2) },
        .unary("padded axis 0") { $0.padded(before: 1, after: 2, alongAxis: 0) },
        .unary("concatenate axis 1") { Tensor.concatenate([$0, $0.square(), $0.slice(0..<1, alongAxis: 1)], alongAxis: 1) },
        .unary("stack axis 0 and -1") { Tensor.stack([$0, $0.exp()], alongAxis: 0) + Tensor.stack([$0, $0], alongAxis: -1).sum(alongAxis: -1) },
        // Reductions.
        .unary("sum all") { $0.sum() },
        .unary("sum axis 1") { $0.sum(alongAxis: 1) },
        .unary("sum axes [0,2] keepdims") { $0.sum(alongAxes: [0, 2], keepingDimensions: true) },
        .unary("mean axis -1") { $0.mean(alongAxis: -1) },
        .unary("mean all") { $0.mean() },
        .unary("softmax axis -1") { $0.softmax(alongAxis: -1) },
        .unary("softmax axis 0") { $0.softmax(alongAxis: 0) },
        .unary("logSumExp axis 1") { $0.logSumExp(alongAxis: 1) },
        .unary("gram A Aᵀ") { Tensor.gram($0.reshaped([$0.shape[0], -1])) },
        .unary("gram Aᵀ A") { Tensor.gram($0.reshaped([$0.shape[0], -1]), transposed: true) },
        .binary("dot", { r in let s = [OpCase.extent(&r), OpCase.extent(&r)]; return (s, s) }) { Tensor.dot($0, $1) },
        // Linear solve A x = b with a well-conditioned A (random + 3I).
        OpCase(name: "solve vector b", inputs: { rng in
            let n = OpCase.extent(&rng) + 1
            return [Tensor.random([n, n], using: &rng) + identity(n) * 3, Tensor.random([n], using: &rng)]
        }, function: { Tensor.solve($0[0], $0[1]) }),
        OpCase(name: "solve matrix b", inputs: { rng in
            let n = OpCase.extent(&rng) + 1
            return [Tensor.random([n, n], using: &rng) + identity(n) * 3, Tensor.random([n, OpCase.extent(&rng)], using: &rng)]
        }, function: { Tensor.solve($0[0], $0[1]) }),
    ]
    // Matrix products: every transpose combination, 2-D and batched, and a shared 2-D operand.
    for (tA, tB) in [(false, false), (true, false), (false, true), (true, true)] {
        cases.append(.matmul("matmul 2-D tA=\(tA) tB=\(tB)",
                             a: { n, k, _ in tA ? [k, n] : [n, k] }, b: { _, k, m in tB ? [m, k] : [k, m] }, tA: tA, tB: tB))
        cases.append(.matmul("matmul batched tA=\(tA) tB=\(tB)",
                             a: { n, k, _ in tA ? [2, k, n] : [2, n, k] }, b: { _, k, m in tB ? [2, m, k] : [2, k, m] }, tA: tA, tB: tB))
        cases.append(.matmul("matmul [batch]x[2-D] tA=\(tA) tB=\(tB)",
                             a: { n, k, _ in tA ? [2, k, n] : [2, n, k] }, b: { _, k, m in tB ? [m, k] : [k, m] }, tA: tA, tB: tB))
        cases.append(.matmul("matmul [2-D]x[batch] tA=\(tA) tB=\(tB)",
                             a: { n, k, _ in tA ? [k, n] : [n, k] }, b: { _, k, m in tB ? [2, m, k] : [2, k, m] }, tA: tA, tB: tB))
    }
    return cases
}()

/// Fixed ±1 signs `[n, m, h]` from bit 5 of pseudo-random words.
func testSigns(_ n: Int, _ m: Int, _ h: Int) -> SignTensor {
    var rng = SplitMix(seed: UInt64(1000 * n + 10 * m + h))
    return SignTensor(shape: [n, m, h], words: (0..<((5 + n * m * h + 31) / 32)).map { _ in UInt32.random(in: 0...UInt32.max, using: &rng) }, offset: 5)
}

func identity(_ n: Int) -> Tensor {
    Tensor(shape: [n, n], scalars: (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 })
}

/// Every op's first, second and third derivatives against central finite differences of the
/// derivative one order lower (see `GradientCheck`), on random shapes from three seeds.
@Test("reverse mode matches finite differences", arguments: opCases, [1, 2, 3])
func gradientCheck(_ op: OpCase, order: Int) {
    for seed: UInt64 in [1, 2, 3] {
        var rng = SplitMix(seed: seed &* 7919 &+ UInt64(order))
        let inputs = op.inputs(&rng)
        var weightRNG = SplitMix(seed: seed &+ 101)
        let report = GradientCheck().check(order: order, at: inputs,
                                           weights: { Tensor.random($0, in: 0.2...1, using: &weightRNG) }, op.function)
        #expect(report.worstRelativeError < 1e-6,
                "\(op.name), seed \(seed), input shapes \(inputs.map(\.shape)): \(report)")
    }
}

/// The checker must be able to fail: for f(x) = detached(x)·x autodiff (rightly) sees only one
/// factor, giving x where central differences see 2x.
@Test func gradientCheckDetectsAWrongDerivative() {
    var rng = SplitMix(seed: 9)
    let x = Tensor.random([3], in: 0.5...1, using: &rng)
    let report = GradientCheck().check(order: 1, at: [x], weights: { Tensor.ones($0) }) { $0[0].detached() * $0[0] }
    #expect(report.worstRelativeError > 0.1)
}

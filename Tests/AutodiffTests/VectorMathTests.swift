import Autodiff
import Foundation
import Testing

/// libmvec's exp, log1p and the softplus built from them against the scalar libm, over the ranges
/// the evaluations use (kernel exponents down to underflow, softplus on ±40), within glibc's
/// documented 4 ulp; tails shorter than a vector and in-place use included.
@Suite struct VectorMathAccuracy {
    func ulps(_ a: Double, _ b: Double) -> Double {
        if a == b { return 0 }
        return abs(a - b) / b.ulp
    }

    @Test func expAndLog1pAreWithinFourUlp() {
        #expect([128, 256, 512].contains(VectorMath.width))
        for count in [1, 3, 8, 13, 1000] {
            var x = (0..<count).map { -750 + 760 * Double($0) / Double(max(count - 1, 1)) }   // −750 … 10
            x[0] = -0.0
            let expected = x.map { Foundation.exp($0) }
            x.withUnsafeMutableBufferPointer { VectorMath.exp($0) }
            #expect(zip(x, expected).allSatisfy { ulps($0, $1) <= 4 || ($1 < Double.leastNormalMagnitude && abs($0 - $1) <= 4 * Double.leastNonzeroMagnitude) })
            var y = (0..<count).map { Double($0) / Double(max(count - 1, 1)) * 2 - 0.9 }          // −0.9 … 1.1
            let expectedLog = y.map { Foundation.log1p($0) }
            y.withUnsafeMutableBufferPointer { VectorMath.log1p($0) }
            #expect(zip(y, expectedLog).allSatisfy { ulps($0, $1) <= 4 })
        }
    }

    @Test func softplusMatchesTheDifferentiableOp() {
        let x = Tensor(shape: [5, 7], scalars: (0..<35).map { -40 + 80 * Double($0) / 34 })
        let fast = VectorMath.softplus(x).scalars, slow = x.softplus().scalars
        #expect(zip(fast, slow).allSatisfy { abs($0 - $1) <= 8 * $1.ulp })
    }
}

@testable import Autodiff
import Testing

@Suite struct GraphSemantics {
    /// d/dx Σ x² = 2x: a node used twice accumulates both contributions.
    @Test func reusedNodeAccumulates() {
        let x = Tensor([1, -2, 3]).requiringGradient()
        let g = gradient(of: (x * x).sum(), with: x)
        #expect(g.scalars == [2, -4, 6])
    }

    /// d³/dx³ Σ x³ = 6 at every x, by three nested reverse passes.
    @Test func thirdDerivativeOfCube() {
        let x = Tensor([0.5, -1.5, 2]).requiringGradient()
        let g1 = gradient(of: x.pow(3).sum(), with: x, createGraph: true)   // 3x²
        let g2 = gradient(of: g1.sum(), with: x, createGraph: true)          // 6x
        let g3 = gradient(of: g2.sum(), with: x)                             // 6
        #expect(maxDifference(g1, Tensor([0.75, 6.75, 12])) < 1e-12)
        #expect(maxDifference(g2, Tensor([3, -9, 12])) < 1e-12)
        #expect(g3.scalars == [6, 6, 6])
    }

    /// Without createGraph the gradients are constants (no graph kept); with it they are nodes.
    @Test func createGraphControlsRecording() {
        let x = Tensor([1, 2]).requiringGradient()
        let y = (x.exp() * x).sum()
        #expect(!gradient(of: y, with: x).requiresGradient)
        #expect(gradient(of: y, with: x, createGraph: true).requiresGradient)
        #expect(!withoutGradients { x * x }.requiresGradient)
    }

    /// A target that y does not depend on gets zeros; so does anything behind detached().
    @Test func unreachableAndDetachedGiveZero() {
        let x = Tensor([1, 2]).requiringGradient()
        let z = Tensor([3.0]).requiringGradient()
        let gs = gradients(of: (x.detached() * x).sum(), with: [x, z])
        #expect(gs[0].scalars == [1, 2])
        #expect(gs[1].scalars == [0])
        let constant = Tensor(5)
        #expect(gradient(of: constant, with: x).scalars == [0, 0])
    }

    /// Gradient with respect to an intermediate result: y = Σ (2u)², u = x + 1 → ∂y/∂u = 8u.
    @Test func gradientWithRespectToIntermediate() {
        let x = Tensor([1, 2]).requiringGradient()
        let u = x + 1
        let gs = gradients(of: (u * 2).square().sum(), with: [u, x])
        #expect(gs[0].scalars == [16, 24])
        #expect(gs[1].scalars == [16, 24])
    }

    /// √max(x, 0) has zero derivative (not NaN) where x ≤ 0, also at second order.
    @Test func squareRootOfPositivePartIsFiniteAtZero() {
        let x = Tensor([-1, 0, 4]).requiringGradient()
        let g = gradient(of: x.squareRootOfPositivePart().sum(), with: x, createGraph: true)
        #expect(g.scalars == [0, 0, 0.25])
        let h = gradient(of: g.sum(), with: x)
        #expect(h.scalars == [0, 0, -1.0 / 32])
    }

    /// A long chain is walked without recursion (no stack overflow).
    @Test func longChain() {
        let x = Tensor([1.0]).requiringGradient()
        var y = x
        for _ in 0..<20_000 { y = y * 1.0001 }
        let g = gradient(of: y.sum(), with: x)
        #expect(abs(g.scalar - Foundation_pow(1.0001, 20_000)) < 1e-9 * g.scalar)
    }
}

@inline(__always) func Foundation_pow(_ a: Double, _ b: Double) -> Double { Tensor(a).pow(b).scalar }

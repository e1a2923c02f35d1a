import Autodiff
@testable import DKEFModel
import Foundation
import GSLNumerics
import Objectives
import Testing

func smallDKEF(dimension d: Int, m: Int = 6, hidden: Int = 5, seed: UInt64 = 1, kernels: [Double] = [0.0, 0.5185, 1.0]) -> DKEF {
    let stream = RandomStream(seed: seed)
    let config = DKEFConfiguration(dimension: d, inducingPoints: m, hiddenWidth: hidden, initialLogBandwidths: kernels)
    var model = try! DKEF(config, inducingPoints: stream.normal(shape: [m, d]), using: stream)
    // Non-trivial kernel weights.
    let u = model.parameters.count - 2
    model.parameters[u] = (stream.normal(shape: [kernels.count]) * 0.5).requiringGradient()
    return model
}

func maxAbs(_ a: Tensor, _ b: Tensor) -> Double { zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0 }

/// Exact diag ∇ₓ² f by one backward pass per dimension.
func exactDiagonalHessian(_ f: any LogDensityFunction, _ x: Tensor) -> Tensor {
    let leaf = x.requiringGradient()
    let s = score(of: f, at: leaf)
    let columns = (0..<x.shape[1]).map { i in gradient(of: s.select(i, alongAxis: 1).sum(), with: leaf).select(i, alongAxis: 1) }
    return Tensor.stack(columns, alongAxis: 1)
}

@Suite struct DKEFForward {
    /// log p̃(x) = −‖x‖²/8 + Σ_m α_m Σ_j w_j exp(−‖φ_j(x) − φ_j(z_m)‖² / (2·10^{l_j})), by loops.
    @Test func logDensityMatchesTheDefinition() {
        let model = smallDKEF(dimension: 3)
        let stream = RandomStream(seed: 2)
        let x = stream.normal(shape: [4, 3]), alpha = stream.normal(shape: [6])
        let value = withoutGradients { model.logDensity(x, alpha: alpha) }
        let w = model.kernelLogits.detached().softmax(alongAxis: 0).scalars
        for n in 0..<4 {
            var expected = -x.select(n, alongAxis: 0).square().sum().scalar / 8
            for m in 0..<6 {
                var k = 0.0
                for j in 0..<3 {
                    let fx = model.features(j, x.slice(n..<(n + 1), alongAxis: 0)).phi
                    let fz = model.features(j, model.inducingPoints.slice(m..<(m + 1), alongAxis: 0)).phi
                    let d2 = (fx - fz).square().sum().scalar
                    k += w[j] * exp(-d2 / (2 * pow(10, model.logBandwidths.scalars[j])))
                }
                expected += alpha.scalars[m] * k
            }
            #expect(abs(value.scalars[n] - expected) < 1e-12)
        }
    }

    /// With recording off the kernel matrix takes its one-pass path (`accumulatedKernel`); it
    /// equals the tensor expression (recording on, the parameters requiring gradients) to the last
    /// bit, for one kernel and for several, and so does log p̃.
    @Test(arguments: [[0.0], [0.0, 0.5185, 1.0]])
    func onePassKernelMatrixIsBitwiseTheTensorExpression(kernels: [Double]) {
        let model = smallDKEF(dimension: 4, m: 7, hidden: 5, kernels: kernels)
        let stream = RandomStream(seed: 4)
        let x = stream.normal(shape: [9, 4]), alpha = stream.normal(shape: [7])
        #expect(model.parameters.allSatisfy { $0.requiresGradient })
        let recorded = model.kernelMatrix(x), onePass = withoutGradients { model.kernelMatrix(x) }
        #expect(recorded.shape == onePass.shape)
        #expect(recorded.scalars.map(\.bitPattern) == onePass.scalars.map(\.bitPattern))
        let logDensity = model.logDensity(x, alpha: alpha), onePassLogDensity = withoutGradients { model.logDensity(x, alpha: alpha) }
        #expect(logDensity.scalars == onePassLogDensity.scalars)
    }

    /// The basis on points repeated M times gives the kernel matrix entries.
    @Test func basisOnRepeatedRowsIsTheKernelMatrix() {
        let model = smallDKEF(dimension: 2)
        let x = RandomStream(seed: 3).normal(shape: [5, 2])
        let repeated = x.expandingShape(at: 1).expanded(to: [5, 6, 2]).reshaped([30, 2])
        #expect(maxAbs(model.basis.logDensity(repeated).reshaped([5, 6]), model.kernelMatrix(x)) < 1e-12)
    }

    @Test func badConfigurationsAreRejected() {
        let stream = RandomStream(seed: 1)
        #expect(throws: DKEFError.self) { try DKEF(DKEFConfiguration(dimension: 0), inducingPoints: Tensor.zeros([200, 0]), using: stream) }
        #expect(throws: DKEFError.badInducingPoints(shape: [3, 2], expected: [200, 2])) {
            try DKEF(DKEFConfiguration(dimension: 2), inducingPoints: Tensor.zeros([3, 2]), using: stream)
        }
        #expect(throws: DKEFError.self) { try DKEF(DKEFConfiguration(dimension: 2, initialLogBandwidths: []), inducingPoints: Tensor.zeros([200, 2]), using: stream) }
    }
}

@Suite struct SpecialBackwardPasses {
    /// The gradient carried by both passes is the exact score (autodiff), for the density, the
    /// base and the basis functions.
    @Test func carriedGradientIsTheExactScore() {
        let model = smallDKEF(dimension: 3)
        let stream = RandomStream(seed: 4)
        let x = stream.normal(shape: [4, 3])
        let repeated = x.expandingShape(at: 1).expanded(to: [4, 6, 3]).reshaped([24, 3])
        let cases: [(any DiagonalHessianEstimating, Tensor)] = [
            (model.density(alpha: stream.normal(shape: [6])), x), (model.base, x), (model.basis, repeated),
        ]
        for (f, points) in cases {
            let exact = score(of: f, at: points.requiringGradient())
            for method in [DiagonalHessianMethod.approximateBackpropagation, .curvaturePropagation(RandomStream(seed: 5))] {
                #expect(maxAbs(f.scoreAndDiagonalHessian(at: points, method: method).score, exact) < 1e-12)
            }
        }
    }

    /// Approx BP is exact when every layer's Hessian is diagonal: DKEF with D = 1 and hidden width
    /// 1 (all nodes scalar) and no skip connection, and a feature net with diagonal weights
    /// (D = H = 3) under a linear head, y = Σ_l c_l f_l(x_l). It is not exact with dense weights,
    /// nor with the scalar model's skip connection: x fans out into f(x) and w_s x, which the
    /// kernel combines nonlinearly, and the dropped cross term 2 g″ f′ w_s is off-diagonal in the
    /// two copies of x. (So the check can fail.)
    @Test func approximateBackpropIsExactWhereTheHessianIsDiagonal() {
        var scalarModel = smallDKEF(dimension: 1, m: 4, hidden: 1)
        let stream = RandomStream(seed: 6)
        let x1 = stream.normal(shape: [7, 1])
        let withSkip = scalarModel.density(alpha: stream.normal(shape: [4]))
        #expect(maxAbs(withSkip.scoreAndDiagonalHessian(at: x1, method: .approximateBackpropagation).diagonal,
                       exactDiagonalHessian(withSkip, x1)) > 1e-6)
        for j in 0..<3 { scalarModel.parameters[1 + 7 * j + 6] = Tensor.zeros([1, 1]).requiringGradient() }
        let density = scalarModel.density(alpha: withSkip.alpha)
        #expect(maxAbs(density.scoreAndDiagonalHessian(at: x1, method: .approximateBackpropagation).diagonal,
                       exactDiagonalHessian(density, x1)) < 1e-10)

        var model = smallDKEF(dimension: 3, m: 4, hidden: 3, kernels: [0.0])
        for index in [0, 2, 4, 6] {  // W1, W2, W3, Wskip of kernel 0 made diagonal
            let w = model.layer(0, index).detached()
            let diagonal = (0..<9).map { $0 % 4 == 0 ? w.scalars[$0] + 0.5 : 0 }
            model.parameters[1 + index] = Tensor(shape: [3, 3], scalars: diagonal).requiringGradient()
        }
        let x3 = stream.normal(shape: [5, 3]), head = Tensor([0.7, -1.2, 0.4])
        let headed = LogDensityClosure { model.features(0, $0).phi.matmulVector(head) }
        let estimate = model.featureNetScoreAndDiagonal(0, x3, head: head, method: .approximateBackpropagation)
        #expect(maxAbs(estimate.diagonal, exactDiagonalHessian(headed, x3)) < 1e-10)
        #expect(maxAbs(estimate.score, score(of: headed, at: x3.requiringGradient())) < 1e-12)

        let dense = smallDKEF(dimension: 3, m: 4, hidden: 3, kernels: [0.0])
        let denseHeaded = LogDensityClosure { dense.features(0, $0).phi.matmulVector(head) }
        let denseEstimate = dense.featureNetScoreAndDiagonal(0, x3, head: head, method: .approximateBackpropagation)
        #expect(maxAbs(denseEstimate.diagonal, exactDiagonalHessian(denseHeaded, x3)) > 1e-3)
    }

    /// CP is unbiased: the mean of S_r² − S_i² over 3000 draws lies within 4.5 standard errors of
    /// the exact diagonal Hessian, elementwise, for the DKEF density at D = 3 and for a feature net
    /// with dense weights under a linear head.
    @Test func curvaturePropagationIsUnbiased() {
        let model = smallDKEF(dimension: 3, m: 5, hidden: 4)
        let stream = RandomStream(seed: 7)
        let x = stream.normal(shape: [3, 3])
        let density = model.density(alpha: stream.normal(shape: [5]))
        let head = Tensor([0.5, -1.0, 0.8, 0.3])
        let headed = LogDensityClosure { model.features(1, $0).phi.matmulVector(head) }
        let checks: [(Tensor, (RandomStream) -> Tensor)] = [
            (exactDiagonalHessian(density, x), { density.scoreAndDiagonalHessian(at: x, method: .curvaturePropagation($0)).diagonal }),
            (exactDiagonalHessian(headed, x), { model.featureNetScoreAndDiagonal(1, x, head: head, method: .curvaturePropagation($0)).diagonal }),
            // The authors' layout: a draw per (point, inducing point) pair at every node.
            (exactDiagonalHessian(density, x), { density.scoreAndDiagonalHessian(at: x, method: .curvaturePropagation($0, noise: .perPair)).diagonal }),
            (exactDiagonalHessian(density, x).sum(alongAxis: 1),
             { density.traceOfDiagonalHessian(at: x, method: .curvaturePropagation($0, noise: .perPair)) }),
        ]
        for (exact, estimate) in checks {
            let draws = 3000
            var sum = [Double](repeating: 0, count: exact.count), sumSquares = sum
            withoutGradients {
                for _ in 0..<draws {
                    let e = estimate(stream).scalars
                    for i in e.indices { sum[i] += e[i]; sumSquares[i] += e[i] * e[i] }
                }
            }
            for i in sum.indices {
                let mean = sum[i] / Double(draws)
                let se = ((sumSquares[i] / Double(draws) - mean * mean) / Double(draws - 1)).squareRoot()
                #expect(abs(mean - exact.scalars[i]) < 4.5 * se + 1e-12, "element \(i): CP mean \(mean) ± \(se), exact \(exact.scalars[i])")
            }
        }
    }
}

/// CP with per-pair noise (`CurvaturePropagationNoise.perPair`) is CP on the authors' (N, M, D)
/// expansion of log p̃.
@Suite struct PerPairCurvaturePropagation {
    func relative(_ a: Tensor, _ b: Tensor) -> Double {
        maxAbs(a, b) / max(b.scalars.map(abs).max() ?? 0, 1e-300)
    }

    /// The objective on the density equals ½‖u + Σ_m α_m R_m‖² + t⁰ + Σ_m α_m T_m from the terms
    /// of every basis function on the points repeated M times (`expanded: true`, the generic
    /// backward pass of each pair) with the same draws: value and parameter gradients, at D = 3
    /// and 7, with and without a recorded graph for the value.
    @Test(arguments: [3, 7])
    func equalsTheExpansionWithTheSameDraws(dimension d: Int) throws {
        let model = smallDKEF(dimension: d, m: 5, hidden: 6, seed: 60)
        let stream = RandomStream(seed: 61)
        let x = stream.normal(shape: [4, d]) * 1.3, alpha = stream.normal(shape: [5])
        let objective = ScoreMatching.curvaturePropagation(layout: .perPair)
        let noise = objective.drawNoise(points: 4, dimension: d, using: stream)
        func expansion() throws -> Tensor {
            let terms = try DensityTerms(objective, model: model, at: x, noise: noise, createGraph: true, expanded: true)
            guard case let .dense(r) = terms.basis else { preconditionFailure("the expansion gives dense residuals") }
            let residual = terms.target + (r * alpha.reshaped([1, -1, 1])).sum(alongAxis: 1)
            let linear = terms.baseLinear! + Tensor.matmul(terms.basisLinear!, alpha.reshaped([-1, 1])).reshaped([-1])
            return ((residual.square().sum(alongAxis: 1) * 0.5) + linear).mean()
        }
        let direct = try objective.evaluate(model.density(alpha: alpha), at: x, noise: noise, createGraph: true).value
        let expanded = try expansion()
        #expect(relative(direct, expanded) < 1e-10, "value: \(direct.scalar) against \(expanded.scalar)")
        let constant = try withoutGradients { try objective.evaluate(model.frozen().density(alpha: alpha), at: x, noise: noise).value }
        #expect(relative(constant, expanded) < 1e-10)
        // Relative to the largest gradient entry: each net's last bias cancels in φ(x) − φ(z_m), so
        // its exact gradient is 0 and both paths give rounding noise of ~1e-17 there.
        let (g1, g2) = (gradients(of: direct, with: model.parameters), gradients(of: expanded, with: model.parameters))
        let scale = g2.map { $0.scalars.map(abs).max() ?? 0 }.max()!
        for (i, (a, b)) in zip(g1, g2).enumerated() {
            #expect(maxAbs(a, b) < 1e-10 * scale, "parameter \(i): \(maxAbs(a, b)) against largest entry \(scale)")
        }
        // Not the per-point estimate: the same draws land elsewhere.
        let perPoint = try ScoreMatching.curvaturePropagation.evaluate(model.density(alpha: alpha), at: x, noise: noise).value
        #expect(relative(perPoint, expanded) > 1e-6)
    }

    /// The estimator and its settings carry the layout, per point by default.
    @Test func layoutReachesTheObjective() throws {
        #expect(try Estimator.cp.objective().description == ScoreMatching.curvaturePropagation.description)
        let perPair = try Estimator.cp.objective(ObjectiveSettings(curvaturePropagationNoise: .perPair))
        #expect(perPair.description.contains("per_pair"))
        #expect(throws: ObjectiveError.unknownNoiseLayout("pairs")) { try CurvaturePropagationNoise(named: "pairs") }
    }
}

@Suite struct ClosedFormAlpha {
    /// For every method whose objective is exactly quadratic in α for fixed draws (all but CP; FSM
    /// too, through the expansion path of `QuadraticSystem.fit`):
    /// J(α) − J(0) = ½ αᵀGα + bᵀα at random α, J evaluated directly on the DKEF density. This is
    /// the brute-force quadratic fit of the objective.
    @Test(arguments: [Estimator.sm, .ssm, .ssmVR, .dsm, .approxBP, .fsm])
    func systemMatchesTheObjective(estimator: Estimator) throws {
        let model = smallDKEF(dimension: 3, m: 5, hidden: 4)
        let stream = RandomStream(seed: 8)
        let x = stream.normal(shape: [6, 3])
        let objective = try estimator.objective(ObjectiveSettings(projectionCount: 2, sigma: 0.3))
        let noise = objective.drawNoise(points: 6, dimension: 3, using: stream)
        let system = try QuadraticSystem.fit(objective, model: model, at: x, noise: noise, createGraph: false)
        func j(_ alpha: Tensor) throws -> Double {
            try objective.evaluate(model.density(alpha: alpha), at: x, noise: noise, createGraph: false).value.scalar
        }
        let j0 = try j(Tensor.zeros([5]))
        for _ in 0..<4 {
            let alpha = stream.normal(shape: [5])
            let predicted = withoutGradients { system.value(at: alpha) }.scalar
            let direct = try j(alpha) - j0
            #expect(abs(predicted - direct) < 1e-9 * max(1, abs(direct)), "\(estimator): \(predicted) vs \(direct)")
        }
        // α minimises the regularised objective: its gradient Gα + b + λα vanishes.
        let lambda = pow(10, model.logLambda.scalar)
        let alpha = withoutGradients { system.alpha(logLambda: model.logLambda) }
        let residual = withoutGradients { Tensor.matmul(system.gram, alpha.reshaped([-1, 1])).reshaped([-1]) + system.linear + alpha * lambda }
        #expect(residual.scalars.allSatisfy { abs($0) < 1e-9 })
    }

    /// CP's G is built from exact scores (the same as SM's), and its b averages to SM's b
    /// (CP's trace estimates are unbiased, and both keep the q₀ cross term).
    @Test func curvaturePropagationSystemIsUnbiasedForExactOne() throws {
        let model = smallDKEF(dimension: 2, m: 4, hidden: 4)
        let stream = RandomStream(seed: 9)
        let x = stream.normal(shape: [5, 2])
        let exact = try QuadraticSystem.fit(Estimator.sm.objective(), model: model, at: x, noise: .none, createGraph: false)
        let cp = try Estimator.cp.objective()
        var samples: [[Double]] = []
        for _ in 0..<1500 {
            let system = try QuadraticSystem.fit(cp, model: model, at: x, noise: cp.drawNoise(points: 5, dimension: 2, using: stream), createGraph: false)
            #expect(maxAbs(system.gramSum, exact.gramSum) < 1e-12)
            samples.append(system.linear.scalars)
        }
        for m in 0..<4 {
            let values = samples.map { $0[m] }
            let mean = values.reduce(0, +) / Double(values.count)
            let se = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1) / Double(values.count)).squareRoot()
            #expect(abs(mean - exact.linear.scalars[m]) < 4.5 * se, "b[\(m)]: CP \(mean) ± \(se), exact \(exact.linear.scalars[m])")
        }
    }

    /// Batches add up: the system of a batch of 8 equals the sum of those of its two halves.
    @Test func systemsAreSummable() throws {
        let model = smallDKEF(dimension: 2)
        let x = RandomStream(seed: 10).normal(shape: [8, 2])
        let sm = try Estimator.sm.objective()
        let whole = try QuadraticSystem.fit(sm, model: model, at: x, noise: .none, createGraph: false)
        let halves = try QuadraticSystem.fit(sm, model: model, at: x.slice(0..<4, alongAxis: 0), noise: .none, createGraph: false)
            + QuadraticSystem.fit(sm, model: model, at: x.slice(4..<8, alongAxis: 0), noise: .none, createGraph: false)
        #expect(maxAbs(whole.gram, halves.gram) < 1e-12 && maxAbs(whole.linear, halves.linear) < 1e-12)
    }
}

extension Tensor {
    /// [N, H] · [H] → [N].
    func matmulVector(_ v: Tensor) -> Tensor { Tensor.matmul(self, v.reshaped([-1, 1])).reshaped([-1]) }
}

@Suite struct TrainingLossGradients {
    /// The training loss L(θ) = J_Xv(α(θ)), α(θ) = −(G(θ) + λI)⁻¹ b(θ) from X_t, differentiated
    /// through the closed form, the solve and the objective (third order for SM and SSM), against
    /// central differences with the same draws, for every method. Checked on every parameter
    /// tensor (a few elements of each).
    @Test(arguments: Estimator.allCases)
    func parameterGradientsMatchFiniteDifferences(estimator: Estimator) throws {
        let model = smallDKEF(dimension: 2, m: 3, hidden: 3, seed: 11, kernels: [0.0, 0.5])
        let stream = RandomStream(seed: 12)
        let xt = stream.normal(shape: [4, 2]), xv = stream.normal(shape: [3, 2])
        let objective = try estimator.objective(ObjectiveSettings(sigma: 0.3))
        let noiseT = objective.drawNoise(points: 4, dimension: 2, using: stream)
        let noiseV = objective.drawNoise(points: 3, dimension: 2, using: stream)
        func loss(_ m: DKEF, createGraph: Bool) throws -> Tensor {
            let system = try QuadraticSystem.fit(objective, model: m, at: xt, noise: noiseT, createGraph: createGraph)
            let alpha = GradientMode.$isRecording.withValue(createGraph) { system.alpha(logLambda: m.logLambda) }
            return try objective.evaluate(m.density(alpha: alpha), at: xv, noise: noiseV, createGraph: createGraph).value
        }
        let analytic = gradients(of: try loss(model, createGraph: true), with: model.parameters)
        let h = 1e-6
        for (k, parameter) in model.parameters.enumerated() {
            for i in Set([0, parameter.count / 2, parameter.count - 1]) {
                func shifted(_ delta: Double) throws -> Double {
                    var m = model
                    var values = parameter.scalars
                    values[i] += delta
                    m.parameters[k] = Tensor(shape: parameter.shape, scalars: values).requiringGradient()
                    return try loss(m, createGraph: false).scalar
                }
                let numeric = (try shifted(h) - shifted(-h)) / (2 * h)
                let error = abs(numeric - analytic[k].scalars[i]) / max(1, abs(numeric))
                #expect(error < 1e-5, "\(estimator) parameter \(k)[\(i)]: autodiff \(analytic[k].scalars[i]), finite difference \(numeric)")
            }
        }
    }
}

/// The forward-mode path against the straightforward autodiff formulation (the (N, M, D)
/// expansion and reverse-over-reverse): same seed, same batch; G, b, α, the training objective
/// and every parameter gradient equal to 1e-10 relative.
/// A frozen model (detached parameters, φ_j(Z) computed once) gives every method's quadratic
/// system and objective to the last bit, and a change of its parameters drops the kept features.
@Suite struct FrozenModels {
    @Test(arguments: Estimator.allCases)
    func frozenEqualsRecomputedBitwise(estimator: Estimator) throws {
        let model = smallDKEF(dimension: 3, m: 5, hidden: 4, seed: 31)
        let frozen = model.frozen()
        #expect(frozen.parameters.allSatisfy { !$0.requiresGradient })
        let objective = try estimator.objective(ObjectiveSettings(sigma: 0.3))
        let stream = RandomStream(seed: 32)
        let x = stream.normal(shape: [6, 3])
        let noise = objective.drawNoise(points: 6, dimension: 3, using: stream)
        func run(_ m: DKEF) throws -> [Double] {
            try withoutGradients {
                let system = try QuadraticSystem.fit(objective, model: m, at: x, noise: noise, createGraph: false)
                let alpha = system.alpha(logLambda: m.logLambda)
                let loss = try objective.evaluate(m.density(alpha: alpha), at: x, noise: noise, createGraph: false).value
                return system.gramSum.scalars + system.linearSum.scalars + [loss.scalar] + m.kernelMatrix(x).scalars
            }
        }
        #expect(try run(frozen).map(\.bitPattern) == run(model).map(\.bitPattern))
    }

    @Test func changedParametersDropTheKeptFeatures() {
        var frozen = smallDKEF(dimension: 2, m: 4, hidden: 3, seed: 33).frozen()
        frozen.parameters[0] = frozen.parameters[0] + 0.5   // move the inducing points
        let x = RandomStream(seed: 34).normal(shape: [3, 2])
        let recomputed = (try? DKEF(frozen.configuration, parameters: frozen.parameters))!
        #expect(withoutGradients { frozen.kernelMatrix(x) }.scalars == withoutGradients { recomputed.kernelMatrix(x) }.scalars)
    }
}

@Suite struct OptimisedPathsAreExact {
    func relative(_ a: Tensor, _ b: Tensor) -> Double {
        maxAbs(a, b) / max(b.scalars.map(abs).max() ?? 0, 1e-300)
    }

    /// Shapes [D, H]: D = 3 squares φ(Z)·φ̇ directly; D = 40 > 32 second directions takes the
    /// Gram route of Σ_r (φ(z)·φ̇_r)². Both form G from the dense residual (cheaper at M = 5);
    /// `factoredGramEqualsDense` checks the other route.
    @Test(arguments: Estimator.allCases, [[3, 4], [40, 2]])
    func fastEqualsStraightforward(estimator: Estimator, shape: [Int]) throws {
        let d = shape[0]
        let model = smallDKEF(dimension: d, m: 5, hidden: shape[1], seed: 21)
        let stream = RandomStream(seed: 22)
        let xt = stream.normal(shape: [6, d]), xv = stream.normal(shape: [4, d])
        let objective = try estimator.objective(ObjectiveSettings(projectionCount: 2, sigma: 0.3))
        let noiseT = objective.drawNoise(points: 6, dimension: d, using: stream)
        let noiseV = objective.drawNoise(points: 4, dimension: d, using: stream)

        func run(fast: Bool) throws -> (QuadraticSystem, Tensor, Tensor, [Tensor]) {
            let system = try QuadraticSystem.fit(objective, model: model, at: xt, noise: noiseT, createGraph: true, expanded: !fast)
            let alpha = system.alpha(logLambda: model.logLambda)
            let density = model.density(alpha: alpha)
            // CP and Approx BP need the layered density in both: the slow side sums the diagonal
            // of their backward pass with an N × M × H state (`propagate`).
            let f: any LogDensityFunction = fast ? density
                : estimator.needsLayeredModel ? DiagonalSumOracle(density: density) as any LogDensityFunction : LogDensityClosure { density.logDensity($0) }
            let loss = try objective.evaluate(f, at: xv, noise: noiseV).value
            return (system, alpha, loss, gradients(of: loss, with: model.parameters))
        }
        let (fs, fa, fl, fg) = try run(fast: true)
        let (ss, sa, sl, sg) = try run(fast: false)
        #expect(relative(fs.gramSum, ss.gramSum) < 1e-10)
        #expect(relative(fs.linearSum, ss.linearSum) < 1e-10)
        #expect(relative(fa, sa) < 1e-10)
        #expect(relative(fl, sl) < 1e-10)
        // Relative to the largest gradient entry: the output biases b₃ cancel in φ(x) − φ(z), so
        // their exact gradient is 0 and both paths give rounding noise there.
        let scale = sg.flatMap(\.scalars).map(abs).max()!
        for (k, (a, b)) in zip(fg, sg).enumerated() {
            #expect(maxAbs(a, b) / scale < 1e-10, "\(estimator) parameter \(k): \(maxAbs(a, b) / scale)")
        }
        for j in 0..<3 { #expect(sg[1 + 7 * j + 5].scalars.map(abs).max()! / scale < 1e-12) }
    }

    /// The traces by GEMMs against Σ_d of the diagonal the backward pass carries with an
    /// N × M × H state: Approx BP per basis function (the M-axis pass) and for the density (the
    /// pass summed at φ); CP per basis function and for the density with the same draws.
    @Test(arguments: [[3, 4], [40, 2], [7, 30]])
    func tracesEqualTheBackwardPass(shape: [Int]) {
        let d = shape[0]
        let model = smallDKEF(dimension: d, m: 5, hidden: shape[1], seed: 25)
        let stream = RandomStream(seed: 26)
        let x = stream.normal(shape: [6, d]) * 1.5, alpha = stream.normal(shape: [5])
        let fast = model.approximateBackpropagationTraces(at: x)
        let slow = model.basisScoresAndDiagonalHessians(at: x, method: .approximateBackpropagation).diagonals.sum(alongAxis: 2)
        #expect(fast.shape == [6, 5] && relative(fast, slow) < 1e-12, "\(relative(fast, slow))")
        // CP per basis function: without a graph (blocked kernels) and with one (both with the
        // first layer from per-point GEMMs, `eachPartnerChannel`), against the full backward pass
        // with the same draws; the stream ends in the same state.
        func slowCP() -> (Tensor, Double) {
            let noise = RandomStream(seed: 27)
            let t = GradientMode.$isRecording.withValue(true) {
                model.basisScoresAndDiagonalHessians(at: x, method: .curvaturePropagation(noise)).diagonals.sum(alongAxis: 2)
            }
            return (t, noise.uniform())
        }
        for recording in [false, true] {
            let noise = RandomStream(seed: 27)
            let fastCP = GradientMode.$isRecording.withValue(recording) { model.curvaturePropagationBasisTraces(at: x, noise: noise) }
            let (slowTrace, slowNext) = slowCP()
            #expect(fastCP.shape == [6, 5] && relative(fastCP, slowTrace) < 1e-12, "recording \(recording): \(relative(fastCP, slowTrace))")
            #expect(noise.uniform() == slowNext)
        }
        // The blocking of the pass without a graph changes nothing but the GEMMs' rounding (1 point,
        // 4 with a remainder, all 6 at once). Not to the bit: OpenBLAS's SkylakeX build takes its
        // small-matrix kernel, which accumulates in another order, by the GEMM's size (seen on an
        // Intel Xeon at H = 30; to the bit on AMD Zen 4 with the Cooperlake kernels).
        let blocked = [1, 4, 6].map { size in
            withoutGradients { CurvaturePropagationKernels.basisTraces(model, at: x, noise: RandomStream(seed: 27), pointsPerBlock: size) }
        }
        #expect(relative(blocked[0], blocked[1]) < 1e-14 && relative(blocked[1], blocked[2]) < 1e-14,
                "\(relative(blocked[0], blocked[1])), \(relative(blocked[1], blocked[2]))")
        let density = model.density(alpha: alpha), oracle = DiagonalSumOracle(density: density)
        for method in [{ DiagonalHessianMethod.approximateBackpropagation }, { .curvaturePropagation(RandomStream(seed: 29)) }] {
            let (trace, expected) = (density.traceOfDiagonalHessian(at: x, method: method()), oracle.traceOfDiagonalHessian(at: x, method: method()))
            #expect(trace.shape == [6] && relative(trace, expected) < 1e-12, "\(method()): \(relative(trace, expected))")
        }
    }

    /// G = Σₙ Cₙ(EₙᵀEₙ)Cₙᵀ and G from the stacked EₙCₙᵀ against the Gram matrix of the dense
    /// residual CₙEₙᵀ, with the parameter gradients of a function of G; and the cost rule picks
    /// the factored form only where it does fewer multiply-adds (M = 200, Q = 93: from R ≈ 180
    /// directions on).
    @Test func factoredGramEqualsDense() {
        let model = smallDKEF(dimension: 12, m: 9, hidden: 2, seed: 44)
        let x = RandomStream(seed: 45).normal(shape: [4, 12])
        let f = model.kernelDirectionalDerivatives(at: x, first: .coordinates, second: nil)
        let dense = BasisResidual.dense(f.first).gramSum
        let gd = gradients(of: (dense * dense).sum(), with: model.parameters)
        let scale = gd.flatMap(\.scalars).map(abs).max()!
        for fast in [f.factoredGramSum, f.stackedGramSum] {
            #expect(relative(fast, dense) < 1e-12, "\(relative(fast, dense))")
            let gf = gradients(of: (fast * fast).sum(), with: model.parameters)
            for (a, b) in zip(gf, gd) { #expect(maxAbs(a, b) / scale < 1e-12) }
        }
        func rule(m: Int, q: Int, r: Int) -> Bool {
            DKEF.KernelDirectionalDerivatives(scales: [Tensor.zeros([1, m])], inducingFeatures: [Tensor.zeros([m, q])],
                                              coordinates: [Tensor.zeros([1, r, q])], secondSum: nil).prefersFactoredGram
        }
        #expect(!rule(m: 200, q: 93, r: 100) && !rule(m: 200, q: 93, r: 170) && rule(m: 200, q: 93, r: 200) && rule(m: 200, q: 93, r: 500))
        // Stacked rather than dense from R > Q/3 on (SSM's one projection and D ≤ 20 stay dense).
        func stacked(q: Int, r: Int) -> Bool {
            DKEF.KernelDirectionalDerivatives(scales: [Tensor.zeros([1, 200])], inducingFeatures: [Tensor.zeros([200, q])],
                                              coordinates: [Tensor.zeros([1, r, q])], secondSum: nil).prefersStackedGram
        }
        #expect(!stacked(q: 93, r: 1) && !stacked(q: 93, r: 20) && !stacked(q: 93, r: 31) && stacked(q: 93, r: 32) && stacked(q: 93, r: 100))
    }

    /// Finalisation's objective from terms computed once against the objective of the density,
    /// value and gradient in log λ through α, for the methods without draws (exact SM in both
    /// gram routes' dimensions, Approx BP); and `drawsNoise` says truly whether an objective
    /// moves the stream.
    @Test(arguments: [Estimator.sm, .approxBP], [3, 40])
    func fixedModelObjectiveMatchesTheDensity(estimator: Estimator, d: Int) throws {
        let model = smallDKEF(dimension: d, m: 5, hidden: 4, seed: 48).frozen()
        let stream = RandomStream(seed: 49)
        let x = stream.normal(shape: [9, d]), xt = stream.normal(shape: [6, d])
        let objective = try estimator.objective()
        let system = try QuadraticSystem.fit(objective, model: model, at: xt, noise: .none, createGraph: false)
        let fixed = try FixedModelObjective(objective, model: model, at: x, chunk: 4)
        for rows in [[0, 1, 2, 3, 4], [8, 3, 5], Array(0..<9)] {
            let logLambda = Tensor(-1.3).requiringGradient()
            let alpha = system.alpha(logLambda: logLambda)
            let fast = fixed.value(alpha: alpha, rows: rows)
            let slow = try objective.evaluate(model.density(alpha: alpha), at: x.rows(rows), noise: .none).value
            #expect(relative(fast, slow) < 1e-12, "\(estimator) D=\(d): \(fast.scalar) vs \(slow.scalar)")
            let (gf, gs) = (gradient(of: fast, with: logLambda), gradient(of: slow, with: logLambda))
            #expect(relative(gf, gs) < 1e-10, "\(estimator) D=\(d): gradient \(gf.scalar) vs \(gs.scalar)")
        }
    }

    @Test(arguments: Estimator.allCases)
    func drawsNoiseTellsWhetherTheStreamMoves(estimator: Estimator) throws {
        let objective = try estimator.objective()
        let (a, b) = (RandomStream(seed: 50), RandomStream(seed: 50))
        _ = objective.drawNoise(points: 3, dimension: 2, using: a)
        #expect((a.uniform() != b.uniform()) == objective.drawsNoise)
    }

    /// The evaluation density (libmvec's exp and log1p, all first layers in one GEMM, α folded in
    /// by fixed-order row sums) against the differentiable one, with points far out (kernel values that
    /// underflow) among them.
    @Test func evaluationLogDensityMatches() {
        let model = smallDKEF(dimension: 5, m: 7, hidden: 6, seed: 46)
        let stream = RandomStream(seed: 47)
        let x = Tensor.concatenate([stream.normal(shape: [20, 5]), stream.normal(shape: [3, 5]) * 40], alongAxis: 0)
        let alpha = stream.normal(shape: [7])
        let fast = model.evaluationLogDensity(x, alpha: alpha), slow = withoutGradients { model.logDensity(x, alpha: alpha) }
        #expect(relative(fast, slow) < 1e-13, "\(relative(fast, slow))")
        #expect(relative(model.frozen().evaluationLogDensity(x, alpha: alpha), slow) < 1e-13)
        // In row blocks (7 does not divide 23: a short last block), as in one pass.
        for block in [1, 7, 22, 23, 100] {
            let blocked = model.evaluationLogDensity(x, alpha: alpha, rowBlock: block)
            #expect(blocked.shape == [23] && relative(blocked, fast) < 1e-14, "block \(block): \(relative(blocked, fast))")
        }
        // Every net's first layer and skip from one GEMM.
        for (j, fast) in withoutGradients({ model.allFeatureValues(x) }).enumerated() {
            let slow = withoutGradients { model.featureValues(j, x) }
            #expect(relative(fast, slow) < 1e-14, "kernel \(j): \(relative(fast, slow))")
        }
    }

    /// CP's one-pass softplus nodes (evaluations without a graph) against the tensor form
    /// (recording on), bit for bit: score and diagonal estimate of the density (`.all`, q₀
    /// included), with the same stream; and the stream is left in the same state. Also with the
    /// real width H = 30 and M = 23 partners (N·H not a multiple of 32).
    @Test(arguments: [[3, 4, 5], [40, 2, 5], [7, 30, 23]])
    func curvaturePropagationKernelsAreBitwise(shape: [Int]) {
        let (d, m) = (shape[0], shape[2])
        let model = smallDKEF(dimension: d, m: m, hidden: shape[1], seed: 41)
        let stream = RandomStream(seed: 42)
        let x = stream.normal(shape: [7, d]) * 1.5, alpha = stream.normal(shape: [m])
        for (partners, base) in [(DKEF.Partners.all(alpha: alpha), true)] {
            func run(recording: Bool) -> [UInt64] {
                let noise = RandomStream(seed: 43)
                let (s, diagonal) = GradientMode.$isRecording.withValue(recording) {
                    model.propagate(x, partners: partners, includeBase: base, method: .curvaturePropagation(noise))
                }
                return (s.scalars + diagonal.scalars + [noise.uniform()]).map(\.bitPattern)
            }
            let (slow, fast) = (run(recording: true), run(recording: false))
            let differing = zip(slow, fast).filter { $0 != $1 }.count
            #expect(slow.count == fast.count && differing == 0, "\(partners): \(differing) of \(slow.count) differ")
        }
    }

    /// The density's closed-form score (one reverse sweep per net) against reverse mode through
    /// the tape, and the parameter gradients of a function of it.
    @Test func explicitScoreMatchesReverseMode() {
        let model = smallDKEF(dimension: 6, m: 5, hidden: 4, seed: 51)
        let stream = RandomStream(seed: 52)
        let x = stream.normal(shape: [7, 6]) * 1.5
        let density = model.density(alpha: stream.normal(shape: [5]))
        let fast = density.score(at: x), slow = score(of: density, at: x.requiringGradient())
        #expect(relative(fast, slow) < 1e-12, "\(relative(fast, slow))")
        let gf = gradients(of: fast.square().sum(), with: model.parameters)
        let gs = gradients(of: slow.square().sum(), with: model.parameters)
        let scale = gs.flatMap(\.scalars).map(abs).max()!
        for (k, (a, b)) in zip(gf, gs).enumerated() { #expect(maxAbs(a, b) / scale < 1e-12, "parameter \(k)") }
    }

    /// Density and base directional derivatives against reverse mode: given directions (distinct,
    /// shared), coordinates, and a mix; the sum of second derivatives by both of its routes.
    @Test func directionalDerivativesMatchReverseMode() {
        let model = smallDKEF(dimension: 4, m: 5, hidden: 6, seed: 23)
        let stream = RandomStream(seed: 24)
        let x = stream.normal(shape: [3, 4]), u1 = stream.normal(shape: [3, 2, 4]), u2 = stream.normal(shape: [3, 3, 4])
        let cases: [(DirectionalForm.Directions, DirectionalForm.Directions?)] = [
            (.given(u1), .given(u2)), (.given(u2), .given(u2)), (.coordinates, .coordinates), (.coordinates, .given(u2)),
            (.given(u1), nil), (.coordinates, nil),
        ]
        for (first, second) in cases {
            for f in [model.density(alpha: stream.normal(shape: [5])) as any DirectionalDerivatives, model.base] {
                let (g1, g2) = f.directionalDerivatives(at: x, first: first, second: second)
                let leaf = x.requiringGradient()
                let s = score(of: f, at: leaf)
                let r1 = (s.expandingShape(at: 1) * DirectionalForm.matrix(first, points: 3, dimension: 4)).sum(alongAxis: 2)
                #expect(relative(g1, r1) < 1e-12)
                if let second {
                    let r2 = DirectionalForm.secondDirectionalDerivatives(score: s, at: leaf, along: second, createGraph: false)
                    #expect(relative(g2!, r2.sum(alongAxis: 1)) < 1e-12)
                } else {
                    #expect(g2 == nil)
                }
            }
            if let second {
                let direct = model.kernelDirectionalDerivatives(at: x, first: first, second: second, gramThreshold: 1000).secondSum!
                let viaGram = model.kernelDirectionalDerivatives(at: x, first: first, second: second, gramThreshold: 0).secondSum!
                #expect(relative(viaGram, direct) < 1e-12)
            }
        }
    }
}

/// A layered density with the protocol's default trace (Σ_d of `scoreAndDiagonalHessian`'s
/// diagonal): the oracle for a model's own `traceOfDiagonalHessian`.
struct DiagonalSumOracle: DiagonalHessianEstimating {
    let density: DKEF.Density
    func logDensity(_ x: Tensor) -> Tensor { density.logDensity(x) }
    func scoreAndDiagonalHessian(at x: Tensor, method: DiagonalHessianMethod) -> (score: Tensor, diagonal: Tensor) {
        density.scoreAndDiagonalHessian(at: x, method: method)
    }
}

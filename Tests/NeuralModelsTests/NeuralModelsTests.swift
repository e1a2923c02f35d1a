import Autodiff
import Foundation
import GSLNumerics
import NeuralModels
import Objectives
import Testing

/// The estimators each model kind takes (energy and score networks; the noise-conditional kind
/// takes NCSN's objective, tested below): every one for an energy network but those that need
/// layer structure (CP, Approx BP: DKEF's); a score network also loses those that need a
/// log-density (DEEN).
func estimators(for kind: ModelKind) -> [Estimator] {
    Estimator.allCases.filter { !$0.needsLayeredModel && (kind == .energy || !$0.needsLogDensity) }
}

func model(_ kind: ModelKind, dimension: Int = 3, activation: MLP.Activation = .swish, seed: UInt64 = 5) throws -> any ScoreModel {
    let stream = RandomStream(seed: seed)
    switch kind {
    case .energy: return try EnergyNetwork(dimension: dimension, hidden: [6, 5], activation: activation, using: stream)
    case .score, .noiseConditional: return try ScoreNetwork(dimension: dimension, hidden: [6, 5], activation: activation, using: stream)
    }
}

@Suite struct Networks {
    /// A 1 → 2 → 1 network written out by hand: softplus and swish (β = 1 and a changed β).
    @Test(arguments: MLP.Activation.allCases)
    func forwardPassIsTheFormula(activation: MLP.Activation) throws {
        var mlp = try MLP(widths: [1, 2, 1], activation: activation, using: RandomStream(seed: 1))
        let w1 = [0.5, -1.5], b1 = [0.1, 0.2], w2 = [2.0, -0.7], b2 = 0.3, beta = [1.0, 0.4]
        var values = [Tensor(shape: [1, 2], scalars: w1), Tensor(b1)]
        if activation == .swish { values.append(Tensor(beta)) }
        values += [Tensor(shape: [2, 1], scalars: w2), Tensor([b2])]
        mlp.parameters = values
        let x = 0.8
        func a(_ v: Double, _ k: Int) -> Double {
            activation == .softplus ? log1p(exp(v)) : v / (1 + exp(-beta[k] * v))
        }
        let expected = b2 + (0..<2).map { w2[$0] * a(w1[$0] * x + b1[$0], $0) }.reduce(0, +)
        #expect(abs(mlp(Tensor(shape: [1, 1], scalars: [x])).scalars[0] - expected) < 1e-14)
        #expect(mlp.parameterNames == (activation == .swish ? ["layer0.W", "layer0.b", "layer0.beta", "layer1.W", "layer1.b"]
                                                           : ["layer0.W", "layer0.b", "layer1.W", "layer1.b"]))
    }

    /// The initialisation is PyTorch's nn.Linear: U(−1/√in, 1/√in); swish's β starts at 1.
    @Test func initialisationIsUniformInTheFanIn() throws {
        let mlp = try MLP(widths: [16, 400, 2], activation: .swish, using: RandomStream(seed: 2))
        let w = mlp.parameters[0].scalars
        #expect(w.allSatisfy { abs($0) < 0.25 } && w.max()! > 0.24 && w.min()! < -0.24)
        #expect(mlp.parameters[2].scalars.allSatisfy { $0 == 1 })
        let w2 = mlp.parameters[3].scalars
        #expect(w2.allSatisfy { abs($0) < 0.05 } && w2.max()! > 0.049)
    }

    /// An energy network's score is −∇ₓE (central differences of E).
    @Test func energyScoreIsMinusTheEnergyGradient() throws {
        let net = try EnergyNetwork(dimension: 3, hidden: [7, 4], activation: .swish, using: RandomStream(seed: 3))
        let x = RandomStream(seed: 4).normal(shape: [4, 3])
        let s = net.modelScore(at: x.requiringGradient())
        let h = 1e-6
        for n in 0..<4 {
            for i in 0..<3 {
                var plus = x.scalars, minus = x.scalars
                plus[n * 3 + i] += h
                minus[n * 3 + i] -= h
                let e = { (v: [Double]) in net.energy(Tensor(shape: [4, 3], scalars: v)).scalars[n] }
                let numeric = -(e(plus) - e(minus)) / (2 * h)
                #expect(abs(s.scalars[n * 3 + i] - numeric) < 1e-8)
            }
        }
    }

    /// The softplus network computes softplus and σ from one exponential (`softplusAndSigmoid`);
    /// the same energy written with the plain `softplus()` (whose pullback takes σ afresh) is the
    /// oracle: every estimator's loss and parameter gradient agree to rounding (they may differ in
    /// the last bits, the graph summing the same terms in another order).
    @Test func fusedSoftplusGivesThePlainNetworksLossesAndGradients() throws {
        struct PlainEnergy: LogDensityModel {
            var parameters: [Tensor]
            func logDensity(_ x: Tensor) -> Tensor {
                let h1 = (Tensor.matmul(x, parameters[0]) + parameters[1]).softplus()
                let h2 = (Tensor.matmul(h1, parameters[2]) + parameters[3]).softplus()
                return -(Tensor.matmul(h2, parameters[4]) + parameters[5]).reshaped([-1])
            }
        }
        let net = try EnergyNetwork(dimension: 3, hidden: [9, 7], activation: .softplus, using: RandomStream(seed: 8))
        let plain = PlainEnergy(parameters: net.parameters)
        let x = RandomStream(seed: 9).normal(shape: [10, 3])
        for estimator in estimators(for: .energy) {
            let objective = try estimator.objective(ObjectiveSettings(projection: .gaussian, sigma: 0.3))
            let noise = objective.drawNoise(points: 10, dimension: 3, using: RandomStream(seed: 10))
            let fused = try objective.evaluate(net, at: x, noise: noise).value
            let reference = try objective.evaluate(plain, at: x, noise: noise).value
            #expect(abs(fused.scalar - reference.scalar) <= 1e-13 * max(1, abs(reference.scalar)), "\(estimator)")
            for (g, r) in zip(gradients(of: fused, with: net.parameters), gradients(of: reference, with: plain.parameters)) {
                let scale = max(1, r.scalars.map(abs).max()!)
                #expect(zip(g.scalars, r.scalars).allSatisfy { abs($0 - $1) <= 1e-13 * scale }, "\(estimator)")
            }
        }
    }

    @Test func badNetworksAreRefusedByName() {
        #expect(throws: NetworkError.invalidWidths([2, 0, 1])) { try MLP(widths: [2, 0, 1], activation: .softplus, using: RandomStream(seed: 1)) }
        #expect(throws: NetworkError.invalidWidths([2])) { try MLP(widths: [2], activation: .softplus, using: RandomStream(seed: 1)) }
        #expect(throws: NetworkError.unknownActivation("relu")) { try MLP.Activation(named: "relu") }
        #expect(throws: NetworkError.unknownModelKind("flow")) { try ModelKind(named: "flow") }
        #expect(NetworkError.unknownModelKind("flow").description.contains("choose one of energy, score"))
    }
}

@Suite struct Losses {
    /// ∂J/∂θ by reverse mode through each objective (for SM, SSM and SSM-VR the θ-gradient of
    /// second derivatives in x) against central differences of J with the same draws, for both
    /// model kinds and both activations.
    @Test(arguments: [ModelKind.energy, .score], MLP.Activation.allCases)
    func parameterGradientsMatchFiniteDifferences(kind: ModelKind, activation: MLP.Activation) throws {
        let stream = RandomStream(seed: 11)
        let x = stream.normal(shape: [4, 3])
        for estimator in estimators(for: kind) {
            var net = try model(kind, activation: activation)
            let objective = try estimator.objective(ObjectiveSettings(projectionCount: 2, sigma: 0.3, epsilon: 0.05))
            let noise = objective.drawNoise(points: 4, dimension: 3, using: stream)
            let analytic = gradients(of: try objective.evaluate(net, at: x, noise: noise).value, with: net.parameters)
            let h = 1e-5
            var worst = 0.0
            for (k, parameter) in net.parameters.enumerated() {
                for i in stride(from: 0, to: parameter.count, by: 3) {
                    func j(_ delta: Double) throws -> Double {
                        var scalars = parameter.scalars
                        scalars[i] += delta
                        net.parameters[k] = Tensor(shape: parameter.shape, scalars: scalars).requiringGradient()
                        defer { net.parameters[k] = parameter }
                        return try objective.evaluate(net, at: x, noise: noise, createGraph: false).value.scalar
                    }
                    let numeric = (try j(h) - j(-h)) / (2 * h)
                    worst = max(worst, abs(numeric - analytic[k].scalars[i]) / max(1, abs(numeric)))
                }
            }
            #expect(worst < 1e-6, "\(kind) network, \(estimator), \(activation): relative error \(worst)")
        }
    }

    /// Exact SM's trace for a score network: tr ∇ₓs by reverse mode equals the sum of the
    /// Jacobian's diagonal by central differences of s.
    @Test func scoreNetworkTraceIsTheJacobianDiagonal() throws {
        let net = try ScoreNetwork(dimension: 4, hidden: [8, 8], activation: .softplus, using: RandomStream(seed: 6))
        let x = RandomStream(seed: 7).normal(shape: [3, 4])
        let terms = try ScoreMatching.exact.evaluate(net, at: x, noise: .none, createGraph: false).terms
        let h = 1e-6
        for n in 0..<3 {
            var trace = 0.0
            for i in 0..<4 {
                var plus = x.scalars, minus = x.scalars
                plus[n * 4 + i] += h
                minus[n * 4 + i] -= h
                let s = { (v: [Double]) in net.modelScore(at: Tensor(shape: [3, 4], scalars: v)).scalars[n * 4 + i] }
                trace += (s(plus) - s(minus)) / (2 * h)
            }
            #expect(abs(terms.linear!.scalars[n] - trace) < 1e-7)
        }
    }

    /// DEEN and DSM on the same draw ε, for an energy network, written out as their papers state
    /// them: DEEN ½‖x − x̃ + σ²∇E(x̃)‖², textbook DSM ½‖s(x̃) + (x̃ − x)/σ²‖², x̃ = x + σε. DEEN is
    /// σ⁴ · DSM in value and in every parameter gradient, and it is what this suite calls dsm (the
    /// σ⁴-scaled loss of the authors' DKEF code) to the last bits.
    @Test(arguments: [0.1, 0.5, 2.0])
    func deenIsSigmaToTheFourTimesDenoisingScoreMatching(sigma: Double) throws {
        let net = try EnergyNetwork(dimension: 3, hidden: [6, 5], activation: .softplus, using: RandomStream(seed: 8))
        let stream = RandomStream(seed: 9)
        let x = stream.normal(shape: [5, 3]), epsilon = stream.normal(shape: [5, 3])
        let noisy = (x + epsilon * sigma).requiringGradient()
        let gradE = GradientMode.$isRecording.withValue(true) { gradient(of: net.energy(noisy).sum(), with: noisy, createGraph: true) }
        let deen = GradientMode.$isRecording.withValue(true) { (x - noisy + gradE * (sigma * sigma)).square().sum(alongAxis: 1).mean() * 0.5 }
        let textbook = GradientMode.$isRecording.withValue(true) { (-gradE + (noisy - x) / (sigma * sigma)).square().sum(alongAxis: 1).mean() * 0.5 }
        let sigma4 = pow(sigma, 4)
        #expect(abs(deen.scalar - sigma4 * textbook.scalar) <= 1e-12 * abs(deen.scalar))
        for (a, b) in zip(gradients(of: deen, with: net.parameters), gradients(of: textbook, with: net.parameters)) {
            for (u, v) in zip(a.scalars, b.scalars) { #expect(abs(u - sigma4 * v) <= 1e-10 * max(abs(u), 1e-8)) }
        }
        let noise = ObjectiveNoise(perturbation: epsilon)
        let suiteDEEN = try Estimator.deen.objective(ObjectiveSettings(sigma: sigma)).evaluate(net, at: x, noise: noise)
        let suiteDSM = try Estimator.dsm.objective(ObjectiveSettings(sigma: sigma)).evaluate(net, at: x, noise: noise)
        #expect(abs(suiteDEEN.value.scalar - deen.scalar) <= 1e-13 * abs(deen.scalar))
        #expect(suiteDEEN.value.scalar == suiteDSM.value.scalar)
    }

    /// A score network has no log-density: DEEN is refused by name; FSM takes its score form,
    /// whose error against SSM with the same projections falls as ε² (a quarter when ε halves).
    @Test func scoreNetworksRefuseDEENAndTakeFSMsScoreForm() throws {
        let net = try ScoreNetwork(dimension: 3, hidden: [6, 5], activation: .softplus, using: RandomStream(seed: 10))
        let stream = RandomStream(seed: 12)
        let x = stream.normal(shape: [6, 3])
        #expect(throws: ObjectiveError.needsLogDensity(estimator: "deen")) {
            try Estimator.deen.objective().evaluate(net, at: x, using: stream)
        }
        let v = Projection.sphere.draw(count: 2, points: 6, dimension: 3, using: stream)
        let noise = ObjectiveNoise(projections: v)
        let ssm = try SlicedScoreMatching(projection: .sphere, count: 2).evaluate(net, at: x, noise: noise).value.scalar
        let errors = try [0.2, 0.1, 0.05].map { abs(try FiniteDifferenceScoreMatching(epsilon: $0, count: 2).evaluate(net, at: x, noise: noise).value.scalar - ssm) }
        #expect(errors[0] > 0)
        for k in 0..<2 {
            let ratio = errors[k + 1] / errors[k]
            #expect(ratio > 0.2 && ratio < 0.3, "error ratio \(ratio) between ε = \([0.2, 0.1, 0.05][k]) and its half")
        }
    }

    /// SSM's mean over many projections equals exact SM for a score network (within 5 standard
    /// errors over 4000 Rademacher projections per point).
    @Test func slicedMeanIsExactScoreMatchingForAScoreNetwork() throws {
        let net = try ScoreNetwork(dimension: 3, hidden: [6, 5], activation: .swish, using: RandomStream(seed: 13))
        let stream = RandomStream(seed: 14)
        let x = stream.normal(shape: [2, 3])
        let exact = try ScoreMatching.exact.evaluate(net, at: x, noise: .none, createGraph: false).value.scalar
        var values: [Double] = []
        for _ in 0..<40 {
            let ssm = try SlicedScoreMatching(projection: .rademacher, count: 100)
            values.append(try ssm.evaluate(net, at: x, using: stream, createGraph: false).value.scalar)
        }
        let mean = values.reduce(0, +) / 40
        let se = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 39 / 40).squareRoot()
        #expect(abs(mean - exact) < 5 * se, "SSM mean \(mean) ± \(se), exact \(exact)")
    }
}

@Suite struct NoiseConditional {
    /// NCSN's objective on a noise-conditional network: the batch mean of ½‖σᵢ s(x + σᵢε, σᵢ) + ε‖²
    /// written out point by point, and its parameter gradient against central differences.
    @Test func objectiveIsTheWeightedDenoisingLossAndItsGradientIsRight() throws {
        var net = try NoiseConditionalScoreNetwork(dimension: 2, hidden: [6, 5], activation: .swish, using: RandomStream(seed: 30))
        let stream = RandomStream(seed: 31)
        let x = stream.normal(shape: [5, 2])
        let objective = try NoiseConditionalDenoising(sigmas: [4, 2, 1, 0.5])
        let (levels, epsilon) = objective.drawNoise(points: 5, dimension: 2, using: stream)
        #expect(levels.scalars.allSatisfy { [4, 2, 1, 0.5].contains($0) })
        let value = try objective.loss(net, at: x, levels: levels, epsilon: epsilon)
        var written = 0.0
        for n in 0..<5 {
            let sigma = levels.scalars[n]
            let point = Tensor(shape: [1, 2], scalars: [x[n, 0] + sigma * epsilon[n, 0], x[n, 1] + sigma * epsilon[n, 1]])
            let s = net.score(at: point, sigmas: Tensor([sigma])).scalars
            written += 0.5 * ((sigma * s[0] + epsilon[n, 0]) * (sigma * s[0] + epsilon[n, 0]) + (sigma * s[1] + epsilon[n, 1]) * (sigma * s[1] + epsilon[n, 1]))
        }
        #expect(abs(value.scalar - written / 5) < 1e-13)
        let analytic = gradients(of: value, with: net.parameters)
        let h = 1e-5
        for (k, parameter) in net.parameters.enumerated() {
            for i in stride(from: 0, to: parameter.count, by: 2) {
                func j(_ delta: Double) throws -> Double {
                    var scalars = parameter.scalars
                    scalars[i] += delta
                    net.parameters[k] = Tensor(shape: parameter.shape, scalars: scalars).requiringGradient()
                    defer { net.parameters[k] = parameter }
                    return try withoutGradients { try objective.loss(net, at: x, levels: levels, epsilon: epsilon).scalar }
                }
                let numeric = (try j(h) - j(-h)) / (2 * h)
                #expect(abs(numeric - analytic[k].scalars[i]) < 1e-7 * max(1, abs(numeric)), "parameter \(k)[\(i)]")
            }
        }
        #expect(throws: ObjectiveError.invalidSigma(0)) { try NoiseConditionalDenoising(sigmas: [1, 0]) }
    }
}

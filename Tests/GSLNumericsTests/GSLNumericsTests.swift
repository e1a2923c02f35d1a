import Autodiff
import Foundation
import GSLNumerics
import Testing

/// Central differences of a row-wise log-density: ∂ log p / ∂x_{ij}.
func finiteDifferenceScore(_ p: ReferenceDistribution, _ x: Tensor, h: Double = 1e-5) throws -> Tensor {
    let (n, d) = (x.shape[0], x.shape[1])
    var out = [Double](repeating: 0, count: n * d)
    for i in 0..<n { for j in 0..<d {
        var plus = x.scalars, minus = x.scalars
        plus[i * d + j] += h
        minus[i * d + j] -= h
        let lp = try p.logDensity(Tensor(shape: x.shape, scalars: plus)).scalars[i]
        let lm = try p.logDensity(Tensor(shape: x.shape, scalars: minus)).scalars[i]
        out[i * d + j] = (lp - lm) / (2 * h)
    } }
    return Tensor(shape: x.shape, scalars: out)
}

func maxAbs(_ a: Tensor, _ b: Tensor) -> Double { zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0 }

@Suite struct RandomStreams {
    @Test func sameSeedSameDraws() {
        let a = RandomStream(seed: 42), b = RandomStream(seed: 42), c = RandomStream(seed: 43)
        let x = a.normal(shape: [100]).scalars
        #expect(x == b.normal(shape: [100]).scalars)
        #expect(x != c.normal(shape: [100]).scalars)
        #expect(a.split().uniform() == b.split().uniform())
    }

    /// Moments within 5 standard errors: N(0,1) mean 0 (se 1/√n), variance 1 (se √(2/n));
    /// Rademacher values ±1 with mean 0; uniform on [2, 5) with mean 3.5.
    @Test func momentsOfTheStreams() {
        let s = RandomStream(seed: 7)
        let n = 200_000
        let z = s.normal(shape: [n]).scalars
        let mean = z.reduce(0, +) / Double(n)
        let variance = z.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1)
        #expect(abs(mean) < 5 / sqrt(Double(n)))
        #expect(abs(variance - 1) < 5 * sqrt(2 / Double(n)))
        let r = s.rademacher(shape: [n]).scalars
        #expect(r.allSatisfy { $0 == 1 || $0 == -1 })
        #expect(abs(r.reduce(0, +) / Double(n)) < 5 / sqrt(Double(n)))
        let u = s.uniform(shape: [n], in: 2..<5).scalars
        #expect(u.allSatisfy { $0 >= 2 && $0 < 5 })
        #expect(abs(u.reduce(0, +) / Double(n) - 3.5) < 5 * sqrt(0.75 / Double(n)))
        #expect(s.permutation(50).sorted() == Array(0..<50))
    }
}

@Suite struct MultivariateNormals {
    static var sigma: Tensor { Tensor(rows: [[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]]) }
    static let mu: [Double] = [0.5, -1.0, 2.0]

    /// log N(x; μ, Σ) = −½ (x−μ)ᵀ Σ⁻¹ (x−μ) − ½ log((2π)^D det Σ), with Σ⁻¹ and det Σ computed here
    /// independently of GSL (Gaussian elimination on the 3×3 matrix).
    @Test func logDensityMatchesClosedForm() throws {
        let p = try MultivariateNormal(mean: Self.mu, covariance: Self.sigma)
        let x = RandomStream(seed: 1).normal(shape: [5, 3])
        let inverse = Tensor.solve(Self.sigma, identity3)
        let s = Self.sigma
        let det = s[0, 0] * (s[1, 1] * s[2, 2] - s[1, 2] * s[2, 1]) - s[0, 1] * (s[1, 0] * s[2, 2] - s[1, 2] * s[2, 0])
            + s[0, 2] * (s[1, 0] * s[2, 1] - s[1, 1] * s[2, 0])
        let centred = x - Tensor(Self.mu)
        let quadratic = (Tensor.matmul(centred, inverse) * centred).sum(alongAxis: 1)
        let expected = quadratic * -0.5 - 0.5 * Foundation.log(pow(2 * Double.pi, 3) * det)
        #expect(maxAbs(try p.logDensity(x), expected) < 1e-12)
        #expect(maxAbs(try p.score(x), -Tensor.matmul(centred, inverse)) < 1e-12)
    }

    /// The exact score is the gradient of the exact log-density (central differences).
    @Test func scoreIsGradientOfLogDensity() throws {
        let p = try MultivariateNormal(mean: Self.mu, covariance: Self.sigma)
        let x = RandomStream(seed: 2).normal(shape: [4, 3])
        #expect(maxAbs(try p.score(x), try finiteDifferenceScore(p, x)) < 1e-7)
        let standard = try MultivariateNormal.standard(dimension: 4)
        let y = RandomStream(seed: 3).normal(shape: [6, 4])
        #expect(maxAbs(try standard.score(y), -y) == 0)  // N(0, I): s(x) = −x
    }

    /// Sample mean and covariance approach μ and Σ (n = 100000; tolerance ≈ 5 standard errors).
    @Test func samplesHaveTheRightMoments() throws {
        let p = try MultivariateNormal(mean: Self.mu, covariance: Self.sigma)
        let n = 100_000
        let x = p.sample(n, using: RandomStream(seed: 4))
        let mean = x.mean(alongAxis: 0)
        #expect(maxAbs(mean, Tensor(Self.mu)) < 5 * sqrt(2.0 / Double(n)))
        let c = x - mean
        let covariance = Tensor.matmul(c, c, transposeA: true) / Double(n - 1)
        #expect(maxAbs(covariance, Self.sigma) < 5 * sqrt(2 * 4.0 / Double(n)))
    }

    @Test func badInputIsAClearError() throws {
        #expect(throws: GSLError.notPositiveDefinite(what: "MultivariateNormal covariance (2×2)")) {
            try MultivariateNormal(mean: [0, 0], covariance: Tensor(rows: [[1, 2], [2, 1]]))
        }
        #expect(throws: GSLError.self) { try MultivariateNormal(mean: [0, 0], covariance: Tensor(rows: [[1, 0, 0]])) }
        #expect(throws: GSLError.self) { try MultivariateNormal(mean: [.nan, 0], covariance: identity3.slice(0..<2, alongAxis: 0).slice(0..<2, alongAxis: 1)) }
        #expect(throws: GSLError.self) { try MultivariateNormal(mean: [0, 0], covariance: Tensor(rows: [[1, 0.5], [0.4, 1]])) }
        let p = try MultivariateNormal.standard(dimension: 3)
        do {
            _ = try p.score(Tensor.zeros([2, 4]))
            Issue.record("a wrong-width batch was accepted")
        } catch let error as GSLError {
            #expect(error.description.contains("expected [N, 3]"))
        }
    }
}

@Suite struct GaussianMixtures {
    func mixture() throws -> GaussianMixture {
        try GaussianMixture(weights: [0.3, 0.7], components: [
            MultivariateNormal(mean: [-2, 0], covariance: Tensor(rows: [[1, 0.2], [0.2, 0.5]])),
            MultivariateNormal(mean: [1.5, 1], covariance: Tensor(rows: [[0.4, 0], [0, 2]])),
        ])
    }

    /// log p(x) = log(π₁ N₁(x) + π₂ N₂(x)) computed directly from the component densities.
    @Test func logDensityIsTheWeightedSum() throws {
        let m = try mixture()
        let x = RandomStream(seed: 5).normal(shape: [7, 2])
        let direct = try zip(m.weights, m.components).map { w, c in try c.logDensity(x).exp() * w }.reduce(Tensor.zeros([7]), +).log()
        #expect(maxAbs(try m.logDensity(x), direct) < 1e-12)
    }

    @Test func scoreIsGradientOfLogDensity() throws {
        let m = try mixture()
        let x = RandomStream(seed: 6).normal(shape: [5, 2]) * 2
        #expect(maxAbs(try m.score(x), try finiteDifferenceScore(m, x)) < 1e-7)
    }

    /// Component frequencies match the weights (the first component lives at x₀ < −0.25 mostly).
    @Test func samplesFollowTheWeights() throws {
        let m = try mixture()
        let x = m.sample(20_000, using: RandomStream(seed: 8))
        #expect(x.shape == [20_000, 2])
        let mean = x.mean(alongAxis: 0).scalars
        // E[x₀] = 0.3·(−2) + 0.7·1.5 = 0.45.
        #expect(abs(mean[0] - 0.45) < 0.05)
        #expect(throws: GSLError.self) { try GaussianMixture(weights: [1, -1], components: m.components) }
    }
}

var identity3: Tensor { Tensor(rows: [[1, 0, 0], [0, 1, 0], [0, 0, 1]]) }

@Suite struct IsotropicNormals {
    /// N(0, σ²I) without a D × D matrix gives what the dense N(0, σ²I) gives: the same draws from
    /// the same stream, and the same log-density and score, to the last bit for σ = 1 and σ = 2
    /// (the data and the importance distribution); to rounding for other σ.
    @Test(arguments: [1.0, 2.0, 0.7])
    func agreesWithTheDenseForm(sigma: Double) throws {
        let d = 7
        var covariance = [Double](repeating: 0, count: d * d)
        for i in 0..<d { covariance[i * d + i] = sigma * sigma }
        let dense = try MultivariateNormal(mean: [Double](repeating: 0, count: d), covariance: Tensor(shape: [d, d], scalars: covariance))
        let isotropic = try IsotropicNormal(dimension: d, sigma: sigma)
        let x = dense.sample(50, using: RandomStream(seed: 11))
        let y = isotropic.sample(50, using: RandomStream(seed: 11))
        #expect(x.scalars == y.scalars)
        let exact = sigma == 1 || sigma == 2
        let logDensity = (try dense.logDensity(x), try isotropic.logDensity(x))
        let score = (try dense.score(x), try isotropic.score(x))
        if exact {
            #expect(logDensity.0.scalars == logDensity.1.scalars)
            #expect(score.0.scalars == score.1.scalars)
        } else {
            #expect(maxAbs(logDensity.0, logDensity.1) < 1e-12)
            #expect(maxAbs(score.0, score.1) < 1e-12)
        }
    }

    /// log N(x; 0, σ²I) = −½‖x‖²/σ² − D log σ − (D/2) log 2π and s(x) = −x/σ², the gradient of it.
    @Test func closedFormAndScoreIsGradient() throws {
        let p = try IsotropicNormal(dimension: 3, sigma: 1.5)
        let x = RandomStream(seed: 5).normal(shape: [4, 3])
        let expected = (x * x).sum(alongAxis: 1) * (-0.5 / 2.25) - 3 * Foundation.log(1.5) - 1.5 * Foundation.log(2 * Double.pi)
        #expect(maxAbs(try p.logDensity(x), expected) < 1e-12)
        #expect(maxAbs(try p.score(x), try finiteDifferenceScore(p, x)) < 1e-7)
    }

    /// A dimension no dense matrix could hold is fine: nothing of size D² is built.
    @Test func largeDimensionNeedsNoDenseMatrix() throws {
        let d = 200_000
        let p = try IsotropicNormal(dimension: d)
        let x = p.sample(2, using: RandomStream(seed: 6))
        let logDensity = try p.logDensity(x)
        #expect(logDensity.shape == [2] && logDensity.isFinite)
    }

    @Test func badInputIsAClearError() {
        #expect(throws: GSLError.self) { try IsotropicNormal(dimension: 0) }
        #expect(throws: GSLError.self) { try IsotropicNormal(dimension: 2, sigma: 0) }
        #expect(throws: GSLError.self) { try IsotropicNormal(dimension: 2, sigma: .nan) }
        #expect(throws: GSLError.self) { try IsotropicNormal(dimension: 2).score(Tensor.zeros([1, 3])) }
    }
}

func identity(_ n: Int) -> Tensor {
    Tensor(shape: [n, n], scalars: (0..<(n * n)).map { $0 / n == $0 % n ? 1 : 0 })
}

/// The targets of issue 12: exact scores, moments of the draws, normalisation, parameter errors.
@Suite struct Targets {
    func settings(_ target: Target) -> TargetSettings {
        var s = TargetSettings(target)
        s.parameters.conditionNumber = 30
        s.parameters.components = 3
        s.parameters.separation = 2.5
        s.parameters.scale = 0.7
        s.parameters.degreesOfFreedom = 5
        return s
    }

    /// Every target's score against central differences of its log density, at points spread out
    /// (the t's tails and the mixture's valleys between components included).
    @Test(arguments: Target.allCases, [1, 3, 6])
    func scoreIsTheGradientOfTheLogDensity(target: Target, dimension d: Int) throws {
        let p = try settings(target).distribution(dimension: d, using: RandomStream(seed: 70))
        let x = RandomStream(seed: 71).normal(shape: [8, d]) * 2.5
        let exact = try p.score(x), numeric = try finiteDifferenceScore(p, x)
        #expect(maxAbs(exact, numeric) < 1e-6 * max(1, exact.scalars.map(abs).max()!), "\(target) D=\(d): \(maxAbs(exact, numeric))")
    }

    /// Sample mean and covariance against the closed forms, each entry within 5 standard errors of
    /// its sample estimate (SE of a covariance entry √((Σᵢᵢ Σⱼⱼ + Σᵢⱼ²)/n) for the Gaussian, from the
    /// draws' own fourth moments otherwise).
    @Test(arguments: Target.allCases)
    func drawsHaveTheClosedFormMoments(target: Target) throws {
        let d = 3, n = 200_000
        let s = settings(target)
        let p = try s.distribution(dimension: d, using: RandomStream(seed: 72))
        let x = p.sample(n, using: RandomStream(seed: 73)).scalars
        var mean = [Double](repeating: 0, count: d), sigma = [Double](repeating: 0, count: d * d)
        switch target {
        case .standardNormal:
            for i in 0..<d { sigma[i * d + i] = 1 }
        case .correlatedNormal:
            sigma = (p as! CorrelatedNormal).normal.covariance.scalars
        case .gaussianMixture:
            let m = p as! GaussianMixture
            for c in m.components { for i in 0..<d { mean[i] += c.mean[i] / Double(m.components.count) } }
            for c in m.components {
                for i in 0..<d { for j in 0..<d {
                    sigma[i * d + j] += ((c.mean[i] - mean[i]) * (c.mean[j] - mean[j]) + c.covariance.scalars[i * d + j]) / Double(m.components.count)
                } }
            }
        case .studentT:
            for i in 0..<d { sigma[i * d + i] = s.parameters.degreesOfFreedom / (s.parameters.degreesOfFreedom - 2) }
        }
        for i in 0..<d {
            let values = (0..<n).map { x[$0 * d + i] }
            let m = values.reduce(0, +) / Double(n)
            let se = (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(n - 1) / Double(n)).squareRoot()
            #expect(abs(m - mean[i]) < 5 * se, "\(target) mean[\(i)] \(m) vs \(mean[i]) ± \(se)")
            for j in 0..<d {
                let products = (0..<n).map { (x[$0 * d + i] - mean[i]) * (x[$0 * d + j] - mean[j]) }
                let c = products.reduce(0, +) / Double(n)
                let seC = (products.map { ($0 - c) * ($0 - c) }.reduce(0, +) / Double(n - 1) / Double(n)).squareRoot()
                #expect(abs(c - sigma[i * d + j]) < 5 * seC, "\(target) Σ[\(i),\(j)] \(c) vs \(sigma[i * d + j]) ± \(seC)")
            }
        }
    }

    /// Σ = Q diag(λ) Qᵀ with Q orthogonal and λ from 1 to κ: ΣQ = QΛ, QᵀQ = I.
    @Test func correlatedNormalHasTheStatedSpectrum() throws {
        let d = 5
        let p = try CorrelatedNormal(dimension: d, conditionNumber: 100, using: RandomStream(seed: 74))
        let q = p.rotation
        #expect(maxAbs(Tensor.matmul(q, q, transposeA: true), identity(d)) < 1e-12)
        #expect(abs(p.eigenvalues.first! - 1) < 1e-15 && abs(p.eigenvalues.last! - 100) < 1e-12)
        let lambda = Tensor(shape: [d, d], scalars: (0..<(d * d)).map { $0 / d == $0 % d ? p.eigenvalues[$0 % d] : 0 })
        #expect(maxAbs(Tensor.matmul(p.normal.covariance, q), Tensor.matmul(q, lambda)) < 1e-10)
        // The same seed builds the same target.
        let again = try CorrelatedNormal(dimension: d, conditionNumber: 100, using: RandomStream(seed: 74))
        #expect(again.normal.covariance.scalars == p.normal.covariance.scalars)
    }

    /// ∫ p = 1 by Monte Carlo over a box holding all but a negligible part of the mixture's mass
    /// (1-D and 2-D; every mean at distance 2.5, scale 0.7, box ±8), and the 1-D t against its
    /// closed form.
    @Test(arguments: [1, 2])
    func densitiesIntegrateToOne(dimension d: Int) throws {
        let stream = RandomStream(seed: 75)
        let mixture = try settings(.gaussianMixture).distribution(dimension: d, using: stream)
        let half = 8.0, n = 400_000
        let box = stream.uniform(shape: [n, d], in: -half..<half)
        let volume = Foundation.pow(2 * half, Double(d))
        let values = try mixture.logDensity(box).scalars.map { Foundation.exp($0) * volume }
        let mean = values.reduce(0, +) / Double(n)
        let se = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n - 1) / Double(n)).squareRoot()
        #expect(abs(mean - 1) < 5 * se, "mixture D=\(d): ∫p = \(mean) ± \(se)")
        if d == 1 {
            let t = try StudentT(dimension: 1, degreesOfFreedom: 5)
            let x = stream.normal(shape: [20, 1]) * 3
            // The univariate t density written out with glibc's lgamma (not GSL's lngamma).
            let constant: Double = Foundation.lgamma(3.0) - Foundation.lgamma(2.5) - 0.5 * Foundation.log(5 * Double.pi)
            let closed: [Double] = x.scalars.map { (v: Double) -> Double in constant - 3 * Foundation.log(1 + v * v / 5) }
            #expect(maxAbs(try t.logDensity(x), Tensor(closed)) < 1e-13)
        }
    }

    /// Parameters no distribution can have are refused with the parameter's name.
    @Test func badParametersAreNamed() throws {
        let stream = RandomStream(seed: 76)
        func refused(_ s: TargetSettings, dimension: Int = 3, _ words: String) {
            do {
                _ = try s.distribution(dimension: dimension, using: stream)
                Issue.record("\(s) was accepted")
            } catch {
                #expect("\(error)".contains(words), "\(error)")
            }
        }
        var s = TargetSettings(.correlatedNormal); s.parameters.conditionNumber = 0.5
        refused(s, "condition_number must be finite and ≥ 1, got 0.5")
        s = TargetSettings(.gaussianMixture); s.parameters.components = 0
        refused(s, "components must be ≥ 1, got 0")
        s = TargetSettings(.gaussianMixture); s.parameters.separation = -1
        refused(s, "separation must be finite and ≥ 0, got -1.0")
        s = TargetSettings(.gaussianMixture); s.parameters.scale = 0
        refused(s, "scale must be finite and > 0")
        s = TargetSettings(.studentT); s.parameters.degreesOfFreedom = 0
        refused(s, "degrees_of_freedom must be finite and > 0, got 0.0")
        refused(TargetSettings(.studentT), dimension: 0, "student_t: dimension must be ≥ 1, got 0")
        #expect(throws: GSLError.self) { try Target(named: "banana") }
        // A point of the wrong dimension.
        let p = try TargetSettings(.studentT).distribution(dimension: 3, using: stream)
        #expect(throws: GSLError.self) { try p.score(Tensor.zeros([2, 4])) }
        #expect(throws: GSLError.self) { try p.widened(by: 0) }
        #expect(throws: GSLError.self) { try StudentT(dimension: 2, degreesOfFreedom: 3, scale: -1) }
    }

    /// The importance-sampling proposals: a unimodal target widened by c is the law of cX,
    /// log p_c(x) = −D log c + log p(x/c) and s_c(x) = s(x/c)/c; a mixture is widened component by
    /// component about each mean, N(μₖ, c²Σₖ), same weights, written out here from the components'
    /// own densities. Widening by 1 changes nothing; the t's scale has its own score check.
    @Test(arguments: Target.allCases)
    func widenedIsTheScaledLaw(target: Target) throws {
        let d = 3, c = 2.0
        let p = try settings(target).distribution(dimension: d, using: RandomStream(seed: 77))
        let wide = try p.widened(by: c)
        let x = RandomStream(seed: 78).normal(shape: [10, d]) * 3
        if let mixture = p as? GaussianMixture {
            let perComponent = try mixture.components.map { component -> Tensor in
                let mu = Tensor(shape: [1, d], scalars: component.mean)
                return try component.logDensity(mu + (x - mu) * (1 / c)) - Double(d) * Foundation.log(c)
            }
            let expected = withoutGradients {
                Tensor.stack(perComponent.enumerated().map { $0.element + Foundation.log(mixture.weights[$0.offset]) }, alongAxis: 1)
                    .logSumExp(alongAxis: 1)
            }
            #expect(maxAbs(try wide.logDensity(x), expected) < 1e-12)
        } else {
            let expected = try p.logDensity(x * (1 / c)) - Double(d) * Foundation.log(c)
            #expect(maxAbs(try wide.logDensity(x), expected) < 1e-12)
            #expect(maxAbs(try wide.score(x), try p.score(x * (1 / c)) * (1 / c)) < 1e-12)
        }
        #expect(maxAbs(try wide.score(x), try finiteDifferenceScore(wide, x)) < 1e-6)
        #expect(maxAbs(try p.widened(by: 1).logDensity(x), try p.logDensity(x)) < 1e-12)
        if target == .studentT {
            // The t's draws with scale c: per-coordinate variance c² ν/(ν − 2), within 5 SE.
            let n = 200_000, nu = settings(target).parameters.degreesOfFreedom
            let squares = wide.sample(n, using: RandomStream(seed: 79)).scalars.map { $0 * $0 }
            let m = squares.reduce(0, +) / Double(squares.count)
            let se = (squares.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(squares.count - 1) / Double(squares.count)).squareRoot()
            #expect(abs(m - c * c * nu / (nu - 2)) < 5 * se, "t scale \(c): E x² = \(m) ± \(se)")
        }
    }

    /// The defaults of issue 12. Configs that leave a parameter at its default have it left out
    /// of their hash, so a changed default would silently change what committed results mean:
    /// change one only with a new key or a recomputed grid.
    @Test func targetDefaultsArePinned() {
        let p = TargetParameters()
        #expect(p.conditionNumber == 100 && p.components == 4 && p.separation == 3 && p.scale == 1
                && p.degreesOfFreedom == 5 && p.seed == 0)
    }
}

/// The toy datasets: each exact score against central differences of its log-density, each
/// density's mass, and each sampler against moments computed in closed form (within 5 SE).
@Suite struct ToyDatasets {
    func moments(_ x: Tensor) -> (mean: [Double], squaredNorm: (mean: Double, se: Double)) {
        let n = x.shape[0], v = x.scalars
        var sums = [0.0, 0.0], norms: [Double] = []
        for i in 0..<n {
            let a = v[2 * i], b = v[2 * i + 1]
            sums[0] += a
            sums[1] += b
            norms.append(a * a + b * b)
        }
        let m = norms.reduce(0, +) / Double(n)
        var spread = 0.0
        for value in norms { spread += (value - m) * (value - m) }
        return (sums.map { $0 / Double(n) }, (m, (spread / Double(n - 1) / Double(n)).squareRoot()))
    }

    @Test(arguments: [ToyDataset.eightGaussians, .rings, .ncsnMixture])
    func scoresAreGradientsOfTheLogDensity(dataset: ToyDataset) throws {
        let p = try #require(dataset.reference)
        // Data points, points between the modes, and for the rings the centre (ρ → 0).
        let x = Tensor.concatenate([dataset.sample(20, using: RandomStream(seed: 3)), RandomStream(seed: 4).normal(shape: [10, 2]) * 3,
                                    Tensor(shape: [2, 2], scalars: [0, 0, 1e-9, -2e-9])], alongAxis: 0)
        let exact = try p.score(x), numeric = try finiteDifferenceScore(p, x, h: 1e-6)
        for (a, b) in zip(exact.scalars, numeric.scalars) { #expect(abs(a - b) < 1e-5 * max(1, abs(a)), "\(dataset): \(a) vs \(b)") }
    }

    /// ∫ p = 1 by the midpoint rule on [−4, 4]² (step 0.02 against the rings' blur of 0.08; the
    /// outermost ring, radius 3, is 12 blurs inside the square).
    @Test func ringsIntegrateToOne() throws {
        let p = BlurredRings.toy
        let h = 0.02, k = 400
        var total = 0.0
        for i in 0..<k {
            let y = -4 + (Double(i) + 0.5) * h
            let row = Tensor(shape: [k, 2], scalars: (0..<k).flatMap { [-4 + (Double($0) + 0.5) * h, y] })
            total += try p.logDensity(row).scalars.map(exp).reduce(0, +) * h * h
        }
        #expect(abs(total - 1) < 1e-6)
    }

    /// 2spirals' quadrature score against central differences of its quadrature log-density (h =
    /// 10⁻⁴: truncation ~h²/s³ ≈ 10⁻⁵ relative, the log-density's 1e-11 error adds 10⁻⁷), at data
    /// points, points between the arms, far points (where p underflows without the log shift)
    /// and the centre.
    @Test func twoSpiralsScoreIsTheGradientOfItsLogDensity() throws {
        let p = TwoSpirals.toy
        let x = Tensor.concatenate([p.sample(12, using: RandomStream(seed: 3)), RandomStream(seed: 4).normal(shape: [6, 2]) * 2,
                                    Tensor(shape: [3, 2], scalars: [0, 0, 3.9, -3.9, -6, 1])], alongAxis: 0)
        let exact = try p.score(x)
        let h = 1e-4
        for i in 0..<x.shape[0] {
            for j in 0..<2 {
                var plus = Array(x.scalars[(2 * i)..<(2 * i + 2)]), minus = plus
                plus[j] += h
                minus[j] -= h
                let numeric = (try p.logDensity(Tensor(shape: [1, 2], scalars: plus)).scalar
                               - p.logDensity(Tensor(shape: [1, 2], scalars: minus)).scalar) / (2 * h)
                let a = exact.scalars[2 * i + j]
                #expect(abs(a - numeric) < 1e-5 * max(1, abs(a)), "2spirals at \(Array(x.scalars[(2 * i)..<(2 * i + 2)])): \(a) vs \(numeric)")
            }
        }
    }

    /// The reference accuracy claimed for 2spirals: the default quadrature (240 pieces, skipping
    /// far pieces, 1e-11 per piece) against 960 pieces, none skipped, 1e-12: scores agree to 1e-9
    /// relative (of the score's norm) and log-densities to 1e-9 absolute.
    @Test func twoSpiralsQuadratureIsConverged() throws {
        var fine = TwoSpirals.toy
        fine.pieces = 960
        fine.skipMargin = .infinity
        fine.tolerance = 1e-12
        let x = Tensor.concatenate([TwoSpirals.toy.sample(6, using: RandomStream(seed: 5)),
                                    Tensor(shape: [3, 2], scalars: [0, 0, 1.7, 0.4, 3.5, 3.5])], alongAxis: 0)
        let coarse = try TwoSpirals.toy.score(x), reference = try fine.score(x)
        for i in 0..<x.shape[0] {
            let a = coarse.scalars[(2 * i)..<(2 * i + 2)], b = reference.scalars[(2 * i)..<(2 * i + 2)]
            let norm = (b[2 * i] * b[2 * i] + b[2 * i + 1] * b[2 * i + 1]).squareRoot()
            #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-9 * max(norm, 1) }, "\(Array(a)) vs \(Array(b))")
        }
        let la = try TwoSpirals.toy.logDensity(x).scalars, lb = try fine.logDensity(x).scalars
        #expect(zip(la, lb).allSatisfy { abs($0 - $1) < 1e-9 }, "\(la) vs \(lb)")
        // A diverged point gets NaN (as the closed-form references give), not an error.
        let diverged = try TwoSpirals.toy.score(Tensor(shape: [2, 2], scalars: [.nan, 0, .infinity, 1]))
        #expect(diverged.scalars.allSatisfy { $0.isNaN })
    }

    /// ∫ p = 1: the midpoint rule with step 0.1 on [−4, 4]² (the arms end within 3.5 of the
    /// origin; for a blur of s = 0.1 the rule's error is of order e^{−2π²s²/h²} ≈ 3·10⁻⁹), over the
    /// half plane x₂ > 0 doubled (p(−x) = p(x): the arms are each other's reflection).
    @Test func twoSpiralsIntegrateToOne() throws {
        let h = 0.1, k = 80
        var total = 0.0
        for i in 0..<(k / 2) {
            let y = (Double(i) + 0.5) * h
            let row = Tensor(shape: [k, 2], scalars: (0..<k).flatMap { [-4 + (Double($0) + 0.5) * h, y] })
            total += try TwoSpirals.toy.logDensity(row).scalars.map(exp).reduce(0, +) * h * h * 2
        }
        #expect(abs(total - 1) < 1e-6, "∫ p = \(total)")
    }

    @Test func samplersHaveTheirMoments() throws {
        let stream = RandomStream(seed: 7), n = 200_000
        // 8gaussians: E x = 0, E‖x‖² = 8 + 2·(√2/4)² = 8.25.
        var m = moments(ToyDataset.eightGaussians.sample(n, using: stream))
        #expect(m.mean.allSatisfy { abs($0) < 0.02 } && abs(m.squaredNorm.mean - 8.25) < 5 * m.squaredNorm.se)
        // rings: E‖x‖² = Σ w_k (r_k² + 2s²).
        let rings = BlurredRings.toy
        let ringNorm = zip(rings.radii, rings.weights).map { $1 * ($0 * $0 + 2 * rings.blur * rings.blur) }.reduce(0, +)
        m = moments(ToyDataset.rings.sample(n, using: stream))
        #expect(m.mean.allSatisfy { abs($0) < 0.02 } && abs(m.squaredNorm.mean - ringNorm) < 5 * m.squaredNorm.se)
        // 2spirals: n = 3π√u has density 2n/(3π)² on [0, 3π], so E n² = 9π²/2, E n sin n = 2(9π² − 4)/(9π²),
        // E n cos n = −4/(3π); E‖x‖² = (E n² + ½(E n sin n − E n cos n) + 1/6)/9 + 2·0.1².
        let pi2 = Double.pi * Double.pi
        let spiralNorm = (9 * pi2 / 2 + 0.5 * (2 * (9 * pi2 - 4) / (9 * pi2) + 4 / (3 * Double.pi)) + 1.0 / 6) / 9 + 0.02
        m = moments(ToyDataset.twoSpirals.sample(n, using: stream))
        #expect(m.mean.allSatisfy { abs($0) < 0.02 } && abs(m.squaredNorm.mean - spiralNorm) < 5 * m.squaredNorm.se,
                "2spirals E‖x‖² \(m.squaredNorm) vs \(spiralNorm)")
        // ncsn_mixture: E x = 0.8·5 − 0.2·5 = 3 per coordinate, E‖x‖² = 50 + 2.
        m = moments(ToyDataset.ncsnMixture.sample(n, using: stream))
        #expect(m.mean.allSatisfy { abs($0 - 3) < 0.05 } && abs(m.squaredNorm.mean - 52) < 5 * m.squaredNorm.se)
        // checkerboard: x₁ uniform on [−4, 4); every point on a square where ⌊x₁/2⌋ + ⌊x₂/2⌋ is even.
        let board = ToyDataset.checkerboard.sample(n, using: stream)
        let x1 = (0..<n).map { board.scalars[2 * $0] }
        #expect(x1.allSatisfy { $0 >= -4 && $0 < 4 } && abs(x1.reduce(0, +) / Double(n)) < 0.03)
        #expect((0..<n).allSatisfy { i in Int(floor(board.scalars[2 * i] / 2) + floor(board.scalars[2 * i + 1] / 2)) % 2 == 0 })
        #expect(board.scalars.allSatisfy { $0 >= -4 && $0 < 4 })
    }

    @Test func unknownDatasetIsRefusedByName() {
        #expect(throws: GSLError.self) { try ToyDataset(named: "moons") }
        #expect("\((try? ToyDataset(named: "moons")) as Any)" == "nil")
    }
}

/// The data blurred by N(0, σ²I), which DSM and DEEN at σ fit, and the Fisher divergence of its
/// score from the data's (DSM's floor).
@Suite struct GaussianBlurs {
    /// p_σ(x) = ∫ p(x − σz) φ(z) dz by the trapezoid rule on z ∈ [−6.3, 6.3]², step 0.35: the
    /// integrand is smooth on the scale s/σ ≥ 0.8 (s the dataset's own blur), where the rule's
    /// error is of order e^{−2π²(s/σ)²/h²} < e⁻¹⁰⁰, and the Gaussian's mass outside the square is
    /// 6·10⁻¹⁰; so the two agree to 1e-8 (2spirals' quadrature holds 1e-9; one point there, as
    /// its density costs ~5 ms per point in a debug build).
    @Test(arguments: [ToyDataset.eightGaussians, .rings, .twoSpirals, .ncsnMixture])
    func blurredDensityIsTheConvolution(dataset: ToyDataset) throws {
        let sigma = 0.1, h = 0.35, k = 37
        let p = try #require(dataset.reference), blurred = try #require(try dataset.blurred(by: sigma))
        // Data points: far from the data p_σ(x) is set by the tail of z outside the square.
        let x = dataset.sample(dataset == .twoSpirals ? 1 : 4, using: RandomStream(seed: 5))
        let nodes = (0..<k).map { -6.3 + Double($0) * h }
        let weights: [Double] = nodes.map { (z: Double) -> Double in exp(-z * z / 2) * h / (2 * Double.pi).squareRoot() }
        let closed = try blurred.logDensity(x).scalars.map(exp)
        for n in 0..<x.shape[0] {
            let a = x.scalars[2 * n], b = x.scalars[2 * n + 1]
            var points: [Double] = []
            for i in 0..<k { for j in 0..<k { points += [a - sigma * nodes[i], b - sigma * nodes[j]] } }
            let values: [Double] = try p.logDensity(Tensor(shape: [k * k, 2], scalars: points)).scalars.map { exp($0) }
            var numeric = 0.0
            for i in 0..<k { for j in 0..<k { numeric += weights[i] * weights[j] * values[i * k + j] } }
            #expect(abs(numeric - closed[n]) <= 1e-8 * closed[n], "\(dataset) at point \(n): \(numeric) vs \(closed[n])")
        }
    }

    /// N(0, s²I_D) and its blur N(0, (s² + σ²)I_D): the scores differ by −x σ²/(s²(s² + σ²)), so
    /// F = ½ D s² (σ² / (s²(s² + σ²)))². The estimate is within 4 standard errors of it.
    @Test func floorOfAGaussianHasItsClosedForm() throws {
        let d = 3, s = 0.7, sigma = 0.4
        let p = try MultivariateNormal(mean: [0, 0, 0], covariance: Tensor(shape: [3, 3], scalars: [s * s, 0, 0, 0, s * s, 0, 0, 0, s * s]))
        let c = sigma * sigma / (s * s * (s * s + sigma * sigma))
        let exact = 0.5 * Double(d) * s * s * c * c
        let estimate = try fisherDivergence(between: p, and: try p.blurred(by: sigma), draws: 20000, using: RandomStream(seed: 11))
        #expect(estimate.standardError > 0 && estimate.standardError < 0.05 * exact)
        #expect(abs(estimate.mean - exact) < 4 * estimate.standardError, "\(estimate) vs \(exact)")
        #expect(try fisherDivergence(between: p, and: p, draws: 100, using: RandomStream(seed: 1)).mean == 0)
    }

    @Test func badBlurIsRefusedAndTheCheckerboardHasNone() throws {
        for sigma in [0, -0.1, .nan, .infinity] {
            #expect(throws: GSLError.self) { try ToyDataset.rings.blurred(by: sigma) }
            #expect(throws: GSLError.self) { try ToyDataset.eightGaussians.blurred(by: sigma) }
        }
        #expect(try ToyDataset.checkerboard.blurred(by: 0.1) == nil)
        #expect(throws: GSLError.self) { try fisherDivergence(between: BlurredRings.toy, and: BlurredRings.toy, draws: 1, using: RandomStream(seed: 1)) }
    }
}

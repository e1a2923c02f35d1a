import Autodiff
import CGSL

/// A seeded stream of random numbers: GSL's Mersenne Twister (mt19937).
///
/// A stream is a reference: every draw advances it, wherever it is passed. The same seed gives
/// the same sequence of draws on every machine. GSL seeds mt19937 with the low 32 bits of `seed`
/// (0 means GSL's default, 4357); larger seeds are folded to 32 bits by xor.
public final class RandomStream {
    public let seed: UInt64
    let rng: OpaquePointer

    public init(seed: UInt64) {
        ensureGSLErrorsReturn()
        self.seed = seed
        rng = OpaquePointer(gsl_rng_alloc(ssm_gsl_rng_mt19937()))
        gsl_rng_set(UnsafePointer(rng), UInt(truncatingIfNeeded: (seed & 0xffff_ffff) ^ (seed >> 32)))
    }

    deinit { gsl_rng_free(UnsafeMutablePointer(rng)) }

    var pointer: UnsafeMutablePointer<gsl_rng> { UnsafeMutablePointer(rng) }

    /// A child stream seeded from this one (for independent, reproducible sub-streams).
    public func split() -> RandomStream { RandomStream(seed: UInt64(gsl_rng_get(pointer))) }

    /// Uniform on [0, 1).
    public func uniform() -> Double { gsl_rng_uniform(pointer) }
    /// Standard normal N(0, 1) (GSL's ziggurat method).
    public func normal() -> Double { gsl_ran_gaussian_ziggurat(pointer, 1) }
    /// Rademacher: ±1 with probability ½ each.
    public func rademacher() -> Double { gsl_rng_uniform_int(pointer, 2) == 0 ? -1 : 1 }
    /// Uniform on {0, …, n − 1}.
    public func integer(below n: Int) -> Int {
        precondition(n > 0, "RandomStream.integer(below:): n must be positive, is \(n)")
        return Int(gsl_rng_uniform_int(pointer, UInt(n)))
    }

    /// A tensor of i.i.d. N(0, 1) draws.
    public func normal(shape: [Int]) -> Tensor { draw(shape) { $0.normal() } }
    /// A tensor of i.i.d. Rademacher (±1) draws: each 32-bit output of mt19937 gives 32 signs
    /// (bit i of a word is the sign of element i), not one GSL call per element.
    public func rademacher(shape: [Int]) -> Tensor { rademacherSigns(shape: shape).dense }

    /// The same draws as `rademacher(shape:)`, from the same positions of the stream, kept packed
    /// (`SignTensor`) for the products that read them as bits.
    public func rademacherSigns(shape: [Int]) -> SignTensor {
        SignTensor(shape: shape, words: rademacherBits(count: shape.reduce(1, *)))
    }

    /// `count` Rademacher signs packed 32 to a word (bit i % 32 of word i / 32 set: +1): the same
    /// draws, from the same positions of the stream, as `rademacher(shape:)` of that many elements.
    public func rademacherBits(count: Int) -> [UInt32] {
        (0..<(count + 31) / 32).map { _ in UInt32(truncatingIfNeeded: gsl_rng_get(pointer)) }
    }

    /// A tensor of i.i.d. draws uniform on [low, high).
    public func uniform(shape: [Int], in range: Range<Double> = 0..<1) -> Tensor {
        draw(shape) { range.lowerBound + (range.upperBound - range.lowerBound) * $0.uniform() }
    }

    /// A uniformly random permutation of 0..<n (GSL's shuffle).
    public func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        p.withUnsafeMutableBytes { gsl_ran_shuffle(pointer, $0.baseAddress, n, MemoryLayout<Int>.stride) }
        return p
    }

    private func draw(_ shape: [Int], _ one: (RandomStream) -> Double) -> Tensor {
        let n = shape.reduce(1, *)
        var values = [Double]()
        values.reserveCapacity(n)
        for _ in 0..<n { values.append(one(self)) }
        return Tensor(shape: shape, scalars: values)
    }
}

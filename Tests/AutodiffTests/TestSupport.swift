import Autodiff

/// SplitMix64: a tiny deterministic generator for test inputs (the project's streams live in
/// GSLNumerics; the autodiff core and its tests depend on nothing else).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Tensor {
    /// Uniform entries on `range`.
    static func random(_ shape: [Int], in range: ClosedRange<Double> = -1...1, using rng: inout SplitMix) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in Double.random(in: range, using: &rng) })
    }

    /// Entries with magnitude in `magnitude` and a random sign (away from kinks at 0).
    static func randomAwayFromZero(_ shape: [Int], magnitude: ClosedRange<Double> = 0.2...1, using rng: inout SplitMix) -> Tensor {
        Tensor(shape: shape, scalars: (0..<shape.reduce(1, *)).map { _ in
            Double.random(in: magnitude, using: &rng) * (Bool.random(using: &rng) ? 1 : -1)
        })
    }
}

/// Largest |aᵢ − bᵢ|.
func maxDifference(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.shape == b.shape, "maxDifference: \(a.shape) vs \(b.shape)")
    return zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
}

func maxDifference(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

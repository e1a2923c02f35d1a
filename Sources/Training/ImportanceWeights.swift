import Foundation

/// Running sums of importance weights w = p̃(x)/q(x), kept as logarithms and added chunk by chunk
/// (log-sum-exp), for log Z ≈ log (1/S) Σ w and Kish's effective sample size
/// ESS = (Σ w)² / Σ w² ∈ [1, S] (S for equal weights, 1 when one weight carries all).
public struct ImportanceWeights: Sendable, Equatable {
    public private(set) var count = 0
    /// log Σ w and log Σ w².
    public private(set) var logSum = -Double.infinity, logSumOfSquares = -Double.infinity

    public init() {}

    /// Adds a chunk given by its size and log Σ w, log Σ w² over the chunk.
    public mutating func add(count: Int, logSum chunk: Double, logSumOfSquares chunkOfSquares: Double) {
        func combine(_ total: Double, _ part: Double) -> Double {
            // −∞ + −∞ stays −∞ (an empty or all-zero chunk adds nothing).
            guard total > -Double.infinity || part > -Double.infinity else { return -Double.infinity }
            return max(total, part) + Foundation.log1p(Foundation.exp(-abs(total - part)))
        }
        self.count += count
        logSum = combine(logSum, chunk)
        logSumOfSquares = combine(logSumOfSquares, chunkOfSquares)
    }

    /// Adds log weights one by one (the oracle of the chunked form, and a convenience for tests).
    public mutating func add(logWeights: [Double]) {
        for lw in logWeights { add(count: 1, logSum: lw, logSumOfSquares: 2 * lw) }
    }

    /// log (1/S) Σ w.
    public var logMean: Double { logSum - Foundation.log(Double(count)) }

    /// (Σ w)² / Σ w².
    public var effectiveSampleSize: Double { Foundation.exp(2 * logSum - logSumOfSquares) }
}

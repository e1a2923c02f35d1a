import Autodiff
import COpenBLAS

/// ‖xᵢ − xⱼ‖² for x `[M, D]`: `[M·M]`, symmetric, diagonal exactly 0, from one `dsyrk` (xxᵀ, half
/// a GEMM): ‖xᵢ‖² + ‖xⱼ‖² − 2 xᵢᵀxⱼ, clamped at 0. A fit computes it once; the bandwidth's median
/// and the kernel matrix both read it.
func squaredDistances(_ x: UnsafeBufferPointer<Double>, count m: Int, dimension d: Int) -> [Double] {
    let norms = squaredNorms(x, count: m, dimension: d)
    var s = [Double](repeating: 0, count: m * m)
    s.withUnsafeMutableBufferPointer { s in
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(m), Int32(d), 1, x.baseAddress, Int32(d), 0, s.baseAddress, Int32(m))
        for i in 0..<m {
            s[i * m + i] = 0
            for j in (i + 1)..<m {
                let v = max(norms[i] + norms[j] - 2 * s[i * m + j], 0)
                s[i * m + j] = v
                s[j * m + i] = v
            }
        }
    }
    return s
}

/// The RBF kernel k(x, y) = exp(−‖x − y‖² / (2h²)) on row-major point sets, every pairwise term
/// from one GEMM (‖x − y‖² = ‖x‖² + ‖y‖² − 2 xᵀy, clamped at 0) and one vector exp.
///
/// Its derivatives, which the estimators use in closed form:
/// ∂k(x, y)/∂x = −k(x, y) (x − y)/h² and ∂k(x, y)/∂y = k(x, y) (x − y)/h².
struct RBFKernel {
    let bandwidth: Double

    /// Squared distances `[M·M]` (`squaredDistances`) become K_ij = k(xᵢ, xⱼ) in place:
    /// symmetric, diagonal exactly 1 (a fit needs the distances no more, so no M² copy).
    func toGram(_ k: inout [Double]) {
        let scale = -0.5 / (bandwidth * bandwidth)
        k.withUnsafeMutableBufferPointer { k in
            for i in k.indices { k[i] *= scale }
            VectorMath.exp(k)
        }
    }

    /// K_nj = k(yₙ, xⱼ) for y `[N, D]`, x `[M, D]`: `[N·M]` row-major.
    func cross(_ y: UnsafeBufferPointer<Double>, count n: Int, _ x: UnsafeBufferPointer<Double>, count m: Int, dimension d: Int) -> [Double] {
        let ny = squaredNorms(y, count: n, dimension: d), nx = squaredNorms(x, count: m, dimension: d)
        var k = [Double](repeating: 0, count: n * m)
        guard n > 0 else { return k }
        k.withUnsafeMutableBufferPointer { k in
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(n), Int32(m), Int32(d), 1, y.baseAddress, Int32(d),
                        x.baseAddress, Int32(d), 0, k.baseAddress, Int32(m))
            let scale = -0.5 / (bandwidth * bandwidth)
            for i in 0..<n {
                for j in 0..<m { k[i * m + j] = max(ny[i] + nx[j] - 2 * k[i * m + j], 0) * scale }
            }
            VectorMath.exp(k)
        }
        return k
    }
}

/// ‖xᵢ‖² of the rows of x `[M, D]`.
func squaredNorms(_ x: UnsafeBufferPointer<Double>, count m: Int, dimension d: Int) -> [Double] {
    (0..<m).map { i in
        var s = 0.0
        for k in 0..<d { s += x[i * d + k] * x[i * d + k] }
        return s
    }
}

/// The authors' median heuristic for samples `[M, D]`: the k-th largest, k = ⌊M²/2⌋, of the M²
/// distances ‖xᵢ − xⱼ‖ (i, j = 1 … M, the M zeros of i = j included).
///
/// Each pair i < j appears twice in that list, so its k-th largest is the ⌈k/2⌉-th largest of the
/// M(M−1)/2 distinct pairs (k ≤ M(M−1) for M ≥ 2, so the zeros are never reached): one selection
/// over half the matrix, O(M²) expected.
func medianPairwiseDistance(_ samples: Tensor) throws(KernelEstimatorError) -> Double {
    let (m, d) = try checkedSamples(samples)
    return try medianPairwiseDistance(squared: samples.scalars.withUnsafeBufferPointer { squaredDistances($0, count: m, dimension: d) }, samples: samples)
}

/// The same from the samples' squared distances `[M·M]` (`squaredDistances`).
func medianPairwiseDistance(squared s: [Double], samples: Tensor) throws(KernelEstimatorError) -> Double {
    let m = samples.shape[0], d = samples.shape[1]
    var pairs = [Double]()
    pairs.reserveCapacity(m * (m - 1) / 2)
    for i in 0..<m { pairs.append(contentsOf: s[(i * m + i + 1)..<((i + 1) * m)]) }
    let k = m * m / 2
    let squared = pairs.withUnsafeMutableBufferPointer { kthLargestNonnegative($0, (k + 1) / 2) }
    // Rounding in ‖x‖² + ‖y‖² − 2xᵀy leaves about ε·‖x‖² where the exact value is 0.
    let floor = 64 * Double.ulpOfOne * (samples.scalars.map { $0 * $0 }.max() ?? 0) * Double(d)
    guard squared > floor else { throw .coincidentSamples }
    return squared.squareRoot()
}

/// The k-th largest of nonnegative values (k = 1 is the maximum), which it may reorder: a radix
/// pass on the top 16 bits of the values' bit patterns (for doubles ≥ 0 their order as unsigned
/// integers: 11 exponent bits and 5 of the fraction), counting, then Hoare's selection among the
/// values of the one bucket that holds the k-th. Two branch-free passes instead of Hoare's
/// branchy ones over all M(M−1)/2 pair distances; the same value (tested against sorting).
func kthLargestNonnegative(_ values: UnsafeMutableBufferPointer<Double>, _ k: Int) -> Double {
    precondition(k >= 1 && k <= values.count, "kthLargestNonnegative: k = \(k) outside 1...\(values.count)")
    guard values.count > 4096 else { return kthLargest(values, k) }
    @inline(__always) func bucket(_ v: Double) -> Int { Int((v.bitPattern & 0x7fff_ffff_ffff_ffff) >> 47) }
    var counts = [Int](repeating: 0, count: 1 << 16)
    counts.withUnsafeMutableBufferPointer { counts in for v in values { counts[bucket(v)] += 1 } }
    var (remaining, top) = (k, (1 << 16) - 1)
    while counts[top] < remaining { remaining -= counts[top]; top -= 1 }
    var members = [Double]()
    members.reserveCapacity(counts[top])
    for v in values where bucket(v) == top { members.append(v) }
    return kthLargest(&members, remaining)
}

/// The k-th largest element (k = 1 is the maximum) of `values`, which it reorders: Hoare's
/// selection with a median-of-three pivot, O(n) expected.
func kthLargest(_ array: inout [Double], _ k: Int) -> Double {
    precondition(k >= 1 && k <= array.count, "kthLargest: k = \(k) outside 1...\(array.count)")
    return array.withUnsafeMutableBufferPointer { values in kthLargest(values, k) }
}

/// The same on a buffer (no bounds checks in the partition loops).
func kthLargest(_ values: UnsafeMutableBufferPointer<Double>, _ k: Int) -> Double {
    let target = k - 1  // index in descending order
    var (lo, hi) = (0, values.count - 1)
    while lo < hi {
        let mid = lo + (hi - lo) / 2
        // Median of three, descending: values[lo] ≥ values[mid] ≥ values[hi].
        if values[mid] > values[lo] { values.swapAt(mid, lo) }
        if values[hi] > values[lo] { values.swapAt(hi, lo) }
        if values[hi] > values[mid] { values.swapAt(hi, mid) }
        let pivot = values[mid]
        var (i, j) = (lo, hi)
        while i <= j {
            while values[i] > pivot { i += 1 }
            while values[j] < pivot { j -= 1 }
            if i <= j { values.swapAt(i, j); i += 1; j -= 1 }
        }
        // Now values[lo...j] ≥ pivot ≥ values[i...hi], and j < i.
        if target <= j { hi = j } else if target >= i { lo = i } else { return values[target] }
    }
    return values[target]
}

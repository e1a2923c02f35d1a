import Foundation

/// Mean and standard error (sample standard deviation / √n; 0 for one value).
public func meanAndStandardError(_ xs: [Double]) -> (mean: Double, standardError: Double) {
    guard !xs.isEmpty else { return (.nan, .nan) }
    let n = Double(xs.count)
    let mean = xs.reduce(0, +) / n
    guard xs.count > 1 else { return (mean, 0) }
    let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (n - 1)
    return (mean, (variance / n).squareRoot())
}

/// Median (mean of the middle two for an even count).
public func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return .nan }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// Least-squares slope of log y against log x: y ∝ x^slope.
public func logLogSlope(x: [Double], y: [Double]) -> Double {
    precondition(x.count == y.count)
    guard x.count >= 2 else { return .nan }
    let lx = x.map { Foundation.log($0) }, ly = y.map { Foundation.log($0) }
    let mx = lx.reduce(0, +) / Double(lx.count), my = ly.reduce(0, +) / Double(ly.count)
    let sxy = zip(lx, ly).map { ($0 - mx) * ($1 - my) }.reduce(0, +)
    let sxx = lx.map { ($0 - mx) * ($0 - mx) }.reduce(0, +)
    return sxy / sxx
}

/// The elements in first-seen order without repeats.
public func uniqued<T: Hashable>(_ xs: [T]) -> [T] {
    var seen = Set<T>()
    return xs.filter { seen.insert($0).inserted }
}

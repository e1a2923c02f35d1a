import Synchronization

/// Counts the floating-point operations of matrix products (2·n·k·m per product of an n×k and a
/// k×m matrix) while active, for benchmarks that report GFLOP/s. Elementwise work is not counted.
public final class FlopCounter: Sendable {
    private let total = Atomic<Int>(0)

    public init() {}

    /// Operations counted so far.
    public var count: Int { total.load(ordering: .relaxed) }

    func add(_ flops: Int) { total.wrappingAdd(flops, ordering: .relaxed) }

    /// The active counter, if any.
    @TaskLocal static var current: FlopCounter?

    /// Runs `body`, counting the GEMM operations it performs; returns its result and the count.
    public static func counting<T>(_ body: () throws -> T) rethrows -> (result: T, flops: Int) {
        let counter = FlopCounter()
        let result = try $current.withValue(counter) { try body() }
        return (result, counter.count)
    }
}

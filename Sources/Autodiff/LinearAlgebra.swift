import COpenBLAS

/// Matrix products through OpenBLAS `dgemm` and linear solves through LAPACK `dgesv`.
extension Tensor {
    /// C = op(A) · op(B), with op(X) = Xᵀ (last two axes) when the flag is set, else X.
    ///
    /// Shapes: op(A) is `[n, k]` or `[batch, n, k]`, op(B) is `[k, m]` or `[batch, m…]`; a rank-2
    /// operand is shared by every batch entry. C is `[n, m]`, or `[batch, n, m]` if either is rank 3.
    /// Transposes are handled by `dgemm`'s flags, never by copying.
    ///
    /// Pullbacks (Ḡ = C̄, reduced over the batch axis for a rank-2 operand):
    /// op(A)‾ = Ḡ op(B)ᵀ and op(B)‾ = op(A)ᵀ Ḡ, each again a `matmul` with flags, so
    /// Ā = matmul(Ḡ, B, tB: ¬tB) or, when A is transposed, matmul(B, Ḡ, tA: tB, tB: true);
    /// B̄ = matmul(A, Ḡ, tA: ¬tA) or, when B is transposed, matmul(Ḡ, A, tA: true, tB: tA).
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition((2...3).contains(a.rank) && (2...3).contains(b.rank),
                     "matmul: operands must be rank 2 or 3, have shapes \(a.shape) and \(b.shape)")
        let ar = a.rank, br = b.rank
        let n = transposeA ? a.shape[ar - 1] : a.shape[ar - 2]
        let k = transposeA ? a.shape[ar - 2] : a.shape[ar - 1]
        let kb = transposeB ? b.shape[br - 1] : b.shape[br - 2]
        let m = transposeB ? b.shape[br - 2] : b.shape[br - 1]
        precondition(k == kb, "matmul: inner extents differ: op(A) is \(n)×\(k), op(B) is \(kb)×\(m) (shapes \(a.shape), \(b.shape))")
        let batch: Int
        switch (ar, br) {
        case (3, 3):
            precondition(a.shape[0] == b.shape[0], "matmul: batch extents differ: \(a.shape) and \(b.shape)")
            batch = a.shape[0]
        case (3, _): batch = a.shape[0]
        case (_, 3): batch = b.shape[0]
        default: batch = 0
        }
        let outShape = batch == 0 ? [n, m] : [batch, n, m]
        FlopCounter.current?.add(2 * Swift.max(batch, 1) * n * k * m)
        let value = makeBuffer(Swift.max(batch, 1) * n * m) { out in
            a.scalars.withUnsafeBufferPointer { pa in
                b.scalars.withUnsafeBufferPointer { pb in
                    let lda = transposeA ? n : k, ldb = transposeB ? k : m
                    let ta = transposeA ? CblasTrans : CblasNoTrans, tb = transposeB ? CblasTrans : CblasNoTrans
                    if n == 0 || m == 0 { return }
                    if k == 0 { out.initialize(repeating: 0); return }
                    if batch == 0 || (ar == 3 && br == 2 && !transposeA) {
                        // One GEMM: a rank-3 A that is not transposed is a [batch·n, k] matrix.
                        let rows = Swift.max(batch, 1) * n
                        cblas_dgemm(CblasRowMajor, ta, tb, Int32(rows), Int32(m), Int32(k), 1,
                                    pa.baseAddress, Int32(lda), pb.baseAddress, Int32(ldb), 0, out.baseAddress, Int32(m))
                        return
                    }
                    let strideA = ar == 3 ? n * k : 0, strideB = br == 3 ? k * m : 0
                    for i in 0..<batch {
                        cblas_dgemm(CblasRowMajor, ta, tb, Int32(n), Int32(m), Int32(k), 1,
                                    pa.baseAddress! + i * strideA, Int32(lda), pb.baseAddress! + i * strideB, Int32(ldb),
                                    0, out.baseAddress! + i * n * m, Int32(m))
                    }
                }
            }
        }
        return record(shape: outShape, scalars: value, inputs: [a, b]) { g, _, needed in
            var ga: Tensor? = nil, gb: Tensor? = nil
            if needed[0] {
                let full = transposeA ? matmul(b, g, transposeA: transposeB, transposeB: true)
                                      : matmul(g, b, transposeB: !transposeB)
                ga = full.rank > ar ? full.sum(alongAxis: 0) : full
            }
            if needed[1] {
                let full = transposeB ? matmul(g, a, transposeA: true, transposeB: transposeA)
                                      : matmul(a, g, transposeA: !transposeA)
                gb = full.rank > br ? full.sum(alongAxis: 0) : full
            }
            return [ga, gb]
        }
    }

    /// y = op(A) x for A `[n, k]` (op(A) = Aᵀ `[k, n]` when `transposeA`) and x a vector, by
    /// `dgemv`: no packing of A, which a GEMM with one column spends most of its time on.
    ///
    /// Pullbacks: x̄ = op(A)ᵀ ȳ (this product with the flag flipped) and Ā = ȳ xᵀ (or x ȳᵀ when
    /// transposed), an outer product.
    public static func matrixVectorProduct(_ a: Tensor, _ x: Tensor, transposeA: Bool = false) -> Tensor {
        precondition(a.rank == 2 && x.rank == 1, "matrixVectorProduct: A must be rank 2 and x rank 1, have \(a.shape) and \(x.shape)")
        let (rows, columns) = (a.shape[0], a.shape[1])
        let (n, k) = transposeA ? (columns, rows) : (rows, columns)
        precondition(x.count == k, "matrixVectorProduct: op(A) is \(n)×\(k), x has \(x.count) elements")
        FlopCounter.current?.add(2 * n * k)
        let value = makeBuffer(n) { out in
            if n == 0 { return }
            if k == 0 { out.initialize(repeating: 0); return }
            a.scalars.withUnsafeBufferPointer { pa in
                x.scalars.withUnsafeBufferPointer { px in
                    cblas_dgemv(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, Int32(rows), Int32(columns), 1,
                                pa.baseAddress, Int32(columns), px.baseAddress, 1, 0, out.baseAddress, 1)
                }
            }
        }
        return record(shape: [n], scalars: value, inputs: [a, x]) { g, _, needed in
            let ga: Tensor? = needed[0]
                ? (transposeA ? matmul(x.reshaped([-1, 1]), g.reshaped([1, -1])) : matmul(g.reshaped([-1, 1]), x.reshaped([1, -1])))
                : nil
            return [ga, needed[1] ? matrixVectorProduct(a, g, transposeA: !transposeA) : nil]
        }
    }

    /// G = A Aᵀ for A `[n, k]`, or G = Aᵀ A for A `[k, n]` when `transposed`; `[n, n]` either way,
    /// by `dsyrk` (half a GEMM's work; the lower triangle is mirrored from the upper).
    /// Pullback: Ā = (Ḡ + Ḡᵀ) A, or A (Ḡ + Ḡᵀ) when transposed.
    public static func gram(_ a: Tensor, transposed: Bool = false) -> Tensor {
        precondition(a.rank == 2, "gram: A must be rank 2, has shape \(a.shape)")
        let (n, k) = transposed ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        FlopCounter.current?.add(n * (n + 1) * k)
        let value = makeBuffer(n * n) { out in
            out.initialize(repeating: 0)
            guard n > 0, k > 0 else { return }
            a.scalars.withUnsafeBufferPointer { pa in
                cblas_dsyrk(CblasRowMajor, CblasUpper, transposed ? CblasTrans : CblasNoTrans, Int32(n), Int32(k), 1,
                            pa.baseAddress, Int32(a.shape[1]), 0, out.baseAddress, Int32(n))
            }
            for i in 0..<n { for j in 0..<i { out[i * n + j] = out[j * n + i] } }
        }
        return record(shape: [n, n], scalars: value, inputs: [a]) { g, _, _ in
            [transposed ? matmul(a, g + g.transposed()) : matmul(g + g.transposed(), a)]
        }
    }

    /// The solution x of A x = b, A `[n, n]`, b `[n]` or `[n, k]` (LAPACK `dgesv`, LU with partial
    /// pivoting). For a singular A the result is all NaN (check `isFinite`).
    ///
    /// Pullbacks: b̄ = A⁻ᵀ x̄ and Ā = −b̄ xᵀ (for a vector b, the outer product).
    public static func solve(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.rank == 2 && a.shape[0] == a.shape[1], "solve: A must be square, has shape \(a.shape)")
        precondition((b.rank == 1 || b.rank == 2) && b.shape[0] == a.shape[0],
                     "solve: b must be [\(a.shape[0])] or [\(a.shape[0]), k], has shape \(b.shape)")
        let n = a.shape[0], rhs = b.rank == 1 ? 1 : b.shape[1]
        var lu = a.scalars
        var x = b.scalars
        var pivots = [Int32](repeating: 0, count: n)
        let info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, Int32(n), Int32(rhs), &lu, Int32(n), &pivots, &x, Int32(rhs))
        if info != 0 { x = [Double](repeating: .nan, count: x.count) }
        return record(shape: b.shape, scalars: x, inputs: [a, b]) { g, x, needed in
            let gb = solve(a.transposed(), g)
            let ga: Tensor? = needed[0]
                ? -matmul(gb.rank == 1 ? gb.reshaped([n, 1]) : gb, x.rank == 1 ? x.reshaped([n, 1]) : x, transposeB: true)
                : nil
            return [ga, needed[1] ? gb : nil]
        }
    }
}

/// OpenBLAS's description of its build, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY …".
public var openBLASConfiguration: String { String(cString: ssm_openblas_config()) }

/// Threads OpenBLAS uses.
public var openBLASThreadCount: Int { Int(ssm_openblas_threads()) }

/// Sets the threads OpenBLAS uses from now on in this process.
public func setOpenBLASThreadCount(_ threads: Int) { ssm_openblas_set_threads(Int32(threads)) }

/// The kernel family OpenBLAS uses ("SkylakeX", "Haswell", "Prescott", …).
public var openBLASCore: String { String(cString: ssm_openblas_core()) }

/// Makes OpenBLAS use the kernels this CPU supports when its own detection fell back to the SSE3
/// "Prescott" ones (OpenBLAS 0.3.21 on this VM): sets OPENBLAS_CORETYPE and executes the program
/// again with the same arguments. Call first thing in an executable; a no-op when
/// OPENBLAS_CORETYPE is set, detection worked, or the CPU has no AVX2.
public func selectOpenBLASCore() {
    ssm_openblas_select_core(CommandLine.unsafeArgv)
}

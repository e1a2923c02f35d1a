import ArgumentParser
import Autodiff
import CRuntime
import ExperimentGrid
import Foundation
import GridExecution
import GSLNumerics
import KernelEstimators

/// Fit and query seconds of the kernel score estimators (issue 28's benchmark): for each
/// estimator, D and M, samples of N(0, I_D) and 1000 query points; the authors' settings (Stein
/// η = 0.001; SSGE 99% of the spectrum; the median bandwidth); one warm-up fit, then the median of
/// `repeats` fits and of as many query batches. Each line carries the FLOP count of the fit and of a
/// query batch (below) so the reader can set it against the run's dgemm rate. One JSON object per
/// cell on standard output, for `experiments/reference/bench_kernels.py`, which times its PyTorch
/// reference of the same two estimators in the same run and writes results/bench-kernels.md.
///
/// FLOPs counted (multiply-add = 2), the work each algorithm cannot avoid:
/// - Stein fit: xxᵀ by dsyrk M²D, K X 2M²D, Cholesky M³/3, the solve with D right-hand sides 2M²D.
/// - Stein query of N points: K_yx 2NMD, the solve with N right-hand sides 2M²N, two GEMMs 4NMD.
/// - SSGE fit: dsyrk M²D, K X 2M²D, the reduction to tridiagonal form 4/3 M³ (half of it
///   matrix-vector products, which run at memory speed, not at dgemm's rate) and the
///   back-transformation of the J eigenvectors kept 2M²J (the eigenvectors of the tridiagonal
///   matrix are not counted: MRRR's O(MJ), or divide and conquer's GEMMs when J > M/3),
///   U_Jᵀ⟨∇, K⟩ and U_J P 4MJD, K B 2M²D. With `--eigensolver all` the back-transformation is of
///   all M vectors, 2M³.
/// - SSGE query: K_yx 2NMD, K_yx B 2NMD.
struct KernelFitsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time the Stein and SSGE kernel score estimators' fit and query (JSON lines).")

    @Option(help: "Comma-separated data dimensions D.")
    var dims: String = "20,100"

    @Option(help: "Comma-separated sample counts M.")
    var samples: String = "1000,3000"

    @Option(help: "Comma-separated estimators (stein, ssge).")
    var estimators: String = "stein,ssge"

    @Option(help: "Query points per batch.")
    var queries: Int = 1000

    @Option(help: "Timed fits and query batches (the median is reported).")
    var repeats: Int = 3

    @Option(help: "SSGE's eigensolver: selected (the eigenvectors the cut keeps; the default) or all (dsyevd, the oracle).")
    var eigensolver: String = "selected"

    @Flag(help: "Also time OpenBLAS dgemm on a 1024² product and print it as the first line.")
    var dgemm = false

    @Option(help: "Instead of timing: write, per estimator at the first D and M, the samples, queries, bandwidth and this suite's in-sample and out-of-sample estimates as JSON to this file (bench_kernels.py --verify recomputes them in PyTorch).")
    var verify: String?

    func validate() throws {
        guard parseDims(dims) != nil, parseDims(samples).map({ $0.allSatisfy { $0 >= 2 } }) == true else {
            throw ValidationError("--dims and --samples must be positive integers separated by commas (M ≥ 2)")
        }
        guard ["selected", "all"].contains(eigensolver) else { throw ValidationError("--eigensolver: choose selected or all, got '\(eigensolver)'") }
        guard queries >= 1, repeats >= 1 else { throw ValidationError("--queries and --repeats must be ≥ 1") }
        for name in estimators.split(separator: ",") where !["stein", "ssge"].contains(name) {
            throw ValidationError("--estimators: unknown estimator '\(name)'; choose from stein, ssge")
        }
    }

    func estimate(_ name: Substring, _ x: Tensor) throws -> any KernelScoreEstimate {
        name == "stein" ? try SteinScoreEstimator(eta: 0.001).fit(x)
            : try SpectralScoreEstimator(cut: .fraction(0.99)).spectrum(of: x, solver: eigensolver == "all" ? .all : .selected).estimate(cut: .fraction(0.99))
    }

    func run() throws {
        selectOpenBLASCore()
        ssm_return_freed_memory()
        if let verify {
            let (d, m) = (parseDims(dims)![0], parseDims(samples)![0])
            let stream = RandomStream(seed: 1)
            let x = stream.normal(shape: [m, d]), y = stream.normal(shape: [queries, d])
            var cases: [[String: Any]] = []
            for name in estimators.split(separator: ",") {
                let fit = try estimate(name, x)
                var entry: [String: Any] = ["estimator": String(name), "dim": d, "samples": m, "x": x.scalars, "y": y.scalars,
                                            "bandwidth": fit.bandwidth, "in_sample": fit.sampleScores.scalars, "out_of_sample": try fit.scores(at: y).scalars]
                if let spectral = fit as? SpectralScoreEstimator.Estimate { entry["kept"] = spectral.eigenvalues.count }
                cases.append(entry)
            }
            let data = try JSONSerialization.data(withJSONObject: ["cases": cases], options: [.sortedKeys])
            try data.write(to: URL(fileURLWithPath: verify), options: .atomic)
            return
        }
        if dgemm {
            emit(json(["dgemm_gflops": GridExecution.measureDGEMM(repeats: 5), "cpu": cpuModel(), "blas_threads": openBLASThreadCount, "blas_kernels": openBLASCore]))
        }
        for name in estimators.split(separator: ",") {
            for d in parseDims(dims)! {
                for m in parseDims(samples)! { emit(json(try measure(name, dimension: d, samples: m))) }
            }
        }
    }

    func measure(_ name: Substring, dimension d: Int, samples m: Int) throws -> [String: Any] {
        let stream = RandomStream(seed: 0)
        let x = stream.normal(shape: [m, d]), y = stream.normal(shape: [queries, d])
        resetPeakResident()
        let start = residentMiB()
        var fit = try estimate(name, x)  // warm-up
        var fits: [Double] = [], queries: [Double] = []
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            fit = try estimate(name, x)
            fits.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            let t1 = DispatchTime.now().uptimeNanoseconds
            _ = try fit.scores(at: y)
            queries.append(Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9)
        }
        let (md, dd, n) = (Double(m), Double(d), Double(self.queries))
        let kept = (fit as? SpectralScoreEstimator.Estimate)?.eigenvalues.count
        let back = eigensolver == "all" ? md : Double(kept ?? 0)  // eigenvectors back-transformed
        let fitFlops = name == "stein" ? md * md * md / 3 + 5 * md * md * dd
                                       : 4.0 / 3 * md * md * md + 2 * md * md * back + 5 * md * md * dd + 4 * md * Double(kept ?? 0) * dd
        let queryFlops = name == "stein" ? 2 * md * md * n + 6 * n * md * dd : 4 * n * md * dd
        var out: [String: Any] = ["estimator": String(name), "dim": d, "samples": m, "queries": self.queries,
                                  "fit_seconds": median(fits), "query_seconds": median(queries), "fit_flops": fitFlops, "query_flops": queryFlops,
                                  "peak_mib": peakResidentMiB(), "start_mib": start, "repeats": repeats, "bandwidth": fit.bandwidth]
        if let kept { out["kept"] = kept }
        return out
    }
}

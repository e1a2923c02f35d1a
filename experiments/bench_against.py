"""Times this code's `bench` against another build's, cell by cell, alternating the two.

For every (method, D) it runs the baseline's bench and this code's bench on that one cell, one
after the other and `--repeats` times alternately, each with one OpenBLAS thread (never two runs at
once), and reports, for each build's median run, the ratio of
the medians of unit (a) (the authors' runner unit: training step + alpha on 1000 points + the
validation objective) and of unit (b) (figure 2's unit), with this run's GEMM GFLOP/s next to the
dgemm rate measured in the same process, and peak resident memory.

    python experiments/bench_against.py --baseline .build-baseline/build/release/bench \
        --current .build/release/bench --out results/bench-vs-2a11fc5.md

`make bench-baseline` builds the baseline (BASELINE=2a11fc5 by default) and runs this.
"""
import argparse, os, subprocess, sys, tempfile, time

import h5py


def run(binary, method, dim, iterations, folder, tag, extra=()):
    h5 = os.path.join(folder, f"{tag}-{method}-{dim}.h5")
    md = os.path.join(folder, f"{tag}-{method}-{dim}.md")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    started = time.time()
    subprocess.run([binary, "--methods", method, "--dims", str(dim), "--iterations", str(iterations),
                    "--budget", "1e9", "--out", md, "--h5", h5, *extra], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with h5py.File(h5) as f:
        cell = f[f"{method}_d{dim}"]
        values = {k: float(cell[k][()]) for k in ("unit_a_seconds", "unit_b_seconds", "gemm_gflop", "peak_resident_mib")}
        values["dgemm_gflops"] = float(f.attrs["dgemm_gflops"])
        values["cpu"] = f.attrs["cpu_model"]
        values["commit"] = f.attrs["git_commit"]
    values["wall"] = time.time() - started
    return values


def median_run(runs):
    """The run whose unit (a) time is the median (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda r: r["unit_a_seconds"])
    return ordered[(len(ordered) - 1) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the baseline build's bench executable")
    parser.add_argument("--current", default=".build/release/bench", help="this code's bench executable")
    parser.add_argument("--baseline-name", default="2a11fc5")
    parser.add_argument("--methods", default="sm,ssm,ssm_vr,dsm,cp,approx_bp")
    parser.add_argument("--dims", default="10,20,50,100")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs of each build per cell, alternating; the table has the median run")
    parser.add_argument("--out", default="results/bench-vs-2a11fc5.md")
    args = parser.parse_args()
    for binary in (args.baseline, args.current):
        if not os.access(binary, os.X_OK):
            sys.exit(f"bench_against: {binary} is not an executable (build it first; see make bench-baseline)")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for method in args.methods.split(","):
            for dim in [int(d) for d in args.dims.split(",")]:
                olds, news = [], []
                for _ in range(args.repeats):
                    olds.append(run(args.baseline, method, dim, args.iterations, folder, "baseline"))
                    # CP's per-point layout only: the baseline predates the per-pair one (and the flag).
                    news.append(run(args.current, method, dim, args.iterations, folder, "current",
                                    ("--cp-noise", "per_point") if method == "cp" else ()))
                old, new = median_run(olds), median_run(news)
                rows.append((method, dim, old, new))
                print(f"{method} D={dim}: (a) {old['unit_a_seconds']:.3f} -> {new['unit_a_seconds']:.3f} s "
                      f"({old['unit_a_seconds'] / new['unit_a_seconds']:.2f}x), (b) {old['unit_b_seconds']:.3f} -> "
                      f"{new['unit_b_seconds']:.3f} s ({old['unit_b_seconds'] / new['unit_b_seconds']:.2f}x)", file=sys.stderr)
    cpu, commit = rows[0][3]["cpu"], rows[0][3]["commit"]
    lines = [f"# bench: {commit} against {args.baseline_name}",
             "",
             f"{cpu}, one OpenBLAS thread per run; each cell ran the baseline's bench, then this code's, "
             f"{args.repeats} time(s) alternately, never two at once; each run gives medians of {args.iterations} "
             "iterations after one warm-up, and the table shows each build's median run by unit (a). "
             "(a): training step + alpha on 1000 points + validation objective; (b): figure 2's unit. "
             "GEMM GFLOP/s is this code's counted GEMM work over its (a) time; dgemm is OpenBLAS's rate "
             "measured in the same process. Command: `make bench-baseline`.",
             "",
             f"| method | D | (a) {args.baseline_name} s | (a) now s | (a) speed-up | (b) {args.baseline_name} s | (b) now s | (b) speed-up | GEMM GFLOP/s | dgemm GFLOP/s | peak MiB {args.baseline_name} → now |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, dim, old, new in rows:
        lines.append(f"| {method} | {dim} | {old['unit_a_seconds']:.3f} | {new['unit_a_seconds']:.3f} | "
                     f"{old['unit_a_seconds'] / new['unit_a_seconds']:.2f}× | {old['unit_b_seconds']:.3f} | "
                     f"{new['unit_b_seconds']:.3f} | {old['unit_b_seconds'] / new['unit_b_seconds']:.2f}× | "
                     f"{new['gemm_gflop'] / new['unit_a_seconds']:.1f} | {new['dgemm_gflops']:.1f} | "
                     f"{old['peak_resident_mib']:.0f} → {new['peak_resident_mib']:.0f} |")
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()

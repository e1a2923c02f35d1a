"""Compare two results files of one grid experiment (figure1 or table1) cell by cell.

    python experiments/compare_results.py OLD.h5 NEW.h5 [--out report.md]

For every cell in both files: the largest relative difference of the test metrics, the best
iteration (the iteration whose parameters were kept) in each, the largest relative difference of
the training and validation loss curves up to the first iteration where they differ by more than
1e-6, and the cell's wall seconds in each. Per method and dimension: the mean ± standard error
over seeds of the Fisher divergence in each file, so methods whose runs are not reproducible to
rounding (CP: its √M⁺ amplifies rounding, see docs/performance.md "CP and rounding") can be judged against the
seed spread. Totals: cell-hours of each file (sum of wall_seconds), per experiment and method.
Reads only the two files; writes markdown to stdout or --out.
"""
import argparse
import sys
from collections import defaultdict

import h5py
import numpy as np

METRICS = ["fisher_divergence", "exact_sm", "log_z", "test_log_likelihood", "true_test_log_likelihood"]


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def load(path):
    out = {}
    with h5py.File(path, "r") as f:
        for name, g in f["cells"].items():
            cell = {k: float(g[k][()]) for k in METRICS if k in g}
            for k in ("train_loss", "validation_loss"):
                cell[k] = np.array(g[k]) if k in g else np.array([])
            for k in ("best_iteration", "dimension", "seed"):
                cell[k] = int(g.attrs[k])
            for k in ("wall_seconds", "train_seconds", "finalize_seconds", "evaluate_seconds"):
                cell[k] = float(g.attrs.get(k, np.nan))
            cell["method"] = text(g.attrs["method"])
            cell["sigma"] = float(g.attrs["sigma"]) if "sigma" in g.attrs else None
            out[name] = cell
        attrs = {k: text(v) for k, v in f.attrs.items() if k in ("git_commit", "cpu_model", "experiment", "config_hash")}
    return out, attrs


def relative(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


def first_divergence(a, b, tolerance=1e-6):
    """The first iteration where two curves differ by more than `tolerance` relative, or None."""
    for i, (x, y) in enumerate(zip(a, b)):
        if relative(x, y) > tolerance:
            return i
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--out")
    args = parser.parse_args()
    old, old_attrs = load(args.old)
    new, new_attrs = load(args.new)
    lines = [f"# {new_attrs.get('experiment', '')}: {args.new} against {args.old}", ""]
    lines.append(f"- old: commit {old_attrs.get('git_commit', '?')}, {old_attrs.get('cpu_model', '?')}, config {old_attrs.get('config_hash', '?')}")
    lines.append(f"- new: commit {new_attrs.get('git_commit', '?')}, {new_attrs.get('cpu_model', '?')}, config {new_attrs.get('config_hash', '?')}")
    only_old, only_new = sorted(set(old) - set(new)), sorted(set(new) - set(old))
    lines.append(f"- cells: {len(old)} old, {len(new)} new, {len(set(old) & set(new))} in both"
                 + (f"; only old: {', '.join(only_old)}" if only_old else "") + (f"; only new: {', '.join(only_new)}" if only_new else ""))
    lines.append("")

    common = sorted(set(old) & set(new), key=lambda n: (new[n]["method"], new[n]["sigma"] or 0, new[n]["dimension"], new[n]["seed"]))
    lines.append("| cell | largest relative metric difference | best iteration old → new | curves differ from iteration | wall s old → new |")
    lines.append("|---|---|---|---|---|")
    within = 0
    for n in common:
        o, c = old[n], new[n]
        worst = max(relative(c[k], o[k]) for k in METRICS if k in o and k in c)
        within += worst <= 1e-6
        diverge = [first_divergence(c[k], o[k]) for k in ("train_loss", "validation_loss")]
        diverge = [d for d in diverge if d is not None]
        lines.append(f"| {n} | {worst:.1e} | {o['best_iteration'] + 1} → {c['best_iteration'] + 1} | "
                     f"{min(diverge) + 1 if diverge else '–'} | {o['wall_seconds']:.1f} → {c['wall_seconds']:.1f} |")
    lines.append("")
    lines.append(f"{within} of {len(common)} cells have every metric within 1e-6 relative.")
    lines.append("")

    def spread(cells, names):
        values = [cells[n]["fisher_divergence"] for n in names]
        se = np.std(values, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
        return np.mean(values), se

    groups = defaultdict(list)
    for n in common:
        c = new[n]
        groups[(c["method"], c["sigma"], c["dimension"])].append(n)
    lines.append("Test Fisher divergence, mean ± standard error over seeds:")
    lines.append("")
    lines.append("| method | D | old | new | difference in old standard errors |")
    lines.append("|---|---|---|---|---|")
    for (method, sigma, d), names in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, kv[0][2])):
        (mo, so), (mn, sn) = spread(old, names), spread(new, names)
        label = method + (f" σ={sigma:g}" if sigma is not None else "")
        z = (mn - mo) / so if so > 0 else float("nan")
        lines.append(f"| {label} | {d} | {mo:.4g} ± {so:.2g} | {mn:.4g} ± {sn:.2g} | {z:+.2f} |")
    lines.append("")

    lines.append("Cell-hours (sum of wall_seconds / 3600):")
    lines.append("")
    lines.append("| method | old | new | ratio |")
    lines.append("|---|---|---|---|")
    by_method = defaultdict(lambda: [0.0, 0.0])
    for n in common:
        by_method[new[n]["method"]][0] += old[n]["wall_seconds"]
        by_method[new[n]["method"]][1] += new[n]["wall_seconds"]
    for method, (o, c) in sorted(by_method.items()):
        lines.append(f"| {method} | {o / 3600:.3f} | {c / 3600:.3f} | {o / c:.2f}× |")
    total_old = sum(v[0] for v in by_method.values())
    total_new = sum(v[1] for v in by_method.values())
    lines.append(f"| all | {total_old / 3600:.3f} | {total_new / 3600:.3f} | {total_old / total_new:.2f}× |")
    for stage in ("train_seconds", "finalize_seconds", "evaluate_seconds"):
        values = [new[n][stage] for n in common]
        lines.append("")
        lines.append(f"New {stage.replace('_', ' ')}: max {max(values):.1f} s ({max(common, key=lambda n: new[n][stage])}), "
                     f"median {np.median(values):.1f} s.")
    report = "\n".join(lines) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(report)


if __name__ == "__main__":
    main()

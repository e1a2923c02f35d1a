"""Draw figure 1 and figure 2 from the HDF5 results files (never from anything else).

    python experiments/plot.py figure1 results/figure1.h5 results/figure1
    python experiments/plot.py figure2 results/figure2.h5 results/figure2

writes <prefix>.png and <prefix>.pdf. One colour per method across all figures; log axes where
the paper uses them; error bars are standard errors over seeds.
"""
import sys
from collections import defaultdict

import h5py
import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLOURS = {"sm": "#1f77b4", "ssm": "#d62728", "ssm_vr": "#ff7f0e", "dsm": "#2ca02c", "cp": "#9467bd", "approx_bp": "#8c564b"}
LABELS = {"sm": "SM (exact)", "ssm": "SSM", "ssm_vr": "SSM-VR", "dsm": "DSM", "cp": "CP", "approx_bp": "Approx BP"}
ORDER = ["sm", "ssm", "ssm_vr", "dsm", "cp", "approx_bp"]


def cells(path):
    """(series, method, D, values dict) per finished cell."""
    out = []
    with h5py.File(path, "r") as f:
        provenance = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items() if k not in ("config_text", "config_json")}
        for name, g in f["cells"].items():
            method = g.attrs["method"]
            method = method.decode() if isinstance(method, bytes) else method
            sigma = g.attrs.get("sigma")
            values = {k: float(d[()]) for k, d in g.items() if isinstance(d, h5py.Dataset) and d.shape == ()}
            series = method if sigma is None else f"{method} σ={float(sigma):g}"
            out.append((series, method, int(g.attrs["dimension"]), values, bool(g.attrs.get("over_budget", 0))))
    return out, provenance


def grouped(records, metric):
    by = defaultdict(lambda: defaultdict(list))
    methods = {}
    for series, method, d, values, _ in records:
        if metric in values:
            by[series][d].append(values[metric])
            methods[series] = method
    return by, methods


def series_order(methods):
    return sorted(methods, key=lambda s: (ORDER.index(methods[s]) if methods[s] in ORDER else 99, s))


def plot_metric(ax, records, metric, log_y):
    by, methods = grouped(records, metric)
    for series in series_order(methods):
        ds = sorted(by[series])
        mean = np.array([np.mean(by[series][d]) for d in ds])
        se = np.array([np.std(by[series][d], ddof=1) / np.sqrt(len(by[series][d])) if len(by[series][d]) > 1 else 0.0 for d in ds])
        label = LABELS.get(methods[series], methods[series]) + series[len(methods[series]):]
        ax.errorbar(ds, mean, yerr=se, marker="o", capsize=3, color=COLOURS.get(methods[series]), label=label)
    ax.set_xscale("log")
    dims = sorted({d for series in by for d in by[series]})
    ax.set_xticks(dims)
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel("data dimension D")
    ax.grid(True, which="both", alpha=0.3)


def figure1(path, prefix):
    records, provenance = cells(path)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    plot_metric(axes[0], records, "fisher_divergence", log_y=True)
    axes[0].set_ylabel("test Fisher divergence ½E‖s − s_d‖²  (1/x²)")
    axes[0].set_title("SM loss vs dimension (DKEF, N(0, I))")
    plot_metric(axes[1], records, "exact_sm", log_y=False)
    # Approx BP's objective runs to +10⁷ while the others sit near −D/2: a symmetric log axis
    # (linear within ±10) keeps both readable.
    axes[1].set_yscale("symlog", linthresh=10)
    lowest = min((v["exact_sm"] for _, _, _, v, _ in records if "exact_sm" in v), default=-10)
    if lowest < 0:
        axes[1].set_ylim(bottom=-(10 ** np.ceil(np.log10(-lowest + 1))))
    axes[1].set_ylabel("exact SM objective on test data  (1/x², symlog)")
    axes[1].set_title("Exact score-matching objective")
    axes[0].legend(fontsize=8)
    fig.text(0.01, 0.01, f"{provenance.get('cpu_model', '')}; commit {str(provenance.get('git_commit', ''))[:12]}", fontsize=7, alpha=0.6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    for ext in ("png", "pdf"):
        fig.savefig(f"{prefix}.{ext}", dpi=130)


def figure2(path, prefix):
    records, provenance = cells(path)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    plot_metric(axes[0], records, "median_total_seconds", log_y=True)
    axes[0].set_ylabel("seconds per training iteration (median)")
    axes[0].set_title("Training time per iteration vs dimension")
    low, high = axes[0].get_ylim()
    axes[0].set_ylim(low, high * 6)  # room above the curves for the legend
    axes[0].legend(fontsize=8, ncol=3, loc="upper left")
    # Phase breakdown at the largest D every method reached.
    by, methods = grouped(records, "median_total_seconds")
    order = series_order(methods)
    phases = ["alpha", "objective", "backward", "optimizer"]
    bottoms = np.zeros(len(order))
    for phase, shade in zip(phases, [1.0, 0.75, 0.5, 0.25]):
        heights = []
        for series in order:
            d = max(by[series])
            values = [v for s, _, dd, v, _ in records if s == series and dd == d]
            heights.append(np.median([v.get(f"median_{phase}_seconds", 0.0) for v in values]))
        axes[1].bar(range(len(order)), heights, bottom=bottoms, color=[COLOURS.get(methods[s]) for s in order], alpha=shade,
                    edgecolor="black", label=phase)
        bottoms += np.array(heights)
    axes[1].set_xticks(range(len(order)))
    axes[1].set_xticklabels([f"{LABELS.get(methods[s], s)}\nD={max(by[s])}" for s in order], fontsize=8)
    axes[1].set_ylabel("seconds per iteration (stacked phases)")
    axes[1].set_title("Phase breakdown at each method's largest D")
    axes[1].legend(fontsize=8)
    fig.text(0.01, 0.01, f"{provenance.get('cpu_model', '')}, {provenance.get('cores', '')} cores; commit {str(provenance.get('git_commit', ''))[:12]}",
             fontsize=7, alpha=0.6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    for ext in ("png", "pdf"):
        fig.savefig(f"{prefix}.{ext}", dpi=130)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("figure1", "figure2"):
        sys.exit(__doc__)
    {"figure1": figure1, "figure2": figure2}[sys.argv[1]](sys.argv[2], sys.argv[3])
    print(f"wrote {sys.argv[3]}.png and {sys.argv[3]}.pdf")

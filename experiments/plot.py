"""Draw figures 1 to 6 from the HDF5 results files (never from anything else).

    python experiments/plot.py figure1 results/figure1.h5 results/figure1
    python experiments/plot.py figure2 results/figure2.h5 results/figure2
    python experiments/plot.py figure3 results/figure3.h5 results/figure3
    python experiments/plot.py figure4 results/figure4.h5 results/figure4
    python experiments/plot.py figure5 results/figure5.h5 results/figure5
    python experiments/plot.py figure6 results/figure6.h5 results/figure6

writes <prefix>.png and <prefix>.pdf (figure5: <prefix>.png for the energy networks,
<prefix>-scores.png for the score networks and annealing, and both as the two pages of
<prefix>.pdf). One colour per method across all figures; log axes where
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

# CP's per-pair cells (attribute cp_noise = per_pair) are their own series, "cp_per_pair", in
# CP's colour family with a dashed line.
# FSM (issue 12) is not in the paper; its label says so wherever it appears.
COLOURS = {"sm": "#1f77b4", "ssm": "#d62728", "ssm_vr": "#ff7f0e", "dsm": "#2ca02c", "cp": "#9467bd",
           "cp_per_pair": "#b39ddb", "approx_bp": "#8c564b", "fsm": "#17becf", "deen": "#e377c2"}
LABELS = {"sm": "SM (exact)", "ssm": "SSM", "ssm_vr": "SSM-VR", "dsm": "DSM", "cp": "CP",
          "cp_per_pair": "CP (per-pair noise, as the authors)", "approx_bp": "Approx BP",
          "fsm": "FSM (not in the paper)", "deen": "DEEN"}
LINESTYLES = {"cp_per_pair": "--"}
ORDER = ["sm", "ssm", "ssm_vr", "dsm", "cp", "cp_per_pair", "approx_bp", "fsm", "deen"]
TARGET_TITLES = {"standard_normal": "N(0, I) (the paper's)", "correlated_normal": "correlated N(0, Σ), κ = {condition_number:g}",
                 "gaussian_mixture": "mixture of {components} N(μₖ, {scale:g}²I), ‖μₖ‖ = {separation:g}",
                 "student_t": "Student t, ν = {degrees_of_freedom:g}"}
TARGET_DEFAULTS = {"condition_number": 100, "components": 4, "separation": 3, "scale": 1, "degrees_of_freedom": 5}


def save(fig, prefix):
    """<prefix>.png and <prefix>.pdf, byte for byte the same whenever they are drawn from the same
    file: no creation date in the PDF (matplotlib's PNG carries only its version)."""
    fig.savefig(f"{prefix}.png", dpi=130)
    fig.savefig(f"{prefix}.pdf", dpi=130, metadata={"CreationDate": None})


def unbiased(value):
    """An unbiased estimate of a squared distance (KSD², MMD²) as text: it can fall below 0 when
    the true value is about 0, and is then shown as what it is, "≈ 0 (−0.001)"."""
    if value >= 0:
        return f"{value:.3f}"
    shown = f"{value:.3f}" if value <= -0.0005 else f"{value:.0e}"
    return f"≈ 0 ({shown.replace('-', '−')})"


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def cells(path):
    """(series, method, D, values dict) per finished cell."""
    out = []
    with h5py.File(path, "r") as f:
        provenance = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items() if k not in ("config_text", "config_json")}
        for name, g in f["cells"].items():
            method = text(g.attrs["method"])
            if method == "cp" and text(g.attrs.get("cp_noise", "per_point")) == "per_pair":
                method = "cp_per_pair"
            sigma = g.attrs.get("sigma")
            values = {k: float(d[()]) for k, d in g.items() if isinstance(d, h5py.Dataset) and d.shape == ()}
            values["target"] = text(g.attrs.get("target", "standard_normal"))
            series = method if sigma is None else f"{method} σ={float(sigma):g}"
            out.append((series, method, int(g.attrs["dimension"]), values, bool(g.attrs.get("over_budget", 0))))
    return out, provenance


def origins(path):
    """'fc9acbab5bf5 Cooperlake: 72, 2efbfb6da0d3 SkylakeX: 12': the code and BLAS kernels of each
    cell (a grid may be finished by later runs, on other machines)."""
    counts = defaultdict(int)
    with h5py.File(path, "r") as f:
        for g in f["cells"].values():
            kernels = text(g.attrs.get("openblas", "")).split()
            core = next((k for k in kernels if k[:1].isupper() and k not in ("OpenBLAS", "NO_LAPACKE", "DYNAMIC_ARCH", "NO_AFFINITY")
                         and not k.startswith("MAX_THREADS")), "?")
            counts[(text(g.attrs.get("git_commit", "?"))[:12], core)] += 1
    return ", ".join(f"{commit} {core}: {n}" for (commit, core), n in sorted(counts.items(), key=lambda kv: -kv[1]))


def grouped(records, metric):
    by = defaultdict(lambda: defaultdict(list))
    methods = {}
    for series, method, d, values, _ in records:
        if metric in values and not isinstance(values[metric], str):
            by[series][d].append(values[metric])
            methods[series] = method
    return by, methods


def series_order(methods):
    return sorted(methods, key=lambda s: (ORDER.index(methods[s]) if methods[s] in ORDER else 99, s))


def series_means(records, metric):
    """{series: (dims, means, standard errors, method)} for one metric."""
    by, methods = grouped(records, metric)
    out = {}
    for series in series_order(methods):
        ds = sorted(by[series])
        mean = np.array([np.mean(by[series][d]) for d in ds])
        se = np.array([np.std(by[series][d], ddof=1) / np.sqrt(len(by[series][d])) if len(by[series][d]) > 1 else 0.0 for d in ds])
        out[series] = (ds, mean, se, methods[series])
    return out


def off_scale(means):
    """The series far above all others (Approx BP's 10⁶-10⁷ next to values below 10² or
    negative): a series is off scale when its smallest mean is above the others' largest by more
    than 100 times the others' range. Returns (off-scale series, the rest)."""
    names = list(means)
    off = []
    while len(names) > 1:
        top = max(names, key=lambda n: means[n][1].min())
        rest = [n for n in names if n != top]
        lo = min(means[n][1].min() for n in rest)
        hi = max(means[n][1].max() for n in rest)
        if means[top][1].min() > hi + 100 * max(hi - lo, abs(hi), 1e-12):
            off.append(top)
            names = rest
        else:
            break
    return off, names


def draw_series(ax, means, names):
    for series in names:
        ds, mean, se, method = means[series]
        label = LABELS.get(method, method) + series[len(method):]
        ax.errorbar(ds, mean, yerr=se, marker="o", capsize=3, color=COLOURS.get(method), label=label,
                    linestyle=LINESTYLES.get(method, "-"))


def dimension_axis(ax, dims, label=True):
    ax.set_xscale("log")
    ax.set_xlim(dims[0] / 1.15, dims[-1] * 1.15)
    ax.set_xticks(dims)
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    if label:
        ax.set_xlabel("data dimension D")
    ax.grid(True, which="both", alpha=0.3)


def plot_metric(ax, records, metric, log_y):
    means = series_means(records, metric)
    draw_series(ax, means, list(means))
    dimension_axis(ax, sorted({d for ds, _, _, _ in means.values() for d in ds}))
    if log_y:
        ax.set_yscale("log")


def broken_axis_panel(top, bottom, records, metric, log_y):
    """One metric on a broken y axis: series far off the others' scale (`off_scale`) in the small
    top axis (log scale), the rest readable in the bottom one; diagonal marks show the break."""
    means = series_means(records, metric)
    off, rest = off_scale(means)
    dims = sorted({d for ds, _, _, _ in means.values() for d in ds})
    draw_series(bottom, means, rest)
    dimension_axis(bottom, dims)
    if log_y:
        bottom.set_yscale("log")
    if not off:
        top.set_visible(False)
        return
    draw_series(top, means, off)
    dimension_axis(top, dims, label=False)
    top.set_yscale("log")
    top.tick_params(labelbottom=False)
    top.spines["bottom"].set_visible(False)
    bottom.spines["top"].set_visible(False)
    top.text(0.01, 0.9, "off the lower scale", transform=top.transAxes, fontsize=7, va="top", alpha=0.7)
    # The break: short diagonals on both axes' facing edges.
    marks = dict(marker=[(-1, -0.5), (1, 0.5)], markersize=8, linestyle="none", color="k", mec="k", mew=1, clip_on=False)
    top.plot([0, 1], [0, 0], transform=top.transAxes, scalex=False, scaley=False, **marks)
    bottom.plot([0, 1], [1, 1], transform=bottom.transAxes, scalex=False, scaley=False, **marks)


def figure1(path, prefix):
    records, provenance = cells(path)
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.0), sharex="col", gridspec_kw={"height_ratios": [1, 3], "hspace": 0.08})
    broken_axis_panel(axes[0][0], axes[1][0], records, "fisher_divergence", log_y=True)
    axes[1][0].set_ylabel("test Fisher divergence ½E‖s − s_d‖²  (1/x²)")
    axes[0][0].set_title("SM loss vs dimension (DKEF, N(0, I))")
    broken_axis_panel(axes[0][1], axes[1][1], records, "exact_sm", log_y=False)
    axes[1][1].set_ylabel("exact SM objective on test data  (1/x²)")
    axes[0][1].set_title("Exact score-matching objective")
    handles, labels = [], []
    for ax in (axes[0][0], axes[1][0]):
        h, l = ax.get_legend_handles_labels()
        handles += h
        labels += l
    order = sorted(range(len(labels)), key=lambda k: next((i for i, m in enumerate(ORDER) if labels[k].startswith(LABELS[m])), 99))
    # Below the panels: inside, it hid the curves between D = 20 and 50.
    fig.legend([handles[k] for k in order], [labels[k] for k in order], fontsize=8, ncol=4, loc="lower center",
               bbox_to_anchor=(0.5, 0.035), frameon=False)
    fig.text(0.01, 0.01, "cells by commit and OpenBLAS kernels: " + origins(path), fontsize=7, alpha=0.6)
    fig.subplots_adjust(left=0.08, right=0.98, top=0.93, bottom=0.24, wspace=0.25)
    save(fig, prefix)


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
    # Long labels (FSM's "not in the paper") would run into their neighbours: slanted.
    axes[1].set_xticklabels([f"{LABELS.get(methods[s], s)}\nD={max(by[s])}" for s in order], fontsize=7, rotation=25, ha="right")
    axes[1].set_ylabel("seconds per iteration (stacked phases)")
    axes[1].set_title("Phase breakdown at each method's largest D")
    axes[1].legend(fontsize=8)
    fig.text(0.01, 0.01, f"{provenance.get('cpu_model', '')}, {provenance.get('cores', '')} cores; commit {str(provenance.get('git_commit', ''))[:12]}",
             fontsize=7, alpha=0.6)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    save(fig, prefix)


def figure3(path, prefix):
    """One panel per target: test Fisher divergence per method (log axis, standard errors over
    seeds), methods side by side within each D."""
    import json
    records, provenance = cells(path)
    with h5py.File(path, "r") as f:
        stored = json.loads(text(f.attrs.get("config_json", "{}")) or "{}").get("targetParameters") or {}
    # The config's target: block (absent when every parameter is at its default).
    keys = {"condition_number": "conditionNumber", "components": "components", "separation": "separation",
            "scale": "scale", "degrees_of_freedom": "degreesOfFreedom"}
    parameters = {k: stored.get(json_key, TARGET_DEFAULTS[k]) for k, json_key in keys.items()}
    targets = [t for t in TARGET_TITLES if any(v["target"] == t for _, _, _, v, _ in records)]
    fig, axes = plt.subplots(1, len(targets), figsize=(3.6 * len(targets) + 0.6, 4.2), squeeze=False)
    legend = {}
    for ax, target in zip(axes[0], targets):
        rows = [r for r in records if r[3]["target"] == target]
        means = series_means(rows, "fisher_divergence")
        dims = sorted({d for ds, _, _, _ in means.values() for d in ds})
        width = 0.8 / max(len(means), 1)
        for k, (series, (ds, mean, se, method)) in enumerate(means.items()):
            xs = [dims.index(d) - 0.4 + width * (k + 0.5) for d in ds]
            handle = ax.errorbar(xs, mean, yerr=se, marker="o", linestyle="none", capsize=3, color=COLOURS.get(method),
                                 mfc="white" if LINESTYLES.get(method) else COLOURS.get(method))
            legend.setdefault(LABELS.get(method, method) + series[len(method):], handle)
        ax.set_yscale("log")
        ax.set_xticks(range(len(dims)))
        ax.set_xticklabels([f"D = {d}" for d in dims])
        ax.set_xlim(-0.5, len(dims) - 0.5)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.set_title(TARGET_TITLES[target].format(**parameters), fontsize=9)
    axes[0][0].set_ylabel("test Fisher divergence ½E‖s − s_d‖²  (1/x²)")
    fig.legend(list(legend.values()), list(legend.keys()), loc="lower center", bbox_to_anchor=(0.5, 0.05), ncol=len(legend),
               fontsize=8, frameon=False)
    fig.text(0.01, 0.01, "cells by commit and OpenBLAS kernels: " + origins(path), fontsize=7, alpha=0.6)
    fig.suptitle("Score-matching methods across targets (DKEF, the authors' protocol; error bars: SE over seeds)", fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.99, top=0.85, bottom=0.22, wspace=0.3)
    save(fig, prefix)


def figure4(path, prefix, seed=0, shown=300):
    """The D = 2 cells of one seed: first the target (log density filled, exact draws), then one
    panel per method: the model's normalised log density (log p̃ − log Ẑ) filled, the target's
    contours as lines, and `shown` of its MALA samples as dots. Colour scale shared: log p from
    the target's maximum down 12 nats. Each title: the method, then its MALA samples' KSD² and
    MMD² (unbiased, so ≈ 0 for exact samples and possibly below 0) and acceptance rate."""
    with h5py.File(path, "r") as f:
        cells2 = {name: g for name, g in f["cells"].items() if int(g.attrs["dimension"]) == 2 and int(g.attrs["seed"]) == seed}
        if not cells2:
            sys.exit(f"{path}: no cell at D = 2 with seed {seed}")

        def series(g):
            method = text(g.attrs["method"])
            if method == "cp" and text(g.attrs.get("cp_noise", "per_point")) == "per_pair":
                return "cp_per_pair"
            return method

        def key(item):
            method = series(item[1])
            return (ORDER.index(method) if method in ORDER else 99, float(item[1].attrs.get("sigma", 0)))

        ordered = sorted(cells2.items(), key=key)
        first = ordered[0][1]
        axis = first["grid_axis"][()]
        target = first["target_log_density_grid"][()]
        top = target.max()
        levels = np.linspace(top - 12, top, 25)
        columns = 4
        rows = int(np.ceil((len(ordered) + 1) / columns))
        fig, axes = plt.subplots(rows, columns, figsize=(2.6 * columns + 0.9, 2.95 * rows + 0.75), squeeze=False,
                                 layout="constrained")
        floor = None
        if "exact_ksd" in first and "exact_mmd" in first:
            floor = f"exact draws: KSD² {unbiased(first['exact_ksd'][()])}, MMD² {unbiased(first['exact_mmd'][()])}\n(each metric's floor)"
        panels = [("target: log p", floor, target, first["target_samples"][()])]
        short = {"cp_per_pair": "CP (per pair)", "fsm": "FSM (not in paper)"}
        for name, g in ordered:
            method = series(g)
            label = short.get(method, LABELS.get(method, method))
            if "sigma" in g.attrs:
                label += f", σ = {float(g.attrs['sigma']):g}"
            metrics = (f"KSD² {unbiased(g['mala_ksd'][()])}, MMD² {unbiased(g['mala_mmd'][()])}\n"
                       f"acceptance {g['mala_acceptance'][()]:.2f}")
            panels.append((label, metrics, g["model_log_density_grid"][()] - g["log_z"][()], g["mala_samples"][()]))
        cmap = matplotlib.colormaps["Blues"].copy()
        cmap.set_over("#fdae6b")  # above the target's maximum (a model's sharper peak): its own colour
        for k, ax in enumerate(axes.flat):
            if k >= len(panels):
                ax.set_visible(False)
                continue
            title, metrics, grid, samples = panels[k]
            filled = ax.contourf(axis, axis, np.clip(grid, levels[0], None), levels=levels, cmap=cmap, extend="max")
            if k > 0:
                ax.contour(axis, axis, target, levels=levels[::4], colors="k", linewidths=0.5, alpha=0.6)
            ax.scatter(samples[:shown, 0], samples[:shown, 1], s=3, c="#d62728", alpha=0.7, linewidths=0)
            ax.set_title(title, fontsize=9, fontweight="bold", pad=3 if metrics is None else 24)
            if metrics is not None:
                ax.text(0.5, 1.02, metrics, transform=ax.transAxes, ha="center", va="bottom", fontsize=7.5, linespacing=1.15)
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
        colourbar = fig.colorbar(filled, ax=axes[:, -1].tolist(), shrink=0.85, aspect=30, pad=0.02)
        colourbar.set_ticks(np.arange(np.ceil(levels[0]), top, 2))
        colourbar.set_label("log density (nats)", fontsize=8)
        colourbar.ax.tick_params(labelsize=7)
        fig.suptitle(f"Samples from DKEFs trained by each method on a 2-D Gaussian mixture (seed {seed})\n"
                     f"red: {shown} MALA samples; lines: the target's log density; orange: log p above the target's maximum; "
                     "KSD², MMD²: unbiased (≈ 0 for exact samples)", fontsize=9)
        fig.text(0.005, 0.002, "cells by commit and OpenBLAS kernels: " + origins(path), fontsize=6.5, alpha=0.6)
    save(fig, prefix)


FIGURE5_DATASETS = ["8gaussians", "rings", "2spirals", "checkerboard", "ncsn_mixture"]
FIGURE5_TITLES = {"8gaussians": "8 Gaussians", "rings": "rings", "2spirals": "2 spirals", "checkerboard": "checkerboard",
                  "ncsn_mixture": "NCSN's mixture"}


def figure5(path, prefix, seed=0, shown=400):
    """Seed `seed` of every dataset × method, as toy_gradlogp draws them. Page 1 (energy networks):
    the data, then per method the learned log density −E on the picture's square (from its
    maximum down 10 nats) with `shown` of its Langevin samples. Page 2 (score networks): the data, then per
    method the learned score field (arrows, length ∝ √‖s‖ so the whole field reads) with its
    Langevin samples; and NCSN's annealing panel: plain and annealed Langevin with the exact score
    and with the noise-conditional network, each with its fraction of samples per mode. Every
    panel states its Fisher divergence F (where the dataset has a reference score) and the
    samples' MMD² against fresh data; a cell not computed yet, or whose training diverged, is marked
    so."""
    from matplotlib.backends.backend_pdf import PdfPages
    with h5py.File(path, "r") as f:
        by = {}
        for g in f["cells"].values():
            if int(g.attrs["seed"]) == seed:
                by[(text(g.attrs["dataset"]), text(g.attrs["model"]), text(g.attrs["method"]))] = g
        datasets = [d for d in FIGURE5_DATASETS if any(k[0] == d for k in by)]
        if not datasets:
            sys.exit(f"{path}: no cell with seed {seed}")
        origin = "cells by commit and OpenBLAS kernels: " + origins(path)

        def metrics(g):
            parts = []
            if "fisher_divergence" in g:
                parts.append(f"F {g['fisher_divergence'][()]:.3g}")
            if "langevin_mmd" in g:
                parts.append(f"MMD² {unbiased(g['langevin_mmd'][()])}")
            return ", ".join(parts)

        def data_panel(ax, dataset):
            g = next((by[k] for k in by if k[0] == dataset and "data_samples" in by[k]), None)
            if g is not None:
                x = g["data_samples"][()][:shown * 2]
                ax.scatter(x[:, 0], x[:, 1], s=2, c="k", alpha=0.6, linewidths=0)
                width = float(g["score_grid_axis"][()][-1])
                ax.set_xlim(-width, width)
                ax.set_ylim(-width, width)

        def frame(ax, row, col, dataset, title):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_aspect("equal")
            if row == 0:
                ax.set_title(title, fontsize=9, fontweight="bold")
            if col == 0:
                ax.set_ylabel(FIGURE5_TITLES[dataset], fontsize=9, fontweight="bold")

        def missing(ax):
            ax.text(0.5, 0.5, "not computed yet", ha="center", va="center", fontsize=7, color="0.5", transform=ax.transAxes)

        pages = []
        for kind, methods in (("energy", ["sm", "ssm", "ssm_vr", "dsm", "fsm", "deen"]), ("score", ["sm", "ssm", "ssm_vr", "dsm", "fsm"])):
            anneal = by.get(("ncsn_mixture", "noise_conditional", "dsm")) if kind == "score" else None
            rows = len(datasets) + (1 if anneal is not None else 0)
            columns = 1 + len(methods)
            fig, axes = plt.subplots(rows, columns, figsize=(1.75 * columns + 0.3, 1.9 * rows + 0.9), squeeze=False, layout="constrained")
            for row, dataset in enumerate(datasets):
                data_panel(axes[row, 0], dataset)
                frame(axes[row, 0], row, 0, dataset, "data")
                for col, method in enumerate(methods, start=1):
                    ax = axes[row, col]
                    frame(ax, row, col, dataset, LABELS[method].replace(" (not in the paper)", ""))
                    g = by.get((dataset, kind, method))
                    if g is None:
                        missing(ax)
                        continue
                    if "diverged_at_step" in g:
                        ax.text(0.5, 0.5, f"diverged at\ntraining step {int(g['diverged_at_step'][()])}", ha="center", va="center",
                                fontsize=7, color="#d62728", transform=ax.transAxes)
                        continue
                    samples = g["langevin_samples"][()][:shown]
                    if kind == "energy":
                        axis = g["energy_grid_axis"][()]
                        energy = g["energy_grid"][()]
                        log_density = np.clip(-(energy - energy.min()), -10, 0)
                        ax.imshow(log_density, extent=(axis[0], axis[-1], axis[0], axis[-1]), origin="lower", cmap="Blues",
                                  vmin=-10, vmax=0, interpolation="bilinear")
                    else:
                        axis = g["score_grid_axis"][()]
                        field = g["score_field"][()].reshape(len(axis), len(axis), 2)
                        norm = np.linalg.norm(field, axis=2, keepdims=True)
                        arrows = field / np.maximum(norm, 1e-12) * np.sqrt(norm / norm.max())
                        xx, yy = np.meshgrid(axis, axis)
                        ax.quiver(xx, yy, arrows[..., 0], arrows[..., 1], color="#1f77b4", width=0.006, scale=22, alpha=0.8)
                    ax.scatter(samples[:, 0], samples[:, 1], s=1.5, c="#d62728", alpha=0.6, linewidths=0)
                    ax.set_xlim(axis[0], axis[-1])
                    ax.set_ylim(axis[0], axis[-1])
                    ax.text(0.5, -0.02, metrics(g), transform=ax.transAxes, ha="center", va="top", fontsize=6.5)
            if anneal is not None:
                row = rows - 1
                weights = anneal["mixture_weights"][()]
                panels = [("exact_langevin", "exact score:\nLangevin"), ("exact_annealed", "exact score:\nannealed"),
                          ("network_langevin", "s(x, σ) network:\nLangevin"), ("network_annealed", "s(x, σ) network:\nannealed")]
                data_panel(axes[row, 0], "ncsn_mixture")
                axes[row, 0].set_xlim(-8, 8)
                axes[row, 0].set_ylim(-8, 8)
                frame(axes[row, 0], row, 0, "ncsn_mixture", "")
                axes[row, 0].set_ylabel("annealing\n(NCSN)", fontsize=9, fontweight="bold")
                axes[row, 0].set_title(f"data: weights {weights[0]:.1f} / {weights[1]:.1f}", fontsize=7.5)
                for col, (name, title) in enumerate(panels, start=1):
                    ax = axes[row, col]
                    frame(ax, 1, col, "ncsn_mixture", "")
                    samples = anneal[f"{name}_samples"][()][:shown]
                    fractions = anneal[f"{name}_mode_fractions"][()]
                    ax.scatter(samples[:, 0], samples[:, 1], s=1.5, c="#d62728", alpha=0.6, linewidths=0)
                    ax.set_xlim(-8, 8)
                    ax.set_ylim(-8, 8)
                    ax.set_title(title, fontsize=7.5)
                    ax.text(0.5, -0.02, f"modes {fractions[0]:.2f} / {fractions[1]:.2f}", transform=ax.transAxes, ha="center",
                            va="top", fontsize=6.5)
                for col in range(1 + len(panels), columns):
                    axes[row, col].set_visible(False)
            what = ("energy networks (2 → 300 → 300 → 1, softplus): learned log density −E (blue, its maximum down 10 nats)"
                    if kind == "energy" else
                    "score networks (2 → 128 → 128 → 2, softplus): learned score field (arrows, length ∝ √‖s‖)")
            fig.suptitle(f"Figure 5, {'page 1' if kind == 'energy' else 'page 2'}: {what}\nred: {shown} Langevin samples "
                         f"(100 steps of ε = 0.01 from uniform on the square); F: Fisher divergence from the exact score; "
                         f"MMD²: unbiased, against fresh data; seed {seed}", fontsize=8.5)
            fig.text(0.005, 0.002, origin, fontsize=6, alpha=0.6)
            pages.append(fig)
    pages[0].savefig(f"{prefix}.png", dpi=130)
    pages[1].savefig(f"{prefix}-scores.png", dpi=130)
    with PdfPages(f"{prefix}.pdf", metadata={"CreationDate": None}) as pdf:
        for fig in pages:
            pdf.savefig(fig, dpi=130)


# Figure 6's kernel estimators: Stein grey, SSGE olive; the authors' settings dashed, tuned solid.
KERNEL_COLOURS = {"stein": "#7f7f7f", "ssge": "#bcbd22"}
KERNEL_LABELS = {"stein": "Stein", "ssge": "SSGE"}


def estimation_cells(path):
    """figure 6: (series, colour, linestyle, label, target, D, M, values) per cell with metrics."""
    out = []
    with h5py.File(path, "r") as f:
        for g in f["cells"].values():
            if "relative_error" not in g:
                continue
            method, variant = text(g.attrs["method"]), g.attrs.get("kernel_variant")
            values = {k: float(d[()]) for k, d in g.items() if isinstance(d, h5py.Dataset) and d.shape == ()}
            values["peak_resident_mib"] = float(g.attrs.get("peak_resident_mib", np.nan))
            if variant is not None:
                variant = text(variant)
                series = f"{method}_{variant}"
                style = (KERNEL_COLOURS.get(method), "--" if variant == "authors" else "-",
                         KERNEL_LABELS.get(method, method) + (" (the authors' settings)" if variant == "authors" else " (tuned on held-out)"))
                rank = (0, list(KERNEL_COLOURS).index(method) if method in KERNEL_COLOURS else 9, variant != "authors")
            else:
                series = method
                style = (COLOURS.get(method), "-", LABELS.get(method, method) + " network")
                rank = (1, ORDER.index(method) if method in ORDER else 99, 0)
            out.append((series, style, rank, text(g.attrs.get("target", "standard_normal")), int(g.attrs["dimension"]),
                        int(g.attrs["sample_count"]), values))
    return out


def estimation_lines(ax, rows, key, metric, legend):
    """One line per series: `metric`'s mean over the rows with the same `key` value, SE bars."""
    by = defaultdict(lambda: defaultdict(list))
    styles, ranks = {}, {}
    for series, style, rank, target, d, m, values in rows:
        if metric in values and np.isfinite(values[metric]):
            by[series][key(d, m)].append(values[metric])
            styles[series], ranks[series] = style, rank
    for series in sorted(by, key=lambda s: ranks[s]):
        xs = sorted(by[series])
        mean = np.array([np.mean(by[series][x]) for x in xs])
        se = np.array([np.std(by[series][x], ddof=1) / np.sqrt(len(by[series][x])) if len(by[series][x]) > 1 else 0.0 for x in xs])
        colour, linestyle, label = styles[series]
        handle = ax.errorbar(xs, mean, yerr=se, marker="o", markersize=3.5, capsize=2, color=colour, linestyle=linestyle, label=label)
        legend.setdefault(label, handle)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)


def log_ticks(ax, values):
    ax.set_xticks(values)
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())


def figure6(path, prefix):
    """Row 1: out-of-sample relative error vs D per target at the main M; row 2: the same vs M at
    the sweep's D; row 3: fit seconds, fit + selection seconds and seconds per 1000 queries vs D
    (means over targets and seeds), and peak memory vs M. Error bars: SE over seeds."""
    import json
    rows = estimation_cells(path)
    with h5py.File(path, "r") as f:
        config = json.loads(text(f.attrs.get("config_json", "{}")) or "{}")
    targets = [t for t in TARGET_TITLES if any(r[3] == t for r in rows)]
    sample_counts = sorted({r[5] for r in rows})
    dims = sorted({r[4] for r in rows})
    # The main M: the one at the most dimensions; the sweep's D: the one with the most M.
    main_m = max(sample_counts, key=lambda m: (len({r[4] for r in rows if r[5] == m}), m))
    sweep_d = max(dims, key=lambda d: (len({r[5] for r in rows if r[4] == d}), d))
    stored = config.get("targetParameters") or {}
    keys = {"condition_number": "conditionNumber", "components": "components", "separation": "separation",
            "scale": "scale", "degrees_of_freedom": "degreesOfFreedom"}
    parameters = {k: stored.get(json_key, TARGET_DEFAULTS[k]) for k, json_key in keys.items()}
    columns = max(len(targets), 4)
    fig, axes = plt.subplots(3, columns, figsize=(3.4 * columns + 0.6, 10.5), squeeze=False)
    legend = {}
    for k, target in enumerate(targets):
        ax = axes[0][k]
        estimation_lines(ax, [r for r in rows if r[3] == target and r[5] == main_m], lambda d, m: d, "relative_error", legend)
        log_ticks(ax, sorted({r[4] for r in rows if r[5] == main_m}))
        ax.set_xlabel("data dimension D")
        ax.set_title(TARGET_TITLES[target].format(**parameters) + f", M = {main_m}", fontsize=9)
        ax = axes[1][k]
        estimation_lines(ax, [r for r in rows if r[3] == target and r[4] == sweep_d], lambda d, m: m, "relative_error", legend)
        log_ticks(ax, sorted({r[5] for r in rows if r[4] == sweep_d}))
        ax.set_xlabel("samples M")
        ax.set_title(TARGET_TITLES[target].format(**parameters) + f", D = {sweep_d}", fontsize=9)
    for k in range(len(targets), columns):
        axes[0][k].axis("off")
        axes[1][k].axis("off")
    axes[0][0].set_ylabel("relative error E‖ŝ − s‖² / E‖s‖²\n(fresh points)")
    axes[1][0].set_ylabel("relative error (fresh points)")
    at_main = [r for r in rows if r[5] == main_m]
    timing = [("fit_seconds", "fit s (the chosen settings)"), ("fit_and_selection", "fit + selection s"),
              ("query_seconds_per_1000", "s per 1000 queries")]
    # Kernels: the chosen fit plus the search (0 at the authors' settings); networks: every
    # training of the cell (selection_seconds includes the chosen one, and DSM's σ candidates).
    for r in at_main:
        r[6]["fit_and_selection"] = r[6]["fit_seconds"] + r[6]["selection_seconds"] if r[2][0] == 0 else r[6]["selection_seconds"]
    for k, (metric, label) in enumerate(timing):
        ax = axes[2][k]
        estimation_lines(ax, at_main, lambda d, m: d, metric, legend)
        log_ticks(ax, sorted({r[4] for r in at_main}))
        ax.set_xlabel("data dimension D")
        ax.set_title(f"{label}, M = {main_m}, mean over targets", fontsize=9)
    ax = axes[2][3]
    estimation_lines(ax, [r for r in rows if r[4] == sweep_d], lambda d, m: m, "peak_resident_mib", legend)
    ax.set_yscale("linear")
    log_ticks(ax, sorted({r[5] for r in rows if r[4] == sweep_d}))
    ax.set_xlabel("samples M")
    ax.set_title(f"peak resident MiB of the process, D = {sweep_d}", fontsize=9)
    for k in range(4, columns):
        axes[2][k].axis("off")
    fig.legend(list(legend.values()), list(legend.keys()), loc="lower center", bbox_to_anchor=(0.5, 0.015), ncol=5, fontsize=8, frameon=False)
    fig.text(0.01, 0.003, "cells by commit and OpenBLAS kernels: " + origins(path), fontsize=7, alpha=0.6)
    fig.suptitle("Score estimation from samples: score networks against the Stein and SSGE kernel estimators (exact scores; error bars: SE over seeds)",
                 fontsize=10)
    fig.subplots_adjust(left=0.07, right=0.99, top=0.94, bottom=0.11, wspace=0.28, hspace=0.42)
    save(fig, prefix)


if __name__ == "__main__":
    figures = {"figure1": figure1, "figure2": figure2, "figure3": figure3, "figure4": figure4, "figure5": figure5, "figure6": figure6}
    if len(sys.argv) != 4 or sys.argv[1] not in figures:
        sys.exit(__doc__)
    figures[sys.argv[1]](sys.argv[2], sys.argv[3])
    print(f"wrote {sys.argv[3]}.png and {sys.argv[3]}.pdf")

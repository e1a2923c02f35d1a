"""Seconds per training step of the deep score models: this suite (bench-core networks) and a
PyTorch reference doing the same step, side by side, alternated cell by cell in one run.

The PyTorch step is toy_gradlogp's `Trainer.train_step` (Ending2015a/toy_gradlogp,
toy_gradlogp/energy.py), written here from its description: draw the objective's noise, the loss
with `create_graph=True` input gradients, `backward()`, `clip_grad_norm_(…, 100)`, Adam 1e-3,
`zero_grad()`. The network is toy_gradlogp's ToyMLP with softplus (2 → 300 → 300 → 1 for energies,
NCSN's 2 → 128 → 128 → 2 for scores; input width D). Exact SM takes the trace by D backward passes
(NCSN's `exact_score_matching`); FSM is Pang et al.'s finite-difference SSM (v on the √D sphere,
h = ε/√D, ε = 0.1), in its value form for energies and its score form for score networks, as this
suite computes them. One thread on both sides (torch.set_num_threads(1), OPENBLAS_NUM_THREADS=1).

Before timing, `verify` recomputes this suite's loss and parameter gradient in PyTorch float64 on
the same small network, batch and noise for every model kind and method, and stops unless they
agree to 1e-10 relative: the two sides time the same computation.

Usage (make bench-neural): venv/bin/python bench_neural.py --bench .build/release/bench-core \
    --out results/bench-neural.md
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

import writing
from torch import nn

ENERGY_METHODS = ["sm", "ssm", "ssm_vr", "dsm", "fsm", "deen"]
SCORE_METHODS = ["sm", "ssm", "ssm_vr", "dsm", "fsm"]
DISPLAY = {"sm": "SM (exact)", "ssm": "SSM", "ssm_vr": "SSM-VR", "dsm": "DSM", "fsm": "FSM", "deen": "DEEN"}


def mlp(inputs, hidden, outputs):
    layers, width = [], inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.Softplus()]
        width = h
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


class Model:
    """An energy network (score = −∇E by autograd) or a score network, as toy_gradlogp and NCSN."""

    def __init__(self, kind, dim, hidden, dtype):
        self.kind, self.dim = kind, dim
        self.net = mlp(dim, hidden, 1 if kind == "energy" else dim).to(dtype)

    def log_density(self, x):
        return -self.net(x).squeeze(-1)

    def score(self, x):
        if self.kind == "score":
            return self.net(x)
        x = x if x.requires_grad else x.requires_grad_()
        return torch.autograd.grad(self.log_density(x).sum(), x, create_graph=True)[0]


def loss(model, method, x, sigma=0.1, epsilon=0.1, noise=None):
    """The objective on a batch; `noise` (v for SSM, SSM-VR and FSM, ε for DSM and DEEN) is drawn
    here unless given (the cross-check passes this suite's draws). DSM is the textbook form
    ½‖s(x̃) + (x̃ − x)/σ²‖², as toy_gradlogp writes it (this suite's is σ⁴ times it)."""
    d = x.shape[1]
    if method in ("ssm", "ssm_vr"):
        x = x.requires_grad_()
        v = torch.randn_like(x) if noise is None else noise  # one Gaussian slice, toy_gradlogp's default noise_type
        s = model.score(x)
        sv = torch.sum(s * v)
        first = 0.5 * (s * v).sum(-1) ** 2 if method == "ssm" else 0.5 * (s * s).sum(-1)
        gsv = torch.autograd.grad(sv, x, create_graph=True)[0]
        return (first + (v * gsv).sum(-1)).mean()
    if method == "sm":
        x = x.requires_grad_()
        s = model.score(x)
        trace = torch.zeros(x.shape[0], dtype=x.dtype)
        for i in range(d):
            trace = trace + torch.autograd.grad(s[:, i].sum(), x, create_graph=True)[0][:, i]
        return (0.5 * (s * s).sum(-1) + trace).mean()
    if method in ("dsm", "deen"):
        v = (torch.randn_like(x) if noise is None else noise) * sigma
        noisy = x + v
        if method == "deen":  # ½‖x − x̃ + σ²∇ₓ̃E(x̃)‖² = ½‖σ² s(x̃) + v‖²
            return ((sigma ** 2 * model.score(noisy) + v) ** 2).sum(-1).mean() / 2
        return ((model.score(noisy) + v / sigma ** 2) ** 2).sum(-1).mean() / 2
    if method == "fsm":
        if noise is None:
            v = torch.randn_like(x)
            v = v / v.norm(dim=-1, keepdim=True) * d ** 0.5
        else:
            v = noise
        h = epsilon / d ** 0.5
        if model.kind == "energy":
            lp = model.log_density(torch.cat([x, x + h * v, x - h * v]))
            l0, lp_plus, lp_minus = lp.split(x.shape[0])
            return ((lp_plus - lp_minus) ** 2 / (8 * h * h) + (lp_plus + lp_minus - 2 * l0) / (h * h)).mean()
        s = model.score(torch.cat([x + h * v, x - h * v]))
        plus, minus = (s * torch.cat([v, v])).sum(-1).split(x.shape[0])
        return (0.5 * (0.5 * (plus + minus)) ** 2 + (plus - minus) / (2 * h)).mean()
    raise ValueError(method)


def verify(bench):
    """Recomputes this suite's loss and parameter gradient in PyTorch (float64) on the same
    network, batch and noise, for every model kind and method (bench-core networks --verify):
    the largest relative difference, and the check that it is below 1e-10. DSM is compared as
    σ⁴ times the textbook loss toy_gradlogp uses."""
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "verify.json")
        subprocess.run([bench, "networks", "--dims", "3", "--hidden", "7,5", "--score-hidden", "6,4", "--batch", "5",
                        "--verify", path], check=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))
        with open(path) as f:
            reference = json.load(f)
    sigma, worst = reference["sigma"], 0.0
    tensor = lambda t: torch.tensor(t["values"], dtype=torch.float64).reshape(t["shape"])
    for case in reference["cases"]:
        model = Model(case["model"], case["dim"], case["hidden"], torch.float64)
        linears = [m for m in model.net if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for k, layer in enumerate(linears):  # this suite's W is [in, out]; nn.Linear's weight [out, in]
                layer.weight.copy_(tensor(case["parameters"][2 * k]).T)
                layer.bias.copy_(tensor(case["parameters"][2 * k + 1]))
        noise = (tensor(case["projections"])[0] if "projections" in case
                 else tensor(case["perturbation"]) if "perturbation" in case else None)
        value = loss(model, case["method"], tensor(case["x"]), sigma=sigma, noise=noise)
        scale = sigma ** 4 if case["method"] == "dsm" else 1.0
        value = value * scale
        value.backward()
        # An energy's output bias does not reach its score: PyTorch leaves its gradient None (zero).
        zero = lambda p: torch.zeros_like(p) if p.grad is None else p.grad
        grads = [g for layer in linears for g in (zero(layer.weight).T, zero(layer.bias))]
        errors = [abs(value.item() - case["loss"]) / max(1.0, abs(case["loss"]))]
        for ours, theirs in zip(case["gradients"], grads):
            ours = tensor(ours)
            errors.append(((ours - theirs).abs().max() / max(1.0, ours.abs().max().item())).item())
        worst = max(worst, max(errors))
        if max(errors) > 1e-10:
            sys.exit(f"verify: {case['model']} {case['method']}: this suite and PyTorch differ by {max(errors):.3g} (relative)")
    print(f"verify: {len(reference['cases'])} method/model pairs: loss and parameter gradients equal PyTorch float64's "
          f"to {worst:.1e} relative", file=sys.stderr)
    return len(reference["cases"]), worst


def torch_cell(kind, method, dim, hidden, dtype, batch, warmup, steps):
    torch.manual_seed(0)
    model = Model(kind, dim, hidden, dtype)
    optimizer = torch.optim.Adam(model.net.parameters(), lr=1e-3)
    data = torch.randn(((warmup + steps) * batch, dim), dtype=dtype)
    seconds = []
    for k in range(warmup + steps):
        start = time.perf_counter()
        x = data[k * batch:(k + 1) * batch].clone()
        value = loss(model, method, x)
        value.backward()
        nn.utils.clip_grad_norm_(model.net.parameters(), 100.0)
        optimizer.step()
        optimizer.zero_grad()
        value.item()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds[warmup:])


def swift_cell(bench, kind, method, dim, batch, warmup, steps, dgemm=False):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    command = [bench, "networks", "--dims", str(dim), "--methods", method, "--models", kind,
               "--batch", str(batch), "--warmup", str(warmup), "--steps", str(steps)] + (["--dgemm"] if dgemm else [])
    lines = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout.splitlines()
    return [json.loads(line) for line in lines]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", required=True, help="the release bench-core executable")
    parser.add_argument("--out", required=True, help="Markdown table; the raw numbers go next to it as .json")
    parser.add_argument("--dims", default="2,10,50,100")
    parser.add_argument("--models", default="energy,score")
    parser.add_argument("--methods", default=",".join(ENERGY_METHODS))
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the three implementations per cell")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    verified = verify(args.bench)
    dims = [int(d) for d in args.dims.split(",")]
    methods = args.methods.split(",")
    hidden = {"energy": [300, 300], "score": [128, 128]}
    machine = swift_cell(args.bench, "energy", "dsm", 2, args.batch, 1, 1, dgemm=True)[0]
    cells = []
    for kind in args.models.split(","):
        for dim in dims:
            for method in methods:
                if method not in (ENERGY_METHODS if kind == "energy" else SCORE_METHODS):
                    continue
                # SM's D backward passes make D = 100 slow on both sides: fewer steps there.
                steps = args.steps if method != "sm" or dim <= 10 else max(3, args.steps // 4)
                ours, f64, f32, record = [], [], [], None
                for _ in range(args.rounds):
                    record = swift_cell(args.bench, kind, method, dim, args.batch, args.warmup, steps)[0]
                    ours.append(record["median_seconds"])
                    f64.append(torch_cell(kind, method, dim, hidden[kind], torch.float64, args.batch, args.warmup, steps))
                    f32.append(torch_cell(kind, method, dim, hidden[kind], torch.float32, args.batch, args.warmup, steps))
                cell = {"model": kind, "method": method, "dim": dim, "steps": steps, "rounds": args.rounds,
                        "ours_seconds": statistics.median(ours), "torch_f64_seconds": statistics.median(f64),
                        "torch_f32_seconds": statistics.median(f32), "ours_rounds": ours, "torch_f64_rounds": f64,
                        "torch_f32_rounds": f32, "gemm_flops": record["gemm_flops"],
                        "resident_growth_mib": record["resident_mib_after"] - record["resident_mib_before"]}
                cells.append(cell)
                print(f"{kind} {method} D={dim}: ours {1e3 * cell['ours_seconds']:.2f} ms, "
                      f"torch f64 {1e3 * cell['torch_f64_seconds']:.2f} ms, f32 {1e3 * cell['torch_f32_seconds']:.2f} ms",
                      file=sys.stderr, flush=True)
    write(args, machine, cells, verified)


def write(args, machine, cells, verified):
    commit, dirty = writing.commit()
    lines = [
        "# bench-neural: seconds per training step, this suite beside PyTorch",
        "",
        f"Written by `make bench-neural` (experiments/reference/bench_neural.py) at commit {commit}{' (with uncommitted changes)' if dirty else ''}.",
        f"Machine: {machine['cpu']}, {os.cpu_count()} cores; one thread on both sides. This suite: OpenBLAS kernels "
        f"{machine['blas_kernels']}, dgemm 1024² {machine['dgemm_gflops']:.1f} GFLOP/s (median, one thread, this run). "
        f"PyTorch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()}), Python {platform.python_version()}.",
        f"Each cell: batch {args.batch}, {args.warmup} warm-up steps, then the median of the timed steps; the three "
        f"implementations alternate {args.rounds} times per cell and the table gives the median of the rounds. Energy "
        "networks 300 × 300, score networks 128 × 128, softplus; D is the input width.",
        "Speed-up = PyTorch's seconds / this suite's (goal: ≥ 2 against float64, ≥ 1 against float32). GEMM MFLOP "
        "counts this suite's matrix products in one step; GFLOP/s is that over its step time. Memory: growth of this "
        "suite's resident set from after the warm-up to after the timed steps.",
        f"The two sides compute the same step: on one small network per model kind and method, with this suite's "
        f"weights, batch and noise, PyTorch float64 gives this suite's loss and parameter gradients to "
        f"{verified[1]:.0e} relative ({verified[0]} pairs; DSM as σ⁴ times toy_gradlogp's textbook loss, this "
        "suite's scaling).",
        "",
        "| model | method | D | GEMM MFLOP | this suite (ms) | GFLOP/s | PyTorch f64 (ms) | PyTorch f32 (ms) | vs f64 | vs f32 | memory growth (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        ours = c["ours_seconds"]
        lines.append(
            f"| {c['model']} | {DISPLAY[c['method']]} | {c['dim']} | {c['gemm_flops'] / 1e6:.0f} | {1e3 * ours:.2f} | "
            f"{c['gemm_flops'] / ours / 1e9:.1f} | {1e3 * c['torch_f64_seconds']:.2f} | {1e3 * c['torch_f32_seconds']:.2f} | "
            f"{c['torch_f64_seconds'] / ours:.2f}× | {c['torch_f32_seconds'] / ours:.2f}× | {c['resident_growth_mib']:.1f} |")
    missed = [c for c in cells if c["torch_f64_seconds"] / c["ours_seconds"] < 2 or c["torch_f32_seconds"] / c["ours_seconds"] < 1]
    lines += ["", f"Cells meeting both goals: {len(cells) - len(missed)} of {len(cells)}."]
    writing.write(args.out, lines, {"machine": machine, "torch": torch.__version__, "commit": commit, "cells": cells})


if __name__ == "__main__":
    main()

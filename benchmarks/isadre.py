"""ISA-DRE benchmark: mutual information of correlated Gaussians (true MI = d/4), MSE vs NFE.

Methods: ISA-DRE (1, 2, 4 steps), DRE-infinity (time-score network; 10 and 100 trapezoid steps, RK45 ODE) and
classifier DRE (torch MLP). Also: the quadratic-branch ablation (quadratic_rank=0, both path estimators), the
CIA ablation (anneal='none'), the along-path derivative variant (derivative='total'), and inference time per
10k points. Every number in docs/isadre.md comes from here.

    python benchmarks/isadre.py            # full: d in {40, 80, 120, 160}, 3 seeds; updates docs/
    python benchmarks/isadre.py --quick    # smoke run (< 60 s), writes only under runs/

The full run can be split over processes (``--seeds 0 --sections main --no-docs --out runs/isadre_bench/s0.json``
...) and merged (``--merge a.json,b.json --sections none``). A results JSON is reused only if it was written with
the same setting.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mercato.core.plots import plt, save_figure
from mercato.core.results import markdown_table, mean_std, update_markdown_section
from mercato.core.runs import atomic_write_json
from mercato.core.seed import seed_everything
from mercato.isadre import (
    ISADRE,
    ClassifierDRE,
    ClassifierDREConfig,
    GaussianPair,
    ISADREConfig,
    PathConfig,
    TimeScoreDRE,
    TimeScoreDREConfig,
    TrainConfig,
    correlated_gaussian_pair,
)

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("benchmarks.isadre")

FULL = {
    "dims": [40, 80, 120, 160],
    "seeds": [0, 1, 2],
    "ablation_dims": [40, 160],
    "ablation_seeds": [0],
    "n_train": 200000,  # 2000 steps x 4096 pairs = about 40 passes (20k samples overfitted: 200 passes)
    "n_test": 5000,
    "train": {
        "hidden": 256,  # above every d: width 128 < d = 160 projected x onto fewer directions than it has
        "n_blocks": 3,
        "quadratic_rank": 256,  # quadratic branch, rank >= every d (chosen on validation seeds 101, 102)
        "emb_dim": 64,
        "n_iters": 2000,
        "batch_size": 4096,  # 2048 before: both methods closer to the truth at d = 80, 160 (validation seed 101)
        "lr": 3e-3,
        "t_sampler": "lognorm",
        "emb_max_freq": 8.0,
        "weighting": "inv_var_t",  # unbiased 1/Var[tau_c | t] (chosen at d = 80 and 160 on seed 101)
    },
    "isa": {"full_ratio": 0.5},
    "isa_train": {"t_sampler": "lognorm_ends"},  # ISA-DRE only (chosen at d = 40 on seeds 101-103)
    "clf": {"hidden": 256, "max_iter": 60, "batch_size": 1024, "lr": 1e-3},
}
QUICK = {
    "dims": [10],
    "seeds": [0],
    "ablation_dims": [10],
    "ablation_seeds": [0],
    "n_train": 10000,
    "n_test": 2000,
    "train": {
        "hidden": 64,
        "n_blocks": 2,
        "quadratic_rank": 16,
        "emb_dim": 32,
        "n_iters": 400,
        "batch_size": 1024,
        "lr": 3e-3,
        "t_sampler": "lognorm",
        "emb_max_freq": 8.0,
        "weighting": "inv_var_t",
    },
    "isa": {"full_ratio": 0.5},
    "isa_train": {"t_sampler": "lognorm_ends"},  # ISA-DRE only (chosen at d = 40 on seeds 101-103)
    "clf": {"hidden": 32, "max_iter": 20, "batch_size": 256, "lr": 1e-3},
}
# t_end: every query ends at t = 0.95, where the training weight has not yet vanished (chosen on validation
# seeds with benchmarks/isadre_horizon.py); the rows "to t = 1 - eps" report the same fits without it
PATH = {"kind": "trig", "reference": "gaussian", "gamma": 0.0, "noise_eps": 0.0, "t_end": 0.95}
# ablation: the library's default reference (a noisy bridge between the samples of q and p)
BRIDGE = {**PATH, "reference": "data", "gamma": PathConfig.gamma, "noise_eps": PathConfig.noise_eps}


# ISA-DRE variants: (ISADREConfig overrides, TrainConfig overrides, bridge reference instead of PATH)
ISA_VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    "isa": ({}, {}, False),
    "isa_noanneal": ({"anneal": "none"}, {}, False),  # CIA ablation
    "isa_total": ({"derivative": "total"}, {}, False),  # along-path derivative
    "isa_lognorm": ({}, {"t_sampler": "lognorm"}, False),  # no end mass in the t sampler
    "isa_noquad": ({}, {"quadratic_rank": 0}, False),  # without the quadratic branch
    "isa_bridge": ({}, {}, True),  # the library's default reference
}


# DRE-infinity variants: (TrainConfig overrides, bridge reference instead of PATH)
DRE_VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "dre_inf": ({}, False),
    "dre_noquad": ({"quadratic_rank": 0}, False),  # without the quadratic branch
    "dre_bridge": ({}, True),  # the library's default reference
}


def _path(bridge: bool = False) -> PathConfig:
    return PathConfig(**(BRIDGE if bridge else PATH))  # type: ignore[arg-type]


def _train(setting: dict[str, Any], seed: int, isa: bool = False) -> TrainConfig:
    """The shared network/optimiser setting; ISA-DRE adds its own ``isa_train`` overrides (t sampler)."""
    extra = setting.get("isa_train", {}) if isa else {}
    return TrainConfig(
        **{**setting["train"], **extra}, ema_decay=0.99, seed=seed, device=setting.get("device", "cpu")
    )


def _timed_eval(est: Any, X: np.ndarray, truth: float, **kw: Any) -> dict[str, float]:
    t0 = time.perf_counter()
    lr = est.log_ratio(X, **kw)
    secs = time.perf_counter() - t0
    mi = float(np.mean(lr))
    return {"mi": mi, "sq_err": (mi - truth) ** 2, "nfe": float(est.last_nfe_), "seconds": secs}


def problem(
    setting: dict[str, Any], d: int, seed: int
) -> tuple[GaussianPair, np.ndarray, np.ndarray, np.ndarray]:
    """The (d, seed) MI problem: the pair, training samples of p and q, and the test points from p."""
    seed_everything(seed)
    pair = correlated_gaussian_pair(d)
    rng = np.random.default_rng(1000 + seed)
    X_p, X_q = pair.sample_p(setting["n_train"], rng), pair.sample_q(setting["n_train"], rng)
    return pair, X_p, X_q, pair.sample_p(setting["n_test"], rng)


def exact_estimate(setting: dict[str, Any], d: int, seed: int) -> dict[str, float]:
    """The true log ratio averaged over the same test points: the floor that their number sets on the MSE."""
    pair, _, _, X_test = problem(setting, d, seed)
    mi = float(np.mean(pair.log_ratio(X_test)))
    return {"mi": mi, "sq_err": (mi - d / 4.0) ** 2, "nfe": 0.0, "seconds": 0.0, "fit_seconds": 0.0}


@contextlib.contextmanager
def _query_to_end(est: Any) -> Iterator[None]:
    """Evaluate a fitted path estimator with queries to t = 1 - eps (``path.t_end`` None) inside the block."""
    config = est.config
    est.config = dataclasses.replace(config, path=dataclasses.replace(config.path, t_end=None))
    try:
        yield
    finally:
        est.config = config


def run_one(setting: dict[str, Any], d: int, seed: int, methods: list[str]) -> dict[str, Any]:
    """Fit the requested methods on one (d, seed) MI problem and return their estimates."""
    pair, X_p, X_q, X_test = problem(setting, d, seed)
    truth = d / 4.0
    out: dict[str, Any] = {}
    for method in methods:
        t0 = time.perf_counter()
        if method.startswith("isa"):
            variant, train_overrides, bridge = ISA_VARIANTS[method]
            train = dataclasses.replace(_train(setting, seed, isa=True), **train_overrides)
            isa_cfg = ISADREConfig(path=_path(bridge), train=train, **setting["isa"], **variant)
            est: Any = ISADRE(isa_cfg).fit(X_p, X_q)
            fit_s = time.perf_counter() - t0
            for steps in (1, 2, 4):
                out[f"{method}@{steps}"] = {
                    **_timed_eval(est, X_test, truth, steps=steps),
                    "fit_seconds": fit_s,
                }
            if method == "isa":
                with _query_to_end(est):
                    out["isa_to_end@1"] = {**_timed_eval(est, X_test, truth, steps=1), "fit_seconds": fit_s}
        elif method in DRE_VARIANTS:
            train_overrides, bridge = DRE_VARIANTS[method]
            train = dataclasses.replace(_train(setting, seed), **train_overrides)
            est = TimeScoreDRE(TimeScoreDREConfig(path=_path(bridge), train=train)).fit(X_p, X_q)
            fit_s = time.perf_counter() - t0
            for steps in (10, 100) if method == "dre_inf" else (100,):
                out[f"{method}@{steps}"] = {
                    **_timed_eval(est, X_test, truth, steps=steps),
                    "fit_seconds": fit_s,
                }
            if method == "dre_inf":
                out["dre_inf@ode"] = {
                    **_timed_eval(est, X_test, truth, integrator="ode"),
                    "fit_seconds": fit_s,
                }
                with _query_to_end(est):
                    out["dre_inf_to_end@100"] = {
                        **_timed_eval(est, X_test, truth, steps=100),
                        "fit_seconds": fit_s,
                    }
        elif method == "clf":
            cfg = ClassifierDREConfig(
                model="mlp", seed=seed, device=setting.get("device", "cpu"), **setting["clf"]
            )
            est = ClassifierDRE(cfg).fit(X_p, X_q)
            out["clf"] = {**_timed_eval(est, X_test, truth), "fit_seconds": time.perf_counter() - t0}
        logger.info("d=%d seed=%d %s done in %.0f s", d, seed, method, time.perf_counter() - t0)
    return out


def speed(setting: dict[str, Any], d: int) -> dict[str, float]:
    """Inference seconds per 10k points: ISA-DRE 1 step vs DRE-infinity 100 steps (same network size)."""
    pair = correlated_gaussian_pair(d)
    rng = np.random.default_rng(7)
    X_p, X_q = pair.sample_p(2000, rng), pair.sample_q(2000, rng)
    tiny = {**setting, "train": {**setting["train"], "n_iters": 5}}
    isa = ISADRE(ISADREConfig(path=_path(), train=_train(tiny, 0, isa=True), **setting["isa"])).fit(X_p, X_q)
    ts = TimeScoreDRE(TimeScoreDREConfig(path=_path(), train=_train(tiny, 0))).fit(X_p, X_q)
    X = pair.sample_p(10_000, rng)

    def best(fn: Any) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    return {
        "dim": float(d),
        "isa_1step_s": best(lambda: isa.log_ratio(X, steps=1)),
        "isa_4step_s": best(lambda: isa.log_ratio(X, steps=4)),
        "dre_inf_100step_s": best(lambda: ts.log_ratio(X, steps=100)),
    }


LABELS = {
    "isa@1": "ISA-DRE, 1 step",
    "isa@2": "ISA-DRE, 2 steps",
    "isa@4": "ISA-DRE, 4 steps",
    "dre_inf@10": "DRE-∞, trapezoid 10",
    "dre_inf@100": "DRE-∞, trapezoid 100",
    "dre_inf@ode": "DRE-∞, RK45 ODE",
    "clf": "classifier DRE (MLP)",
    "exact": "exact log ratio on the test points (floor)",
    "isa_to_end@1": "ISA-DRE, 1 step, queried to t = 1 − ε",
    "dre_inf_to_end@100": "DRE-∞, trapezoid 100, queried to t = 1 − ε",
    "isa_noanneal@1": "ISA-DRE without CIA, 1 step",
    "isa_noanneal@4": "ISA-DRE without CIA, 4 steps",
    "isa_total@1": "ISA-DRE along-path d/dt, 1 step",
    "isa_total@4": "ISA-DRE along-path d/dt, 4 steps",
    "isa_lognorm@1": "ISA-DRE with log-normal t (no end mass), 1 step",
    "isa_lognorm@4": "ISA-DRE with log-normal t (no end mass), 4 steps",
    "isa_bridge@1": "ISA-DRE, bridge reference (library default), 1 step",
    "isa_bridge@4": "ISA-DRE, bridge reference (library default), 4 steps",
    "dre_bridge@100": "DRE-∞, bridge reference (library default), trapezoid 100",
    "isa_noquad@1": "ISA-DRE without the quadratic branch, 1 step",
    "isa_noquad@4": "ISA-DRE without the quadratic branch, 4 steps",
    "dre_noquad@100": "DRE-∞ without the quadratic branch, trapezoid 100",
}


def summarize(
    results: dict[str, Any], dims: list[int], keys: list[str]
) -> tuple[list[list[Any]], dict[str, Any]]:
    """Rows 'method | NFE | MSE at each d (mean ± std over seeds)' and a per-(key, d) summary."""
    rows, summary = [], {}
    for key in keys:
        row: list[Any] = [LABELS[key]]
        nfes = []
        for d in dims:
            runs = [r[key] for r in results.get(str(d), {}).values() if key in r]
            if not runs:
                row.append("–")
                continue
            sq = [r["sq_err"] for r in runs]
            nfes += [r["nfe"] for r in runs]
            summary[(key, d)] = {"mse": float(np.mean(sq)), "sq": sq, "mi": [r["mi"] for r in runs]}
            row.append(f"{mean_std(sq, 2)} (MI {np.mean([r['mi'] for r in runs]):.2f})")
        row.insert(1, f"{np.mean(nfes):.0f}" if nfes else "–")
        rows.append(row)
    return rows, summary


def paired_comparison(results: dict[str, Any], d: int, a: str = "isa@1", b: str = "dre_inf@100") -> str:
    """Seed-paired difference of squared errors, a minus b, at dimension d: mean ± standard error and how many
    seeds favour a. Both methods see the same data on each seed, so the paired difference removes the part of
    the seed-to-seed spread that they share."""
    cells = [c for c in results.get(str(d), {}).values() if isinstance(c, dict) and a in c and b in c]
    if not cells:
        return f"d={d}: –"
    diff = np.array([c[a]["sq_err"] - c[b]["sq_err"] for c in cells])
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    lower = int((diff <= 0).sum())
    return f"d={d}: {diff.mean():+.2f} ± {se:.2f} (lower or equal on {lower} of {len(diff)} seeds)"


def plot(path: Path, summary: dict[Any, Any], dims: list[int], keys: list[str]) -> None:
    """MSE vs NFE, one panel per d (log-log)."""
    fig, axes = plt.subplots(1, len(dims), figsize=(4 * len(dims), 3.6), squeeze=False)
    for ax, d in zip(axes[0], dims):
        for key in keys:
            if (key, d) not in summary:
                continue
            s = summary[(key, d)]
            x = float(s.get("nfe", 1.0))  # measured network calls (trapezoid K intervals = K + 1)
            ax.errorbar([x], [s["mse"]], yerr=[[0.0], [float(np.std(s["sq"]))]], fmt="o", label=LABELS[key])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"d = {d} (true MI {d / 4:g})")
        ax.set_xlabel("NFE")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("MSE of MI estimate")
    axes[0][-1].legend(fontsize=7, loc="best")
    save_figure(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run (< 60 s); writes only under runs/")
    parser.add_argument(
        "--sections", default="main,ablation,speed", help="comma list of main, ablation, speed"
    )
    parser.add_argument("--out", default=None, help="results JSON (default runs/isadre_bench/<mode>.json)")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/ (full mode)")
    parser.add_argument("--seeds", default=None, help="comma list overriding the seeds (to split a run)")
    parser.add_argument("--dims", default=None, help="comma list overriding the main dims (to split a run)")
    parser.add_argument(
        "--ablation-dims", default=None, help="comma list overriding the ablation dims (to split a run)"
    )
    parser.add_argument("--merge", default=None, help="comma list of result JSONs to merge into --out first")
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device of every fit (cpu, cuda, ...); a non-CPU run has its own cache and docs blocks (-gpu)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    torch.set_num_threads(1)
    setting = QUICK if args.quick else FULL
    gpu = args.device != "cpu"
    if gpu:
        setting = {**setting, "device": args.device}
    suffix = "-gpu" if gpu else ""  # docs blocks and plot of a GPU run sit beside the CPU ones
    mode = "quick" if args.quick else "full"
    out = Path(args.out) if args.out else ROOT / "runs" / "isadre_bench" / f"{mode}.json"
    fingerprint = json.dumps(
        {
            **{k: setting[k] for k in ("n_train", "n_test", "train", "isa", "isa_train", "clf")},
            "path": PATH,
            **({"device": args.device} if gpu else {}),  # CPU caches from before the option stay valid
        },
        sort_keys=True,
    )
    results: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}  # resumable cache
    if results.get("setting") != fingerprint:
        results = {"setting": fingerprint}  # a cache written with another setting is not reused
    if args.seeds is not None:
        setting = {**setting, "seeds": [int(s) for s in args.seeds.split(",") if s]}
    if args.dims is not None:
        setting = {**setting, "dims": [int(d) for d in args.dims.split(",") if d]}
    if args.ablation_dims is not None:
        setting = {**setting, "ablation_dims": [int(d) for d in args.ablation_dims.split(",") if d]}
    for extra in (args.merge or "").split(","):
        if extra:
            part = json.loads(Path(extra).read_text())
            if part.get("setting") != fingerprint:
                raise SystemExit(f"{extra}: written with another setting; not merged")
            for d, cells in part.items():
                if d == "setting":
                    continue
                if d == "hardware":
                    results[d] = cells
                    continue
                if d in ("speed", "wall"):
                    results.setdefault(d, {}).update(cells)
                    continue
                for seed, cell in cells.items():
                    results.setdefault(d, {}).setdefault(seed, {}).update(cell)
    sections = args.sections.split(",")
    t_start = time.perf_counter()
    wall_before = results.get("wall", {}).get(out.stem, 0.0)  # a resumed part adds to its earlier time

    def save() -> None:
        results.setdefault("wall", {})[out.stem] = wall_before + time.perf_counter() - t_start
        atomic_write_json(out, results)

    jobs: list[tuple[int, int, list[str]]] = []
    if "main" in sections:
        jobs += [(d, s, ["isa", "dre_inf", "clf"]) for d in setting["dims"] for s in setting["seeds"]]
    if "ablation" in sections:
        jobs += [
            (
                d,
                s,
                [
                    "isa_noquad",
                    "dre_noquad",
                    "isa_noanneal",
                    "isa_total",
                    "isa_lognorm",
                    "isa_bridge",
                    "dre_bridge",
                ],
            )
            for d in setting["ablation_dims"]
            for s in setting["ablation_seeds"]
        ]
    for d, seed, methods in jobs:
        cell = results.setdefault(str(d), {}).setdefault(str(seed), {})
        for method in methods:  # saved after each method, so an interrupted run resumes at the next one
            if not any(k.startswith(method + "@") or k == method for k in cell):
                cell.update(run_one(setting, d, seed, [method]))
                save()
    if "speed" in sections and "speed" not in results:
        results["speed"] = speed(setting, max(setting["dims"]))
        save()
    if jobs or "speed" in sections:
        if gpu:
            name = torch.cuda.get_device_name() if torch.device(args.device).type == "cuda" else args.device
            results["hardware"] = f"one {name} shared by the processes"
        save()
    for d in setting["dims"]:
        for seed in setting["seeds"]:
            cell = results.get(str(d), {}).get(str(seed))
            if cell and "exact" not in cell:
                cell["exact"] = exact_estimate(setting, d, seed)
                atomic_write_json(out, results)
    walls = results.get("wall", {})
    dims = setting["dims"]
    main_keys = ["isa@1", "isa@2", "isa@4", "dre_inf@10", "dre_inf@100", "dre_inf@ode", "clf"]
    main_keys += ["isa_to_end@1", "dre_inf_to_end@100", "exact"]
    rows, summary = summarize(results, dims, main_keys)
    for (key, d), s in summary.items():
        runs = [r[key] for r in results[str(d)].values() if isinstance(r, dict) and key in r]
        s["nfe"] = float(np.mean([r["nfe"] for r in runs]))
    header = ["method", "NFE", *[f"d={d} (MI {d / 4:g})" for d in dims]]
    table = markdown_table(header, rows)
    abl_keys = ["isa@1", "isa@4", "dre_inf@100", "isa_noquad@1", "isa_noquad@4", "dre_noquad@100"]
    abl_keys += ["isa_noanneal@1", "isa_noanneal@4", "isa_total@1", "isa_total@4"]
    abl_keys += [
        "isa_lognorm@1",
        "isa_lognorm@4",
        "isa_bridge@1",
        "isa_bridge@4",
        "dre_bridge@100",
    ]
    abl_dims = setting["ablation_dims"]
    abl_rows, _ = summarize(
        {
            str(d): {
                s: results[str(d)][str(s)]
                for s in map(str, setting["ablation_seeds"])
                if s in results.get(str(d), {})
            }
            for d in abl_dims
            if str(d) in results
        },
        abl_dims,
        abl_keys,
    )
    abl_table = markdown_table(["variant", "NFE", *[f"d={d}" for d in abl_dims]], abl_rows)
    goal = []
    for d in dims:
        if ("isa@1", d) in summary and ("dre_inf@100", d) in summary:
            a, b = summary[("isa@1", d)]["mse"], summary[("dre_inf@100", d)]["mse"]
            n_seeds = min(len(summary[("isa@1", d)]["sq"]), len(summary[("dre_inf@100", d)]["sq"]))
            goal.append(f"d={d}: {'met' if a <= b else 'missed'} ({a:.2f} vs {b:.2f}, {n_seeds} seeds)")
    sp = results.get("speed", {})
    speed_line = ""
    if sp:
        speed_line = (
            f"Inference on 10k points at d={max(dims)} (same network size, measured side by side in one process, "
            f"best of 3): ISA-DRE 1 step {1000 * sp['isa_1step_s']:.1f} ms, 4 steps "
            f"{1000 * sp.get('isa_4step_s', float('nan')):.1f} ms; DRE-∞ 100 steps "
            f"{1000 * sp['dre_inf_100step_s']:.1f} ms; ratio DRE-∞ 100 / ISA-DRE 1 = "
            f"{sp['dre_inf_100step_s'] / sp['isa_1step_s']:.0f}×."
        )
    fit_times = {
        k: np.mean([r[k]["fit_seconds"] for dd in dims for r in results.get(str(dd), {}).values() if k in r])
        for k in ("isa@1", "dre_inf@100", "clf")
        if any(k in r for dd in dims for r in results.get(str(dd), {}).values())
    }
    fit_line = ", ".join(f"{LABELS[k].split(',')[0]} {v:.0f} s" for k, v in fit_times.items())
    body = "\n\n".join(
        [
            f"MSE of the MI estimate (mean ± std over seeds {setting['seeds']}; in brackets the mean estimate). "
            f"Setting: {setting['n_train']} training samples per distribution, {setting['n_test']} test samples, "
            f"network/optimiser {setting['train']}, ISA-DRE {setting['isa']} with training overrides {setting.get('isa_train', {})}, classifier {setting['clf']}, "
            f"path {PATH}. Wall time of the parts (processes, run concurrently; a resumed part adds up its "
            "invocations from the first one that saved its time): "
            + ", ".join(f"{k} {v / 60:.1f} min" for k, v in sorted(walls.items()))
            + f" on {results.get('hardware', 'a shared 2-core CPU')}, torch.set_num_threads(1) per process.",
            table,
            "Goal (ISA-DRE 1 step at or below DRE-∞ 100 steps): " + "; ".join(goal),
            "Paired difference of squared errors, ISA-DRE 1 step minus DRE-∞ 100 (mean ± standard error over "
            "seeds; negative favours ISA-DRE): "
            + "; ".join(paired_comparison(results, d) for d in dims)
            + ".",
            "Relative error of the mean MI estimate (ISA-DRE 1 step / DRE-∞ 100 / classifier): "
            + "; ".join(
                f"d={d}: "
                + " / ".join(
                    f"{100 * (np.mean(summary[(k, d)]['mi']) / (d / 4) - 1):+.0f} %"
                    for k in ("isa@1", "dre_inf@100", "clf")
                    if (k, d) in summary
                )
                for d in dims
            )
            + ".",
            f"Mean fit time per model: {fit_line}.",
            speed_line,
            f"![MSE vs NFE](img/isadre/mse_vs_nfe{suffix}.png)",
        ]
    )
    abl_body = (
        f"Seeds {setting['ablation_seeds']}; MSE (mean estimate in brackets). Same setting as above; the bridge "
        f"rows use the path {BRIDGE} (the library's default reference) instead of {PATH}.\n\n" + abl_table
    )
    print(table)
    print(abl_table)
    print("\n".join(goal))
    print("\n".join(paired_comparison(results, d) for d in dims))
    print(speed_line)
    if args.quick or args.no_docs:
        return 0
    plot(
        ROOT / "docs" / "img" / "isadre" / f"mse_vs_nfe{suffix}.png", summary, dims, main_keys[:-1]
    )  # not NFE 0
    update_markdown_section(ROOT / "docs" / "isadre.md", f"isadre-mi{suffix}", body, title="ISA-DRE")
    abl_complete = all(
        any(key in results.get(str(d), {}).get(str(seed), {}) for seed in setting["ablation_seeds"])
        for d in abl_dims
        for key in abl_keys
    )
    if abl_complete:
        update_markdown_section(ROOT / "docs" / "isadre.md", f"isadre-ablation{suffix}", abl_body)
    else:  # a partial table would replace a complete one from an earlier run
        logger.warning("ablation results incomplete: docs section isadre-ablation left as it is")
    short = "\n\n".join(
        [
            f"### ISA-DRE{' on one GPU' if gpu else ''} (density-ratio estimation, MI of correlated Gaussians; "
            "details in [isadre.md](isadre.md))",
            table,
            "Goal: " + "; ".join(goal) + ". " + speed_line,
        ]
    )
    update_markdown_section(ROOT / "docs" / "results.md", f"isadre{suffix}", short, title="Results")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

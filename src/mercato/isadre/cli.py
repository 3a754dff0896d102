"""``mercato isadre fit | eval | bench``.

* ``fit``: fit ISA-DRE on a 2-D toy (``--toy 8gaussians``) or on your own samples (``--x-p p.npy --x-q q.csv``,
  rows = samples); writes config.yaml, metrics.json, the checkpoint and (2-D) a ratio plot into the run folder.
* ``eval``: load a fitted run (``--run-dir``) and write log r(x) for ``--x`` (``.npy``/``.csv``) at ``--steps`` N;
  without ``--x`` on a toy run, evaluate on fresh toy samples and report the RMSE against the exact log ratio.
* ``bench``: run ``benchmarks/isadre.py --quick``.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mercato.core.checkpoint import load_checkpoint, save_checkpoint
from mercato.core.cli import add_common_args, config_help, fail, parse_config, print_table
from mercato.core.config import config_from_dict
from mercato.core.plots import plt, save_figure
from mercato.core.runs import atomic_path, make_run_dir, write_config, write_metrics
from mercato.isadre.config import ISADREConfig, PathConfig, TrainConfig, resolve_train
from mercato.isadre.estimator import ISADRE
from mercato.isadre.networks import build_network
from mercato.isadre.toy import TOYS, toy_pair

__all__ = ["load_samples", "main", "plot_ratio"]

logger = logging.getLogger(__name__)


def load_samples(path: str | Path) -> np.ndarray:
    """Read an (n, d) float array from ``.npy`` or ``.csv`` (comma-separated, no header)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p}: file not found")
    try:
        arr = np.load(p) if p.suffix == ".npy" else np.loadtxt(p, delimiter=",", ndmin=2)
    except ValueError as err:
        raise ValueError(f"{p}: expected a numeric .npy or comma-separated .csv file ({err})") from err
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{p}: expected a 2-D array (samples x features), got shape {arr.shape}")
    return arr


def plot_ratio(path: Path, est: ISADRE, true_log_ratio: Any = None, lim: float = 3.5, steps: int = 1) -> Path:
    """Heatmaps of the estimated (and, for a toy, exact) log ratio on a 2-D grid."""
    g = np.linspace(-lim, lim, 120)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)  # (120*120, 2)
    panels = [(f"ISA-DRE log r, {steps} step(s)", est.log_ratio(pts, steps=steps))]
    if true_log_ratio is not None:
        panels.append(("exact log r", true_log_ratio(pts)))
    vmin = min(float(np.percentile(v, 1)) for _, v in panels)
    vmax = max(float(v.max()) for _, v in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.8), squeeze=False)
    for ax, (title, vals) in zip(axes[0], panels):
        im = ax.imshow(
            vals.reshape(xx.shape), extent=(-lim, lim, -lim, lim), origin="lower", vmin=vmin, vmax=vmax
        )
        ax.set_title(title)
    fig.colorbar(im, ax=axes[0].tolist())
    return save_figure(fig, path)


def _fit(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mercato isadre fit", description="Fit ISA-DRE on a toy or your samples."
    )
    parser.add_argument(
        "--toy", default="8gaussians", help=f"2-D toy: {', '.join(TOYS)} (ignored with --x-p)"
    )
    parser.add_argument("--n", type=int, default=20000, help="toy samples per distribution")
    parser.add_argument("--x-p", default=None, help="numerator samples p (.npy or .csv)")
    parser.add_argument("--x-q", default=None, help="denominator samples q (.npy or .csv)")
    add_common_args(parser, ISADREConfig)
    parser.epilog = "\n\n".join(config_help(c) for c in (ISADREConfig, PathConfig, TrainConfig)).replace(
        "config keys (override", "keys (nested: --path.kind vp, --train.n_iters 500; override"
    )
    args, cfg = parse_config(parser, argv, ISADREConfig)
    rng = np.random.default_rng(cfg.train.seed)
    toy = None
    try:
        if args.x_p or args.x_q:
            if not (args.x_p and args.x_q):
                fail("--x-p and --x-q must be given together")
            X_p, X_q = load_samples(args.x_p), load_samples(args.x_q)
        else:
            toy = toy_pair(args.toy)
            X_p, X_q = toy.sample_p(args.n, rng), toy.sample_q(args.n, rng)
        run = make_run_dir("isadre", args.output_dir)
        write_config(run, cfg)
        t0 = time.perf_counter()
        est = ISADRE(cfg).fit(X_p, X_q)
    except ValueError as err:
        fail(str(err))
    fit_s = time.perf_counter() - t0
    save_checkpoint(
        run / "checkpoint",
        est.network_,
        state={
            "shift": est.shift_.tolist(),
            "scale": est.scale_.tolist(),
            "n_features": est.n_features_in_,
            "toy": toy.name if toy is not None else None,
        },
    )
    metrics: dict[str, Any] = {"fit_seconds": fit_s, "final_loss": float(np.mean(est.loss_history_[-50:]))}
    if toy is not None:
        X_test = toy.sample_p(5000, np.random.default_rng(cfg.train.seed + 1))
        true = toy.log_ratio(X_test)
        for steps in (1, 2, 4):
            resid = est.log_ratio(X_test, steps=steps) - true
            metrics[f"rmse_log_ratio_steps{steps}"] = float(np.sqrt(np.mean(resid**2)))
    if est.n_features_in_ == 2:
        plot_ratio(run / "log_ratio.png", est, toy.log_ratio if toy is not None else None)
    write_metrics(run, metrics)
    print_table([{"metric": k, "value": v} for k, v in metrics.items()])
    print(f"run folder: {run}")
    return 0


def load_fitted(run: Path) -> ISADRE:
    """Rebuild a fitted :class:`ISADRE` from a ``fit`` run folder (``toy_`` holds the toy's name or None)."""
    import yaml

    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise ValueError(f"{run}: not an isadre run folder (config.yaml missing)")
    cfg = config_from_dict(ISADREConfig, yaml.safe_load(cfg_path.read_text()), source=str(cfg_path))
    ckpt = load_checkpoint(run / "checkpoint")
    est = ISADRE(cfg)
    dim = int(ckpt.state["n_features"])
    net = build_network(dim, resolve_train(cfg.train, dim), secant=True)  # the architecture depends on d only
    net.load_state_dict(ckpt.model_state)
    est.network_ = net.eval()
    est.shift_, est.scale_ = np.asarray(ckpt.state["shift"]), np.asarray(ckpt.state["scale"])
    est.n_features_in_ = dim
    est.toy_ = ckpt.state.get("toy")
    return est


def _eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mercato isadre eval", description="Evaluate log r(x) with a fitted run."
    )
    parser.add_argument(
        "--run-dir", "--run", dest="run", required=True, help="run folder written by 'mercato isadre fit'"
    )
    parser.add_argument(
        "--x", default=None, help="query points (.npy or .csv); default on a toy run: 5000 fresh p-samples"
    )
    parser.add_argument("--seed", type=int, default=12345, help="seed of the fresh toy samples (no --x)")
    parser.add_argument("--steps", type=int, default=1, help="N inference steps (NFE)")
    parser.add_argument("--out", default=None, help="output .npy (default <run>/log_ratio.npy)")
    args = parser.parse_args(argv)
    try:
        est = load_fitted(Path(args.run))
        toy = None
        if args.x is not None:
            X = load_samples(args.x)
        elif est.toy_ is not None:
            toy = toy_pair(est.toy_)
            X = toy.sample_p(5000, np.random.default_rng(args.seed))
        else:
            raise ValueError("--x is required for a run fitted on your own samples")
        t0 = time.perf_counter()
        lr = est.log_ratio(X, steps=args.steps)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    secs = time.perf_counter() - t0
    out = Path(args.out) if args.out else Path(args.run) / "log_ratio.npy"
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, lr)
    row: dict[str, Any] = {
        "n": len(lr),
        "steps": args.steps,
        "nfe": est.last_nfe_,
        "mean_log_r": float(lr.mean()),
        "seconds": secs,
    }
    if toy is not None:
        row["rmse_vs_exact"] = float(np.sqrt(np.mean((lr - toy.log_ratio(X)) ** 2)))
    print_table([row])
    print(f"wrote {out}")
    return 0


def _bench(argv: list[str]) -> int:
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "isadre.py"
    if not script.is_file():
        fail(f"{script}: benchmark script not found (run from a source checkout)")
    return subprocess.call([sys.executable, str(script), "--quick", *argv])


VERBS = {"fit": _fit, "eval": _eval, "bench": _bench}


def main(argv: list[str]) -> int:
    """Entry point of ``mercato isadre``."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: mercato isadre {fit,eval,bench} [options]   (mercato isadre <verb> --help)")
        return 0
    if argv[0] not in VERBS:
        print(
            f"mercato isadre: error: unknown verb '{argv[0]}'; valid verbs: {', '.join(VERBS)}",
            file=sys.stderr,
        )
        return 2
    return VERBS[argv[0]](argv[1:])

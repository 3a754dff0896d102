"""PyMAL (github.com/alimama-tech/PyMAL, the MAC authors' code) run beside mercato, never imported or copied.

``run_pymal`` runs PyMAL's own ``preprocess.py`` and ``run.py`` in a subprocess (``mercato.mal._pymal_shim``
maps ``cuda`` to ``cpu`` where there is no GPU) with a timeout, on a MAC folder written by
``mercato.mal.sim``, and parses the ``Testing/View: ... AUC ... GAUC`` lines it prints. PyMAL reads
``<path>/data/{train,test,vocabs}`` and writes ``<path>/data/cached`` and ``<path>/results``, so the MAC
folder is linked as ``<work>/data`` inside a scratch work folder. Its known bugs are left as they are
(docs/mal.md): a hard-coded ``total_steps = 4e6 * 21 // batch`` keeps its warm-up running on small data.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mercato.mal.sim import SimSpec, ensure_mac

__all__ = ["PyMALResult", "PyMALRunConfig", "fit_pymal", "parse_pymal_output", "pymal_available", "run_pymal"]

_LINE = re.compile(r"Testing/View:\s*(\w+)\s*,\s*Testing/AUC:\s*([0-9.]+),\s*Testing/GAUC:\s*([0-9.]+)")


@dataclass
class PyMALResult:
    model: str
    main_view: str
    metrics: dict[str, dict[str, float]]  # view -> {"auc", "gauc"}
    train_wall_s: float
    preprocess_wall_s: float
    clicks_per_s: float
    log: str


def pymal_available(pymal_dir: str | Path) -> str | None:
    """None when ``pymal_dir`` holds PyMAL's ``run.py`` and ``preprocess.py``; else why not."""
    d = Path(pymal_dir)
    missing = [
        f for f in ("run.py", "preprocess.py", "utils/data.py", "model/NATAL.py") if not (d / f).exists()
    ]
    return f"{d}: not a PyMAL checkout (missing {missing})" if missing else None


def parse_pymal_output(text: str) -> dict[str, dict[str, float]]:
    """``{view: {"auc": .., "gauc": ..}}`` from PyMAL's test printout."""
    return {m[1]: {"auc": float(m[2]), "gauc": float(m[3])} for m in _LINE.finditer(text)}


def _run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str]) -> tuple[str, float]:
    t0 = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"PyMAL {cmd[4]} ran past {timeout:.0f} s") from e
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise RuntimeError(f"PyMAL {cmd[4]} failed (exit {out.returncode}): {out.stderr[-3000:]}")
    return out.stdout + out.stderr, wall


def run_pymal(
    pymal_dir: str | Path,
    mac_root: str | Path,
    work_dir: str | Path,
    model: str = "NATAL",
    main_view: str = "last",
    aux_views: tuple[str, ...] = ("first", "mta", "linear", "cartesian"),
    seed: int = 2026,
    lamda: float = 0.1,
    train_clicks: int | None = None,
    timeout_s: float = 3600.0,
    threads: int = 2,
) -> PyMALResult:
    """Preprocess ``mac_root`` with PyMAL and train/test ``model`` there; returns its printed metrics."""
    why = pymal_available(pymal_dir)
    if why:
        raise FileNotFoundError(why)
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    link = work / "data"
    mac = Path(mac_root).resolve()
    if not link.exists():
        link.mkdir()
        for sub in ("train", "test", "vocabs"):
            (link / sub).symlink_to(mac / sub)
    env = {**os.environ, "PYMAL_THREADS": str(threads), "PYMAL_WORKERS": "0"}
    shim = [sys.executable, "-m", "mercato.mal._pymal_shim", str(Path(pymal_dir).resolve())]
    pre_wall = 0.0
    if not (link / "cached" / "test.pkl").exists():
        _, pre_wall = _run([*shim, "preprocess.py", "--path", str(work) + "/"], work, timeout_s, env)
    args = ["--model", model, "--main_view", main_view, "--seed", str(seed), "--lamda", str(lamda)]
    if aux_views:
        args += ["--aux_views", *aux_views]
    log, wall = _run([*shim, "run.py", *args, "--path", str(work) + "/"], work, timeout_s, env)
    metrics = parse_pymal_output(log)
    if main_view not in metrics:
        raise RuntimeError(f"PyMAL {model} printed no test line for view {main_view!r}: {log[-2000:]}")
    m = re.search(r"SHIM_WALL_S ([0-9.]+)", log)
    wall = float(m[1]) if m else wall
    return PyMALResult(
        model=model,
        main_view=main_view,
        metrics=metrics,
        train_wall_s=wall,
        preprocess_wall_s=pre_wall,
        clicks_per_s=(train_clicks / wall) if train_clicks and wall > 0 else float("nan"),
        log=log[-4000:],
    )


@dataclass(frozen=True)
class PyMALRunConfig:
    """One PyMAL run: its model and views, and where its checkout is."""

    model: str = "NATAL"  # PyMAL model name (BASE, ShareBottom, MMoE, PLE, HoME, NATAL, MoAE)
    main_view: str = "last"  # primary attribution view
    aux_views: tuple[str, ...] = ("first", "mta", "linear", "cartesian")  # NATAL = MAL with CAT
    seed: int = 2026  # PyMAL --seed
    lamda: float = 0.1  # lambda of the auxiliary losses (PyMAL default)
    pymal_dir: str = "scratch/PyMAL"  # checkout of github.com/alimama-tech/PyMAL (commit 3186be8)
    threads: int = 2  # torch threads of the PyMAL process


def fit_pymal(config: PyMALRunConfig, data: SimSpec) -> dict[str, Any]:
    """Train and test a PyMAL model on the simulated MAC folder of ``data``; AUC/GAUC per view and clicks/s."""
    root = ensure_mac(data)
    stats = json.loads((root / "sim.json").read_text())["stats"]
    work = root.parent / "pymal" / root.name
    res = run_pymal(
        config.pymal_dir,
        root,
        work,
        model=config.model,
        main_view=config.main_view,
        aux_views=config.aux_views,
        seed=config.seed,
        lamda=config.lamda,
        train_clicks=stats["train_clicks"],
        threads=config.threads,
    )
    primary = res.metrics[config.main_view]
    return {
        "auc": primary["auc"],
        "gauc": primary["gauc"],
        "views": res.metrics,
        "train_clicks": stats["train_clicks"],
        "test_clicks": stats["test_clicks"],
        "wall_s": res.train_wall_s,
        "clicks_per_s": res.clicks_per_s if math.isfinite(res.clicks_per_s) else None,
    }

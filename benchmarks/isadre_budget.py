"""Does ISA-DRE's one-step deficit shrink with more training? MI estimates at several step and batch budgets.

The MI benchmark (``benchmarks/isadre.py``) trains every network for the same 2000 optimiser steps, the CPU
budget of this project, against the 20k-200k iterations of the DRE-infinity MI experiments. This diagnostic
refits ISA-DRE and DRE-infinity with the benchmark's setting at several budgets, each a number of optimiser steps
and a batch size (the cosine schedule and the CIA ramp stretch with the steps), and reports their estimates side by
side:

- ISA-DRE with 1, 2 and 4 steps, DRE-infinity with 100 trapezoid steps; the truth is d/4;
- fit seconds per model.

It runs on validation seeds (101, 102: the MI problem drawn with other seeds than the benchmark's test seeds
0-2), so what it shows may inform choices without touching the test seeds.

    python benchmarks/isadre_budget.py           # d in {80, 160}, seed 101, steps x batch 2000x2048, 6000x2048,
                                                 # 2000x4096; docs/
    python benchmarks/isadre_budget.py --quick   # d = 10, 150x1024 and 400x1024; prints only

Split over processes with ``--dims``/``--budgets``/``--out`` and merge with ``--merge a.json,b.json``. The cache
key leaves out the benchmark's own step and batch numbers, so a change of those reuses the cells.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mercato.core.results import markdown_table, update_markdown_section

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("isadre_bench", ROOT / "benchmarks" / "isadre.py")
bench = importlib.util.module_from_spec(_spec)  # the MI benchmark: its setting and helpers
assert _spec.loader is not None
_spec.loader.exec_module(bench)

COLUMNS = (
    ("isa@1", "ISA-DRE, 1 step"),
    ("isa@2", "ISA-DRE, 2 steps"),
    ("isa@4", "ISA-DRE, 4 steps"),
    ("dre_inf@100", "DRE-∞, trapezoid 100"),
)


def run_cell(setting: dict[str, Any], d: int, seed: int, n_iters: int, batch: int) -> dict[str, Any]:
    """Fit both path estimators with ``n_iters`` steps of ``batch`` pairs on the benchmark's (d, seed) problem."""
    budget = {**setting, "train": {**setting["train"], "n_iters": n_iters, "batch_size": batch}}
    t0 = time.perf_counter()
    res = bench.run_one(budget, d, seed, ["isa", "dre_inf"])
    out = {key: {"mi": res[key]["mi"], "fit_seconds": res[key]["fit_seconds"]} for key, _ in COLUMNS}
    out["seconds"] = time.perf_counter() - t0
    return out


def parse_budget(text: str) -> tuple[int, int]:
    """'2000x4096' -> (2000 steps, 4096 pairs per step)."""
    steps, _, batch = text.partition("x")
    if not (steps.isdigit() and batch.isdigit()):
        raise ValueError(f"a budget is STEPSxBATCH, e.g. 2000x4096; got {text!r}")
    return int(steps), int(batch)


def _cells(res: dict[str, Any], d: int, budget: str) -> list[dict[str, Any]]:
    return [c for k, c in sorted(res["cells"].items()) if k.startswith(f"{d}/") and k.endswith(f"/{budget}")]


def report(res: dict[str, Any]) -> str:
    """The docs block: one row per (d, budget), the mean estimate and its error for each method."""
    dims = sorted({int(k.split("/")[0]) for k in res["cells"]})
    budgets = sorted({k.split("/")[2] for k in res["cells"]}, key=lambda b: parse_budget(b)[::-1])
    seeds = sorted({int(k.split("/")[1]) for k in res["cells"]})
    rows = []
    for d in dims:
        for budget in budgets:
            cells = _cells(res, d, budget)
            if not cells:
                continue
            n_iters, batch = parse_budget(budget)
            row = [f"{d} (MI {d / 4:g})", str(n_iters), str(batch)]
            for key, _ in COLUMNS:
                mi = float(np.mean([c[key]["mi"] for c in cells]))
                row.append(f"{mi:.2f} ({mi - d / 4:+.2f})")
            fit = [np.mean([c[key]["fit_seconds"] for c in cells]) for key in ("isa@1", "dre_inf@100")]
            row.append(f"{fit[0]:.0f} / {fit[1]:.0f}")
            rows.append(row)
    table = markdown_table(
        ["d", "steps", "batch"] + [name for _, name in COLUMNS] + ["fit s (ISA / DRE-∞)"], rows
    )
    return (
        f"Mean MI estimate (error against d/4 in brackets), validation seeds {seeds}, the MI benchmark's "
        f"{res['mode']} setting except the number of optimiser steps and the batch "
        "(`python benchmarks/isadre_budget.py`); "
        "fit seconds on a shared 2-core CPU, one thread per process:\n\n" + table
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="d = 10, 150 and 400 steps; never writes docs/")
    parser.add_argument(
        "--budgets", default=None, help="comma list of STEPSxBATCH (default 2000x2048,6000x2048,2000x4096)"
    )
    parser.add_argument("--dims", default=None, help="comma list of d (default 80,160; quick 10)")
    parser.add_argument("--seeds", default="101", help="comma list of seeds (validation: not 0-2)")
    parser.add_argument("--out", default=None, help="results JSON (default runs/isadre_bench/budget.json)")
    parser.add_argument("--merge", default="", help="comma list of result JSONs to merge (same setting)")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/isadre.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    setting = bench.QUICK if args.quick else bench.FULL
    dims = [int(s) for s in (args.dims or ("10" if args.quick else "80,160")).split(",") if s]
    default_budgets = "150x1024,400x1024" if args.quick else "2000x2048,6000x2048,2000x4096"
    budgets = [s for s in (args.budgets or default_budgets).split(",") if s]
    for budget in budgets:
        parse_budget(budget)  # fail before any fit
    seeds = [int(s) for s in args.seeds.split(",") if s]
    out = Path(
        args.out or ROOT / "runs" / "isadre_bench" / ("budget_quick.json" if args.quick else "budget.json")
    )
    varied = {k: v for k, v in setting["train"].items() if k not in ("n_iters", "batch_size")}  # set per cell
    fingerprint = json.dumps(
        {"setting": {**setting, "train": varied}, "path": bench.PATH}, sort_keys=True, default=str
    )
    res: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if res.get("fingerprint") != fingerprint:
        res = {"fingerprint": fingerprint, "cells": {}}
    for part in (p for p in args.merge.split(",") if p):
        other = json.loads(Path(part).read_text())
        if other.get("fingerprint") != fingerprint:
            raise SystemExit(f"{part} was written with another setting; rerun it")
        res["cells"].update(other["cells"])
    for d in dims if not args.merge else []:
        for seed in seeds:
            for budget in budgets:
                key = f"{d}/{seed}/{budget}"
                if key not in res["cells"]:
                    res["cells"][key] = run_cell(setting, d, seed, *parse_budget(budget))
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(res, indent=1))
    res["mode"] = "quick" if args.quick else "full"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    body = report(res)
    print(body)
    if not args.quick and not args.no_docs:
        update_markdown_section(ROOT / "docs" / "isadre.md", "isadre-budget", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

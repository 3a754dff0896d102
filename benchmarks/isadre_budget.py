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
    python benchmarks/isadre_budget.py --quick   # d = 10, 150x1024 and 400x1024; runs/bench/isadre_budget-quick/

One cached run per (d, seed, budget) (:mod:`mercato.core.experiments`); split with ``--dims``/``--budgets`` or
``--shard i/n`` on the same ``--root`` and report with a final call.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from mercato.core.experiments import Experiment, Run, add_runner_args, describe, machine_line
from mercato.core.results import markdown_table
from mercato.isadre import bench

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = (
    ("isa@1", "ISA-DRE, 1 step"),
    ("isa@2", "ISA-DRE, 2 steps"),
    ("isa@4", "ISA-DRE, 4 steps"),
    ("dre_inf@100", "DRE-∞, trapezoid 100"),
)


def declare(setting: dict[str, Any], dims: list[int], seeds: list[int], budgets: list[str]) -> list[Run]:
    return [
        Run(
            f"budget/d{d}/s{s}/{b}",
            bench.fit_mi,
            bench.budget_config(setting, *bench.parse_budget(b)),
            bench.mi_data(setting, d, s),
            group=f"{d}/{b}",
        )
        for d in dims
        for s in seeds
        for b in budgets
    ]


def report(
    exp: Experiment,
    results: dict[str, Any],
    setting: dict[str, Any],
    dims: list[int],
    seeds: list[int],
    budgets: list[str],
) -> str:
    """The docs block: one row per (d, budget), the mean estimate and its error for each method."""
    rows = []
    for d in dims:
        for budget in sorted(budgets, key=lambda b: bench.parse_budget(b)[::-1]):
            cells = [results[f"budget/d{d}/s{s}/{budget}"] for s in seeds]
            n_iters, batch = bench.parse_budget(budget)
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
    train = {k: v for k, v in setting["train"].items() if k not in ("n_iters", "batch_size")}
    return (
        f"Mean MI estimate (error against d/4 in brackets), validation seeds {seeds}, "
        f"{setting['n_train']} training samples per distribution, {setting['n_test']} test points; the MI "
        f"benchmark's {'quick' if exp.quick else 'full'} setting except the number of optimiser steps and the "
        f"batch ({describe(train)}; `python benchmarks/isadre_budget.py`). Fit seconds per model, "
        f"{machine_line(exp.all_meta())}\n\n" + table
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--budgets", default=None, help="comma list of STEPSxBATCH (default 2000x2048,6000x2048,2000x4096)"
    )
    parser.add_argument("--dims", default=None, help="comma list of d (default 80,160; quick 10)")
    parser.add_argument("--seeds", default="101", help="comma list of seeds (validation: not 0-2)")
    add_runner_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    if args.threads is None:
        args.threads = 1
    setting = bench.QUICK if args.quick else bench.FULL
    dims = [int(s) for s in (args.dims or ("10" if args.quick else "80,160")).split(",") if s]
    default_budgets = "150x1024,400x1024" if args.quick else "2000x2048,6000x2048,2000x4096"
    budgets = [s for s in (args.budgets or default_budgets).split(",") if s]
    for budget in budgets:
        bench.parse_budget(budget)  # fail before any fit
    seeds = [int(s) for s in args.seeds.split(",") if s]
    exp = Experiment.from_args("isadre_budget", args, code=("mercato.core", "mercato.isadre"), repo=ROOT)
    results = exp.run(declare(setting, dims, seeds, budgets))
    if not exp.complete:
        return 0
    body = report(exp, results, setting, dims, seeds, budgets)
    print(body)
    exp.write_json("results.json", {"cells": {k.removeprefix("budget/"): v for k, v in results.items()}})
    exp.report({"docs/isadre.md": {"isadre-budget": body}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

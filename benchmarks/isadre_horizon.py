"""Where along t do the path estimators err? Cumulative log ratio int_eps^T tau(x, s) ds against the exact one.

The MI benchmark (``benchmarks/isadre.py``) reports one number per estimate, the integral over [eps, 1 - eps].
This diagnostic fits ISA-DRE and DRE-infinity once per seed with the same setting (d = 40 by default) and splits
that integral along t, on the benchmark's test points from p:

- cumulative ``C(T) = int_eps^T tau(x, s) ds`` for T from 0.25 to 1 - eps: ISA-DRE with one evaluation,
  (T - eps) u(x, eps, T); DRE-infinity by the trapezoid rule with 100 intervals on [eps, T]; the exact value
  log p_T(x) - log p_eps(x) of the Gaussian path;
- the four intervals of ISA-DRE's 4-step warped grid, each estimated the same way;
- the relative training weight at T: the mean of lambda = 1 / Var[tau_c | pair, t] over (q, p) pairs, divided
  by its largest value over the listed T (how much the CTSM objective cares about each time).

It runs on validation seeds (101, 102: the MI problem drawn with other seeds than the MI benchmark's test seeds
0-2), so what it shows may inform choices without touching the test seeds.

    python benchmarks/isadre_horizon.py              # d = 40, seeds 101 and 102, full setting; writes docs/
    python benchmarks/isadre_horizon.py --quick      # d = 10, tiny setting; runs/bench/isadre_horizon-quick/

One cached run per seed (:mod:`mercato.core.experiments`): split over processes with ``--seeds 101`` and
``--seeds 102`` on the same ``--root`` (or ``--shard i/2``), then a final call reports from the shared cache.
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
from mercato.isadre import PathConfig, bench

ROOT = Path(__file__).resolve().parents[1]


def _mean(runs: list[dict[str, Any]], section: str, i: int, key: str) -> float:
    return float(np.mean([r[section][i][key] for r in runs]))


def report(res: dict[str, Any], exp: Experiment) -> str:
    """The docs block: cumulative table and 4-step table, means over the seeds."""
    runs = [res["seeds"][s] for s in sorted(res["seeds"])]
    rows = []
    for i, T in enumerate(bench.HORIZONS):
        label = "1 − ε" if T == 1.0 else f"{T:g}"
        rows.append(
            [
                label,
                f"{_mean(runs, 'cumulative', i, 'exact'):.3f}",
                f"{_mean(runs, 'cumulative', i, 'isa'):.3f}",
                f"{_mean(runs, 'cumulative', i, 'dre'):.3f}",
                f"{res['weight'][i]:.2g}",
            ]
        )
    cum = markdown_table(
        ["T", "exact", "ISA-DRE, 1 evaluation", "DRE-∞, trapezoid 100", "relative weight λ(T)"], rows
    )
    rows = []
    for i, part in enumerate(runs[0]["four_step"]):
        rows.append(
            [
                f"[{part['l']:.3g}, {'1 − ε' if part['t'] > 1 - 1e-3 else format(part['t'], '.3g')}]",
                f"{_mean(runs, 'four_step', i, 'exact'):.3f}",
                f"{_mean(runs, 'four_step', i, 'isa'):.3f}",
                f"{_mean(runs, 'four_step', i, 'dre'):.3f}",
            ]
        )
    four = markdown_table(["interval", "exact", "ISA-DRE secant", "DRE-∞, trapezoid 25"], rows)
    return (
        f"Mean over {res['n_test']} points from p, validation seeds {sorted(int(s) for s in res['seeds'])}, "
        f"d = {res['dim']} (MI {res['dim'] / 4:g}), the MI benchmark's {res['mode']} setting (path networks: "
        f"{describe(res['train'])}; `python benchmarks/isadre_horizon.py`). {machine_line(exp.all_meta())} "
        "Cumulative log ratio ∫_ε^T τ(x, s) ds:\n\n"
        + cum
        + "\n\nThe four intervals of the 4-step grid (their sum is the 4-step estimate):\n\n"
        + four
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dim", type=int, default=None, help="d of the MI problem (default 40; quick 10)")
    parser.add_argument("--seeds", default="101,102", help="comma list of seeds (validation: not 0-2)")
    add_runner_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    if args.threads is None:
        args.threads = 1
    setting = bench.QUICK if args.quick else bench.FULL
    d = args.dim or (10 if args.quick else 40)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    cfg = bench.fit_config(setting, ("isa", "dre_inf"))
    exp = Experiment.from_args("isadre_horizon", args, code=("mercato.core", "mercato.isadre"), repo=ROOT)
    runs = [
        Run(f"horizon/d{d}/s{s}", bench.horizon_seed, cfg, bench.mi_data(setting, d, s), group=f"s{s}")
        for s in seeds
    ]
    got = exp.run(runs)
    if not exp.complete:
        return 0
    path = PathConfig(**cfg.path)
    res = {
        "dim": d,
        "mode": "quick" if args.quick else "full",
        "n_test": setting["n_test"],
        "train": dict(cfg.train),
        "seeds": {str(s): got[f"horizon/d{d}/s{s}"] for s in seeds},
        "weight": bench.relative_weight(path, d, [min(T, 1.0 - path.t_eps) for T in bench.HORIZONS]),
    }
    exp.write_json("results.json", res)
    body = report(res, exp)
    print(body)
    exp.report({"docs/isadre.md": {"isadre-horizon": body}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

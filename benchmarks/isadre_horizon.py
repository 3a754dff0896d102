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
    python benchmarks/isadre_horizon.py --quick      # d = 10, tiny setting; prints only

Split over processes: ``--seeds 101 --no-docs --out runs/isadre_bench/h101.json`` (also 102), then
``--merge runs/isadre_bench/h101.json,runs/isadre_bench/h102.json``.
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
from mercato.isadre import ISADRE, ISADREConfig, TimeScoreDRE, TimeScoreDREConfig, correlated_gaussian_pair
from mercato.isadre.losses import warped_grid
from mercato.isadre.paths import sample_path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("isadre_bench", ROOT / "benchmarks" / "isadre.py")
bench = importlib.util.module_from_spec(_spec)  # the MI benchmark: its setting and helpers
assert _spec.loader is not None
_spec.loader.exec_module(bench)

HORIZONS = (0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)  # 1.0 stands for 1 - eps, the end of every query


def _trapezoid(est: TimeScoreDRE, x: np.ndarray, a: float, b: float, k: int) -> np.ndarray:
    """int_a^b tau(x, s) ds by the trapezoid rule on k intervals, (n,)."""
    grid = np.linspace(a, b, k + 1)
    return np.trapezoid(np.stack([est.time_score(x, float(t)) for t in grid]), grid, axis=0)


def relative_weight(d: int, times: list[float], n: int = 20_000, seed: int = 0) -> list[float]:
    """Mean CTSM weight 1/Var[tau_c | pair, t] at each t over n (q, p) pairs, divided by its maximum."""
    pair = correlated_gaussian_pair(d)
    rng = np.random.default_rng(seed)
    x1, x0 = torch.as_tensor(pair.sample_p(n, rng)), torch.as_tensor(pair.sample_q(n, rng))
    noise = torch.as_tensor(rng.standard_normal((n, d)))
    out = []
    for t in times:
        s = sample_path(bench._path(), x0, x1, torch.full((n,), t, dtype=torch.float64), noise)
        out.append(float((1.0 / s.target_var).mean()))
    top = max(out)
    return [w / top for w in out]


def run_seed(setting: dict[str, Any], d: int, seed: int) -> dict[str, Any]:
    """Fit both path estimators on the MI benchmark's (d, seed) problem; cumulative and 4-step splits."""
    pair, X_p, X_q, X_test = bench.problem(setting, d, seed)  # the same draws as benchmarks/isadre.py
    path = bench._path()
    isa = ISADRE(ISADREConfig(path=path, train=bench._train(setting, seed, isa=True), **setting["isa"]))
    dre = TimeScoreDRE(TimeScoreDREConfig(path=path, train=bench._train(setting, seed)))
    t0 = time.perf_counter()
    isa.fit(X_p, X_q)
    dre.fit(X_p, X_q)
    eps = path.t_eps
    x = torch.as_tensor(X_test)

    def exact(a: float, b: float) -> float:
        return float((pair.log_prob_t(x, b, path) - pair.log_prob_t(x, a, path)).mean())

    cum = []
    for T in HORIZONS:
        b = min(T, 1.0 - eps)
        cum.append(
            {
                "T": T,
                "exact": exact(eps, b),
                "isa": float(((b - eps) * isa.secant(X_test, eps, b)).mean()),
                "dre": float(_trapezoid(dre, X_test, eps, b, 100).mean()),
            }
        )
    grid = [float(g) for g in warped_grid(4, isa.cfg.grid_a, isa.cfg.grid_b, eps, path.query_end)]
    parts = []
    for a, b in zip(grid[:-1], grid[1:], strict=True):
        parts.append(
            {
                "l": a,
                "t": b,
                "exact": exact(a, b),
                "isa": float(((b - a) * isa.secant(X_test, a, b)).mean()),
                "dre": float(_trapezoid(dre, X_test, a, b, 25).mean()),
            }
        )
    return {"cumulative": cum, "four_step": parts, "fit_seconds": time.perf_counter() - t0}


def _mean(runs: list[dict[str, Any]], section: str, i: int, key: str) -> float:
    return float(np.mean([r[section][i][key] for r in runs]))


def report(res: dict[str, Any]) -> str:
    """The docs block: cumulative table and 4-step table, means over the seeds."""
    runs = [res["seeds"][s] for s in sorted(res["seeds"])]
    rows = []
    for i, T in enumerate(HORIZONS):
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
        f"Mean over {res['n_test']} points from p, validation seeds {sorted(int(s) for s in res['seeds'])}, d = {res['dim']} (MI "
        f"{res['dim'] / 4:g}), the MI benchmark's {res['mode']} setting (`python benchmarks/isadre_horizon.py`). "
        "Cumulative log ratio ∫_ε^T τ(x, s) ds:\n\n"
        + cum
        + "\n\nThe four intervals of the 4-step grid (their sum is the 4-step estimate):\n\n"
        + four
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="d = 10, tiny setting; never writes docs/")
    parser.add_argument("--dim", type=int, default=None, help="d of the MI problem (default 40; quick 10)")
    parser.add_argument("--seeds", default="101,102", help="comma list of seeds (validation: not 0-2)")
    parser.add_argument("--out", default=None, help="results JSON (default runs/isadre_bench/horizon.json)")
    parser.add_argument(
        "--merge", default=None, help="comma list of result JSONs (one per seed process) to add"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/ (a part of a split run)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    setting = bench.QUICK if args.quick else bench.FULL
    d = args.dim or (10 if args.quick else 40)
    seeds = [int(s) for s in args.seeds.split(",") if s]
    out = Path(
        args.out or ROOT / "runs" / "isadre_bench" / ("horizon_quick.json" if args.quick else "horizon.json")
    )
    fingerprint = json.dumps({"setting": setting, "path": bench.PATH, "dim": d}, sort_keys=True, default=str)
    res: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {}
    if res.get("fingerprint") != fingerprint:
        res = {"fingerprint": fingerprint, "dim": d, "seeds": {}}
    for extra in (args.merge or "").split(","):
        if extra:
            part = json.loads(Path(extra).read_text())
            if part.get("fingerprint") != fingerprint:
                raise SystemExit(f"{extra}: written with another setting or d; not merged")
            res["seeds"].update(part["seeds"])
    for seed in seeds:
        if str(seed) not in res["seeds"]:
            res["seeds"][str(seed)] = run_seed(setting, d, seed)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(res, indent=1))
    res["seeds"] = {s: r for s, r in res["seeds"].items() if int(s) in seeds}
    res["mode"] = "quick" if args.quick else "full"
    res["n_test"] = setting["n_test"]
    res["weight"] = relative_weight(d, [min(T, 1.0 - bench._path().t_eps) for T in HORIZONS])
    out.write_text(json.dumps(res, indent=1))
    body = report(res)
    print(body)
    if not (args.quick or args.no_docs):
        update_markdown_section(ROOT / "docs" / "isadre.md", "isadre-horizon", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

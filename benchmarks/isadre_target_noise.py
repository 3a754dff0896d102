"""How noisy is the regression target of the path estimators? Label noise of tau_c relative to the time score.

Both ISA-DRE and DRE-infinity regress onto the conditional time score tau_c, whose conditional mean given x_t is
the exact time score tau(x_t, t). This script measures, without any training, the ratio
``E[(tau_c - tau)^2] / E[tau^2]`` on the MI problem (correlated Gaussians, exact tau from
:class:`mercato.isadre.GaussianPair`) at fixed t, for the Gaussian reference and for the data bridge with the
old (gamma 0.01, eps 0.005) and the current default bridge noise. A ratio in the thousands means that a
regression of a few million samples cannot average the noise out.

    python benchmarks/isadre_target_noise.py            # d = 10, 400k pairs; writes the docs/isadre.md block
    python benchmarks/isadre_target_noise.py --quick    # 5k pairs; runs/bench/isadre_target_noise-quick/

One cached run per (path, t) (:mod:`mercato.core.experiments`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mercato.core.experiments import Experiment, Run, add_runner_args
from mercato.core.results import markdown_table
from mercato.isadre import PathConfig
from mercato.isadre.bench import NoiseCell, noise_cell

ROOT = Path(__file__).resolve().parents[1]
TIMES = (0.1, 0.5, 0.9)
PATHS = {
    "Gaussian reference (MI benchmark)": PathConfig(
        kind="trig", reference="gaussian", gamma=0.0, noise_eps=0.0
    ),
    "bridge, old noise (gamma 0.01, eps 0.005)": PathConfig(
        kind="trig", reference="data", gamma=0.01, noise_eps=0.005
    ),
    f"bridge, default noise (gamma {PathConfig.gamma:g}, eps {PathConfig.noise_eps:g})": PathConfig(
        kind="trig", reference="data"
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dim", type=int, default=10, help="d of the MI problem")
    add_runner_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads is None:
        args.threads = 1
    n = 5_000 if args.quick else 400_000
    exp = Experiment.from_args(
        "isadre_target_noise", args, code=("mercato.core", "mercato.isadre"), repo=ROOT
    )
    runs = {
        (name, t): Run(f"{name}/t{t}", noise_cell, cfg, NoiseCell(dim=args.dim, pairs=n, t=t))
        for name, cfg in PATHS.items()
        for t in TIMES
    }
    got = exp.run(list(runs.values()))
    if not exp.complete:
        return 0
    res = {name: {str(t): got[runs[(name, t)].name]["ratio"] for t in TIMES} for name in PATHS}
    rows = [[name, *(f"{v[str(t)]:,.1f}" for t in TIMES)] for name, v in res.items()]
    table = markdown_table(["path", *(f"t = {t}" for t in TIMES)], rows)
    print(table)
    exp.write_json("results.json", {"dim": args.dim, "pairs": n, "ratio": res})
    body = (
        f"Noise of the regression target relative to its signal, E[(τ_c − τ)²] / E[τ²], on the MI problem at "
        f"d = {args.dim} ({n:,} pairs per cell, no training; `python benchmarks/isadre_target_noise.py`):\n\n"
        + table
    )
    exp.report({"docs/isadre.md": {"isadre-target-noise": body}})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

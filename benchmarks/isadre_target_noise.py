"""How noisy is the regression target of the path estimators? Label noise of tau_c relative to the time score.

Both ISA-DRE and DRE-infinity regress onto the conditional time score tau_c, whose conditional mean given x_t is
the exact time score tau(x_t, t). This script measures, without any training, the ratio
``E[(tau_c - tau)^2] / E[tau^2]`` on the MI problem (correlated Gaussians, exact tau from
:class:`mercato.isadre.GaussianPair`) at fixed t, for the Gaussian reference and for the data bridge with the
old (gamma 0.01, eps 0.005) and the current default bridge noise. A ratio in the thousands means that a
regression of a few million samples cannot average the noise out.

    python benchmarks/isadre_target_noise.py            # d = 10, 400k pairs; writes the docs/isadre.md block
    python benchmarks/isadre_target_noise.py --quick    # 5k pairs, prints only
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mercato.core.results import markdown_table, update_markdown_section
from mercato.isadre import PathConfig, correlated_gaussian_pair
from mercato.isadre.paths import sample_path

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


def noise_to_signal(cfg: PathConfig, d: int, n: int, t: float, seed: int = 0) -> float:
    """``E[(tau_c - tau)^2] / E[tau^2]`` over n (q, p) pairs at time t (Monte Carlo, float64)."""
    pair = correlated_gaussian_pair(d)
    rng = np.random.default_rng(seed)
    x1, x0 = torch.as_tensor(pair.sample_p(n, rng)), torch.as_tensor(pair.sample_q(n, rng))
    noise = torch.as_tensor(rng.standard_normal((n, d)))
    tt = torch.full((n,), t, dtype=torch.float64)
    s = sample_path(cfg, x0, x1, tt, noise)
    exact = pair.time_score(s.xt, tt, cfg)  # (n,)
    return float(((s.target - exact) ** 2).mean() / (exact**2).mean())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="5k pairs; print only, never write docs/")
    parser.add_argument("--dim", type=int, default=10, help="d of the MI problem")
    parser.add_argument("--out", default=None, help="also write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    n = 5_000 if args.quick else 400_000
    res = {name: {str(t): noise_to_signal(cfg, args.dim, n, t) for t in TIMES} for name, cfg in PATHS.items()}
    rows = [[name, *(f"{v[str(t)]:,.1f}" for t in TIMES)] for name, v in res.items()]
    table = markdown_table(["path", *(f"t = {t}" for t in TIMES)], rows)
    print(table)
    if args.out:
        Path(args.out).write_text(json.dumps({"dim": args.dim, "pairs": n, "ratio": res}, indent=1))
    if not args.quick:
        body = (
            f"Noise of the regression target relative to its signal, E[(τ_c − τ)²] / E[τ²], on the MI problem at "
            f"d = {args.dim} ({n:,} pairs per cell, no training; `python benchmarks/isadre_target_noise.py`):\n\n"
            + table
        )
        update_markdown_section(ROOT / "docs" / "isadre.md", "isadre-target-noise", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

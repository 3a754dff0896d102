"""Non-program controls over the four greens of one demand: random search and CMA-ES (``cma``), digest F5.

Both tune a plan per scenario on the search seeds; each candidate plan is scored like a program's plans
(:func:`mercato.evolvesignal.evaluate.evaluate_plans`), so SUMO results are shared through the plan-hash cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mercato.evolvesignal.timing import PHASES, Geometry

__all__ = ["TunerConfig", "cma_search", "random_search"]


@dataclass
class TunerConfig:
    """Budget and box of a green-time tuner."""

    evaluations: int = 20  # plan evaluations per scenario
    max_green: float = 80.0  # upper bound of each green in the search box, s
    sigma0: float = 10.0  # CMA-ES initial step size, s
    popsize: int = 4  # CMA-ES population (lambda)
    seed: int = 0  # RNG seed


def _bounds(geometry: Geometry, max_green: float) -> tuple[np.ndarray, np.ndarray]:
    lo = np.array(
        [geometry.min_green_through if p.endswith("through") else geometry.min_green_left for p in PHASES]
    )
    return lo, np.full(4, max_green)


def _plan(x: np.ndarray) -> dict[str, float]:
    return {p: float(round(v, 1)) for p, v in zip(PHASES, x, strict=True)}


def random_search(
    score: Callable[[dict[str, float]], float], cfg: TunerConfig, start: dict[str, float]
) -> tuple[dict[str, float], list[float]]:
    """Uniform plans in the box; the best of ``evaluations`` (the start plan counts as the first)."""
    rng = np.random.default_rng(cfg.seed)
    lo, hi = _bounds(Geometry(), cfg.max_green)
    best, best_s = dict(start), score(start)
    curve = [best_s]
    for _ in range(cfg.evaluations - 1):
        plan = _plan(rng.uniform(lo, hi))
        s = score(plan)
        if s > best_s:
            best, best_s = plan, s
        curve.append(best_s)
    return best, curve


def cma_search(
    score: Callable[[dict[str, float]], float], cfg: TunerConfig, start: dict[str, float]
) -> tuple[dict[str, float], list[float]]:
    """CMA-ES (``cma.CMAEvolutionStrategy``) from the start plan, box-bounded, maximising the score."""
    import cma

    lo, hi = _bounds(Geometry(), cfg.max_green)
    x0 = np.clip(np.array([start[p] for p in PHASES]), lo, hi)
    es = cma.CMAEvolutionStrategy(
        x0,
        cfg.sigma0,
        {"bounds": [list(lo), list(hi)], "popsize": cfg.popsize, "seed": cfg.seed + 1, "verbose": -9},
    )
    best, best_s = dict(start), score(start)
    curve = [best_s]
    while len(curve) < cfg.evaluations:
        xs = es.ask()
        fs = []
        for x in xs:
            plan = _plan(np.asarray(x))
            s = score(plan) if len(curve) < cfg.evaluations else best_s
            if s > best_s:
                best, best_s = plan, s
            curve.append(best_s)
            fs.append(-s)
        es.tell(xs, fs)
    return best, curve[: cfg.evaluations]

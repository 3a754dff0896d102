"""Experiment logic of ``benchmarks/evolvesignal.py``: one function per run kind, returning JSON-able dicts."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from mercato.evolvesignal.baselines import TunerConfig, cma_search, random_search
from mercato.evolvesignal.config import EvaluationConfig, SearchConfig, SimConfig
from mercato.evolvesignal.evaluate import evaluate_plans, evaluate_program
from mercato.evolvesignal.executor import make_executor
from mercato.evolvesignal.programs import FIXED_SPLIT_PROGRAM, WEBSTER_PROGRAM
from mercato.evolvesignal.search import Search
from mercato.evolvesignal.sim import run_plan, scenario_flows
from mercato.evolvesignal.timing import webster_timing

__all__ = [
    "ReportSpec",
    "SpeedSpec",
    "TuneSpec",
    "TunerConfig",
    "report_one",
    "search_one",
    "speed_one",
    "tune_one",
]


def search_one(config: SearchConfig, data: Any = None) -> dict[str, Any]:
    """Run the program search; the best program, its search fitness and the best-so-far curve."""
    t0 = time.time()
    s = Search(config)
    best = s.run()
    return {
        "code": best["code"],
        "score": best["score"],
        "history": s.history,
        "evaluations": len(s.memo),
        "valid": sum(1 for p in s.programs.values() if p["ok"]),
        "children": len(s.programs) - config.islands,
        "edits": s.edits,
        "wall_s": time.time() - t0,
    }


@dataclass
class TuneSpec:
    """A green-time tuner on one scenario."""

    method: str = "cma"  # 'cma' or 'random'
    scenario: str = "balanced"  # the demand tuned on
    tuner: TunerConfig = field(default_factory=TunerConfig)  # budget


def tune_one(config: EvaluationConfig, data: TuneSpec) -> dict[str, Any]:
    """Tune the four greens of one scenario on the search seeds, starting from Webster's plan."""
    ev = replace(config, scenarios=(data.scenario,))

    def score(plan: dict[str, float]) -> float:
        return float(evaluate_plans({data.scenario: plan}, ev)["score"])

    start = webster_timing(scenario_flows(data.scenario))
    fn = cma_search if data.method == "cma" else random_search
    plan, curve = fn(score, data.tuner, start)
    return {"plan": plan, "curve": curve}


@dataclass
class ReportSpec:
    """One method on one scenario, on held-out seeds: a program's source, or a fixed plan."""

    method: str = "webster"
    scenario: str = "balanced"
    code: str = ""  # program source ('' when ``plan`` is given)
    plan: dict[str, float] = field(default_factory=dict)  # a fixed plan (tuners)


def report_one(config: EvaluationConfig, data: ReportSpec) -> dict[str, Any]:
    """Delay, stops and fitness of a method on one scenario over the report seeds."""
    if data.code:
        r = evaluate_program(data.code, config, scenarios=(data.scenario,))
    else:
        r = evaluate_plans({data.scenario: data.plan}, replace(config, scenarios=(data.scenario,)))
    return {k: r[k] for k in ("ok", "score", "delay", "stops", "reason")} | {"plans": r.get("plans", {})}


@dataclass
class SpeedSpec:
    """Throughput of SUMO evaluations: a backend and a number of worker processes."""

    backend: str = "libsumo"
    workers: int = 1
    runs: int = 4  # evaluations timed (distinct seeds, no cache), after the workers are started


def _one_run(args: tuple[dict[str, float], int, SimConfig]) -> float:
    plan, seed, sim = args
    return float(run_plan(plan, "balanced", seed, sim, use_cache=False)["delay"])


def _warm(i: int) -> int:
    import libsumo  # noqa: F401  (the import is part of a worker's start-up cost, not of an evaluation)

    return i


def speed_one(config: SimConfig, data: SpeedSpec) -> dict[str, Any]:
    """SUMO evaluations per minute of the Webster plan on 'balanced' with a backend and a worker count."""
    sim = replace(config, backend=data.backend)  # type: ignore[arg-type]
    plan = webster_timing(scenario_flows("balanced"))
    ex = make_executor("process", data.workers)
    try:
        ex.map(_warm, list(range(data.workers)))  # start (and import in) the workers before timing
        t0 = time.perf_counter()
        delays = ex.map(_one_run, [(plan, 1000 + i, sim) for i in range(data.runs)])
        wall = time.perf_counter() - t0
    finally:
        ex.close()
    return {"per_minute": 60.0 * data.runs / wall, "wall_s": wall, "delays": delays}


BASELINE_PROGRAMS = {"webster": WEBSTER_PROGRAM, "fixed_100s": FIXED_SPLIT_PROGRAM}

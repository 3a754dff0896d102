"""Fitness of a program or of fixed plans: sandboxed call, then SUMO (or the surrogate) on scenarios x seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mercato.evolvesignal.config import EvaluationConfig
from mercato.evolvesignal.sandbox import run_program
from mercato.evolvesignal.sim import fitness, run_plan, scenario_flows
from mercato.evolvesignal.timing import surrogate_metrics

__all__ = ["evaluate_plans", "evaluate_program"]


def evaluate_plans(plans: Mapping[str, Mapping[str, float]], cfg: EvaluationConfig) -> dict[str, Any]:
    """Average delay, stops and combined score of one plan per scenario over ``cfg.scenarios`` x ``cfg.seeds``."""
    runs = []
    for sc in cfg.scenarios:
        for seed in cfg.seeds:
            if cfg.fitness == "surrogate":
                m = surrogate_metrics(scenario_flows(sc), plans[sc])
                runs.append({"scenario": sc, "seed": seed, "delay": m["delay"], "stops": m["stops"]})
            else:
                r = run_plan(plans[sc], sc, seed, cfg.sim)
                runs.append(
                    {k: r[k] for k in ("scenario", "seed", "delay", "stops", "vehicles", "unfinished")}
                )
    delay = float(np.mean([r["delay"] for r in runs]))
    stops = float(np.mean([r["stops"] for r in runs]))
    cycles = [sum(p.values()) + 16.0 for p in plans.values()]
    return {
        "ok": True,
        "score": fitness(delay, stops),
        "delay": delay,
        "stops": stops,
        "mean_cycle": float(np.mean(cycles)),
        "plans": {k: dict(v) for k, v in plans.items()},
        "runs": runs,
        "reason": "",
    }


def evaluate_program(
    source: str, cfg: EvaluationConfig, scenarios: Sequence[str] | None = None
) -> dict[str, Any]:
    """Run the program in the sandbox on every scenario's demand, then score its plans; a failure scores 0."""
    names = tuple(scenarios) if scenarios is not None else cfg.scenarios
    res = run_program(source, [scenario_flows(s) for s in names], cfg.sandbox)
    if not res.ok:
        return {
            "ok": False,
            "score": 0.0,
            "delay": float("nan"),
            "stops": float("nan"),
            "mean_cycle": 0.0,
            "reason": res.reason,
        }
    sub = EvaluationConfig(
        scenarios=names, seeds=cfg.seeds, fitness=cfg.fitness, sim=cfg.sim, sandbox=cfg.sandbox
    )
    try:
        return evaluate_plans(dict(zip(names, res.plans, strict=True)), sub)
    except RuntimeError as err:  # a failed SUMO run scores the candidate 0 (B3)
        return {
            "ok": False,
            "score": 0.0,
            "delay": float("nan"),
            "stops": float("nan"),
            "mean_cycle": 0.0,
            "reason": f"sumo: {err}",
        }

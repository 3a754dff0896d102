"""Experiment logic of ``benchmarks/evolvesignal.py``: one function per run kind, returning JSON-able dicts."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field, replace
from typing import Any

from mercato.evolvesignal.baselines import TunerConfig, cma_search, random_search
from mercato.evolvesignal.config import EvaluationConfig, SearchConfig, SimConfig
from mercato.evolvesignal.evaluate import evaluate_plans, evaluate_program
from mercato.evolvesignal.executor import make_executor
from mercato.evolvesignal.mutate import (
    DiffError,
    OfflineMutator,
    OpenAICompatibleLLM,
    apply_diff,
    build_prompt,
)
from mercato.evolvesignal.programs import FIXED_SPLIT_PROGRAM, WEBSTER_PROGRAM
from mercato.evolvesignal.search import Search
from mercato.evolvesignal.sim import run_plan, scenario_flows
from mercato.evolvesignal.timing import webster_timing

__all__ = [
    "LLMSpec",
    "ReportSpec",
    "SpeedSpec",
    "TuneSpec",
    "TunerConfig",
    "report_one",
    "search_one",
    "speed_one",
    "llm_edits_one",
    "llm_search_one",
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
        "counts": s.counts,
        "wall_s": time.time() - t0,
    }


@dataclass
class LLMSpec:
    """The packaged SmolLM2 served on 127.0.0.1 (mercato.llm.openai_server) as the mutation operator."""

    mutations: int = 24  # edits asked for (llm_edits_one)
    parents: int = 4  # distinct parent programs cycled through: the Webster seed and offline mutants of it
    max_tokens: int = 256  # completion limit per edit
    temperature: float = 0.6  # sampling temperature (paper: 0.6)
    threads: int = 1  # torch threads of the server
    seed: int = 0  # torch seed of the server, RNG of the parents


def _serve(spec: LLMSpec) -> Any:
    from mercato.llm.openai_server import LocalOpenAIServer

    return LocalOpenAIServer("smollm2", threads=spec.threads, seed=spec.seed)


def _classify(err: Exception) -> str:
    text = str(err)
    return "no SEARCH/REPLACE block" if "no SEARCH" in text else "SEARCH text not in the program"


def llm_edits_one(config: EvaluationConfig, data: LLMSpec) -> dict[str, Any]:
    """Ask the served SmolLM2 for ``mutations`` edits; count answers with an applicable edit, children that change
    the program, children the sandbox accepts (valid plans), and surrogate improvements; seconds per edit."""
    rng = random.Random(data.seed)
    mut = OfflineMutator()
    parents = [WEBSTER_PROGRAM]
    while len(parents) < data.parents:
        parents.append(apply_diff(WEBSTER_PROGRAM, mut.propose(WEBSTER_PROGRAM, None, rng, 0.0)))
    parent_metrics = [evaluate_program(p, config) for p in parents]
    counts = {"asked": 0, "applied": 0, "changed": 0, "valid": 0, "improved": 0}
    reasons: dict[str, int] = {}
    seconds: list[float] = []
    samples: list[str] = []
    with _serve(data) as server:
        llm = OpenAICompatibleLLM(
            base_url=server.base_url, model="smollm2", temperature=data.temperature, max_tokens=data.max_tokens,
            timeout_s=600.0,
        )  # fmt: skip
        for i in range(data.mutations):
            parent, pm = parents[i % len(parents)], parent_metrics[i % len(parents)]
            prompt = build_prompt(parent, {k: pm[k] for k in ("score", "delay", "stops")})
            t0 = time.perf_counter()
            answer = llm.complete(prompt)
            seconds.append(time.perf_counter() - t0)
            counts["asked"] += 1
            if len(samples) < 3:
                samples.append(answer[:600])
            try:
                child = apply_diff(parent, answer)
            except DiffError as err:
                reasons[_classify(err)] = reasons.get(_classify(err), 0) + 1
                continue
            counts["applied"] += 1
            if child == parent:
                reasons["edit leaves the program unchanged"] = (
                    reasons.get("edit leaves the program unchanged", 0) + 1
                )
                continue
            counts["changed"] += 1
            r = evaluate_program(child, config)
            if not r["ok"]:
                key = "sandbox: " + str(r["reason"]).split(":")[0][:60]
                reasons[key] = reasons.get(key, 0) + 1
                continue
            counts["valid"] += 1
            counts["improved"] += int(r["score"] > pm["score"])
        startup = server.startup_s
    return {
        "counts": counts,
        "reasons": reasons,
        "seconds": seconds,
        "samples": samples,
        "startup_s": startup,
    }


def llm_search_one(config: SearchConfig, data: LLMSpec) -> dict[str, Any]:
    """A short search with the served SmolLM2 as the mutator (``config.mutator`` must be 'llm')."""
    t0 = time.time()
    with _serve(data) as server:
        old = {k: os.environ.get(k) for k in ("MERCATO_LLM_BASE_URL", "MERCATO_LLM_MODEL")}
        os.environ.update(MERCATO_LLM_BASE_URL=server.base_url, MERCATO_LLM_MODEL="smollm2")
        try:
            s = Search(config)
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        s.mutator.max_tokens, s.mutator.temperature, s.mutator.timeout_s = (
            data.max_tokens,
            data.temperature,
            600.0,
        )
        best = s.run()
    return {
        "code": best["code"],
        "score": best["score"],
        "history": s.history,
        "edits": s.edits,
        "counts": s.counts,
        "valid": sum(1 for p in s.programs.values() if p["ok"]) - config.islands,
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

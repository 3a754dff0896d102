"""EvolveSignal: evolutionary program search for fixed-time traffic-signal timing, evaluated in SUMO (arXiv 2509.03335).

>>> from mercato.evolvesignal import Search, SearchConfig, evaluate_program, webster_timing, WEBSTER_PROGRAM
"""

from mercato.evolvesignal.baselines import TunerConfig, cma_search, random_search
from mercato.evolvesignal.config import EvaluationConfig, SearchConfig, SimConfig
from mercato.evolvesignal.evaluate import evaluate_plans, evaluate_program
from mercato.evolvesignal.executor import LocalExecutor, RayExecutor, make_executor
from mercato.evolvesignal.mutate import OfflineMutator, OpenAICompatibleLLM, apply_diff
from mercato.evolvesignal.programs import FIXED_SPLIT_PROGRAM, WEBSTER_PROGRAM
from mercato.evolvesignal.sandbox import SandboxConfig, SandboxResult, run_program
from mercato.evolvesignal.search import Search
from mercato.evolvesignal.sim import SCENARIOS, fitness, run_plan
from mercato.evolvesignal.timing import (
    PlanError,
    fixed_split_timing,
    surrogate_metrics,
    validate_plan,
    webster_timing,
)

__all__ = [
    "EvaluationConfig",
    "FIXED_SPLIT_PROGRAM",
    "LocalExecutor",
    "OfflineMutator",
    "OpenAICompatibleLLM",
    "PlanError",
    "RayExecutor",
    "SCENARIOS",
    "SandboxConfig",
    "SandboxResult",
    "Search",
    "SearchConfig",
    "SimConfig",
    "TunerConfig",
    "WEBSTER_PROGRAM",
    "apply_diff",
    "cma_search",
    "evaluate_plans",
    "evaluate_program",
    "fitness",
    "fixed_split_timing",
    "make_executor",
    "random_search",
    "run_plan",
    "run_program",
    "surrogate_metrics",
    "validate_plan",
    "webster_timing",
]

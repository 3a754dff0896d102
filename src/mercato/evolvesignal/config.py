"""Configs of the EvolveSignal harness and search (one dataclass per part; symbols refer to docs/evolvesignal.md).

EvolveSignal: Wang et al., "EvolveSignal: A Large Language Model Powered Coding Agent for Discovering Traffic
Signal Control Algorithms", arXiv 2509.03335. Section labels (B2, B3, ...) refer to the paper digest parts
reproduced in ``docs/evolvesignal.md``; the paper's own equation numbers could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mercato.evolvesignal.sandbox import SandboxConfig

__all__ = ["EvaluationConfig", "SearchConfig", "SimConfig"]


@dataclass
class SimConfig:
    """One SUMO run of a fixed-time plan at the single 4-arm intersection (digest B3)."""

    backend: Literal["libsumo", "traci"] = "libsumo"  # libsumo in-process (default) or TraCI over a socket
    horizon_s: int = 1800  # demand horizon: Poisson arrivals for this many seconds (paper: 1800 s)
    drain_s: int = 900  # after the horizon, run until the network is empty or this many extra seconds
    approach_m: float = 400.0  # length of each approach edge (paper: 400 m)
    zone_m: float = 150.0  # measurement zone upstream of the junction (paper: 150 m)
    speed: float = 13.89  # lane speed limit, m/s (free-flow time of the zone = zone_m / speed)
    stop_speed: float = 0.1  # a stop is a fall of the speed from above to at most this value, m/s (B3)
    depart_lane: str = "random"  # SUMO departLane of the generated vehicles (paper: "random")
    depart_speed: str = "10"  # SUMO departSpeed (paper: 10)
    step_length: float = 1.0  # SUMO step, s
    cache_dir: str = ""  # results cached by plan hash here; "" = runs/evolvesignal-cache
    # harness-gap controls (docs/evolvesignal.md, "Check against the authors' evaluator"); defaults match the
    # authors' evaluator except the net (theirs is not ours to ship)
    net_file: str = (
        ""  # a .net.xml with the same edge ids and junction TL (e.g. the authors'); "" = ours (netconvert)
    )
    sumo_seed: int = (
        23423  # SUMO --seed (departLane random, driver sigma); 23423 is SUMO's default, the authors'
    )
    exit_time: Literal["exit_step", "last_approach_step"] = (
        "last_approach_step"  # a vehicle leaves the zone at its last step before the exit edge (authors) or its first on it
    )


@dataclass
class EvaluationConfig:
    """The fitness of a program: scenarios x seeds in SUMO (or the analytic surrogate), digest B3."""

    scenarios: tuple[str, ...] = ("balanced", "ns_heavy", "ns_ew_left")  # demand scenarios searched on (B3)
    seeds: tuple[int, ...] = (1, 2, 3)  # search seeds (paper: 1, 2, 3); report seeds are held out
    fitness: Literal["sumo", "surrogate"] = "sumo"  # 'surrogate': HCM d1+d2 delay and Akcelik stops (E)
    sim: SimConfig = field(default_factory=SimConfig)  # the SUMO run
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)  # limits of the program's own call


@dataclass
class SearchConfig:
    """Islands + MAP-Elites archive + migration, mutating program source (digest B4, C)."""

    iterations: int = 20  # generations
    children_per_island: int = 4  # children each island proposes per generation (benchmark setting)
    prefilter: float = 0.25  # fraction of a generation's new children, ranked by the HCM/Akcelik surrogate, sent to SUMO (1.0: all, no pre-filter)
    islands: int = 5  # islands (paper config: 5)
    population: int = 10  # programs kept per island (paper: 50 over all islands)
    migration_interval: int = 5  # generations between migrations (paper fork: 50 of 600)
    migration_count: int = 1  # best programs copied to the next island in the ring
    exploit_ratio: float = 0.7  # parent from the archive elites (paper: 0.7)
    explore_ratio: float = (
        0.2  # parent from the island (paper: 0.2); the rest: a random program of the island
    )
    cycle_bins: tuple[float, ...] = (
        70.0,
        90.0,
        110.0,
        130.0,
        150.0,
    )  # MAP-Elites edges of the mean cycle run, s
    length_bins: tuple[int, ...] = (1400, 1800, 2200, 2600)  # MAP-Elites edges of the program length, chars
    mutator: Literal["offline", "llm"] = "offline"  # offline mutator (default) or an OpenAI-compatible LLM
    crossover_rate: float = 0.2  # probability that a child is a crossover with an inspiration program
    seed: int = 42  # RNG seed of the search (paper: 42)
    checkpoint_every: int = 1  # generations between checkpoints
    workers: int = 1  # evaluation processes (1: in this process)
    executor: Literal["process", "ray"] = "process"  # local process pool or Ray
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)  # fitness of each child

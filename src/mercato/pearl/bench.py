"""Benchmark run functions (``benchmarks/pearl.py`` declares the runs and renders the tables).

A run trains one method on the offline data of its seed (``DataConfig`` episodes drawn from the seed) and
evaluates it on the test episodes at every budget level; the speed run times the simulator.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mercato.pearl.config import (
    BCConfig,
    DataConfig,
    DiffBidConfig,
    DTConfig,
    IQLConfig,
    PearlConfig,
    SimConfig,
)
from mercato.pearl.data import TrajectoryData, budgets_for, generate
from mercato.pearl.evaluate import evaluate, pathologies
from mercato.pearl.methods import (
    Agent,
    Arrays,
    DiffBidAgent,
    OnlineLPAgent,
    PearlAgent,
    PIDAgent,
    advertiser_side,
    fit_bc,
    fit_diffbid,
    fit_dt,
    fit_evaluator,
    fit_invdyn,
    fit_iql,
    fit_pearl,
    pairwise_auc,
    y_targets,
)
from mercato.pearl.sim import make_market, run_auctions, run_auctions_loop

__all__ = [
    "METHODS",
    "MethodSpec",
    "SearchGrid",
    "SpeedSpec",
    "build_agent",
    "evaluator_auc",
    "fit_one",
    "speed_one",
    "validate_search",
]

METHODS = ("Pearl", "DiffBid", "DT", "BC", "IQL", "PID", "OnlineLP")
OOD_POLICIES = ("onlinelp", "onlinelp_noisy")  # held out of the evaluator's training for the OOD AUC


@dataclass
class MethodSpec:
    """What one benchmark run trains and where it is tested."""

    method: str
    seed: int
    test_seeds: tuple[int, ...]
    sim: SimConfig = field(default_factory=SimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pearl: PearlConfig = field(default_factory=PearlConfig)
    diffbid: DiffBidConfig = field(default_factory=DiffBidConfig)
    dt: DTConfig = field(default_factory=DTConfig)
    bc: BCConfig = field(default_factory=BCConfig)
    iql: IQLConfig = field(default_factory=IQLConfig)


def build_agent(spec: MethodSpec, d: TrajectoryData, show: bool = False) -> tuple[Agent, dict[str, Any]]:
    """Train the method of ``spec`` on ``d``; returns the agent and extras (evaluator AUC for Pearl)."""
    sim, seed, m = spec.sim, spec.seed, spec.method
    torch.manual_seed(seed)
    if m == "PID":
        return PIDAgent(T=sim.n_steps), {}
    if m == "OnlineLP":
        return OnlineLPAgent(slot=0), {}
    arr = Arrays.from_data(d, sim)
    if m == "BC":
        return fit_bc(d, arr, spec.bc, seed, show), {}
    if m == "IQL":
        return fit_iql(d, arr, spec.iql, seed, show), {}
    if m == "DT":
        return fit_dt(d, arr, spec.dt, seed, show), {}
    if m == "DiffBid":
        inv = fit_invdyn(arr, spec.diffbid.invdyn, seed, show)
        model = fit_diffbid(d, arr, spec.diffbid, seed, show)
        tg = y_targets(d, spec.diffbid.y_star_eps, spec.diffbid.y_star_scope)
        return DiffBidAgent(model, inv, tg, seed), {}
    if m.startswith("Pearl"):
        pc = spec.pearl
        inv = fit_invdyn(arr, pc.invdyn, seed, show)
        side = advertiser_side(d, pc.evaluator)
        ev, lip_e = fit_evaluator(arr, pc.evaluator, seed, pc.use_pairwise, pc.use_lipschitz, side, show)
        planner, info = fit_pearl(d, arr, pc, seed, ev, inv, show, side=side)
        extras = {"L_e": lip_e, "L_p": info["L_p"], "auc": evaluator_auc(spec, d)}
        return PearlAgent(planner, inv, info["y_star"], m), extras
    raise ValueError(f"unknown method {m!r}; valid: {', '.join(METHODS)}")


def _auc_of(spec: MethodSpec, d: TrajectoryData, train: np.ndarray, *tests: np.ndarray) -> list[float]:
    """Fit the evaluator of ``spec`` on rows ``train`` of ``d``; its pair-wise AUC on each row set of
    ``tests`` (pairs within a budget level)."""
    pc = spec.pearl
    tr = d.subset(train)
    ev, _ = fit_evaluator(
        Arrays.from_data(tr, spec.sim), pc.evaluator, spec.seed, pc.use_pairwise, pc.use_lipschitz,
        advertiser_side(tr, pc.evaluator),
    )  # fmt: skip
    out = []
    for rows in tests:
        te = d.subset(rows)
        with torch.no_grad():
            pred = ev(Arrays.from_data(te, spec.sim).tau(), advertiser_side(te, pc.evaluator)).numpy()
        out.append(pairwise_auc(pred, te.y, te.budget))
    return out


def evaluator_auc(spec: MethodSpec, d: TrajectoryData, folds: int = 5) -> dict[str, Any]:
    """Pair-wise AUC of the evaluator on trajectories it was not trained on (pairs within a budget level):

    * ``cv``: ``folds``-fold cross-validation over episodes (the paper's protocol: every held-out trajectory
      comes from an episode, i.e. a market draw with its own advertisers, the evaluator never saw), mean of
      the folds;
    * ``policy``: trained without the OOD policies (online LP) and without the last 20% of episodes, tested on
      the OOD policies' trajectories of those episodes (a behaviour it has never seen);
    * ``iid``: the same evaluator on the held-out episodes' in-distribution trajectories.
    """
    if spec.pearl.evaluator.text_embedding:
        return {
            "cv": float("nan"),
            "policy": float("nan"),
            "iid": float("nan"),
        }  # measured without the text option
    n_ep = spec.data.n_episodes
    ep = np.repeat(np.arange(n_ep), len(d.budget) // n_ep)
    cv = [
        _auc_of(spec, d, np.flatnonzero(ep % folds != k), np.flatnonzero(ep % folds == k))[0]
        for k in range(folds)
    ]
    ood = np.isin(d.policy, OOD_POLICIES)
    test_ep = ep >= int(0.8 * n_ep)
    train = np.flatnonzero(~ood & ~test_ep)
    policy, iid = _auc_of(spec, d, train, np.flatnonzero(ood & test_ep), np.flatnonzero(~ood & test_ep))
    return {"cv": float(np.mean(cv)), "cv_folds": [float(a) for a in cv], "policy": policy, "iid": iid}


def fit_one(spec: MethodSpec, _: Any = None) -> dict[str, Any]:
    """Train one method on its seed's data and test it at every budget level."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    d = generate(spec.sim, spec.data, spec.seed, show_progress=False)
    agent, extras = build_agent(spec, d)
    t_fit = time.perf_counter() - t0
    per = _test(agent, spec)
    return {"per_budget": per, "fit_s": t_fit, "wall_s": time.perf_counter() - t0, "n_traj": d.n, **extras}


def _test(agent: Agent, spec: MethodSpec) -> dict[str, dict[str, Any]]:
    per = {}
    for b in spec.sim.budget_levels:
        st = evaluate(agent, spec.sim, list(spec.test_seeds), b, behaviour=spec.data)
        flags = pathologies(st.step_cost, st.budget)
        per[f"{b:g}"] = {
            "gmv": float(st.gmv.mean()),
            "cost_ratio": float((st.cost / st.budget).mean()),
            "max_cost_ratio": float((st.cost / st.budget).max()),
            "roi": float(st.gmv.sum() / max(st.cost.sum(), 1e-9)),
            **{k: int(v.sum()) for k, v in flags.items()},
            "episodes": len(st.gmv),
        }
    return per


@dataclass
class SearchGrid:
    """Policy-search settings tried from one shared warm start (evaluator, inverse dynamics, conditional BC):
    ``variants`` maps a name to ``PearlConfig`` overrides; ``spec.test_seeds`` are the validation episodes."""

    spec: MethodSpec
    variants: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]


def validate_search(grid: SearchGrid, _: Any = None) -> dict[str, Any]:
    """Train the shared parts once on the seed's data, then every search variant from the same warm start;
    GMV per budget level of each on the validation episodes (name ``BC warm start``: no search)."""
    torch.set_num_threads(1)
    spec = grid.spec
    pc = spec.pearl
    t0 = time.perf_counter()
    d = generate(spec.sim, spec.data, spec.seed, show_progress=False)
    arr = Arrays.from_data(d, spec.sim)
    torch.manual_seed(spec.seed)
    inv = fit_invdyn(arr, pc.invdyn, spec.seed)
    side = advertiser_side(d, pc.evaluator)
    ev, _ = fit_evaluator(arr, pc.evaluator, spec.seed, pc.use_pairwise, pc.use_lipschitz, side)
    warm, info = fit_pearl(d, arr, dataclasses.replace(pc, search_steps=0), spec.seed, ev, inv, side=side)
    out: dict[str, Any] = {"BC warm start": _test(PearlAgent(warm, inv, info["y_star"]), spec)}
    for name, kw in grid.variants:
        pv = dataclasses.replace(pc, **dict(kw))
        planner, inf = fit_pearl(d, arr, pv, spec.seed, ev, inv, planner=copy.deepcopy(warm), side=side)
        out[name] = _test(PearlAgent(planner, inv, inf["y_star"]), spec)
    return {"variants": out, "wall_s": time.perf_counter() - t0}


@dataclass
class SpeedSpec:
    """Simulator timing: the auctions of one episode by numpy and by the plain loop (same market, same bid
    scales, budgets binding); one AuctionNet-scale episode with heuristic bidders."""

    episode_impressions: int = 20000
    episode_agents: int = 30
    episode_steps: int = 96
    an_agents: int = 48
    an_impressions: int = 500000
    an_steps: int = 48
    seed: int = 0


def _episode_auctions(fn: Any, market: Any, a: np.ndarray, budget: np.ndarray, sim: SimConfig) -> np.ndarray:
    remaining = budget.copy()
    for v in market.values:
        remaining = remaining - fn(a[None, :] * v, v, remaining, sim).cost
    return budget - remaining


def speed_one(spec: SpeedSpec, _: Any = None) -> dict[str, Any]:
    rng = np.random.default_rng(spec.seed)
    sim = SimConfig(n_advertisers=spec.episode_agents, n_impressions=spec.episode_impressions,
                    n_steps=spec.episode_steps)  # fmt: skip
    market = make_market(sim, rng)
    a = rng.uniform(1.0, 6.0, spec.episode_agents)  # fixed bid scales: the high ones exhaust their budgets
    budget = budgets_for(sim)
    times = {}
    spent = {}
    for name, fn, reps in (("vec", run_auctions, 3), ("loop", run_auctions_loop, 1)):
        best = np.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            spent[name] = _episode_auctions(fn, market, a, budget, sim)
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    vec, loop = times["vec"], times["loop"]
    an = SimConfig(n_advertisers=spec.an_agents, n_impressions=spec.an_impressions, n_steps=spec.an_steps)
    from mercato.pearl.sim import AuctionEnv, PolicyBank

    env = AuctionEnv(an, budgets_for(an) * 25)  # budgets scaled with the 25x traffic
    bank = PolicyBank.random(DataConfig().policies, env.m, rng)
    bank.reset()
    t0 = time.perf_counter()
    s = env.reset(spec.seed)
    while not env.done:
        s, *_ = env.step(bank.act(env.t, s, env))
    ep = time.perf_counter() - t0
    n = sum(len(v) for v in market.values)
    return {
        "vec_auctions_per_s": n / vec, "loop_auctions_per_s": n / loop, "ratio": loop / vec,
        "same_costs": bool(np.allclose(spent["vec"], spent["loop"])),
        "exhausted": int((spent["vec"] >= 0.95 * budget).sum()),
        "episode_impressions": n, "episode_agents": spec.episode_agents, "episode_steps": spec.episode_steps,
        "an_episode_s": ep, "an_agents": spec.an_agents, "an_impressions": spec.an_impressions,
        "wall_s": 3 * vec + loop + ep,
    }  # fmt: skip

"""Benchmark run functions (``benchmarks/pearl.py`` declares the runs and renders the tables).

A run trains one method on the offline data of its seed (``DataConfig`` episodes drawn from the seed) and
evaluates it on the test episodes at every budget level; the speed run times the simulator.
"""

from __future__ import annotations

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
    advertiser_texts,
    fit_bc,
    fit_diffbid,
    fit_dt,
    fit_evaluator,
    fit_invdyn,
    fit_iql,
    fit_pearl,
    pairwise_auc,
    text_embeddings,
    y_targets,
)
from mercato.pearl.sim import run_auctions, run_auctions_loop

__all__ = ["METHODS", "MethodSpec", "SpeedSpec", "build_agent", "fit_one", "speed_one"]

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
        text = text_embeddings(advertiser_texts(d)) if pc.evaluator.text_embedding else None
        ev, lip_e = fit_evaluator(arr, pc.evaluator, seed, pc.use_pairwise, pc.use_lipschitz, text, show)
        planner, info = fit_pearl(d, arr, pc, seed, ev, inv, show, text=text)
        extras = {"L_e": lip_e, "L_p": info["L_p"], "auc": evaluator_auc(spec, d)}
        return PearlAgent(planner, inv, info["y_star"], m), extras
    raise ValueError(f"unknown method {m!r}; valid: {', '.join(METHODS)}")


def evaluator_auc(spec: MethodSpec, d: TrajectoryData) -> dict[str, float]:
    """Pair-wise AUC of an evaluator trained without the OOD policies, on held-out OOD trajectories
    (pairs within a budget level) and on held-out in-distribution ones."""
    pc = spec.pearl
    ood = np.isin(d.policy, OOD_POLICIES)
    n_ep = spec.data.n_episodes
    ep = np.repeat(np.arange(n_ep), len(d.budget) // n_ep)
    test_ep = ep >= int(0.8 * n_ep)
    train = d.subset(np.flatnonzero(~ood & ~test_ep))
    if pc.evaluator.text_embedding:
        return {"ood": float("nan"), "iid": float("nan")}  # the OOD AUC is measured without the text option
    ev, _ = fit_evaluator(
        Arrays.from_data(train, spec.sim), pc.evaluator, spec.seed, pc.use_pairwise, pc.use_lipschitz
    )
    out = {}
    for name, mask in (("ood", ood & test_ep), ("iid", ~ood & test_ep)):
        sub = d.subset(np.flatnonzero(mask))
        a = Arrays.from_data(sub, spec.sim)
        with torch.no_grad():
            pred = ev(a.tau()).numpy()
        out[name] = pairwise_auc(pred, sub.y, sub.budget)
    return out


def fit_one(spec: MethodSpec, _: Any = None) -> dict[str, Any]:
    """Train one method on its seed's data and test it at every budget level."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    d = generate(spec.sim, spec.data, spec.seed, show_progress=False)
    agent, extras = build_agent(spec, d)
    t_fit = time.perf_counter() - t0
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
    return {"per_budget": per, "fit_s": t_fit, "wall_s": time.perf_counter() - t0, "n_traj": d.n, **extras}


@dataclass
class SpeedSpec:
    """Simulator timing: the same step by numpy and by the plain loop; one AuctionNet-scale episode."""

    small_impressions: int = 300
    small_agents: int = 10
    an_agents: int = 48
    an_impressions: int = 500000
    an_steps: int = 48
    seed: int = 0


def speed_one(spec: SpeedSpec, _: Any = None) -> dict[str, Any]:
    rng = np.random.default_rng(spec.seed)
    sim = SimConfig()
    v = rng.lognormal(0, 0.6, (spec.small_impressions, spec.small_agents))
    bids = v * rng.uniform(0.3, 1.0, spec.small_agents)
    rem = np.full(spec.small_agents, 0.02 * bids.sum() / spec.small_agents)
    t0 = time.perf_counter()
    reps = 20
    for _ in range(reps):
        run_auctions(bids, v, rem, sim)
    vec = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    run_auctions_loop(bids, v, rem, sim)
    loop = time.perf_counter() - t0
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
    n = spec.small_impressions
    return {
        "vec_auctions_per_s": n / vec, "loop_auctions_per_s": n / loop, "ratio": loop / vec,
        "an_episode_s": ep, "an_agents": spec.an_agents, "an_impressions": spec.an_impressions,
        "wall_s": vec * reps + loop + ep,
    }  # fmt: skip

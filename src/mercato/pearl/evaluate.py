"""Evaluating bidders in the simulator (E episodes in lockstep), pathology counts, AuctionNet-style agents.

The agent under test takes advertiser slot ``slot`` of every episode with the test budget; the other
advertisers bid with behaviour policies drawn from the episode's seed (so every method meets the same
competitors on the same seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mercato.pearl.config import DataConfig, SimConfig
from mercato.pearl.data import budgets_for
from mercato.pearl.methods import Agent
from mercato.pearl.sim import AuctionEnv, PolicyBank, state_features

__all__ = ["BiddingAgent", "EpisodeStats", "evaluate", "pathologies", "run_bidding_agent"]


@dataclass
class EpisodeStats:
    """Per-episode outcome of the agent: GMV (value won), cost, budget, per-step costs (E, T)."""

    gmv: np.ndarray
    cost: np.ndarray
    budget: np.ndarray
    step_cost: np.ndarray


def evaluate(
    agent: Agent, sim: SimConfig, seeds: list[int], budget: float, slot: int = 0,
    behaviour: DataConfig | None = None,
) -> EpisodeStats:  # fmt: skip
    """Run ``agent`` in slot ``slot`` with ``budget`` on one episode per seed."""
    behaviour = behaviour or DataConfig()
    envs, banks, states = [], [], []
    for s in seeds:
        b = budgets_for(sim)
        b[slot] = budget
        env = AuctionEnv(sim, b)
        rng = np.random.default_rng([s, 7])
        bank = PolicyBank.random(behaviour.policies, env.m, rng, noise=behaviour.noise)
        bank.reset()
        states.append(env.reset(s))
        envs.append(env)
        banks.append(bank)
    e = len(seeds)
    t_ = sim.n_steps
    agent.begin(np.full(e, budget))
    hist = {"u": np.zeros((e, 0)), "v": np.zeros((e, 0)), "a": np.zeros((e, 0))}
    step_cost = np.zeros((e, t_))
    gmv = np.zeros(e)
    for t in range(t_):
        own = np.stack([st[slot] for st in states])  # (E, STATE_DIM)
        a_own = np.asarray(agent.act(t, own, hist, envs), dtype=np.float64).reshape(e)
        a_own = np.clip(np.nan_to_num(a_own, nan=0.0, posinf=10.0), 0.0, 10.0)
        vs, cs = np.zeros(e), np.zeros(e)
        for k, (env, bank) in enumerate(zip(envs, banks)):
            a = bank.act(t, states[k], env)
            a[slot] = a_own[k]
            states[k], v, c, _ = env.step(a)
            vs[k], cs[k] = v[slot], c[slot]
        step_cost[:, t] = cs
        gmv += vs
        hist = {
            "u": np.concatenate([hist["u"], (cs / budget * t_)[:, None]], 1),
            "v": np.concatenate([hist["v"], vs[:, None]], 1),
            "a": np.concatenate([hist["a"], a_own[:, None]], 1),
        }
    return EpisodeStats(gmv=gmv, cost=step_cost.sum(1), budget=np.full(e, budget), step_cost=step_cost)


def pathologies(step_cost: np.ndarray, budget: np.ndarray) -> dict[str, np.ndarray]:
    """Per-episode flags (section F): >10% of the budget in one step; >40% in the first or in the last
    quarter of the day; <90% of the budget spent."""
    t_ = step_cost.shape[1]
    q = max(1, t_ // 4)
    share = step_cost / budget[:, None]
    return {
        "spike": share.max(1) > 0.10,
        "front_or_back": (share[:, :q].sum(1) > 0.40) | (share[:, -q:].sum(1) > 0.40),
        "underspend": share.sum(1) < 0.90,
    }


class BiddingAgent:
    """An AuctionNet-style player around one of our agents: ``bidding(timeStepIndex, pValues, pValueSigmas,
    historyPValueInfo, historyBid, historyAuctionResult, historyImpressionResult, historyLeastWinningCost)``
    returns one bid per impression, ``a_t * pValues``, with a_t from the agent's state rebuilt from the
    history (costs are the third column of each ``historyAuctionResult`` step, as in AuctionNet)."""

    def __init__(self, agent: Agent, budget: float, sim: SimConfig, name: str = "mercato", cpa: float = 0.0,
                 category: int = 0, attributes: np.ndarray | None = None) -> None:  # fmt: skip
        self.agent, self.budget, self.sim = agent, float(budget), sim
        self.name, self.cpa, self.category = name, cpa, category
        self.attributes = (
            attributes  # the advertiser's static attributes (ATTRIBUTE_NAMES), None: unknown (zeros)
        )
        self.reset()

    def reset(self) -> None:
        self.remaining_budget = self.budget
        self.agent.begin(np.array([self.budget]))
        self._a: list[float] = []
        self._v: list[float] = []

    def bidding(
        self, timeStepIndex: int, pValues: np.ndarray, pValueSigmas: np.ndarray, historyPValueInfo: list[Any],  # noqa: N803
        historyBid: list[Any], historyAuctionResult: list[Any], historyImpressionResult: list[Any],  # noqa: N803
        historyLeastWinningCost: list[Any],  # noqa: N803
    ) -> np.ndarray:  # fmt: skip
        t = int(timeStepIndex)
        costs = [float(np.sum(np.asarray(r)[:, 2])) if len(r) else 0.0 for r in historyAuctionResult]
        vals = [
            float(np.sum(np.asarray(p)[:, 0] * np.asarray(i)[:, 0])) if len(p) else 0.0
            for p, i in zip(historyPValueInfo, historyImpressionResult)
        ]
        spent = float(sum(costs))
        self.remaining_budget = self.budget - spent
        last = costs[-1] if costs else 0.0
        attrs = None if self.attributes is None else np.asarray(self.attributes, np.float64)[None]
        s = state_features(
            t, np.array([last]), np.array([self.remaining_budget]), np.array([self.budget]), self.sim, attrs
        )
        t_ = self.sim.n_steps
        hist = {
            "u": np.asarray(costs, dtype=np.float64)[None] / self.budget * t_,
            "v": np.asarray(vals, dtype=np.float64)[None],
            "a": np.asarray(self._a[: len(costs)], dtype=np.float64)[None],
        }
        if hist["a"].shape[1] < len(costs):
            hist["a"] = np.pad(hist["a"], ((0, 0), (len(costs) - hist["a"].shape[1], 0)), constant_values=1.0)
        a = float(np.asarray(self.agent.act(t, s, hist, []), dtype=np.float64).reshape(-1)[0])
        self._a.append(a)
        if self.remaining_budget <= 0:
            return np.zeros_like(np.asarray(pValues, dtype=np.float64))
        return a * np.asarray(pValues, dtype=np.float64)


def run_bidding_agent(player: BiddingAgent, sim: SimConfig, seed: int, slot: int = 0) -> dict[str, float]:
    """Run an AuctionNet-style player in our simulator (its per-impression bids override slot ``slot``)."""
    b = budgets_for(sim)
    b[slot] = player.budget
    env = AuctionEnv(sim, b, track=(slot,))
    rng = np.random.default_rng([seed, 7])
    bank = PolicyBank.random(DataConfig().policies, env.m, rng)
    bank.reset()
    states = env.reset(seed)
    player.attributes = env.market.attributes[slot]  # the advertiser knows its own attributes
    player.reset()
    gmv = 0.0
    while not env.done:
        h = env.history[slot]
        pv = env.market.values[env.t][:, slot]
        sg = env.market.sigmas[env.t][:, slot]
        bids = player.bidding(
            env.t, pv, sg, [np.stack([p, s], 1) for p, s in zip(h["pvalue"], h["sigma"])], h["bid"],
            h["auction"], h["impression"], h["lwc"],
        )  # fmt: skip
        a = bank.act(env.t, states, env)
        states, v, _, _ = env.step(a, bid_override={slot: bids})
        gmv += float(v[slot])
    return {"gmv": gmv, "cost": float(player.budget - env.remaining[slot]), "budget": player.budget}

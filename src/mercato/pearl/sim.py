"""A vectorised auction simulator in the MDP of AIGB-Pearl (ICLR section 2.1).

Each episode has ``T`` steps; step ``t`` holds ``n_t`` impression opportunities (a daily traffic profile). Every
impression has a value ``v_ij`` for every advertiser ``j`` (a log-normal impression quality times the
advertiser's value level and its time-of-day profile). Advertiser ``j`` bids ``b_ij = a_j * v_ij`` with its
bid scale ``a_j`` of the step (``shading * a_j * v_ij`` in a first-price auction). Pricing rules:

* ``second_price``: the highest bid wins and pays the runner-up bid (at least the reserve price);
* ``gsp``: the ``K`` highest bids take the slots, slot ``k`` gives ``coef_k`` of the value and costs
  ``coef_k`` times the next-highest bid (expected cost of an exposure);
* ``first_price``: the winner pays its own (shaded) bid.

Budgets are enforced *within* the step: impressions are sold in order, and an advertiser whose payment would
take it over its budget leaves the auctions from that impression on (the impression is re-auctioned without
it). :func:`run_auctions` does this with numpy by re-running only the rows after the earliest overflow;
:func:`run_auctions_loop` is the plain Python oracle the tests compare it with.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mercato.pearl.config import SimConfig

__all__ = [
    "ATTRIBUTE_NAMES",
    "STATE_DIM",
    "AuctionEnv",
    "AuctionResult",
    "Market",
    "PolicyBank",
    "StepPolicy",
    "make_market",
    "run_auctions",
    "run_auctions_loop",
    "state_features",
    "traffic_profile",
]

# static advertiser attributes of an episode (what an advertiser knows of itself: its value level, like a
# historical GMV per impression, and the time-of-day shape of its values): the static part x of the state,
# and the evaluator's side input
ATTRIBUTE_NAMES = ("log_value_level", "day_sin", "day_cos")
STATE_DIM = 4 + len(ATTRIBUTE_NAMES)  # s_t = [t/T, c_{t-1}/B, remaining/B, B/B_max, attributes]


def traffic_profile(n_steps: int) -> np.ndarray:
    """Share of the day's impressions in each step: a night trough and two daytime peaks (sums to 1)."""
    h = np.arange(n_steps) / n_steps * 24.0
    w = 0.35 + np.exp(-((h - 12.0) ** 2) / 8.0) + 1.2 * np.exp(-((h - 20.5) ** 2) / 6.0)
    return w / w.sum()


def _slot_coefs(cfg: SimConfig) -> np.ndarray:
    if cfg.auction == "gsp":
        return np.asarray(cfg.slot_coefs, dtype=np.float64)
    return np.ones(1)


@dataclass
class AuctionResult:
    """Outcome of one step's auctions."""

    cost: np.ndarray  # (M,) total payment per advertiser
    value: np.ndarray  # (M,) value won per advertiser
    wins: np.ndarray  # (M,) impressions won (slots taken)
    win_cost: np.ndarray  # (n, M) payment per impression and advertiser
    drop: np.ndarray  # (M,) index of the impression from which the advertiser was out of budget (n: never)
    least_winning_cost: np.ndarray  # (n,) lowest bid that took a slot (0 when none was sold)


def _top_bids(bids: np.ndarray, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values (n, top) of the ``top`` highest bids per row, by repeated argmax (ties to the lower
    index, as a stable sort would give): O(n M top) instead of a full sort of every row."""
    n = len(bids)
    order = np.empty((n, top), dtype=np.int64)
    ranked = np.empty((n, top))
    rest = bids.astype(np.float64, copy=True)
    rows = np.arange(n)
    for s in range(top):
        j = rest.argmax(axis=1)
        order[:, s] = j
        ranked[:, s] = bids[rows, j]
        rest[rows, j] = -np.inf
    return order, ranked


def _price_rows(
    bids: np.ndarray, values: np.ndarray, cfg: SimConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Costs and values (n, M) of the auctions of ``bids`` (n, M) with no budget check, and the indices
    (n, k + 1) of each row's k + 1 highest bidders (the only ones a row's prices depend on)."""
    n, m = bids.shape
    coefs = _slot_coefs(cfg)
    k = min(len(coefs), m)
    order, ranked = _top_bids(bids, min(k + 1, m))
    cost = np.zeros((n, m))
    val = np.zeros((n, m))
    rows = np.arange(n)
    for s in range(k):
        b = ranked[:, s]
        nxt = ranked[:, s + 1] if s + 1 < m else np.zeros(n)
        ok = (b > 0) & (b >= cfg.reserve_price)
        price = b if cfg.auction == "first_price" else np.maximum(nxt, cfg.reserve_price)
        who = order[:, s]
        cost[rows[ok], who[ok]] = coefs[s] * price[ok]
        val[rows[ok], who[ok]] = coefs[s] * values[rows[ok], who[ok]]
    return cost, val, order


def run_auctions(
    bids: np.ndarray, values: np.ndarray, remaining: np.ndarray, cfg: SimConfig
) -> AuctionResult:
    """One step's auctions for bids (n, M), values (n, M) and remaining budgets (M,), vectorised.

    The earliest impression at which some advertiser's running cost exceeds its remaining budget is found
    with a cumulative sum; that advertiser (the highest-ranked one, if several overflow there) leaves from
    that impression on, and only the later rows where it was among the k + 1 highest bidders are re-priced
    (no other row's prices depend on it). At most M re-pricings per step.
    """
    n, m = bids.shape
    drop = np.full(m, n, dtype=np.int64)
    drop[remaining <= 0] = 0
    live = bids.copy()
    live[:, remaining <= 0] = 0.0
    cost, val, order = _price_rows(live, values, cfg)
    while True:
        over = np.cumsum(cost, axis=0) > remaining[None, :]  # (n, M), sequential sums
        any_over = over.any(axis=0)
        if not any_over.any():
            break
        first = np.where(any_over, over.argmax(axis=0), n)  # (M,) first overflow row
        row = int(first.min())
        cands = np.flatnonzero(first == row)
        j = int(cands[np.argmax(live[row, cands])]) if len(cands) > 1 else int(cands[0])
        drop[j] = row
        live[row:, j] = 0.0
        hit = row + np.flatnonzero((order[row:] == j).any(axis=1))  # later rows whose prices involve j
        c, v, o = _price_rows(live[hit], values[hit], cfg)
        cost[hit], val[hit], order[hit] = c, v, o
    return _result(bids, cost, val, drop, cfg)


def _result(
    bids: np.ndarray, cost: np.ndarray, val: np.ndarray, drop: np.ndarray, cfg: SimConfig
) -> AuctionResult:
    won = cost > 0
    lwc = np.where(won.any(axis=1), np.where(won, bids, np.inf).min(axis=1), 0.0)
    return AuctionResult(
        cost=cost.sum(axis=0),
        value=val.sum(axis=0),
        wins=won.sum(axis=0),
        win_cost=cost,
        drop=drop,
        least_winning_cost=lwc,
    )


def run_auctions_loop(
    bids: np.ndarray, values: np.ndarray, remaining: np.ndarray, cfg: SimConfig
) -> AuctionResult:
    """The same auctions, one impression at a time in plain Python (the oracle of :func:`run_auctions`)."""
    n, m = bids.shape
    coefs = list(_slot_coefs(cfg))
    spent = [0.0] * m
    active = [float(r) > 0 for r in remaining]
    drop = [n if a else 0 for a in active]
    cost = np.zeros((n, m))
    val = np.zeros((n, m))
    for i in range(n):
        while True:
            row = [float(bids[i, j]) if active[j] else 0.0 for j in range(m)]
            ranked = sorted(range(m), key=lambda j: -row[j])
            sold = []
            for s in range(min(len(coefs), m)):
                j = ranked[s]
                b = row[j]
                if b <= 0 or b < cfg.reserve_price:
                    continue
                nxt = row[ranked[s + 1]] if s + 1 < m else 0.0
                price = b if cfg.auction == "first_price" else max(nxt, cfg.reserve_price)
                sold.append((j, coefs[s] * price, coefs[s] * float(values[i, j])))
            over = [j for j, c, _ in sold if spent[j] + c > float(remaining[j])]
            if not over:
                break
            active[over[0]] = False  # sold is in rank order: the highest-ranked overflow leaves
            drop[over[0]] = i
        for j, c, v in sold:
            spent[j] += c
            cost[i, j] = c
            val[i, j] = v
    return _result(bids, cost, val, np.asarray(drop, dtype=np.int64), cfg)


@dataclass
class Market:
    """One episode's impressions: per step values (n_t, M) and reported pValueSigmas."""

    values: list[np.ndarray]  # T arrays (n_t, M)
    sigmas: list[np.ndarray]  # T arrays (n_t, M)
    attributes: np.ndarray  # (M, len(ATTRIBUTE_NAMES)): log level, amp sin(phase), amp cos(phase)


def make_market(cfg: SimConfig, rng: np.random.Generator, n_advertisers: int | None = None) -> Market:
    """Draw an episode's traffic: counts from the profile, log-normal qualities, advertiser value profiles."""
    m = n_advertisers or cfg.n_advertisers
    t_ = cfg.n_steps
    counts = rng.multinomial(cfg.n_impressions, traffic_profile(t_))
    level = np.exp(cfg.advertiser_spread * rng.standard_normal(m))  # (M,)
    phase = rng.uniform(0, 2 * np.pi, m)
    amp = rng.uniform(0.0, 0.5, m)
    values, sigmas = [], []
    for t in range(t_):
        day = 1.0 + amp * np.sin(2 * np.pi * t / t_ + phase)  # (M,) time-of-day value profile
        q = np.exp(cfg.value_sigma * rng.standard_normal((counts[t], 1)))  # (n_t, 1) impression quality
        own = np.exp(0.3 * rng.standard_normal((counts[t], m)))  # (n_t, M) advertiser-specific match
        v = cfg.value_scale * q * own * (level * day)[None, :]  # (n_t, M)
        values.append(v)
        sigmas.append(cfg.pvalue_sigma_frac * v)
    attributes = np.stack([np.log(level), amp * np.sin(phase), amp * np.cos(phase)], axis=1)
    return Market(values=values, sigmas=sigmas, attributes=attributes)


def state_features(
    t: int, last_cost: np.ndarray, remaining: np.ndarray, budget: np.ndarray, cfg: SimConfig,
    attributes: np.ndarray | None = None,
) -> np.ndarray:  # fmt: skip
    """s_t = [t/T, c_{t-1}/B, remaining/B, B/B_max, attributes] for every advertiser (M, STATE_DIM)
    (section 2.1: [t, c_{t-1}/B, x], plus the remaining share; x = budget and the static attributes, zeros
    when they are unknown)."""
    bmax = max(cfg.budget_levels)
    m = len(budget)
    attrs = np.zeros((m, len(ATTRIBUTE_NAMES))) if attributes is None else np.asarray(attributes, np.float64)
    dyn = np.stack(
        [np.full(m, t / cfg.n_steps), last_cost / budget, remaining / budget, budget / bmax], axis=1
    )
    return np.concatenate([dyn, attrs.reshape(m, len(ATTRIBUTE_NAMES))], axis=1)


class StepPolicy(Protocol):
    """A per-step bid-scale policy for a set of advertisers."""

    def act(self, t: int, states: np.ndarray, env: AuctionEnv) -> np.ndarray: ...


@dataclass
class PolicyBank:
    """Heuristic bidders, one kind per advertiser: ``fixed``, ``pid`` (pacing to a random target curve),
    ``onlinelp`` (an online LP over the impressions seen so far); ``*_noisy`` adds log-normal noise to a."""

    kinds: list[str]
    base: np.ndarray  # (M,) starting / fixed bid scale
    gamma: np.ndarray  # (M,) PID target curve: spend share by t is (t/T)^gamma
    noise: float = 0.15
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    a: np.ndarray = field(default_factory=lambda: np.zeros(0))
    integral: np.ndarray = field(default_factory=lambda: np.zeros(0))

    KINDS = ("fixed", "pid", "onlinelp", "fixed_noisy", "pid_noisy", "onlinelp_noisy")

    @classmethod
    def random(
        cls, kinds: Sequence[str], m: int, rng: np.random.Generator, noise: float = 0.15
    ) -> PolicyBank:
        for k in kinds:
            if k not in cls.KINDS:
                raise ValueError(f"unknown behaviour policy {k!r}; valid: {', '.join(cls.KINDS)}")
        chosen = [kinds[int(i)] for i in rng.integers(0, len(kinds), m)]
        return cls(
            kinds=chosen,
            base=np.exp(rng.uniform(np.log(0.3), np.log(2.0), m)),
            gamma=rng.uniform(0.6, 1.5, m),
            noise=noise,
            rng=rng,
        )

    def reset(self) -> None:
        self.a = self.base.copy()
        self.integral = np.zeros(len(self.kinds))

    def act(self, t: int, states: np.ndarray, env: AuctionEnv) -> np.ndarray:
        if len(self.a) != len(self.kinds):
            self.reset()
        cfg = env.cfg
        out = self.a.copy()
        kinds = np.asarray([k.split("_")[0] for k in self.kinds])
        noisy = np.asarray([k.endswith("_noisy") for k in self.kinds])
        # PID: spent share vs target (t/T)^gamma
        pid = kinds == "pid"
        if pid.any() and t > 0:
            spent = 1.0 - states[pid, 2]
            err = (t / cfg.n_steps) ** self.gamma[pid] - spent  # > 0: behind target, bid up
            self.integral[pid] += err
            self.a[pid] = np.clip(self.a[pid] * np.exp(3.0 * err + 0.05 * self.integral[pid]), 0.01, 5.0)
            out[pid] = self.a[pid]
        lp = kinds == "onlinelp"
        if lp.any() and t > 0:
            for j in np.flatnonzero(lp):
                out[j] = env.online_lp_scale(int(j), float(states[j, 2] * env.budget[j]), t)
        out = np.where(noisy, out * np.exp(self.noise * self.rng.standard_normal(len(out))), out)
        return np.clip(out, 0.0, 10.0)


class AuctionEnv:
    """M advertisers in one market; ``reset(seed)`` then ``step(a)`` with the M bid scales of the step.

    ``bid_override[j]`` replaces advertiser j's bids (n_t,) in a step (AuctionNet-style agents bid per
    impression). The env keeps per-advertiser samples of (value, market price) for the online-LP bidders and
    the full per-impression history of the advertisers listed in ``track``.
    """

    def __init__(self, cfg: SimConfig, budget: np.ndarray, track: Sequence[int] = (), lp_samples: int = 64):
        self.cfg = cfg
        self.budget = np.asarray(budget, dtype=np.float64)
        if self.budget.ndim != 1 or len(self.budget) < 2:
            raise ValueError("budget: expected one budget per advertiser (M >= 2)")
        if (self.budget <= 0).any():
            raise ValueError(f"budget: every budget must be positive, got min {self.budget.min()}")
        self.m = len(self.budget)
        self.track = tuple(track)
        self.lp_samples = lp_samples
        self.profile = traffic_profile(cfg.n_steps)

    def reset(self, seed: int) -> np.ndarray:
        """Draw the episode's market from ``seed``; returns the states (M, STATE_DIM) at t = 0."""
        self.rng = np.random.default_rng(seed)
        self.market = make_market(self.cfg, self.rng, self.m)
        self.t = 0
        self.remaining = self.budget.copy()
        self.last_cost = np.zeros(self.m)
        self.lp_v: list[np.ndarray] = []
        self.lp_p: list[np.ndarray] = []
        self.history: dict[int, dict[str, list[Any]]] = {
            j: {k: [] for k in ("pvalue", "sigma", "bid", "auction", "impression", "lwc")} for j in self.track
        }
        return self.states()

    def states(self) -> np.ndarray:
        return state_features(
            self.t, self.last_cost, self.remaining, self.budget, self.cfg, self.market.attributes
        )

    @property
    def done(self) -> bool:
        return self.t >= self.cfg.n_steps

    def step(
        self, a: np.ndarray, bid_override: dict[int, np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, AuctionResult]:
        """Run step t with bid scales a (M,); returns (next states, values won, costs, auction result)."""
        if self.done:
            raise RuntimeError("episode finished: call reset()")
        a = np.asarray(a, dtype=np.float64)
        if a.shape != (self.m,):
            raise ValueError(f"a: expected shape ({self.m},), got {a.shape}")
        if (a < 0).any() or not np.isfinite(a).all():
            raise ValueError("a: bid scales must be finite and >= 0")
        v = self.market.values[self.t]  # (n_t, M)
        shade = self.cfg.shading if self.cfg.auction == "first_price" else 1.0
        bids = shade * a[None, :] * v  # (n_t, M)
        for j, b in (bid_override or {}).items():
            b = np.asarray(b, dtype=np.float64)
            if b.shape != (v.shape[0],) or (b < 0).any() or not np.isfinite(b).all():
                raise ValueError(f"bids of advertiser {j}: expected {v.shape[0]} finite bids >= 0")
            bids[:, j] = b
        res = run_auctions(bids, v, self.remaining, self.cfg)
        self._record(bids, v, res)
        self.remaining = np.maximum(self.remaining - res.cost, 0.0)
        self.last_cost = res.cost
        self.t += 1
        return self.states(), res.value, res.cost, res

    def _record(self, bids: np.ndarray, v: np.ndarray, res: AuctionResult) -> None:
        n = v.shape[0]
        top2 = -np.sort(-bids, axis=1)[:, :2] if self.m > 1 else np.zeros((n, 2))
        idx = self.rng.choice(n, size=min(n, self.lp_samples), replace=False) if n else np.zeros(0, int)
        # market price for j = the highest other bid
        is_top = bids[idx] >= top2[idx, :1]
        price = np.where(is_top, top2[idx, 1:2], top2[idx, :1])  # (s, M)
        self.lp_v.append(v[idx])
        self.lp_p.append(price)
        for j in self.track:
            h = self.history[j]
            won = res.win_cost[:, j] > 0
            h["pvalue"].append(v[:, j].copy())
            h["sigma"].append(self.market.sigmas[self.t][:, j].copy())
            h["bid"].append(bids[:, j].copy())
            h["auction"].append(np.stack([won, won.astype(float), res.win_cost[:, j]], axis=1))
            h["impression"].append(np.stack([won, won.astype(float)], axis=1))
            h["lwc"].append(res.least_winning_cost.copy())

    def online_lp_scale(self, j: int, remaining: float, t: int) -> float:
        """Online LP: the bid scale 1/r* where buying every past-seen impression with v/p >= r*, scaled to the
        expected remaining traffic, spends the remaining budget."""
        if not self.lp_v or remaining <= 0:
            return 0.0
        v = np.concatenate([x[:, j] for x in self.lp_v[-8:]])
        p = np.concatenate([x[:, j] for x in self.lp_p[-8:]])
        seen = sum(len(x) for x in self.lp_v[-8:])
        share_seen = self.profile[max(0, t - 8) : t].sum()
        weight = (
            self.profile[t:].sum()
            / max(share_seen, 1e-9)
            * (self.cfg.n_impressions * share_seen)
            / max(seen, 1)
        )
        ok = p > 0
        if not ok.any():
            return 1.0
        ratio = v[ok] / p[ok]
        order = np.argsort(-ratio)
        spend = np.cumsum(p[ok][order]) * weight
        k = int(np.searchsorted(spend, remaining))
        if k >= len(order):
            return float(1.0 / max(ratio[order[-1]], 1e-6))
        return float(1.0 / max(ratio[order[k]], 1e-6))

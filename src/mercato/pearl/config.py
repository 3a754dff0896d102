"""Configs of AIGB-Pearl, its simulator and its baselines (one dataclass per method).

Paper: "Enhancing Generative Auto-bidding with Offline Reward Evaluation and Policy Search" (ICLR 2026,
arXiv 2509.15927v3). Equation numbers refer to the ICLR version as digested in ``docs/pearl.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BCConfig",
    "DTConfig",
    "DataConfig",
    "DiffBidConfig",
    "EvaluatorConfig",
    "IQLConfig",
    "InvDynConfig",
    "PearlConfig",
    "PlannerConfig",
    "SimConfig",
]


@dataclass
class SimConfig:
    """The auction market: advertisers, traffic profile, auction rule (ICLR section 2.1)."""

    n_advertisers: int = 30  # advertisers per episode (paper's simulator: 30 of four budget levels)
    budget_levels: tuple[float, ...] = (1500.0, 2000.0, 2500.0, 3000.0)  # B levels (section 5.1)
    n_steps: int = 96  # T, 15-minute steps of a day (App. F.1)
    n_impressions: int = 20000  # impression opportunities per episode, spread by the traffic profile
    auction: Literal["second_price", "gsp", "first_price"] = "second_price"  # pricing rule
    slot_coefs: tuple[float, ...] = (1.0, 0.8, 0.6)  # GSP exposure coefficients (AuctionNet's 3 slots)
    shading: float = 0.85  # first-price bid shading: submitted bid = shading * a * v
    reserve_price: float = 0.0  # a winner pays at least this
    value_scale: float = 1.0  # mean value of one impression to one advertiser
    value_sigma: float = 0.6  # log-normal spread of impression values
    price_scale: float = 1.0  # competitors' market-price scale (multiplies their values)
    advertiser_spread: float = 0.3  # log-normal spread of advertisers' value levels
    pvalue_sigma_frac: float = 0.2  # pValueSigma reported to an agent, as a fraction of pValue

    def __post_init__(self) -> None:
        if self.n_advertisers < 2:
            raise ValueError(f"n_advertisers must be >= 2, got {self.n_advertisers}")
        if self.n_steps < 2:
            raise ValueError(f"n_steps must be >= 2, got {self.n_steps}")
        if self.n_impressions < self.n_steps:
            raise ValueError("n_impressions must be >= n_steps")
        if any(b <= 0 for b in self.budget_levels):
            raise ValueError(f"budget_levels must be positive, got {self.budget_levels}")
        if not 0 < self.shading <= 1:
            raise ValueError(f"shading must lie in (0, 1], got {self.shading}")


@dataclass
class DataConfig:
    """Offline trajectories from diverse behaviour policies (section 5.1: 5k trajectories from 20 advertisers)."""

    n_episodes: int = 40  # episodes simulated; every advertiser of an episode gives one trajectory
    policies: tuple[str, ...] = (
        "pid",
        "fixed",
        "onlinelp",
        "pid_noisy",
        "fixed_noisy",
        "onlinelp_noisy",
    )  # behaviour mix
    noise: float = 0.15  # log-normal noise on the bid scale of the *_noisy policies


@dataclass
class InvDynConfig:
    """Inverse dynamics a_t = f_phi(s_t, s_{t+1}), shared by DiffBid and Pearl (App. B, Algorithm 1)."""

    hidden: int = 64  # width of the MLP
    steps: int = 800  # Adam steps
    lr: float = 1e-3  # learning rate
    batch: int = 512  # transitions per step


@dataclass
class EvaluatorConfig:
    """Trajectory evaluator y_phi(tau), Eq. 11/59."""

    hidden: int = 128  # width of the MLP over the flattened trajectory
    steps: int = 800  # Adam steps
    lr: float = 1e-3  # learning rate
    batch: int = 256  # trajectories per step
    beta4: float = 1.0  # beta_4, weight of the pair-wise Bradley-Terry loss (Eq. 59), value UNCONFIRMED
    beta1: float = 1.0  # beta_1, weight of the Lipschitz hinge (Eq. 59), value UNCONFIRMED
    bt_scale: float = 20.0  # temperature of the BT logit: sigma(scale * (y_w - y_l)); 1 in the paper
    lip_margin: float = 1.1  # L_e = margin * Lipschitz constant estimated from data (Algorithm 1 step 1)
    advertiser_attributes: bool = (
        True  # feed the data's static advertiser attributes (attr_* columns), when it has them
    )
    text_embedding: bool = False  # add the MiniLM advertiser-text embedding (stands for the paper's LLM)


@dataclass
class PlannerConfig:
    """Causal-transformer planner p_theta(tau | y) with a Gaussian head of fixed sigma (section 4.1)."""

    d_model: int = 32  # width
    n_layers: int = 1  # transformer layers
    n_heads: int = 2  # attention heads
    sigma: float = 0.004  # fixed sigma_theta of the next cost ratio
    bc_steps: int = 300  # conditional-BC warm start steps (Algorithm 1 step 3)
    lr: float = 2e-3  # warm-start learning rate
    batch: int = 64  # trajectories per step


@dataclass
class PearlConfig:
    """AIGB-Pearl policy search against the frozen evaluator, Eq. 12 and Algorithm 1."""

    evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    invdyn: InvDynConfig = field(default_factory=InvDynConfig)
    search_steps: int = 40  # policy-search iterations (Algorithm 1 step 4)
    search_lr: float = 3e-4  # policy-search learning rate
    rollouts: int = 32  # tau ~ p_theta(. | y*) sampled per iteration
    beta2: float = 1.0  # beta_2, BC (KL) weight; Table 12's best value
    beta3: float = 1.0  # beta_3, synchronous-coupling Lipschitz penalty weight, value UNCONFIRMED
    lip_margin: float = 1.1  # L_p = margin * Lipschitz constant of p_D(tau | y) estimated from data (Eq. 10)
    y_star_eps: float = 0.05  # epsilon in y* = (1 + epsilon) y_m
    y_star_scope: Literal["budget", "global"] = "budget"  # y_m: best y per budget level, or over all of D
    gradient: Literal["reinforce", "pathwise"] = "reinforce"  # estimator of grad E[y_phi] (Eq. 55)
    use_pairwise: bool = True  # ablation switch: beta4 = 0 when False
    use_lipschitz: bool = True  # ablation switch: beta1 = beta3 = 0 when False
    use_kl: bool = True  # ablation switch: beta2 = 0 when False


@dataclass
class DiffBidConfig:
    """DiffBid / AIGB: conditional DDPM over state trajectories (App. B)."""

    invdyn: InvDynConfig = field(default_factory=InvDynConfig)
    channels: int = 16  # temporal U-Net width
    n_diffusion: int = 10  # K diffusion steps, cosine beta schedule
    steps: int = 500  # Adam steps
    lr: float = 2e-3  # learning rate
    batch: int = 64  # trajectories per step
    cond_drop: float = 0.25  # probability of dropping y during training (classifier-free guidance)
    guidance: float = 1.2  # omega of classifier-free guidance
    y_star_eps: float = 0.05  # epsilon in y* = (1 + epsilon) y_m
    y_star_scope: Literal["budget", "global"] = "budget"  # y_m: best y per budget level, or over all of D


@dataclass
class DTConfig:
    """Decision Transformer (return-to-go conditioned causal transformer)."""

    d_model: int = 32  # width
    n_layers: int = 1  # layers
    n_heads: int = 2  # heads
    steps: int = 300  # Adam steps
    lr: float = 2e-3  # learning rate
    batch: int = 64  # trajectories per step
    rtg_eps: float = 0.05  # initial return-to-go = (1 + eps) * best y of the budget level


@dataclass
class BCConfig:
    """Behaviour cloning: MLP s_t -> a_t on every logged transition."""

    hidden: int = 64  # width
    steps: int = 1500  # Adam steps
    lr: float = 1e-3  # learning rate
    batch: int = 512  # transitions per step
    top_frac: float = 1.0  # clone only the best fraction of trajectories by y (1: all)


@dataclass
class IQLConfig:
    """Implicit Q-learning (Kostrikov et al. 2022) with advantage-weighted policy extraction."""

    hidden: int = 64  # width
    steps: int = 1000  # Adam steps
    lr: float = 1e-3  # learning rate
    batch: int = 512  # transitions per step
    expectile: float = 0.7  # tau of the expectile value loss
    temperature: float = 3.0  # beta of the advantage weights exp(beta A)
    gamma: float = 0.99  # discount
    reward_scale: float = 100.0  # reward = scale * value / B

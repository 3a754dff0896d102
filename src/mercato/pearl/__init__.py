"""AIGB-Pearl: generative auto-bidding with an offline trajectory evaluator and constrained policy search.

``from mercato.pearl import SimConfig, AuctionEnv, generate, fit_pearl, PearlAgent`` is the API; see docs/pearl.md.
"""

from mercato.pearl.config import (
    BCConfig,
    DataConfig,
    DiffBidConfig,
    DTConfig,
    EvaluatorConfig,
    InvDynConfig,
    IQLConfig,
    PearlConfig,
    PlannerConfig,
    SimConfig,
)
from mercato.pearl.data import (
    TrajectoryData,
    TrajectoryError,
    from_auctionnet,
    generate,
    load_parquet,
    save_parquet,
)
from mercato.pearl.evaluate import BiddingAgent, evaluate, pathologies, run_bidding_agent
from mercato.pearl.methods import DiffBidAgent, PearlAgent, fit_diffbid, fit_evaluator, fit_invdyn, fit_pearl
from mercato.pearl.sim import AuctionEnv, PolicyBank, run_auctions, run_auctions_loop

__all__ = [
    "AuctionEnv", "BCConfig", "BiddingAgent", "DTConfig", "DataConfig", "DiffBidAgent", "DiffBidConfig",
    "EvaluatorConfig", "IQLConfig", "InvDynConfig", "PearlAgent", "PearlConfig", "PlannerConfig", "PolicyBank",
    "SimConfig", "TrajectoryData", "TrajectoryError", "evaluate", "fit_diffbid", "fit_evaluator", "fit_invdyn",
    "fit_pearl", "from_auctionnet", "generate", "load_parquet", "pathologies", "run_auctions", "run_auctions_loop",
    "run_bidding_agent", "save_parquet",
]  # fmt: skip

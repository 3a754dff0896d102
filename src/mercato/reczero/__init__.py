"""RecZero / RecOne (arXiv 2510.23077): rating prediction by an LLM trained with GRPO on a four-stage
think-before-recommendation template, optionally after an SFT cold start (RecOne).

Examples:
    >>> from mercato.reczero import RecZeroConfig, total_reward
    >>> RecZeroConfig().grpo.num_generations
    8
"""

from mercato.reczero.baselines import BiasBaseline, GlobalMean, MatrixFactorization
from mercato.reczero.config import (
    BaselineConfig,
    DataConfig,
    EvalConfig,
    GRPOStageConfig,
    RecZeroConfig,
    RewardConfig,
    SFTStageConfig,
)
from mercato.reczero.data import RecZeroData, build_data, split_by_time
from mercato.reczero.prompts import SYSTEM_PROMPT, TAGS, RatingExample, build_messages, template_rationale
from mercato.reczero.rewards import (
    answer_reward,
    format_reward,
    is_valid_format,
    parse_rating,
    predict_ratings,
    total_reward,
)
from mercato.reczero.trainer import EvalResult, RecZeroTrainer, evaluate_policy

__all__ = [
    "SYSTEM_PROMPT",
    "TAGS",
    "BaselineConfig",
    "BiasBaseline",
    "DataConfig",
    "EvalConfig",
    "EvalResult",
    "GRPOStageConfig",
    "GlobalMean",
    "MatrixFactorization",
    "RatingExample",
    "RecZeroConfig",
    "RecZeroData",
    "RecZeroTrainer",
    "RewardConfig",
    "SFTStageConfig",
    "answer_reward",
    "build_data",
    "build_messages",
    "evaluate_policy",
    "format_reward",
    "is_valid_format",
    "parse_rating",
    "predict_ratings",
    "split_by_time",
    "template_rationale",
    "total_reward",
]

"""Configs of RecZero / RecOne (Kong et al., "Think before Recommendation: Autonomous Reasoning-enhanced
Recommender", NeurIPS 2025, arXiv 2510.23077). One dataclass per stage; :class:`RecZeroConfig` holds them.

Defaults follow the paper where it is known (G = 8 rollouts, batch 8, lr 2e-6, beta = 0, temperature 1.0,
graded reward 1 - |err|/4) except where the CPU budget forces smaller values; ``docs/reczero.md`` lists every
deviation. Override any field from the command line (``--grpo.steps 20``) or a YAML file (``--config``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "BaselineConfig",
    "DataConfig",
    "EvalConfig",
    "GRPOStageConfig",
    "RecZeroConfig",
    "RewardConfig",
    "SFTStageConfig",
]


@dataclass
class DataConfig:
    """MovieLens-100K, per-user time split: last rating = test, second-to-last = validation, rest = train."""

    variant: str = "100k"  # MovieLens variant read from the installed data package ("100k" or "1m")
    history_len: int = 4  # k, most recent rated items shown in the prompt (paper: full history; CPU: short)
    min_history: int = 5  # users with fewer earlier ratings are not used as targets
    num_test_users: int = 300  # held-out users; their last rating is the test target
    num_val_users: int = 100  # users whose second-to-last rating forms the validation set
    num_train_prompts: int = 1000  # training targets sampled from the train part (SFT and GRPO pools)
    seed: int = 0  # sampling seed of users and training targets


@dataclass
class RewardConfig:
    """Rule-based reward R = R_format + R_answer (Sec. 3; constants UNCONFIRMED, hence configurable)."""

    format_valid: float = 0.5  # R_format when all four tags are present, ordered, non-empty, rate parses
    format_invalid: float = -0.5  # R_format otherwise
    partial_format_weight: float = 0.0  # extra credit per ordered tag when invalid (0 = paper; shaping, ours)
    max_error: float = 4.0  # R_answer = 1 - |y - y_hat| / max_error (4 = range of 1..5 stars)
    answer_requires_format: bool = True  # R_answer = 0 unless the format is valid (as in the authors' code)
    rating_min: float = 1.0  # lowest valid rating
    rating_max: float = 5.0  # highest valid rating


@dataclass
class SFTStageConfig:
    """RecOne cold start: SFT on rationales (template-built offline, or from an OpenAI-compatible teacher)."""

    num_examples: int = 1000  # cold-start samples (paper: about 1,000 teacher rationales)
    epochs: float = 1.0  # passes over the cold-start set
    learning_rate: float = 5e-5  # AdamW step size
    lr_scheduler: str = "cosine"  # transformers scheduler name ("cosine", "constant", "linear")
    batch_size: int = 8  # sequences per optimizer step (per device)
    grad_accum: int = 1  # gradient accumulation steps
    max_length: int = 640  # truncate prompt + rationale to this many tokens
    rationale: Literal["template", "teacher"] = "template"  # who writes the rationale (deviation: template)
    teacher_url: str = ""  # OpenAI-compatible base URL (e.g. http://localhost:8000/v1) when rationale=teacher
    teacher_model: str = ""  # teacher model name at that endpoint
    save_steps: int = 50  # checkpoint every this many optimizer steps (resumable)
    trainable_layers: int = 0  # train only the top N decoder blocks (0 = all; CPU budget option, ours)


@dataclass
class GRPOStageConfig:
    """GRPO stage (RecZero from the base model; RecOne from the SFT model)."""

    steps: int = 300  # optimizer steps (paper: 300 steps x batch 8)
    num_generations: int = 8  # G, rollouts per prompt
    prompts_per_step: int = 8  # prompts per optimizer step (paper batch size 8)
    learning_rate: float = 2e-6  # AdamW step size (paper 2e-6)
    temperature: float = 1.0  # rollout sampling temperature (paper 1.0)
    beta: float = 0.0  # KL coefficient to the reference model (paper 0)
    epsilon: float = 0.2  # PPO clip range of the ratio
    loss_type: str = "grpo"  # TRL loss normalisation (grpo, dapo, dr_grpo, bnpo, ...)
    scale_rewards: Literal["group", "batch", "none"] = "group"  # Â = (r - mean) / std of the group
    max_completion_length: int = 96  # longest rollout in tokens (CPU budget; paper allows long reasoning)
    save_steps: int = 5  # checkpoint every this many steps (resumable)
    trainable_layers: int = 0  # train only the top N decoder blocks (0 = all; CPU budget option, ours)


@dataclass
class EvalConfig:
    """Evaluation decoding."""

    max_new_tokens: int = 96  # longest answer in tokens
    batch_size: int = 16  # prompts per generate call
    temperature: float = 0.0  # 0 = greedy decoding
    fallback: Literal["user_mean", "item_mean", "global_mean"] = (
        "user_mean"  # prediction when rate unparsable
    )


@dataclass
class BaselineConfig:
    """Classical baselines: global mean, user+item bias, matrix factorisation."""

    bias_reg: float = 5.0  # lambda, shrinkage of user/item biases toward 0 (ratings count)
    mf_dim: int = 32  # latent factors of MF
    mf_epochs: int = 100  # full-batch Adam epochs of MF (chosen on the validation split)
    mf_lr: float = 0.02  # MF learning rate
    mf_reg: float = 0.1  # L2 weight on MF factors and biases (chosen on the validation split)


@dataclass
class RecZeroConfig:
    """Everything a RecZero / RecOne run needs."""

    method: Literal["reczero", "recone"] = "recone"  # reczero: GRPO only; recone: SFT, then GRPO
    model: str = "smollm2"  # policy: "smollm2" (packaged), "tiny" (random, tests) or a local HF folder
    device: str = "auto"  # "auto" picks CUDA/MPS when present, else CPU
    seed: int = 0  # global seed
    data: DataConfig = field(default_factory=DataConfig)  # data and split
    reward: RewardConfig = field(default_factory=RewardConfig)  # reward constants
    sft: SFTStageConfig = field(default_factory=SFTStageConfig)  # RecOne cold start
    grpo: GRPOStageConfig = field(default_factory=GRPOStageConfig)  # RL stage
    eval: EvalConfig = field(default_factory=EvalConfig)  # decoding for evaluation
    baselines: BaselineConfig = field(default_factory=BaselineConfig)  # classical baselines

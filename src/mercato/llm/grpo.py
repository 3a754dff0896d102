"""Thin glue over TRL's ``GRPOTrainer`` (pinned: trl==1.16.0, see pyproject ``[llm]``).

TRL owns rollout generation, the clipped objective, distributed execution (accelerate / DeepSpeed / FSDP via
``accelerate launch``) and vLLM rollouts (``use_vllm``). This module only

* maps a small, documented :class:`GRPOSettings` onto ``GRPOConfig`` with CPU-safe defaults
  (``bf16`` only when a GPU supports it, no hub, no external loggers),
* builds the trainer from a model, a tokenizer, plain-callable rewards and a list of dataset rows,
* records per-step wall time and the logged metrics (rewards, losses) through callbacks,
* resumes from the newest ``checkpoint-*`` folder in the output directory.

The advantage TRL computes equals :func:`mercato.llm.advantages.group_relative_advantages` with the same
``scale_rewards`` (checked in ``tests/llm/test_grpo.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from mercato.llm.loading import trainer_defaults

logger = logging.getLogger(__name__)

__all__ = [
    "GRPOSettings",
    "MetricsRecorder",
    "StepTimer",
    "build_grpo_trainer",
    "last_checkpoint",
    "make_grpo_args",
    "train_resumable",
]


@dataclass
class GRPOSettings:
    """The GRPO knobs mercato exposes; everything else keeps TRL's defaults."""

    output_dir: str  # where TRL writes checkpoint-* folders
    steps: int = 10  # optimizer steps
    num_generations: int = 8  # G, completions per prompt
    prompts_per_step: int = 1  # prompts per optimizer step (batch = prompts_per_step * G completions)
    learning_rate: float = 1e-6  # AdamW step size
    temperature: float = 1.0  # rollout temperature
    beta: float = 0.0  # KL coefficient (0: no reference model is loaded)
    epsilon: float = 0.2  # clip range
    loss_type: str = "grpo"  # TRL loss normalisation
    scale_rewards: str = "group"  # "group" | "batch" | "none"
    max_completion_length: int = 64  # rollout length cap in tokens
    save_steps: int = 0  # checkpoint every N steps (0 = never)
    logging_steps: int = 1  # log metrics every N steps
    seed: int = 0  # trainer seed
    extra: dict[str, Any] = field(default_factory=dict)  # any further GRPOConfig fields, passed through


def make_grpo_args(s: GRPOSettings) -> Any:
    """A ``trl.GRPOConfig`` for ``s`` (bf16 only on a bf16-capable GPU; ``use_cpu`` without one)."""
    from trl import GRPOConfig

    kwargs: dict[str, Any] = trainer_defaults(s.output_dir, s.save_steps, s.seed, s.logging_steps)
    kwargs.update(
        max_steps=s.steps,
        num_generations=s.num_generations,
        per_device_train_batch_size=s.prompts_per_step * s.num_generations,
        gradient_accumulation_steps=1,
        learning_rate=s.learning_rate,
        temperature=s.temperature,
        beta=s.beta,
        epsilon=s.epsilon,
        loss_type=s.loss_type,
        scale_rewards=s.scale_rewards,
        max_completion_length=s.max_completion_length,
        disable_tqdm=False,
        lr_scheduler_type="constant",
    )
    kwargs.update(s.extra)
    return GRPOConfig(**kwargs)


class StepTimer(TrainerCallback):
    """Wall time of every optimizer step (generation + scoring + update), in seconds."""

    def __init__(self) -> None:
        self.step_times: list[float] = []
        self._t0 = 0.0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._t0 = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.step_times.append(time.perf_counter() - self._t0)


class MetricsRecorder(TrainerCallback):
    """Keeps every ``logs`` dict the trainer emits, with its global step."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        if logs:
            row = {k: float(v) for k, v in logs.items() if isinstance(v, (int, float))}
            row["step"] = float(state.global_step)
            self.history.append(row)


def build_grpo_trainer(
    model: Any,
    tokenizer: Any,
    reward_funcs: Sequence[Callable[..., list[float]]],
    rows: Sequence[dict[str, Any]],
    settings: GRPOSettings,
    callbacks: Sequence[TrainerCallback] = (),
    reward_weights: Sequence[float] | None = None,
) -> Any:
    """A ``trl.GRPOTrainer`` on ``rows`` (each with a ``prompt`` and the columns the rewards read)."""
    from datasets import Dataset
    from trl import GRPOTrainer

    if not rows:
        raise ValueError("GRPO needs at least one training row")
    args = make_grpo_args(settings)
    if reward_weights is not None:
        args.reward_weights = list(reward_weights)
    return GRPOTrainer(
        model=model,
        reward_funcs=list(reward_funcs),  # type: ignore[arg-type]
        args=args,
        train_dataset=Dataset.from_list(list(rows)),
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` folder in ``output_dir``, or None."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    ckpts = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    if not ckpts:
        return None
    return str(max(ckpts, key=lambda p: int(p.name.split("-")[-1])))


def train_resumable(trainer: Any, resume: bool = True) -> Any:
    """``trainer.train()``, resuming from the newest checkpoint in its output dir when ``resume``."""
    ckpt = last_checkpoint(trainer.args.output_dir) if resume else None
    if ckpt:
        logger.info("resuming from %s", ckpt)
    return trainer.train(resume_from_checkpoint=ckpt)

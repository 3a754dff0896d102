"""Thin glue over TRL's ``SFTTrainer`` (trl==1.16.0) for prompt-completion chat data.

Rows are ``{"prompt": [messages], "completion": [{"role": "assistant", "content": ...}]}``; TRL applies the
chat template and, for this prompt-completion format, computes the loss on the completion tokens only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from mercato.llm.loading import trainer_defaults

logger = logging.getLogger(__name__)

__all__ = ["SFTSettings", "build_sft_trainer", "freeze_lower_layers", "make_sft_args"]


@dataclass
class SFTSettings:
    """The SFT knobs mercato exposes; everything else keeps TRL's defaults."""

    output_dir: str  # where TRL writes checkpoint-* folders
    epochs: float = 1.0  # passes over the data
    max_steps: int = -1  # if > 0, overrides epochs
    learning_rate: float = 5e-5  # AdamW step size
    lr_scheduler: str = "cosine"  # transformers scheduler name
    batch_size: int = 8  # sequences per device step
    grad_accum: int = 1  # gradient accumulation
    max_length: int = 1024  # truncate prompt + completion to this many tokens
    save_steps: int = 0  # checkpoint every N steps (0 = never)
    logging_steps: int = 1  # log every N steps
    seed: int = 0  # trainer seed
    extra: dict[str, Any] = field(default_factory=dict)  # any further SFTConfig fields, passed through


def make_sft_args(s: SFTSettings) -> Any:
    """A ``trl.SFTConfig`` for ``s`` (bf16 only on a bf16-capable GPU)."""
    from trl import SFTConfig

    kwargs: dict[str, Any] = trainer_defaults(s.output_dir, s.save_steps, s.seed, s.logging_steps)
    kwargs.update(
        num_train_epochs=s.epochs,
        max_steps=s.max_steps,
        learning_rate=s.learning_rate,
        per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum,
        max_length=s.max_length,
        packing=False,
        lr_scheduler_type=s.lr_scheduler,
    )
    kwargs.update(s.extra)
    return SFTConfig(**kwargs)


def build_sft_trainer(
    model: Any,
    tokenizer: Any,
    rows: Sequence[dict[str, Any]],
    settings: SFTSettings,
    callbacks: Sequence[TrainerCallback] = (),
) -> Any:
    """A ``trl.SFTTrainer`` on prompt-completion ``rows``."""
    from datasets import Dataset
    from trl import SFTTrainer

    if not rows:
        raise ValueError("SFT needs at least one training row")
    return SFTTrainer(
        model=model,
        args=make_sft_args(settings),
        train_dataset=Dataset.from_list(list(rows)),
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )


def freeze_lower_layers(model: Any, trainable_layers: int) -> int:
    """Freeze embeddings and all but the top ``trainable_layers`` decoder blocks (<= 0: train everything).

    A CPU budget measure (fewer weights to back-propagate into); returns the number of trainable parameters.
    """
    if trainable_layers > 0:
        layers = model.model.layers
        n = len(layers)
        for p in model.parameters():
            p.requires_grad_(False)
        for layer in layers[max(n - trainable_layers, 0) :]:
            for p in layer.parameters():
                p.requires_grad_(True)
        for p in model.model.norm.parameters():
            p.requires_grad_(True)
    else:
        for p in model.parameters():
            p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)

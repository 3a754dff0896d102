"""Settings and bookkeeping of :class:`~mercato.ctr.trainer.CTRTrainer`: its config, result and the
counters a checkpoint stores, plus the check that refuses resuming a checkpoint of another model or config."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from mercato.ctr.checks import at_least, positive
from mercato.ctr.evaluation import RESUME_FREE_KEYS, config_differences

__all__ = ["FitProgress", "TrainResult", "TrainerConfig", "check_resumable", "model_identity"]


@dataclass
class TrainerConfig:
    """Optimisation, early stopping, checkpointing and device settings of :class:`CTRTrainer`."""

    epochs: int = 10  # maximum passes over the training split
    batch_size: int = 4096  # global mini-batch size (split across ranks under torchrun)
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # L2 on non-embedding parameters (Adam weight_decay)
    embedding_l2: float = 0.0  # L2 on embedding tables (FuxiCTR embedding_regularizer)
    max_grad_norm: float = 0.0  # clip the gradient norm to this value (0: no clipping)
    patience: int = 2  # epochs without validation improvement before stopping (0: never stop early)
    monitor: str = "auc"  # validation metric key for early stopping and best epoch (e.g. auc, gauc, cvr/auc)
    metrics: tuple[str, ...] = ("auc", "gauc", "logloss", "pcoc")  # validation metrics computed per head
    eval_heads: tuple[str, ...] = ()  # heads evaluated (empty: every head the model maps to a label)
    eval_batch_size: int = 65536  # rows per forward pass in evaluate/predict
    seed: int = 0  # seeds dropout (torch RNG) and the per-epoch shuffle (seed + epoch)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    checkpoint_every_steps: int = 0  # also checkpoint every N optimizer steps (0: only after each epoch)
    num_threads: int = 0  # torch CPU threads (0: leave torch's default)
    progress: bool = True  # show a progress bar (also off with MERCATO_NO_PROGRESS=1)

    def __post_init__(self) -> None:
        at_least(self, 1, "epochs", "batch_size", "eval_batch_size")
        positive(self, "lr")
        at_least(self, 0, "weight_decay", "embedding_l2", "max_grad_norm", "patience")
        at_least(self, 0, "checkpoint_every_steps", "num_threads")
        self.metrics, self.eval_heads = tuple(self.metrics), tuple(self.eval_heads)
        if not self.metrics:
            raise ValueError("metrics must name at least one metric, e.g. ['auc']")
        base = self.monitor.rsplit("/", 1)[-1]
        if base not in self.metrics:
            raise ValueError(f"monitor '{self.monitor}' is not among metrics {list(self.metrics)}")


@dataclass
class TrainResult:
    """What :meth:`CTRTrainer.fit` returns."""

    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: epoch, train_loss, valid_*
    best_epoch: int = -1  # 1-based epoch with the best validation metric (-1: none finished)
    best_valid: dict[str, float] = field(default_factory=dict)  # validation metrics of the best epoch
    epochs_run: int = 0  # epochs finished (including ones before a resume)
    global_step: int = 0  # optimizer steps taken
    stopped_early: bool = False  # stopped by patience
    interrupted: bool = False  # stopped by ``stop_after_steps`` (a simulated kill)


@dataclass
class FitProgress:
    """The counters a checkpoint stores (everything :meth:`CTRTrainer.fit` needs to continue)."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    bad_epochs: int = 0
    best_value: float | None = None
    stopped: bool = False

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FitProgress:
        return cls(**{f.name: state[f.name] for f in dataclasses.fields(cls) if f.name in state})


def model_identity(model: nn.Module) -> dict[str, Any]:
    """The model's class and (dataclass) config, stored in checkpoints to refuse resuming another model."""
    cfg = getattr(model, "config", None)
    config = asdict(cfg) if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type) else None
    return {"class": f"{type(model).__module__}.{type(model).__qualname__}", "config": config}


def check_resumable(
    state: Mapping[str, Any], model: nn.Module, trainer_config: Mapping[str, Any], where: Path | None
) -> None:
    """Refuse (``ValueError`` naming ``where`` and the keys) a resume whose model class, model config or
    training-relevant trainer config differs from the checkpoint ``state``'s."""
    saved_model, current = state.get("model"), model_identity(model)
    if saved_model is not None and saved_model.get("class") != current["class"]:
        raise ValueError(
            f"{where}: the checkpoint holds a {saved_model.get('class')}, not a {current['class']}; "
            "resume with the same model or use a new output folder"
        )
    if saved_model is not None and saved_model.get("config") is not None and current["config"]:
        diffs = config_differences(saved_model["config"], current["config"])
        if diffs:
            raise ValueError(f"{where}: cannot resume, the model config differs: {'; '.join(diffs)}")
    if "trainer_config" in state:
        diffs = config_differences(state["trainer_config"], trainer_config, RESUME_FREE_KEYS)
        if diffs:
            raise ValueError(
                f"{where}: cannot resume, the training config differs from the checkpoint's: "
                f"{'; '.join(diffs)}"
            )

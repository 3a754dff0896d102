"""The CTR trainer: Adam on binary cross-entropy, early stopping on validation AUC, resumable checkpoints.

``CTRTrainer(model, config, train, valid, output_dir).fit()`` trains any :class:`~mercato.ctr.base.CTRModel`.

Reproducibility and resume: epoch ``e`` shuffles with a generator seeded ``seed + e``, and each checkpoint
stores the model, optimizer, torch RNG (dropout), epoch/step counters, the epoch's running loss and the
early-stopping state. A run killed at any point and resumed with ``fit(resume=True)`` therefore replays
exactly the same batches and reaches the same weights as an uninterrupted run.

Folders under ``output_dir``: ``checkpoint/`` (latest state, for resume) and ``best/`` (the weights of the
best validation epoch, restored at the end of ``fit``).

Data parallel: under ``torchrun`` (``WORLD_SIZE > 1`` in the environment) ``fit`` joins a process group
(gloo on CPU, nccl on CUDA) and wraps the model in DDP. Every global batch of ``batch_size`` rows is split
into contiguous per-rank slices of the same shuffled order, and each rank's loss is weighted by its slice
size, so the averaged gradient equals the single-process gradient of the global batch. Only rank 0 writes.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mercato.core.checkpoint import load_checkpoint, save_checkpoint
from mercato.core.device import resolve_device
from mercato.core.metrics import auc, gauc, logloss
from mercato.core.progress import progress
from mercato.ctr.base import CTRModel
from mercato.ctr.schema import CTRTensors

__all__ = ["CTRTrainer", "NonFiniteLossError", "TrainResult", "TrainerConfig"]

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


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
    monitor: Literal["auc", "gauc", "logloss"] = "auc"  # validation metric for early stopping and best epoch
    eval_batch_size: int = 65536  # rows per forward pass in evaluate/predict
    seed: int = 0  # seeds dropout (torch RNG) and the per-epoch shuffle (seed + epoch)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    checkpoint_every_steps: int = 0  # also checkpoint every N optimizer steps (0: only after each epoch)
    num_threads: int = 0  # torch CPU threads (0: leave torch's default)
    progress: bool = True  # show a progress bar (also off with MERCATO_NO_PROGRESS=1)


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


def _better(monitor: str, new: float, old: float | None) -> bool:
    if old is None or math.isnan(old):
        return not math.isnan(new)
    return new < old if monitor == "logloss" else new > old


class CTRTrainer:
    """Trains a CTR model on encoded splits.

    Args:
        model: a :class:`CTRModel` (``forward(batch) -> logits (B,)``).
        config: optimisation and checkpoint settings.
        train: encoded training rows.
        valid: encoded validation rows (early stopping and best-epoch selection).
        output_dir: folder for ``checkpoint/`` and ``best/``; ``None`` keeps everything in memory.
    """

    def __init__(
        self,
        model: CTRModel,
        config: TrainerConfig,
        train: CTRTensors,
        valid: CTRTensors,
        output_dir: str | Path | None = None,
    ) -> None:
        if len(train) == 0:
            raise ValueError("the training split is empty")
        if config.batch_size < 1 or config.eval_batch_size < 1:
            raise ValueError("batch_size and eval_batch_size must be >= 1")
        if config.num_threads > 0:
            torch.set_num_threads(config.num_threads)
        self.config = config
        self.train_data = train
        self.valid_data = valid
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.rank, self.world_size = 0, 1
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        emb = [m.weight for m in model.modules() if isinstance(m, nn.Embedding)]
        emb_ids = {id(p) for p in emb}
        dense = [p for p in model.parameters() if id(p) not in emb_ids]
        groups = [
            g
            for g in (
                {"params": emb, "weight_decay": config.embedding_l2},
                {"params": dense, "weight_decay": config.weight_decay},
            )
            if g["params"]
        ]
        self.optimizer = torch.optim.Adam(groups, lr=config.lr)

    # ----------------------------------------------------------------- paths
    @property
    def checkpoint_dir(self) -> Path | None:
        """``output_dir/checkpoint`` (latest state for resume), or None."""
        return self.output_dir / "checkpoint" if self.output_dir is not None else None

    @property
    def best_dir(self) -> Path | None:
        """``output_dir/best`` (weights of the best validation epoch), or None."""
        return self.output_dir / "best" if self.output_dir is not None else None

    # ----------------------------------------------------------- distributed
    def _init_distributed(self) -> bool:
        """Join the torchrun process group if launched under torchrun; True if this call created it."""
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return False
        created = False
        if self.device.type == "cuda" and self.device.index is None:  # one GPU per local rank
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
            self.model.to(self.device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if self.device.type == "cuda" else "gloo")
            created = True
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        log.info("data parallel: rank %d of %d on %s", self.rank, self.world_size, self.device)
        return created

    # ------------------------------------------------------------ checkpoint
    def _save(self, state: dict[str, Any]) -> None:
        if self.checkpoint_dir is None or self.rank != 0:
            return
        save_checkpoint(self.checkpoint_dir, self.model, self.optimizer, state)

    def _load(self) -> dict[str, Any]:
        if self.checkpoint_dir is None:
            raise ValueError("fit(resume=True) needs an output_dir holding a checkpoint")
        if not (self.checkpoint_dir / "state.json").is_file():
            log.info("no checkpoint in %s; starting from scratch", self.checkpoint_dir)
            return {}
        ckpt = load_checkpoint(self.checkpoint_dir)
        self.model.load_state_dict(ckpt.model_state)
        if ckpt.optimizer_state is not None:
            self.optimizer.load_state_dict(ckpt.optimizer_state)
        ckpt.restore_rng()
        log.info(
            "resumed from %s at epoch %s step %s",
            self.checkpoint_dir,
            ckpt.state.get("epoch"),
            ckpt.state.get("global_step"),
        )
        return dict(ckpt.state)

    # -------------------------------------------------------------- training
    def fit(self, resume: bool = False, stop_after_steps: int | None = None) -> TrainResult:
        """Train with early stopping and restore the best weights.

        Args:
            resume: continue from ``output_dir/checkpoint`` when it exists.
            stop_after_steps: stop (as if killed) once the global step count reaches this value, without
                finishing the epoch; used to test resume. The last checkpoint is whatever was saved before.
        """
        created_pg = self._init_distributed()
        try:
            return self._fit(resume, stop_after_steps)
        finally:
            if created_pg and dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()
            self.rank, self.world_size = 0, 1

    def _fit(self, resume: bool, stop_after_steps: int | None) -> TrainResult:
        cfg = self.config
        state = self._load() if resume else {}
        if not state:
            torch.manual_seed(cfg.seed)
        result = TrainResult(
            history=list(state.get("history", [])),
            best_epoch=int(state.get("best_epoch", -1)),
            best_valid=dict(state.get("best_valid", {})),
        )
        epoch = int(state.get("epoch", 0))
        step_in_epoch = int(state.get("step_in_epoch", 0))
        global_step = int(state.get("global_step", 0))
        loss_sum = float(state.get("loss_sum", 0.0))
        loss_count = int(state.get("loss_count", 0))
        bad_epochs = int(state.get("bad_epochs", 0))
        best_value: float | None = state.get("best_value")
        best_state: dict[str, torch.Tensor] | None = None
        if state and self.best_dir is not None and (self.best_dir / "model.safetensors").is_file():
            best_state = load_checkpoint(self.best_dir).model_state
        stopped = bool(state.get("stopped", False))
        net: nn.Module = self.model
        if self.world_size > 1:
            net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        n = len(self.train_data)
        steps_per_epoch = math.ceil(n / cfg.batch_size)

        def snapshot(**extra: Any) -> dict[str, Any]:
            return {
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "global_step": global_step,
                "loss_sum": loss_sum,
                "loss_count": loss_count,
                "bad_epochs": bad_epochs,
                "best_value": best_value,
                "best_epoch": result.best_epoch,
                "best_valid": result.best_valid,
                "history": result.history,
                "stopped": stopped,
                "trainer_config": asdict(cfg),
                **extra,
            }

        while epoch < cfg.epochs and not stopped:
            self.model.train()
            gen = torch.Generator().manual_seed(cfg.seed + epoch)
            order = torch.randperm(n, generator=gen)
            bar = progress(
                total=steps_per_epoch,
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                initial=step_in_epoch,
                disable=not cfg.progress or self.rank != 0,
                leave=False,
            )
            try:
                while step_in_epoch < steps_per_epoch:
                    idx = order[step_in_epoch * cfg.batch_size : (step_in_epoch + 1) * cfg.batch_size]
                    loss_value = self._step(net, idx, epoch, step_in_epoch)
                    loss_sum += loss_value * len(idx)
                    loss_count += len(idx)
                    step_in_epoch += 1
                    global_step += 1
                    bar.update(1)
                    if global_step % 10 == 0:
                        bar.set_postfix(loss=f"{loss_sum / max(loss_count, 1):.4f}")
                    if cfg.checkpoint_every_steps > 0 and global_step % cfg.checkpoint_every_steps == 0:
                        self._save(snapshot())
                    if stop_after_steps is not None and global_step >= stop_after_steps:
                        result.interrupted = True
                        result.global_step = global_step
                        result.epochs_run = epoch
                        return result
            finally:
                bar.close()
            metrics = self.evaluate(self.valid_data)
            record = {
                "epoch": float(epoch + 1),
                "train_loss": loss_sum / max(loss_count, 1),
                **{f"valid_{k}": v for k, v in metrics.items()},
            }
            result.history.append(record)
            value = metrics[cfg.monitor]
            if _better(cfg.monitor, value, best_value):
                best_value, bad_epochs = value, 0
                result.best_epoch, result.best_valid = epoch + 1, dict(metrics)
                best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
                if self.best_dir is not None and self.rank == 0:
                    save_checkpoint(self.best_dir, self.model, None, {"epoch": epoch + 1, "valid": metrics})
            else:
                bad_epochs += 1
            log.info(
                "epoch %d: train loss %.5f, valid auc %.5f gauc %.5f logloss %.5f%s",
                epoch + 1,
                record["train_loss"],
                metrics["auc"],
                metrics["gauc"],
                metrics["logloss"],
                " (best)" if bad_epochs == 0 else "",
            )
            epoch += 1
            step_in_epoch, loss_sum, loss_count = 0, 0.0, 0
            if cfg.patience > 0 and bad_epochs >= cfg.patience:
                stopped = result.stopped_early = True
                log.info("early stopping: no %s improvement for %d epochs", cfg.monitor, bad_epochs)
            self._save(snapshot())
        result.stopped_early = stopped
        result.epochs_run = epoch
        result.global_step = global_step
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return result

    def _step(self, net: nn.Module, idx: torch.Tensor, epoch: int, step: int) -> float:
        """One optimizer step on the global batch ``idx``; returns the global mean loss."""
        total = len(idx)
        if self.world_size > 1:
            idx = idx.tensor_split(self.world_size)[self.rank]  # this rank's contiguous slice
            if len(idx) == 0:
                raise ValueError(
                    f"a global batch of {total} rows cannot be split over {self.world_size} ranks; "
                    "use a batch_size (and data size) >= the number of processes"
                )
        batch = {k: v.to(self.device, non_blocking=True) for k, v in self.train_data.batch(idx).items()}
        logits = net(batch)  # (b,)
        loss = nn.functional.binary_cross_entropy_with_logits(logits, batch["label"])
        objective = loss * (len(idx) * self.world_size / total) + self.model.auxiliary_loss()
        if not torch.isfinite(objective):
            raise NonFiniteLossError(
                f"training loss is {objective.item()} at epoch {epoch + 1}, step {step + 1}; "
                "try a lower lr, gradient clipping (max_grad_norm) or check the input data"
            )
        self.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if self.config.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        value = loss.detach() * len(idx)
        if self.world_size > 1:
            dist.all_reduce(value)
        return float(value) / total

    # ------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, data: CTRTensors) -> np.ndarray:
        """Click probabilities ``(N,)`` as float64."""
        was_training = self.model.training
        self.model.eval()
        out = []
        try:
            for start in range(0, len(data), self.config.eval_batch_size):
                sl = slice(start, start + self.config.eval_batch_size)
                batch = {k: v.to(self.device) for k, v in data.batch(sl).items()}
                out.append(torch.sigmoid(self.model(batch).float()).cpu())  # (b,)
        finally:
            self.model.train(was_training)
        if not out:
            return np.zeros(0, dtype=np.float64)
        return torch.cat(out).numpy().astype(np.float64)

    def evaluate(self, data: CTRTensors) -> dict[str, float]:
        """AUC, GAUC (per user) and logloss of the model on ``data``."""
        if len(data) == 0:
            raise ValueError("cannot evaluate on an empty split")
        prob = self.predict(data)
        y = data.label.numpy()
        return {
            "auc": _or_nan(lambda: auc(y, prob), "AUC"),
            "gauc": _or_nan(lambda: gauc(data.user.numpy(), y, prob), "GAUC"),
            "logloss": logloss(y, prob),
        }


def _or_nan(metric: Callable[[], float], name: str) -> float:
    """``metric()``, or NaN (with a warning) when it is undefined, e.g. a split with one class only."""
    try:
        return metric()
    except ValueError as err:
        log.warning("%s is undefined on this split (%s); reporting NaN", name, err)
        return float("nan")

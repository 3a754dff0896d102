"""The CTR trainer: Adam on the model's own losses, early stopping on a chosen metric, resumable checkpoints.

``CTRTrainer(model, config, train, valid, output_dir).fit()`` trains any :class:`~mercato.ctr.base.CTRModel`:
single-head models (BCE by default) and multi-head ones that declare their own loss terms and backward (see
the contract in :mod:`mercato.ctr.base`). Validation computes ``config.metrics`` for every scored head
(:mod:`mercato.ctr.evaluation`); ``config.monitor`` picks the key early stopping watches.

Reproducibility and resume: epoch ``e`` shuffles with a generator seeded ``seed + e``, and each checkpoint
stores the model, optimizer, torch RNG (dropout), epoch/step counters, the epoch's running loss and the
early-stopping state. A run killed at any point and resumed with ``fit(resume=True)`` therefore replays
exactly the same batches and reaches the same weights as an uninterrupted run. A resume is refused (a
``ValueError`` naming the keys) when the training-relevant config or the model (class and config) differs
from the checkpoint's, and ``fit(resume=False)`` refuses to overwrite an existing checkpoint.

Folders under ``output_dir``: ``checkpoint/`` (latest state, for resume) and ``best/`` (the weights of the
best validation epoch, restored at the end of ``fit``).

Data parallel: under ``torchrun`` (``WORLD_SIZE > 1`` in the environment) ``fit`` joins a process group
(gloo on CPU, nccl on CUDA) and wraps the model in DDP. Every global batch of ``batch_size`` rows is split
into contiguous per-rank slices of the same shuffled order, and each rank's loss is weighted by its slice
size, so the averaged gradient equals the single-process gradient of the global batch. Only rank 0 writes.
(Gradient surgery that calls backward more than once per step is not supported under DDP.)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from mercato.core.checkpoint import load_checkpoint, save_checkpoint
from mercato.core.device import resolve_device
from mercato.core.progress import progress
from mercato.ctr.base import CTRModel, as_outputs
from mercato.ctr.evaluation import METRICS, MetricFn, better, metric_key, score_heads
from mercato.ctr.schema import CTRTensors
from mercato.ctr.train_config import (
    FitProgress,
    TrainerConfig,
    TrainResult,
    check_resumable,
    model_identity,
)

__all__ = ["CTRTrainer", "NonFiniteLossError", "TrainResult", "TrainerConfig"]

log = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class CTRTrainer:
    """Trains a CTR model on encoded splits.

    Args:
        model: a :class:`CTRModel` (see :mod:`mercato.ctr.base` for outputs, losses and metrics).
        config: optimisation and checkpoint settings.
        train: encoded training rows.
        valid: encoded validation rows (early stopping and best-epoch selection).
        output_dir: folder for ``checkpoint/`` and ``best/``; ``None`` keeps everything in memory.
        metrics: metric functions by name (default :data:`mercato.ctr.evaluation.METRICS`);
            ``config.metrics`` picks among them.
    """

    def __init__(
        self,
        model: CTRModel,
        config: TrainerConfig,
        train: CTRTensors,
        valid: CTRTensors,
        output_dir: str | Path | None = None,
        metrics: Mapping[str, MetricFn] | None = None,
    ) -> None:
        if len(train) == 0:
            raise ValueError("the training split is empty")
        if len(valid) == 0:
            raise ValueError("the validation split is empty; early stopping needs validation rows")
        if config.batch_size < 1 or config.eval_batch_size < 1:
            raise ValueError("batch_size and eval_batch_size must be >= 1")
        available = dict(METRICS if metrics is None else metrics)
        unknown = [m for m in config.metrics if m not in available]
        if unknown:
            raise ValueError(f"unknown metrics {unknown}; available: {', '.join(available)}")
        self.metric_fns = {m: available[m] for m in config.metrics}
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
        check_resumable(ckpt.state, self.model, asdict(self.config), self.checkpoint_dir)
        try:
            self.model.load_state_dict(ckpt.model_state)
            if ckpt.optimizer_state is not None:
                self.optimizer.load_state_dict(ckpt.optimizer_state)
        except (RuntimeError, ValueError, KeyError) as err:
            raise ValueError(
                f"{self.checkpoint_dir}: the checkpoint does not fit this model ({str(err).splitlines()[0]})"
            ) from err
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
            resume: continue from ``output_dir/checkpoint`` when it exists. Without it, an existing
                checkpoint there is an error (it would be overwritten).
            stop_after_steps: stop (as if killed) once the global step count reaches this value, without
                finishing the epoch; used to test resume. The last checkpoint is whatever was saved before.
        """
        ckpt = self.checkpoint_dir
        if not resume and ckpt is not None and (ckpt / "state.json").is_file():
            raise ValueError(
                f"{ckpt} holds the checkpoint of an earlier run; pass resume=True (--resume) to continue "
                "it, or use a new output folder (--output-dir)"
            )
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
        self._check_monitor()
        result = TrainResult(
            history=list(state.get("history", [])),
            best_epoch=int(state.get("best_epoch", -1)),
            best_valid=dict(state.get("best_valid", {})),
        )
        run = FitProgress.from_state(state)
        self._best_state: dict[str, torch.Tensor] | None = None
        if state and self.best_dir is not None and (self.best_dir / "model.safetensors").is_file():
            self._best_state = load_checkpoint(self.best_dir).model_state
        net: nn.Module = self.model
        if self.world_size > 1:
            net = DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        while run.epoch < cfg.epochs and not run.stopped:
            if not self._train_epoch(net, run, result, stop_after_steps):
                result.interrupted = True
                result.global_step, result.epochs_run = run.global_step, run.epoch
                return result
            self._end_epoch(run, result)
        result.stopped_early = run.stopped
        result.epochs_run = run.epoch
        result.global_step = run.global_step
        if self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        return result

    def _snapshot(self, run: FitProgress, result: TrainResult) -> dict[str, Any]:
        return {
            **asdict(run),
            "best_epoch": result.best_epoch,
            "best_valid": result.best_valid,
            "history": result.history,
            "trainer_config": asdict(self.config),
            "model": model_identity(self.model),
        }

    def _train_epoch(
        self, net: nn.Module, run: FitProgress, result: TrainResult, stop_after_steps: int | None
    ) -> bool:
        """The rest of epoch ``run.epoch`` from ``run.step_in_epoch``; False if stopped by ``stop_after_steps``."""
        cfg = self.config
        n = len(self.train_data)
        steps_per_epoch = math.ceil(n / cfg.batch_size)
        self.model.train()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed + run.epoch))
        bar = progress(
            total=steps_per_epoch,
            desc=f"epoch {run.epoch + 1}/{cfg.epochs}",
            initial=run.step_in_epoch,
            disable=not cfg.progress or self.rank != 0,
            leave=False,
        )
        try:
            while run.step_in_epoch < steps_per_epoch:
                start = run.step_in_epoch * cfg.batch_size
                idx = order[start : start + cfg.batch_size]
                loss_value = self._step(net, idx, run.epoch, run.step_in_epoch)
                run.loss_sum += loss_value * len(idx)
                run.loss_count += len(idx)
                run.step_in_epoch += 1
                run.global_step += 1
                bar.update(1)
                if run.global_step % 10 == 0:
                    bar.set_postfix(loss=f"{run.loss_sum / max(run.loss_count, 1):.4f}")
                if cfg.checkpoint_every_steps > 0 and run.global_step % cfg.checkpoint_every_steps == 0:
                    self._save(self._snapshot(run, result))
                if stop_after_steps is not None and run.global_step >= stop_after_steps:
                    return False
        finally:
            bar.close()
        return True

    def _end_epoch(self, run: FitProgress, result: TrainResult) -> None:
        """Validate, record the epoch, keep the best weights, apply patience and checkpoint."""
        cfg = self.config
        metrics = self.evaluate(self.valid_data)
        record = {
            "epoch": float(run.epoch + 1),
            "train_loss": run.loss_sum / max(run.loss_count, 1),
            **{f"valid_{k}": v for k, v in metrics.items()},
        }
        result.history.append(record)
        if better(cfg.monitor, metrics[cfg.monitor], run.best_value):
            run.best_value, run.bad_epochs = metrics[cfg.monitor], 0
            result.best_epoch, result.best_valid = run.epoch + 1, dict(metrics)
            self._best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            if self.best_dir is not None and self.rank == 0:
                save_checkpoint(self.best_dir, self.model, None, {"epoch": run.epoch + 1, "valid": metrics})
        else:
            run.bad_epochs += 1
        shown = ", ".join(f"{k} {v:.5f}" for k, v in metrics.items() if "/" not in k)
        best = " (best)" if run.bad_epochs == 0 else ""
        log.info("epoch %d: train loss %.5f, valid %s%s", run.epoch + 1, record["train_loss"], shown, best)
        run.epoch += 1
        run.step_in_epoch, run.loss_sum, run.loss_count = 0, 0.0, 0
        if cfg.patience > 0 and run.bad_epochs >= cfg.patience:
            run.stopped = True
            log.info("early stopping: no %s improvement for %d epochs", cfg.monitor, run.bad_epochs)
        self._save(self._snapshot(run, result))

    def _step(self, net: nn.Module, idx: torch.Tensor, epoch: int, step: int) -> float:
        """One optimizer step on the global batch ``idx``; returns the global mean of the model's loss terms."""
        total = len(idx)
        if self.world_size > 1:
            idx = idx.tensor_split(self.world_size)[self.rank]  # this rank's contiguous slice
            if len(idx) == 0:
                raise ValueError(
                    f"a global batch of {total} rows cannot be split over {self.world_size} ranks; "
                    "use a batch_size (and data size) >= the number of processes"
                )
        batch = {k: v.to(self.device, non_blocking=True) for k, v in self.train_data.batch(idx).items()}
        outputs = as_outputs(net(batch), self.model.primary_head)
        terms = self.model.losses(outputs, batch)
        scale = len(idx) * self.world_size / total  # this rank's share of the global batch
        scaled = {k: v * scale for k, v in terms.items()}
        scaled["auxiliary"] = self.model.auxiliary_loss()
        objective = torch.stack(list(scaled.values())).sum()
        if not torch.isfinite(objective):
            raise NonFiniteLossError(
                f"training loss is {objective.item()} at epoch {epoch + 1}, step {step + 1}; "
                "try a lower lr, gradient clipping (max_grad_norm) or check the input data"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.model.backward_losses(scaled)
        if self.config.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        self.optimizer.step()
        value = torch.stack([v.detach() for v in terms.values()]).sum() * len(idx)
        if self.world_size > 1:
            dist.all_reduce(value)
        return float(value) / total

    # ------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_heads(self, data: CTRTensors) -> dict[str, np.ndarray]:
        """Probabilities ``(N,)`` (float64) of every scored head (:meth:`CTRModel.probabilities`)."""
        was_training = self.model.training
        self.model.eval()
        out: dict[str, list[torch.Tensor]] = {}
        try:
            for start in range(0, len(data), self.config.eval_batch_size):
                sl = slice(start, start + self.config.eval_batch_size)
                batch = {k: v.to(self.device) for k, v in data.batch(sl).items()}
                probs = self.model.probabilities(self.model.outputs(batch))
                for head, p in probs.items():
                    out.setdefault(head, []).append(p.float().cpu())  # (b,)
        finally:
            self.model.train(was_training)
        return {h: torch.cat(v).numpy().astype(np.float64) for h, v in out.items()}

    def predict(self, data: CTRTensors) -> np.ndarray:
        """Probabilities ``(N,)`` of the primary head as float64."""
        if len(data) == 0:
            return np.zeros(0, dtype=np.float64)
        return next(iter(self.predict_heads(data).values()))

    def _head_labels(self, heads: list[str], data: CTRTensors) -> dict[str, str]:
        return self.model.head_labels(heads, data.label_names)

    def _check_monitor(self) -> None:
        """Refuse a ``monitor`` or ``eval_heads`` the model cannot produce (before any training)."""
        probe = self.valid_data.subset(slice(0, 2))
        heads = list(self.predict_heads(probe))
        scored = self._head_labels(heads, probe)
        chosen = list(self.config.eval_heads) or list(scored)
        unknown = [h for h in chosen if h not in scored]
        if unknown:
            raise ValueError(f"eval_heads {unknown} are not scored heads of the model; heads: {list(scored)}")
        primary = heads[0]
        keys = [metric_key(h, m, primary) for h in chosen for m in self.metric_fns]
        if self.config.monitor not in keys:
            raise ValueError(f"monitor '{self.config.monitor}' is not an evaluated metric; valid: {keys}")

    def evaluate(self, data: CTRTensors) -> dict[str, float]:
        """``config.metrics`` of every evaluated head: ``auc``, ``gauc``, ... for the primary head and
        ``<head>/auc`` etc. for the others (see :func:`mercato.ctr.evaluation.score_heads`)."""
        if len(data) == 0:
            raise ValueError("cannot evaluate on an empty split")
        probs = self.predict_heads(data)
        heads = list(probs)
        return score_heads(
            probs,
            {k: v.numpy().astype(np.float64) for k, v in data.labels.items()},
            self._head_labels(heads, data),
            data.user.numpy(),
            self.metric_fns,
            primary=heads[0],
            weight=None if data.weight is None else data.weight.numpy(),
            heads=self.config.eval_heads,
        )

"""Checkpoints: model and optimizer tensors in safetensors, everything else in JSON.

Layout of a checkpoint folder::

    model.safetensors       model state_dict
    optimizer.safetensors   optimizer tensors (flattened ``state.<param>.<name>``) and RNG state
    state.json              config, step/epoch counters, optimizer param_groups, user extras

The folder is written under a temporary name and renamed, so a killed process leaves either the previous
checkpoint or the new one, never a mix.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

__all__ = ["Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]

logger = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint folder whose files are truncated, corrupt or inconsistent (the message names the file)."""


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    model_state: dict[str, torch.Tensor]
    optimizer_state: dict[str, Any] | None
    state: dict[str, Any] = field(default_factory=dict)
    rng_state: torch.Tensor | None = None
    # one per CUDA device, saved when CUDA was in use (dropout on a GPU draws from the device's own RNG)
    cuda_rng_states: list[torch.Tensor] = field(default_factory=list)

    def restore_rng(self) -> None:
        """Put the torch RNG (and each CUDA device's, when saved and present) back to where the checkpoint was
        written, so dropout after a resume draws what an uninterrupted run would have drawn."""
        if self.rng_state is not None:
            torch.set_rng_state(self.rng_state)
        if self.cuda_rng_states and torch.cuda.is_available():
            if len(self.cuda_rng_states) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(self.cuda_rng_states)
            else:
                logger.warning(
                    "checkpoint holds the RNG of %d CUDA devices but this machine has %d: not restored, so "
                    "dropout after the resume differs from an uninterrupted run",
                    len(self.cuda_rng_states),
                    torch.cuda.device_count(),
                )


def _flatten_optimizer(opt_state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in opt_state["state"].items():
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if not key.startswith("state."):
            continue
        _, pid, name = key.split(".", 2)
        state.setdefault(int(pid), {})[name] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    state: dict[str, Any] | None = None,
) -> Path:
    """Save ``model`` (and ``optimizer``, torch RNG, ``state``) into the folder ``path`` atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model_state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(model_state, str(tmp / "model.safetensors"))
        meta: dict[str, Any] = {"state": state or {}}
        opt_tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            for i, cuda_state in enumerate(torch.cuda.get_rng_state_all()):
                opt_tensors[f"rng.cuda.{i}"] = cuda_state
        if optimizer is not None:
            flat, opt_meta = _flatten_optimizer(optimizer.state_dict())
            opt_tensors.update(flat)
            meta["optimizer"] = opt_meta
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta, indent=2, default=str))
        old = target.with_name(f".{target.name}.old")
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load a folder written by :func:`save_checkpoint`."""
    folder = Path(path)
    if not (folder / "model.safetensors").is_file() or not (folder / "state.json").is_file():
        raise FileNotFoundError(f"{folder}: not a mercato checkpoint (model.safetensors/state.json missing)")
    try:
        meta = json.loads((folder / "state.json").read_text())
        if not isinstance(meta, dict):
            raise ValueError("expected a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{folder / 'state.json'}: unreadable checkpoint state ({err})") from err
    model_state = _load_tensors(folder / "model.safetensors")
    opt_path = folder / "optimizer.safetensors"
    opt_tensors = _load_tensors(opt_path) if opt_path.exists() else {}
    try:
        optimizer_state = (
            _unflatten_optimizer(opt_tensors, meta["optimizer"]) if "optimizer" in meta else None
        )
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{opt_path}: optimizer state does not match state.json ({err})") from err
    return Checkpoint(
        model_state=model_state,
        optimizer_state=optimizer_state,
        state=meta.get("state", {}),
        rng_state=opt_tensors.get("rng.torch"),
        cuda_rng_states=[
            opt_tensors[k] for k in sorted((k for k in opt_tensors if k.startswith("rng.cuda.")), key=_index)
        ],
    )


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a truncated or corrupt one raises :class:`CheckpointError` naming it."""
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises its own SafetensorError (and OSError) on bad files
        raise CheckpointError(f"{path}: unreadable (truncated or corrupt?) tensor file ({err})") from err


def _index(key: str) -> int:
    return int(key.rsplit(".", 1)[1])

"""Serving a trained :class:`~mercato.aif.model.AIFModel`: fixed-layout state vectors, catalogue, export/load.

The runtime (:mod:`mercato.aif.serve`) and the item store hold item states as flat float32 rows of width D.
:class:`StateLayout` maps the model's state dicts onto such rows and back, in a fixed, documented order:

* item state (``item_layout``): ``item`` (d̂) | ``bridge_weights`` (B) | with a long field ``long_item`` (d̂)
  and ``lsh_codes`` (H);
* user state (``user_layout``): ``profile``, ``self``, ``cross`` (d̂ each) | ``seq`` (L x d̂) | ``mask`` (L) |
  ``bridges`` (B x d̂) | with a long field ``long_seq`` (L_long x d̂), ``long_mask`` (L_long), ``lsh_sums``
  (H x 2^tau x d̂), ``lsh_counts`` (H x 2^tau).

Booleans are stored as 0/1 and integer codes as floats (exact below 2^24). The layout's tag (names and shapes)
enters the model version (:meth:`ServedAIF.version`), so a store row written under one layout is never read
under another. :class:`ServedAIF` wraps the model with the runtime's interface (``user_state``,
``item_state``, ``interact`` on flat rows), so scores served from the store equal the model's forward.

A serving folder (:func:`export_serving`, :func:`load_serving`) holds ``model/`` (a mercato checkpoint: weights,
the schema and the model config) and ``catalog.npz`` (encoded user rows with their sequences and item rows);
it is written under a temporary name and renamed, so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from mercato.aif.model import AIFConfig, AIFModel
from mercato.ctr import FeatureSchema

__all__ = [
    "CTRCatalog",
    "ServedAIF",
    "StateLayout",
    "build_catalog",
    "export_serving",
    "item_layout",
    "load_serving",
    "user_layout",
]

LAYOUT_VERSION = 1  # bump when the order or encoding of the fields below changes


@dataclass(frozen=True)
class StateLayout:
    """Ordered named fields ``(name, shape, kind)`` of one flat float32 row; kind is float, bool or int."""

    fields: tuple[tuple[str, tuple[int, ...], str], ...]

    @property
    def dim(self) -> int:
        """D, the row width."""
        return int(sum(math.prod(shape) for _, shape, _ in self.fields))

    @property
    def tag(self) -> str:
        """``v1:item[32],bridge_weights[8]``: names and shapes in order (part of the model version)."""
        return f"v{LAYOUT_VERSION}:" + ",".join(f"{n}[{'x'.join(map(str, s))}]" for n, s, _ in self.fields)

    def flatten(self, states: dict[str, torch.Tensor]) -> torch.Tensor:
        """State dict (each ``(B, *shape)``) -> ``(B, D)`` float32; a missing or misshapen field is a ValueError."""
        parts = []
        for name, shape, _ in self.fields:
            if name not in states:
                raise ValueError(f"state has no field '{name}' (layout: {self.tag})")
            t = states[name]
            if tuple(t.shape[1:]) != shape:
                raise ValueError(f"state field '{name}' has shape {tuple(t.shape[1:])}, layout wants {shape}")
            parts.append(t.reshape(t.shape[0], -1).to(torch.float32))  # (B, prod(shape))
        return torch.cat(parts, dim=1)  # (B, D)

    def unflatten(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(B, D)`` -> state dict, the inverse of :meth:`flatten` (bool and int fields get their dtype back)."""
        if rows.dim() != 2 or rows.shape[1] != self.dim:
            raise ValueError(f"rows must be (B, {self.dim}) for layout {self.tag}, got {tuple(rows.shape)}")
        out: dict[str, torch.Tensor] = {}
        start = 0
        for name, shape, kind in self.fields:
            width = math.prod(shape)
            part = rows[:, start : start + width].reshape(rows.shape[0], *shape)  # (B, *shape)
            start += width
            out[name] = part > 0.5 if kind == "bool" else part.round().long() if kind == "int" else part
        return out


def item_layout(model: AIFModel) -> StateLayout:
    """Layout of the item state of ``model`` (see the module docstring)."""
    c = model.config
    fields: list[tuple[str, tuple[int, ...], str]] = [
        ("item", (c.model_dim,), "float"),
        ("bridge_weights", (c.num_bridges,), "float"),
    ]
    if c.long_field:
        fields += [("long_item", (c.model_dim,), "float"), ("lsh_codes", (c.lsh_groups,), "int")]
    return StateLayout(tuple(fields))


def user_layout(model: AIFModel) -> StateLayout:
    """Layout of the user state of ``model`` (see the module docstring)."""
    c, m = model.config, model.config.model_dim
    fields: list[tuple[str, tuple[int, ...], str]] = [
        ("profile", (m,), "float"),
        ("self", (m,), "float"),
        ("cross", (m,), "float"),
        ("seq", (model.seq_len, m), "float"),
        ("mask", (model.seq_len,), "bool"),
        ("bridges", (c.num_bridges, m), "float"),
    ]
    if c.long_field:
        k = 2**c.lsh_bits
        fields += [
            ("long_seq", (model.long_len, m), "float"),
            ("long_mask", (model.long_len,), "bool"),
            ("lsh_sums", (c.lsh_groups, k, m), "float"),
            ("lsh_counts", (c.lsh_groups, k), "float"),
        ]
    return StateLayout(tuple(fields))


@dataclass
class CTRCatalog:
    """Encoded features the runtime looks up: one row per user and per item (dense ids ``0..N-1``).

    A user row holds the user's side of a CTR batch (profile fields and behaviour sequences), an item row the
    item's side; the other side's fields are 0 (out of vocabulary), which the towers never read.
    """

    user_sparse: torch.Tensor  # (U, F_s) int64
    user_multihot: torch.Tensor  # (U, F_m, L) int64
    item_sparse: torch.Tensor  # (N, F_s) int64
    item_multihot: torch.Tensor  # (N, F_m, L) int64
    user_keys: list[str]  # dense user id -> the data's user id
    item_keys: list[str]  # dense item id -> the data's item id
    context_vocab: dict[str, int]  # accepted context fields (the MovieLens model reads none of them)

    @property
    def num_users(self) -> int:
        return int(self.user_sparse.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.item_sparse.shape[0])

    def user_batch(self, user_id: int | None, context: dict[str, int]) -> dict[str, torch.Tensor]:
        """One user's rows (``None``: cold start, every field out of vocabulary, empty sequences)."""
        if user_id is None:
            return {
                "sparse": torch.zeros_like(self.user_sparse[:1]),
                "multihot": torch.zeros_like(self.user_multihot[:1]),
            }
        return {
            "sparse": self.user_sparse[user_id : user_id + 1],
            "multihot": self.user_multihot[user_id : user_id + 1],
        }

    def item_batch(self, item_ids: np.ndarray) -> dict[str, torch.Tensor]:
        """The rows of the items ``item_ids`` (N,)."""
        ids = torch.from_numpy(np.asarray(item_ids, dtype=np.int64))
        return {"sparse": self.item_sparse[ids], "multihot": self.item_multihot[ids]}

    def save(self, path: Path) -> None:
        np.savez(
            path,
            user_sparse=self.user_sparse.numpy(),
            user_multihot=self.user_multihot.numpy(),
            item_sparse=self.item_sparse.numpy(),
            item_multihot=self.item_multihot.numpy(),
            user_keys=np.asarray(self.user_keys, dtype=str),
            item_keys=np.asarray(self.item_keys, dtype=str),
            context_vocab=np.asarray(json.dumps(self.context_vocab)),
        )

    @classmethod
    def load(cls, path: Path) -> CTRCatalog:
        with np.load(path, allow_pickle=False) as z:
            return cls(
                torch.from_numpy(z["user_sparse"]),
                torch.from_numpy(z["user_multihot"]),
                torch.from_numpy(z["item_sparse"]),
                torch.from_numpy(z["item_multihot"]),
                [str(x) for x in z["user_keys"]],
                [str(x) for x in z["item_keys"]],
                dict(json.loads(str(z["context_vocab"]))),
            )


def build_catalog(
    schema: FeatureSchema,
    frames: Sequence[pd.DataFrame],
    config: AIFConfig,
    time_column: str | None = "timestamp",
    context_vocab: dict[str, int] | None = None,
) -> CTRCatalog:
    """User rows from each user's latest row of ``frames`` (profile and sequences as of then), item rows from
    each item's first row. Users and items get dense ids in the order of their sorted data ids."""
    rows = pd.concat(list(frames), ignore_index=True)
    if time_column and time_column in rows.columns:
        rows = rows.sort_values(time_column, kind="stable")
    user_cols = [
        *config.user_fields,
        config.sequence_field,
        *([config.long_field] if config.long_field else []),
    ]
    users = rows.groupby(schema.user, sort=True).tail(1).sort_values(schema.user, kind="stable")
    items = rows.drop_duplicates("item_id").sort_values("item_id", kind="stable")
    blank = {f.name: ("" if f.kind != "numeric" else 0.0) for f in schema.fields}

    def side(df: pd.DataFrame, keep: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        frame = pd.DataFrame({name: df[name] if name in keep else [blank[name]] * len(df) for name in blank})
        enc = schema.encode(frame.reset_index(drop=True))
        sparse, multihot = enc.sparse.clone(), enc.multihot.clone()
        for j, f in enumerate(schema.sparse_fields):
            if f.name not in keep:
                sparse[:, j] = 0  # the other side's fields: index 0 (a blank numeric would be bucket 1)
        for j, f in enumerate(schema.multihot_fields):
            if f.name not in keep:
                multihot[:, j] = 0
        return sparse, multihot

    us, um = side(users, user_cols)
    its, itm = side(items, list(config.item_fields))
    return CTRCatalog(
        us,
        um,
        its,
        itm,
        [str(x) for x in users[schema.user]],
        [str(x) for x in items["item_id"]],
        dict(context_vocab if context_vocab is not None else {"hour": 24}),
    )


class ServedAIF(nn.Module):
    """An :class:`AIFModel` with the runtime's interface: flat float32 user rows ``(1, Du)``, item rows ``(N, Di)``."""

    def __init__(self, model: AIFModel) -> None:
        super().__init__()
        self.model = model.eval()
        self.item_layout = item_layout(model)
        self.user_layout = user_layout(model)
        self.item_state_dim = self.item_layout.dim

    def user_state(self, user: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.user_layout.flatten(self.model.user_state(user))  # (1, Du)

    def item_state(self, items: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.item_layout.flatten(self.model.item_state(items))  # (N, Di)

    def interact(self, user_state: torch.Tensor, item_states: torch.Tensor) -> torch.Tensor:
        n = item_states.shape[0]
        u = {
            k: v.expand(n, *v.shape[1:]) for k, v in self.user_layout.unflatten(user_state).items()
        }  # (N, ...)
        return self.model.interact(u, self.item_layout.unflatten(item_states))  # (N,)

    @property
    def version(self) -> str:
        """Hash of the weights and both layouts: equal weights and layouts -> equal tag, in any process."""
        h = hashlib.sha256()
        for name, t in sorted(self.model.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        h.update(self.item_layout.tag.encode())
        h.update(self.user_layout.tag.encode())
        return "m" + h.hexdigest()[:16]


def export_serving(path: str | Path, model: AIFModel, schema: FeatureSchema, catalog: CTRCatalog) -> Path:
    """Write a serving folder (``model/`` checkpoint + ``catalog.npz``) atomically; return its path."""
    from mercato.core.checkpoint import save_checkpoint
    from mercato.core.config import config_to_dict
    from mercato.core.runs import atomic_dir

    target = Path(path)
    with atomic_dir(target) as tmp:
        state = {"kind": "AIFModel", "schema": schema.to_json(), "config": config_to_dict(model.config)}
        save_checkpoint(tmp / "model", model, state=state)
        catalog.save(tmp / "catalog.npz")
    return target


def load_serving(path: str | Path) -> tuple[ServedAIF, CTRCatalog]:
    """Read a folder written by :func:`export_serving`; errors name the folder and what is wrong."""
    from mercato.core.checkpoint import load_checkpoint
    from mercato.core.config import config_from_dict

    folder = Path(path)
    if not (folder / "catalog.npz").is_file():
        raise FileNotFoundError(
            f"{folder}: not an AIF serving folder (catalog.npz missing; see export_serving)"
        )
    ckpt = load_checkpoint(folder / "model")
    if ckpt.state.get("kind") != "AIFModel":
        raise ValueError(f"{folder / 'model'}: holds {ckpt.state.get('kind')!r}, not an AIFModel checkpoint")
    schema = FeatureSchema.from_json(ckpt.state["schema"])
    config = config_from_dict(AIFConfig, ckpt.state["config"], source=str(folder / "model" / "state.json"))
    model = AIFModel(schema, config)
    model.load_state_dict(ckpt.model_state)
    return ServedAIF(model), CTRCatalog.load(folder / "catalog.npz")

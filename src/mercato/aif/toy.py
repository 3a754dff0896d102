"""A stand-in split model and a synthetic catalogue, for the serving runtime's tests and load benchmarks.

:class:`ToySplitModel` has the interface the runtime needs from any AIF model (:class:`SplitModel`): a user
side ``user_state(user) -> (1, Du)``, an item side ``item_state(items) -> (N, Di)`` and the real-time part
``interact(user_state, item_states) -> (N,)`` logits, with ``forward`` (the fully online model) equal to the
composition. It is a small MLP per side, deterministic from its seed, so that several serving processes build
the same weights. The AIF model of the paper (attention towers, BEA, LSH) plugs into the same interface.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

__all__ = ["Catalog", "SplitModel", "ToyConfig", "ToySplitModel", "model_version", "toy_catalog"]


class SplitModel(Protocol):
    """The three parts of a split pre-ranking model (shapes for one request with N candidates)."""

    item_state_dim: int

    def user_state(self, user: dict[str, torch.Tensor]) -> torch.Tensor:
        """User side (candidate-independent): batch of one user -> (1, Du)."""
        ...

    def item_state(self, items: dict[str, torch.Tensor]) -> torch.Tensor:
        """Item side (user-independent): N items -> (N, Di)."""
        ...

    def interact(self, user_state: torch.Tensor, item_states: torch.Tensor) -> torch.Tensor:
        """Real-time part: (1, Du) and (N, Di) -> (N,) logits in one batched pass."""
        ...


@dataclass
class Catalog:
    """Features the runtime looks up: one row per user / item (dense ids), sequences padded with -1."""

    user_profile: np.ndarray  # (U, P) int64 profile field indices (0 = missing)
    user_seq: np.ndarray  # (U, L) int64 item ids of the behaviour sequence, most recent last, -1 = padding
    item_feats: np.ndarray  # (N, Fi) int64 item field indices (0 = missing)
    profile_vocab: tuple[int, ...]  # vocabulary size of each profile field
    item_vocab: tuple[int, ...]  # vocabulary size of each item field
    context_vocab: dict[str, int]  # context field -> vocabulary size (values are ints in [0, size))

    @property
    def num_users(self) -> int:
        return int(self.user_profile.shape[0])

    @property
    def num_items(self) -> int:
        return int(self.item_feats.shape[0])

    def user_batch(self, user_id: int | None, context: dict[str, int]) -> dict[str, torch.Tensor]:
        """Features of one user (``None``: a cold-start user, empty profile and sequence) and the context."""
        if user_id is None:
            profile = np.zeros((1, self.user_profile.shape[1]), dtype=np.int64)
            seq = np.full((1, self.user_seq.shape[1]), -1, dtype=np.int64)
        else:
            profile = self.user_profile[user_id : user_id + 1]
            seq = self.user_seq[user_id : user_id + 1]
        ctx = np.array([[context.get(name, 0) for name in self.context_vocab]], dtype=np.int64)
        return {
            "profile": torch.from_numpy(profile),
            "seq": torch.from_numpy(seq),
            "context": torch.from_numpy(ctx),
        }

    def item_batch(self, item_ids: np.ndarray) -> dict[str, torch.Tensor]:
        """Features of the items ``item_ids`` (N,)."""
        ids = np.asarray(item_ids, dtype=np.int64)
        return {"item_id": torch.from_numpy(ids), "item": torch.from_numpy(self.item_feats[ids])}


def toy_catalog(
    num_users: int = 200, num_items: int = 2000, seq_len: int = 50, seed: int = 0, num_context: int = 24
) -> Catalog:
    """A random catalogue: 2 profile fields, 2 item fields, one context field ``hour``."""
    rng = np.random.default_rng(seed)
    profile_vocab, item_vocab = (8, 30), (20, 50)
    profile = np.stack([rng.integers(1, v, num_users) for v in profile_vocab], axis=1)
    items = np.stack([rng.integers(1, v, num_items) for v in item_vocab], axis=1)
    seq = rng.integers(0, num_items, (num_users, seq_len))
    lengths = rng.integers(1, seq_len + 1, num_users)
    seq[np.arange(seq_len)[None, :] < (seq_len - lengths)[:, None]] = -1  # left padding
    return Catalog(profile, seq, items, profile_vocab, item_vocab, {"hour": num_context})


@dataclass
class ToyConfig:
    """Widths of the stand-in split model."""

    embed_dim: int = 32  # d, embedding width
    user_hidden: int = 128  # hidden width of the user MLP
    item_hidden: int = 256  # hidden width of the item MLP (the sequential mode pays it per candidate)
    item_layers: int = 3  # hidden layers of the item MLP
    state_dim: int = 32  # width of user and item states
    seed: int = 0  # weight initialisation seed (same seed -> same weights in every process)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class ToySplitModel(nn.Module):
    """Stand-in split model: mean-pooled sequence + profile MLP | item MLP | MLP on (u, i, u*i)."""

    def __init__(self, catalog: Catalog, config: ToyConfig | None = None) -> None:
        super().__init__()
        cfg = config or ToyConfig()
        self.config = cfg
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(cfg.seed)
        d, s = cfg.embed_dim, cfg.state_dim
        self.item_state_dim = s
        self.profile_emb = nn.ModuleList(nn.Embedding(v, d) for v in catalog.profile_vocab)
        self.context_emb = nn.ModuleList(nn.Embedding(v, d) for v in catalog.context_vocab.values())
        self.item_id_emb = nn.Embedding(catalog.num_items, d)
        self.item_emb = nn.ModuleList(nn.Embedding(v, d) for v in catalog.item_vocab)
        n_user_in = d * (len(catalog.profile_vocab) + len(catalog.context_vocab) + 1)
        self.user_mlp = _mlp([n_user_in, cfg.user_hidden, s])
        n_item_in = d * (len(catalog.item_vocab) + 1)
        self.item_mlp = _mlp([n_item_in] + [cfg.item_hidden] * cfg.item_layers + [s])
        self.head = _mlp([3 * s, 64, 1])
        torch.random.set_rng_state(gen_state)

    def user_state(self, user: dict[str, torch.Tensor]) -> torch.Tensor:
        seq = user["seq"]  # (1, L), -1 = padding
        mask = (seq >= 0).float().unsqueeze(-1)  # (1, L, 1)
        seq_e = self.item_id_emb(seq.clamp(min=0)) * mask  # (1, L, d)
        pooled = seq_e.sum(1) / mask.sum(1).clamp(min=1.0)  # (1, d)
        prof = [emb(user["profile"][:, j]) for j, emb in enumerate(self.profile_emb)]
        ctx = [emb(user["context"][:, j]) for j, emb in enumerate(self.context_emb)]
        out: torch.Tensor = self.user_mlp(torch.cat([pooled, *prof, *ctx], dim=-1))  # (1, Du)
        return out

    def item_state(self, items: dict[str, torch.Tensor]) -> torch.Tensor:
        feats = [emb(items["item"][:, j]) for j, emb in enumerate(self.item_emb)]
        out: torch.Tensor = self.item_mlp(torch.cat([self.item_id_emb(items["item_id"]), *feats], dim=-1))
        return out  # (N, Di)

    def interact(self, user_state: torch.Tensor, item_states: torch.Tensor) -> torch.Tensor:
        u = user_state.expand(item_states.shape[0], -1)  # (N, Du)
        out: torch.Tensor = self.head(torch.cat([u, item_states, u * item_states], dim=-1)).squeeze(-1)
        return out  # (N,)

    def forward(self, user: dict[str, torch.Tensor], items: dict[str, torch.Tensor]) -> torch.Tensor:
        """The fully online model: one user against N items -> (N,) logits."""
        return self.interact(self.user_state(user), self.item_state(items))


def model_version(model: nn.Module) -> str:
    """A version tag from the model's weights: equal weights -> equal tag, in any process."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return "m" + h.hexdigest()[:16]

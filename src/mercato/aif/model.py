"""The AIF split pre-ranking model on ``mercato.ctr.SplitCTRModel`` (first version, digest §1.3-§1.4).

* ``user_state`` (asynchronous, with retrieval): profile projection ``Û_p = U_p W_pᵀ``, sequence projection
  ``Û_s = U_s W_sᵀ``, self-attention ``U_self = Pool(FFN(Softmax(Û_s Û_sᵀ/√d̂) Û_s))``, cross-attention
  ``U_cross = Softmax(Û_p Û_sᵀ/√d̂) Û_s`` and, for BEA, per-bridge summaries ``V_b``.
* ``item_state`` (nearline): item vector ``e_i`` and BEA bridge weights ``p(b|i)``.
* ``interact`` (real time): target attention of the candidate over the sequence, ``exact`` (the whole
  sequence) or ``bea`` (``sum_b p(b|i) V_b``), then an MLP on ``[Û_p, U_self, U_cross, e_i, TA, Û_p * e_i]``.

The behaviour sequence is a multi-hot field of item ids (most recent first); its tokens are mapped onto the
``item_id`` field's vocabulary so that the sequence and the candidate share one item embedding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from mercato.aif.approx import bea_item_weights
from mercato.ctr import FeatureSchema, SplitCTRModel
from mercato.ctr.embedding import FieldEmbedding

__all__ = ["AIFConfig", "AIFModel", "TwoTowerModel"]


@dataclass
class AIFConfig:
    """AIF pre-ranker hyperparameters (symbols as in docs/aif.md)."""

    embed_dim: int = 16  # d_U, field embedding width
    model_dim: int = 32  # d̂, common projection width (§1.3)
    num_bridges: int = 8  # B, bridge vectors of BEA (§1.4) [U]
    bridge_tau: float = 1.0  # temperature of p(b|i) [U]
    attention: Literal["exact", "bea"] = "exact"  # target attention online: exact twin or BEA
    hidden: tuple[int, ...] = (64,)  # interaction MLP widths
    user_fields: tuple[str, ...] = ("user_id", "gender", "age", "occupation", "zip3")  # profile U_profile
    item_fields: tuple[str, ...] = ("item_id", "year", "genres")  # item side
    sequence_field: str = "history"  # multi-hot field of item ids, the behaviour sequence U_seq

    def __post_init__(self) -> None:
        if self.attention not in ("exact", "bea"):
            raise ValueError(f"attention must be 'exact' or 'bea', got {self.attention!r}")
        if self.num_bridges < 1 or self.model_dim < 1:
            raise ValueError("num_bridges and model_dim must be >= 1")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


class AIFModel(SplitCTRModel):
    """User tower / item tower / interaction, trained as one CTR model by :class:`mercato.ctr.CTRTrainer`."""

    def __init__(self, schema: FeatureSchema, config: AIFConfig | None = None) -> None:
        super().__init__()
        cfg = config or AIFConfig()
        self.config = cfg
        d, m = cfg.embed_dim, cfg.model_dim
        self.embedding = FieldEmbedding(schema, d)
        self.user_pos = schema.field_positions(list(cfg.user_fields))
        self.item_pos = schema.field_positions(list(cfg.item_fields))
        fields = {f.name: f for f in schema.fields}
        if cfg.sequence_field not in fields or fields[cfg.sequence_field].kind != "multihot":
            raise KeyError(f"sequence field '{cfg.sequence_field}' must be a multihot field of the schema")
        seq_spec, item_spec = fields[cfg.sequence_field], fields["item_id"]
        remap = torch.zeros(seq_spec.vocab_size, dtype=torch.long)  # history index -> item_id index
        for token, idx in seq_spec.vocab.items():
            remap[idx] = item_spec.vocab.get(token, 0)
        self.register_buffer("remap", remap, persistent=False)
        multihot = [f.name for f in schema.multihot_fields]
        self.seq_slot = multihot.index(cfg.sequence_field)  # position in batch["multihot"]
        self.item_id_pos = schema.field_positions(["item_id"])[0]
        self.w_profile = nn.Linear(d * len(self.user_pos), m)  # W_profile
        self.w_seq = nn.Linear(d, m)  # W_seq
        self.ffn = _mlp([m, 2 * m, m])
        self.item_tower = _mlp([d * len(self.item_pos), 2 * m, m])
        self.bridges = nn.Parameter(torch.randn(cfg.num_bridges, m) / math.sqrt(m))  # beta_b
        self.head = _mlp([6 * m, *cfg.hidden, 1])

    def _sequence(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = batch["multihot"][:, self.seq_slot]  # (B, L), 0 = padding
        mask = idx > 0  # (B, L)
        item_idx = self.remap[idx]  # type: ignore[index]  # (B, L) in the item_id vocabulary
        offset = self.embedding.offsets[self.item_id_pos]  # type: ignore[index]
        return self.w_seq(self.embedding.table(item_idx + offset)), mask  # (B, L, m), (B, L)

    def user_state(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self.embedding(batch)  # (B, F, d)
        prof = self.w_profile(emb[:, self.user_pos].flatten(1))  # Û_profile (B, m)
        seq, mask = self._sequence(batch)  # Û_seq (B, L, m)
        scale = math.sqrt(seq.shape[-1])
        self_logits = (seq @ seq.transpose(1, 2) / scale).masked_fill(
            ~mask[:, None, :], float("-inf")
        )  # (B, L, L)
        att = torch.nan_to_num(torch.softmax(self_logits, -1)) @ seq  # (B, L, m)
        maskf = mask.unsqueeze(-1).float()
        u_self = (self.ffn(att) * maskf).sum(1) / maskf.sum(1).clamp(min=1.0)  # Pool(FFN(.)) (B, m)
        cross_logits = (prof.unsqueeze(1) @ seq.transpose(1, 2)).squeeze(1) / scale  # (B, L)
        cross = torch.nan_to_num(torch.softmax(cross_logits.masked_fill(~mask, float("-inf")), -1))
        u_cross = (cross.unsqueeze(1) @ seq).squeeze(1)  # (B, m)
        b_logits = torch.einsum("km,blm->bkl", self.bridges, seq) / scale  # (B, K, L)
        b_att = torch.nan_to_num(torch.softmax(b_logits.masked_fill(~mask[:, None, :], float("-inf")), -1))
        summaries = b_att @ seq  # V_b per user (B, K, m), == target_attention(bridges, seq_u, mask_u)
        return {
            "profile": prof,
            "self": u_self,
            "cross": u_cross,
            "seq": seq,
            "mask": mask,
            "bridges": summaries,
        }

    def item_state(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        e = self.item_tower(self.embedding(batch)[:, self.item_pos].flatten(1))  # e_i (B, m)
        return {
            "item": e,
            "bridge_weights": bea_item_weights(e, self.bridges, self.config.bridge_tau),
        }  # (B, B_)

    def interact(
        self, user_state: dict[str, torch.Tensor], item_state: dict[str, torch.Tensor], batch: Any = None
    ) -> torch.Tensor:
        e = item_state["item"]  # (B, m)
        if self.config.attention == "bea":
            ta = torch.einsum(
                "bk,bkm->bm", item_state["bridge_weights"], user_state["bridges"]
            )  # sum_b p(b|i) V_b
        else:
            seq, mask = user_state["seq"], user_state["mask"]
            logits = torch.einsum("bm,blm->bl", e, seq) / math.sqrt(seq.shape[-1])  # (B, L)
            w = torch.nan_to_num(torch.softmax(logits.masked_fill(~mask, float("-inf")), -1))
            ta = torch.einsum("bl,blm->bm", w, seq)  # exact target attention (B, m)
        p = user_state["profile"]
        x = torch.cat([p, user_state["self"], user_state["cross"], e, ta, p * e], dim=-1)  # (B, 6m)
        out: torch.Tensor = self.head(x).squeeze(-1)
        return out  # (B,)


class TwoTowerModel(SplitCTRModel):
    """Baseline pre-ranker: user vector (profile + mean-pooled history) . item vector, nothing else online."""

    def __init__(self, schema: FeatureSchema, config: AIFConfig | None = None) -> None:
        super().__init__()
        cfg = config or AIFConfig()
        self.config = cfg
        d, m = cfg.embed_dim, cfg.model_dim
        self.embedding = FieldEmbedding(schema, d)
        self.user_pos = schema.field_positions([*cfg.user_fields, cfg.sequence_field])
        self.item_pos = schema.field_positions(list(cfg.item_fields))
        self.user_tower = _mlp([d * len(self.user_pos), 2 * m, m])
        self.item_tower = _mlp([d * len(self.item_pos), 2 * m, m])
        self.bias = nn.Parameter(torch.zeros(()))

    def user_state(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = self.user_tower(self.embedding(batch)[:, self.user_pos].flatten(1))
        return out  # (B, m)

    def item_state(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = self.item_tower(self.embedding(batch)[:, self.item_pos].flatten(1))
        return out  # (B, m)

    def interact(self, user_state: torch.Tensor, item_state: torch.Tensor, batch: Any = None) -> torch.Tensor:
        return (user_state * item_state).sum(-1) + self.bias  # (B,)

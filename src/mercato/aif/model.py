"""The AIF split pre-ranking model on ``mercato.ctr.SplitCTRModel`` (digest §1.3-§1.4).

* ``user_state`` (asynchronous, with retrieval): profile projection ``Û_p = U_p W_pᵀ``, sequence projection
  ``Û_s = U_s W_sᵀ``, self-attention ``U_self = Pool(FFN(Softmax(Û_s Û_sᵀ/√d̂) Û_s))``, cross-attention
  ``U_cross = Softmax(Û_p Û_sᵀ/√d̂) Û_s``, for BEA the per-bridge summaries ``V_b`` and, with a long
  behaviour field, the SimHash bucket sums and counts of the long sequence (SDIM-style).
* ``item_state`` (nearline): item vector ``e_i``, BEA bridge weights ``p(b|i)`` and, with a long field, the
  candidate projected like a long-sequence token (``W_long``, no bias, shared item embedding) and its SimHash
  bucket per hash group (SDIM hashes the target and the behaviours in one embedding space).
* ``interact`` (real time): target attention of the candidate over the sequence, ``exact`` (the whole
  sequence) or ``bea`` (``sum_b p(b|i) V_b``); with a long field, the long-sequence interest, ``lsh`` (pool of
  the behaviours colliding with the candidate, and the collision rate) or ``exact`` (their H -> infinity
  limits, weights ``(1 - angle/pi)^tau``); then an MLP on ``[Û_p, U_self, U_cross, e_i, TA, Û_p * e_i
  (, LSH pool, rate)]``.

The behaviour sequences are multi-hot fields of item ids (most recent first); their tokens are mapped onto the
``item_id`` field's vocabulary so that the sequence and the candidate share one item embedding. Each sequence
is cut to its own field's ``max_tokens`` (a schema pads every multi-hot field to the longest one).
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

__all__ = [
    "AIFConfig",
    "AIFModel",
    "TwoTowerModel",
    "lsh_bucket_sums",
    "lsh_expected",
    "lsh_lookup",
    "lsh_rate",
]


@dataclass
class AIFConfig:
    """AIF pre-ranker hyperparameters (symbols as in docs/aif.md)."""

    embed_dim: int = 16  # d_U, field embedding width
    model_dim: int = 32  # d̂, common projection width (§1.3)
    tower_width: int = 0  # hidden width of the user FFN and the item MLP (0: 2 d̂); 4x = "4x larger towers"
    num_bridges: int = 8  # B, bridge vectors of BEA (§1.4) [U]
    bridge_tau: float = 1.0  # temperature of p(b|i) [U]
    attention: Literal["exact", "bea"] = "exact"  # target attention online: exact twin or BEA
    hidden: tuple[int, ...] = (64,)  # interaction MLP widths
    user_fields: tuple[str, ...] = ("user_id", "gender", "age", "occupation", "zip3")  # profile U_profile
    item_fields: tuple[str, ...] = ("item_id", "year", "genres")  # item side
    sequence_field: str = "history"  # multi-hot field of item ids, the behaviour sequence U_seq
    long_field: str = ""  # multi-hot field of a long behaviour sequence for SimHash interest ("": none) [U]
    long_interest: Literal["lsh", "exact"] = "lsh"  # SDIM collision pooling, or its H -> inf exact twin
    lsh_groups: int = 8  # H, hash groups (m = H tau hyperplanes) [U]
    lsh_bits: int = 3  # tau, sign bits per group: 2^tau buckets per group [U]
    lsh_seed: int = 0  # seed of the random hyperplanes (a buffer saved with the weights)

    def __post_init__(self) -> None:
        if self.attention not in ("exact", "bea"):
            raise ValueError(f"attention must be 'exact' or 'bea', got {self.attention!r}")
        if self.long_interest not in ("lsh", "exact"):
            raise ValueError(f"long_interest must be 'lsh' or 'exact', got {self.long_interest!r}")
        if self.num_bridges < 1 or self.model_dim < 1 or self.tower_width < 0:
            raise ValueError("num_bridges and model_dim must be >= 1, tower_width >= 0")
        if self.lsh_groups < 1 or not 1 <= self.lsh_bits <= 16:
            raise ValueError("lsh_groups must be >= 1 and lsh_bits in [1, 16]")


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def _masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(torch.softmax(logits.masked_fill(~mask, float("-inf")), -1))


def lsh_bucket_sums(
    codes: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor, buckets: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """User side of SDIM, batched: per group and bucket the sum and count of the behaviours.

    codes (B, L, H) int64 in [0, buckets), seq (B, L, m), mask (B, L) -> sums (B, H, K, m), counts (B, H, K);
    row ``b`` equals :func:`mercato.aif.approx.lsh_user_buckets` of user ``b``.
    """
    onehot = nn.functional.one_hot(codes, buckets).to(seq.dtype) * mask[..., None, None].to(seq.dtype)
    sums = torch.einsum("blhk,blm->bhkm", onehot, seq)  # (B, H, K, m)
    return sums, onehot.sum(1)  # (B, H, K)


def lsh_lookup(item_codes: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Online SDIM pooling, batched: ``sum_h S_h[c_h(i)] / sum_h n_h[c_h(i)]``. item_codes (B, H) -> (B, m)."""
    b, h, _, m = sums.shape
    idx = item_codes[:, :, None, None].expand(b, h, 1, m)  # (B, H, 1, m)
    num = torch.gather(sums, 2, idx).squeeze(2).sum(1)  # (B, m)
    den = torch.gather(counts, 2, item_codes[:, :, None]).squeeze(2).sum(1, keepdim=True)  # (B, 1)
    return num / den.clamp(min=1.0)


def lsh_rate(item_codes: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Collision rate ``sum_h n_h[c_h(i)] / (H n)``: the share of the n behaviours colliding with the candidate
    per group, an unbiased estimate of ``sum_t p_t / n``. item_codes (B, H), counts (B, H, K) -> (B, 1)."""
    hit = torch.gather(counts, 2, item_codes[:, :, None]).squeeze(2).sum(1, keepdim=True)  # (B, 1)
    n = counts[:, 0].sum(-1, keepdim=True)  # (B, 1): every group's buckets hold all n behaviours
    return hit / (counts.shape[1] * n).clamp(min=1.0)


def lsh_expected(
    items: torch.Tensor, seq: torch.Tensor, mask: torch.Tensor, tau: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact twin (H -> infinity), batched: weights ``p_t = (1 - angle(e_i, s_t)/pi)^tau``.

    items (B, m), seq (B, L, m) -> pooled ``sum_t p_t s_t / sum_t p_t`` (B, m) and rate ``sum_t p_t / n`` (B, 1),
    the limits of :func:`lsh_lookup` and :func:`lsh_rate`.
    """
    cos = torch.einsum(
        "bm,blm->bl", nn.functional.normalize(items, dim=-1), nn.functional.normalize(seq, dim=-1)
    )  # (B, L)
    w = (1.0 - torch.arccos(cos.clamp(-1.0 + 1e-6, 1.0 - 1e-6)) / math.pi) ** tau * mask.to(seq.dtype)
    total = w.sum(1, keepdim=True)  # (B, 1)
    pooled = torch.einsum("bl,blm->bm", w, seq) / total.clamp(min=1e-12)
    return pooled, total / mask.to(seq.dtype).sum(1, keepdim=True).clamp(min=1.0)


class AIFModel(SplitCTRModel):
    """User tower / item tower / interaction, trained as one CTR model by :class:`mercato.ctr.CTRTrainer`."""

    def __init__(self, schema: FeatureSchema, config: AIFConfig | None = None) -> None:
        super().__init__()
        cfg = config or AIFConfig()
        self.config = cfg
        d, m = cfg.embed_dim, cfg.model_dim
        width = cfg.tower_width or 2 * m
        self.embedding = FieldEmbedding(schema, d)
        self.user_pos = schema.field_positions(list(cfg.user_fields))
        self.item_pos = schema.field_positions(list(cfg.item_fields))
        fields = {f.name: f for f in schema.fields}
        order = [f.name for f in schema.sparse_fields + schema.multihot_fields]
        self.user_tokens = max(
            [fields[order[i]].max_tokens for i in self.user_pos if fields[order[i]].kind == "multihot"] + [1]
        )
        self.item_tokens = max(
            [fields[order[i]].max_tokens for i in self.item_pos if fields[order[i]].kind == "multihot"] + [1]
        )
        item_spec = fields["item_id"]
        multihot = [f.name for f in schema.multihot_fields]
        self.item_id_pos = schema.field_positions(["item_id"])[0]
        self.seq_slot, self.seq_len = self._sequence_field(fields, multihot, cfg.sequence_field, "sequence")
        self.register_buffer(
            "remap",
            self._remap(
                fields[cfg.sequence_field].vocab, item_spec.vocab, fields[cfg.sequence_field].vocab_size
            ),
            persistent=False,
        )
        self.w_profile = nn.Linear(d * len(self.user_pos), m)  # W_profile
        self.w_seq = nn.Linear(d, m)  # W_seq
        self.ffn = _mlp([m, width, m])
        self.item_tower = _mlp([d * len(self.item_pos), width, m])
        self.bridges = nn.Parameter(torch.randn(cfg.num_bridges, m) / math.sqrt(m))  # beta_b
        n_in = 6 * m
        self.long_slot, self.long_len = -1, 0
        if cfg.long_field:
            self.long_slot, self.long_len = self._sequence_field(fields, multihot, cfg.long_field, "long")
            spec = fields[cfg.long_field]
            self.register_buffer(
                "long_remap", self._remap(spec.vocab, item_spec.vocab, spec.vocab_size), persistent=False
            )
            self.w_long = nn.Linear(
                d, m, bias=False
            )  # W_long: long tokens and candidate, one space, no offset
            gen = torch.Generator().manual_seed(cfg.lsh_seed)
            planes = torch.randn(m, cfg.lsh_groups * cfg.lsh_bits, generator=gen)  # SimHash hyperplanes
            self.register_buffer("planes", planes)  # saved with the weights: the hashes are part of the model
            n_in += m + 1  # pooled interest and collision rate
        self.head = _mlp([n_in, *cfg.hidden, 1])

    @staticmethod
    def _sequence_field(fields: dict[str, Any], multihot: list[str], name: str, what: str) -> tuple[int, int]:
        if name not in fields or fields[name].kind != "multihot":
            raise KeyError(f"{what} field '{name}' must be a multihot field of the schema")
        return multihot.index(name), int(fields[name].max_tokens)

    @staticmethod
    def _remap(vocab: dict[str, int], item_vocab: dict[str, int], size: int) -> torch.Tensor:
        remap = torch.zeros(size, dtype=torch.long)  # sequence token index -> item_id index
        for token, idx in vocab.items():
            remap[idx] = item_vocab.get(token, 0)
        return remap

    def _tokens(
        self, batch: dict[str, torch.Tensor], slot: int, length: int, remap: torch.Tensor, proj: nn.Module
    ) -> tuple[torch.Tensor, torch.Tensor]:
        idx = batch["multihot"][:, slot, :length]  # (B, L), 0 = padding
        offset = self.embedding.offsets[self.item_id_pos]  # type: ignore[index]
        emb = self.embedding.table(remap[idx] + offset)  # (B, L, d) in the item_id vocabulary
        return proj(emb), idx > 0  # (B, L, m), (B, L)

    def _embed(self, batch: dict[str, torch.Tensor], tokens: int) -> torch.Tensor:
        """Field embeddings (B, F, d), multi-hot fields cut to ``tokens`` (the longest field one side reads)."""
        return self.embedding({"sparse": batch["sparse"], "multihot": batch["multihot"][:, :, :tokens]})

    def simhash(self, x: torch.Tensor) -> torch.Tensor:
        """Bucket of every vector in each of the H groups: (..., m) -> (..., H) int64 (as approx.simhash_codes)."""
        tau = self.config.lsh_bits
        bits = (x @ self.planes > 0).long()  # type: ignore[operator]  # (..., H tau)
        weights = 2 ** torch.arange(tau, device=x.device)  # (tau,)
        return (bits.unflatten(-1, (self.config.lsh_groups, tau)) * weights).sum(-1)  # (..., H)

    def user_state(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self._embed(batch, self.user_tokens)  # (B, F, d)
        prof = self.w_profile(emb[:, self.user_pos].flatten(1))  # Û_profile (B, m)
        seq, mask = self._tokens(batch, self.seq_slot, self.seq_len, self.remap, self.w_seq)  # type: ignore[arg-type]
        scale = math.sqrt(seq.shape[-1])
        self_logits = seq @ seq.transpose(1, 2) / scale  # (B, L, L)
        att = _masked_softmax(self_logits, mask[:, None, :]) @ seq  # (B, L, m)
        maskf = mask.unsqueeze(-1).float()
        u_self = (self.ffn(att) * maskf).sum(1) / maskf.sum(1).clamp(min=1.0)  # Pool(FFN(.)) (B, m)
        cross_logits = (prof.unsqueeze(1) @ seq.transpose(1, 2)).squeeze(1) / scale  # (B, L)
        u_cross = (_masked_softmax(cross_logits, mask).unsqueeze(1) @ seq).squeeze(1)  # (B, m)
        b_logits = torch.einsum("km,blm->bkl", self.bridges, seq) / scale  # (B, K, L)
        summaries = _masked_softmax(b_logits, mask[:, None, :]) @ seq  # V_b per user (B, K, m)
        out = {
            "profile": prof,
            "self": u_self,
            "cross": u_cross,
            "seq": seq,
            "mask": mask,
            "bridges": summaries,
        }
        if self.config.long_field:
            lseq, lmask = self._tokens(batch, self.long_slot, self.long_len, self.long_remap, self.w_long)  # type: ignore[arg-type]
            sums, counts = lsh_bucket_sums(self.simhash(lseq), lseq, lmask, 2**self.config.lsh_bits)
            out |= {"long_seq": lseq, "long_mask": lmask, "lsh_sums": sums, "lsh_counts": counts}
        return out

    def item_state(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self._embed(batch, self.item_tokens)  # (B, F, d)
        e = self.item_tower(emb[:, self.item_pos].flatten(1))  # e_i (B, m)
        out = {
            "item": e,
            "bridge_weights": bea_item_weights(e, self.bridges, self.config.bridge_tau),
        }  # (B, K)
        if self.config.long_field:
            cand = self.w_long(emb[:, self.item_id_pos])  # the candidate as a long-sequence token (B, m)
            out |= {"long_item": cand, "lsh_codes": self.simhash(cand)}  # (B, m), (B, H)
        return out

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
            ta = torch.einsum("bl,blm->bm", _masked_softmax(logits, mask), seq)  # exact target attention
        p = user_state["profile"]
        parts = [p, user_state["self"], user_state["cross"], e, ta, p * e]
        if self.config.long_field:
            if self.config.long_interest == "lsh":
                codes, counts = item_state["lsh_codes"], user_state["lsh_counts"]
                parts += [lsh_lookup(codes, user_state["lsh_sums"], counts), lsh_rate(codes, counts)]
            else:
                cand, lseq, lmask = item_state["long_item"], user_state["long_seq"], user_state["long_mask"]
                parts += list(lsh_expected(cand, lseq, lmask, self.config.lsh_bits))  # (B, m), (B, 1)
        out: torch.Tensor = self.head(torch.cat(parts, dim=-1)).squeeze(-1)  # (B, 6m or 7m + 1) -> (B,)
        return out

    def tower_parameters(self) -> int:
        """Parameters of the user and item towers (projections, FFN, item MLP), embeddings excluded."""
        towers = [self.w_profile, self.w_seq, self.ffn, self.item_tower]
        towers += [self.w_long] if self.config.long_field else []
        return int(sum(p.numel() for t in towers for p in t.parameters()))


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

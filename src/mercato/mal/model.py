"""MAL (AKA + PTP + CAT) and its multi-task baselines on one shared encoder, as mercato.ctr models.

Paper: "See Beyond a Single View: Multi-Attribution Learning for CVR" (CIKM 2025); the architecture follows
the authors' group's PyMAL (``model/NATAL.py``, ``model/MoAE.py``; digest §3.3), fixing its known gaps
(a padding mask in the target attention). Symbols: ``x`` encoder output, ``z_1 = ExpertNet(x)`` the bottom,
``a_l^(k)`` layer l of AKA tower k, ``p_l`` the PTP's layer l.

* **Encoder** (shared by every model): 16-d embeddings of 6 user + 10 ad/context fields; per behaviour
  sequence (3) a target attention with a padding mask (query = Linear(ad embeddings)); per multimodal score
  list (2) a DeepSet histogram ``log2(1 + count_b)`` over ``mm_bins`` bins times learned bin vectors;
  concatenated (21 x 16 = 336) and LayerNorm-ed.
* **Bottom**: ``shared`` = SENet over the 16-d groups + Linear(336, 256) + ReLU (PyMAL ExpertNet);
  ``mmoe`` = ``n_experts`` such experts mixed per view by softmax gates; ``ple`` = shared + per-view
  private experts with per-view gates (one CGC level; MoAE's bottom).
* **Towers**: one per view, ``256 -> 128 -> 64 -> 32 -> out`` (out = 1 logit, 16 for CAT).
* **PTP fusion** (``fusion=True``): ``z_l = ReLU(W_l [p_l ; a_l^(1) ; ... ; a_l^(K)] + p_l)`` with
  ``p_l = P_l(z_{l-1})``, for the three hidden layers; no stop-gradient (``detach_aux`` adds one).
* **Loss**: ``L = BCE(primary) + lambda * sum_k BCE(aux_k) + lambda * CE_16(cat)``; labels binarised
  (``label_mode="binary"``, PyMAL) or fractional credits as soft BCE targets (``"fractional"``); PCGrad over
  the terms as an option.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, cast

import numpy as np
import torch
from torch import nn

from mercato.ctr.base import CTRModel, Outputs, label_key
from mercato.ctr.losses import pcgrad_backward
from mercato.ctr.schema import CTRTensors
from mercato.mal.labels import CAT_VIEWS
from mercato.mal.mac import MACData

__all__ = ["MAL", "MACSchema", "MALConfig", "PRESETS", "mac_to_tensors", "preset"]

N_USER, N_AD, N_SEQ, N_MM = 6, 10, 3, 2


@dataclass
class MACSchema:
    """Vocabulary sizes of the encoder's tables (from ``mercato.mal.mac.load_vocabs``)."""

    user_sizes: list[int]  # user_feat0-5
    ad_sizes: list[int]  # ad_feat0-5, context_feat0-3 (ad_feat0-2 also index the behaviour sequences)
    mm_bins: int = 32  # bins of the DeepSet histogram over [-1, 1)

    @classmethod
    def from_vocabs(cls, vocabs: dict[str, dict[str, int]], mm_bins: int = 32) -> MACSchema:
        from mercato.mal.mac import AD_COLS, USER_COLS

        return cls([len(vocabs[c]) for c in USER_COLS[1:]], [len(vocabs[c]) for c in AD_COLS], mm_bins)


@dataclass
class MALConfig:
    """One model of the MAL family: MAL itself, MAL without CAT, Base, Shared-Bottom, MMoE, PLE, MoAE."""

    primary: str = "last"  # the system's attribution view (PTP's label)
    aux_views: tuple[str, ...] = ("first", "linear", "mta")  # AKA towers, one per auxiliary view
    cat: bool = True  # CAT tower: 16-way softmax over the Cartesian product of the 4 binarised labels
    fusion: bool = True  # PTP fused layer by layer with the AKA towers' hidden states (MAL, MoAE)
    bottom: Literal["shared", "mmoe", "ple"] = "shared"  # shared bottom, MMoE experts, PLE/MoAE experts
    n_experts: int = 4  # MMoE experts; PLE: shared experts
    n_private: int = 1  # PLE: private experts per view
    lam: float = 0.1  # lambda, weight of every auxiliary term (PyMAL default 0.1)
    label_mode: Literal["binary", "fractional"] = "binary"  # aux targets: 1[credit > 0] or the credit itself
    pcgrad: bool = False  # PCGrad over the loss terms (Yu et al. 2020)
    detach_aux: bool = False  # stop PTP gradients into the AKA towers (PyMAL: no)
    emb_dim: int = 16  # embedding width (PyMAL hidden_dim)
    attn_heads: int = 4  # heads of the target attention
    bottom_dim: int = 256  # width of z_1
    tower_dims: tuple[int, ...] = (128, 64, 32)  # hidden widths of every tower
    cat_views: tuple[str, ...] = CAT_VIEWS  # bit order of y_cat

    def __post_init__(self) -> None:
        if self.primary in self.aux_views:
            raise ValueError(f"primary view {self.primary!r} is also an auxiliary view")
        if self.fusion and not (self.aux_views or self.cat):
            raise ValueError("fusion needs at least one AKA tower (aux_views or cat)")
        if self.bottom not in ("shared", "mmoe", "ple"):
            raise ValueError(f"bottom must be shared, mmoe or ple, got {self.bottom!r}")


def _aux_for(primary: str) -> tuple[str, ...]:
    return tuple(v for v in ("first", "last", "linear", "mta") if v != primary)


PRESETS = ("Base", "Shared-Bottom", "MMoE", "PLE", "MoAE", "MAL w/o CAT", "MAL")


def preset(name: str, primary: str = "last", **overrides: object) -> MALConfig:
    """The config of a named model (``PRESETS``) for ``primary``."""
    aux = _aux_for(primary)
    table = {
        "Base": dict(aux_views=(), cat=False, fusion=False),
        "Shared-Bottom": dict(aux_views=aux, cat=False, fusion=False),
        "MMoE": dict(aux_views=aux, cat=False, fusion=False, bottom="mmoe"),
        "PLE": dict(aux_views=aux, cat=False, fusion=False, bottom="ple"),
        "MoAE": dict(aux_views=aux, cat=False, fusion=True, bottom="ple"),
        "MAL w/o CAT": dict(aux_views=aux, cat=False, fusion=True),
        "MAL": dict(aux_views=aux, cat=True, fusion=True),
    }
    if name not in table:
        raise ValueError(f"unknown model {name!r}; valid: {list(table)}")
    return replace(MALConfig(primary=primary, **table[name]), **overrides)  # type: ignore[arg-type]


def mac_to_tensors(data: MACData, primary: str, mm_bins: int = 32) -> CTRTensors:
    """MAC rows as ``CTRTensors``: sparse (N, 16) user+ad fields, multihot (N, 5, L) 3 sequences + 2 binned
    multimodal score lists (bin b + 1 of ``mm_bins`` over [-1, 1), 0 where the sequence is padding), labels
    (primary + the other three views, fractional credits kept), user = user_id."""
    pad = data.seq[:, 0, :] == 0  # (N, L) padding of the purchase sequence
    bins = (
        np.clip(np.floor((data.mm + 1.0) / 2.0 * mm_bins), 0, mm_bins - 1).astype(np.int64) + 1
    )  # (N, 2, L)
    bins[np.broadcast_to(pad[:, None, :], bins.shape)] = 0
    multihot = np.concatenate([data.seq, bins], axis=1)  # (N, 5, L)
    sparse = np.concatenate([data.user[:, 1:], data.ad], axis=1)  # (N, 16)
    labels = {k: torch.from_numpy(v.astype(np.float32)) for k, v in data.labels.items()}
    return CTRTensors(
        sparse=torch.from_numpy(sparse),
        multihot=torch.from_numpy(multihot),
        label=labels.pop(primary),
        user=torch.from_numpy(data.user[:, 0].copy()),
        aux_labels=labels,
        label_name=primary,
    )


class SENet(nn.Module):
    """Squeeze-excitation over G groups of D: ``x_g * sigmoid(W2 ReLU(W1 mean_g x_g))`` (PyMAL SENET)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(dim, max(1, dim // 4), bias=False),
            nn.ReLU(),
            nn.Linear(max(1, dim // 4), dim, bias=False),
        )
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.view(x.shape[0], -1, self.dim)  # (B, G, D)
        w = torch.sigmoid(self.fc(g.mean(dim=1))).unsqueeze(1)  # (B, 1, D)
        return (g * w).reshape(x.shape[0], -1)  # (B, G*D)


class Expert(nn.Module):
    """SENet + Linear + ReLU (PyMAL ExpertNet)."""

    def __init__(self, in_dim: int, out_dim: int, group: int) -> None:
        super().__init__()
        self.senet = SENet(group)
        self.fc = nn.Linear(in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(self.senet(x)))


class Encoder(nn.Module):
    """Embeddings, masked target attention over the 3 behaviour sequences, DeepSet of the 2 score lists."""

    def __init__(self, schema: MACSchema, cfg: MALConfig) -> None:
        super().__init__()
        d = cfg.emb_dim
        self.user_emb = nn.ModuleList(nn.Embedding(n, d) for n in schema.user_sizes)
        self.ad_emb = nn.ModuleList(nn.Embedding(n, d) for n in schema.ad_sizes)
        self.query = nn.ModuleList(nn.Linear(N_AD * d, d) for _ in range(N_SEQ))
        self.attn = nn.ModuleList(
            nn.MultiheadAttention(d, cfg.attn_heads, batch_first=True) for _ in range(N_SEQ)
        )
        self.bins = nn.ModuleList(nn.Linear(schema.mm_bins, d, bias=False) for _ in range(N_MM))
        self.mm_bins = schema.mm_bins
        self.out_dim = (N_USER + N_AD + N_SEQ + N_MM) * d
        self.norm = nn.LayerNorm(self.out_dim)
        for emb in [*self.user_emb, *self.ad_emb]:
            nn.init.normal_(emb.weight, std=0.05)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        sparse, multi = batch["sparse"], batch["multihot"]  # (B, 16), (B, 5, L)
        b = sparse.shape[0]
        user = [e(sparse[:, i]) for i, e in enumerate(self.user_emb)]  # 6 x (B, D)
        ad = [e(sparse[:, N_USER + i]) for i, e in enumerate(self.ad_emb)]  # 10 x (B, D)
        ad_cat = torch.cat(ad, dim=1)  # (B, 10 D)
        seq_out = []
        for k in range(N_SEQ):
            tokens = multi[:, k, :]  # (B, L)
            keys = self.ad_emb[k](tokens)  # (B, L, D): a sequence of ad_feat{k} values
            pad = tokens == 0  # (B, L)
            empty = pad.all(dim=1)  # (B,) no history: attention output 0
            q = self.query[k](ad_cat).unsqueeze(1)  # (B, 1, D)
            out, _ = self.attn[k](q, keys, keys, key_padding_mask=pad & ~empty[:, None], need_weights=False)
            seq_out.append(out.squeeze(1).masked_fill(empty[:, None], 0.0))  # (B, D)
        mm_out = []
        for k in range(N_MM):
            ids = multi[:, N_SEQ + k, :]  # (B, L), 0 = padding, b + 1 = bin b
            counts = torch.zeros(b, self.mm_bins + 1, device=ids.device).scatter_add_(
                1, ids, torch.ones_like(ids, dtype=torch.float32)
            )[:, 1:]  # (B, bins)
            mm_out.append(self.bins[k](torch.log2(counts + 1.0)))  # (B, D)
        x = torch.cat(user + ad + seq_out + mm_out, dim=1)  # (B, 21 D)
        return self.norm(x)


class Tower(nn.Module):
    """``in -> 128 -> 64 -> 32`` ReLU layers, then the output layer; ``hidden`` returns every activation."""

    def __init__(self, in_dim: int, dims: tuple[int, ...], out: int) -> None:
        super().__init__()
        widths = [in_dim, *dims]
        self.layers = nn.ModuleList(nn.Linear(a, c) for a, c in zip(widths[:-1], widths[1:], strict=True))
        self.out = nn.Linear(widths[-1], out)

    def hidden(self, x: torch.Tensor) -> list[torch.Tensor]:
        acts = []
        for layer in self.layers:
            x = torch.relu(layer(x))
            acts.append(x)
        return acts


class MAL(CTRModel):
    """The MAL family (``MALConfig``): forward returns ``{primary, aux views..., "cat": (B, 16)}`` logits."""

    def __init__(self, schema: MACSchema, config: MALConfig) -> None:
        super().__init__()
        self.config = config
        self.primary_head = config.primary
        self.encoder = Encoder(schema, config)
        x_dim, z_dim, dims = self.encoder.out_dim, config.bottom_dim, config.tower_dims
        self.aka_views = list(config.aux_views) + (["cat"] if config.cat else [])
        views = [config.primary, *self.aka_views]
        group = config.emb_dim
        if config.bottom == "shared":
            self.experts = nn.ModuleList([Expert(x_dim, z_dim, group)])
        elif config.bottom == "mmoe":
            self.experts = nn.ModuleList(Expert(x_dim, z_dim, group) for _ in range(config.n_experts))
        else:
            n = config.n_experts + config.n_private * len(views)
            self.experts = nn.ModuleList(Expert(x_dim, z_dim, group) for _ in range(n))
        if config.bottom != "shared":
            self.gates = nn.ModuleDict(
                {v: nn.Linear(x_dim, self._gate_width(i)) for i, v in enumerate(views)}
            )
        self.towers = nn.ModuleDict({v: Tower(z_dim, dims, 16 if v == "cat" else 1) for v in views})
        if config.fusion:
            k = len(self.aka_views)
            self.fuse: nn.ModuleList = nn.ModuleList(nn.Linear(w * (1 + k), w) for w in dims)

    def _tower(self, view: str) -> Tower:
        return cast(Tower, self.towers[view])

    # ------------------------------------------------------------------ bottoms
    def _gate_width(self, i: int) -> int:
        c = self.config
        return c.n_experts if c.bottom == "mmoe" else c.n_experts + c.n_private

    def _expert_ids(self, i: int) -> list[int]:
        c = self.config
        if c.bottom == "mmoe":
            return list(range(c.n_experts))
        own = c.n_experts + i * c.n_private
        return list(range(c.n_experts)) + list(range(own, own + c.n_private))

    def bottoms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``z_1`` of every view (one shared bottom, or gated mixtures of experts)."""
        views = [self.config.primary, *self.aka_views]
        if self.config.bottom == "shared":
            z = self.experts[0](x)  # (B, 256)
            return dict.fromkeys(views, z)
        outs = [e(x) for e in self.experts]  # E x (B, 256)
        res = {}
        for i, v in enumerate(views):
            ids = self._expert_ids(i)
            stack = torch.stack([outs[j] for j in ids], dim=1)  # (B, E_v, 256)
            g = torch.softmax(self.gates[v](x), dim=-1).unsqueeze(-1)  # (B, E_v, 1)
            res[v] = (g * stack).sum(dim=1)  # (B, 256)
        return res

    # ------------------------------------------------------------------ forward
    def _ptp(self, z1: torch.Tensor, aka_hidden: list[list[torch.Tensor]]) -> torch.Tensor:
        tower = self._tower(self.config.primary)
        z = z1
        for layer_idx, layer in enumerate(tower.layers):
            p = layer(z)  # (B, w_l)
            if self.config.fusion:
                a = [h[layer_idx].detach() if self.config.detach_aux else h[layer_idx] for h in aka_hidden]
                fuse = cast(nn.Linear, self.fuse[layer_idx])
                z = torch.relu(fuse(torch.cat([p, *a], dim=1)) + p)  # (B, w_l)
            else:
                z = torch.relu(p)
        return tower.out(z).squeeze(-1)  # (B,)

    def forward(self, batch: dict[str, torch.Tensor]) -> Outputs:
        z = self.bottoms(self.encoder(batch))
        hidden = {v: self._tower(v).hidden(z[v]) for v in self.aka_views}
        out: Outputs = {
            self.config.primary: self._ptp(z[self.config.primary], [hidden[v] for v in self.aka_views])
        }
        for v in self.aka_views:
            logits = self._tower(v).out(hidden[v][-1])  # (B, 1) or (B, 16)
            out[v] = logits if v == "cat" else logits.squeeze(-1)
        return out

    @torch.no_grad()
    def serve(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Primary logits (B,) without the AKA output heads (their hidden layers still feed the PTP)."""
        z = self.bottoms(self.encoder(batch))
        if not self.config.fusion:
            return self._ptp(z[self.config.primary], [])
        return self._ptp(z[self.config.primary], [self._tower(v).hidden(z[v]) for v in self.aka_views])

    # ------------------------------------------------------------------ losses
    def _target(self, batch: dict[str, torch.Tensor], view: str) -> torch.Tensor:
        y = batch[label_key(view)]
        return (y > 0).float() if self.config.label_mode == "binary" else y

    def cat_target(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``y_cat = sum_k 2^k 1[y_{cat_views[k]} > 0]`` (B,) int64 (``mercato.mal.labels.cat_encode``)."""
        y = torch.zeros_like(batch["label"], dtype=torch.long)
        for k, v in enumerate(self.config.cat_views):
            y = y + ((batch[label_key(v)] > 0).long() << k)
        return y

    def losses(self, outputs: Outputs, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``{"primary": BCE, "<view>": lambda * BCE, "cat": lambda * CE_16}``."""
        bce = nn.functional.binary_cross_entropy_with_logits
        c = self.config
        terms = {"primary": bce(outputs[c.primary], (batch["label"] > 0).float())}
        for v in c.aux_views:
            terms[v] = c.lam * bce(outputs[v], self._target(batch, v))
        if c.cat:
            terms["cat"] = c.lam * nn.functional.cross_entropy(outputs["cat"], self.cat_target(batch))
        return terms

    def backward_losses(self, losses: dict[str, torch.Tensor]) -> None:
        if self.config.pcgrad and len(losses) > 1:
            pcgrad_backward(losses, [p for p in self.parameters() if p.requires_grad])
        else:
            super().backward_losses(losses)

    def probabilities(self, outputs: Outputs) -> dict[str, torch.Tensor]:
        return {self.config.primary: torch.sigmoid(outputs[self.config.primary].float())}

"""FATConfig: every hyperparameter of the Field-Aware Transformer, including each unconfirmed [U] choice.

Paper: Yan et al., "From Scaling to Structured Expressivity: Rethinking Transformers for CTR Prediction",
arXiv 2511.12081 (v1 and v2). Section numbers (§3.1-§3.4) follow v2 as cited by secondary sources; details the
digest marks [U] (unconfirmed) are options here, documented in ``docs/fat.md`` ("Deviations from the paper").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mercato.ctr.checks import at_least, dropout_rate, positive_widths

__all__ = ["FATConfig", "ModulationMode"]

ModulationMode = Literal["mul", "one_plus", "add"]


@dataclass
class FATConfig:
    """Field-Aware Transformer hyperparameters (symbols as in docs/fat.md)."""

    embed_dim: int = 64  # d, token width (§3.1)
    num_layers: int = 2  # L, FAT blocks
    num_heads: int = 4  # H, attention heads
    attn_dim: int | None = None  # H * d_k, query/key/value width (None: d) (§3.2)
    ffn_dim: int | None = None  # d_ff, hidden width of the field-aware FFN (None: 4d) (§3.3)
    ffn_activation: str = "silu"  # sigma of the field-aware FFN [U: SiLU (impl B) or ReLU] (§3.3)
    field_bias: bool = True  # learnable field bias b_f added to each token, h_i = e_i + b_{f_i} (§3.1)
    per_field_qkv: bool = True  # per-field W_Q^(f), W_K^(f), W_V^(f); False shares them (ablation) (§3.2)
    field_aware_output: bool = True  # per-field output projection W_O^(f) [U: optional] (§3.2)
    field_aware_ffn: bool = True  # per-field FFN W_1^(f), W_2^(f); False: one shared FFN (§3.3)
    modulation: ModulationMode = "one_plus"  # s_ij = qk*(1+w); or qk*w (mul), qk+w (add) [U] (§3.2)
    modulation_per_head: bool = True  # one F x F matrix w per head, else shared by all heads [U] (§3.2)
    modulation_init_mean: float = 0.0  # initial value of w [U: impl A/B both 0] (§3.2)
    modulation_init_std: float = 0.0  # std of the normal init of w [U: impl A 0.01, impl B 0] (§3.2)
    norm: Literal["pre", "post"] = "pre"  # LayerNorm placement [U: Fig. 1 pre-LN (impl A), post-LN (impl B)]
    dropout: float = 0.0  # dropout on attention weights and residual branches
    hypernetwork: bool = True  # Basis-Composed Hypernetwork synthesizes per-field weights (§3.4)
    num_bases: int = 16  # M, shared bases per parameter type (§3.4) [U: impl B 16, impl A 64]
    meta_dim: int = 32  # k, width of the field meta-embedding phi_f (§3.4) [U: impl B 32]
    top_k: int = 3  # K, bases selected by the router per field; 0 mixes all M (§3.4)
    router_noise: Literal["none", "gumbel"] = "none"  # gradient/exploration through top-K [U] (§3.4)
    share_bases_across_layers: bool = False  # one set of bases for all layers [U: impl A yes, B no] (§3.4)
    load_balance_weight: float = 0.0  # lambda of the optional load-balance loss (not in the paper) (§3.4)
    pooling: Literal["sum", "concat"] = "sum"  # tokens -> head: sum-pool (impls A, B) or concatenate [U] (§3)
    head_units: tuple[int, ...] = (128, 64)  # hidden widths of the MLP head on the pooled tokens
    mask_empty_fields: bool = True  # multi-hot fields with no token are masked as keys (pitfall §2.6)
    embed_init_std: float = 1e-2  # std of the embedding initialisation

    def __post_init__(self) -> None:
        attn = self.attn_dim or self.embed_dim
        at_least(self, 1, "embed_dim", "num_layers", "num_heads", "attn_dim", "ffn_dim")
        at_least(self, 0, "embed_init_std", "modulation_init_std", "top_k")
        positive_widths(self, "head_units")
        dropout_rate(self, "dropout")
        if attn % self.num_heads:
            raise ValueError(f"attn_dim {attn} must be divisible by num_heads {self.num_heads}")
        if self.modulation not in ("mul", "one_plus", "add"):
            raise ValueError(f"modulation must be 'mul', 'one_plus' or 'add', got {self.modulation!r}")
        if self.norm not in ("pre", "post"):
            raise ValueError(f"norm must be 'pre' or 'post', got {self.norm!r}")
        if self.pooling not in ("sum", "concat"):
            raise ValueError(f"pooling must be 'sum' or 'concat', got {self.pooling!r}")
        if self.router_noise not in ("none", "gumbel"):
            raise ValueError(f"router_noise must be 'none' or 'gumbel', got {self.router_noise!r}")
        if self.hypernetwork:
            if self.num_bases < 1 or self.meta_dim < 1:
                raise ValueError("num_bases (M) and meta_dim (k) must be >= 1 with the hypernetwork")
            if not 0 <= self.top_k <= self.num_bases:
                raise ValueError(f"top_k (K) must lie in [0, num_bases={self.num_bases}], got {self.top_k}")
        if self.load_balance_weight < 0:
            raise ValueError(f"load_balance_weight must be >= 0, got {self.load_balance_weight}")

    @property
    def head_width(self) -> int:
        """d_k, the width of one head."""
        return (self.attn_dim or self.embed_dim) // self.num_heads

    @property
    def hidden_width(self) -> int:
        """d_ff, the hidden width of the FFN."""
        return self.ffn_dim or 4 * self.embed_dim

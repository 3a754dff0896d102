"""FAT: the Field-Aware Transformer for CTR prediction (Yan et al., arXiv 2511.12081).

``from mercato.fat import FATConfig, FieldAwareTransformer`` is the API; see ``docs/fat.md``.
"""

from mercato.fat.attention import FieldDecomposedAttention, field_decomposed_attention, modulate
from mercato.fat.config import FATConfig
from mercato.fat.hypernetwork import BasisBank, FieldLinear, compose_bases, load_balance_loss, top_k_routing
from mercato.fat.model import FATBlock, FieldAwareFFN, FieldAwareTransformer, fat_parameter_count

__all__ = [
    "BasisBank",
    "FATBlock",
    "FATConfig",
    "FieldAwareFFN",
    "FieldAwareTransformer",
    "FieldDecomposedAttention",
    "FieldLinear",
    "compose_bases",
    "fat_parameter_count",
    "field_decomposed_attention",
    "load_balance_loss",
    "modulate",
    "top_k_routing",
]

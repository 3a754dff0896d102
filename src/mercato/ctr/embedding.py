"""Field embeddings: one table for all fields (with per-field offsets), output ``(B, F, D)``."""

from __future__ import annotations

import torch
from torch import nn

from mercato.ctr.schema import FeatureSchema

__all__ = ["FieldEmbedding"]


class FieldEmbedding(nn.Module):
    """Embeds every field of a batch into one ``D``-dim vector per field.

    Sparse (categorical / bucketised numeric) fields look up one row; multi-hot fields mean-pool the rows of
    their non-padding tokens (an empty field gives the zero vector). Index 0 of each field is its own
    learnable OOV row, except for multi-hot padding which is masked out.

    Args:
        schema: the fitted :class:`FeatureSchema`.
        dim: D, the embedding width (1 gives the per-field weights of a linear model).
        init_std: standard deviation of the normal initialisation.
    """

    def __init__(self, schema: FeatureSchema, dim: int, init_std: float = 1e-2) -> None:
        super().__init__()
        fields = schema.sparse_fields + schema.multihot_fields
        sizes = torch.tensor([f.vocab_size for f in fields], dtype=torch.long)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)[:-1]])
        self.num_sparse = len(schema.sparse_fields)
        self.num_fields = len(fields)
        self.dim = dim
        self.register_buffer("offsets", offsets, persistent=False)
        self.table = nn.Embedding(int(sizes.sum()), dim)
        nn.init.normal_(self.table.weight, std=init_std)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Return field embeddings ``(B, F, D)`` with sparse fields first, then multi-hot fields."""
        offsets: torch.Tensor = self.offsets  # type: ignore[assignment]
        sparse = batch["sparse"]  # (B, F_s)
        out = [self.table(sparse + offsets[: self.num_sparse])]  # (B, F_s, D)
        multihot = batch.get("multihot")
        if multihot is not None and multihot.shape[1] > 0:
            ids = multihot + offsets[self.num_sparse :].view(1, -1, 1)  # (B, F_m, L)
            mask = (multihot > 0).unsqueeze(-1).to(self.table.weight.dtype)  # (B, F_m, L, 1)
            summed = (self.table(ids) * mask).sum(dim=2)  # (B, F_m, D)
            out.append(summed / mask.sum(dim=2).clamp(min=1.0))
        return torch.cat(out, dim=1)  # (B, F, D)

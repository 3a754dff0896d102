"""The contract every CTR model in mercato follows.

A CTR model is an ``nn.Module`` built as ``Model(schema, config)`` whose ``forward(batch)`` takes the batch
dict of :meth:`mercato.ctr.schema.CTRTensors.batch` and returns logits of shape ``(B,)``. A model with an extra
training loss (e.g. FAT's load-balance loss) overrides :meth:`CTRModel.auxiliary_loss`; the trainer adds it to
the binary cross-entropy.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["CTRModel"]


class CTRModel(nn.Module):
    """Base class: ``forward(batch) -> logits (B,)`` plus an optional auxiliary loss."""

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def auxiliary_loss(self) -> torch.Tensor:
        """Extra loss from the last forward pass (0 by default)."""
        return torch.zeros((), device=next(self.parameters()).device)

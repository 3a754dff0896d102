"""Metrics of the primary view of a trained MAL-family model on encoded rows (``CTRTensors``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mercato.core.metrics import auc, gauc, logloss, pcoc
from mercato.mal.model import MAL

__all__ = ["predict_primary", "score_primary"]


def predict_primary(model: MAL, data: Any, batch_size: int = 65536) -> np.ndarray:
    """P(conversion) of the primary view via ``MAL.serve`` for every row of ``data`` (CTRTensors)."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        out.append(torch.sigmoid(model.serve(data.batch(slice(start, start + batch_size)))).double())
    return torch.cat(out).numpy()


def score_primary(model: MAL, data: Any) -> dict[str, Any]:
    """AUC, GAUC (grouped by user), logloss and PCOC of the binarised primary label, scored through the
    PTP-only serving path; ``rows`` is the number of rows scored."""
    p = predict_primary(model, data)
    y = (data.label.numpy() > 0).astype(np.int64)
    return {
        "auc": auc(y, p),
        "gauc": gauc(y, p, groups=data.user.numpy()),
        "logloss": logloss(y, p),
        "pcoc": pcoc(y, p),
        "rows": len(y),
    }

"""FAT experiments: the model registry of the FAT comparison and the run function that keeps FAT's modulation.

The benchmark (``benchmarks/fat.py``) and ``mercato fat bench`` declare runs of :func:`train_run`; data and
training come from :mod:`mercato.ctr.experiment`.
"""

from __future__ import annotations

from typing import Any

from mercato.ctr.base import CTRModel
from mercato.ctr.experiment import CTR_MODELS, CTRDataSpec, CTRRunConfig, EncodedData
from mercato.ctr.experiment import train_run as ctr_train_run
from mercato.fat.config import FATConfig
from mercato.fat.model import FieldAwareTransformer

__all__ = ["BASELINES", "MODELS", "model_overrides", "train_run"]

#: The models of the FAT comparison: FAT and the attention and cross-network baselines.
MODELS: dict[str, tuple[type[CTRModel], type]] = {
    "fat": (FieldAwareTransformer, FATConfig),
    **{name: CTR_MODELS[name] for name in ("transformer", "autoint", "dcnv2", "deepfm")},
}
BASELINES = [m for m in MODELS if m != "fat"]
HEAD_WIDTH = (
    8  # d_k of FAT and the Transformer at every width (H = d / 8; at d = 16 four heads of 4 were worse)
)


def model_overrides(name: str, width: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Model config of a run: width ``d``, for FAT and the Transformer ``d / HEAD_WIDTH`` heads, then ``extra``."""
    cfg: dict[str, Any] = {"embed_dim": width}
    if name in ("fat", "transformer"):
        cfg["num_heads"] = max(1, width // HEAD_WIDTH)
    return {**cfg, **(extra or {})}


def _modulation(model: CTRModel, data: EncodedData) -> dict[str, Any]:
    if isinstance(model, FieldAwareTransformer):
        return {"modulation": model.modulation_matrix().numpy().tolist()}
    return {}


def train_run(config: CTRRunConfig, data: CTRDataSpec) -> dict[str, Any]:
    """One run of the FAT comparison (:func:`mercato.ctr.experiment.train_run` over :data:`MODELS`)."""
    return ctr_train_run(config, data, registry=MODELS, after=_modulation)

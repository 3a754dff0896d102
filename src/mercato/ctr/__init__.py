"""Tabular CTR substrate: feature schema, embeddings, blocks, baselines and the CTR trainer."""

from mercato.ctr.base import CTRModel
from mercato.ctr.embedding import FieldEmbedding
from mercato.ctr.schema import CTRTensors, FeatureSchema, FieldSpec

__all__ = ["CTRModel", "CTRTensors", "FeatureSchema", "FieldEmbedding", "FieldSpec"]

"""Tabular CTR substrate: feature schema, embeddings, blocks, baselines and the CTR trainer."""

from mercato.ctr.attention import MultiHeadSelfAttention
from mercato.ctr.autoint import AutoInt, AutoIntConfig
from mercato.ctr.base import CTRModel
from mercato.ctr.baselines import FM, LR, DCNv2, DCNv2Config, DeepFM, DeepFMConfig, FMConfig, LRConfig
from mercato.ctr.blocks import MLP, CrossNetV2, fm_interaction
from mercato.ctr.embedding import FieldEmbedding
from mercato.ctr.schema import CTRTensors, FeatureSchema, FieldSpec
from mercato.ctr.trainer import CTRTrainer, NonFiniteLossError, TrainerConfig, TrainResult
from mercato.ctr.transformer import TransformerCTR, TransformerCTRConfig

__all__ = [
    "FM",
    "LR",
    "MLP",
    "AutoInt",
    "AutoIntConfig",
    "CTRModel",
    "CTRTensors",
    "CTRTrainer",
    "CrossNetV2",
    "DCNv2",
    "DCNv2Config",
    "DeepFM",
    "DeepFMConfig",
    "FMConfig",
    "FeatureSchema",
    "FieldEmbedding",
    "FieldSpec",
    "LRConfig",
    "MultiHeadSelfAttention",
    "NonFiniteLossError",
    "TrainResult",
    "TrainerConfig",
    "TransformerCTR",
    "TransformerCTRConfig",
    "fm_interaction",
]

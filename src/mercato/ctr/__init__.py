"""Tabular CTR substrate: feature schema, embeddings, blocks, baselines and the CTR trainer."""

from mercato.ctr.attention import MultiHeadSelfAttention
from mercato.ctr.autoint import AutoInt, AutoIntConfig
from mercato.ctr.base import CTRModel, Outputs, SplitCTRModel, label_key, weighted_bce
from mercato.ctr.baselines import FM, LR, DCNv2, DCNv2Config, DeepFM, DeepFMConfig, FMConfig, LRConfig
from mercato.ctr.blocks import MLP, CrossNetV2, fm_interaction
from mercato.ctr.embedding import FieldEmbedding
from mercato.ctr.evaluation import METRICS, MetricFn
from mercato.ctr.losses import pcgrad, pcgrad_backward
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
    "METRICS",
    "MetricFn",
    "MultiHeadSelfAttention",
    "NonFiniteLossError",
    "Outputs",
    "SplitCTRModel",
    "TrainResult",
    "TrainerConfig",
    "TransformerCTR",
    "TransformerCTRConfig",
    "fm_interaction",
    "label_key",
    "pcgrad",
    "pcgrad_backward",
    "weighted_bce",
]

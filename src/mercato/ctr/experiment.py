"""CTR experiments as data: a data spec, a run config, and the run function the experiment runner calls.

Benchmarks (``benchmarks/ctr_baselines.py``, ``benchmarks/fat.py``) and the CLIs share these pieces, so a
benchmark script only declares runs (:class:`mercato.core.experiments.Run`) and renders tables::

    spec = CTRDataSpec("synthetic", synthetic={"n_samples": 20_000, "num_fields": 6})
    cfg = CTRRunConfig("dcnv2", {"embed_dim": 16}, {"epochs": 2, "lr": 1e-3}, seed=0)
    out = train_run(cfg, spec)   # {"test": {...}, "valid": {...}, "train_seconds": ..., "params": ...}

The data spec is part of every cached run's key: a run trained on 12,000 synthetic rows is never served for a
run asking for 200,000.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np
import torch

from mercato.core.config import config_from_dict
from mercato.core.experiments import spec_dict
from mercato.core.seed import seed_everything
from mercato.ctr.autoint import AutoInt, AutoIntConfig
from mercato.ctr.base import CTRModel
from mercato.ctr.baselines import FM, LR, DCNv2, DCNv2Config, DeepFM, DeepFMConfig, FMConfig, LRConfig
from mercato.ctr.schema import CTRTensors, FeatureSchema
from mercato.ctr.trainer import CTRTrainer, TrainerConfig
from mercato.ctr.transformer import TransformerCTR, TransformerCTRConfig
from mercato.data import CTRSplits, DataError, ctr_from_table, movielens_ctr
from mercato.data.synthetic import field_interaction_data

__all__ = [
    "CTR_MODELS",
    "CTRDataSpec",
    "CTRRunConfig",
    "EncodedData",
    "build_model",
    "encode_data",
    "load_encoded",
    "load_splits",
    "train_model",
    "train_run",
]

#: Every CTR model of :mod:`mercato.ctr`: name -> (model class, config class).
CTR_MODELS: dict[str, tuple[type[CTRModel], type]] = {
    "lr": (LR, LRConfig),
    "fm": (FM, FMConfig),
    "deepfm": (DeepFM, DeepFMConfig),
    "dcnv2": (DCNv2, DCNv2Config),
    "autoint": (AutoInt, AutoIntConfig),
    "transformer": (TransformerCTR, TransformerCTRConfig),
}
BUILTIN_DATA: dict[str, Literal["1m", "100k"]] = {"ml-1m": "1m", "ml-100k": "100k"}


@dataclasses.dataclass(frozen=True)
class CTRDataSpec:
    """Which data a run trains on: everything that changes the rows enters the cache key."""

    source: str = "synthetic"  # synthetic | ml-1m | ml-100k | a CSV/TSV/Parquet path
    synthetic: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # field_interaction_data kwargs
    train_rows: int | None = None  # a seeded random subset of the training rows (valid/test complete)
    train_head: int | None = None  # the first rows of the training split (after train_rows)
    split_seed: int = 0  # seed of the split (and of the synthetic data)
    categorical: tuple[str, ...] = ()  # file data: categorical columns
    numeric: tuple[str, ...] = ()  # file data: numeric columns
    multihot: tuple[str, ...] = ()  # file data: '|'-token columns
    label: str = "label"  # file data: the 0/1 label column
    user: str = "user_id"  # file data: the user id column (GAUC)
    time: str | None = None  # file data: timestamp column (per-user time split)


@dataclasses.dataclass(frozen=True)
class CTRRunConfig:
    """One training run: a model of a registry, its config overrides, the trainer's and a seed."""

    model: str
    model_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    trainer: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # TrainerConfig keys
    seed: int = 0


@dataclasses.dataclass
class EncodedData:
    """A data set encoded for training, with its Bayes ceiling when it is synthetic."""

    name: str
    schema: FeatureSchema
    train: CTRTensors
    valid: CTRTensors
    test: CTRTensors
    bayes_auc: float | None = None
    bayes_logloss: float | None = None
    strengths: np.ndarray | None = None  # synthetic: the true (F, F) pair strengths


def load_splits(spec: CTRDataSpec) -> tuple[CTRSplits, dict[str, Any]]:
    """The raw splits of ``spec`` (before ``train_rows``/``train_head``) and, for synthetic data, its extras."""
    if spec.source == "synthetic":
        syn = field_interaction_data(**dict(spec.synthetic), seed=spec.split_seed)
        extra = {"bayes_auc": syn.bayes_auc, "bayes_logloss": syn.bayes_logloss, "strengths": syn.strengths}
        return syn.splits, extra
    if spec.source in BUILTIN_DATA:
        return movielens_ctr(BUILTIN_DATA[spec.source], seed=spec.split_seed), {}
    if not (spec.categorical or spec.numeric or spec.multihot):
        raise DataError(
            f"{spec.source}: a data file needs its feature columns: --categorical a,b [--numeric c]"
        )
    splits = ctr_from_table(
        spec.source,
        categorical=list(spec.categorical),
        numeric=list(spec.numeric),
        multihot=list(spec.multihot),
        label=spec.label,
        user=spec.user,
        time=spec.time,
        seed=spec.split_seed,
    )
    return splits, {}


def encode_data(splits: CTRSplits, extra: Mapping[str, Any] | None = None) -> EncodedData:
    """Fit the schema on train and encode the three splits."""
    schema = FeatureSchema.fit(splits)
    try:
        enc = [schema.encode(getattr(splits, s)) for s in ("train", "valid", "test")]
    except (KeyError, ValueError) as err:
        raise DataError(f"{splits.name}: cannot encode the data: {err}") from err
    return EncodedData(splits.name, schema, enc[0], enc[1], enc[2], **dict(extra or {}))


_ENCODED: dict[str, EncodedData] = {}  # per process: a worker loads each data spec once


def load_encoded(spec: CTRDataSpec) -> EncodedData:
    """Load, subset and encode the data of ``spec`` (memoised per process on the spec's content)."""
    key = str(joblib.hash(spec_dict(spec)))
    if key not in _ENCODED:
        splits, extra = load_splits(spec)
        if spec.train_rows is not None:
            n = min(spec.train_rows, len(splits.train))
            train = splits.train.sample(n=n, random_state=0).reset_index(drop=True)
            splits = dataclasses.replace(
                splits, train=train, name=f"{splits.name}-{spec.train_rows // 1000}k-train"
            )
        data = encode_data(splits, extra)
        if spec.train_head is not None:
            h, t = spec.train_head, data.train
            head = t.subset(slice(0, h))  # keeps every label column and the weights
            data = dataclasses.replace(data, train=head)
        _ENCODED.clear()  # keep one data set in memory
        _ENCODED[key] = data
    return _ENCODED[key]


def build_model(
    name: str,
    schema: FeatureSchema,
    overrides: Mapping[str, Any] | None = None,
    registry: Mapping[str, tuple[type[CTRModel], type]] = CTR_MODELS,
) -> CTRModel:
    """Instantiate model ``name`` of ``registry`` with config ``overrides`` (unknown keys raise ConfigError)."""
    if name not in registry:
        raise ValueError(f"unknown model '{name}'; valid models: {', '.join(registry)}")
    cls, cfg_cls = registry[name]
    return cls(schema, config_from_dict(cfg_cls, dict(overrides or {}), source=name))  # type: ignore[call-arg]


def train_model(
    model: CTRModel,
    data: EncodedData,
    trainer_cfg: TrainerConfig,
    output_dir: str | Path | None = None,
    resume: bool = False,
) -> dict[str, Any]:
    """Train with :class:`CTRTrainer` and return test/valid metrics, timings and the parameter count."""
    torch.manual_seed(trainer_cfg.seed)
    trainer = CTRTrainer(model, trainer_cfg, data.train, data.valid, output_dir=output_dir)
    start = time.perf_counter()
    result = trainer.fit(resume=resume)
    seconds = time.perf_counter() - start
    test = trainer.evaluate(data.test)
    return {
        "test": test,
        "valid": result.best_valid,
        "train_seconds": seconds,
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch,
        "params": sum(p.numel() for p in model.parameters()),
    }


def train_run(
    config: CTRRunConfig,
    data: CTRDataSpec,
    registry: Mapping[str, tuple[type[CTRModel], type]] = CTR_MODELS,
    after: Callable[[CTRModel, EncodedData], Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """One cached benchmark run: seed, build, train (CPU, no progress bar), evaluate on test."""
    encoded = load_encoded(data)
    seed_everything(config.seed)
    model = build_model(config.model, encoded.schema, config.model_config, registry)
    trainer_cfg = TrainerConfig(
        **{**dict(config.trainer), "seed": config.seed, "progress": False, "device": "cpu"}
    )
    out = train_model(model, encoded, trainer_cfg)
    out["train_rows"] = len(encoded.train)
    out["data_name"] = encoded.name
    if after is not None:
        out.update(after(model, encoded))
    return out

"""Train an AIF pre-ranker (or a baseline) with the CTR trainer, measure its approximations, export it for serving.

:func:`model_run` is one benchmark run (and what ``mercato aif train`` calls): build the data (MovieLens with
behaviour sequences, or the synthetic long-sequence set), train with :class:`mercato.ctr.CTRTrainer`, report
test AUC/GAUC and, for an approximation, the same weights scored by its exact twin (AUC, GAUC, Pearson
correlation of the scores). ``export`` writes a serving folder (:func:`mercato.aif.served.export_serving`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["HistoryDataSpec", "LongDataSpec", "ModelRunConfig", "build_data", "model_run"]

MODELS = ("two-tower", "aif-exact", "aif-bea", "aif-lsh", "aif-lsh-exact", "aif-short")


@dataclass
class ModelRunConfig:
    """One pre-ranker trained by the CTR trainer."""

    model: str = (
        "aif-bea"  # two-tower | aif-exact | aif-bea | aif-lsh (long field, SimHash) | aif-short (none)
    )
    model_dim: int = 32  # d̂
    tower_width: int = 0  # hidden width of the user FFN and item MLP (0: 2 d̂)
    num_bridges: int = 8  # B
    lsh_groups: int = 8  # H
    lsh_bits: int = 3  # tau
    epochs: int = 1
    batch_size: int = 4096
    lr: float = 2e-3
    seed: int = 0
    threads: int = 0  # torch threads (0: leave as is)
    export: str = ""  # serving folder to write ("": none)

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")


@dataclass
class HistoryDataSpec:
    """MovieLens CTR rows with a ``history`` field of up to ``max_len`` earlier items."""

    variant: str = "1m"
    max_len: int = 20
    max_users: int = 0  # > 0: a random subset of this many users (all their ratings)
    user_seed: int = 0  # seed of that subset


@dataclass
class LongDataSpec:
    """The synthetic long-sequence set (:func:`mercato.aif.data.long_sequence_ctr`)."""

    num_users: int = 400
    num_items: int = 500
    length: int = 1000
    recent: int = 20
    rows_per_user: int = 40
    seed: int = 0


def build_data(data: HistoryDataSpec | LongDataSpec) -> tuple[Any, Any, dict[str, Any]]:
    """(splits, fitted schema, AIFConfig field overrides) for a data spec."""
    from mercato.aif.data import long_sequence_ctr, movielens_history_splits
    from mercato.ctr import FeatureSchema

    if isinstance(data, LongDataSpec):
        splits = long_sequence_ctr(
            data.num_users, data.num_items, data.length, data.recent, data.rows_per_user, seed=data.seed
        )
        schema = FeatureSchema.fit(splits, max_tokens=data.length)
        next(f for f in schema.fields if f.name == "recent").max_tokens = data.recent  # short field: short
        fields = {
            "user_fields": ("user_id",),
            "item_fields": ("item_id", "cat"),
            "sequence_field": "recent",
            "long_field": "history",
        }
        return splits, schema, fields
    splits = movielens_history_splits(data.variant, data.max_len, data.max_users, data.user_seed)  # type: ignore[arg-type]
    return splits, FeatureSchema.fit(splits, max_tokens=data.max_len), {}


def model_run(cfg: ModelRunConfig, data: HistoryDataSpec | LongDataSpec) -> dict[str, Any]:
    """Train, then test AUC/GAUC; for BEA / LSH also the same weights with the exact twin (gap, correlation)."""
    from mercato.aif.model import AIFConfig, AIFModel, TwoTowerModel
    from mercato.aif.served import ServedAIF, build_catalog, export_serving
    from mercato.core.metrics import auc, gauc
    from mercato.ctr import CTRTrainer, TrainerConfig

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.model in ("aif-lsh", "aif-lsh-exact", "aif-short") and not isinstance(data, LongDataSpec):
        raise ValueError(f"model {cfg.model} needs the synthetic long-sequence data (LongDataSpec)")
    splits, schema, fields = build_data(data)
    if cfg.model not in ("aif-lsh", "aif-lsh-exact") and fields:
        fields = {**fields, "long_field": ""}  # every other model ignores the long field
    train, valid, test = (schema.encode(x) for x in (splits.train, splits.valid, splits.test))
    torch.manual_seed(cfg.seed)
    mcfg = AIFConfig(
        model_dim=cfg.model_dim,
        tower_width=cfg.tower_width,
        num_bridges=cfg.num_bridges,
        lsh_groups=cfg.lsh_groups,
        lsh_bits=cfg.lsh_bits,
        attention="bea" if cfg.model == "aif-bea" else "exact",
        long_interest="exact" if cfg.model == "aif-lsh-exact" else "lsh",
        **fields,
    )
    model: Any = TwoTowerModel(schema, mcfg) if cfg.model == "two-tower" else AIFModel(schema, mcfg)
    tcfg = TrainerConfig(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, patience=1, seed=cfg.seed, progress=False
    )
    t0 = time.perf_counter()
    trainer = CTRTrainer(model, tcfg, train, valid)
    trainer.fit()
    out: dict[str, Any] = {"train_seconds": time.perf_counter() - t0, **trainer.evaluate(test)}
    out["params"] = int(sum(p.numel() for p in model.parameters()))
    out["train_rows"], out["test_rows"] = len(train), len(test)
    if isinstance(model, AIFModel):
        out["tower_params"] = model.tower_parameters()
    twin = {  # (config key, trained with, the other one): the same weights scored both ways
        "aif-bea": ("attention", "bea", "exact"),
        "aif-lsh": ("long_interest", "lsh", "exact"),
        "aif-lsh-exact": ("long_interest", "exact", "lsh"),
    }
    if cfg.model in twin:
        key, trained, other = twin[cfg.model]
        p_approx = trainer.predict(test)
        setattr(model.config, key, other)
        p_exact = trainer.predict(test)  # the twin's scores (for aif-lsh-exact: the LSH approximation's)
        setattr(model.config, key, trained)
        y = test.batch(slice(None))["label"].numpy()
        users = splits.test[splits.user].to_numpy()
        out["twin_auc"] = auc(y, p_exact)
        out["twin_gauc"] = gauc(y, p_exact, groups=users)
        out["score_pearson"] = float(np.corrcoef(p_approx, p_exact)[0, 1])
        logit = lambda p: np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))  # noqa: E731
        out["logit_mean_abs_diff"] = float(np.abs(logit(p_approx) - logit(p_exact)).mean())
    if cfg.export and isinstance(model, AIFModel):
        model.eval()
        catalog = build_catalog(schema, [splits.train, splits.valid, splits.test], mcfg)
        export_serving(cfg.export, model.cpu(), schema, catalog)
        out["export"] = cfg.export
        out["model_version"] = ServedAIF(model).version
        out["catalog"] = {"users": catalog.num_users, "items": catalog.num_items}
    return out

"""The MAL tuning round's run function: train as ``mercato.mal.bench.fit_mal`` does, score the validation day.

``fit_mal_validation(config, data)`` trains on days 0..18 with day 19 as the trainer's validation split, exactly
like the benchmark's test runs, and reports AUC, GAUC, logloss and PCOC of the primary view on day 19 (through
the PTP-only serving path). The test day is never read, so settings chosen from these numbers are not tuned on
the test day. (A module of its own so that the benchmark's cached test runs, keyed on ``mercato.mal.bench``,
stay valid while the tuning round is added.)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import torch

from mercato.ctr.trainer import CTRTrainer
from mercato.mal.bench import MALRunConfig
from mercato.mal.mac import load_mac, load_vocabs
from mercato.mal.model import MAL, MACSchema, mac_to_tensors, preset
from mercato.mal.scoring import score_primary
from mercato.mal.sim import SimSpec, ensure_mac

__all__ = ["fit_mal_validation"]


def fit_mal_validation(config: MALRunConfig, data: SimSpec) -> dict[str, Any]:
    """Train one model on days 0..18; metrics of the primary view on validation day 19."""
    root = ensure_mac(data)
    schema = MACSchema.from_vocabs(load_vocabs(root))
    train_all = load_mac(root, "train")
    last_day = int(train_all.day.max())
    train = mac_to_tensors(train_all.subset(train_all.day < last_day), config.primary)
    valid = mac_to_tensors(train_all.subset(train_all.day == last_day), config.primary)
    torch.manual_seed(config.seed)
    model = MAL(schema, preset(config.model, primary=config.primary, **dict(config.overrides)))
    t0 = time.perf_counter()
    CTRTrainer(model, dataclasses.replace(config.trainer, seed=config.seed), train, valid).fit()
    wall = time.perf_counter() - t0
    scores = score_primary(model, valid)
    return {**scores, "valid_day": last_day, "valid_clicks": scores["rows"], "train_wall_s": wall}

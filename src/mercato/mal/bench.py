"""Run functions of ``benchmarks/mal.py`` for mercato's models (PyMAL's are in ``mercato.mal.pymal``).

``fit_mal(config, data)`` trains one model of the MAL family with ``mercato.ctr.CTRTrainer`` on a simulated
MAC folder (``mercato.mal.sim.ensure_mac``): training days 0..18, validation day 19 (early stopping and best
epoch), test day 20, scored through the PTP-only serving path on the binarised primary label.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from mercato.core.experiments import best_of
from mercato.ctr.trainer import CTRTrainer, TrainerConfig
from mercato.mal.mac import load_mac, load_vocabs
from mercato.mal.model import MAL, MACSchema, mac_to_tensors, preset
from mercato.mal.scoring import score_primary
from mercato.mal.sim import SimSpec, ensure_mac

__all__ = ["MALRunConfig", "fit_mal"]


@dataclass(frozen=True)
class MALRunConfig:
    """One mercato run: a named model (``mercato.mal.model.PRESETS``), its primary view, training settings."""

    model: str = "MAL"  # preset name
    primary: str = "last"  # primary attribution view
    seed: int = 0  # model seed (init, shuffle)
    overrides: tuple[tuple[str, Any], ...] = ()  # MALConfig field overrides, e.g. (("lam", 0.3),)
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            epochs=3, batch_size=1024, lr=3e-3, patience=1, monitor="gauc", num_threads=2, progress=False
        )
    )
    latency: bool = False  # also time the serving path vs the full forward at batch 1 and 1,000


def fit_mal(config: MALRunConfig, data: SimSpec) -> dict[str, Any]:
    """Train, then score the test day: AUC, GAUC, logloss, PCOC of the primary view; clicks/s; latency."""
    root = ensure_mac(data)
    schema = MACSchema.from_vocabs(load_vocabs(root))
    train_all = load_mac(root, "train")
    last_day = int(train_all.day.max())
    test = mac_to_tensors(load_mac(root, "test"), config.primary)
    train = mac_to_tensors(train_all.subset(train_all.day < last_day), config.primary)
    valid = mac_to_tensors(train_all.subset(train_all.day == last_day), config.primary)
    torch.manual_seed(config.seed)
    cfg = preset(config.model, primary=config.primary, **dict(config.overrides))
    model = MAL(schema, cfg)
    tcfg = dataclasses.replace(config.trainer, seed=config.seed)
    t0 = time.perf_counter()
    result = CTRTrainer(model, tcfg, train, valid).fit()
    wall = time.perf_counter() - t0
    scores = score_primary(model, test)
    out: dict[str, Any] = {
        **{k: scores[k] for k in ("auc", "gauc", "logloss", "pcoc")},
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "train_clicks": len(train),
        "test_clicks": len(test),
        "train_wall_s": wall,
        "clicks_per_s": len(train) * result.epochs_run / wall,
        "params": sum(q.numel() for q in model.parameters()),
    }
    if config.latency:
        model.eval()
        for n in (1, 1000):
            batch = test.batch(slice(0, n))

            def full(b: dict[str, torch.Tensor] = batch) -> None:
                with torch.no_grad():
                    model(b)

            def serve(b: dict[str, torch.Tensor] = batch) -> None:
                model.serve(b)

            out[f"latency_full_ms_b{n}"] = 1e3 * best_of(full, repeats=20)
            out[f"latency_serve_ms_b{n}"] = 1e3 * best_of(serve, repeats=20)
    return out

"""The tuning round's run function scores validation day 19 and never reads the test day."""

from __future__ import annotations

import dataclasses

import numpy as np

import mercato.mal.tuning as tuning
from mercato.mal.bench import MALRunConfig
from mercato.mal.mac import load_mac
from mercato.mal.sim import SimSpec, ensure_mac


def test_validation_run_scores_day_19_without_the_test_day(tmp_path, monkeypatch):
    monkeypatch.setenv("MERCATO_MAL_DATA", str(tmp_path))
    spec = SimSpec(setting="short", n_clicks=6000, seed=0)
    root = ensure_mac(spec)
    splits: list[str] = []

    def spy(path, split, *a, **k):  # type: ignore[no-untyped-def]
        splits.append(split)
        return load_mac(path, split, *a, **k)

    monkeypatch.setattr(tuning, "load_mac", spy)
    cfg = MALRunConfig(model="Base", seed=0)
    cfg = dataclasses.replace(cfg, trainer=dataclasses.replace(cfg.trainer, epochs=1, num_threads=1))
    out = tuning.fit_mal_validation(cfg, spec)
    assert splits == ["train"]
    train = load_mac(root, "train")
    assert out["valid_day"] == int(train.day.max()) == 19
    assert out["valid_clicks"] == int((train.day == 19).sum())
    assert 0.0 <= out["gauc"] <= 1.0 and np.isfinite(out["pcoc"])

"""CTR runs through the experiment runner: the data spec is part of the cache key (the stale-cache bug)."""

from __future__ import annotations

from pathlib import Path

from mercato.core.experiments import Experiment, Run
from mercato.ctr.experiment import CTR_MODELS, CTRDataSpec, CTRRunConfig, load_encoded, train_run


def _exp(tmp_path: Path) -> Experiment:
    return Experiment("ctr-test", code=("mercato.ctr",), root=tmp_path, repo=tmp_path, show_progress=False)


def _spec(rows: int) -> CTRDataSpec:
    return CTRDataSpec(
        "synthetic", synthetic={"n_samples": rows, "num_fields": 3, "num_pairs": 2, "cardinality": 8}
    )


def test_more_synthetic_rows_invalidate_the_cached_run(tmp_path: Path) -> None:
    cfg = CTRRunConfig("lr", {}, {"epochs": 1, "batch_size": 256}, seed=0)
    first = _exp(tmp_path).run([Run("lr/s0", train_run, cfg, _spec(800))])["lr/s0"]
    again = _exp(tmp_path)
    assert again.run([Run("lr/s0", train_run, cfg, _spec(800))])["lr/s0"] == first and again.computed == []
    changed = _exp(tmp_path)
    out = changed.run([Run("lr/s0", train_run, cfg, _spec(1600))])["lr/s0"]
    assert changed.computed == ["lr/s0"]  # the old 800-row result is not served for a 1,600-row spec
    assert out["train_rows"] == 2 * first["train_rows"]


def test_train_rows_and_head_subset_the_training_split_only() -> None:
    full = load_encoded(_spec(1000))
    sub = load_encoded(CTRDataSpec("synthetic", synthetic=_spec(1000).synthetic, train_rows=300))
    head = load_encoded(CTRDataSpec("synthetic", synthetic=_spec(1000).synthetic, train_head=100))
    assert len(sub.train) == 300 and len(head.train) == 100
    assert len(sub.test) == len(full.test) == len(head.test)
    assert (head.train.label == full.train.label[:100]).all()


def test_every_ctr_model_is_in_the_registry() -> None:
    assert {"lr", "fm", "deepfm", "dcnv2", "autoint", "transformer"} <= set(CTR_MODELS)

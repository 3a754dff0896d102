"""The data-scaled package defaults resolve as documented (config field comments, docs/isadre.md)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from mercato.isadre import ISADRE, ClassifierDRE, ClassifierDREConfig, ISADREConfig, TimeScoreDRE, TrainConfig
from mercato.isadre.cli import load_fitted, main
from mercato.isadre.config import (
    TimeScoreDREConfig,
    classifier_batch,
    default_width,
    resolve_classifier,
    resolve_train,
)

os.environ.setdefault("MERCATO_NO_PROGRESS", "1")


@pytest.mark.parametrize(("d", "width"), [(1, 128), (2, 128), (127, 128), (128, 128), (129, 256), (160, 256)])
def test_default_width_is_the_next_power_of_two_at_least_128(d: int, width: int) -> None:
    assert default_width(d) == width
    assert default_width(d) >= d


@pytest.mark.parametrize(
    ("n_total", "batch"),
    [(10, 256), (4_000, 256), (40_000, 256), (51_200, 256), (51_201, 512), (400_000, 2048)],
)
def test_classifier_batch_keeps_an_epoch_near_200_steps(n_total: int, batch: int) -> None:
    assert classifier_batch(n_total) == batch
    assert -(-n_total // batch) <= 200


def test_bad_dimension_refused() -> None:
    with pytest.raises(ValueError, match="dim must be >= 1"):
        default_width(0)
    with pytest.raises(ValueError, match="n_total must be >= 1"):
        classifier_batch(0)


def test_resolve_train_fills_only_the_data_scaled_fields() -> None:
    r = resolve_train(TrainConfig(), 160)
    assert (r.hidden, r.quadratic_rank) == (256, 160)
    assert dataclasses.replace(r, hidden=None, quadratic_rank=None) == TrainConfig()
    kept = resolve_train(TrainConfig(hidden=32, quadratic_rank=0), 160)
    assert (kept.hidden, kept.quadratic_rank) == (32, 0)


def test_resolve_classifier_fills_width_and_batch() -> None:
    r = resolve_classifier(ClassifierDREConfig(), 10, 400_000)
    assert (r.hidden, r.batch_size) == (
        256,
        2048,
    )  # the classifier's width floor is 256 (chosen on the suite)
    assert resolve_classifier(ClassifierDREConfig(), 300, 1000).hidden == 512
    kept = resolve_classifier(ClassifierDREConfig(hidden=8, batch_size=64), 300, 400_000)
    assert (kept.hidden, kept.batch_size) == (8, 64)


def _data(d: int, n: int = 300) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(0.5, 1.0, (n, d)), rng.normal(0.0, 1.5, (n, d))


@pytest.mark.parametrize("cls", [ISADRE, TimeScoreDRE])
def test_fit_builds_the_resolved_network(cls: type) -> None:
    X_p, X_q = _data(3)
    cfg_cls = ISADREConfig if cls is ISADRE else TimeScoreDREConfig
    est = cls(cfg_cls(train=TrainConfig(n_iters=2, batch_size=16))).fit(X_p, X_q)
    assert (est.train_config_.hidden, est.train_config_.quadratic_rank) == (128, 3)
    assert est.network_.quad_proj.weight.shape == (3, 3)  # K = d directions p_k
    assert est.network_.inp.out_features == 128 and len(est.network_.blocks) == 3
    assert est.config.train.hidden is None  # the user's config is left as given (scikit-learn convention)


def test_classifier_fit_records_the_resolved_config() -> None:
    X_p, X_q = _data(3)
    est = ClassifierDRE(ClassifierDREConfig(max_iter=1)).fit(X_p, X_q)
    assert (est.resolved_config_.hidden, est.resolved_config_.batch_size) == (256, 256)
    assert est.config.hidden is None


def test_cli_run_reloads_the_data_scaled_network(tmp_path) -> None:
    run = tmp_path / "run"
    args = ["fit", "--toy", "ring", "--n", "200", "--train.n_iters", "2", "--output-dir", str(run)]
    assert main(args) == 0
    est = load_fitted(run)
    assert est.network_.quad_proj.weight.shape == (2, 2)
    assert est.network_.inp.out_features == 128


def test_package_defaults_are_the_rules_the_suite_chose() -> None:
    """Pinned to the validation round's winners (docs/isadre.md, block isadre-suite-validation)."""
    from mercato.isadre.config import PathConfig
    from mercato.isadre.suite import CLASSIFIER_RULES, PATH_RULES

    rule = PATH_RULES["inv_var_t, eps 0.001, quadratic K = d"]
    train, path = TrainConfig(), PathConfig()
    for key, value in rule.items():
        got = getattr(path, key[5:]) if key.startswith("path.") else getattr(train, key)
        assert got == value, key
    clf = CLASSIFIER_RULES["width 256, patience 10"]
    r = resolve_classifier(ClassifierDREConfig(), 10, 40_000)
    assert (r.hidden, r.patience, r.batch_size) == (clf["hidden"], clf["patience"], 256)

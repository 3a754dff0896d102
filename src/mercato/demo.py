"""``mercato demo``: a short end-to-end run of each system on the embedded default data.

The demo is a list of steps, ``DEMO_STEPS``: each is ``(name, function)`` where ``function(quick)`` runs one
system and returns rows for the final table (dicts with at least ``system``, ``model``, ``data``). A new
system appends its own step; ``--steps a,b`` runs a subset and ``--quick`` a tiny version (used by tests).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch

from mercato.core.cli import fail, print_table, setup_logging

__all__ = ["DEMO_STEPS", "main"]

log = logging.getLogger(__name__)

Row = dict[str, Any]


def _train_and_score(
    system: str, model_name: str, data_name: str, model: Any, cfg: Any, train: Any, valid: Any, test: Any
) -> Row:
    """Fit one CTR model with the shared trainer and return its demo row (test metrics, epochs, seconds)."""
    from mercato.ctr import CTRTrainer

    t1 = time.time()
    trainer = CTRTrainer(model, cfg, train, valid)
    result = trainer.fit()
    metrics = trainer.evaluate(test)
    return {
        "system": system,
        "model": model_name,
        "data": data_name,
        "auc": metrics["auc"],
        "gauc": metrics["gauc"],
        "logloss": metrics["logloss"],
        "epochs": result.epochs_run,
        "seconds": int(time.time() - t1),
    }


def _ctr_demo(quick: bool) -> list[Row]:
    """DeepFM and LR on MovieLens CTR (1M; the quick version: 2,000 rows of 100K, one small epoch)."""
    from mercato.ctr import LR, DeepFM, DeepFMConfig, FeatureSchema, TrainerConfig
    from mercato.data import movielens_ctr

    variant: Literal["100k", "1m"] = "100k" if quick else "1m"
    t0 = time.time()
    splits = movielens_ctr(variant)
    if quick:
        splits.train = splits.train.sample(n=2000, random_state=0)
        splits.valid, splits.test = splits.valid.iloc[:1000], splits.test.iloc[:1000]
    schema = FeatureSchema.fit(splits)
    train, valid, test = (schema.encode(getattr(splits, s)) for s in ("train", "valid", "test"))
    log.info(
        "MovieLens-%s CTR loaded in %.1fs (%d train rows)", variant.upper(), time.time() - t0, len(train)
    )
    epochs = 1 if quick else 2
    tower = (32,) if quick else (256, 256)
    rows: list[Row] = []
    for name, build in (
        ("DeepFM", lambda: DeepFM(schema, DeepFMConfig(embed_dim=16, hidden_units=tower))),
        ("LR", lambda: LR(schema)),
    ):
        torch.manual_seed(0)
        cfg = TrainerConfig(epochs=epochs, batch_size=4096, lr=1e-3, patience=1, seed=0)
        rows.append(_train_and_score("ctr", name, f"ml-{variant} test", build(), cfg, train, valid, test))
    return rows


def _fat_demo(quick: bool) -> list[Row]:
    """FAT vs DeepFM on the synthetic field-interaction benchmark, with its Bayes-optimal AUC as the ceiling."""
    from mercato.ctr import DeepFM, DeepFMConfig, FeatureSchema, TrainerConfig
    from mercato.data import field_interaction_data
    from mercato.fat import FATConfig, FieldAwareTransformer

    data = field_interaction_data(
        num_fields=8, cardinality=200, n_samples=4_000 if quick else 60_000, num_pairs=6, seed=0
    )
    splits = data.splits
    schema = FeatureSchema.fit(splits)
    train, valid, test = (schema.encode(getattr(splits, s)) for s in ("train", "valid", "test"))
    name = f"synthetic F=8 ({len(train)} train rows)"
    rows: list[Row] = [{"system": "fat", "model": "Bayes-optimal", "data": name, "auc": data.bayes_auc}]
    rows[0]["logloss"] = data.bayes_logloss
    for model_name, build in (
        ("FAT", lambda: FieldAwareTransformer(schema, FATConfig(embed_dim=16, num_bases=8, top_k=2))),
        ("DeepFM", lambda: DeepFM(schema, DeepFMConfig(embed_dim=16, hidden_units=(64, 64)))),
    ):
        torch.manual_seed(0)
        cfg = TrainerConfig(epochs=1 if quick else 3, batch_size=1024, lr=2e-3, patience=1, seed=0)
        rows.append(_train_and_score("fat", model_name, name, build(), cfg, train, valid, test))
    return rows


def _reczero_demo(quick: bool) -> list[Row]:
    """Rating baselines on MovieLens-100K (last rating of 300 users) and the packaged SmolLM2 zero-shot."""
    from mercato.llm.loading import load_policy
    from mercato.reczero import RecZeroConfig, build_data, evaluate_policy
    from mercato.reczero.trainer import score_baselines

    cfg = RecZeroConfig()
    data = build_data(cfg.data)
    rows: list[Row] = [
        {
            "system": "reczero",
            "model": r["name"],
            "data": f"ml-100k, {r['n']} users",
            "mae": r["mae"],
            "rmse": r["rmse"],
        }
        for r in score_baselines(cfg, data, "test")
    ]
    if quick:
        return rows
    t1 = time.time()
    examples = data.test[:8]
    cfg.eval.max_new_tokens = 64
    res, _ = evaluate_policy("zero-shot", load_policy("smollm2"), examples, cfg, data.global_mean)
    rows.append(
        {
            "system": "reczero",
            "model": "SmolLM2 zero-shot",
            "data": f"ml-100k, {res.n} users",
            "mae": res.mae,
            "rmse": res.rmse,
            "valid_format": res.valid_format,
            "seconds": int(time.time() - t1),
        }
    )
    return rows


def _isadre_demo(quick: bool) -> list[Row]:
    """ISA-DRE estimates the mutual information of correlated Gaussians (d = 10, true MI 2.5) with 1 and 4 steps."""
    import numpy as np

    from mercato.isadre import ISADRE, ISADREConfig, PathConfig, TrainConfig
    from mercato.isadre.toy import correlated_gaussian_pair

    t1 = time.time()
    dim = 10
    pair = correlated_gaussian_pair(dim)  # true MI = d / 4
    rng = np.random.default_rng(0)
    n = 2_000 if quick else 10_000
    X_p, X_q, X = pair.sample_p(n, rng), pair.sample_q(n, rng), pair.sample_p(2_000, rng)
    path = PathConfig(reference="gaussian", gamma=0.0, noise_eps=0.0)  # q is N(0, I) here
    train = TrainConfig(
        hidden=64, n_blocks=2, emb_dim=32, n_iters=50 if quick else 400, batch_size=1024, lr=3e-3
    )
    est = ISADRE(ISADREConfig(path=path, train=train)).fit(X_p, X_q)
    true = pair.log_ratio(X)
    rows: list[Row] = [
        {"system": "isadre", "model": "exact", "data": f"Gaussian MI, d={dim}", "mi": float(true.mean())}
    ]
    for steps in (1, 4):
        est_lr = est.log_ratio(X, steps=steps)
        rows.append(
            {
                "system": "isadre",
                "model": f"ISA-DRE {steps}-step",
                "data": f"Gaussian MI, d={dim}",
                "mi": float(est_lr.mean()),
                "nfe": steps,
                "rmse_log_ratio": float(np.sqrt(np.mean((est_lr - true) ** 2))),
                "seconds": int(time.time() - t1),
            }
        )
    return rows


DEMO_STEPS: list[tuple[str, Callable[[bool], list[Row]]]] = [
    ("ctr", _ctr_demo),
    ("fat", _fat_demo),
    ("reczero", _reczero_demo),
    ("isadre", _isadre_demo),
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mercato demo``."""
    parser = argparse.ArgumentParser(prog="mercato demo", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny version of every step (seconds)")
    parser.add_argument(
        "--steps", default=None, help=f"comma-separated subset of {[n for n, _ in DEMO_STEPS]}"
    )
    parser.add_argument(
        "--num-threads", type=int, default=1, help="torch CPU threads (1: fastest on small or busy machines)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(list(argv) if argv is not None else None)
    setup_logging(args.verbose)
    torch.set_num_threads(args.num_threads)
    names = [n for n, _ in DEMO_STEPS]
    wanted = names if args.steps is None else [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in names]
    if unknown:
        fail(f"unknown demo step(s) {unknown}; valid steps: {', '.join(names)}")
    start = time.time()
    tables: list[list[Row]] = []
    for name, step in DEMO_STEPS:
        if name in wanted:
            log.info("demo step '%s'", name)
            tables.append(step(args.quick))
    for rows in tables:  # one table per system: their metrics differ
        print()
        print_table(rows)
    print()
    print(f"demo finished in {time.time() - start:.0f}s")
    return 0

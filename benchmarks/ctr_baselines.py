"""CTR baselines on MovieLens: LR, FM, DeepFM and DCNv2 with one trainer and one tuning budget.

Full mode (the numbers in docs/results.md and docs/ctr.md): MovieLens-1M, seeds 0, 1, 2, up to ``EPOCHS``
epochs with early stopping on validation AUC (patience ``PATIENCE``), test metrics of the best epoch.
Quick mode (``make bench``): MovieLens-100K, seed 0, one epoch; it writes nothing into docs/.

Every model gets the same trainer settings (Adam, lr 1e-3, batch 4096, embedding width 16) and no other
tuning; the DNN towers of DeepFM and DCNv2 are 256-256 here (instead of the library default 400-400-400) to
keep the full run under ~25 minutes on 2 CPU cores. On a heavily shared machine ``--threads 1`` is much faster
than 2 (OpenMP threads spin-wait on busy cores).

    python benchmarks/ctr_baselines.py            # full
    python benchmarks/ctr_baselines.py --quick    # smoke test, < 60 s
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from mercato.core.cli import setup_logging
from mercato.core.results import markdown_table, mean_std, update_markdown_section
from mercato.ctr import (
    FM,
    LR,
    CTRModel,
    CTRTrainer,
    DCNv2,
    DCNv2Config,
    DeepFM,
    DeepFMConfig,
    FeatureSchema,
    FMConfig,
    LRConfig,
    TrainerConfig,
)
from mercato.data import movielens_ctr

log = logging.getLogger("ctr_baselines")
ROOT = Path(__file__).resolve().parents[1]
EPOCHS = 10
TOWER = (256, 256)
PATIENCE = 2


def build(name: str, schema: FeatureSchema) -> CTRModel:
    """The four baselines with the benchmark's settings."""
    if name == "LR":
        return LR(schema, LRConfig())
    if name == "FM":
        return FM(schema, FMConfig(embed_dim=16))
    if name == "DeepFM":
        return DeepFM(schema, DeepFMConfig(embed_dim=16, hidden_units=TOWER))
    if name == "DCNv2":
        return DCNv2(schema, DCNv2Config(embed_dim=16, hidden_units=TOWER, num_cross_layers=3))
    raise ValueError(name)


def write_split_table() -> str:
    """Row counts and click rates of the MovieLens CTR views, written into docs/ctr.md (block ``ctr_splits``)."""
    rows = []
    for variant in ("1m", "100k"):
        summary = movielens_ctr(variant).summary()
        rows.append(
            [
                f"MovieLens-{variant.upper()}",
                *(f"{int(summary[f'{split}_rows']):,}" for split in ("train", "valid", "test")),
                f"{summary['train_ctr']:.3f}",
            ]
        )
    table = markdown_table(["data set", "train rows", "valid rows", "test rows", "train CTR"], rows)
    update_markdown_section(ROOT / "docs" / "ctr.md", "ctr_splits", table, title="CTR substrate")
    return table


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and (in full mode) update the docs."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="ML-100K, 1 seed, 1 epoch; docs untouched")
    parser.add_argument("--models", default="LR,FM,DeepFM,DCNv2")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", default=None, help="JSON with all per-seed results (default /tmp)")
    parser.add_argument(
        "--splits", action="store_true", help="only regenerate the split-size table in docs/ctr.md"
    )
    args = parser.parse_args(argv)
    if args.splits:
        print(write_split_table())
        return 0
    setup_logging()
    torch.set_num_threads(args.threads)
    if args.quick:
        os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    variant, seeds, epochs = ("100k", [0], 1) if args.quick else ("1m", [0, 1, 2], EPOCHS)
    t0 = time.time()
    splits = movielens_ctr(variant)
    schema = FeatureSchema.fit(splits)
    train, valid, test = (schema.encode(getattr(splits, s)) for s in ("train", "valid", "test"))
    log.info("data ml-%s ready in %.1fs: %s", variant, time.time() - t0, splits.summary())
    models = args.models.split(",")
    runs: list[dict[str, Any]] = []
    for name in models:
        for seed in seeds:
            t1 = time.time()
            torch.manual_seed(seed)
            model = build(name, schema)
            cfg = TrainerConfig(
                epochs=epochs, batch_size=4096, lr=1e-3, patience=PATIENCE, seed=seed, eval_batch_size=65536
            )
            trainer = CTRTrainer(model, cfg, train, valid)
            result = trainer.fit()
            metrics = trainer.evaluate(test)
            runs.append(
                {
                    "model": name,
                    "seed": seed,
                    "best_epoch": result.best_epoch,
                    "seconds": time.time() - t1,
                    **metrics,
                }
            )
            log.info(
                "%s seed %d: %s (best epoch %d, %.0fs)",
                name,
                seed,
                metrics,
                result.best_epoch,
                time.time() - t1,
            )
    out = Path(args.out or f"/tmp/ctr_baselines_{'quick' if args.quick else 'full'}.json")
    out.write_text(json.dumps(runs, indent=2))
    header = ["model", "test AUC", "test GAUC", "test logloss", "best epoch", "train s/seed"]
    rows = []
    for name in models:
        rs = [r for r in runs if r["model"] == name]
        rows.append(
            [
                name,
                mean_std([r["auc"] for r in rs]),
                mean_std([r["gauc"] for r in rs]),
                mean_std([r["logloss"] for r in rs]),
                ", ".join(str(r["best_epoch"]) for r in rs),
                f"{sum(r['seconds'] for r in rs) / len(rs):.0f}",
            ]
        )
    table = markdown_table(header, rows)
    print(table)
    if not args.quick:
        body = (
            f"MovieLens-1M CTR (rating >= 4 is a click; per-user time split 80/10/10), test split, "
            f"mean ± std over seeds {seeds}. Trainer: Adam lr 1e-3, batch 4096, up to {EPOCHS} epochs, "
            f"early stopping on validation AUC (patience {PATIENCE}); embedding width 16; DNN towers "
            f"{list(TOWER)}; DCNv2 parallel with 3 full-rank cross layers. Generated by "
            f"`python benchmarks/ctr_baselines.py --threads {args.threads}` ({time.time() - t0:.0f} s wall "
            f"with {args.threads} torch thread(s) on a shared 2-core CPU machine).\n\n{table}\n"
        )
        update_markdown_section(ROOT / "docs" / "results.md", "ctr_baselines", body, title="mercato results")
        update_markdown_section(ROOT / "docs" / "ctr.md", "ctr_baselines", body, title="CTR substrate")
        write_split_table()
    log.info("total %.0fs; per-seed results in %s", time.time() - t0, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

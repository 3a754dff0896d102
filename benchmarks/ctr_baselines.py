"""CTR baselines on MovieLens: LR, FM, DeepFM and DCNv2 with one trainer and one tuning budget.

Full mode (the numbers in docs/results.md and docs/ctr.md): MovieLens-1M, seeds 0, 1, 2, up to ``EPOCHS``
epochs with early stopping on validation AUC (patience ``PATIENCE``), test metrics of the best epoch.
Quick mode (``make bench``): MovieLens-100K, seed 0, one epoch; it writes nothing into docs/.

Every model gets the same trainer settings (Adam, lr 1e-3, batch 4096, embedding width 16) and no other
tuning; the DNN towers of DeepFM and DCNv2 are 256-256 here (instead of the library default 400-400-400) to
keep the full run under ~25 minutes on 2 CPU cores. On a heavily shared machine ``--threads 1`` is much faster
than 2 (OpenMP threads spin-wait on busy cores).

    python benchmarks/ctr_baselines.py            # full (cached per model and seed under runs/bench/ctr_baselines/)
    python benchmarks/ctr_baselines.py --quick    # smoke test, < 60 s, writes under runs/bench/ctr_baselines-quick/
    python benchmarks/ctr_baselines.py --shard 0/2 & python benchmarks/ctr_baselines.py --shard 1/2   # then no --shard
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import torch

from mercato.core.cli import setup_logging
from mercato.core.experiments import Experiment, Run, add_runner_args, describe, machine_line
from mercato.core.results import markdown_table, mean_std, update_markdown_section
from mercato.core.runs import atomic_write_json
from mercato.ctr.experiment import CTRDataSpec, CTRRunConfig, train_run
from mercato.data import movielens_ctr

log = logging.getLogger("ctr_baselines")
ROOT = Path(__file__).resolve().parents[1]
CODE = ("mercato.core", "mercato.data", "mercato.ctr")
EPOCHS = 10
TOWER = [256, 256]
PATIENCE = 2
TRAINER: dict[str, Any] = {"batch_size": 4096, "lr": 1e-3, "patience": PATIENCE, "eval_batch_size": 65536}
#: display name -> (registry name, model config overrides): the four baselines with the benchmark's settings
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "LR": ("lr", {}),
    "FM": ("fm", {"embed_dim": 16}),
    "DeepFM": ("deepfm", {"embed_dim": 16, "hidden_units": TOWER}),
    "DCNv2": ("dcnv2", {"embed_dim": 16, "hidden_units": TOWER, "num_cross_layers": 3}),
}


def declare(names: list[str], seeds: list[int], epochs: int, data: CTRDataSpec) -> list[Run]:
    """One cached run per model and seed."""
    runs = []
    for name in names:
        key, overrides = MODELS[name]
        for seed in seeds:
            cfg = CTRRunConfig(key, overrides, {**TRAINER, "epochs": epochs}, seed)
            runs.append(Run(f"{name}/s{seed}", train_run, cfg, data, group=name))
    return runs


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
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", default=None, help="also write the per-seed results to this JSON file")
    parser.add_argument(
        "--splits", action="store_true", help="only regenerate the split-size table in docs/ctr.md"
    )
    add_runner_args(parser)
    args = parser.parse_args(argv)
    if args.splits:
        print(write_split_table())
        return 0
    setup_logging()
    if args.threads is None:
        args.threads = 2
    torch.set_num_threads(args.threads)
    if args.quick:
        os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    variant, seeds, epochs = ("100k", [0], 1) if args.quick else ("1m", [0, 1, 2], EPOCHS)
    models = [m for m in args.models.split(",") if m]
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        parser.error(f"unknown models {unknown}; valid: {list(MODELS)}")
    exp = Experiment.from_args("ctr_baselines", args, code=CODE, repo=ROOT)
    data = CTRDataSpec(f"ml-{variant}")
    declared = declare(models, seeds, epochs, data)
    got = exp.run(declared)
    if not exp.complete:
        log.info("shard done (%d runs computed); run without --shard to write the report", len(exp.computed))
        return 0
    runs = [
        {
            "model": r.name.split("/")[0],
            "seed": r.config.seed,
            "best_epoch": got[r.name]["best_epoch"],
            "seconds": got[r.name]["train_seconds"],
            **got[r.name]["test"],
        }
        for r in declared
    ]
    exp.write_json("results.json", runs)
    if args.out:
        atomic_write_json(args.out, runs)
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
    trainer = {**TRAINER, "epochs": epochs}
    model_text = "; ".join(f"{n}: {describe(MODELS[n][1]) or 'defaults'}" for n in models)
    body = (
        f"MovieLens-{variant.upper()} CTR (rating >= 4 is a click; per-user time split 80/10/10), test split, "
        f"mean ± std over seeds {seeds}. Trainer: Adam, {describe(trainer, ['lr', 'batch_size', 'epochs', 'patience'])}"
        f" (up to that many epochs, early stopping on validation AUC, best epoch restored); "
        f"{model_text}. Generated by "
        f"`python benchmarks/ctr_baselines.py --threads {args.threads}` ({exp.wall_seconds():.0f} s of training "
        f"summed over runs). {machine_line(exp.all_meta())}\n\n{table}\n"
    )
    exp.report(
        {"docs/results.md": {"ctr_baselines": body}, "docs/ctr.md": {"ctr_baselines": body}},
        titles={"docs/results.md": "mercato results", "docs/ctr.md": "CTR substrate"},
    )
    if exp.write_docs:
        write_split_table()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``mercato fat train|eval|bench``: train FAT, re-evaluate a run (hypernetwork and exported path), compare models.

Examples::

    mercato fat train --data ml-1m --embed-dim 32 --epochs 2 --output-dir runs/fat/ml1m
    mercato fat train --data synthetic --synthetic-rows 200000 --num-bases 8 --top-k 2
    mercato fat train --data clicks.csv --categorical user_id,item_id --multihot tags --label clicked
    mercato fat eval --run-dir runs/fat/ml1m
    mercato fat bench --data synthetic --models fat,transformer,autoint,dcnv2,deepfm --seeds 0,1,2

FAT and trainer keys share one flat namespace (``--embed-dim 32 --batch-size 2048`` or a YAML ``--config``).
A run folder holds ``config.yaml``, ``run.json``, ``schema.json``, ``checkpoint/``, ``best/``, ``export/`` (the
precomputed serving weights), ``metrics.json`` and ``modulation.png`` (the learned F x F matrix).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mercato.core.checkpoint import load_checkpoint, save_checkpoint
from mercato.core.cli import add_common_args, config_help, fail, parse_config, print_table, setup_logging
from mercato.core.config import (
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
    merge_config_classes,
)
from mercato.core.plots import save_heatmap
from mercato.core.runs import atomic_write_json, atomic_write_text, make_run_dir, write_config, write_metrics
from mercato.ctr.evaluation import RESUME_FREE_KEYS, config_differences
from mercato.ctr.experiment import (
    CTRDataSpec,
    EncodedData,
    build_model,
    encode_data,
    load_splits,
    train_model,
)
from mercato.ctr.schema import CTRTensors, FeatureSchema
from mercato.ctr.trainer import CTRTrainer, NonFiniteLossError, TrainerConfig
from mercato.data import CTRSplits, DataError
from mercato.fat.config import FATConfig
from mercato.fat.experiment import MODELS
from mercato.fat.model import FieldAwareTransformer

__all__ = ["RunConfig", "get_data", "main"]

log = logging.getLogger(__name__)

RunConfig = merge_config_classes("FATRunConfig", FATConfig, TrainerConfig)


def split_run_config(flat: Any) -> tuple[FATConfig, TrainerConfig]:
    """Split the flat run config into :class:`FATConfig` and :class:`TrainerConfig`."""
    values = config_to_dict(flat)
    names = {f.name for f in dataclasses.fields(FATConfig)}
    fat = config_from_dict(FATConfig, {k: v for k, v in values.items() if k in names})
    trainer = config_from_dict(TrainerConfig, {k: v for k, v in values.items() if k not in names})
    return fat, trainer


def get_data(spec: dict[str, Any]) -> tuple[CTRSplits, dict[str, Any]]:
    """Load ``synthetic`` (seeded by ``split_seed``), ``ml-1m``/``ml-100k`` or a user's table; also extras."""
    if spec["data"] == "synthetic":
        fields = int(spec.get("synthetic_fields", 10))
        synthetic = {
            "num_fields": fields,
            "num_pairs": min(8, fields * (fields - 1)),
            "n_samples": spec.get("synthetic_rows", 200_000),
        }
        return load_splits(
            CTRDataSpec("synthetic", synthetic=synthetic, split_seed=spec.get("split_seed", 0))
        )
    file_spec = CTRDataSpec(
        spec["data"],
        split_seed=spec.get("split_seed", 0),
        categorical=tuple(spec.get("categorical") or ()),
        numeric=tuple(spec.get("numeric") or ()),
        multihot=tuple(spec.get("multihot") or ()),
        label=spec.get("label", "label"),
        user=spec.get("user", "user_id"),
        time=spec.get("time"),
    )
    return load_splits(file_spec)


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", default="synthetic", help="synthetic | ml-1m | ml-100k | path to CSV/TSV/Parquet"
    )
    p.add_argument("--synthetic-rows", type=int, default=200_000, help="synthetic: rows generated")
    p.add_argument("--synthetic-fields", type=int, default=10, help="synthetic: number of fields F")
    p.add_argument("--categorical", default="", help="file data: comma-separated categorical columns")
    p.add_argument("--numeric", default="", help="file data: comma-separated numeric columns")
    p.add_argument("--multihot", default="", help="file data: comma-separated '|'-token columns")
    p.add_argument("--label", default="label", help="file data: the 0/1 label column")
    p.add_argument("--user", default="user_id", help="file data: the user id column (for GAUC)")
    p.add_argument("--time", default=None, help="file data: timestamp column (per-user time split)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the split (and of the synthetic data)")


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    csv = lambda s: [v.strip() for v in (s or "").split(",") if v.strip()]  # noqa: E731
    return {
        "data": args.data,
        "synthetic_rows": args.synthetic_rows,
        "synthetic_fields": args.synthetic_fields,
        "categorical": csv(args.categorical),
        "numeric": csv(args.numeric),
        "multihot": csv(args.multihot),
        "label": args.label,
        "user": args.user,
        "time": args.time,
        "split_seed": args.split_seed,
    }


def _load(spec: dict[str, Any]) -> EncodedData:
    try:
        splits, extra = get_data(spec)
        return encode_data(splits, extra)
    except (DataError, ValueError, KeyError) as err:
        fail(str(err))
        raise  # unreachable: fail exits


def _check_run_dir(run_dir: Path, resume: bool, flat: Any, spec: dict[str, Any]) -> None:
    """Refuse to overwrite a run folder's checkpoint, and a resume whose config or data differ from the run's."""
    if not resume:
        if (run_dir / "checkpoint" / "state.json").is_file():
            fail(
                f"{run_dir} already holds the checkpoint of an earlier run; pass --resume or a new --output-dir"
            )
        return
    if not (run_dir / "config.yaml").is_file() or not (run_dir / "run.json").is_file():
        return  # nothing to resume from: start from scratch
    try:
        saved: Any = load_config(RunConfig, run_dir / "config.yaml")
        saved_spec = json.loads((run_dir / "run.json").read_text())
    except (ConfigError, ValueError) as err:
        fail(f"{run_dir}: unreadable run files ({err})")
    diffs = config_differences(config_to_dict(saved), config_to_dict(flat), RESUME_FREE_KEYS)
    diffs += config_differences({k: saved_spec.get(k) for k in spec}, spec)
    if diffs:
        fail(f"cannot resume {run_dir}: the config differs from the run's: {'; '.join(diffs)}")


def _train(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mercato fat train", description="Train the Field-Aware Transformer."
    )
    _add_data_args(parser)
    parser.add_argument("--resume", action="store_true", help="continue from <output-dir>/checkpoint")
    add_common_args(parser)
    parser.epilog = config_help(FATConfig) + "\n" + config_help(TrainerConfig).split("\n", 1)[1]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    flat: Any
    args, flat = parse_config(parser, argv, RunConfig)
    try:
        fat_cfg, trainer_cfg = split_run_config(flat)
    except ConfigError as err:
        fail(str(err))
    spec = _spec(args)
    if args.output_dir:
        _check_run_dir(Path(args.output_dir), args.resume, flat, spec)
    data = _load(spec)  # all data errors happen before the run folder exists
    torch.manual_seed(trainer_cfg.seed)
    try:  # sizes, device and metrics are checked before the run folder exists
        model = FieldAwareTransformer(data.schema, fat_cfg)
        CTRTrainer(model, trainer_cfg, data.train, data.valid)
    except ValueError as err:
        fail(str(err))
    existed = (
        bool(args.output_dir) and Path(args.output_dir).is_dir() and any(Path(args.output_dir).iterdir())
    )
    run_dir = make_run_dir("fat", args.output_dir)
    try:  # a resume of an unreadable checkpoint is refused by the trainer
        write_config(run_dir, flat)
        atomic_write_json(run_dir / "run.json", spec)
        atomic_write_text(run_dir / "schema.json", data.schema.to_json())
        out = train_model(model, data, trainer_cfg, output_dir=run_dir, resume=args.resume)
    except (ValueError, NonFiniteLossError) as err:
        if not existed:  # this run created the folder: leave nothing half-made behind
            shutil.rmtree(run_dir, ignore_errors=True)
        fail(str(err))
    served = model.export()
    save_checkpoint(run_dir / "export", served, None, {"exported": True})
    save_heatmap(
        run_dir / "modulation.png",
        model.modulation_matrix().numpy(),
        data.schema.field_names,
        "FAT modulation w",
    )
    metrics = {**out, "data": data.name, "bayes_auc": data.bayes_auc, "bayes_logloss": data.bayes_logloss}
    write_metrics(run_dir, metrics)
    print_table(
        [{"model": "fat", "split": "test", **out["test"], "bayes_auc": data.bayes_auc or float("nan")}]
    )
    print(f"run folder: {run_dir}")
    return 0


def _eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mercato fat eval", description="Evaluate a FAT run on its test split."
    )
    parser.add_argument("--run-dir", required=True, help="a folder written by `mercato fat train`")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    run_dir = Path(args.run_dir)
    for name in ("run.json", "config.yaml", "schema.json", "export/model.safetensors"):
        if not (run_dir / name).is_file():
            fail(f"{run_dir}: not a finished FAT run folder ({name} missing)")
    try:
        fat_cfg, trainer_cfg = split_run_config(load_config(RunConfig, run_dir / "config.yaml"))
    except ConfigError as err:
        fail(str(err))
    schema = FeatureSchema.from_json((run_dir / "schema.json").read_text())
    spec = json.loads((run_dir / "run.json").read_text())
    try:
        splits, _ = get_data(spec)
        test = schema.encode(splits.test)
    except (DataError, KeyError, ValueError) as err:
        fail(str(err))
    rows = []
    weights = (
        run_dir / "best" if (run_dir / "best" / "model.safetensors").is_file() else run_dir / "checkpoint"
    )
    for path, cfg in (
        (weights, fat_cfg),
        (run_dir / "export", dataclasses.replace(fat_cfg, hypernetwork=False)),
    ):
        model = FieldAwareTransformer(schema, cfg)
        model.load_state_dict(load_checkpoint(path).model_state)
        trainer = CTRTrainer(model, dataclasses.replace(trainer_cfg, progress=False), test, test)
        rows.append({"weights": path.name, **trainer.evaluate(test)})
    atomic_write_json(run_dir / "eval.json", rows)
    print_table(rows)
    return 0


def _bench(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mercato fat bench", description="FAT vs baselines: same trainer, data and budget; mean ± std."
    )
    _add_data_args(parser)
    parser.add_argument("--models", default="fat,transformer,autoint,dcnv2,deepfm", help="comma-separated")
    parser.add_argument("--seeds", default="0", help="comma-separated training seeds")
    parser.add_argument("--width", type=int, default=16, help="embedding/token width d of every model")
    add_common_args(parser)
    parser.epilog = config_help(TrainerConfig)
    trainer_cfg: TrainerConfig
    args, trainer_cfg = parse_config(parser, argv, TrainerConfig)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in MODELS]
    if bad:
        fail(f"unknown models {bad}; valid models: {', '.join(MODELS)}")
    data = _load(_spec(args))
    run_dir = make_run_dir("fat-bench", args.output_dir)
    rows, raw = [], []
    for name in models:
        aucs, lls = [], []
        for seed in [int(s) for s in args.seeds.split(",")]:
            torch.manual_seed(seed)
            model = build_model(name, data.schema, {"embed_dim": args.width}, registry=MODELS)
            out = train_model(model, data, dataclasses.replace(trainer_cfg, seed=seed))
            aucs.append(out["test"]["auc"])
            lls.append(out["test"]["logloss"])
            raw.append({"model": name, "seed": seed, **out})
        rows.append(
            {
                "model": name,
                "auc": float(np.mean(aucs)),
                "auc_std": float(np.std(aucs)),
                "logloss": float(np.mean(lls)),
            }
        )
    if data.bayes_auc is not None:
        rows.append(
            {"model": "bayes-optimal", "auc": data.bayes_auc, "auc_std": 0.0, "logloss": data.bayes_logloss}
        )
    write_metrics(run_dir, {"data": data.name, "rows": rows, "runs": raw})
    print_table(rows)
    print(f"run folder: {run_dir}")
    return 0


def check_export(model: FieldAwareTransformer, data: CTRTensors) -> float:
    """Largest absolute logit difference between the hypernetwork path and :meth:`export` on ``data``."""
    served, was = model.export(), model.training
    model.eval()
    with torch.no_grad():
        batch = data.batch(slice(0, min(len(data), 4096)))
        diff = float((served(batch) - model(batch)).abs().max())
    model.train(was)
    return diff


VERBS = {"train": _train, "eval": _eval, "bench": _bench}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mercato fat``."""
    args = list(argv or [])
    if not args or args[0] in ("-h", "--help"):
        print("usage: mercato fat {train,eval,bench} [options]   (mercato fat <verb> --help for options)")
        print("data: synthetic | ml-1m | ml-100k | a CSV/TSV/Parquet path (with --categorical ...)")
        return 0 if args else 2
    if args[0] not in VERBS:
        fail(f"unknown verb '{args[0]}'; valid: {', '.join(VERBS)}")
    return VERBS[args[0]](args[1:])

"""``mercato ctr train|eval``: train a CTR baseline on MovieLens or a user's own table, and re-evaluate a run.

Examples::

    mercato ctr train --model dcnv2 --data ml-1m --epochs 5 --lr 0.001
    mercato ctr train --model deepfm --data clicks.csv --categorical user_id,item_id,city --numeric price \\
        --multihot tags --label clicked --user user_id --time ts --output-dir runs/ctr/mine
    mercato ctr eval --run-dir runs/ctr/mine

Config keys of the model and of the trainer share one flat namespace (``--embed-dim 32 --batch-size 2048``, or
the same keys in a YAML file given by ``--config``). A run folder holds ``config.yaml`` (those keys, reusable
with ``--config``), ``run.json`` (model name and data source), ``schema.json``, ``checkpoint/``, ``best/`` and
``metrics.json``.

A folder holding a checkpoint is never overwritten: rerun with ``--resume`` (refused when the model, the data
or a training-relevant key differs from the run's, naming the keys) or pick a new ``--output-dir``. Errors
found before training (bad config values, too few rows, no GPU) leave no run folder behind.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from mercato.core.checkpoint import load_checkpoint
from mercato.core.cli import add_common_args, config_help, fail, parse_config, print_table, setup_logging
from mercato.core.config import (
    ConfigError,
    config_from_dict,
    config_to_dict,
    load_config,
    merge_config_classes,
)
from mercato.core.runs import atomic_write_json, atomic_write_text, make_run_dir, write_config, write_metrics
from mercato.ctr.base import CTRModel
from mercato.ctr.evaluation import RESUME_FREE_KEYS, config_differences
from mercato.ctr.experiment import CTR_MODELS
from mercato.ctr.schema import FeatureSchema
from mercato.ctr.trainer import CTRTrainer, NonFiniteLossError, TrainerConfig
from mercato.data import CTRSplits, DataError, ctr_from_table, movielens_ctr

__all__ = ["MODELS", "build_model", "load_data", "main", "split_config"]

log = logging.getLogger(__name__)

MODELS: dict[str, tuple[type[CTRModel], type]] = CTR_MODELS  # every model of mercato.ctr
BUILTIN_DATA: dict[str, Literal["1m", "100k"]] = {"ml-1m": "1m", "ml-100k": "100k"}


def _flat_config_class(model_cfg: type) -> type:
    """One dataclass with the fields of ``model_cfg`` and of :class:`TrainerConfig` (names do not overlap)."""
    return merge_config_classes(f"{model_cfg.__name__}Run", model_cfg, TrainerConfig)


def split_config(flat: Any, model_cfg: type) -> tuple[Any, TrainerConfig]:
    """Split a flat run config into the model config and the :class:`TrainerConfig`."""
    values = config_to_dict(flat)
    names = {f.name for f in dataclasses.fields(model_cfg)}
    model: Any = config_from_dict(
        model_cfg, {k: v for k, v in values.items() if k in names}, source="model config"
    )
    trainer = config_from_dict(
        TrainerConfig, {k: v for k, v in values.items() if k not in names}, source="trainer config"
    )
    return model, trainer


def build_model(name: str, schema: FeatureSchema, model_config: Any) -> CTRModel:
    """Instantiate the model called ``name`` (a key of :data:`MODELS`)."""
    if name not in MODELS:
        raise ValueError(f"unknown model '{name}'; valid models: {', '.join(MODELS)}")
    cls, _ = MODELS[name]
    return cls(schema, model_config)  # type: ignore[call-arg]


def _csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def load_data(spec: dict[str, Any]) -> CTRSplits:
    """Load ``ml-1m``/``ml-100k`` or a user's table described by ``spec`` (the data keys of ``run.json``)."""
    source = spec["data"]
    if source in BUILTIN_DATA:
        return movielens_ctr(BUILTIN_DATA[source], seed=spec.get("split_seed", 0))
    if not spec.get("categorical") and not spec.get("numeric") and not spec.get("multihot"):
        raise DataError(
            f"{source}: a data file needs its feature columns: --categorical a,b [--numeric c] ..."
        )
    return ctr_from_table(
        source,
        categorical=spec.get("categorical", []),
        numeric=spec.get("numeric", []),
        multihot=spec.get("multihot", []),
        label=spec.get("label", "label"),
        user=spec.get("user", "user_id"),
        time=spec.get("time"),
        seed=spec.get("split_seed", 0),
    )


def _add_data_args(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--data", default=default, help="ml-1m | ml-100k | path to a CSV/TSV/Parquet file")
    p.add_argument("--categorical", default=None, help="file data: comma-separated categorical columns")
    p.add_argument("--numeric", default=None, help="file data: comma-separated numeric columns")
    p.add_argument("--multihot", default=None, help="file data: comma-separated '|'-token columns")
    p.add_argument("--label", default="label", help="file data: the 0/1 label column")
    p.add_argument("--user", default="user_id", help="file data: the user id column (for GAUC)")
    p.add_argument("--time", default=None, help="file data: timestamp column (per-user time split)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the split's tie-breaking/random order")


def _data_spec(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "data": args.data,
        "categorical": _csv_list(args.categorical),
        "numeric": _csv_list(args.numeric),
        "multihot": _csv_list(args.multihot),
        "label": args.label,
        "user": args.user,
        "time": args.time,
        "split_seed": args.split_seed,
    }


def _encode(splits: CTRSplits) -> tuple[FeatureSchema, Any, Any, Any]:
    schema = FeatureSchema.fit(splits)
    try:
        return schema, schema.encode(splits.train), schema.encode(splits.valid), schema.encode(splits.test)
    except (KeyError, ValueError) as err:
        raise DataError(f"{splits.name}: cannot encode the data: {err}") from err


def _check_columns(spec: dict[str, Any]) -> None:
    """Refuse a label column that is also given as a feature (the model would read its own label)."""
    features = [*spec["categorical"], *spec["numeric"], *spec["multihot"]]
    if spec["label"] in features:
        fail(
            f"column '{spec['label']}' is the label (--label) and cannot also be a feature; "
            "remove it from --categorical/--numeric/--multihot"
        )


def _check_run_dir(run_dir: Path, args: argparse.Namespace, flat: Any, spec: dict[str, Any]) -> None:
    """Refuse to overwrite a run folder's checkpoint, and a resume whose model, data or config differ."""
    has_ckpt = (run_dir / "checkpoint" / "state.json").is_file()
    if not args.resume:
        if has_ckpt:
            fail(
                f"{run_dir} already holds the checkpoint of an earlier run; pass --resume to continue it, "
                "or choose a new --output-dir"
            )
        return
    if not (run_dir / "run.json").is_file() or not (run_dir / "config.yaml").is_file():
        return  # nothing to resume from: start from scratch (the trainer logs it)
    try:
        saved_run = json.loads((run_dir / "run.json").read_text())
        saved_model = saved_run["model"]
    except (ValueError, KeyError) as err:
        fail(f"{run_dir / 'run.json'}: unreadable run file ({err})")
    if saved_model != args.model:
        fail(
            f"{run_dir} was trained with --model {saved_model}, not {args.model}; resume with the same model"
        )
    try:
        saved: Any = load_config(type(flat), run_dir / "config.yaml")
    except ConfigError as err:
        fail(str(err))
    diffs = config_differences(config_to_dict(saved), config_to_dict(flat), RESUME_FREE_KEYS)
    data = _data_for_record(spec)
    diffs += config_differences({k: saved_run.get(k) for k in spec}, {**spec, "data": data})
    if diffs:
        fail(f"cannot resume {run_dir}: the config differs from the run's: {'; '.join(diffs)}")


def _data_for_record(spec: dict[str, Any]) -> str:
    return spec["data"] if spec["data"] in BUILTIN_DATA else str(Path(spec["data"]).resolve())


def _rows(metrics: dict[str, dict[str, float]], model: str) -> list[dict[str, Any]]:
    return [{"model": model, "split": split, **vals} for split, vals in metrics.items()]


def _train(argv: list[str]) -> int:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model", default="deepfm")
    known, _ = pre.parse_known_args(argv)
    if known.model not in MODELS:
        fail(f"unknown model '{known.model}'; valid models: {', '.join(MODELS)}")
    model_cls_cfg = MODELS[known.model][1]
    parser = argparse.ArgumentParser(prog="mercato ctr train", description="Train a CTR model.")
    parser.add_argument("--model", default="deepfm", help=f"one of {', '.join(MODELS)}")
    _add_data_args(parser, "ml-1m")
    parser.add_argument("--resume", action="store_true", help="continue from <output-dir>/checkpoint")
    add_common_args(parser)
    parser.epilog = config_help(model_cls_cfg) + "\n" + config_help(TrainerConfig).split("\n", 1)[1]
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    flat: Any
    args, flat = parse_config(parser, argv, _flat_config_class(model_cls_cfg))
    try:
        model_cfg, trainer_cfg = split_config(flat, model_cls_cfg)
    except ConfigError as err:
        fail(str(err))
    spec = _data_spec(args)
    _check_columns(spec)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    is_main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 writes and prints
    if distributed and args.output_dir is None:
        fail("under torchrun pass --output-dir so that every rank uses the same run folder")
    if args.output_dir is not None:
        _check_run_dir(Path(args.output_dir), args, flat, spec)
    try:  # everything that can fail on the user's data happens before the run folder is created
        splits = load_data(spec)
        schema, train, valid, test = _encode(splits)
        torch.manual_seed(trainer_cfg.seed)
        model = build_model(args.model, schema, model_cfg)
        trainer = CTRTrainer(model, trainer_cfg, train, valid)  # checks sizes, metrics and the device
    except (DataError, ValueError) as err:
        fail(str(err))
    existed = args.output_dir is not None and Path(args.output_dir).exists()
    existed = existed and any(Path(args.output_dir).iterdir())
    run_dir = make_run_dir("ctr", args.output_dir) if is_main else Path(args.output_dir)
    trainer.output_dir = run_dir
    log.info("run folder %s; %s: %s", run_dir, splits.name, splits.summary())
    try:
        if is_main:
            write_config(run_dir, flat)
            atomic_write_json(
                run_dir / "run.json", {"model": args.model, **spec, "data": _data_for_record(spec)}
            )
            atomic_write_text(run_dir / "schema.json", schema.to_json())
        result = trainer.fit(resume=args.resume)
    except (ValueError, NonFiniteLossError) as err:
        if is_main and not existed:  # this run created the folder: leave nothing half-made behind
            shutil.rmtree(run_dir, ignore_errors=True)
        fail(str(err))
    metrics = {"valid": trainer.evaluate(valid), "test": trainer.evaluate(test)}
    if not is_main:
        return 0
    write_metrics(
        run_dir,
        {
            "model": args.model,
            "data": splits.name,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early,
            "history": result.history,
            **metrics,
        },
    )
    print_table(_rows(metrics, args.model))
    print(f"run folder: {run_dir}")
    return 0


def _eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mercato ctr eval", description="Evaluate a trained run on test.")
    parser.add_argument("--run-dir", required=True, help="a folder written by `mercato ctr train`")
    parser.add_argument("--data", default=None, help="evaluate on other data (default: the run's data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    run_dir = Path(args.run_dir)
    for name in ("run.json", "config.yaml", "schema.json"):
        if not (run_dir / name).is_file():
            fail(f"{run_dir}: not a CTR run folder ({name} missing)")
    weights = (
        run_dir / "best" if (run_dir / "best" / "model.safetensors").is_file() else run_dir / "checkpoint"
    )
    if not (weights / "model.safetensors").is_file():
        fail(f"{run_dir}: no trained weights (best/ or checkpoint/ missing)")
    spec = json.loads((run_dir / "run.json").read_text())
    if args.data is not None:
        spec["data"] = args.data
    if spec.get("model") not in MODELS:
        fail(
            f"{run_dir / 'run.json'}: unknown model {spec.get('model')!r}; valid models: {', '.join(MODELS)}"
        )
    model_cfg_cls = MODELS[spec["model"]][1]
    try:
        flat: Any = load_config(_flat_config_class(model_cfg_cls), run_dir / "config.yaml")
        model_cfg, trainer_cfg = split_config(flat, model_cfg_cls)
    except ConfigError as err:
        fail(str(err))
    schema = FeatureSchema.from_json((run_dir / "schema.json").read_text())
    try:
        test = schema.encode(load_data(spec).test)
    except (DataError, KeyError) as err:
        fail(str(err))
    model = build_model(spec["model"], schema, model_cfg)
    try:
        model.load_state_dict(load_checkpoint(weights).model_state)
        trainer = CTRTrainer(model, trainer_cfg, test, test)
    except (RuntimeError, ValueError) as err:
        fail(f"{weights}: cannot load the run's weights ({str(err).splitlines()[0]})")
    metrics = {"test": trainer.evaluate(test)}
    atomic_write_json(run_dir / "eval.json", metrics)
    print_table(_rows(metrics, spec["model"]))
    return 0


VERBS = {"train": _train, "eval": _eval}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mercato ctr``."""
    args = list(argv or [])
    if not args or args[0] in ("-h", "--help"):
        print("usage: mercato ctr {train,eval} [options]   (mercato ctr <verb> --help for options)")
        print(f"models: {', '.join(MODELS)}; data: {', '.join(BUILTIN_DATA)} or a CSV/TSV/Parquet path")
        return 0 if args else 2
    if args[0] not in VERBS:
        fail(f"unknown verb '{args[0]}'; valid: {', '.join(VERBS)}")
    return VERBS[args[0]](args[1:])

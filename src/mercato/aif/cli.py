"""``mercato aif train | serve | bench``: train and export a pre-ranker, serve it, load it open-loop."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

__all__ = ["main"]


def _train(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="mercato aif train",
        description="Train a pre-ranker on MovieLens with behaviour sequences (or the synthetic long-sequence "
        "set) and write a serving folder for `mercato aif serve --checkpoint DIR`.",
    )
    p.add_argument("--config", help="YAML file of ModelRunConfig fields")
    p.add_argument("--data", default="1m", help="1m, 100k or long (synthetic, 1,000-event sequences)")
    p.add_argument("--max-users", type=int, default=0, help="MovieLens: a random subset of users (0: all)")
    p.add_argument("--out", help="write the metrics as JSON here")
    args, overrides = p.parse_known_args(argv)
    from mercato.aif.train import HistoryDataSpec, LongDataSpec, ModelRunConfig, model_run
    from mercato.core.config import ConfigError, load_config
    from mercato.core.runs import atomic_write_json

    try:
        cfg = load_config(ModelRunConfig, args.config, overrides)
        if args.data not in ("1m", "100k", "long"):
            raise ConfigError(f"--data must be 1m, 100k or long, got {args.data!r}")
    except (ConfigError, ValueError) as exc:
        print(f"mercato aif train: error: {exc}", file=sys.stderr)
        return 2
    data = LongDataSpec() if args.data == "long" else HistoryDataSpec(args.data, max_users=args.max_users)
    logging.basicConfig(level=logging.INFO)
    res = model_run(cfg, data)
    print(json.dumps(res, indent=1, default=str))
    if args.out:
        atomic_write_json(args.out, res)
    return 0


def _serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mercato aif serve", description="Serve POST /rank, /health, /metrics.")
    p.add_argument("--config", help="YAML file of ServeConfig fields")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (share a Redis store)")
    args, overrides = p.parse_known_args(argv)
    import uvicorn

    from mercato.aif.serve import ServeConfig
    from mercato.core.config import ConfigError, config_to_dict, load_config

    try:
        cfg = load_config(ServeConfig, args.config, overrides)
        if cfg.mode not in ("aif", "sequential"):
            raise ConfigError(f"mode must be 'aif' or 'sequential', got {cfg.mode!r}")
        if cfg.model not in ("aif", "toy"):
            raise ConfigError(f"model must be 'aif' or 'toy', got {cfg.model!r}")
        if cfg.model == "aif" and not (Path(cfg.checkpoint) / "catalog.npz").is_file():
            raise ConfigError(
                f"checkpoint: {cfg.checkpoint or '(empty)'!s} is not a serving folder; make one with "
                "`mercato aif train --export DIR` (or serve the stand-in with --model toy)"
            )
    except ConfigError as exc:
        print(f"mercato aif serve: error: {exc}", file=sys.stderr)
        return 2
    if args.workers > 1 and cfg.store == "embedded":
        print(
            "mercato aif serve: note: workers share the embedded store folder on this machine",
            file=sys.stderr,
        )
    import tempfile

    import yaml

    fd, path = tempfile.mkstemp(prefix="aif-serve-", suffix=".yaml")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(config_to_dict(cfg), fh)
    os.environ["MERCATO_AIF_CONFIG"] = path
    logging.basicConfig(level=logging.INFO)
    try:
        uvicorn.run(
            "mercato.aif.serve:app_from_env",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level="warning",
            access_log=False,
        )
    finally:
        os.unlink(path)
    return 0


def _bench(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="mercato aif bench", description="Open-loop load at a fixed rate.")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="server (127.0.0.1/localhost only)")
    p.add_argument("--rate", type=float, default=50.0, help="requests per second")
    p.add_argument("--requests", type=int, default=1000, help="at most this many requests")
    p.add_argument("--seconds", type=float, default=10.0, help="at most this many seconds of sending")
    p.add_argument("--users", type=int, default=200, help="user ids drawn from [0, users)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--out", help="write the summary and timeline as JSON here")
    args = p.parse_args(argv)
    from mercato.aif.loadgen import run_load
    from mercato.core.runs import atomic_write_json

    try:
        res = run_load(args.url, args.rate, args.requests, args.seconds, args.users, args.k)
    except ValueError as exc:
        print(f"mercato aif bench: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(res.summary(), indent=1))
    if args.out:
        atomic_write_json(args.out, {**res.summary(), "timeline": res.timeline})
    return 0 if res.failed == 0 else 1


def main(argv: list[str]) -> int:
    verbs = {"train": _train, "serve": _serve, "bench": _bench}
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in verbs:
        print(
            "usage: mercato aif train [--data 1m|100k|long] [--max-users N] [--export DIR] [--key value ...]\n"
            "       mercato aif serve --checkpoint DIR [--config F] [--port P] [--workers N] [--key value ...]\n"
            "       mercato aif bench [--url U] [--rate R] [--requests N] [--seconds S] [--out F]"
        )
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return verbs[argv[0]](argv[1:])

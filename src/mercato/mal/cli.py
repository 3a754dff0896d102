"""``mercato mal simulate | train | eval | attribute | pymal | bench``.

* ``simulate``: write a simulated MAC folder (20 train days + 1 test day + vocabs) with first/last/linear/mta
  labels: ``--setting short|long --n-clicks N --output-dir DIR``; an existing folder with the same config is kept
  (resume), with another config it is an error unless ``--overwrite``.
* ``train``: train a model of the MAL family (``--model MAL``, Base, Shared-Bottom, MMoE, PLE, MoAE,
  "MAL w/o CAT") on a MAC folder (``--data``; the last training day validates), with a progress bar, a
  checkpoint per epoch under ``--output-dir`` and ``--resume``; writes config.yaml and metrics.json (test day).
* ``eval``: score the test day (or ``--split train``) with a trained run (``--run-dir``) via the PTP-only path.
* ``attribute``: credit an aggregated path file (ChannelAttribution's Data.csv layout) with every rule.
* ``pymal``: run PyMAL's own BASE/NATAL/... on a MAC folder (``--pymal-dir`` checkout, subprocess).
* ``bench``: run ``benchmarks/mal.py --quick``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from mercato.core.cli import add_common_args, fail, print_table, setup_logging
from mercato.core.runs import make_run_dir, write_metrics

__all__ = ["main"]


def _simulate(argv: list[str]) -> int:
    from mercato.mal.sim import SETTINGS, SimConfig, simulate_to_mac

    ap = argparse.ArgumentParser(prog="mercato mal simulate", description="write a simulated MAC folder")
    add_common_args(ap, SimConfig)
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="short", help="path-length setting")
    ap.add_argument("--n-clicks", type=int, default=None, help="target clicks (default: SimConfig.n_clicks)")
    ap.add_argument("--seed", type=int, default=0, help="generator seed")
    ap.add_argument(
        "--overwrite", action="store_true", help="replace an existing folder made with another config"
    )
    a = ap.parse_args(argv)
    setup_logging(a.verbose)
    over: dict = dict(SETTINGS[a.setting], seed=a.seed)
    if a.config:
        from mercato.core.config import ConfigError, load_config

        try:
            cfg = load_config(SimConfig, a.config)
        except ConfigError as e:
            fail(str(e))
        cfg = dataclasses.replace(cfg, **over)
    else:
        cfg = SimConfig(**over)
    if a.n_clicks is not None:
        cfg = dataclasses.replace(cfg, n_clicks=a.n_clicks)
    out = make_run_dir("mal", a.output_dir)
    meta = out / "sim.json"
    if meta.exists():
        old = json.loads(meta.read_text())
        if old["config"] == json.loads(json.dumps(cfg.__dict__)):
            print(f"{out}: already simulated with this config (kept)")
            print_table([old["stats"]])
            return 0
        if not a.overwrite:
            fail(f"{out}: holds a simulation with another config (pass --overwrite to replace it)")
    try:
        stats = simulate_to_mac(cfg, out, overwrite=meta.exists())
    except FileExistsError as e:
        fail(str(e))
    print_table([stats])
    print(f"wrote {out}")
    return 0


def _split(data_dir: str, primary: str):  # type: ignore[no-untyped-def]
    from mercato.mal.mac import MACError, load_mac, load_vocabs
    from mercato.mal.model import MACSchema, mac_to_tensors

    try:
        vocabs = load_vocabs(data_dir)
        train_all = load_mac(data_dir, "train", vocabs=vocabs)
        test = load_mac(data_dir, "test", vocabs=vocabs)
    except MACError as e:
        fail(str(e))
    last = int(train_all.day.max())
    if last < 1:
        fail(f"{data_dir}: needs at least 2 training files (the last one validates)")
    return (
        MACSchema.from_vocabs(vocabs),
        mac_to_tensors(train_all.subset(train_all.day < last), primary),
        mac_to_tensors(train_all.subset(train_all.day == last), primary),
        mac_to_tensors(test, primary),
    )


def _scores(model, data) -> dict:  # type: ignore[no-untyped-def]
    from mercato.mal.scoring import score_primary

    return score_primary(model, data)


def _train(argv: list[str]) -> int:
    import torch

    from mercato.core.runs import write_config
    from mercato.ctr.trainer import CTRTrainer, TrainerConfig
    from mercato.mal.model import MAL, PRESETS, preset

    ap = argparse.ArgumentParser(
        prog="mercato mal train", description="train a MAL-family model on MAC files"
    )
    ap.add_argument("--data", required=True, help="MAC folder (train/, test/, vocabs/)")
    ap.add_argument("--model", default="MAL", choices=PRESETS)
    ap.add_argument("--primary", default="last", choices=["last", "first", "linear", "mta"])
    ap.add_argument("--epochs", type=int, default=1, help="passes over the training days (the benchmark: 1)")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--lam", type=float, default=0.1, help="lambda of the auxiliary losses")
    ap.add_argument("--label-mode", default="binary", choices=["binary", "fractional"])
    ap.add_argument("--pcgrad", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoint in --output-dir")
    ap.add_argument("--output-dir", default=None, help="run folder (default runs/mal/<timestamp>)")
    a = ap.parse_args(argv)
    setup_logging(False)
    schema, train, valid, test = _split(a.data, a.primary)
    cfg = preset(a.model, primary=a.primary, lam=a.lam, label_mode=a.label_mode, pcgrad=a.pcgrad)
    torch.manual_seed(a.seed)
    model = MAL(schema, cfg)
    tcfg = TrainerConfig(
        epochs=a.epochs,
        batch_size=a.batch_size,
        lr=a.lr,
        patience=1,
        monitor="gauc",
        seed=a.seed,
        device=a.device,
    )
    out = make_run_dir("mal", a.output_dir)
    try:
        result = CTRTrainer(model, tcfg, train, valid, output_dir=out).fit(resume=a.resume)
    except ValueError as e:
        fail(str(e))
    write_config(
        out,
        {
            "model": a.model,
            "data": str(a.data),
            "mal": dataclasses.asdict(cfg),
            "schema": dataclasses.asdict(schema),
            "trainer": dataclasses.asdict(tcfg),
        },
    )
    metrics: dict[str, Any] = {
        "test": _scores(model.cpu(), test),
        "best_epoch": result.best_epoch,
        "history": result.history,
    }
    write_metrics(out, metrics)
    print_table([{"split": "test", **metrics["test"]}])
    print(f"wrote {out}")
    return 0


def _eval(argv: list[str]) -> int:
    import yaml

    from mercato.core.checkpoint import load_checkpoint
    from mercato.mal.model import MAL, MACSchema, MALConfig

    ap = argparse.ArgumentParser(prog="mercato mal eval", description="score MAC files with a trained run")
    ap.add_argument("--run-dir", required=True, help="folder written by mercato mal train")
    ap.add_argument("--data", default=None, help="MAC folder (default: the one it was trained on)")
    a = ap.parse_args(argv)
    run = Path(a.run_dir)
    if not (run / "config.yaml").is_file() or not (run / "best").is_dir():
        fail(f"{run}: not a finished mercato mal train run (config.yaml and best/ expected)")
    meta = yaml.safe_load((run / "config.yaml").read_text())
    mcfg = meta["mal"]
    for k in ("aux_views", "tower_dims", "cat_views"):
        mcfg[k] = tuple(mcfg[k])
    cfg = MALConfig(**mcfg)
    model = MAL(MACSchema(**meta["schema"]), cfg)
    model.load_state_dict(load_checkpoint(run / "best").model_state)
    _, _, _, test = _split(a.data or meta["data"], cfg.primary)
    scores = _scores(model, test)
    print_table([{"split": "test", **scores}])
    write_metrics(run, scores, name="eval.json")
    return 0


def _attribute(argv: list[str]) -> int:
    from mercato.mal.attribution import channel_shares, read_path_file

    ap = argparse.ArgumentParser(
        prog="mercato mal attribute", description="credit a path file with every rule"
    )
    ap.add_argument("paths", help="CSV with columns path (a > b > c), total_conversions, total_null")
    ap.add_argument("--output-dir", default=None, help="run folder (default runs/mal/<timestamp>)")
    a = ap.parse_args(argv)
    try:
        paths, conv, null = read_path_file(a.paths)
    except (OSError, ValueError) as e:
        fail(str(e))
    shares = channel_shares(paths, conv, null)
    channels = sorted(next(iter(shares.values())))
    print_table([{"channel": c, **{r: round(v[c], 2) for r, v in shares.items()}} for c in channels])
    out = make_run_dir("mal", a.output_dir)
    write_metrics(out, {"shares": shares}, name="attribution.json")
    print(f"wrote {out / 'attribution.json'}")
    return 0


def _pymal(argv: list[str]) -> int:
    from mercato.mal.pymal import run_pymal

    ap = argparse.ArgumentParser(prog="mercato mal pymal", description="run PyMAL's own code on a MAC folder")
    ap.add_argument("--pymal-dir", default="scratch/PyMAL", help="PyMAL checkout")
    ap.add_argument("--data", required=True, help="MAC folder (train/, test/, vocabs/)")
    ap.add_argument(
        "--model", default="NATAL", help="PyMAL model: BASE, ShareBottom, MMoE, PLE, HoME, NATAL, MoAE"
    )
    ap.add_argument("--main-view", default="last")
    ap.add_argument(
        "--aux-views", nargs="*", default=None, help="default: none for BASE, else all + cartesian"
    )
    ap.add_argument("--output-dir", default=None, help="PyMAL work folder (default runs/mal/<timestamp>)")
    ap.add_argument("--timeout", type=float, default=3600.0)
    a = ap.parse_args(argv)
    aux = (
        a.aux_views
        if a.aux_views is not None
        else (() if a.model == "BASE" else ("first", "mta", "linear", "cartesian"))
    )
    out = make_run_dir("mal", a.output_dir)
    try:
        res = run_pymal(a.pymal_dir, a.data, out, a.model, a.main_view, tuple(aux), timeout_s=a.timeout)
    except (FileNotFoundError, RuntimeError) as e:
        fail(str(e))
    print_table([{"view": v, **m} for v, m in res.metrics.items()])
    write_metrics(out, {"model": res.model, "metrics": res.metrics, "wall_s": res.train_wall_s})
    return 0


def _bench(argv: list[str]) -> int:
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "mal.py"
    if not script.is_file():
        fail(f"{script}: benchmark script not found (run from a source checkout)")
    return subprocess.call([sys.executable, str(script), "--quick", *argv])


VERBS = {
    "simulate": _simulate,
    "train": _train,
    "eval": _eval,
    "attribute": _attribute,
    "pymal": _pymal,
    "bench": _bench,
}


def main(argv: list[str]) -> int:
    """Entry point of ``mercato mal``."""
    if not argv or argv[0] in ("-h", "--help"):
        print(
            "usage: mercato mal {simulate,train,eval,attribute,pymal,bench} [options]   (mercato mal <verb> --help)"
        )
        return 0
    if argv[0] not in VERBS:
        print(
            f"mercato mal: error: unknown verb '{argv[0]}'; valid verbs: {', '.join(VERBS)}", file=sys.stderr
        )
        return 2
    return VERBS[argv[0]](argv[1:])

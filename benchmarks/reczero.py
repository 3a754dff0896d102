"""RecZero / RecOne benchmark on MovieLens-100K: baselines, zero-shot, SFT-only, RecZero, RecOne; GRPO step
time of mercato's wrapper vs TRL's stock GRPOTrainer; generation tokens/s.

Full mode (the numbers in docs/reczero.md; about an hour and a half on 2 shared CPU cores):
    python benchmarks/reczero.py
Quick mode (tiny random LM, 32 held-out users; writes only under runs/bench/reczero-quick/):
    python benchmarks/reczero.py --quick

Every stage is one cached run of :mod:`mercato.core.experiments` (logic in :mod:`mercato.reczero.bench`):
rerunning the same command serves what is cached and resumes an unfinished training stage from its newest
checkpoint. The chains (``recone``, ``reczero``, ``speed``) can run in parallel processes on one ``--root``
with ``--skip`` or ``--shard i/n``; a final call reports from the shared cache.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mercato.core.cli import setup_logging
from mercato.core.experiments import Experiment, Run, add_runner_args, describe, machine_line
from mercato.core.plots import save_line_plot
from mercato.core.results import markdown_table
from mercato.reczero import bench
from mercato.reczero.config import (
    DataConfig,
    EvalConfig,
    GRPOStageConfig,
    RecZeroConfig,
    RewardConfig,
    SFTStageConfig,
)

logger = logging.getLogger("benchmarks.reczero")
ROOT = Path(__file__).resolve().parents[1]
CODE = ("mercato.core", "mercato.llm", "mercato.reczero", "mercato.data")
ORDER = ["global mean", "user+item bias", "MF", "zero-shot", "SFT-only", "RecZero", "RecOne"]


def make_config(quick: bool, args: argparse.Namespace) -> RecZeroConfig:
    """The benchmark's configuration (CPU budget); the budget block renders it."""
    if quick:
        return RecZeroConfig(
            model="tiny",
            data=DataConfig(num_test_users=32, num_val_users=8, num_train_prompts=64),
            reward=RewardConfig(partial_format_weight=0.5),
            sft=SFTStageConfig(num_examples=16, batch_size=8, learning_rate=1e-3, save_steps=0),
            grpo=GRPOStageConfig(
                steps=2,
                num_generations=2,
                prompts_per_step=2,
                learning_rate=1e-3,
                max_completion_length=16,
                save_steps=0,
            ),
            eval=EvalConfig(max_new_tokens=16, batch_size=32),
        )
    return RecZeroConfig(
        model="smollm2",
        data=DataConfig(num_test_users=args.test_users, num_val_users=100, num_train_prompts=1000),
        reward=RewardConfig(partial_format_weight=0.5),
        sft=SFTStageConfig(
            num_examples=args.sft_examples,
            batch_size=8,
            learning_rate=args.sft_lr,
            lr_scheduler=args.sft_scheduler,
            save_steps=4,
            trainable_layers=args.trainable_layers,
        ),
        grpo=GRPOStageConfig(
            steps=args.grpo_steps,
            num_generations=4,
            prompts_per_step=2,
            learning_rate=1e-5,
            max_completion_length=96,  # 80 cut the longest template rationales before <rate>
            save_steps=2,
            trainable_layers=args.trainable_layers,
        ),
        eval=EvalConfig(max_new_tokens=96, batch_size=100),
    )


def declare(
    exp: Experiment, cfg: RecZeroConfig, args: argparse.Namespace
) -> tuple[list[list[Run]], dict[str, Run]]:
    """The runs in dependency levels (a level needs only earlier ones), and every run by its name."""
    root, code, data = exp.root, exp.code, cfg.data
    levels: list[list[Run]] = [[Run("baselines", bench.baselines, cfg, data, group="baselines")], [], []]

    def ev(name: str, model: bench.TrainSpec | str, group: str, split: str = "test") -> Run:
        prefix = "eval" if split == "test" else "valid"
        return Run(
            f"{prefix}:{name}", bench.eval_stage, bench.EvalSpec(cfg, name, model, split), data, group=group
        )

    if "recone" not in args.skip:
        sft = bench.train_spec(cfg, "recone", "sft", None, root, code)
        grpo = bench.train_spec(cfg, "recone", "grpo", sft, root, code)
        levels[0].append(Run("train:sft", bench.train_stage, sft, data, group="recone"))
        levels[1] += [
            ev("SFT-only", sft, "recone"),
            ev("SFT-only", sft, "recone", "valid"),
            Run("train:recone", bench.train_stage, grpo, data, group="recone"),
        ]
        levels[2] += [
            ev("RecOne", grpo, "recone"),
            ev("RecOne", grpo, "recone", "valid"),
            Run("weights:RecOne", bench.weight_change, bench.WeightSpec(sft, grpo), None, group="recone"),
        ]
    if "speed" not in args.skip:
        spec = bench.SpeedSpec(
            cfg, args.speed_steps, 2 if args.quick else 4, 16 if args.quick else 32, str(root / "speed")
        )
        levels[0].append(Run("speed", bench.speed_compare, spec, data, group="speed"))
    if "zeroshot" not in args.skip:
        levels[0].append(ev("zero-shot", cfg.model, "reczero"))
    if "reczero" not in args.skip:
        rz = bench.train_spec(cfg, "reczero", "grpo", None, root, code)
        levels[0].append(Run("train:reczero", bench.train_stage, rz, data, group="reczero"))
        levels[1].append(ev("RecZero", rz, "reczero"))
    return levels, {r.name: r for level in levels for r in level}


def curves(img: Path, got: dict[str, Any]) -> list[str]:
    """Reward, rollout-MAE and SFT-loss curves from the training stages' metrics; the files written."""
    reward, mae_ = {}, {}
    for name, key in (("RecZero", "train:reczero"), ("RecOne", "train:recone")):
        if key not in got:
            continue
        m = got[key]["metrics"]
        hist = [h for h in m["history"] if "reward" in h]
        if hist:
            reward[name] = ([h["step"] for h in hist], [h["reward"] for h in hist])
        if m.get("rollout_mae"):
            mae_[name] = (list(range(1, len(m["rollout_mae"]) + 1)), m["rollout_mae"])
    written = []
    if reward:
        save_line_plot(
            img / "reward_curve.png", reward, "GRPO step", "mean reward (format + answer)", "GRPO reward"
        )
        written.append("reward_curve.png")
    if mae_:
        save_line_plot(
            img / "mae_curve.png", mae_, "GRPO step", "rollout MAE (fallback: user mean)", "Rollout MAE"
        )
        written.append("mae_curve.png")
    if "train:sft" in got:
        hist = [h for h in got["train:sft"]["metrics"]["history"] if "loss" in h]
        if hist:
            save_line_plot(
                img / "sft_loss.png",
                {"SFT": ([h["step"] for h in hist], [h["loss"] for h in hist])},
                "SFT step",
                "loss",
                "RecOne cold-start SFT",
            )
            written.append("sft_loss.png")
    return written


def budget_block(exp: Experiment, cfg: RecZeroConfig, got: dict[str, Any]) -> str:
    """The setup, rendered from the config and the runs' recorded machine."""
    test = got["baselines"]["global mean"]["n"]
    valid = next(
        (got[k]["n"] for k in ("valid:SFT-only", "valid:RecOne") if k in got), cfg.data.num_val_users
    )
    return (
        f"{machine_line(exp.all_meta())} fp32, device setting `{cfg.device}`. Policy `{cfg.model}`.\n\n"
        f"- Held-out set: last rating of {test} users; validation: {valid} users' second-to-last ratings; "
        f"history of {cfg.data.history_len} items in the prompt.\n"
        f"- SFT (RecOne cold start): {describe(cfg.sft, ['num_examples', 'epochs', 'batch_size', 'learning_rate', 'lr_scheduler', 'trainable_layers'])} "
        "(template rationales; trainable_layers 0 = all).\n"
        f"- GRPO (RecZero and RecOne): {describe(cfg.grpo, ['steps', 'prompts_per_step', 'num_generations', 'max_completion_length', 'learning_rate', 'beta', 'temperature', 'trainable_layers'])}, "
        f"partial format credit {cfg.reward.partial_format_weight:g}.\n"
        f"- Evaluation: greedy, {describe(cfg.eval, ['max_new_tokens', 'batch_size', 'fallback'])}.\n"
    )


def results_block(exp: Experiment, got: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ev: dict[str, Any] = {**got.get("baselines", {})}
    ev.update({k.split(":", 1)[1]: v for k, v in got.items() if k.startswith("eval:")})

    def fmt(v: Any, d: int = 4) -> str:
        return "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{d}f}"

    rows = []
    for name in ORDER:
        r = ev.get(name)
        if r is None:
            rows.append([name, "not run", "", "", "", "", ""])
            continue
        rows.append(
            [
                name,
                fmt(r["mae"]),
                fmt(r["rmse"]),
                str(r["n"]),
                fmt(r.get("valid_format"), 3),
                fmt(r.get("fallback_rate"), 3),
                fmt(r.get("tokens_per_answer"), 1),
            ]
        )
    body = markdown_table(
        ["method", "MAE", "RMSE", "n", "valid format", "fallback rate", "tokens/answer"], rows
    )
    if "SFT-only" in ev and "RecOne" in ev:
        rel = 100 * (ev["RecOne"]["mae"] - ev["SFT-only"]["mae"]) / ev["SFT-only"]["mae"]
        goal = "met" if rel <= -5 and ev["RecOne"]["valid_format"] >= 0.98 else "NOT met"
        body += f"\n\nRecOne MAE vs SFT-only: {rel:+.1f}% (goal: at least -5% with format validity >= 98%: {goal})."
    if "valid:SFT-only" in got and "valid:RecOne" in got:
        vs, vr = got["valid:SFT-only"], got["valid:RecOne"]
        body += (
            f"\n\nThe same two models on the validation split ({vr['n']} other users' second-to-last ratings): "
            f"SFT-only MAE {vs['mae']:.4f} (valid format {vs['valid_format']:.3f}), RecOne MAE {vr['mae']:.4f} "
            f"(valid format {vr['valid_format']:.3f}): {100 * (vr['mae'] - vs['mae']) / vs['mae']:+.1f}%."
        )
    w = got.get("weights:RecOne")
    if w:
        body += (
            f"\n\nRecOne's GRPO stage changed {w['changed']} of {w['tensors']} weight tensors of the SFT model, "
            f"by at most {w['max_abs']:.1e} (largest relative norm change {w['max_rel']:.1e})."
        )
    if "train:reczero" in got:
        z = bench.zero_std_steps(got["train:reczero"]["metrics"])
        body += (
            f" RecZero: {z['all_zero_std']} of {z['steps']} GRPO steps had identical rewards in every group "
            "(zero advantages)."
        )
    if "MF" in ev and "RecOne" in ev:
        body += f" MF MAE {ev['MF']['mae']:.4f} vs RecOne {ev['RecOne']['mae']:.4f}."
    walls = {n: m.get("wall_s", 0.0) for n, m in exp.meta.items() if n in exp.declared}
    body += (
        f"\n\nSum of the stages' wall times: {sum(walls.values()) / 60:.1f} min "
        "(per stage: " + ", ".join(f"{k} {v / 60:.1f}" for k, v in walls.items()) + " min)."
    )
    return body, ev


def speed_block(sp: dict[str, Any], ev: dict[str, Any]) -> str:
    text = markdown_table(
        ["trainer", "steps", "mean step time (s)", "step times (s)"],
        [
            [
                "TRL stock GRPOTrainer",
                sp["steps"],
                f"{sp['stock_mean']:.1f}",
                ", ".join(f"{t:.1f}" for t in sp["stock"]),
            ],
            [
                "mercato wrapper",
                sp["steps"],
                f"{sp['ours_mean']:.1f}",
                ", ".join(f"{t:.1f}" for t in sp["ours"]),
            ],
        ],
    )
    text += f"\n\nRatio mercato / stock: **{sp['ratio']:.3f}** ({sp['setup']})."
    gen = [(k, v["tokens_per_s"]) for k, v in ev.items() if v.get("tokens_per_s") == v.get("tokens_per_s")]
    if gen:
        text += (
            "\n\nGeneration throughput (greedy, batched, answer tokens/s): "
            + ", ".join(f"{k} {v:.1f}" for k, v in gen if v and v > 0)
            + "."
        )
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--test-users", type=int, default=300, help="held-out users (last rating each)")
    p.add_argument("--sft-examples", type=int, default=800, help="cold-start SFT samples")
    p.add_argument("--sft-lr", type=float, default=2e-4, help="cold-start SFT learning rate")
    p.add_argument("--sft-scheduler", default="cosine", help="cold-start SFT learning-rate schedule")
    p.add_argument("--grpo-steps", type=int, default=10, help="GRPO steps of RecZero and RecOne")
    p.add_argument("--trainable-layers", type=int, default=6, help="top decoder blocks trained (0 = all)")
    p.add_argument(
        "--speed-steps", type=int, default=2, help="GRPO steps per trainer in the speed comparison"
    )
    p.add_argument("--skip", nargs="*", default=[], help="chains to skip: recone speed zeroshot reczero")
    add_runner_args(p)
    args = p.parse_args(argv)
    setup_logging()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads is None:  # 1 thread per run if the CPU is overloaded, else every core
        args.threads = 1 if os.getloadavg()[0] > (os.cpu_count() or 1) else (os.cpu_count() or 1)
    cfg = make_config(args.quick, args)
    exp = Experiment.from_args("reczero", args, code=CODE, repo=ROOT)
    levels, runs = declare(exp, cfg, args)
    got: dict[str, Any] = {}
    for level in levels:
        got.update(exp.run(level))
    if not exp.complete:
        logger.info(
            "shard done (%d runs computed); run without --shard to write the report", len(exp.computed)
        )
        return 0
    body, ev = results_block(exp, got)
    blocks = {"reczero-results": body, "reczero-budget": budget_block(exp, cfg, got)}
    if "speed" in got:
        blocks["reczero-speed"] = speed_block(got["speed"], ev)
    written = curves(exp.out_path("docs/img/reczero"), got)
    if written:
        blocks["reczero-curves"] = "\n".join(f"![{f[:-4]}](img/reczero/{f})" for f in written)
    short = [
        [
            n,
            f"{ev[n]['mae']:.4f}",
            f"{ev[n]['rmse']:.4f}",
            "—" if ev[n].get("valid_format") is None else f"{ev[n]['valid_format']:.3f}",
        ]
        for n in ORDER
        if n in ev
    ]
    summary = (
        f"### RecZero / RecOne (MovieLens-100K, last rating of {ev['global mean']['n']} users; `{cfg.model}`, "
        f"device `{cfg.device}`)\n\n"
        + markdown_table(["method", "MAE", "RMSE", "valid format"], short)
        + "\n\nDetails, budget and deviations: [reczero.md](reczero.md)."
    )
    gpu = cfg.device != "cpu" and any(m.get("cuda") for m in exp.all_meta())
    row = bench.readme_row(ev, cfg.model, "a GPU" if gpu else "CPU")
    exp.write_json(
        "results.json",
        {"eval": ev, **{k: v for k, v in got.items() if k in ("speed", "weights:RecOne")}, "readme_row": row},
    )
    exp.report({"docs/reczero.md": blocks, "docs/results.md": {"reczero": summary}})
    for name, r in ev.items():
        logger.info("%-15s MAE %.4f RMSE %.4f valid %s", name, r["mae"], r["rmse"], r.get("valid_format"))
    logger.info("README row: %s", row)
    logger.info(
        "%d runs computed, %d from the cache", len(exp.computed), len(exp.declared) - len(exp.computed)
    )
    if args.quick:
        return 0 if all(np.isfinite(r["mae"]) for r in ev.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

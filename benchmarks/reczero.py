"""RecZero / RecOne benchmark on MovieLens-100K: baselines, zero-shot, SFT-only, RecZero, RecOne; GRPO step
time of mercato's wrapper vs TRL's stock GRPOTrainer; generation tokens/s.

Full mode (the numbers in docs/reczero.md; about an hour on 2 shared CPU cores):
    python benchmarks/reczero.py
Quick mode (< 3 min, what `make bench` runs; tiny random LM, 32 held-out users, writes no docs):
    python benchmarks/reczero.py --quick

Every stage caches its result in the run folder (``--run-dir``); rerunning the same command resumes, and
the docs blocks are rewritten after each stage, so an interrupted run still documents what it measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mercato.core.cli import setup_logging
from mercato.core.config import config_to_dict
from mercato.core.plots import save_line_plot
from mercato.core.results import markdown_table, update_markdown_section
from mercato.core.runs import atomic_write_json
from mercato.core.seed import seed_everything
from mercato.llm.grpo import GRPOSettings, StepTimer, build_grpo_trainer, make_grpo_args
from mercato.llm.loading import load_policy
from mercato.reczero.config import (
    DataConfig,
    EvalConfig,
    GRPOStageConfig,
    RecZeroConfig,
    RewardConfig,
    SFTStageConfig,
)
from mercato.reczero.data import RecZeroData, build_data, examples_to_rows
from mercato.reczero.rewards import answer_reward, format_reward, trl_reward_functions
from mercato.reczero.trainer import RecZeroTrainer, evaluate_policy, score_baselines

logger = logging.getLogger("benchmarks.reczero")
ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reczero.md"
RESULTS = ROOT / "docs" / "results.md"
IMG = ROOT / "docs" / "img" / "reczero"


def make_config(quick: bool, args: argparse.Namespace) -> RecZeroConfig:
    """The benchmark's configuration (CPU budget); every value is printed into the docs."""
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


class Bench:
    """Runs stages once each, caching results in ``run_dir/results.json`` and refreshing the docs."""

    def __init__(self, cfg: RecZeroConfig, run_dir: Path, write_docs: bool, quick: bool) -> None:
        self.cfg, self.run_dir, self.write_docs, self.quick = cfg, run_dir, write_docs, quick
        self.cache_path = run_dir / "results.json"
        self.cache: dict[str, Any] = (
            json.loads(self.cache_path.read_text()) if self.cache_path.exists() else {}
        )
        self.t0 = time.perf_counter()

    def stage(self, key: str, fn: Any) -> Any:
        if key in self.cache:
            logger.info("stage %s: cached", key)
            return self.cache[key]
        t = time.perf_counter()
        value = fn()
        self.cache[key] = value
        self.cache.setdefault("wall_s", {})[key] = time.perf_counter() - t
        atomic_write_json(self.cache_path, self.cache)
        self.render()
        return value

    def render(self) -> None:
        """Write the generated docs blocks from whatever is cached so far."""
        if not self.write_docs:
            return
        c = self.cache
        order = ["global mean", "user+item bias", "MF", "zero-shot", "SFT-only", "RecZero", "RecOne"]
        rows = []
        for name in order:
            r = c.get("eval", {}).get(name) if name in c.get("eval", {}) else None
            if r is None:
                rows.append([name, "not run", "", "", "", "", ""])
                continue
            fmt = lambda v, d=4: "—" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{d}f}"  # noqa: E731
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
        header = ["method", "MAE", "RMSE", "n", "valid format", "fallback rate", "tokens/answer"]
        body = markdown_table(header, rows)
        ev = c.get("eval", {})
        if "SFT-only" in ev and "RecOne" in ev:
            rel = 100 * (ev["RecOne"]["mae"] - ev["SFT-only"]["mae"]) / ev["SFT-only"]["mae"]
            goal = "met" if rel <= -5 and ev["RecOne"]["valid_format"] >= 0.98 else "NOT met"
            body += f"\n\nRecOne MAE vs SFT-only: {rel:+.1f}% (goal: at least -5% with format validity >= 98%: {goal})."
        if "valid:SFT-only" in c and "valid:RecOne" in c:
            vs, vr = c["valid:SFT-only"], c["valid:RecOne"]
            body += (
                f"\n\nThe same two models on the validation split ({vr['n']} other users' second-to-last ratings): "
                f"SFT-only MAE {vs['mae']:.4f} (valid format {vs['valid_format']:.3f}), RecOne MAE {vr['mae']:.4f} "
                f"(valid format {vr['valid_format']:.3f}): {100 * (vr['mae'] - vs['mae']) / vs['mae']:+.1f}%."
            )
        w = c.get("weights:RecOne")
        if w:
            body += (
                f"\n\nRecOne's GRPO stage changed {w['changed']} of {w['tensors']} weight tensors of the SFT model, "
                f"by at most {w['max_abs']:.1e} (largest relative norm change {w['max_rel']:.1e})."
            )
        z = c.get("zero_std:RecZero")
        if z:
            body += (
                f" RecZero: {z['all_zero_std']} of {z['steps']} GRPO steps had identical rewards in every group "
                "(zero advantages)."
            )
        if "MF" in ev and "RecOne" in ev:
            body += f" MF MAE {ev['MF']['mae']:.4f} vs RecOne {ev['RecOne']['mae']:.4f}."
        body += (
            f"\n\nSum of the stages' wall times: {sum(c.get('wall_s', {}).values()) / 60:.1f} min "
            "(per stage: " + ", ".join(f"{k} {v / 60:.1f}" for k, v in c.get("wall_s", {}).items()) + " min)."
        )
        update_markdown_section(DOC, "reczero-results", body)
        sp = c.get("speed")
        if sp:
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
            gen = [
                (k, v["tokens_per_s"])
                for k, v in ev.items()
                if v.get("tokens_per_s") == v.get("tokens_per_s")
            ]
            if gen:
                text += (
                    "\n\nGeneration throughput (greedy, batched, answer tokens/s): "
                    + ", ".join(f"{k} {v:.1f}" for k, v in gen if v and v > 0)
                    + "."
                )
            update_markdown_section(DOC, "reczero-speed", text)
        budget = c.get("budget")
        if budget:
            update_markdown_section(DOC, "reczero-budget", budget)
        curves = [p for p in ("reward_curve.png", "mae_curve.png", "sft_loss.png") if (IMG / p).exists()]
        if curves:
            update_markdown_section(
                DOC, "reczero-curves", "\n".join(f"![{p[:-4]}](img/reczero/{p})" for p in curves)
            )
        if ev:
            vf = lambda v: "—" if v is None or v != v else f"{v:.3f}"  # noqa: E731
            short = [
                [n, f"{ev[n]['mae']:.4f}", f"{ev[n]['rmse']:.4f}", vf(ev[n].get("valid_format"))]
                for n in order
                if n in ev
            ]
            update_markdown_section(
                RESULTS,
                "reczero",
                "### RecZero / RecOne (MovieLens-100K, last rating of 300 users; SmolLM2-135M on CPU)\n\n"
                + markdown_table(["method", "MAE", "RMSE", "valid format"], short)
                + "\n\nDetails, budget and deviations: [reczero.md](reczero.md).",
            )


def baselines(data: RecZeroData, cfg: RecZeroConfig) -> dict[str, Any]:
    return {row["name"]: row for row in score_baselines(cfg, data, "test")}


def eval_model(
    name: str, source: str, data: RecZeroData, cfg: RecZeroConfig, split: str = "test"
) -> dict[str, Any]:
    policy = load_policy(source, device=cfg.device)
    examples = data.test if split == "test" else data.valid
    res, texts = evaluate_policy(name, policy, examples, cfg, data.global_mean)
    row = res.row()
    row["samples"] = texts[:3]
    return row


def weight_change(before: str, after: str) -> dict[str, Any]:
    """How far training moved the weights: tensors changed, max |delta|, max relative Frobenius change."""
    from safetensors.torch import load_file

    def tensors(folder: str) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for f in sorted(Path(folder).glob("*.safetensors")):
            out.update(load_file(str(f)))
        return out

    a, b = tensors(before), tensors(after)
    deltas = {k: (b[k].float() - a[k].float()) for k in a}
    changed = [k for k, d in deltas.items() if d.abs().max() > 0]
    return {
        "tensors": len(a),
        "changed": len(changed),
        "max_abs": max((float(deltas[k].abs().max()) for k in changed), default=0.0),
        "max_rel": max(
            (float(deltas[k].norm() / a[k].float().norm().clamp_min(1e-12)) for k in changed), default=0.0
        ),
    }


def zero_std_steps(stage_dir: Path) -> dict[str, Any]:
    """GRPO steps whose every group had identical rewards (no advantage, no gradient), from metrics.json."""
    hist = [h for h in json.loads((stage_dir / "metrics.json").read_text())["history"] if "reward" in h]
    return {"steps": len(hist), "all_zero_std": sum(h.get("frac_reward_zero_std", 0.0) >= 1.0 for h in hist)}


def speed_compare(
    data: RecZeroData, cfg: RecZeroConfig, run_dir: Path, steps: int, quick: bool
) -> dict[str, Any]:
    """Same model, batch, steps and seed: TRL's stock GRPOTrainer vs mercato's glue (all weights trainable)."""
    from datasets import Dataset
    from trl import GRPOTrainer

    rows = examples_to_rows(data.train[:16])
    g = 2 if quick else 4
    settings = GRPOSettings(
        output_dir=str(run_dir / "speed_ours"),
        steps=steps,
        num_generations=g,
        prompts_per_step=1,
        learning_rate=1e-6,
        max_completion_length=16 if quick else 32,
        seed=cfg.seed,
    )
    reward_cfg = cfg.reward

    def stock_format(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
        return [format_reward(c[0]["content"], reward_cfg) for c in completions]

    def stock_answer(
        prompts: list[Any], completions: list[Any], rating: list[float], **kw: Any
    ) -> list[float]:
        return [answer_reward(c[0]["content"], r, reward_cfg) for c, r in zip(completions, rating)]

    timings: dict[str, list[float]] = {}
    for which in ("stock", "ours"):
        seed_everything(cfg.seed)
        policy = load_policy(cfg.model, device=cfg.device)
        timer = StepTimer()
        if which == "stock":
            args = make_grpo_args(replace(settings, output_dir=str(run_dir / "speed_stock")))
            trainer = GRPOTrainer(
                model=policy.model,
                reward_funcs=[stock_format, stock_answer],
                args=args,
                train_dataset=Dataset.from_list(rows),
                processing_class=policy.tokenizer,
                callbacks=[timer],
            )
        else:
            trainer = build_grpo_trainer(
                policy.model,
                policy.tokenizer,
                trl_reward_functions(reward_cfg),
                rows,
                settings,
                callbacks=[timer],
            )
        trainer.train()
        timings[which] = timer.step_times
    stock, ours = timings["stock"], timings["ours"]
    return {
        "steps": steps,
        "stock": stock,
        "ours": ours,
        "stock_mean": float(np.mean(stock)),
        "ours_mean": float(np.mean(ours)),
        "ratio": float(np.mean(ours) / np.mean(stock)),
        "setup": f"{cfg.model}, {g} completions x 1 prompt, max {settings.max_completion_length} new tokens, "
        f"all weights trainable, seed {cfg.seed}, {torch.get_num_threads()} torch thread(s)",
    }


def curves(img: Path, *run_dirs: Path) -> None:
    reward, mae_ = {}, {}
    for name, stage in (("RecZero", "reczero"), ("RecOne", "recone")):
        paths = [
            d / stage / "grpo" / "metrics.json"
            for d in run_dirs
            if (d / stage / "grpo" / "metrics.json").exists()
        ]
        if not paths:
            continue
        path = paths[0]
        m = json.loads(path.read_text())
        hist = [h for h in m["history"] if "reward" in h]
        if hist:
            reward[name] = ([h["step"] for h in hist], [h["reward"] for h in hist])
        if m["rollout_mae"]:
            mae_[name] = (list(range(1, len(m["rollout_mae"]) + 1)), m["rollout_mae"])
    if reward:
        save_line_plot(
            img / "reward_curve.png", reward, "GRPO step", "mean reward (format + answer)", "GRPO reward"
        )
    if mae_:
        save_line_plot(
            img / "mae_curve.png", mae_, "GRPO step", "rollout MAE (fallback: user mean)", "Rollout MAE"
        )
    sfts = [
        d / "recone" / "sft" / "metrics.json"
        for d in run_dirs
        if (d / "recone" / "sft" / "metrics.json").exists()
    ]
    if sfts:
        sft = sfts[0]
        hist = [h for h in json.loads(sft.read_text())["history"] if "loss" in h]
        if hist:
            save_line_plot(
                img / "sft_loss.png",
                {"SFT": ([h["step"] for h in hist], [h["loss"] for h in hist])},
                "SFT step",
                "loss",
                "RecOne cold-start SFT",
            )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny random LM, small sets, < 3 min, no docs")
    p.add_argument("--run-dir", default=None, help="cache/resume folder (default runs/reczero-bench[-quick])")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: 1 if the CPU is overloaded)")
    p.add_argument("--test-users", type=int, default=300, help="held-out users (last rating each)")
    p.add_argument("--sft-examples", type=int, default=800, help="cold-start SFT samples")
    p.add_argument("--sft-lr", type=float, default=2e-4, help="cold-start SFT learning rate")
    p.add_argument("--sft-scheduler", default="cosine", help="cold-start SFT learning-rate schedule")
    p.add_argument("--grpo-steps", type=int, default=10, help="GRPO steps of RecZero and RecOne")
    p.add_argument("--trainable-layers", type=int, default=6, help="top decoder blocks trained (0 = all)")
    p.add_argument(
        "--speed-steps", type=int, default=2, help="GRPO steps per trainer in the speed comparison"
    )
    p.add_argument("--skip", nargs="*", default=[], help="stages to skip: recone speed zeroshot reczero")
    p.add_argument(
        "--merge",
        nargs="*",
        default=[],
        help="fold these run dirs' results.json into --run-dir's, render, exit",
    )
    p.add_argument("--no-docs", action="store_true", help="do not write docs/")
    args = p.parse_args(argv)
    setup_logging()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = args.threads or (1 if os.getloadavg()[0] > (os.cpu_count() or 1) else (os.cpu_count() or 1))
    torch.set_num_threads(threads)
    cfg = make_config(args.quick, args)
    run_dir = Path(args.run_dir or ("runs/reczero-bench-quick" if args.quick else "runs/reczero-bench"))
    run_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    bench = Bench(cfg, run_dir, write_docs=not (args.quick or args.no_docs), quick=args.quick)
    img = IMG if bench.write_docs else run_dir / "img"  # quick/no-docs runs never touch docs/
    data = build_data(cfg.data)
    budget = (
        f"Measured on a 2-core CPU shared with other jobs (load average {os.getloadavg()[0]:.1f} at start), "
        f"{threads} torch thread(s), fp32, no GPU. Policy `{cfg.model}`.\n\n"
        f"- Held-out set: last rating of {len(data.test)} users; validation: {len(data.valid)} users' "
        f"second-to-last ratings; history of {cfg.data.history_len} items in the prompt.\n"
        f"- SFT (RecOne cold start): {cfg.sft.num_examples} template rationales, 1 epoch, batch "
        f"{cfg.sft.batch_size}, lr {cfg.sft.learning_rate:g} ({cfg.sft.lr_scheduler}), top {cfg.sft.trainable_layers or 'all'} blocks trained.\n"
        f"- GRPO (RecZero and RecOne): {cfg.grpo.steps} steps x {cfg.grpo.prompts_per_step} prompts x G = "
        f"{cfg.grpo.num_generations}, max {cfg.grpo.max_completion_length} new tokens, lr {cfg.grpo.learning_rate:g}, "
        f"beta {cfg.grpo.beta:g}, temperature {cfg.grpo.temperature:g}, top {cfg.grpo.trainable_layers or 'all'} "
        f"blocks trained, partial format credit {cfg.reward.partial_format_weight:g}.\n"
        f"- Evaluation: greedy, max {cfg.eval.max_new_tokens} new tokens, batch {cfg.eval.batch_size}, "
        f"fallback = {cfg.eval.fallback}.\n"
    )
    bench.cache.setdefault("budget", budget)  # keep the first run's (its load average, its settings)
    bench.cache.setdefault("config", config_to_dict(cfg))
    t_all = time.perf_counter()
    if args.merge:
        for other in args.merge:
            theirs = json.loads((Path(other) / "results.json").read_text())
            for key, value in theirs.items():
                if key == "eval":
                    bench.cache.setdefault("eval", {}).update(value)
                elif key == "wall_s":
                    bench.cache.setdefault("wall_s", {}).update(
                        {k: v for k, v in value.items() if k != "baselines"}
                    )
                elif key == "budget" and f"(`{other}`)" not in bench.cache["budget"]:
                    bench.cache["budget"] += (
                        f"\n\nThe stages {', '.join(k for k in theirs if ':' in k)} ran in a parallel process "
                        f"(`{other}`) with this budget:\n\n{value}"
                    )
                elif key not in bench.cache:
                    bench.cache[key] = value
        curves(img, run_dir, *[Path(o) for o in args.merge])
        atomic_write_json(bench.cache_path, bench.cache)
        bench.render()
        return 0

    bench.stage("baselines", lambda: baselines(data, cfg))
    bench.cache.setdefault("eval", {}).update(bench.cache["baselines"])

    def run_eval(name: str, source: str) -> None:
        key = f"eval:{name}"
        row = bench.stage(key, lambda: eval_model(name, source, data, cfg))
        bench.cache["eval"][name] = row
        bench.render()

    if "recone" not in args.skip:
        recone = RecZeroTrainer(replace(cfg, method="recone"), data, run_dir / "recone")
        sft_dir = bench.stage("train:sft", lambda: str(recone.sft()))
        curves(img, run_dir)
        run_eval("SFT-only", sft_dir)
        recone_dir = bench.stage("train:recone", lambda: str(recone.grpo(init=sft_dir)))
        curves(img, run_dir)
        run_eval("RecOne", recone_dir)
        bench.stage("weights:RecOne", lambda: weight_change(sft_dir, recone_dir))
        for name, source in (
            ("SFT-only", sft_dir),
            ("RecOne", recone_dir),
        ):  # the same comparison, other users
            bench.stage(f"valid:{name}", lambda n=name, s=source: eval_model(n, s, data, cfg, "valid"))
        bench.render()
    if "speed" not in args.skip:
        bench.stage("speed", lambda: speed_compare(data, cfg, run_dir, args.speed_steps, args.quick))
    if "zeroshot" not in args.skip:
        run_eval("zero-shot", cfg.model)
    if "reczero" not in args.skip:
        reczero = RecZeroTrainer(replace(cfg, method="reczero"), data, run_dir / "reczero")
        rz_dir = bench.stage("train:reczero", lambda: str(reczero.grpo()))
        curves(img, run_dir)
        run_eval("RecZero", rz_dir)
        bench.stage("zero_std:RecZero", lambda: zero_std_steps(run_dir / "reczero" / "grpo"))
    bench.render()
    atomic_write_json(bench.cache_path, bench.cache)
    ev = bench.cache["eval"]
    for name, r in ev.items():
        logger.info("%-15s MAE %.4f RMSE %.4f valid %s", name, r["mae"], r["rmse"], r.get("valid_format"))
    logger.info("benchmark done in %.1f min", (time.perf_counter() - t_all) / 60)
    if args.quick:
        ok = all(np.isfinite(r["mae"]) for r in ev.values()) and "RecOne" in ev and "RecZero" in ev
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

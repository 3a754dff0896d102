"""``mercato reczero sft|train|eval|bench``.

Examples::

    mercato reczero train --method recone --model smollm2 --output-dir runs/recone   # SFT then GRPO
    mercato reczero train --method recone --output-dir runs/recone                  # again: resumes
    mercato reczero eval --model runs/recone/grpo/final --split test
    mercato reczero bench --model smollm2 --grpo.steps 4

Any config field is a ``--key value`` override (``--grpo.num-generations 4``); ``--help`` lists them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mercato.core.cli import add_common_args, config_help, fail, parse_config, print_table
from mercato.core.runs import make_run_dir, write_config, write_metrics
from mercato.reczero.config import (
    BaselineConfig,
    DataConfig,
    EvalConfig,
    GRPOStageConfig,
    RecZeroConfig,
    RewardConfig,
    SFTStageConfig,
)

logger = logging.getLogger(__name__)

VERBS = {
    "sft": "RecOne cold start only: SFT the policy on four-stage rationales",
    "train": "train RecZero (GRPO) or RecOne (SFT then GRPO); rerun with the same --output-dir to resume",
    "eval": "evaluate a policy (smollm2 or a model folder) and optionally the classical baselines",
    "bench": "baselines + a policy's MAE/RMSE/format validity/tokens on the held-out set, one table",
}


def _parser(verb: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"mercato reczero {verb}", description=VERBS[verb])
    add_common_args(p, RecZeroConfig)
    nested = [DataConfig, RewardConfig, SFTStageConfig, GRPOStageConfig, EvalConfig, BaselineConfig]
    prefixes = ["data", "reward", "sft", "grpo", "eval", "baselines"]
    extra = []
    for prefix, cls in zip(prefixes, nested):
        body = config_help(cls).split("\n", 1)[-1].replace("  --", f"  --{prefix}.")
        extra.append(f"[{prefix}]\n{body}")
    p.epilog = (p.epilog or "") + "\n\n" + "\n".join(extra)
    if verb in ("eval", "bench"):
        p.add_argument("--split", choices=["test", "valid"], default="test", help="which held-out targets")
    if verb == "eval":
        p.add_argument("--baselines", action="store_true", help="also fit and score the classical baselines")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mercato reczero``."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] in ("-h", "--help"):
        print("usage: mercato reczero {" + ",".join(VERBS) + "} [options]\n")
        for verb, text in VERBS.items():
            print(f"  {verb:6s} {text}")
        return 0
    verb, rest = args_list[0], args_list[1:]
    if verb not in VERBS:
        fail(f"unknown reczero command '{verb}'; valid: {', '.join(VERBS)}")
    args, cfg = parse_config(_parser(verb), rest, RecZeroConfig)

    from mercato.reczero.data import build_data
    from mercato.reczero.trainer import RecZeroTrainer, evaluate_policy, score_baselines

    run_dir = make_run_dir("reczero", args.output_dir)
    write_config(run_dir, cfg)
    try:
        data = build_data(cfg.data)
    except (ValueError, FileNotFoundError) as err:
        fail(str(err))
    trainer = RecZeroTrainer(cfg, data, run_dir)
    try:
        if verb == "sft":
            out = trainer.sft()
            print(f"SFT model: {out}")
            return 0
        if verb == "train":
            out = trainer.run()
            print(f"{cfg.method} model: {out}")
            return 0
        from mercato.llm.loading import load_policy

        examples = data.test if args.split == "test" else data.valid
        rows = score_baselines(cfg, data, args.split) if (verb == "bench" or args.baselines) else []
        policy = load_policy(cfg.model, device=cfg.device)
        res, texts = evaluate_policy(cfg.model, policy, examples, cfg, data.global_mean)
        rows.append(res.row())
        write_metrics(run_dir, {"split": args.split, "results": rows, "sample_answers": texts[:5]})
    except FileNotFoundError as err:
        fail(str(err))
    keys = ["name", "mae", "rmse", "n", "valid_format", "fallback_rate", "tokens_per_answer", "tokens_per_s"]
    print_table([{k: r.get(k, "") for k in keys} for r in rows])
    print(f"metrics: {run_dir / 'metrics.json'}")
    return 0

"""RecZero benchmark logic: the stages as runs of :mod:`mercato.core.experiments` (``benchmarks/reczero.py``).

Every run function has the runner's signature ``fn(spec, data)``, ``data`` being the :class:`DataConfig` (the
MovieLens split, the data spec of the cache key):

- :func:`baselines` scores global mean, user+item bias and MF;
- :func:`train_stage` runs one training stage (RecOne's SFT cold start, a GRPO stage) into the model folder of
  its :class:`TrainSpec`; an interrupted stage resumes from its newest TRL checkpoint;
- :func:`eval_stage` generates and scores the answers of a model (a :class:`TrainSpec`'s result, or the base
  model for zero-shot);
- :func:`weight_change` measures how far a stage moved the weights; :func:`speed_compare` times TRL's stock
  GRPOTrainer against mercato's wrapper.

A stage's model folder is named by a hash of its spec and the code fingerprint, so a changed config or code
never picks up the folder of another run. :func:`readme_row` renders the README status row from the results.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import joblib
import numpy as np

from mercato.core.experiments import spec_dict
from mercato.reczero.config import DataConfig, RecZeroConfig

__all__ = [
    "EvalSpec",
    "SpeedSpec",
    "TrainSpec",
    "WeightSpec",
    "baselines",
    "eval_stage",
    "model_dir",
    "parse_results_table",
    "readme_row",
    "speed_compare",
    "train_spec",
    "train_stage",
    "weight_change",
    "zero_std_steps",
]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainSpec:
    """One training stage: ``stage`` 'sft' or 'grpo' of ``method`` from ``init`` (None: the base model)."""

    cfg: RecZeroConfig
    method: Literal["reczero", "recone"]  # 'recone': SFT cold start, then GRPO; 'reczero': GRPO from the base
    stage: str  # 'sft' or 'grpo'
    init: TrainSpec | None  # the stage whose final model this one starts from
    out_dir: str  # the stage's run folder (see :func:`train_spec`)


@dataclasses.dataclass(frozen=True)
class EvalSpec:
    """Score ``model`` (a training stage, or a base model name for zero-shot) on ``split``."""

    cfg: RecZeroConfig
    name: str  # the row of the table
    model: TrainSpec | str
    split: str = "test"  # 'test' or 'valid'


@dataclasses.dataclass(frozen=True)
class WeightSpec:
    before: TrainSpec
    after: TrainSpec


@dataclasses.dataclass(frozen=True)
class SpeedSpec:
    cfg: RecZeroConfig
    steps: int  # GRPO steps per trainer
    generations: int  # completions per prompt (G)
    max_completion_length: int
    out_dir: str


def model_dir(root: str | Path, spec: Mapping[str, Any], code: str) -> str:
    """``root/models/<hash>``: a folder for one stage, unique to its spec and the code fingerprint."""
    return str(Path(root) / "models" / str(joblib.hash({"spec": spec_dict(spec), "code": code}))[:16])


def train_spec(
    cfg: RecZeroConfig,
    method: Literal["reczero", "recone"],
    stage: str,
    init: TrainSpec | None,
    root: str | Path,
    code: str,
) -> TrainSpec:
    """A :class:`TrainSpec` whose folder is :func:`model_dir` of its other fields."""
    key = {"cfg": cfg, "method": method, "stage": stage, "init": init}
    return TrainSpec(cfg, method, stage, init, model_dir(root, key, code))


def final_dir(spec: TrainSpec) -> Path:
    return Path(spec.out_dir) / spec.stage / "final"


def _data(data: DataConfig) -> Any:
    from mercato.reczero.data import build_data

    return build_data(data)


def baselines(cfg: RecZeroConfig, data: DataConfig) -> dict[str, Any]:
    """Global mean, user+item bias and MF on the test split: ``{name: row}``."""
    from mercato.reczero.trainer import score_baselines

    return {row["name"]: row for row in score_baselines(cfg, _data(data), "test")}


def zero_std_steps(metrics: Mapping[str, Any]) -> dict[str, int]:
    """GRPO steps whose every group had identical rewards (no advantage, no gradient), from its metrics."""
    hist = [h for h in metrics["history"] if "reward" in h]
    return {"steps": len(hist), "all_zero_std": sum(h.get("frac_reward_zero_std", 0.0) >= 1.0 for h in hist)}


def train_stage(spec: TrainSpec, data: DataConfig) -> dict[str, Any]:
    """Run the stage into ``spec.out_dir`` (resuming its checkpoints): the final folder and the metrics."""
    from mercato.reczero.trainer import RecZeroTrainer

    trainer = RecZeroTrainer(dataclasses.replace(spec.cfg, method=spec.method), _data(data), spec.out_dir)
    if spec.stage == "sft":
        out = trainer.sft()
    elif spec.stage == "grpo":
        out = trainer.grpo(init=str(final_dir(spec.init)) if spec.init is not None else None)
    else:
        raise ValueError(f"TrainSpec.stage must be 'sft' or 'grpo', got {spec.stage!r}")
    metrics = json.loads((Path(spec.out_dir) / spec.stage / "metrics.json").read_text())
    return {"dir": str(out), "metrics": metrics}


def eval_stage(spec: EvalSpec, data: DataConfig) -> dict[str, Any]:
    """MAE, RMSE, format validity, fallback rate, tokens per answer and tokens/s of one model on one split."""
    from mercato.llm.loading import load_policy
    from mercato.reczero.trainer import evaluate_policy

    d = _data(data)
    source = str(final_dir(spec.model)) if isinstance(spec.model, TrainSpec) else spec.model
    policy = load_policy(source, device=spec.cfg.device)
    examples = d.test if spec.split == "test" else d.valid
    res, texts = evaluate_policy(spec.name, policy, examples, spec.cfg, d.global_mean)
    row = res.row()
    row["samples"] = texts[:3]
    return row


def weight_change(spec: WeightSpec, _: Any) -> dict[str, Any]:
    """How far training moved the weights: tensors changed, max |delta|, max relative Frobenius change."""
    import torch
    from safetensors.torch import load_file

    def tensors(folder: Path) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for f in sorted(folder.glob("*.safetensors")):
            out.update(load_file(str(f)))
        return out

    a, b = tensors(final_dir(spec.before)), tensors(final_dir(spec.after))
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


def speed_compare(spec: SpeedSpec, data: DataConfig) -> dict[str, Any]:
    """Same model, batch, steps and seed: TRL's stock GRPOTrainer vs mercato's glue (all weights trainable)."""
    import torch
    from datasets import Dataset
    from trl import GRPOTrainer

    from mercato.core.seed import seed_everything
    from mercato.llm.grpo import GRPOSettings, StepTimer, build_grpo_trainer, make_grpo_args
    from mercato.llm.loading import load_policy
    from mercato.reczero.data import examples_to_rows
    from mercato.reczero.rewards import answer_reward, format_reward, trl_reward_functions

    cfg = spec.cfg
    rows = examples_to_rows(_data(data).train[:16])
    settings = GRPOSettings(
        output_dir=str(Path(spec.out_dir) / "speed_ours"),
        steps=spec.steps,
        num_generations=spec.generations,
        prompts_per_step=1,
        learning_rate=1e-6,
        max_completion_length=spec.max_completion_length,
        seed=cfg.seed,
    )
    reward_cfg = cfg.reward

    def stock_format(prompts: list[Any], completions: list[Any], **kw: Any) -> list[float | None]:
        return [format_reward(c[0]["content"], reward_cfg) for c in completions]

    def stock_answer(
        prompts: list[Any], completions: list[Any], rating: list[float], **kw: Any
    ) -> list[float | None]:
        return [
            answer_reward(c[0]["content"], r, reward_cfg) for c, r in zip(completions, rating, strict=True)
        ]

    timings: dict[str, list[float]] = {}
    for which in ("stock", "ours"):
        seed_everything(cfg.seed)
        policy = load_policy(cfg.model, device=cfg.device)
        timer = StepTimer()
        if which == "stock":
            args = make_grpo_args(
                dataclasses.replace(settings, output_dir=str(Path(spec.out_dir) / "speed_stock"))
            )
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
        "steps": spec.steps,
        "stock": stock,
        "ours": ours,
        "stock_mean": float(np.mean(stock)),
        "ours_mean": float(np.mean(ours)),
        "ratio": float(np.mean(ours) / np.mean(stock)),
        "setup": f"{cfg.model}, {spec.generations} completions x 1 prompt, max {spec.max_completion_length} new "
        f"tokens, all weights trainable, seed {cfg.seed}, {torch.get_num_threads()} torch thread(s)",
    }


# --------------------------------------------------------------------------------------- status row
def parse_results_table(markdown: str) -> dict[str, dict[str, float | None]]:
    """The method rows of a ``reczero-results`` table: ``{method: {mae, rmse, valid_format}}``."""
    out: dict[str, dict[str, float | None]] = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or cells[0] in ("method", "---"):
            continue

        def num(text: str) -> float | None:
            return None if text in ("—", "", "not run") else float(text)

        out[cells[0]] = {"mae": num(cells[1]), "rmse": num(cells[2]), "valid_format": num(cells[4])}
    return out


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("mae", "rmse", "valid_format"))


def readme_row(ev: Mapping[str, Mapping[str, Any]], model: str, where: str = "CPU") -> str:
    """The README status row of RecZero / RecOne, rendered from the evaluation rows (what the table says)."""
    say: list[str] = []
    sft, recone, zero, rz = (ev.get(k) for k in ("SFT-only", "RecOne", "zero-shot", "RecZero"))
    if sft and recone:
        rel = (recone["mae"] - sft["mae"]) / sft["mae"]
        met = rel <= -0.05 and (recone.get("valid_format") or 0.0) >= 0.98
        say.append(
            f"RecOne {'meets' if met else 'misses'} the paper's goal over SFT-only (MAE {recone['mae']:.3f} vs "
            f"{sft['mae']:.3f}, format valid on {100 * (recone.get('valid_format') or 0.0):.0f} % of answers)"
        )
        gm = ev.get("global mean")
        if gm and sft["mae"] > gm["mae"]:
            say.append(f"SFT-only is worse than the global mean (MAE {sft['mae']:.3f} vs {gm['mae']:.3f})")
    if rz and zero:
        if _same(rz, zero):
            say.append(
                "pure-RL RecZero learned nothing: its row equals zero-shot "
                f"(format valid on {100 * (rz.get('valid_format') or 0.0):.0f} % of answers)"
            )
        else:
            say.append(f"RecZero MAE {rz['mae']:.3f} vs zero-shot {zero['mae']:.3f}")
    llm = [ev[k]["mae"] for k in ("zero-shot", "SFT-only", "RecZero", "RecOne") if k in ev]
    classic = {k: ev[k]["mae"] for k in ("user+item bias", "MF") if k in ev}
    if llm and classic and max(classic.values()) < min(llm):
        say.append("the classical baselines (user+item bias, MF) have a lower MAE than every LLM row")
    return (
        "| RecZero / RecOne | `mercato.reczero`, `mercato.llm` | LLM rating prediction trained with GRPO (and SFT "
        f"cold start) on a think-before-recommend template | implemented and tested; with `{model}` on {where}, "
        + ("; ".join(say) or "no LLM row measured yet")
        + " ([docs/reczero.md](docs/reczero.md)) |"
    )

"""RecZero / RecOne training and evaluation: sequences the stages, nothing more.

* RecZero: GRPO from the base model with the rule-based reward (format + graded answer).
* RecOne: SFT cold start on rationales (template-built offline, or an OpenAI-compatible teacher), then the
  same GRPO stage from the SFT model.

Every stage writes into ``<run_dir>/<stage>/``: TRL ``checkpoint-N`` folders while it runs, then ``final/``
(a Hugging Face model folder, written under a temporary name and renamed) and ``metrics.json``. Re-running
the same command skips finished stages and resumes an unfinished one from its newest checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mercato.core.metrics import mae, rmse
from mercato.core.runs import atomic_dir, atomic_write_json
from mercato.core.seed import seed_everything
from mercato.llm.generation import generate_chat
from mercato.llm.grpo import GRPOSettings, MetricsRecorder, StepTimer, build_grpo_trainer, train_resumable
from mercato.llm.loading import Policy, load_policy
from mercato.llm.rewards import completion_text
from mercato.llm.sft import SFTSettings, build_sft_trainer, freeze_lower_layers
from mercato.reczero.config import RecZeroConfig, RewardConfig
from mercato.reczero.data import RecZeroData, examples_to_rows
from mercato.reczero.prompts import RatingExample, build_messages, template_rationale
from mercato.reczero.rewards import (
    answer_reward,
    is_valid_format,
    parse_rating,
    predict_ratings,
    trl_reward_functions,
)

logger = logging.getLogger(__name__)

__all__ = [
    "EvalResult",
    "RecZeroTrainer",
    "RolloutTracker",
    "evaluate_policy",
    "evaluate_predictions",
    "sft_rows",
    "teacher_rationale",
]


@dataclass
class EvalResult:
    """Rating-prediction metrics of one method on one split."""

    name: str
    mae: float
    rmse: float
    n: int
    valid_format: float = float("nan")  # fraction of answers in the full four-tag format
    fallback_rate: float = float("nan")  # fraction whose rating was unparsable (fallback used)
    tokens_per_answer: float = float("nan")
    tokens_per_s: float = float("nan")
    seconds: float = 0.0
    predictions: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """A flat dict for tables and JSON (without the predictions)."""
        return {k: v for k, v in self.__dict__.items() if k != "predictions"}


def evaluate_predictions(name: str, examples: Sequence[RatingExample], preds: Sequence[float]) -> EvalResult:
    """MAE / RMSE of ``preds`` against the examples' ratings."""
    y = [e.rating for e in examples]
    return EvalResult(name=name, mae=mae(y, preds), rmse=rmse(y, preds), n=len(y), predictions=list(preds))


def score_baselines(cfg: RecZeroConfig, data: RecZeroData, split: str = "test") -> list[dict[str, Any]]:
    """Fit global mean, user+item bias and MF on the ratings before ``split`` and score its examples."""
    from mercato.reczero.baselines import BiasBaseline, GlobalMean, MatrixFactorization

    df = data.ratings
    examples = data.test if split == "test" else data.valid
    fit = df[df["part"].isin(["train", "valid"] if split == "test" else ["train"])]
    b = cfg.baselines
    models: dict[str, Any] = {
        "global mean": GlobalMean(),
        "user+item bias": BiasBaseline(reg=b.bias_reg),
        "MF": MatrixFactorization(dim=b.mf_dim, epochs=b.mf_epochs, lr=b.mf_lr, reg=b.mf_reg, seed=cfg.seed),
    }
    users, items = [e.user_id for e in examples], [e.item_id for e in examples]
    rows = []
    for name, model in models.items():
        model.fit(fit[["user_id", "item_id", "rating"]])
        rows.append(evaluate_predictions(name, examples, model.predict(users, items).tolist()).row())
    return rows


def _fallbacks(examples: Sequence[RatingExample], how: str, global_mean: float) -> list[float]:
    if how == "user_mean":
        return [e.user_mean for e in examples]
    if how == "item_mean":
        return [e.item_mean for e in examples]
    return [global_mean] * len(examples)


def evaluate_policy(
    name: str,
    policy: Policy,
    examples: Sequence[RatingExample],
    cfg: RecZeroConfig,
    global_mean: float,
) -> tuple[EvalResult, list[str]]:
    """Generate an answer per example, parse the ratings (counted fallback), and score them."""
    gen = generate_chat(
        policy.model,
        policy.tokenizer,
        [build_messages(e) for e in examples],
        max_new_tokens=cfg.eval.max_new_tokens,
        batch_size=cfg.eval.batch_size,
        temperature=cfg.eval.temperature,
        seed=cfg.seed,
        desc=f"eval {name}",
    )
    parsed = predict_ratings(gen.texts, _fallbacks(examples, cfg.eval.fallback, global_mean), cfg.reward)
    res = evaluate_predictions(name, examples, parsed.predictions)
    res.valid_format = parsed.valid_rate
    res.fallback_rate = parsed.fallback_rate
    res.tokens_per_answer = gen.mean_tokens
    res.tokens_per_s = gen.tokens_per_s
    res.seconds = gen.seconds
    return res, gen.texts


def teacher_rationale(
    ex: RatingExample, url: str, model: str, reward: RewardConfig, timeout: float = 120.0
) -> str | None:
    """Ask an OpenAI-compatible chat endpoint for a four-stage rationale; bias-correct it with the truth.

    As in RecOne (Sec. 3.2.1): if the teacher's rating misses the truth by more than 0.5, it is told the true
    rating and asked to rewrite a consistent rationale. Returns None if no valid answer came back.
    """

    def ask(messages: list[dict[str, str]]) -> str:
        body = json.dumps({"model": model, "messages": messages, "temperature": 0.6}).encode()
        req = urllib.request.Request(
            url.rstrip("/") + "/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - user-given endpoint
            return str(json.loads(resp.read())["choices"][0]["message"]["content"])

    messages = build_messages(ex)
    text = ask(messages)
    pred = parse_rating(text, reward.rating_min, reward.rating_max)
    if pred is None or abs(pred - ex.rating) > 0.5:
        fix = (
            f"The user's true rating is {ex.rating:g}. Rewrite your four steps so that the reasoning is consistent "
            f"with it and <rate> gives {ex.rating:g}."
        )
        text = ask(messages + [{"role": "assistant", "content": text}, {"role": "user", "content": fix}])
    return text if is_valid_format(text, reward) else None


def sft_rows(examples: Sequence[RatingExample], cfg: RecZeroConfig) -> tuple[list[dict[str, Any]], int]:
    """Prompt-completion rows for the cold start; returns the rows and how many fell back to the template."""
    rows, fallbacks = [], 0
    for ex in examples:
        text = None
        if cfg.sft.rationale == "teacher":
            if not cfg.sft.teacher_url or not cfg.sft.teacher_model:
                raise ValueError("sft.rationale=teacher needs sft.teacher_url and sft.teacher_model")
            try:
                text = teacher_rationale(ex, cfg.sft.teacher_url, cfg.sft.teacher_model, cfg.reward)
            except OSError as err:
                logger.warning("teacher call failed (%s); using the template rationale", err)
            fallbacks += text is None
        if text is None:
            text = template_rationale(ex)
        rows.append({"prompt": build_messages(ex), "completion": [{"role": "assistant", "content": text}]})
    return rows, fallbacks


class RolloutTracker:
    """Wraps the answer reward to record, per GRPO step, the rollouts' MAE (fallback: user mean) and validity."""

    def __init__(self, reward: RewardConfig) -> None:
        self.reward = reward
        self.mae: list[float] = []
        self.valid: list[float] = []

    def reward_fn(self) -> Callable[..., list[float]]:
        """A TRL reward function (the answer reward) that also records the step's rollout statistics."""

        def answer_reward_tracked(
            prompts: list[Any], completions: list[Any], rating: list[float], user_mean: list[float], **_: Any
        ) -> list[float]:
            texts = [completion_text(c) for c in completions]
            parsed = predict_ratings(texts, user_mean, self.reward)
            self.mae.append(float(np.mean(np.abs(np.asarray(parsed.predictions) - np.asarray(rating)))))
            self.valid.append(parsed.valid_rate)
            return [answer_reward(t, r, self.reward) for t, r in zip(texts, rating)]

        return answer_reward_tracked


def _save_final(policy: Policy, target: Path) -> None:
    with atomic_dir(target) as tmp:
        policy.model.save_pretrained(str(tmp))
        policy.tokenizer.save_pretrained(str(tmp))


class RecZeroTrainer:
    """Runs the stages of ``cfg.method`` in ``run_dir``; each stage is skipped if finished, resumed if not."""

    def __init__(self, cfg: RecZeroConfig, data: RecZeroData, run_dir: str | Path) -> None:
        self.cfg, self.data, self.run_dir = cfg, data, Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)

    def stage_dir(self, stage: str) -> Path:
        """``<run_dir>/<stage>``."""
        return self.run_dir / stage

    def final_dir(self, stage: str) -> Path:
        """The finished model folder of ``stage`` (exists only when the stage completed)."""
        return self.stage_dir(stage) / "final"

    def _done(self, stage: str) -> bool:
        return (self.final_dir(stage) / "config.json").is_file()

    def sft(self, base: str | None = None) -> Path:
        """RecOne cold start: SFT ``base`` (default ``cfg.model``) on template/teacher rationales."""
        if self._done("sft"):
            logger.info("sft: already finished (%s)", self.final_dir("sft"))
            return self.final_dir("sft")
        seed_everything(self.cfg.seed)
        c = self.cfg.sft
        out = self.stage_dir("sft")
        out.mkdir(parents=True, exist_ok=True)
        rows, n_fallback = sft_rows(self.data.train[: c.num_examples], self.cfg)
        policy = load_policy(base or self.cfg.model, device=self.cfg.device)
        n_train = freeze_lower_layers(policy.model, c.trainable_layers)
        recorder = MetricsRecorder()
        settings = SFTSettings(
            output_dir=str(out),
            epochs=c.epochs,
            learning_rate=c.learning_rate,
            lr_scheduler=c.lr_scheduler,
            batch_size=c.batch_size,
            grad_accum=c.grad_accum,
            max_length=c.max_length,
            save_steps=c.save_steps,
            seed=self.cfg.seed,
        )
        trainer = build_sft_trainer(policy.model, policy.tokenizer, rows, settings, callbacks=[recorder])
        train_resumable(trainer)
        freeze_lower_layers(policy.model, 0)
        _save_final(policy, self.final_dir("sft"))
        atomic_write_json(
            out / "metrics.json",
            {
                "history": recorder.history,
                "rows": len(rows),
                "teacher_fallbacks": n_fallback,
                "trainable": n_train,
            },
        )
        return self.final_dir("sft")

    def grpo(self, init: str | None = None, stage: str = "grpo") -> Path:
        """GRPO from ``init`` (a model folder; default ``cfg.model``) with the RecZero reward."""
        if self._done(stage):
            logger.info("%s: already finished (%s)", stage, self.final_dir(stage))
            return self.final_dir(stage)
        seed_everything(self.cfg.seed)
        g = self.cfg.grpo
        out = self.stage_dir(stage)
        out.mkdir(parents=True, exist_ok=True)
        policy = load_policy(init or self.cfg.model, device=self.cfg.device)
        n_train = freeze_lower_layers(policy.model, g.trainable_layers)
        tracker, recorder, timer = RolloutTracker(self.cfg.reward), MetricsRecorder(), StepTimer()
        fmt, _ = trl_reward_functions(self.cfg.reward)
        settings = GRPOSettings(
            output_dir=str(out),
            steps=g.steps,
            num_generations=g.num_generations,
            prompts_per_step=g.prompts_per_step,
            learning_rate=g.learning_rate,
            temperature=g.temperature,
            beta=g.beta,
            epsilon=g.epsilon,
            loss_type=g.loss_type,
            scale_rewards=g.scale_rewards,
            max_completion_length=g.max_completion_length,
            save_steps=g.save_steps,
            seed=self.cfg.seed,
        )
        trainer = build_grpo_trainer(
            policy.model,
            policy.tokenizer,
            [fmt, tracker.reward_fn()],
            examples_to_rows(self.data.train),
            settings,
            callbacks=[recorder, timer],
        )
        train_resumable(trainer)
        freeze_lower_layers(policy.model, 0)
        _save_final(policy, self.final_dir(stage))
        atomic_write_json(
            out / "metrics.json",
            {
                "history": recorder.history,
                "rollout_mae": tracker.mae,
                "rollout_valid": tracker.valid,
                "step_times": timer.step_times,
                "trainable": n_train,
            },
        )
        return self.final_dir(stage)

    def run(self) -> Path:
        """All stages of ``cfg.method``; returns the final model folder."""
        if self.cfg.method == "recone":
            return self.grpo(init=str(self.sft()))
        return self.grpo()

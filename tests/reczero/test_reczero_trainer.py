"""Trainer sequencing, evaluation, cold-start rows and the optional teacher, with a tiny random model."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mercato.core.config import load_config
from mercato.llm.loading import load_policy
from mercato.reczero.config import DataConfig, RecZeroConfig
from mercato.reczero.data import build_data
from mercato.reczero.prompts import template_rationale
from mercato.reczero.rewards import is_valid_format
from mercato.reczero.trainer import RecZeroTrainer, RolloutTracker, evaluate_policy, sft_rows


def _toy_data():
    rows = []
    for u in range(1, 9):
        for k in range(10):
            rows.append(
                {"user_id": u, "item_id": (u + k) % 15 + 1, "rating": float((u * k) % 5 + 1), "timestamp": k}
            )
    items = pd.DataFrame(
        {"item_id": range(1, 16), "title": [f"M{i}" for i in range(1, 16)], "year": 2000, "genres": "Drama"}
    )
    cfg = DataConfig(num_test_users=4, num_val_users=2, num_train_prompts=8, min_history=2, history_len=2)
    return build_data(cfg, pd.DataFrame(rows), items)


def _tiny_cfg(**over: object) -> RecZeroConfig:
    args = [
        "--model", "tiny", "--device", "cpu",
        "--sft.num-examples", "4", "--sft.batch-size", "4", "--sft.save-steps", "1",
        "--grpo.steps", "2", "--grpo.num-generations", "2", "--grpo.prompts-per-step", "1",
        "--grpo.max-completion-length", "6", "--grpo.save-steps", "1",
        "--eval.max-new-tokens", "4",
    ]  # fmt: skip
    for k, v in over.items():
        args += [f"--{k}", str(v)]
    return load_config(RecZeroConfig, overrides=args)


def test_evaluate_policy_counts_fallbacks_for_a_random_model():
    data = _toy_data()
    cfg = _tiny_cfg()
    res, texts = evaluate_policy("tiny", load_policy("tiny", device="cpu"), data.test, cfg, data.global_mean)
    assert res.n == len(texts) == 4
    assert res.fallback_rate == 1.0 and res.valid_format == 0.0  # random bytes never parse
    assert res.predictions == [e.user_mean for e in data.test]
    assert 0 < res.tokens_per_answer <= 4


def test_sft_rows_use_valid_template_rationales():
    data = _toy_data()
    rows, fallbacks = sft_rows(data.train[:3], _tiny_cfg())
    assert fallbacks == 0 and len(rows) == 3
    text = rows[0]["completion"][0]["content"]
    assert text == template_rationale(data.train[0]) and is_valid_format(text)


def test_teacher_is_bias_corrected_and_falls_back(monkeypatch):
    import mercato.reczero.trainer as tr

    data = _toy_data()
    ex = data.train[0]
    calls: list[list[dict[str, str]]] = []
    wrong = template_rationale(ex, rating=1.0 if ex.rating > 2 else 5.0)
    right = template_rationale(ex)

    def fake_ask(req, timeout):  # noqa: ANN001
        body = json.loads(req.data)
        calls.append(body["messages"])
        answer = wrong if len(calls) == 1 else right

        class R:
            def __enter__(self):
                return self

            def __exit__(self, *a):
                return False

            def read(self):
                return json.dumps({"choices": [{"message": {"content": answer}}]}).encode()

        return R()

    monkeypatch.setattr(tr.urllib.request, "urlopen", fake_ask)
    cfg = _tiny_cfg(
        **{"sft.rationale": "teacher", "sft.teacher-url": "http://x/v1", "sft.teacher-model": "t"}
    )
    rows, fallbacks = sft_rows([ex], cfg)
    assert len(calls) == 2 and f"true rating is {ex.rating:g}" in calls[1][-1]["content"]
    assert rows[0]["completion"][0]["content"] == right and fallbacks == 0


def test_rollout_tracker_records_mae_and_validity():
    tracker = RolloutTracker(_tiny_cfg().reward)
    fn = tracker.reward_fn()
    good = template_rationale(_toy_data().train[0], rating=4.0)
    out = fn(["p", "p"], [good, "junk"], rating=[5.0, 3.0], user_mean=[3.5, 3.5])
    assert out == [0.75, 0.0]
    assert tracker.mae == [pytest.approx((1.0 + 0.5) / 2)] and tracker.valid == [0.5]


@pytest.mark.integration  # two real TRL stages with a tiny model: ~10-30 s on 2 shared cores
def test_recone_runs_sft_then_grpo_and_resumes(tmp_path: Path):
    data = _toy_data()
    trainer = RecZeroTrainer(_tiny_cfg(), data, tmp_path)
    final = trainer.run()
    assert (final / "config.json").is_file() and (tmp_path / "sft" / "final" / "config.json").is_file()
    metrics = json.loads((tmp_path / "grpo" / "metrics.json").read_text())
    assert len(metrics["step_times"]) == 2 and len(metrics["rollout_mae"]) == 2
    assert any("reward" in h for h in metrics["history"])
    stamp = (final / "config.json").stat().st_mtime
    assert trainer.run() == final and (final / "config.json").stat().st_mtime == stamp  # finished: skipped
    # an interrupted GRPO stage resumes from its newest checkpoint
    import shutil

    shutil.rmtree(final)
    again = RecZeroTrainer(_tiny_cfg(**{"grpo.steps": 3}), data, tmp_path)
    again.grpo(init=str(tmp_path / "sft" / "final"))
    metrics = json.loads((tmp_path / "grpo" / "metrics.json").read_text())
    assert len(metrics["step_times"]) == 1  # only step 3 ran; steps 1-2 came from checkpoint-2

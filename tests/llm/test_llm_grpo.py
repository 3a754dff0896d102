"""One GRPO / SFT step with a tiny random Llama through TRL (CPU, no files, no network)."""

from __future__ import annotations

import pytest
import torch

from mercato.llm.advantages import group_relative_advantages
from mercato.llm.grpo import GRPOSettings, MetricsRecorder, StepTimer, build_grpo_trainer, last_checkpoint
from mercato.llm.loading import tiny_random_model, tiny_tokenizer
from mercato.llm.rewards import as_trl_reward
from mercato.llm.sft import SFTSettings, build_sft_trainer, freeze_lower_layers


def _byte_sum_reward(text: str, target: float) -> float:
    return float(sum(text.encode()) % 7) / 7.0 - target


@pytest.mark.integration  # a real TRL GRPO step: ~5-15 s on 2 shared cores
def test_one_grpo_step_changes_parameters_logs_rewards_and_matches_advantages(tmp_path):
    tok = tiny_tokenizer()
    model = tiny_random_model(tokenizer=tok)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rows = [{"prompt": [{"role": "user", "content": f"rate {i}"}], "target": 0.1 * i} for i in range(4)]
    recorder, timer = MetricsRecorder(), StepTimer()
    settings = GRPOSettings(
        output_dir=str(tmp_path),
        steps=1,
        num_generations=4,
        prompts_per_step=2,
        learning_rate=1e-2,
        max_completion_length=8,
        extra={"disable_tqdm": True},
    )
    trainer = build_grpo_trainer(
        model, tok, [as_trl_reward(_byte_sum_reward, "bytes")], rows, settings, callbacks=[recorder, timer]
    )
    trainer.train()
    changed = [n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert len(changed) == len(before), f"unchanged: {set(before) - set(changed)}"
    logged = {k for row in recorder.history for k in row}
    assert "rewards/bytes/mean" in logged and "reward" in logged
    assert len(timer.step_times) == 1 and timer.step_times[0] > 0
    # Oracle: TRL's in-trainer advantages equal our pure function on the rewards it logged.
    rewards = torch.tensor(list(trainer._logs["rewards"]["bytes"]))
    trl_adv = torch.tensor(list(trainer._logs["advantages"]))
    assert rewards.numel() == 8
    torch.testing.assert_close(group_relative_advantages(rewards, 4), trl_adv, atol=1e-4, rtol=1e-4)
    assert last_checkpoint(tmp_path) is None


@pytest.mark.integration  # a real TRL SFT step: 2-10 s on 2 shared cores
def test_one_sft_step_changes_trainable_parameters_only(tmp_path):
    tok = tiny_tokenizer()
    model = tiny_random_model(tokenizer=tok)
    n_trainable = freeze_lower_layers(model, 1)
    assert 0 < n_trainable < sum(p.numel() for p in model.parameters())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    rows = [
        {
            "prompt": [{"role": "user", "content": f"q{i}"}],
            "completion": [{"role": "assistant", "content": f"<rate>{i % 5 + 1}</rate>"}],
        }
        for i in range(4)
    ]
    settings = SFTSettings(
        output_dir=str(tmp_path), max_steps=1, batch_size=4, learning_rate=1e-2, extra={"disable_tqdm": True}
    )
    trainer = build_sft_trainer(model, tok, rows, settings)
    out = trainer.train()
    assert torch.isfinite(torch.tensor(out.training_loss))
    for n, p in model.named_parameters():
        moved = not torch.equal(p.detach(), before[n])
        assert moved == p.requires_grad, n

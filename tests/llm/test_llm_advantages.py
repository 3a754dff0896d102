"""Group-relative advantages (GRPO, DeepSeekMath Sec. 4.1) and the clipped surrogate, hand-computed."""

from __future__ import annotations

import math

import pytest
import torch

from mercato.llm.advantages import clipped_surrogate_loss, group_relative_advantages, group_reward_std


def _loop_advantages(rewards: list[float], g: int, eps: float = 1e-4) -> list[float]:
    out = []
    for start in range(0, len(rewards), g):
        grp = rewards[start : start + g]
        mean = sum(grp) / g
        std = math.sqrt(sum((r - mean) ** 2 for r in grp) / (g - 1))
        out += [(r - mean) / (std + eps) for r in grp]
    return out


def test_hand_computed_group_of_three():
    # rewards 1, 2, 3: mean 2, Bessel std 1 -> advantages -1, 0, 1 (divided by 1 + eps)
    adv = group_relative_advantages([1.0, 2.0, 3.0], group_size=3)
    torch.testing.assert_close(adv, torch.tensor([-1.0, 0.0, 1.0]) / (1 + 1e-4))


def test_vectorised_equals_python_loop():
    gen = torch.Generator().manual_seed(0)
    rewards = torch.rand(24, generator=gen).tolist()
    for g in (2, 3, 4, 8):
        torch.testing.assert_close(
            group_relative_advantages(rewards, g),
            torch.tensor(_loop_advantages(rewards, g)),
            atol=1e-5,
            rtol=1e-5,
        )


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_zero_mean_per_group(scale):
    rewards = torch.tensor([0.5, -0.5, 1.25, 0.0, 3.0, 2.0, 2.0, 1.0])
    adv = group_relative_advantages(rewards, group_size=4, scale=scale).view(2, 4)
    torch.testing.assert_close(adv.sum(dim=1), torch.zeros(2), atol=1e-5, rtol=0)


def test_equal_rewards_give_zero_advantage_not_nan():
    adv = group_relative_advantages([-0.5] * 4 + [1.0, 0.0, 1.0, 0.0], group_size=4)
    assert torch.isfinite(adv).all()
    assert torch.equal(adv[:4], torch.zeros(4))
    assert (adv[4:] != 0).all()


def test_batch_scale_uses_one_std():
    r = [0.0, 2.0, 10.0, 14.0]
    adv = group_relative_advantages(r, 2, scale="batch")
    std = torch.tensor(r).std(unbiased=True)
    torch.testing.assert_close(adv, torch.tensor([-1.0, 1.0, -2.0, 2.0]) / (std + 1e-4))


def test_group_std_and_bad_shapes():
    torch.testing.assert_close(group_reward_std([1.0, 3.0, 5.0, 5.0], 2), torch.tensor([math.sqrt(2.0), 0.0]))
    with pytest.raises(ValueError, match="groups of 3"):
        group_relative_advantages([1.0, 2.0, 3.0, 4.0], 3)
    with pytest.raises(ValueError, match="scale"):
        group_relative_advantages([1.0, 2.0], 2, scale="bogus")  # type: ignore[arg-type]


def test_clipped_surrogate_hand_example():
    # ratio exp(0.5) = 1.6487 > 1.2 with A = +1 -> clipped to 1.2; ratio 1 with A = -2 -> -2 -> loss +2
    logp_old = torch.zeros(2, 2)
    logp_new = torch.tensor([[0.5, 0.0], [0.0, 0.0]])
    adv = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[1, 1], [1, 0]])
    loss = clipped_surrogate_loss(logp_new, logp_old, adv, mask, epsilon=0.2)
    expected = -(1.2 + 1.0 - 2.0) / 3
    assert loss.item() == pytest.approx(expected, abs=1e-6)

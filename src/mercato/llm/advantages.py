"""Group-relative advantages and the clipped GRPO surrogate, as small pure functions.

GRPO (Shao et al., 2024, "DeepSeekMath", arXiv 2402.03300, Sec. 4.1): for each prompt, sample a group of G
completions with rewards r_1..r_G; the advantage of completion i is

    Â_i = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps)          (outcome supervision, Eq. 3 of RecZero's GRPO)

RecZero (arXiv 2510.23077, Sec. 3) uses exactly this estimator with a PPO-clipped ratio objective and no KL term.
The statistics here follow TRL 1.16 ``GRPOTrainer`` (``scale_rewards`` = ``"group"``, ``"batch"`` or ``"none"``;
Bessel-corrected std; eps = 1e-4), so these functions are an oracle for what TRL computes inside its trainer
(see ``tests/llm/test_grpo.py``). Rewards are laid out group-major: ``rewards[g * G + i]`` is completion i of
prompt g, as in TRL.

Examples:
    >>> group_relative_advantages([1.0, 0.0, 2.0, 2.0], group_size=2, scale="none").tolist()
    [0.5, -0.5, 0.0, 0.0]
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["clipped_surrogate_loss", "group_relative_advantages", "group_reward_std"]

Scale = Literal["group", "batch", "none"]


def _as_groups(rewards: torch.Tensor | list[float], group_size: int) -> torch.Tensor:
    r = torch.as_tensor(rewards, dtype=torch.float32).reshape(-1)
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if r.numel() % group_size != 0:
        raise ValueError(f"{r.numel()} rewards cannot be split into groups of {group_size}")
    return r.view(-1, group_size)  # (num_prompts, G)


def group_reward_std(rewards: torch.Tensor | list[float], group_size: int) -> torch.Tensor:
    """Bessel-corrected std of each group's rewards, shape (num_prompts,); 0 for a group of one."""
    groups = _as_groups(rewards, group_size)  # (P, G)
    if group_size == 1:
        return torch.zeros(groups.shape[0])
    return groups.std(dim=1, unbiased=True)  # (P,)


def group_relative_advantages(
    rewards: torch.Tensor | list[float],
    group_size: int,
    scale: Scale = "group",
    eps: float = 1e-4,
) -> torch.Tensor:
    """GRPO advantages Â_i = (r_i - mean_group) / (std + eps), flattened like ``rewards``.

    Args:
        rewards: (P * G,) total reward of each completion, group-major.
        group_size: G, completions per prompt.
        scale: ``"group"`` divides by the group's std (GRPO), ``"batch"`` by the std over the whole batch
            (a cross-group scale, as in Dr. GRPO / TRL ``scale_rewards="batch"``), ``"none"`` only centres.
        eps: added to the std so that equal rewards give 0, not NaN.

    Returns:
        (P * G,) advantages; every group sums to zero, and a group of equal rewards gets all zeros.
    """
    groups = _as_groups(rewards, group_size)  # (P, G)
    centred = groups - groups.mean(dim=1, keepdim=True)  # (P, G)
    if scale == "none":
        return centred.reshape(-1)
    if scale == "group":
        std = group_reward_std(groups, group_size).unsqueeze(1)  # (P, 1)
    elif scale == "batch":
        flat = groups.reshape(-1)
        std = flat.std(unbiased=True) if flat.numel() > 1 else torch.zeros(())
    else:
        raise ValueError(f"scale must be 'group', 'batch' or 'none', got {scale!r}")
    return (centred / (std + eps)).reshape(-1)


def clipped_surrogate_loss(
    logp_new: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    epsilon: float = 0.2,
) -> torch.Tensor:
    """PPO-clipped GRPO objective (negated, to minimise), averaged over all unmasked tokens of the batch.

    L = - sum_{i,t} min(rho_{i,t} Â_i, clip(rho_{i,t}, 1-eps, 1+eps) Â_i) / sum_{i,t} mask_{i,t},
    rho_{i,t} = exp(logp_new - logp_old). Token-level normalisation is TRL's ``loss_type="dapo"``/"bnpo" on one
    process. KL is omitted (beta = 0, as in RecZero).

    Args:
        logp_new: (B, T) log-probabilities of the sampled tokens under the current policy.
        logp_old: (B, T) the same under the sampling policy (detached).
        advantages: (B,) one advantage per completion.
        mask: (B, T) 1 for completion tokens, 0 for padding.
        epsilon: clip range.
    """
    ratio = torch.exp(logp_new - logp_old)  # (B, T)
    adv = advantages.unsqueeze(1)  # (B, 1)
    per_token = -torch.minimum(ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv)  # (B, T)
    m = mask.to(per_token.dtype)
    return (per_token * m).sum() / m.sum().clamp(min=1.0)

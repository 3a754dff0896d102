"""Batched chat generation with token accounting (tokens per answer, tokens/s).

Prompts are chat message lists rendered with the tokenizer's chat template, left-padded into batches and
decoded with ``model.generate``. Each answer's token count stops at the first EOS/pad token, so
"tokens per answer" and "tokens/s" count real answer tokens, not padding.

Examples:
    >>> from mercato.llm.loading import load_policy
    >>> p = load_policy("tiny", device="cpu")
    >>> out = generate_chat(p.model, p.tokenizer, [[{"role": "user", "content": "hi"}]], max_new_tokens=4)
    >>> len(out.texts), out.num_tokens[0] <= 4
    (1, True)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mercato.core.progress import progress

logger = logging.getLogger(__name__)

__all__ = ["GenerationResult", "count_answer_tokens", "generate_chat", "render_chat"]

Messages = list[dict[str, str]]


@dataclass
class GenerationResult:
    """Decoded answers, their token counts and the wall time spent generating."""

    texts: list[str]
    num_tokens: list[int]
    seconds: float
    prompt_tokens: list[int] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        """Generated (answer) tokens per second of wall time."""
        return sum(self.num_tokens) / self.seconds if self.seconds > 0 else 0.0

    @property
    def mean_tokens(self) -> float:
        """Mean answer length in tokens."""
        return sum(self.num_tokens) / len(self.num_tokens) if self.num_tokens else 0.0


def render_chat(tokenizer: Any, messages: Messages, prefill: str = "") -> str:
    """The chat-template text of ``messages`` with the assistant turn opened (plus an optional prefill)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return str(text) + prefill


def count_answer_tokens(ids: torch.Tensor, stop_ids: Sequence[int]) -> list[int]:
    """Tokens before (and including) the first stop token in each row of ``ids`` (B, T); T if none."""
    if ids.numel() == 0:
        return [0] * ids.shape[0]
    stop = torch.zeros_like(ids, dtype=torch.bool)
    for s in stop_ids:
        stop |= ids == s
    has = stop.any(dim=1)  # (B,)
    first = stop.int().argmax(dim=1)  # (B,) index of the first stop token
    counts = torch.where(has, first + 1, torch.full_like(first, ids.shape[1]))
    return [int(c) for c in counts]


@torch.no_grad()
def generate_chat(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Messages],
    max_new_tokens: int = 64,
    batch_size: int = 16,
    temperature: float = 0.0,
    top_p: float = 1.0,
    prefill: str = "",
    seed: int | None = None,
    desc: str = "generate",
) -> GenerationResult:
    """Generate one answer per chat prompt, in left-padded batches, greedily when ``temperature == 0``.

    Args:
        prompts: chat message lists (``[{"role": "system"|"user", "content": ...}, ...]``).
        prefill: text appended after the assistant header and prepended to every returned answer
            (e.g. an opening tag); its tokens are not counted as generated.
        seed: seeds sampling for reproducibility (ignored when greedy).
    """
    if seed is not None:
        torch.manual_seed(seed)
    device = next(model.parameters()).device
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    stop_ids = sorted({i for i in (tokenizer.eos_token_id, tokenizer.pad_token_id) if i is not None})
    texts: list[str] = []
    counts: list[int] = []
    prompt_lens: list[int] = []
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    try:
        bar = progress(total=len(prompts), desc=desc, unit="prompt")
        for start in range(0, len(prompts), batch_size):
            chunk = [render_chat(tokenizer, m, prefill) for m in prompts[start : start + batch_size]]
            enc = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            gen_kwargs: dict[str, Any] = {
                "max_new_tokens": max_new_tokens,
                "pad_token_id": tokenizer.pad_token_id,
                "eos_token_id": tokenizer.eos_token_id,
            }
            if temperature > 0:
                gen_kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
            else:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            out = model.generate(**enc, **gen_kwargs)  # (B, T_prompt + T_new)
            new = out[:, enc["input_ids"].shape[1] :]  # (B, T_new)
            counts += count_answer_tokens(new, stop_ids)
            prompt_lens += [int(n) for n in enc["attention_mask"].sum(dim=1)]
            texts += [prefill + t for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
            bar.update(len(chunk))
        bar.close()
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    seconds = time.perf_counter() - t0
    result = GenerationResult(texts=texts, num_tokens=counts, seconds=seconds, prompt_tokens=prompt_lens)
    logger.info(
        "%s: %d answers, %.1f tokens/answer, %.1f tokens/s",
        desc,
        len(texts),
        result.mean_tokens,
        result.tokens_per_s,
    )
    return result

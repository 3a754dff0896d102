"""Reward building blocks for tagged reasoning formats, as pure functions on completion text.

A tagged format is a sequence of stages ``<tag>content</tag>`` that must appear once each, in order, with
non-empty content (RecZero's four stages, FinZero's ``<think>/<answer>/<confidence>``). The functions here do
not know any task: a system composes them into its own rewards (``mercato.reczero.rewards``) and hands them to
TRL through :func:`as_trl_reward`, which turns ``f(text, **columns) -> float`` into TRL's reward signature
``f(prompts, completions, **columns) -> list[float]``.

Examples:
    >>> tags = ("think", "answer")
    >>> check_tagged_format("<think>x</think><answer>3</answer>", tags)
    True
    >>> extract_tag("<think>x</think><answer> 3 </answer>", "answer")
    '3'
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "as_trl_reward",
    "check_tagged_format",
    "completion_text",
    "first_number",
    "extract_final_tag",
    "extract_tag",
    "parse_number",
    "tag_partial_credit",
]

_NUMBER_RE = re.compile(r"[-+]?\d+(?:\.\d+)?")


def completion_text(completion: Any) -> str:
    """The text of a completion: a string, or TRL's conversational form ``[{"role", "content"}, ...]``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    if isinstance(completion, Sequence):
        return "".join(completion_text(m) for m in completion)
    raise TypeError(f"cannot read a completion of type {type(completion).__name__}")


def _open_close(tag: str) -> tuple[str, str]:
    return f"<{tag}>", f"</{tag}>"


def extract_tag(text: str, tag: str, last: bool = True) -> str | None:
    """Stripped content of the last (or first) ``<tag>...</tag>`` in ``text``, or None if there is none."""
    open_, close = _open_close(tag)
    matches = re.findall(re.escape(open_) + r"(.*?)" + re.escape(close), text, flags=re.DOTALL)
    if not matches:
        return None
    return str(matches[-1] if last else matches[0]).strip()


def _stage_spans(text: str, tags: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, end)`` of every ``<tag>...</tag>`` of ``tags``; an unclosed ``<tag>`` runs to the end of ``text``."""
    spans = []
    for tag in tags:
        open_, close = _open_close(tag)
        start = text.find(open_)
        while start >= 0:
            end = text.find(close, start + len(open_))
            spans.append((start, len(text) if end < 0 else end + len(close)))
            start = text.find(open_, start + len(open_))
    return spans


def extract_final_tag(text: str, tag: str, enclosing: Sequence[str]) -> str | None:
    """Stripped content of the last ``<tag>...</tag>`` that is not inside another stage, or None.

    A ``<tag>`` pair that lies within one of the ``enclosing`` stages (e.g. a ``<rate>`` echoed from a movie
    title inside ``<analyze item>``, or inside an ``<analyze item>`` that is never closed) is not the answer,
    so it never counts; when no pair outside them exists the answer is missing (None). A pair's content never
    spans another ``<tag>`` (``<rate>5 ... <rate>4</rate>`` reads 4).

    Examples:
        >>> stages = ("analyze item", "match")
        >>> extract_final_tag("<analyze item>'<rate>5</rate>'</analyze item><match>ok</match>", "rate", stages)
        >>> extract_final_tag("<analyze item>x</analyze item><rate> 4 </rate>", "rate", stages)
        '4'
    """
    open_, close = _open_close(tag)
    pattern = re.escape(open_) + r"((?:(?!" + re.escape(open_) + r").)*?)" + re.escape(close)
    spans = _stage_spans(text, [t for t in enclosing if t != tag])
    for match in reversed(list(re.finditer(pattern, text, flags=re.DOTALL))):
        if not any(start < match.start() < end for start, end in spans):
            return str(match.group(1)).strip()
    return None


def check_tagged_format(text: str, tags: Sequence[str]) -> bool:
    """True iff each ``<tag>...</tag>`` pair occurs exactly once, the pairs are in ``tags`` order, and none is empty.

    Text outside the tags is allowed (the paper's checker likewise only inspects the tags).
    """
    pos = 0
    for tag in tags:
        open_, close = _open_close(tag)
        if text.count(open_) != 1 or text.count(close) != 1:
            return False
        start = text.find(open_)
        end = text.find(close)
        if start < pos or end < start:
            return False
        if not text[start + len(open_) : end].strip():
            return False
        pos = end + len(close)
    return True


def tag_partial_credit(text: str, tags: Sequence[str]) -> float:
    """Fraction of the stages present as a non-empty pair in the right order (a shaped format reward in [0, 1]).

    Stage k counts if its pair occurs after the end of the last counted stage. Used to give a small model a
    gradient before it ever produces the full format (rl.md §1.7 mitigation (b)); not in the paper.
    """
    if not tags:
        return 1.0
    pos, hits = 0, 0
    for tag in tags:
        open_, close = _open_close(tag)
        start = text.find(open_, pos)
        if start < 0:
            continue
        end = text.find(close, start + len(open_))
        if end < 0:
            continue
        if text[start + len(open_) : end].strip():
            hits += 1
            pos = end + len(close)
    return hits / len(tags)


def parse_number(text: str | None, lo: float | None = None, hi: float | None = None) -> float | None:
    """The number in ``text`` if the text is just one number (optionally inside [lo, hi]); else None.

    ``"4"``, ``" 3.5 "`` parse; ``"4 stars"``, ``"3 or 4"``, ``""`` and ``None`` do not (the paper's checker
    requires the ``<rate>`` content to be a number only).
    """
    if text is None:
        return None
    s = text.strip()
    if not _NUMBER_RE.fullmatch(s):
        return None
    value = float(s)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return None
    return value


def first_number(text: str | None) -> float | None:
    """The first number anywhere in ``text`` (a lenient parse used only for counted fallbacks)."""
    if not text:
        return None
    m = _NUMBER_RE.search(text)
    return float(m.group(0)) if m else None


def as_trl_reward(fn: Callable[..., float], name: str | None = None) -> Callable[..., list[float]]:
    """Wrap ``fn(text, **row) -> float`` into TRL's ``f(prompts, completions, **columns) -> list[float]``.

    Each dataset column arrives in TRL as a list aligned with ``completions``; the wrapper passes the i-th value
    of every column that ``fn`` names as a parameter (all of them if it takes ``**kwargs``) to ``fn`` for
    completion i; TRL's own extras (``completion_ids``, ``trainer_state``) are dropped unless named. The wrapper's ``__name__`` (TRL's log key) is ``name``.
    """

    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    wanted = set(list(params)[1:])

    def reward(prompts: list[Any], completions: list[Any], **columns: Any) -> list[float]:
        out = []
        for i, completion in enumerate(completions):
            row = {
                k: v[i]
                for k, v in columns.items()
                if (takes_all or k in wanted) and isinstance(v, list) and len(v) == len(completions)
            }
            out.append(float(fn(completion_text(completion), **row)))
        return out

    reward.__name__ = str(name or getattr(fn, "__name__", "reward"))
    reward.__qualname__ = reward.__name__
    return reward

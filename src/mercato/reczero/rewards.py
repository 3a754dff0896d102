"""RecZero's rule-based rewards and rating parsing (arXiv 2510.23077, Sec. 3.2; constants UNCONFIRMED).

    R = R_format + R_answer
    R_format = format_valid   if the four tags appear once each, in order, non-empty, and <rate> is a number
                              in [rating_min, rating_max]
             = format_invalid (+ partial_format_weight * fraction of ordered tags, our optional shaping)
    R_answer = 1 - |y - y_hat| / max_error   (graded; 0 when the format is invalid, as in the authors' code)

Defaults (+0.5 / -0.5, max_error 4) follow one third-party summary; the authors' fork uses +1 / -1 and
max_error 2: all are fields of :class:`mercato.reczero.config.RewardConfig`.

Examples:
    >>> ok = "<analyze user>a</analyze user><analyze item>b</analyze item><match>c</match><rate>4</rate>"
    >>> format_reward(ok), answer_reward(ok, rating=5.0)
    (0.5, 0.75)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mercato.llm.rewards import (
    as_trl_reward,
    check_tagged_format,
    extract_final_tag,
    parse_number,
    tag_partial_credit,
)
from mercato.reczero.config import RewardConfig
from mercato.reczero.prompts import TAGS

__all__ = [
    "ParsedRating",
    "answer_reward",
    "format_reward",
    "is_valid_format",
    "parse_rating",
    "predict_ratings",
    "total_reward",
    "trl_reward_functions",
]

_DEFAULT = RewardConfig()


def parse_rating(text: str, lo: float = 1.0, hi: float = 5.0) -> float | None:
    """The rating in the final ``<rate>`` tag if it is a single number in [lo, hi], else None.

    Only a ``<rate>`` outside the other three stages counts: one inside ``<analyze user>``, ``<analyze item>`` or
    ``<match>`` (an echoed title, say) is text, not the answer, so a completion whose final ``<rate>`` is missing
    parses to None (a format failure), never to a number taken from inside another stage.
    """
    return parse_number(extract_final_tag(text, "rate", TAGS), lo, hi)


def is_valid_format(text: str, cfg: RewardConfig = _DEFAULT) -> bool:
    """All four stages once each, in order, non-empty, and a parsable in-range rating."""
    return check_tagged_format(text, TAGS) and parse_rating(text, cfg.rating_min, cfg.rating_max) is not None


def format_reward(text: str, cfg: RewardConfig = _DEFAULT) -> float:
    """R_format: ``format_valid`` if :func:`is_valid_format`, else ``format_invalid`` (+ optional partial credit)."""
    if is_valid_format(text, cfg):
        return cfg.format_valid
    return cfg.format_invalid + cfg.partial_format_weight * tag_partial_credit(text, TAGS)


def answer_reward(text: str, rating: float, cfg: RewardConfig = _DEFAULT) -> float:
    """R_answer = 1 - |y - y_hat| / max_error for a parsable rating (and valid format if required), else 0."""
    if cfg.answer_requires_format and not is_valid_format(text, cfg):
        return 0.0
    pred = parse_rating(text, cfg.rating_min, cfg.rating_max)
    if pred is None:
        return 0.0
    return 1.0 - abs(float(rating) - pred) / cfg.max_error


def total_reward(text: str, rating: float, cfg: RewardConfig = _DEFAULT) -> float:
    """R = R_format + R_answer."""
    return format_reward(text, cfg) + answer_reward(text, rating, cfg)


@dataclass
class ParsedRating:
    """Predictions parsed from completions, with the counted fallbacks."""

    predictions: list[float]
    valid_format: list[bool]
    used_fallback: list[bool]

    @property
    def fallback_rate(self) -> float:
        """Fraction of answers whose rating could not be parsed (the fallback was used)."""
        return sum(self.used_fallback) / max(len(self.used_fallback), 1)

    @property
    def valid_rate(self) -> float:
        """Fraction of answers in the full valid format."""
        return sum(self.valid_format) / max(len(self.valid_format), 1)


def predict_ratings(
    texts: Sequence[str], fallbacks: Sequence[float], cfg: RewardConfig = _DEFAULT
) -> ParsedRating:
    """Parse each completion's rating; when unparsable, use its fallback (e.g. the user mean) and count it.

    A rating is taken from the final ``<rate>`` tag (:func:`parse_rating`) even if another stage is malformed
    (so format validity and fallback use are reported separately).
    """
    preds, valid, used = [], [], []
    for text, fb in zip(texts, fallbacks, strict=True):
        r = parse_rating(text, cfg.rating_min, cfg.rating_max)
        used.append(r is None)
        preds.append(float(fb) if r is None else r)
        valid.append(is_valid_format(text, cfg))
    return ParsedRating(predictions=preds, valid_format=valid, used_fallback=used)


def trl_reward_functions(cfg: RewardConfig = _DEFAULT) -> list[Callable[..., list[float]]]:
    """[format, answer] rewards in TRL's signature; the dataset must have a ``rating`` column. TRL sums them."""

    def fmt(text: str) -> float:
        return format_reward(text, cfg)

    def ans(text: str, rating: float) -> float:
        return answer_reward(text, rating, cfg)

    return [as_trl_reward(fmt, "format_reward"), as_trl_reward(ans, "answer_reward")]

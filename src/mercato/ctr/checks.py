"""Validation helpers for config dataclasses (called from their ``__post_init__``).

Each raises ``ValueError`` naming the key and the value, e.g. ``embed_dim must be >= 1, got 0``;
:func:`mercato.core.config.config_from_dict` turns that into a ``ConfigError`` with the source in front.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["at_least", "dropout_rate", "positive", "positive_widths"]


def at_least(cfg: object, minimum: float, *names: str) -> None:
    """Every field in ``names`` is a finite number ``>= minimum``."""
    for name in names:
        value = getattr(cfg, name)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value) or value < minimum:
            raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")


def positive(cfg: object, *names: str) -> None:
    """Every field in ``names`` is a finite number ``> 0`` (``None`` is allowed where a field is optional)."""
    for name in names:
        value = getattr(cfg, name)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def dropout_rate(cfg: object, *names: str) -> None:
    """Every field in ``names`` is a probability in ``[0, 1)``."""
    for name in names:
        value = getattr(cfg, name)
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {value!r}")


def positive_widths(cfg: object, *names: str) -> None:
    """Every field in ``names`` is a sequence of layer widths ``>= 1``."""
    for name in names:
        widths: Iterable[int] = getattr(cfg, name)
        bad = [w for w in widths if w < 1]
        if bad:
            raise ValueError(f"{name} must hold widths >= 1, got {list(widths)!r}")

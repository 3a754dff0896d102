"""Progress bars for long work (tqdm), silenced by ``MERCATO_NO_PROGRESS=1`` or ``disable=True``."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

__all__ = ["progress", "progress_disabled"]


def progress_disabled() -> bool:
    """True when the environment asks for no progress bars (CI, tests)."""
    return os.environ.get("MERCATO_NO_PROGRESS", "") not in ("", "0")


def progress(
    iterable: Iterable[T] | None = None, desc: str = "", total: int | None = None, **kwargs: Any
) -> Any:
    """A tqdm bar with rate and ETA; returns the tqdm object (iterate it, or call ``.update``)."""
    disable = kwargs.pop("disable", False) or progress_disabled()
    return tqdm(iterable, desc=desc, total=total, disable=disable, dynamic_ncols=True, **kwargs)

"""Helpers for benchmark scripts: mean ± std strings, Markdown tables, and generated doc sections.

Benchmarks never overwrite a whole docs page: they replace the block between
``<!-- mercato:begin NAME -->`` and ``<!-- mercato:end NAME -->`` (appending it if missing), so hand-written
prose around the numbers survives and every number in the docs is traceable to a script.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mercato.core.runs import atomic_write_text

__all__ = ["markdown_table", "mean_std", "update_markdown_section"]


def mean_std(values: Sequence[float], digits: int = 4) -> str:
    """Format ``values`` as ``mean ± std`` (sample std, ddof=1; just the mean for one value)."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 1:
        return f"{arr[0]:.{digits}f}"
    return f"{arr.mean():.{digits}f} ± {arr.std(ddof=1):.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def update_markdown_section(path: str | Path, name: str, body: str, title: str | None = None) -> Path:
    """Replace (or append) the generated block ``name`` in the Markdown file ``path``."""
    p = Path(path)
    text = p.read_text() if p.exists() else (f"# {title}\n" if title else "")
    begin, end = f"<!-- mercato:begin {name} -->", f"<!-- mercato:end {name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    return atomic_write_text(p, text)

"""Plot helpers (matplotlib, Agg backend, written atomically as PNG)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mercato.core.runs import atomic_path  # noqa: E402

__all__ = ["plt", "save_figure", "save_heatmap", "save_line_plot"]


def save_figure(fig: Any, path: str | Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    plt.close(fig)
    return Path(path)


def save_line_plot(
    path: str | Path,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
    logy: bool = False,
) -> Path:
    """One line per ``name -> (x, y)``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (x, y) in series.items():
        ax.plot(list(x), list(y), marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def save_heatmap(
    path: str | Path,
    matrix: Any,
    labels: Sequence[str] | None = None,
    title: str = "",
    cmap: str = "RdBu_r",
) -> Path:
    """A square heatmap with a colorbar centred on zero."""
    m = np.asarray(matrix, dtype=float)
    lim = float(np.abs(m).max()) or 1.0
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * m.shape[1], 0.8 + 0.45 * m.shape[0]))
    im = ax.imshow(m, cmap=cmap, vmin=-lim, vmax=lim)
    if labels is not None:
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right")
        ax.set_yticks(range(len(labels)), labels)
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax)
    return save_figure(fig, path)

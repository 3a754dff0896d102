"""Run folders and atomic file writes.

Every command writes into ``runs/<system>/<timestamp>/`` (or ``--output-dir``): ``config.yaml``,
``metrics.json``, checkpoints and plots. Files are written to a temporary name and renamed, so a crash
never leaves a half-written file behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from mercato.core.config import config_to_dict

__all__ = [
    "atomic_dir",
    "atomic_path",
    "atomic_write_json",
    "atomic_write_text",
    "make_run_dir",
    "write_config",
    "write_metrics",
]


def make_run_dir(system: str, output_dir: str | Path | None = None, root: str | Path = "runs") -> Path:
    """Create and return ``output_dir``, or ``<root>/<system>/<YYYYmmdd-HHMMSS>`` when it is None."""
    if output_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(root) / system / stamp
        n = 1
        while path.exists():
            n += 1
            path = Path(root) / system / f"{stamp}-{n}"
    else:
        path = Path(output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it is renamed onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; if the block succeeds it replaces ``path`` (an old folder there
    is removed first), otherwise it is deleted. A reader sees the old folder or the whole new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def atomic_write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically (NumPy scalars and arrays are converted)."""
    return atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def write_config(run_dir: str | Path, cfg: Any, name: str = "config.yaml") -> Path:
    """Write a config dataclass (or mapping) as YAML into the run folder."""
    data = dict(cfg) if isinstance(cfg, Mapping) else config_to_dict(cfg)
    return atomic_write_text(Path(run_dir) / name, yaml.safe_dump(data, sort_keys=False))


def write_metrics(run_dir: str | Path, metrics: Mapping[str, Any], name: str = "metrics.json") -> Path:
    """Write the metrics of a run as JSON into the run folder."""
    return atomic_write_json(Path(run_dir) / name, dict(metrics))

"""Helpers shared by every ``mercato <system> <verb>`` command: config + overrides + run folder.

A system's ``cli.py`` builds an ``argparse`` parser per verb with :func:`add_common_args`, then calls
:func:`parse_config` so that every unknown ``--key value`` becomes a strict override of its config dataclass.
"""

from __future__ import annotations

import argparse
import inspect
import logging
import re
import sys
from collections.abc import Sequence
from typing import Any, TypeVar

from mercato.core.config import ConfigError, load_config

T = TypeVar("T")

__all__ = ["add_common_args", "config_help", "fail", "parse_config", "print_table", "setup_logging"]

_FIELD_RE = re.compile(r"^\s{4}(\w+)\s*:\s*[^=#]+(?:=\s*([^#]+?))?\s*#\s*(.+)$")


def config_help(cls: type) -> str:
    """Render ``name (default): comment`` for each field of a config dataclass, from its source comments."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return ""
    lines = []
    for line in source.splitlines():
        m = _FIELD_RE.match(line)
        if m:
            name, default, doc = m.groups()
            lines.append(f"  --{name.replace('_', '-')} ({(default or '').strip()}): {doc.strip()}")
    return (
        "config keys (override with --key value, or put them in a YAML file given by --config):\n"
        + "\n".join(lines)
    )


def add_common_args(parser: argparse.ArgumentParser, cfg_cls: type | None = None) -> None:
    """Add ``--config``, ``--output-dir`` and ``-v``; list the config keys in the help epilog."""
    parser.add_argument("--config", default=None, help="YAML file with config keys")
    parser.add_argument("--output-dir", default=None, help="run folder (default runs/<system>/<timestamp>)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    if cfg_cls is not None:
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = config_help(cfg_cls)


def setup_logging(verbose: bool = False) -> None:
    """Log to stderr at INFO (DEBUG with ``verbose``)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def fail(message: str, code: int = 2) -> None:
    """Print ``mercato: error: message`` to stderr and exit."""
    print(f"mercato: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def parse_config(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None, cfg_cls: type[T]
) -> tuple[argparse.Namespace, T]:
    """Parse known flags with ``parser``; the rest are ``--key value`` overrides of ``cfg_cls``."""
    args, rest = parser.parse_known_args(argv)
    try:
        cfg = load_config(cfg_cls, getattr(args, "config", None), rest)
    except ConfigError as err:
        fail(str(err))
    setup_logging(getattr(args, "verbose", False))
    return args, cfg


def print_table(rows: Sequence[dict[str, Any]], file: Any = None) -> None:
    """Print a list of dicts as an aligned text table (CLI output, not library logging)."""
    if not rows:
        return
    cols = list(dict.fromkeys(key for row in rows for key in row))  # union of keys, first-seen order
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    out = file or sys.stdout
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=out)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)

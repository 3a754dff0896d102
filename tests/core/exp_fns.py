"""Module-level run functions for the experiment-runner tests (worker processes import them by name)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    a: float = 1.0
    log: str = ""  # file that every computation appends a line to (how the tests count calls)
    fail_on: str = ""  # raise when the data's name equals this (an interruption)


@dataclasses.dataclass(frozen=True)
class ToyData:
    name: str = "d"
    rows: int = 10


def toy_run(config: ToyConfig, data: ToyData) -> dict[str, Any]:
    """result = a * rows; logs the call."""
    if config.fail_on and data.name == config.fail_on:
        raise RuntimeError(f"interrupted at {data.name}")
    if config.log:
        with open(config.log, "a") as f:
            f.write(f"{data.name}:{os.getpid()}\n")
    return {"value": config.a * data.rows, "name": data.name}


def calls(log: str | Path) -> list[str]:
    p = Path(log)
    return [line.split(":")[0] for line in p.read_text().splitlines()] if p.exists() else []

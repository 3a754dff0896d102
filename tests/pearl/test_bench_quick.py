"""``benchmarks/pearl.py --quick`` runs end to end and writes its blocks under runs/ (integration)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_pearl_benchmark_quick(tmp_path: Path) -> None:
    env = {**os.environ, "MERCATO_NO_PROGRESS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "pearl.py"), "--quick", "--root", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "pearl-quick" / "docs" / "pearl.md").read_text()
    assert "Goal: Pearl GMV over DiffBid" in page and "| OnlineLP |" in page
    assert "Goal:" in (tmp_path / "pearl-quick" / "docs" / "results.md").read_text()

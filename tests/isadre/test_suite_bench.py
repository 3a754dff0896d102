"""benchmarks/isadre_suite.py --quick runs through the runner, writes its block and is served from the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_isadre_suite_quick(tmp_path: Path) -> None:
    env = {**os.environ, "MERCATO_NO_PROGRESS": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "isadre_suite.py"), "--quick", "--root", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "isadre_suite-quick" / "docs" / "results.md").read_text()
    assert "mercato:begin isadre-suite" in page and "\nGoal: " in page
    caches = sorted((tmp_path / "isadre_suite-quick" / "cache").glob("*.json"))
    assert len(caches) == 6  # 2 problems x 3 estimators
    res = json.loads(caches[0].read_text())
    assert "diagnose" in json.dumps(res)
    mtimes = {p: p.stat().st_mtime for p in caches}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert {p: p.stat().st_mtime for p in caches} == mtimes  # nothing recomputed

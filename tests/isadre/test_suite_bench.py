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
    docs = {p: p.read_bytes() for p in (ROOT / "docs" / "isadre.md", ROOT / "docs" / "results.md")}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "isadre_suite.py"), "--quick", "--root", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the quick mode writes only under <root>/isadre_suite-quick, never into docs/
    assert {p.name for p in tmp_path.iterdir()} == {"isadre_suite-quick"}
    assert {p: p.read_bytes() for p in docs} == docs
    page = (tmp_path / "isadre_suite-quick" / "docs" / "results.md").read_text()
    assert "mercato:begin isadre-suite" in page and "\nGoal: " in page
    own = (tmp_path / "isadre_suite-quick" / "docs" / "isadre.md").read_text()
    for block in ("isadre-suite-validation", "isadre-suite", "isadre-mi-defaults"):
        assert f"<!-- mercato:begin {block} -->" in own
    assert "Chosen (lowest median score)" in own
    caches = sorted((tmp_path / "isadre_suite-quick" / "cache").glob("*.json"))
    # validation: 2 problems x (3 path rules run (SKIPPED_RULES left out) x 2 path estimators + 2 classifier rules);
    # test: 2 x 3; MI: 1
    assert len(caches) == 16 + 6 + 1
    res = json.loads(caches[0].read_text())
    assert "diagnose" in json.dumps(res)
    mtimes = {p: p.stat().st_mtime for p in caches}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert {p: p.stat().st_mtime for p in caches} == mtimes  # nothing recomputed

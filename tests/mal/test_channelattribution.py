"""Cross-check of ``markov`` against ChannelAttribution's first-order Markov model on its own Data.csv.

ChannelAttribution (GPL-3) is a test-only dependency, built from its sdist and run in a subprocess, never
imported by mercato. Point ``MERCATO_CA_PYTHON`` at an interpreter that has it (default: this one) and
``MERCATO_CA_DATA`` at ``src/cypack/data/Data.csv`` of the unpacked sdist (the wheel does not install it);
defaults: ``scratch/ca/venv/bin/python`` and ``scratch/ca/channelattribution-*/src/cypack/data/Data.csv``. Setup:
``pip download --no-deps ChannelAttribution && tar xzf channelattribution-*.tar.gz``, then
``pip install channelattribution-*.tar.gz matplotlib`` (it imports matplotlib without declaring it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mercato.mal.attribution import markov

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys, pandas as pd, ChannelAttribution as ca
df = pd.read_csv(sys.argv[1], sep=";")
res = ca.markov_model(df, "path", "total_conversions", var_null="total_null", order=1, nsim_start=1e6,
                      verbose=False, flg_pro=False, seed=0)
print("RESULT" + res.to_json(orient="records"))
"""


def _data_file() -> Path | None:
    if os.environ.get("MERCATO_CA_DATA"):
        return Path(os.environ["MERCATO_CA_DATA"])
    found = sorted(ROOT.glob("scratch/ca/channelattribution-*/src/cypack/data/Data.csv"))
    return found[-1] if found else None


@pytest.mark.integration
def test_markov_matches_channelattribution(tmp_path):
    local = ROOT / "scratch" / "ca" / "venv" / "bin" / "python"
    default = str(local) if local.exists() else sys.executable
    python = os.path.abspath(os.environ.get("MERCATO_CA_PYTHON", default))
    check = subprocess.run([python, "-c", "import ChannelAttribution"], capture_output=True, timeout=60)
    if check.returncode != 0:
        pytest.skip(
            f"ChannelAttribution not importable by {python} (set MERCATO_CA_PYTHON; see module docstring)"
        )
    data = _data_file()
    if data is None or not data.exists():
        pytest.skip("ChannelAttribution's Data.csv not found (set MERCATO_CA_DATA; see module docstring)")
    out = subprocess.run(
        [python, "-c", SCRIPT, str(data)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT"))
    theirs = {r["channel_name"]: r["total_conversions"] for r in json.loads(line[len("RESULT") :])}
    df = pd.read_csv(data, sep=";")
    paths = [[c.strip() for c in p.split(">")] for p in df["path"]]
    ours = markov(paths, df["total_conversions"], df["total_null"])
    total = float(df["total_conversions"].sum())
    assert set(ours) == set(theirs)
    assert sum(ours.values()) == pytest.approx(total)
    # ChannelAttribution estimates absorption by simulating 1e6 journeys; ours solves the chain exactly.
    for ch, v in ours.items():
        assert abs(v - theirs[ch]) <= 0.0025 * total, (ch, v, theirs[ch])

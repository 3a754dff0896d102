"""The README's Python example must run as written (on ML-100K and one epoch, to stay fast)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.integration
def test_readme_python_example_runs(capsys):
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert block is not None, "README has no python example"
    code = block.group(1).replace('"1m"', '"100k"').replace("epochs=2", "epochs=1")
    exec(compile(code, str(README), "exec"), {})  # our own README, not generated code
    out = capsys.readouterr().out
    assert "'auc'" in out and "'gauc'" in out and "'logloss'" in out

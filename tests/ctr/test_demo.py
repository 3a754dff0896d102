from __future__ import annotations

import pytest

from mercato.demo import DEMO_STEPS, main


@pytest.mark.integration  # reads the packaged MovieLens-100K files (a few seconds)
def test_quick_demo_prints_ctr_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--steps", "ctr"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("ctr ")]
    assert [line.split()[1] for line in lines] == ["DeepFM", "LR"]
    assert "auc" in out and "gauc" in out and "logloss" in out


def test_demo_steps_are_named_callables() -> None:
    names = [name for name, _ in DEMO_STEPS]
    assert "ctr" in names and len(set(names)) == len(names)
    assert all(callable(step) for _, step in DEMO_STEPS)


def test_unknown_demo_step_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--steps", "nope"])
    assert "valid steps: ctr" in capsys.readouterr().err

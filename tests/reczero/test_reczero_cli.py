"""`mercato reczero` command line: help, strict overrides, eval with the tiny model on MovieLens."""

from __future__ import annotations

import json

import pytest

from mercato.reczero.cli import main


def test_help_lists_verbs(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in ("sft", "train", "eval", "bench"):
        assert verb in out


def test_unknown_verb_and_key_fail_clearly(capsys):
    with pytest.raises(SystemExit):
        main(["fly"])
    assert "valid: sft, train, eval, bench" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--grpo.stepz", "3"])
    assert "did you mean 'steps'" in capsys.readouterr().err


@pytest.mark.integration  # reads MovieLens-100K from the installed recbole package
def test_eval_tiny_with_baselines(tmp_path, capsys):
    rc = main(
        [
            "eval", "--model", "tiny", "--baselines", "--output-dir", str(tmp_path),
            "--data.num-test-users", "8", "--eval.max-new-tokens", "4", "--baselines.mf-epochs", "5",
        ]
    )  # fmt: skip
    assert rc == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    names = [r["name"] for r in metrics["results"]]
    assert names == ["global mean", "user+item bias", "MF", "tiny"]
    assert all(r["n"] == 8 for r in metrics["results"])
    assert "MF" in capsys.readouterr().out

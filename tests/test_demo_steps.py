import pytest

from mercato.demo import main


@pytest.mark.integration  # generates synthetic data and reads packaged MovieLens-100K (seconds)
def test_quick_demo_covers_fat_and_reczero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--steps", "fat,reczero"]) == 0
    out = capsys.readouterr().out
    models = {
        (line.split()[0], line.split()[1])
        for line in out.splitlines()
        if line.startswith(("fat ", "reczero "))
    }
    assert {("fat", "Bayes-optimal"), ("fat", "FAT"), ("fat", "DeepFM"), ("reczero", "MF")} <= models

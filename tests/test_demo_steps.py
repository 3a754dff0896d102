import pytest

from mercato.demo import main


@pytest.mark.integration  # generates synthetic data and reads packaged MovieLens-100K (seconds)
def test_quick_demo_covers_fat_reczero_and_isadre(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick", "--steps", "fat,reczero,isadre"]) == 0
    out = capsys.readouterr().out
    models = {
        (line.split()[0], line.split()[1])
        for line in out.splitlines()
        if line.startswith(("fat ", "reczero ", "isadre "))
    }
    assert {
        ("fat", "Bayes-optimal"),
        ("fat", "FAT"),
        ("fat", "DeepFM"),
        ("reczero", "MF"),
        ("isadre", "exact"),
    } <= models

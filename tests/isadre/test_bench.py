"""mercato.isadre.bench: the benchmark's run functions and tables on the experiment runner (tiny, in-process)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mercato.core.experiments import Experiment, Run
from mercato.isadre import PathConfig, bench


def _exp(tmp_path: Path) -> Experiment:
    return Experiment(
        "isadre_target_noise",
        code=("mercato.core", "mercato.isadre"),
        root=tmp_path / "bench",
        repo=tmp_path,
        quick=True,
        show_progress=False,
    )


def _runs(pairs: int) -> list[Run]:
    cfg = PathConfig(kind="trig", reference="gaussian", gamma=0.0, noise_eps=0.0)
    return [
        Run(f"g/t{t}", bench.noise_cell, cfg, bench.NoiseCell(dim=4, pairs=pairs, t=t)) for t in (0.1, 0.9)
    ]


def test_noise_cells_are_cached_and_a_changed_data_spec_recomputes(tmp_path: Path) -> None:
    first = _exp(tmp_path)
    got = first.run(_runs(500))
    assert sorted(first.computed) == ["g/t0.1", "g/t0.9"] and got["g/t0.1"]["ratio"] > 0
    again = _exp(tmp_path)
    assert again.run(_runs(500)) == got and again.computed == []  # served from the cache
    more = _exp(tmp_path)
    other = more.run(_runs(600))  # more Monte-Carlo pairs: another data spec, so recomputed
    assert sorted(more.computed) == ["g/t0.1", "g/t0.9"] and other["g/t0.1"] != got["g/t0.1"]
    assert not (tmp_path / "docs").exists()  # quick: nothing outside the output root


def test_budget_config_fits_with_its_steps_and_batch() -> None:
    """A budget '300x256' trains with 300 steps of 256 pairs, not the benchmark's own numbers."""
    cfg = bench.budget_config(bench.QUICK, *bench.parse_budget("300x256"))
    assert (cfg.train["n_iters"], cfg.train["batch_size"]) == (300, 256)
    assert cfg.methods == ("isa", "dre_inf") and cfg.train["lr"] == bench.QUICK["train"]["lr"]
    assert bench.QUICK["train"]["batch_size"] != 256  # the benchmark's setting is left as it was
    with pytest.raises(ValueError, match="STEPSxBATCH"):
        bench.parse_budget("2000")


def test_fit_config_and_data_spec_carry_the_setting() -> None:
    cfg = bench.fit_config(bench.FULL, ["isa"], device="cuda")
    assert cfg.path == bench.PATH and cfg.isa_train == {"t_sampler": "lognorm_ends"} and cfg.device == "cuda"
    assert bench.mi_data(bench.FULL, 40, 1) == bench.MIData(dim=40, seed=1, n_train=200000, n_test=5000)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        bench.fit_mi(bench.fit_config(bench.QUICK, ["nope"]), bench.MIData(2, 0, 8, 4))


def test_exact_estimate_is_the_true_log_ratio_on_the_test_points() -> None:
    small = {**bench.QUICK, "n_train": 10, "n_test": 4000}
    ex = bench.exact_estimate(small, 8, 0)
    pair, _, _, X_test = bench.problem(bench.mi_data(small, 8, 0))
    assert ex["mi"] == pytest.approx(float(np.mean(pair.log_ratio(X_test))))
    assert ex["sq_err"] == pytest.approx((ex["mi"] - 2.0) ** 2) and ex["nfe"] == 0.0


def test_paired_comparison_pairs_the_seeds() -> None:
    """The paired line subtracts per seed (not the means' difference alone) and counts the seeds won."""
    sq = {"0": (0.1, 0.3), "1": (0.5, 0.4), "2": (0.2, 0.6)}  # seed: (ISA-DRE, DRE-inf) squared errors
    results = {"40": {s: {"isa@1": {"sq_err": a}, "dre_inf@100": {"sq_err": b}} for s, (a, b) in sq.items()}}
    results["40"]["3"] = {"isa@1": {"sq_err": 9.0}}  # a seed without the baseline is left out, not paired
    diff = np.array([-0.2, 0.1, -0.4])
    se = diff.std(ddof=1) / np.sqrt(3)
    assert (
        bench.paired_comparison(results, 40)
        == f"d=40: {diff.mean():+.2f} ± {se:.2f} (lower or equal on 2 of 3 seeds)"
    )
    assert bench.paired_comparison(results, 80) == "d=80: –"


def test_summarize_and_goal_lines() -> None:
    cells = {
        "40": {
            "0": {
                "isa@1": {"sq_err": 0.1, "mi": 10.2, "nfe": 1.0},
                "dre_inf@100": {"sq_err": 0.3, "mi": 9.5, "nfe": 101.0},
            },
            "1": {
                "isa@1": {"sq_err": 0.3, "mi": 10.5, "nfe": 1.0},
                "dre_inf@100": {"sq_err": 0.1, "mi": 9.7, "nfe": 101.0},
            },
        }
    }
    rows, summary = bench.summarize(cells, [40, 80], ["isa@1", "dre_inf@100"])
    assert rows[0][:2] == ["ISA-DRE, 1 step", "1"] and rows[0][3] == "–"
    assert (
        summary[("isa@1", 40)]["mse"] == pytest.approx(0.2) and summary[("dre_inf@100", 40)]["nfe"] == 101.0
    )
    assert bench.goal_lines(summary, [40, 80]) == ["d=40: met (0.20 vs 0.20, 2 seeds)"]


ROOT = Path(__file__).resolve().parents[2]


def _block(page: str, name: str) -> str:
    m = re.search(rf"<!-- mercato:begin {name} -->\n(.*?)<!-- mercato:end {name} -->", page, re.S)
    assert m, name
    return m.group(1)


def test_readme_row_is_rendered_from_the_results_blocks() -> None:
    """The README row says what docs/isadre.md's CPU and GPU blocks say, and no more."""
    page = (ROOT / "docs" / "isadre.md").read_text()
    cpu, gpu = (bench.parse_mi_block(_block(page, n)) for n in ("isadre-mi", "isadre-mi-gpu"))
    suite = bench.parse_suite_goal(_block((ROOT / "docs" / "results.md").read_text(), "isadre-suite"))
    assert suite == bench.parse_suite_goal(_block(page, "isadre-suite"))  # the two copies of the block agree
    row = bench.readme_row(cpu, gpu, suite)
    readme = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| ISA-DRE")]
    assert readme == [row]


def test_readme_row_follows_the_numbers() -> None:
    block = (
        "| ISA-DRE, 1 step | 1 | x |\n| DRE-∞, trapezoid 100 | 101 | x |\n\n"
        "Goal (ISA-DRE 1 step at or below DRE-∞ 100 steps): d=40: met (0.01 vs 0.02, 3 seeds); "
        "d=80: met (0.1 vs 0.5, 3 seeds)\n\n"
        "Paired difference of squared errors, ...: d=40: -0.01 ± 0.02 (lower or equal on 2 of 3 seeds); "
        "d=80: -0.40 ± 0.05 (lower or equal on 3 of 3 seeds).\n"
    )
    res = bench.parse_mi_block(block)
    assert res["goal"] == {40: (True, 3), 80: (True, 3)} and res["paired"][80] == (-0.4, 0.05)
    row = bench.readme_row(res)
    assert (
        "at or below it at 2 of 4 dimensions" not in row and "2 of 2 dimensions on the CPU (d = 40, 80" in row
    )
    assert "is compared with" in row and "within about one standard error" not in row  # d=80 is 8 SE away


def test_suite_goal_is_parsed_into_the_row() -> None:
    line = (
        "x\n\nGoal: missed: ISA-DRE 1 step within 1.1x of DRE-∞ 100 steps (mean score) on 7/10 problems (70%, "
        "needed 80%); no worse than the classifier on 3/6 problems with true KL above 10 nats (worse on a, b).\n"
    )
    suite = bench.parse_suite_goal(line)
    assert suite == {"met": False, "within": 7, "problems": 10, "clf_ok": 3, "clf_n": 6}
    res = bench.parse_mi_block(
        "| ISA-DRE, 1 step | 1 | x |\n| DRE-∞, trapezoid 100 | 101 | x |\n\n"
        "Goal (x): d=40: met (0.01 vs 0.02, 3 seeds)\n\nPaired x: d=40: -0.01 ± 0.02 (lower or equal on 2 of 3 seeds).\n"
    )
    row = bench.readme_row(res, suite=suite)
    assert "goal is missed (1-step error within 1.1x of DRE-∞'s on 7 of 10 problems" in row
    assert "classifier's on 3 of 6 with KL above 10 nats" in row
    with pytest.raises(ValueError, match="not a suite Goal line"):
        bench.parse_suite_goal("Goal: something else")

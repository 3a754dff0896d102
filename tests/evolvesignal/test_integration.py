"""Real SUMO runs, libsumo vs TraCI, Ray vs the process pool, the CLI and the quick benchmark (integration)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mercato.evolvesignal.config import EvaluationConfig, SearchConfig, SimConfig
from mercato.evolvesignal.executor import LocalExecutor, RayExecutor
from mercato.evolvesignal.search import Search
from mercato.evolvesignal.sim import SCENARIOS, _link_phases, build_network, run_plan, tl_logic_xml
from mercato.evolvesignal.timing import webster_timing

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sim(tmp_path: Path) -> SimConfig:
    return SimConfig(horizon_s=150, drain_s=900, cache_dir=str(tmp_path / "cache"))


def test_network_has_twelve_movements_on_twenty_links(sim: SimConfig) -> None:
    links = _link_phases(build_network(sim))
    assert len(links) == 20  # per approach: right + 3 through + left
    assert links.count("NS_left") == links.count("EW_left") == 2
    xml = tl_logic_xml(webster_timing(SCENARIOS["balanced"]), links)
    assert xml.count("<phase") == 12  # 4 x (green, yellow, all-red)


def test_real_sumo_run_is_finite_and_cached(sim: SimConfig) -> None:
    plan = webster_timing(SCENARIOS["balanced"])
    r = run_plan(plan, "balanced", 1, sim)
    assert r["vehicles"] > 100 and r["unfinished"] == 0
    assert math.isfinite(r["delay"]) and 0 < r["delay"] < 300
    assert math.isfinite(r["stops"]) and 0 < r["stops"] < 5
    assert run_plan(plan, "balanced", 1, sim) == r  # served from the plan-hash cache
    other = run_plan(plan, "balanced", 2, sim)
    assert other["delay"] != r["delay"]  # another seed, another demand


def test_libsumo_and_traci_give_identical_metrics(sim: SimConfig) -> None:
    plan = webster_timing(SCENARIOS["ns_heavy"])
    a = run_plan(plan, "ns_heavy", 3, sim, use_cache=False)
    b = run_plan(plan, "ns_heavy", 3, replace(sim, backend="traci"), use_cache=False)
    for k in ("delay", "stops", "vehicles", "unfinished", "sim_time"):
        assert a[k] == b[k], k


def test_ray_search_equals_the_process_pool() -> None:
    cfg = SearchConfig(
        iterations=2,
        islands=2,
        population=3,
        evaluation=EvaluationConfig(fitness="surrogate", seeds=(1,)),
        children_per_island=2,
        prefilter=0.5,
    )
    pool = LocalExecutor(2)
    try:
        a = Search(cfg, executor=pool)
        a.run()
    finally:
        pool.close()
    ray_ex = RayExecutor(num_cpus=2)
    try:
        b = Search(cfg, executor=ray_ex)
        b.run()
    finally:
        ray_ex.close()
    assert json.loads(json.dumps(a.state())) == json.loads(json.dumps(b.state()))


def test_cli_evaluate_and_resumable_evolve(tmp_path: Path) -> None:
    env = {**os.environ, "MERCATO_NO_PROGRESS": "1"}
    prog = tmp_path / "p.py"
    prog.write_text(
        "def signal_timing_algorithm(f):\n    return {'green_times': {'NS_through': 40, 'NS_left': 18, 'EW_through': 40, 'EW_left': 18}}\n"
    )
    cmd = [sys.executable, "-m", "mercato", "evolvesignal"]
    out = subprocess.run(
        [
            *cmd,
            "evaluate",
            str(prog),
            "--evaluation.sim.horizon_s",
            "100",
            "--evaluation.seeds",
            "[1]",
            "--evaluation.sim.cache_dir",
            str(tmp_path / "c"),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    res = json.loads(out.stdout)
    assert res["ok"] and 0 < res["score"] < 1 and len(res["runs"]) == 3
    run = tmp_path / "evo"
    base = [*cmd, "evolve", "--islands", "2", "--evaluation.fitness", "surrogate", "--output-dir", str(run)]
    subprocess.run(
        [*base, "--iterations", "2"], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    assert {"best_program.py", "checkpoint.json", "search_curve.png", "history.json"} <= {
        p.name for p in run.iterdir()
    }
    counts = json.loads((run / "metrics.json").read_text())["counts"]
    # default pre-filter: 2 islands x 4 children x 2 generations proposed, about a quarter of the new ones scored
    assert counts["children"] == 16 and counts["filtered"] > 0
    assert counts["surrogate"] - counts["filtered"] <= counts["children"] // 2
    bad = subprocess.run([*base, "--iterations", "3"], capture_output=True, text=True, env=env, cwd=ROOT)
    assert bad.returncode != 0 and "another search config" in bad.stderr


def test_quick_benchmark_runs(tmp_path: Path) -> None:
    env = {**os.environ, "MERCATO_NO_PROGRESS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "evolvesignal.py"),
            "--quick",
            "--root",
            str(tmp_path),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = (tmp_path / "evolvesignal-quick" / "docs" / "evolvesignal.md").read_text()
    assert "Goal:" in doc and "| webster |" in doc and "| evolved |" in doc
    assert "| evolved_no_prefilter |" in doc and "**Pre-filter.** Of 4 children" in doc


def test_harness_gap_switches(sim: SimConfig, tmp_path: Path) -> None:
    plan = webster_timing(SCENARIOS["balanced"])
    base = run_plan(plan, "balanced", 1, replace(sim, exit_time="exit_step"), use_cache=False)
    # leaving at the last step before the exit edge (the default) instead of the first step on it: 1 s less
    last = run_plan(plan, "balanced", 1, sim, use_cache=False)
    assert last["vehicles"] == base["vehicles"] and last["stops"] == base["stops"]
    assert last["delay"] == pytest.approx(base["delay"] - 1.0, abs=0.05)
    # the SUMO seed matters when lanes are drawn at random (the default)
    rnd = replace(sim, depart_lane="random", sumo_seed=0)
    a = run_plan(plan, "balanced", 1, rnd, use_cache=False)
    b = run_plan(plan, "balanced", 1, replace(rnd, sumo_seed=23423), use_cache=False)
    assert a["vehicles"] == b["vehicles"] and (a["delay"], a["stops"]) != (b["delay"], b["stops"])
    # a net file: by content in the cache key, a missing one is an error naming the option
    net = build_network(sim)
    copy = tmp_path / "copy.net.xml"
    copy.write_bytes(net.read_bytes())
    assert run_plan(plan, "balanced", 1, replace(sim, net_file=str(copy)), use_cache=False) == last
    with pytest.raises(FileNotFoundError, match="sim.net_file"):
        run_plan(plan, "balanced", 1, replace(sim, net_file=str(tmp_path / "none.xml")))

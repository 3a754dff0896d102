"""The experiment runner: cache keys, stale-cache invalidation, resume, shards, pools, Ray, reports."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

from mercato.core.experiments import (
    Experiment,
    Run,
    add_runner_args,
    best_of,
    code_fingerprint,
    describe,
    machine_line,
)

sys.path.insert(0, str(Path(__file__).parent))
from exp_fns import ToyConfig, ToyData, calls, toy_run  # noqa: E402

HERE = str(Path(__file__).parent)


def runs(
    log: Path, names: tuple[str, ...] = ("a", "b", "c", "d"), rows: int = 10, **cfg: object
) -> list[Run]:
    c = ToyConfig(log=str(log), **cfg)  # type: ignore[arg-type]
    return [Run(f"toy/{n}", toy_run, c, ToyData(n, rows), group=n) for n in names]


def exp(tmp_path: Path, **kw: object) -> Experiment:
    return Experiment(
        "toy", code=("mercato.core",), root=tmp_path / "bench", repo=tmp_path, show_progress=False, **kw
    )  # type: ignore[arg-type]


def test_second_run_is_served_from_cache(tmp_path: Path) -> None:
    log = tmp_path / "log"
    first = exp(tmp_path).run(runs(log))
    assert calls(log) == ["a", "b", "c", "d"]
    e = exp(tmp_path)
    second = e.run(runs(log))
    assert second == first and e.computed == []
    assert calls(log) == ["a", "b", "c", "d"]  # nothing recomputed
    assert e.complete and first["toy/a"] == {"value": 10.0, "name": "a"}


def test_changing_the_data_spec_invalidates_a_cached_run(tmp_path: Path) -> None:
    log = tmp_path / "log"
    exp(tmp_path).run(runs(log, rows=10))
    e = exp(tmp_path)
    out = e.run(runs(log, rows=20))  # e.g. more synthetic rows: same names, other data
    assert out["toy/a"]["value"] == 20.0
    assert sorted(e.computed) == ["toy/a", "toy/b", "toy/c", "toy/d"]


def test_changing_the_config_or_the_code_invalidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "log"
    exp(tmp_path).run(runs(log))
    e = exp(tmp_path)
    assert e.run(runs(log, a=3.0))["toy/b"]["value"] == 30.0 and len(e.computed) == 4
    e2 = exp(tmp_path)
    monkeypatch.setattr(e2, "code", "another-source-tree")
    e2.run(runs(log, a=3.0))
    assert len(e2.computed) == 4


def test_code_fingerprint_follows_the_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "fpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_fingerprint(["fpkg"])
    assert code_fingerprint(["fpkg"]) == before
    (pkg / "__init__.py").write_text("X = 2\n")
    assert code_fingerprint(["fpkg"]) != before
    with pytest.raises(ValueError, match="no_such_pkg"):
        code_fingerprint(["no_such_pkg"])


def test_an_interrupted_run_resumes_at_the_first_missing_run(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with pytest.raises(RuntimeError, match="interrupted at c"):
        exp(tmp_path).run(runs(log, fail_on="c"))
    assert calls(log) == ["a", "b"]  # a and b were cached before the failure
    # the failing config differs (fail_on enters the key), so resume with the config that works on c:
    e = exp(tmp_path)
    e.run(runs(log, fail_on="c", names=("a", "b")) + runs(log, names=("c", "d")))
    assert sorted(e.computed) == ["toy/c", "toy/d"]


def test_shards_split_the_groups_and_a_final_call_reports_from_the_cache(tmp_path: Path) -> None:
    log = tmp_path / "log"
    names = tuple("abcdefgh")
    s0, s1 = exp(tmp_path, shard="0/2"), exp(tmp_path, shard="1/2")
    r0, r1 = s0.run(runs(log, names)), s1.run(runs(log, names))
    assert not s0.complete  # a shard never reports
    assert set(s0.computed).isdisjoint(s1.computed)
    assert len(s0.computed) + len(s1.computed) == 8 and s0.computed and s1.computed
    assert set(r1) == set(r0) | set(s1.computed)  # shard 1 also sees what shard 0 cached
    final = exp(tmp_path)
    assert len(final.run(runs(log, names))) == 8 and final.computed == [] and final.complete


def test_merge_copies_another_roots_results(tmp_path: Path) -> None:
    log = tmp_path / "log"
    other = Experiment(
        "toy", code=("mercato.core",), root=tmp_path / "elsewhere", repo=tmp_path, show_progress=False
    )
    other.run(runs(log))
    e = exp(tmp_path, merge=[tmp_path / "elsewhere" / "toy"])
    e.run(runs(log))
    assert e.computed == [] and calls(log) == ["a", "b", "c", "d"]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        exp(tmp_path, merge=[tmp_path / "nowhere"])


@pytest.mark.integration  # starts worker processes (about 2 s)
def test_process_pool_gives_the_serial_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", HERE)  # loky workers import exp_fns by name
    serial = exp(tmp_path / "s").run(runs(tmp_path / "log1"))
    e = exp(tmp_path / "p", workers=2)
    pooled = e.run(runs(tmp_path / "log2"))
    assert pooled == serial
    assert sorted(calls(tmp_path / "log2")) == ["a", "b", "c", "d"]


def test_meta_records_wall_time_threads_and_load(tmp_path: Path) -> None:
    e = exp(tmp_path)
    e.run(runs(tmp_path / "log"))
    meta = e.meta["toy/a"]
    for key in ("wall_s", "torch_threads", "load_avg_1m", "cpu_count", "git", "code", "version"):
        assert key in meta
    assert e.wall_seconds() >= 0 and "CPU cores" in machine_line(e.all_meta())
    entry = json.loads(next((tmp_path / "bench" / "toy" / "cache").glob("*.json")).read_text())
    assert entry["data"]["__class__"] == "ToyData" and entry["config"]["a"] == 1.0


def test_unique_names_and_json_results_are_enforced(tmp_path: Path) -> None:
    r = runs(tmp_path / "log")
    with pytest.raises(ValueError, match="repeated"):
        exp(tmp_path).run([r[0], r[0]])
    bad = Run("bad", _not_json, None, None)
    with pytest.raises(TypeError, match="'bad'"):
        exp(tmp_path).run([bad])


def _not_json(config: object, data: object) -> dict[str, object]:
    return {"x": object()}


def test_quick_reports_never_touch_docs(tmp_path: Path) -> None:
    e = exp(tmp_path, quick=True)
    e.run(runs(tmp_path / "log"))
    e.report({"docs/toy.md": {"toy-main": "| a |\n|---|\n| 1 |"}})
    assert not (tmp_path / "docs").exists()
    text = (tmp_path / "bench" / "toy-quick" / "docs" / "toy.md").read_text()
    assert "<!-- mercato:begin toy-main -->" in text and "| 1 |" in text
    full = exp(tmp_path)
    full.run(runs(tmp_path / "log"))
    full.report({"docs/toy.md": {"toy-main": "generated"}})
    assert "generated" in (tmp_path / "docs" / "toy.md").read_text()


def test_shard_report_is_skipped(tmp_path: Path) -> None:
    e = exp(tmp_path, shard="0/2")
    e.run(runs(tmp_path / "log"))
    e.report({"docs/toy.md": {"x": "y"}})
    assert not (tmp_path / "docs").exists()


def test_runner_args_and_validation(tmp_path: Path) -> None:
    p = add_runner_args(argparse.ArgumentParser())
    args = p.parse_args(["--quick", "--shard", "1/3", "--workers", "2", "--root", str(tmp_path)])
    e = Experiment.from_args("toy", args, code=("mercato.core",), repo=tmp_path)
    assert e.quick and e.shard == (1, 3) and e.workers == 2 and e.root == tmp_path / "toy-quick"
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(ValueError, match="--shard"):
            exp(tmp_path, shard=bad)


def test_best_of_takes_the_fastest_call() -> None:
    n = {"calls": 0}

    def fn() -> None:
        n["calls"] += 1

    import mercato.core.experiments as ex

    orig = ex.time.perf_counter
    seq = [0.0, 1.0, 5.0, 5.5, 6.0, 8.4]  # perf_counter at start/end of the 3 timed calls: 1.0, 0.5, 2.4
    ex.time.perf_counter = lambda: seq.pop(0)  # type: ignore[assignment]
    try:
        assert best_of(fn, repeats=3, warmup=2) == pytest.approx(0.5)
    finally:
        ex.time.perf_counter = orig  # type: ignore[assignment]
    assert n["calls"] == 5  # 2 warm-up + 3 timed
    with pytest.raises(ValueError):
        best_of(fn, repeats=0)


def test_describe_renders_the_config_used() -> None:
    cfg = ToyConfig(a=0.001)
    assert describe(cfg, ["a"], names={"a": "lr"}) == "lr 0.001"
    with pytest.raises(KeyError, match="batch"):
        describe(cfg, ["batch"])


@pytest.mark.integration
def test_ray_local_cluster_gives_the_pool_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", HERE)
    serial = exp(tmp_path / "s").run(runs(tmp_path / "log1"))
    e = exp(tmp_path / "r", executor="ray", workers=2)
    assert e.run(runs(tmp_path / "log2")) == serial
    assert sorted(e.computed) == sorted(serial)

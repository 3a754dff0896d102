"""Diffs, the offline mutator, islands, migration, the MAP-Elites archive, resume, and the LLM path (fake server)."""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from mercato.evolvesignal.config import EvaluationConfig, SearchConfig
from mercato.evolvesignal.mutate import DiffError, OfflineMutator, OpenAICompatibleLLM, apply_diff, constants
from mercato.evolvesignal.programs import WEBSTER_PROGRAM
from mercato.evolvesignal.sandbox import run_program
from mercato.evolvesignal.search import Search, _h
from mercato.evolvesignal.sim import SCENARIOS

SURR = EvaluationConfig(fitness="surrogate", seeds=(1,))


def _cfg(**kw: object) -> SearchConfig:
    base = {
        "iterations": 4, "islands": 3, "population": 4, "migration_interval": 2, "evaluation": SURR,
        "children_per_island": 1, "prefilter": 1.0,  # one child per island, all scored (the pre-filter has its own tests)
    }  # fmt: skip
    base.update(kw)
    return SearchConfig(**base)  # type: ignore[arg-type]


def test_apply_diff_and_errors() -> None:
    out = apply_diff(
        WEBSTER_PROGRAM, "<<<<<<< SEARCH\nC_MAX = 130.0\n=======\nC_MAX = 99.0\n>>>>>>> REPLACE\n"
    )
    assert constants(out)["C_MAX"] == 99.0 and constants(WEBSTER_PROGRAM)["C_MAX"] == 130.0
    with pytest.raises(DiffError, match="not found"):
        apply_diff(WEBSTER_PROGRAM, "<<<<<<< SEARCH\nNOPE = 1\n=======\nX = 2\n>>>>>>> REPLACE\n")
    with pytest.raises(DiffError, match="no SEARCH"):
        apply_diff(WEBSTER_PROGRAM, "just prose")


def test_offline_mutator_is_seeded_and_every_template_gives_a_runnable_program() -> None:
    m = OfflineMutator()
    a = m.propose(WEBSTER_PROGRAM, None, random.Random(3))
    assert a == m.propose(WEBSTER_PROGRAM, None, random.Random(3))
    rng = random.Random(0)
    for op in ("numeric", "cycle_bounds", "right_turn", "green_rescale", "saturation", "oversat", "critical"):
        diff = getattr(m, op)(WEBSTER_PROGRAM, rng)
        child = apply_diff(WEBSTER_PROGRAM, diff)
        assert child != WEBSTER_PROGRAM, op
        assert run_program(child, [SCENARIOS["balanced"], SCENARIOS["oversaturated"]]).ok, op
    other = apply_diff(WEBSTER_PROGRAM, m.cycle_bounds(WEBSTER_PROGRAM, random.Random(1)))
    cross = apply_diff(
        WEBSTER_PROGRAM,
        m.crossover(WEBSTER_PROGRAM, other, random.Random(5))
        or "<<<<<<< SEARCH\nC_MIN\n=======\nC_MIN\n>>>>>>> REPLACE",
    )
    assert set(constants(cross).items()) <= set(constants(WEBSTER_PROGRAM).items()) | set(
        constants(other).items()
    )


def test_migration_moves_the_best_program_to_the_next_island() -> None:
    s = Search(_cfg(iterations=0))
    s.initialize()
    best = "p_star"
    s.programs[best] = {**s.programs["p0"], "id": best, "score": 0.99}
    s.programs["p9"] = {**s.programs["p0"], "id": "p9", "score": 0.99}
    s.islands[0].append(best)
    assert best not in s.islands[1]
    s.migrate()
    assert best in s.islands[1]
    assert best in s.islands[0]  # copied, not removed


def test_archive_keeps_the_best_per_cell() -> None:
    s = Search(_cfg(iterations=0))
    s.initialize()
    base = {"ok": True, "delay": 1.0, "stops": 1.0, "mean_cycle": 100.0, "reason": ""}
    lo = s._add(WEBSTER_PROGRAM, {**base, "score": 0.1}, 0, None, "t")
    hi = s._add(WEBSTER_PROGRAM, {**base, "score": 0.9}, 0, None, "t")
    lo2 = s._add(WEBSTER_PROGRAM, {**base, "score": 0.2}, 0, None, "t")
    cell = s.cell(s.programs[hi])
    assert s.archive[cell] == hi
    assert lo != hi != lo2
    failed = s._add("x", {**base, "ok": False, "score": 0.0, "reason": "boom"}, 0, None, "t")
    assert failed not in s.islands[0]


def test_search_improves_and_keeps_populations_bounded() -> None:
    s = Search(_cfg(iterations=4))
    best = s.run()
    assert best["score"] > s.programs["p0"]["score"]
    assert all(len(m) <= 4 for m in s.islands)
    assert [h["best_score"] for h in s.history] == sorted(h["best_score"] for h in s.history)


def test_resumed_search_equals_uninterrupted(tmp_path: Path) -> None:
    full = Search(_cfg(iterations=4))
    full.run()
    ck = tmp_path / "ck.json"
    first = Search(_cfg(iterations=2))
    first.run(ck)
    resumed = Search(_cfg(iterations=4))
    with pytest.raises(ValueError, match="another search config"):
        resumed.run(ck)
    # same search, longer budget: the checkpoint's config must match, so rewrite its iteration count
    data = json.loads(ck.read_text())
    data["config"]["iterations"] = 4
    ck.write_text(json.dumps(data))
    resumed.run(ck)
    a, b = full.state(), resumed.state()
    a.pop("config"), b.pop("config")
    assert json.loads(json.dumps(a)) == b


class _FakeLLM(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _FakeLLM.requests.append(body)
        n = len(_FakeLLM.requests)
        content = (
            "Shorter cycles.\n<<<<<<< SEARCH\nC_MAX = 130.0\n=======\nC_MAX = 100.0\n>>>>>>> REPLACE\n"
            if n % 2
            else "I cannot help with that."
        )
        out = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _FakeLLM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    monkeypatch.setenv("MERCATO_LLM_BASE_URL", url)
    monkeypatch.setenv("MERCATO_LLM_MODEL", "fake-model")
    _FakeLLM.requests = []
    yield url
    server.shutdown()
    server.server_close()


def test_llm_mutator_against_a_fake_openai_server(fake_llm: str) -> None:
    llm = OpenAICompatibleLLM.from_env()
    assert llm.base_url == fake_llm and llm.model == "fake-model"
    s = Search(_cfg(iterations=2, islands=2, mutator="llm"))
    s.run()
    assert len(_FakeLLM.requests) == 4
    req = _FakeLLM.requests[0]
    assert req["model"] == "fake-model" and req["messages"][0]["role"] == "system"
    assert "C_MAX = 130.0" in req["messages"][1]["content"]  # the current program is in the prompt
    valid = sum(
        1
        for i, r in enumerate(_FakeLLM.requests)
        if i % 2 == 0 and "C_MAX = 130.0" in r["messages"][1]["content"]
    )
    assert s.edits == {"proposed": 4, "applied": valid} and valid >= 1  # every other answer has no valid edit
    assert any(constants(p["code"]).get("C_MAX") == 100.0 for p in s.programs.values())


def test_llm_mutator_needs_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MERCATO_LLM_BASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="MERCATO_LLM_BASE_URL"):
        OpenAICompatibleLLM.from_env()


def test_prefilter_sends_only_the_surrogate_best_new_children_to_the_fitness() -> None:
    # fitness = surrogate too, so "SUMO" evaluations are cheap here; the pre-filter's ranking is what is checked
    s = Search(_cfg(iterations=0, islands=2, children_per_island=4, prefilter=0.25))
    s.initialize()
    mut, rng = OfflineMutator(), random.Random(11)
    kids = []
    for k in range(6):
        code = apply_diff(WEBSTER_PROGRAM, mut.numeric(WEBSTER_PROGRAM, rng))
        kids.append((k % 2, "p0", code, "edit"))
    kids.append((0, "p0", "def broken(:\n", "edit"))  # refused by the sandbox: kept, scores 0 without SUMO
    kept = s.prefilter(kids)
    new = list(dict.fromkeys(c[2] for c in kids))
    assert not s.surrogate_memo[_h("def broken(:\n")]["ok"]
    ok_new = [c for c in new if s.surrogate_memo[_h(c)]["ok"]]
    scores = [s.surrogate_memo[_h(c)]["score"] for c in ok_new]
    top = {
        ok_new[j]
        for j in sorted(range(len(ok_new)), key=lambda j: -scores[j])[: math.ceil(0.25 * len(ok_new))]
    }
    assert len(ok_new) >= 5 and len(top) == 2 and len(set(scores)) == len(scores)
    assert [c[2] for c in kept] == [c[2] for c in kids if c[2] in top | {"def broken(:\n"}]
    assert s.counts["surrogate"] == len(new) and s.counts["filtered"] == len(ok_new) - len(top)
    # a child already scored by the fitness passes without being ranked
    again = s.prefilter([(0, "p0", WEBSTER_PROGRAM, "edit")])
    assert again == [(0, "p0", WEBSTER_PROGRAM, "edit")]


def test_prefiltered_search_counts_and_resumes(tmp_path: Path) -> None:
    cfg = _cfg(iterations=2, islands=2, children_per_island=2, prefilter=0.5)
    full = Search(cfg)
    full.run()
    c = full.counts
    assert c["children"] == 8 and c["surrogate"] >= c["filtered"] > 0
    assert (
        c["sumo_programs"] == len(full.memo) <= 1 + 2 * 2
    )  # initial + at most ceil(0.5 * 4) = 2 per generation
    ck = tmp_path / "ck.json"
    Search(replace(cfg, iterations=1)).run(ck)
    data = json.loads(ck.read_text())
    data["config"]["iterations"] = 2
    ck.write_text(json.dumps(data))
    resumed = Search(cfg)
    resumed.run(ck)
    a, b = full.state(), resumed.state()
    a.pop("config"), b.pop("config")
    assert json.loads(json.dumps(a)) == b

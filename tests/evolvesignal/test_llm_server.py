"""The local OpenAI-compatible server (mercato.llm.openai_server): the API shape on a tiny random model, and the
packaged SmolLM2 served for real as EvolveSignal's LLM mutator (integration)."""

from __future__ import annotations

import pytest

from mercato.evolvesignal.config import EvaluationConfig, SearchConfig
from mercato.evolvesignal.mutate import OpenAICompatibleLLM
from mercato.evolvesignal.search import Search
from mercato.llm.openai_server import LocalOpenAIServer, create_app


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from mercato.llm.loading import load_policy

    return TestClient(create_app(load_policy("tiny", device="cpu"), "tiny-model", max_tokens_cap=16))


def test_chat_completion_has_the_openai_shape(client) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "tiny-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    r = client.post("/v1/chat/completions", json={**body, "temperature": 0.0})
    assert r.status_code == 200
    data = r.json()
    assert data["object"] == "chat.completion" and data["model"] == "tiny-model"
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant" and isinstance(choice["message"]["content"], str)
    u = data["usage"]
    assert 1 <= u["completion_tokens"] <= 5 and u["prompt_tokens"] > 0
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert choice["finish_reason"] == ("length" if u["completion_tokens"] == 5 else "stop")
    again = client.post("/v1/chat/completions", json={**body, "temperature": 0.0}).json()
    assert again["choices"][0]["message"]["content"] == choice["message"]["content"]  # greedy repeats


def test_bad_requests_are_refused_with_the_field(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post(
        "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "max_tokens": 17}
    )
    assert r.status_code == 422 and "max_tokens" in r.text
    r = client.post("/v1/chat/completions", json={"messages": []})
    assert r.status_code == 422 and "messages" in r.text
    assert client.get("/v1/models").json()["data"][0]["id"] == "tiny-model"


@pytest.mark.integration
def test_smollm2_served_locally_mutates_programs(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with LocalOpenAIServer("smollm2", threads=1, log_path=str(tmp_path / "server.log")) as server:
        monkeypatch.setenv("MERCATO_LLM_BASE_URL", server.base_url)
        monkeypatch.setenv("MERCATO_LLM_MODEL", "smollm2")
        llm = OpenAICompatibleLLM.from_env()
        assert llm.complete("Reply with one word.")  # a real answer from the real model
        cfg = SearchConfig(
            iterations=1, islands=3, population=3, mutator="llm", children_per_island=1, prefilter=1.0,
            evaluation=EvaluationConfig(fitness="surrogate", seeds=(1,)),
        )  # fmt: skip
        s = Search(cfg)
        s.mutator.max_tokens = 96
        s.run()
        assert s.edits["proposed"] == 3 and 0 <= s.edits["applied"] <= 3
        assert len(s.programs) == 3 + s.edits["applied"]  # 3 seeds + one record per applied edit
        pid = server.proc.pid if server.proc else None
    assert server.proc is not None and server.proc.poll() is not None and pid is not None  # stopped

"""Serving runtime: the two modes agree, bad input is a 4xx, cold start, store fallback, version pinning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mercato.aif.serve import AIFRuntime, FaissRetriever, create_app
from mercato.aif.store import EmbeddedStore, StoreUnavailable
from mercato.aif.toy import ToyConfig, ToySplitModel, model_version, toy_catalog

CAT = toy_catalog(num_users=20, num_items=120, seq_len=8, seed=0)


def _runtime(mode: str, store=None, seed: int = 0, n: int = 60) -> AIFRuntime:  # type: ignore[no-untyped-def]
    model = ToySplitModel(CAT, ToyConfig(item_hidden=16, item_layers=1, seed=seed)).eval()
    rng = np.random.default_rng(1)
    retr = FaissRetriever(rng.standard_normal((CAT.num_items, 8)), rng.standard_normal((CAT.num_users, 8)))
    return AIFRuntime(model, CAT, retr, store, mode=mode, num_candidates=n)  # type: ignore[arg-type]


def test_split_model_composition_oracle() -> None:
    model = ToySplitModel(CAT, ToyConfig(item_hidden=16, item_layers=1)).eval()
    ids = np.arange(30)
    user, items = CAT.user_batch(3, {"hour": 5}), CAT.item_batch(ids)
    full = model(user, items)
    composed = model.interact(model.user_state(user), model.item_state(items))
    torch.testing.assert_close(full, composed)
    assert model_version(model) == model_version(ToySplitModel(CAT, ToyConfig(item_hidden=16, item_layers=1)))


def test_modes_agree_and_store_is_used(tmp_path: Path) -> None:
    seq = _runtime("sequential")
    store = EmbeddedStore(tmp_path, CAT.num_items, 32)
    aif = _runtime("aif", store)
    a = seq.rank(4, {"hour": 3}, k=10)
    b = aif.rank(4, {"hour": 3}, k=10)  # store empty: every state computed online, then backfilled
    assert b.computed_online == 60 and b.store_status == "ok"
    aif.pool.shutdown(wait=True)  # wait for the background backfill
    aif.pool = type(aif.pool)(max_workers=2)
    c = aif.rank(4, {"hour": 3}, k=10)
    assert c.from_store == 60 and c.computed_online == 0
    assert a.items == b.items == c.items
    np.testing.assert_allclose(a.scores, c.scores, rtol=1e-5, atol=1e-6)
    assert a.model_version == c.model_version


def test_store_down_falls_back_online() -> None:
    class Down:
        num_items, dim = CAT.num_items, 32

        def get(self, version, ids):  # type: ignore[no-untyped-def]
            raise StoreUnavailable("down")

        def put(self, version, ids, states):  # type: ignore[no-untyped-def]
            raise StoreUnavailable("down")

    rt = _runtime("aif", Down())
    ref = _runtime("sequential").rank(2, {}, k=5)
    res = rt.rank(2, {}, k=5)
    assert res.store_status == "unavailable" and res.computed_online == 60
    assert res.items == ref.items
    assert not rt.store_available()  # it stops asking for store_retry_s


def test_version_swap_pins_a_request(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, CAT.num_items, 32)
    rt = _runtime("aif", store)
    v1 = rt.version
    ids = np.arange(CAT.num_items)
    store.put(v1, ids, rt.item_states_online(rt._live.model, ids))
    other = ToySplitModel(CAT, ToyConfig(item_hidden=16, item_layers=1, seed=7)).eval()
    v2 = rt.swap_model(other)
    assert v2 != v1
    res = rt.rank(1, {}, k=5)
    assert res.model_version == v2 and res.from_store == 0  # v1's states are never used by v2
    ref = _runtime("sequential", seed=7).rank(1, {}, k=5)
    assert res.items == ref.items


@pytest.fixture
def client():  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(create_app(_runtime("sequential"))) as c:
        yield c


def test_http_rank_health_metrics(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/rank", json={"user_id": 3, "context": {"hour": 1}, "k": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["items"]) == 4 and body["scores"] == sorted(body["scores"], reverse=True)
    assert body["cold_start"] is False
    assert client.get("/health").json()["status"] == "ok"
    m = client.get("/metrics").text
    assert 'aif_rank_requests_total{status="200"} 1.0' in m and "aif_rank_latency_seconds_bucket" in m


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"user_id": "x", "k": 3}, 422, "user_id"),
        ({"k": 3}, 422, "user_id"),
        ({"user_id": 1, "k": 3, "bogus": 1}, 422, "bogus"),
        ({"user_id": 1, "k": 61}, 422, "k=61"),
        ({"user_id": 1, "k": 0}, 422, "k=0"),
        ({"user_id": 1, "k": 2, "context": {"weekday": 1}}, 422, "weekday"),
        ({"user_id": 1, "k": 2, "context": {"hour": 99}}, 422, "hour"),
        ({"user_id": 1, "k": 2, "candidates": [1, 5000]}, 404, "5000"),
        ({"user_id": 1, "k": 3, "candidates": [1, 2]}, 422, "k=3"),
    ],
)
def test_http_bad_input_is_4xx(client, body, status, needle) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/rank", json=body)
    assert r.status_code == status and needle in r.text


def test_http_malformed_json_and_cold_start(client) -> None:  # type: ignore[no-untyped-def]
    r = client.post("/rank", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    r = client.post("/rank", json={"user_id": 10_000, "k": 3})
    assert r.status_code == 200 and r.json()["cold_start"] is True
    r = client.post("/rank", json={"user_id": 1, "k": 2, "candidates": [7, 9, 11]})
    assert r.status_code == 200 and set(r.json()["items"]) <= {7, 9, 11}

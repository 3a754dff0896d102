"""Fault tests on a real redis-server: outage, recovery, backfill, version changes, two workers (integration)."""

from __future__ import annotations

import threading
import time

import httpx
import numpy as np
import pytest

from mercato.aif.launch import ServerProcess
from mercato.aif.loadgen import run_load
from mercato.aif.serve import AIFRuntime, FaissRetriever, ServeConfig
from mercato.aif.store import RedisStore
from mercato.aif.toy import ToyConfig, ToySplitModel, toy_catalog

pytestmark = pytest.mark.integration

CAT = toy_catalog(num_users=20, num_items=120, seq_len=8, seed=0)


def _runtime(store, seed: int = 0) -> AIFRuntime:  # type: ignore[no-untyped-def]
    model = ToySplitModel(CAT, ToyConfig(item_hidden=16, item_layers=1, seed=seed)).eval()
    rng = np.random.default_rng(1)
    retr = FaissRetriever(rng.standard_normal((CAT.num_items, 8)), rng.standard_normal((CAT.num_users, 8)))
    return AIFRuntime(model, CAT, retr, store, mode="aif", num_candidates=60, backfill=True)


def _wait(pred, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_missing_item_is_computed_and_backfilled(redis_server) -> None:  # type: ignore[no-untyped-def]
    store = RedisStore(redis_server.url, CAT.num_items, 32, timeout_s=1.0)
    rt = _runtime(store)
    ids = np.arange(CAT.num_items)
    store.put(rt.version, ids, rt.item_states_online(rt._live.model, ids))
    store.client.hdel(f"aif:v:{rt.version}", "7")
    res = rt.rank(1, {}, k=3, candidates=[5, 7, 9])
    assert res.from_store == 2 and res.computed_online == 1
    assert _wait(lambda: bool(store.get(rt.version, [7])[1][0]))
    np.testing.assert_allclose(
        store.get(rt.version, [7])[0][0], rt.item_states_online(rt._live.model, np.array([7]))[0]
    )
    assert rt.rank(1, {}, k=3, candidates=[5, 7, 9]).from_store == 3


def test_version_change_never_mixes_states(redis_server) -> None:  # type: ignore[no-untyped-def]
    store = RedisStore(redis_server.url, CAT.num_items, 32, timeout_s=1.0)
    rt = _runtime(store)
    models = {
        0: rt._live.model,
        7: ToySplitModel(CAT, ToyConfig(item_hidden=16, item_layers=1, seed=7)).eval(),
    }
    ids = np.arange(CAT.num_items)
    store.put(rt.version, ids, rt.item_states_online(models[0], ids))
    # reference scores of each version, computed fully online
    ref = {}
    for seed in models:
        r2 = _runtime(None, seed=seed)
        r2.mode = "sequential"
        ref[r2.version] = r2.rank(2, {}, k=60)
    stop = threading.Event()

    def swapper() -> None:
        i = 0
        while not stop.is_set():
            i += 1
            rt.swap_model(models[7 if i % 2 else 0])
            time.sleep(0.003)

    t = threading.Thread(target=swapper)
    t.start()
    try:
        seen = set()
        for _ in range(40):
            res = rt.rank(2, {}, k=60)
            want = ref[res.model_version]
            seen.add(res.model_version)
            assert res.items == want.items  # every score of this answer comes from one version's model
            np.testing.assert_allclose(res.scores, want.scores, rtol=1e-5, atol=1e-6)
    finally:
        stop.set()
        t.join()
    assert len(seen) == 2


def test_redis_outage_keeps_answering_then_recovers(redis_server, serving_folder) -> None:  # type: ignore[no-untyped-def]
    cfg = ServeConfig(checkpoint=str(serving_folder), store=redis_server.url, num_candidates=200)  # AIFModel
    with ServerProcess(cfg) as srv:
        body = {"user_id": 3, "k": 5}
        first = httpx.post(srv.url + "/rank", json=body).json()
        assert first["store_status"] == "ok" and first["from_store"] == 200
        result: dict[str, object] = {}
        t = threading.Thread(
            target=lambda: result.setdefault("r", run_load(srv.url, 40, 160, 4.0, num_users=50))
        )
        t.start()
        time.sleep(1.0)
        redis_server.stop()
        down = httpx.post(srv.url + "/rank", json=body).json()
        time.sleep(1.0)
        redis_server.start()
        t.join()
        load = result["r"]
        assert load.sent == 160 and load.failed == 0, load.status_counts  # type: ignore[attr-defined]
        assert down["store_status"] == "unavailable" and down["computed_online"] == 200
        assert down["items"] == first["items"]
        assert _wait(lambda: httpx.post(srv.url + "/rank", json=body).json()["store_status"] == "ok")
        # the restarted Redis is empty: the misses were backfilled, so the store serves them again
        assert _wait(lambda: httpx.post(srv.url + "/rank", json=body).json()["from_store"] == 200)


def test_two_workers_share_redis_and_agree(redis_server, serving_folder) -> None:  # type: ignore[no-untyped-def]
    cfg = ServeConfig(checkpoint=str(serving_folder), store=redis_server.url, num_candidates=100)  # AIFModel
    bodies = [{"user_id": u, "context": {"hour": u % 24}, "k": 10} for u in range(12)]
    with ServerProcess(cfg, workers=1) as one:
        single = [httpx.post(one.url + "/rank", json=b).json() for b in bodies]
    with ServerProcess(cfg, workers=2) as two:
        pids = set()
        multi = []
        with httpx.Client(base_url=two.url) as c:  # new connections spread over the workers
            for b in bodies * 3:
                with httpx.Client(base_url=two.url) as fresh:
                    multi.append(fresh.post("/rank", json=b).json())
                    pids.add(fresh.get("/health").json()["pid"])
            assert c.get("/health").status_code == 200
    for i, s in enumerate(single * 3):
        assert multi[i]["items"] == s["items"] and multi[i]["model_version"] == s["model_version"]
        np.testing.assert_allclose(multi[i]["scores"], s["scores"], rtol=1e-5, atol=1e-6)
        assert multi[i]["from_store"] == 100
    assert len(pids) == 2

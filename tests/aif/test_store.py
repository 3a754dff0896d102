"""Nearline item store: versioned writes, no torn reads (threads, processes), the updater."""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

import numpy as np
import pytest

from mercato.aif.nearline import ItemEvent, NearlineUpdater, QueueEvents, RedisStreamEvents
from mercato.aif.store import EmbeddedStore, RedisStore, check_version

N, D = 16, 32


def _rows(ids: np.ndarray, value: float) -> np.ndarray:
    return np.full((ids.size, D), value, dtype=np.float32)


def _check_versioned(store) -> None:  # type: ignore[no-untyped-def]
    ids = np.array([1, 3])
    store.put("v1", ids, _rows(ids, 1.0))
    store.put("v2", np.array([3]), _rows(np.array([3]), 2.0))
    got, found = store.get("v1", [1, 3, 5])
    assert found.tolist() == [True, True, False]
    assert np.all(got[:2] == 1.0) and np.all(got[2] == 0.0)
    got2, found2 = store.get("v2", [1, 3])
    assert found2.tolist() == [False, True]  # v1's state of item 1 is never served to v2
    assert np.all(got2[1] == 2.0) and np.all(got2[0] == 0.0)
    got3, found3 = store.get("v3", [1])
    assert not found3.any()
    store.set_current_version("v2")
    assert store.current_version() == "v2"
    store.drop_version("v1")
    assert not store.get("v1", [1, 3])[1].any()
    with pytest.raises(KeyError, match="item id 99"):
        store.get("v2", [99])
    with pytest.raises(ValueError, match=r"shape \(1, 32\)"):
        store.put("v2", [0], np.zeros((1, 3)))


def test_embedded_versioned_writes(tmp_path: Path) -> None:
    _check_versioned(EmbeddedStore(tmp_path, N, D))


def test_embedded_reopen_checks_shape(tmp_path: Path) -> None:
    EmbeddedStore(tmp_path, N, D).put("v1", [2], np.ones((1, D)))
    assert EmbeddedStore(tmp_path, N, D).get("v1", [2])[1].all()  # a second opener sees the write
    with pytest.raises(ValueError, match="store.json"):
        EmbeddedStore(tmp_path, N, D + 1)


def test_bad_version_rejected() -> None:
    with pytest.raises(ValueError, match="model version"):
        check_version("a b/c")


def _assert_untorn(rows: np.ndarray, found: np.ndarray) -> int:
    # every written row is constant (one write's value); a torn row would mix two values
    assert np.all(rows[found].min(axis=1) == rows[found].max(axis=1))
    return int(found.sum())


def test_embedded_no_torn_reads_threads(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, N, 256)
    ids = np.arange(N)
    stop = threading.Event()

    def writer() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            store.put("v1", ids, np.full((N, 256), float(k), dtype=np.float32))

    t = threading.Thread(target=writer)
    t.start()
    try:
        seen = 0
        for _ in range(300):
            rows, found = store.get("v1", ids)
            seen += _assert_untorn(rows, found)
    finally:
        stop.set()
        t.join()
    assert seen > 0


def _proc_writer(root: str, n: int, d: int, rounds: int) -> None:
    store = EmbeddedStore(root, n, d)
    ids = np.arange(n)
    for k in range(1, rounds + 1):
        store.put("v1", ids, np.full((n, d), float(k), dtype=np.float32))


@pytest.mark.integration
def test_embedded_no_torn_reads_processes(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, N, 256)
    store.put("v1", np.arange(N), np.zeros((N, 256), dtype=np.float32))  # create the files first
    ctx = mp.get_context("spawn")
    writers = [ctx.Process(target=_proc_writer, args=(str(tmp_path), N, 256, 400)) for _ in range(2)]
    for w in writers:
        w.start()
    values: set[float] = set()
    try:
        while any(w.is_alive() for w in writers):
            rows, found = store.get("v1", np.arange(N))
            _assert_untorn(rows, found)
            values.update(rows[:, 0].tolist())
    finally:
        for w in writers:
            w.join(timeout=30)
    assert all(w.exitcode == 0 for w in writers)
    assert len(values) > 2  # the reader really overlapped the writers
    assert np.all(store.get("v1", np.arange(N))[0] == 400.0)


def _compute(version: str, ids: np.ndarray) -> np.ndarray:
    base = float(version.lstrip("v"))
    return (base * 1000 + ids[:, None] + np.zeros((1, D))).astype(np.float32)


def test_updater_item_and_model_events(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path, N, D)
    events = QueueEvents()
    up = NearlineUpdater(store, events, _compute, batch_size=5)
    events.publish(ItemEvent("model", "v1"))
    assert up.poll(0.01) == 1
    assert store.current_version() == "v1" and store.get("v1", np.arange(N))[1].all()
    assert store.get("v1", [7])[0][0, 0] == 1007.0
    events.publish(ItemEvent("model", "v2"))
    events.publish(ItemEvent("item", "v2", (4,)))
    assert up.poll(0.01) == 2
    assert store.current_version() == "v2" and store.get("v2", [4])[0][0, 0] == 2004.0
    assert store.get("v1", [4])[0][0, 0] == 1004.0  # the old version stays intact
    with pytest.raises(ValueError, match="kind"):
        ItemEvent("bogus", "v1")  # type: ignore[arg-type]


@pytest.mark.integration
def test_redis_versioned_and_untorn(redis_server) -> None:  # type: ignore[no-untyped-def]
    store = RedisStore(redis_server.url, N, D, namespace="t")
    _check_versioned(store)
    big = RedisStore(redis_server.url, N, 256, namespace="t2", timeout_s=1.0)
    ids = np.arange(N)
    stop = threading.Event()

    def writer() -> None:
        w = RedisStore(redis_server.url, N, 256, namespace="t2", timeout_s=1.0)
        k = 0
        while not stop.is_set():
            k += 1
            w.put("v1", ids, np.full((N, 256), float(k), dtype=np.float32))

    t = threading.Thread(target=writer)
    t.start()
    try:
        seen = sum(_assert_untorn(*big.get("v1", ids)) for _ in range(200))
    finally:
        stop.set()
        t.join()
    assert seen > 0


@pytest.mark.integration
def test_redis_stream_updater(redis_server) -> None:  # type: ignore[no-untyped-def]
    import redis

    store = RedisStore(redis_server.url, N, D, namespace="u", timeout_s=1.0)
    client = redis.Redis.from_url(redis_server.url)
    consumer = RedisStreamEvents(client, namespace="u")
    assert consumer.consume(0.01) == []
    RedisStreamEvents(redis.Redis.from_url(redis_server.url), namespace="u").publish(ItemEvent("model", "v3"))
    up = NearlineUpdater(store, consumer, _compute)
    assert up.poll(1.0) == 1
    assert store.current_version() == "v3"
    assert store.get("v3", [5])[0][0, 0] == 3005.0
    consumer_b = RedisStreamEvents(client, namespace="u", start_id="0")  # replay from the start
    assert [e.kind for e in consumer_b.consume(0.01)] == ["model"]

"""The AIF serving runtime: retrieval and the user side concurrently, item states nearline, one batched pass.

One request (``POST /rank``: user, context, k) in mode

* ``sequential`` (the baseline, digest §1.1): retrieval, then the user side, then the item side of *every*
  candidate online, then the interaction;
* ``aif``: retrieval (FAISS ANN) and the user side run concurrently on a thread pool; item states are read from
  the nearline store under the model version the request started with; states missing from the store are
  computed online and backfilled; then the interaction is scored for all candidates in one batched pass.

Both modes serve the same weights, so their scores are equal (up to float rounding). When the store cannot be
reached, the runtime computes every state online and stops asking the store for ``store_retry_s`` seconds
(then it tries again): answers keep coming, only slower.

Bad input never gives a 5xx: a malformed body or a bad context field is a 422, an unknown candidate item a
404, ``k`` above the candidate count a 422, each with a message naming the field. An unknown user is the
documented **cold-start answer**: the user side runs on an empty profile and sequence, retrieval uses the mean
item vector, and the response says ``"cold_start": true``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from mercato.aif.store import ItemStateStore, StoreUnavailable
from mercato.aif.toy import SplitModel, model_version

__all__ = ["AIFRuntime", "FaissRetriever", "RankError", "RankResult", "ServeConfig", "create_app"]

log = logging.getLogger(__name__)

Mode = Literal["sequential", "aif"]


class RankRequest(BaseModel):
    """Body of ``POST /rank``; unknown keys and wrongly typed values are refused (422)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    user_id: int = Field(description="user id; unknown ids get the cold-start answer")
    context: dict[str, int] = Field(default_factory=dict, description="context field -> value")
    k: int = Field(10, description="items to return")
    candidates: list[int] | None = Field(None, description="rank these items instead of retrieving")


class RankError(Exception):
    """A request the runtime refuses: HTTP ``status`` (4xx) and a message naming the field."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class FaissRetriever:
    """Candidate retrieval by inner product over item vectors with a FAISS HNSW index (approximate)."""

    def __init__(
        self, item_vectors: np.ndarray, user_vectors: np.ndarray, hnsw_m: int = 32, ef_search: int = 256
    ):
        import faiss

        faiss.omp_set_num_threads(1)
        self.item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.user_vectors = np.ascontiguousarray(user_vectors, dtype=np.float32)
        d = self.item_vectors.shape[1]
        self.index = faiss.IndexHNSWFlat(d, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efSearch = ef_search
        self.index.add(self.item_vectors)
        self.cold_query = self.item_vectors.mean(0, keepdims=True)  # cold start: the mean item

    @property
    def num_items(self) -> int:
        return int(self.item_vectors.shape[0])

    def search(self, user_id: int | None, n: int) -> np.ndarray:
        """The ``n`` best items for ``user_id`` (``None``: cold start), best first."""
        q = self.cold_query if user_id is None else self.user_vectors[user_id : user_id + 1]
        ef = max(n, int(self.index.hnsw.efSearch))
        self.index.hnsw.efSearch = ef
        _, idx = self.index.search(q, n)
        ids = idx[0]
        return ids[ids >= 0].astype(np.int64)


def _version(model: Any) -> str:
    """The model version tag: a served AIFModel's own (weights and state layouts), else the weights' hash."""
    from mercato.aif.served import ServedAIF

    return model.version if isinstance(model, ServedAIF) else model_version(model)


@dataclass
class RankResult:
    """One ranked answer."""

    items: list[int]
    scores: list[float]
    model_version: str
    mode: str
    cold_start: bool
    from_store: int  # candidates whose state came from the store
    computed_online: int  # candidates whose item state was computed in this request
    store_status: str  # "ok", "unavailable" (Redis down: all computed online) or "none" (sequential)
    timings_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class _Live:
    model: Any
    version: str


class AIFRuntime:
    """Ranks one request; thread-safe; the model can be swapped while serving (:meth:`swap_model`)."""

    def __init__(
        self,
        model: SplitModel,
        catalog: Any,
        retriever: FaissRetriever,
        store: ItemStateStore | None,
        mode: Mode = "aif",
        num_candidates: int = 500,
        store_retry_s: float = 0.5,
        backfill: bool = True,
        threads: int = 2,
    ) -> None:
        if mode not in ("sequential", "aif"):
            raise ValueError(f"mode must be 'sequential' or 'aif', got {mode!r}")
        if num_candidates < 1 or num_candidates > catalog.num_items:
            raise ValueError(f"num_candidates must lie in [1, {catalog.num_items}], got {num_candidates}")
        self.catalog = catalog
        self.retriever = retriever
        self.store = store
        self.mode: Mode = mode
        self.num_candidates = num_candidates
        self.store_retry_s = store_retry_s
        self.backfill = backfill
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="aif")
        self._live = _Live(model, _version(model))
        self._store_down_until = 0.0
        self._lock = threading.Lock()

    # -- model versions ---------------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        return self._live.version

    def swap_model(self, model: SplitModel, version: str | None = None) -> str:
        """Serve ``model`` from now on; requests already running finish with the model they started with."""
        live = _Live(model, version or _version(model))
        self._live = live  # one reference assignment: a request sees the old pair or the new pair
        return live.version

    def item_states_online(self, model: Any, item_ids: np.ndarray) -> np.ndarray:
        """Item side computed now: (n, Di) float32."""
        with torch.inference_mode():
            return model.item_state(self.catalog.item_batch(item_ids)).float().numpy()

    def compute_for_version(self, version: str, item_ids: np.ndarray) -> np.ndarray:
        """The nearline updater's callback: states under ``version`` (must be the live one)."""
        live = self._live
        if live.version != version:
            raise ValueError(f"model version {version} is not live (live: {live.version})")
        return self.item_states_online(live.model, item_ids)

    # -- the store ---------------------------------------------------------------------------------------------
    def store_available(self) -> bool:
        return self.store is not None and time.monotonic() >= self._store_down_until

    def _store_get(self, version: str, ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, str]:
        if self.store is None:
            return None, np.zeros(ids.size, dtype=bool), "none"
        if not self.store_available():
            return None, np.zeros(ids.size, dtype=bool), "unavailable"
        try:
            states, found = self.store.get(version, ids)
            return states, found, "ok"
        except StoreUnavailable as exc:
            log.warning("item store unavailable, computing online for %.1fs: %s", self.store_retry_s, exc)
            self._store_down_until = time.monotonic() + self.store_retry_s
            return None, np.zeros(ids.size, dtype=bool), "unavailable"

    def _backfill(self, version: str, ids: np.ndarray, states: np.ndarray) -> None:
        if self.store is None or not self.backfill or not ids.size or not self.store_available():
            return
        try:
            self.store.put(version, ids, states)
        except StoreUnavailable:
            self._store_down_until = time.monotonic() + self.store_retry_s

    # -- ranking -----------------------------------------------------------------------------------------------
    def _validate(
        self, user_id: int, context: dict[str, int], k: int, candidates: list[int] | None
    ) -> tuple[int | None, np.ndarray | None]:
        for name, value in context.items():
            if name not in self.catalog.context_vocab:
                raise RankError(
                    422, f"context field '{name}' is unknown; valid: {sorted(self.catalog.context_vocab)}"
                )
            size = self.catalog.context_vocab[name]
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < size:
                raise RankError(
                    422, f"context field '{name}' must be an integer in [0, {size}), got {value!r}"
                )
        cands = None
        if candidates is not None:
            cands = np.asarray(candidates, dtype=np.int64)
            bad = cands[(cands < 0) | (cands >= self.catalog.num_items)]
            if bad.size:
                raise RankError(
                    404,
                    f"candidate item {int(bad[0])} is unknown (items are 0..{self.catalog.num_items - 1})",
                )
            if cands.size == 0:
                raise RankError(422, "candidates must not be empty")
        n = self.num_candidates if cands is None else int(cands.size)
        if k < 1 or k > n:
            raise RankError(422, f"k={k} must lie in [1, {n}] (the candidate set has {n} items)")
        user = user_id if 0 <= user_id < self.catalog.num_users else None
        return user, cands

    def _retrieve(self, user: int | None, cands: np.ndarray | None) -> np.ndarray:
        return cands if cands is not None else self.retriever.search(user, self.num_candidates)

    def _user(self, model: Any, user: int | None, context: dict[str, int]) -> torch.Tensor:
        with torch.inference_mode():
            return model.user_state(self.catalog.user_batch(user, context))

    async def rank_async(
        self, user_id: int, context: dict[str, int], k: int, candidates: list[int] | None = None
    ) -> RankResult:
        """Rank one request (see the module docstring for the two modes)."""
        user, cands = self._validate(user_id, context, k, candidates)
        live = self._live  # pin model + version for the whole request
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        if self.mode == "aif":
            ids_f = loop.run_in_executor(self.pool, self._retrieve, user, cands)
            user_f = loop.run_in_executor(self.pool, self._user, live.model, user, context)
            ids, ustate = await asyncio.gather(ids_f, user_f)
            timings["retrieval_and_user"] = (time.perf_counter() - t0) * 1e3
            t1 = time.perf_counter()
            states, found, status = await loop.run_in_executor(self.pool, self._store_get, live.version, ids)
            missing = np.nonzero(~found)[0]
            if states is None:
                states = np.zeros((ids.size, live.model.item_state_dim), dtype=np.float32)
            if missing.size:
                online = await loop.run_in_executor(
                    self.pool, self.item_states_online, live.model, ids[missing]
                )
                states[missing] = online
                if status == "ok":  # backfill in the background; never on the request's critical path
                    self.pool.submit(self._backfill, live.version, ids[missing], online)
            timings["item_states"] = (time.perf_counter() - t1) * 1e3
        else:
            ids = await loop.run_in_executor(self.pool, self._retrieve, user, cands)
            timings["retrieval"] = (time.perf_counter() - t0) * 1e3
            t1 = time.perf_counter()
            ustate = await loop.run_in_executor(self.pool, self._user, live.model, user, context)
            states = await loop.run_in_executor(self.pool, self.item_states_online, live.model, ids)
            missing, status = np.arange(ids.size), "none"
            timings["user_and_items"] = (time.perf_counter() - t1) * 1e3
        t2 = time.perf_counter()
        scores = await loop.run_in_executor(self.pool, self._interact, live.model, ustate, states)
        timings["interaction"] = (time.perf_counter() - t2) * 1e3
        order = np.argsort(-scores, kind="stable")[:k]
        timings["total"] = (time.perf_counter() - t0) * 1e3
        return RankResult(
            items=[int(i) for i in ids[order]],
            scores=[float(s) for s in scores[order]],
            model_version=live.version,
            mode=self.mode,
            cold_start=user is None,
            from_store=int(ids.size - missing.size),
            computed_online=int(missing.size),
            store_status=status,
            timings_ms=timings,
        )

    def _interact(self, model: Any, ustate: torch.Tensor, states: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model.interact(ustate, torch.from_numpy(states)).float().numpy()

    def rank(
        self, user_id: int, context: dict[str, int], k: int, candidates: list[int] | None = None
    ) -> RankResult:
        """Synchronous :meth:`rank_async` (tests, offline scoring)."""
        return asyncio.run(self.rank_async(user_id, context, k, candidates))


@dataclass
class ServeConfig:
    """How ``mercato aif serve`` builds its runtime."""

    mode: str = "aif"  # "aif" or "sequential"
    model: str = "aif"  # "aif": the AIFModel of `checkpoint`; "toy": the stand-in split model (tests)
    checkpoint: str = ""  # serving folder written by `mercato aif train` (mercato.aif.served.export_serving)
    store: str = "embedded"  # "embedded", "none" or a redis:// URL
    store_dir: str = "runs/aif/store"  # folder of the embedded store
    num_candidates: int = 500  # candidates retrieved per request
    num_users: int = 200  # toy catalogue: users (an AIFModel's catalogue comes from its serving folder)
    num_items: int = 2000  # toy catalogue: items
    seq_len: int = 50  # toy catalogue: behaviour sequence length
    item_hidden: int = 256  # stand-in model: item MLP width
    item_layers: int = 3  # stand-in model: item MLP depth
    seed: int = 0  # catalogue and weight seed (every worker builds the same)
    warm_store: bool = True  # compute all item states into the store at start-up (nearline updater)
    threads: int = 2  # request thread pool size
    torch_threads: int = 1  # torch intra-op threads per process


def build_model(cfg: ServeConfig) -> tuple[Any, Any]:
    """(model, catalogue) of ``cfg``: a trained AIFModel from its serving folder, or the stand-in."""
    if cfg.model == "aif":
        from mercato.aif.served import load_serving

        if not cfg.checkpoint:
            raise ValueError("checkpoint: a serving folder is required with model 'aif' (mercato aif train)")
        return load_serving(cfg.checkpoint)
    if cfg.model != "toy":
        raise ValueError(f"model must be 'aif' or 'toy', got {cfg.model!r}")
    from mercato.aif.toy import ToyConfig, ToySplitModel, toy_catalog

    catalog = toy_catalog(cfg.num_users, cfg.num_items, cfg.seq_len, seed=cfg.seed)
    model = ToySplitModel(
        catalog, ToyConfig(item_hidden=cfg.item_hidden, item_layers=cfg.item_layers, seed=cfg.seed)
    )
    return model.eval(), catalog


def build_runtime(cfg: ServeConfig) -> tuple[AIFRuntime, Any]:
    """Build the model and catalogue, retriever, store and nearline updater from ``cfg``."""
    from mercato.aif.nearline import ItemEvent, NearlineUpdater, QueueEvents, RedisStreamEvents
    from mercato.aif.store import EmbeddedStore, RedisStore

    torch.set_num_threads(cfg.torch_threads)
    model, catalog = build_model(cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    retriever = FaissRetriever(
        rng.standard_normal((catalog.num_items, 16)).astype(np.float32),
        rng.standard_normal((catalog.num_users, 16)).astype(np.float32),
    )
    dim = model.item_state_dim
    store: Any
    events: Any = None
    if cfg.store == "none":
        store = None
    elif cfg.store == "embedded":
        store = EmbeddedStore(cfg.store_dir, catalog.num_items, dim)
        events = QueueEvents()
    elif cfg.store.startswith("redis://"):
        import redis

        store = RedisStore(cfg.store, catalog.num_items, dim)
        events = RedisStreamEvents(redis.Redis.from_url(cfg.store, socket_timeout=5.0))
    else:
        raise ValueError(f"store must be 'embedded', 'none' or a redis:// URL, got {cfg.store!r}")
    runtime = AIFRuntime(
        model,
        catalog,
        retriever,
        store,
        mode=cfg.mode,  # type: ignore[arg-type]
        num_candidates=cfg.num_candidates,
        threads=cfg.threads,
    )
    updater = None
    if store is not None:
        updater = NearlineUpdater(store, events, runtime.compute_for_version)
        if cfg.warm_store and store.current_version() != runtime.version:
            try:
                updater.handle(ItemEvent("model", runtime.version))
            except StoreUnavailable as exc:
                log.warning("could not warm the item store: %s", exc)
        updater.start()
    return runtime, updater


def create_app(runtime: AIFRuntime, updater: Any = None) -> Any:
    """The FastAPI app: ``POST /rank``, ``GET /health``, ``GET /metrics`` (Prometheus)."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import (
        CONTENT_TYPE_LATEST,
        CollectorRegistry,
        Counter,
        Gauge,
        Histogram,
        generate_latest,
    )

    registry = CollectorRegistry()
    latency = Histogram(
        "aif_rank_latency_seconds",
        "POST /rank latency",
        ["mode"],
        registry=registry,
        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
    )
    requests = Counter("aif_rank_requests", "POST /rank answers by status", ["status"], registry=registry)
    states = Counter("aif_item_states", "item states by source", ["source"], registry=registry)
    store_up = Gauge("aif_store_available", "1 when the item store is in use", registry=registry)

    app = FastAPI(title="mercato AIF pre-ranking", version="0.1.0")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        requests.labels("422").inc()
        errs = [{"field": ".".join(str(x) for x in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"error": "invalid request", "details": errs})

    @app.post("/rank")
    async def rank(req: RankRequest) -> Any:
        t0 = time.perf_counter()
        try:
            res = await runtime.rank_async(req.user_id, req.context, req.k, req.candidates)
        except RankError as exc:
            requests.labels(str(exc.status)).inc()
            return JSONResponse(status_code=exc.status, content={"error": exc.message})
        latency.labels(runtime.mode).observe(time.perf_counter() - t0)
        requests.labels("200").inc()
        states.labels("store").inc(res.from_store)
        states.labels("online").inc(res.computed_online)
        store_up.set(1.0 if res.store_status == "ok" else 0.0)
        return res.__dict__

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "mode": runtime.mode,
            "model_version": runtime.version,
            "store": "none" if runtime.store is None else type(runtime.store).__name__,
            "store_available": runtime.store_available(),
            "pid": os.getpid(),
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.on_event("shutdown")
    async def _stop() -> None:
        if updater is not None:
            updater.stop()
        runtime.pool.shutdown(wait=False)

    return app


def app_from_env() -> Any:
    """uvicorn factory for several workers: the config is the YAML file named by ``MERCATO_AIF_CONFIG``."""
    from mercato.core.config import load_config

    path = os.environ.get("MERCATO_AIF_CONFIG")
    cfg = load_config(ServeConfig, path) if path else ServeConfig()
    runtime, updater = build_runtime(cfg)
    return create_app(runtime, updater)

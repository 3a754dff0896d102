"""Serving benchmarks of ``benchmarks/aif.py``: each run starts its own server (and Redis) on 127.0.0.1.

* :func:`latency_run`: one server (mode, candidates, store), a warm-up, a fixed-rate open-loop run, then a
  sweep of rates for the maximum sustainable QPS (the highest swept rate with zero failures, achieved rate
  >= 95 % of the target and p99 <= the SLO).
* :func:`soak_run`: a fixed-rate run of ``seconds``; with ``kill_at``/``restart_at`` the Redis server is
  stopped and restarted during it; returns the latency timeline.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from mercato.aif.launch import RedisProcess, ServerProcess
from mercato.aif.loadgen import run_load
from mercato.aif.serve import ServeConfig

__all__ = ["LatencyConfig", "SoakConfig", "latency_run", "soak_run"]


@dataclass
class LatencyConfig:
    """One paired latency/QPS measurement of ``sequential`` vs ``aif`` (both servers up at once)."""

    num_candidates: int = 2000  # candidates per request
    store: str = "embedded"  # "embedded" or "redis"
    item_hidden: int = 256  # stand-in model item-MLP width
    item_layers: int = 3  # stand-in model item-MLP depth
    rate: float = 10.0  # requests/s of the fixed-rate segments
    segments: int = (
        6  # fixed-rate segments per mode, interleaved (seq, aif, aif, seq, ...) against load drift
    )
    segment_seconds: float = 4.0  # length of one segment
    sweep_rates: tuple[float, ...] = (10.0, 20.0, 40.0, 80.0)  # rates tried for the max sustainable QPS
    sweep_seconds: float = 6.0  # seconds per swept rate
    slo_ms: float = 250.0  # p99 bound of "sustainable"
    warmup: int = 20  # requests per server before measuring


@dataclass
class SoakConfig:
    """A fixed-rate soak run, optionally with a Redis outage."""

    store: str = "embedded"  # "embedded" or "redis"
    rate: float = 10.0  # requests/s
    seconds: float = 60.0
    kill_at: float | None = None  # seconds: stop Redis
    restart_at: float | None = None  # seconds: start Redis again
    num_candidates: int = 500
    item_hidden: int = 256
    item_layers: int = 3


@dataclass
class ServeSpec:
    """The served catalogue."""

    num_users: int = 200
    num_items: int = 5000
    seq_len: int = 50
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _serve_config(
    spec: ServeSpec, store_url: str, store_dir: str, mode: str, n: int, hidden: int, layers: int
) -> ServeConfig:
    return ServeConfig(
        mode=mode,
        store=store_url,
        store_dir=store_dir,
        num_candidates=n,
        num_users=spec.num_users,
        num_items=spec.num_items,
        seq_len=spec.seq_len,
        item_hidden=hidden,
        item_layers=layers,
        seed=spec.seed,
    )


def _percentiles(lat_ms: list[float]) -> dict[str, float]:
    from hdrh.histogram import HdrHistogram

    h = HdrHistogram(1, 60_000_000, 3)
    for v in lat_ms:
        h.record_value(max(1, int(v * 1e3)))
    return {f"p{q}_ms": h.get_value_at_percentile(q) / 1e3 for q in (50, 90, 99)} | {
        "max_ms": h.get_max_value() / 1e3
    }


def latency_run(cfg: LatencyConfig, spec: ServeSpec) -> dict[str, Any]:
    """Both modes on the same weights, measured in interleaved segments, then a QPS sweep per mode."""
    modes = ("sequential", "aif")
    redis_proc = RedisProcess() if cfg.store == "redis" else None
    with tempfile.TemporaryDirectory(prefix="aif-bench-") as tmp:
        try:
            if redis_proc:
                redis_proc.start()
            url = redis_proc.url if redis_proc else "embedded"
            servers = {
                m: ServerProcess(
                    _serve_config(spec, url, tmp, m, cfg.num_candidates, cfg.item_hidden, cfg.item_layers),
                    timeout_s=120,
                )
                for m in modes
            }
            for srv in servers.values():
                srv.__enter__()
            try:
                for srv in servers.values():
                    run_load(srv.url, 20.0, cfg.warmup, 10.0, spec.num_users)
                lat: dict[str, list[float]] = {m: [] for m in modes}
                sent = {m: 0 for m in modes}
                failed = {m: 0 for m in modes}
                for seg in range(cfg.segments):
                    order = modes if seg % 2 == 0 else modes[::-1]
                    for m in order:
                        r = run_load(
                            servers[m].url, cfg.rate, 10**6, cfg.segment_seconds, spec.num_users, seed=seg
                        )
                        lat[m] += [t[1] for t in r.timeline if t[2] == 200]
                        sent[m] += r.sent
                        failed[m] += r.failed
                out: dict[str, Any] = {}
                for m in modes:
                    sweep, best = [], 0.0
                    for rate in cfg.sweep_rates:
                        r = run_load(
                            servers[m].url, rate, 10**6, cfg.sweep_seconds, spec.num_users, timeout_s=5.0
                        )
                        ok = r.failed == 0 and r.achieved_qps >= 0.95 * rate and r.p99_ms <= cfg.slo_ms
                        sweep.append({**r.summary(), "sustained": ok})
                        if not ok:
                            break
                        best = rate
                    out[m] = {
                        "rate": cfg.rate,
                        "sent": sent[m],
                        "failed": failed[m],
                        **_percentiles(lat[m]),
                        "sweep": sweep,
                        "max_qps": best,
                    }
            finally:
                for srv in servers.values():
                    srv.__exit__(None, None, None)
        finally:
            if redis_proc:
                redis_proc.stop()
    return out


def soak_run(cfg: SoakConfig, spec: ServeSpec) -> dict[str, Any]:
    """A fixed-rate run; Redis stopped at ``kill_at`` and restarted at ``restart_at`` when set."""
    redis_proc = RedisProcess() if cfg.store == "redis" else None
    events: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="aif-soak-") as tmp:
        try:
            if redis_proc:
                redis_proc.start()
            url = redis_proc.url if redis_proc else "embedded"
            scfg = _serve_config(spec, url, tmp, "aif", cfg.num_candidates, cfg.item_hidden, cfg.item_layers)
            with ServerProcess(scfg, timeout_s=120) as srv:
                run_load(srv.url, 20.0, 20, 10.0, spec.num_users)
                t0 = time.monotonic()

                def faults() -> None:
                    assert redis_proc is not None
                    if cfg.kill_at is not None:
                        time.sleep(max(0.0, cfg.kill_at - (time.monotonic() - t0)))
                        redis_proc.stop()
                        events.append(("redis stopped", time.monotonic() - t0))
                    if cfg.restart_at is not None:
                        time.sleep(max(0.0, cfg.restart_at - (time.monotonic() - t0)))
                        redis_proc.start()
                        events.append(("redis restarted", time.monotonic() - t0))

                th = threading.Thread(target=faults) if redis_proc and cfg.kill_at is not None else None
                if th:
                    th.start()
                r = run_load(srv.url, cfg.rate, 10**6, cfg.seconds, spec.num_users)
                if th:
                    th.join()
        finally:
            if redis_proc:
                redis_proc.stop()
    return {**r.summary(), "timeline": [list(t) for t in r.timeline], "events": events}


@dataclass
class ModelRunConfig:
    """One pre-ranker trained by the CTR trainer on MovieLens with behaviour sequences."""

    model: str = "aif-bea"  # "aif-exact", "aif-bea" or "two-tower"
    model_dim: int = 32  # d̂
    num_bridges: int = 8  # B
    epochs: int = 2
    batch_size: int = 4096
    lr: float = 2e-3
    seed: int = 0


@dataclass
class HistoryDataSpec:
    """MovieLens CTR rows with a ``history`` field of up to ``max_len`` earlier items."""

    variant: str = "1m"
    max_len: int = 20


def model_run(cfg: ModelRunConfig, data: HistoryDataSpec) -> dict[str, Any]:
    """Train, then test AUC/GAUC; for BEA also the same weights scored with exact attention (gap and correlation)."""
    import numpy as np
    import torch

    from mercato.aif.data import movielens_history_splits
    from mercato.aif.model import AIFConfig, AIFModel, TwoTowerModel
    from mercato.core.metrics import auc, gauc
    from mercato.ctr import CTRTrainer, FeatureSchema, TrainerConfig

    splits = movielens_history_splits(data.variant, data.max_len)  # type: ignore[arg-type]
    schema = FeatureSchema.fit(splits, max_tokens=data.max_len)
    train, valid, test = (schema.encode(x) for x in (splits.train, splits.valid, splits.test))
    torch.manual_seed(cfg.seed)
    mcfg = AIFConfig(
        model_dim=cfg.model_dim,
        num_bridges=cfg.num_bridges,
        attention="bea" if cfg.model == "aif-bea" else "exact",
    )
    model: Any = TwoTowerModel(schema, mcfg) if cfg.model == "two-tower" else AIFModel(schema, mcfg)
    tcfg = TrainerConfig(
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, patience=1, seed=cfg.seed, progress=False
    )
    t0 = time.perf_counter()
    trainer = CTRTrainer(model, tcfg, train, valid)
    trainer.fit()
    out: dict[str, Any] = {"train_seconds": time.perf_counter() - t0, **trainer.evaluate(test)}
    out["params"] = int(sum(p.numel() for p in model.parameters()))
    if cfg.model == "aif-bea":
        p_bea = trainer.predict(test)
        model.config.attention = "exact"
        p_exact = trainer.predict(test)
        model.config.attention = "bea"
        y = test.batch(slice(None))["label"].numpy()
        users = splits.test["user_id"].to_numpy()
        out["same_weights_exact_auc"] = auc(y, p_exact)
        out["same_weights_exact_gauc"] = gauc(y, p_exact, groups=users)
        out["score_pearson_bea_vs_exact"] = float(np.corrcoef(p_bea, p_exact)[0, 1])
    return out

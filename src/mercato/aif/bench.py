"""Serving benchmarks of ``benchmarks/aif.py``: each run starts its own server (and Redis) on 127.0.0.1.

* :func:`latency_run`: one server (mode, candidates, store), a warm-up, a fixed-rate open-loop run, then a
  sweep of rates for the maximum sustainable QPS (the highest swept rate with zero failures, achieved rate
  >= 95 % of the target and p99 <= the SLO).
* :func:`soak_run`: a fixed-rate run of ``seconds``; with ``kill_at``/``restart_at`` the Redis server is
  stopped and restarted during it; returns the latency timeline.

Every server serves a trained AIFModel from a serving folder (``Arm.checkpoint``, written by
:func:`mercato.aif.train.model_run` with ``export``); several arms (model x mode) are up at once.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from mercato.aif.launch import RedisProcess, ServerProcess
from mercato.aif.loadgen import run_load
from mercato.aif.serve import ServeConfig

__all__ = ["Arm", "ArmsSpec", "LatencyConfig", "SoakConfig", "latency_run", "soak_run"]


@dataclass
class LatencyConfig:
    """One paired latency/QPS measurement of several servers (arms), all up at once, same machine."""

    num_candidates: int = 2000  # candidates per request
    store: str = "embedded"  # "embedded" or "redis"
    rate: float = 10.0  # requests/s of the fixed-rate segments
    segments: int = 6  # fixed-rate segments per arm, interleaved (a, b, c, c, b, a, ...) against load drift
    segment_seconds: float = 4.0  # length of one segment
    sweep_rates: tuple[float, ...] = (10.0, 20.0, 40.0, 80.0)  # rates tried for the max sustainable QPS
    sweep_seconds: float = 6.0  # seconds per swept rate
    slo_ms: float = 250.0  # p99 bound of "sustainable"
    warmup: int = 20  # requests per server before measuring


@dataclass(frozen=True)
class Arm:
    """One served configuration: a serving folder in a mode (its version enters the run's cache key)."""

    name: str
    checkpoint: str  # serving folder (mercato.aif.served.export_serving)
    mode: str  # "sequential" or "aif"
    version: str = ""  # model version of the folder (cache key: other weights -> another run)


@dataclass
class ArmsSpec:
    """The arms of a latency run and the users the load generator draws from."""

    arms: tuple[Arm, ...] = ()
    num_users: int = 200  # user ids drawn from [0, num_users)


@dataclass
class SoakConfig:
    """A fixed-rate soak run in aif mode, optionally with a Redis outage."""

    store: str = "embedded"  # "embedded" or "redis"
    rate: float = 10.0  # requests/s
    seconds: float = 60.0
    kill_at: float | None = None  # seconds: stop Redis
    restart_at: float | None = None  # seconds: start Redis again
    num_candidates: int = 500


def _serve_config(arm: Arm, store_url: str, store_dir: str, n: int) -> ServeConfig:
    return ServeConfig(
        mode=arm.mode,
        model="aif",
        checkpoint=arm.checkpoint,
        store=store_url,
        store_dir=store_dir,
        num_candidates=n,
    )


def _percentiles(lat_ms: list[float]) -> dict[str, float]:
    from hdrh.histogram import HdrHistogram

    h = HdrHistogram(1, 60_000_000, 3)
    for v in lat_ms:
        h.record_value(max(1, int(v * 1e3)))
    return {f"p{q}_ms": h.get_value_at_percentile(q) / 1e3 for q in (50, 90, 99)} | {
        "max_ms": h.get_max_value() / 1e3
    }


def latency_run(cfg: LatencyConfig, spec: ArmsSpec) -> dict[str, Any]:
    """Every arm's server up at once, measured in interleaved segments, then a QPS sweep per arm."""
    names = [a.name for a in spec.arms]
    redis_proc = RedisProcess() if cfg.store == "redis" else None
    with tempfile.TemporaryDirectory(prefix="aif-bench-") as tmp:
        try:
            if redis_proc:
                redis_proc.start()
            url = redis_proc.url if redis_proc else "embedded"
            servers = {
                a.name: ServerProcess(_serve_config(a, url, f"{tmp}/{i}", cfg.num_candidates), timeout_s=180)
                for i, a in enumerate(spec.arms)
            }
            try:
                for srv in servers.values():
                    srv.start()  # side by side, then wait for each
                for srv in servers.values():
                    srv.wait_ready()
                for srv in servers.values():
                    run_load(srv.url, 20.0, cfg.warmup, 10.0, spec.num_users)
                lat: dict[str, list[float]] = {m: [] for m in names}
                sent = {m: 0 for m in names}
                failed = {m: 0 for m in names}
                for seg in range(cfg.segments):
                    order = names if seg % 2 == 0 else names[::-1]
                    for m in order:
                        r = run_load(
                            servers[m].url, cfg.rate, 10**6, cfg.segment_seconds, spec.num_users, seed=seg
                        )
                        lat[m] += [t[1] for t in r.timeline if t[2] == 200]
                        sent[m] += r.sent
                        failed[m] += r.failed
                out: dict[str, Any] = {}
                for m in names:
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


def soak_run(cfg: SoakConfig, spec: ArmsSpec) -> dict[str, Any]:
    """A fixed-rate run; Redis stopped at ``kill_at`` and restarted at ``restart_at`` when set."""
    redis_proc = RedisProcess() if cfg.store == "redis" else None
    events: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="aif-soak-") as tmp:
        try:
            if redis_proc:
                redis_proc.start()
            url = redis_proc.url if redis_proc else "embedded"
            scfg = _serve_config(spec.arms[0], url, tmp, cfg.num_candidates)
            with ServerProcess(scfg, timeout_s=180) as srv:
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

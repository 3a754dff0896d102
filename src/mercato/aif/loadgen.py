"""Open-loop load generator for ``POST /rank`` (``mercato aif bench``), 127.0.0.1 only.

Request ``i`` is *scheduled* at ``t0 + i / rate`` and sent then whether or not earlier requests have been
answered (open loop); its latency is measured from the scheduled time, so a stalled server is charged for the
queue it builds (no "coordinated omission", which a closed loop of N clients hides). The run stops after
``max_requests`` requests or ``duration_s`` seconds, whichever comes first, then waits at most ``timeout_s``
for the requests in flight.

Percentiles come from an HdrHistogram (``hdrhistogram`` on PyPI): constant memory, 3 significant digits over
1 us .. 60 s, and mergeable, which is what a latency percentile over tens of thousands of samples needs.
Locust was the alternative; it is a closed-loop user simulator with its own web UI and process model, more
than this bounded, scripted measurement needs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import numpy as np

__all__ = ["LoadResult", "check_local_url", "run_load"]

_LOCAL = {"127.0.0.1", "localhost", "::1"}


def check_local_url(url: str) -> str:
    """Return ``url`` if it points at this machine (127.0.0.1 / localhost), else raise ``ValueError``."""
    host = urlparse(url).hostname
    if host not in _LOCAL:
        raise ValueError(f"load tests only target 127.0.0.1/localhost, got host {host!r} in {url!r}")
    return url.rstrip("/")


@dataclass
class LoadResult:
    """What one load run measured (latencies in milliseconds)."""

    rate: float  # target requests per second
    sent: int
    ok: int
    failed: int  # non-200 answers, timeouts and connection errors
    status_counts: dict[str, int]
    duration_s: float  # first scheduled send to last answer
    achieved_qps: float  # ok answers per second of the sending window
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    timeline: list[tuple[float, float, int]] = field(
        default_factory=list
    )  # (scheduled s, latency ms, status)

    def summary(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d.pop("timeline")
        return d


async def _run(
    url: str,
    rate: float,
    max_requests: int,
    duration_s: float,
    make_body: Any,
    timeout_s: float,
) -> LoadResult:
    import httpx
    from hdrh.histogram import HdrHistogram

    hist = HdrHistogram(1, 60_000_000, 3)  # microseconds
    timeline: list[tuple[float, float, int]] = []
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

        async def one(i: int, t_sched: float) -> None:
            try:
                r = await client.post("/rank", json=make_body(i))
                status = r.status_code
            except httpx.HTTPError:
                status = 0  # timeout or connection error
            lat_ms = (time.perf_counter() - t_sched) * 1e3
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            timeline.append((t_sched - t0, lat_ms, status))
            if status == 200:
                hist.record_value(max(1, int(lat_ms * 1e3)))

        tasks = []
        t0 = time.perf_counter()
        n = min(max_requests, int(np.floor(duration_s * rate)) or 1)
        for i in range(n):
            t_sched = t0 + i / rate
            delay = t_sched - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, t_sched)))
        send_window = max(time.perf_counter() - t0, 1e-9)
        await asyncio.wait(tasks, timeout=timeout_s + 1)
        for t in tasks:
            t.cancel()
    ok = statuses.get("200", 0)
    sent = len(tasks)
    done = len(timeline)
    statuses_all = dict(statuses)
    if done < sent:
        statuses_all["unanswered"] = sent - done
    lats = np.array([t[1] for t in timeline if t[2] == 200]) if ok else np.zeros(1)
    return LoadResult(
        rate=rate,
        sent=sent,
        ok=ok,
        failed=sent - ok,
        status_counts=statuses_all,
        duration_s=time.perf_counter() - t0,
        achieved_qps=ok / max(send_window, n / rate),
        p50_ms=hist.get_value_at_percentile(50) / 1e3,
        p90_ms=hist.get_value_at_percentile(90) / 1e3,
        p99_ms=hist.get_value_at_percentile(99) / 1e3,
        max_ms=hist.get_max_value() / 1e3,
        mean_ms=float(lats.mean()),
        timeline=sorted(timeline),
    )


def run_load(
    url: str,
    rate: float,
    max_requests: int = 1000,
    duration_s: float = 10.0,
    num_users: int = 200,
    k: int = 10,
    seed: int = 0,
    timeout_s: float = 5.0,
) -> LoadResult:
    """Send ``POST /rank`` at ``rate`` requests/s to ``url`` (127.0.0.1 only); see the module docstring."""
    url = check_local_url(url)
    if rate <= 0 or max_requests < 1 or duration_s <= 0:
        raise ValueError(
            f"rate, max_requests and duration_s must be > 0, got {rate}, {max_requests}, {duration_s}"
        )
    users = np.random.default_rng(seed).integers(0, num_users, max_requests)

    def body(i: int) -> dict[str, Any]:
        return {"user_id": int(users[i]), "context": {"hour": int(i % 24)}, "k": k}

    return asyncio.run(_run(url, rate, max_requests, duration_s, body, timeout_s))

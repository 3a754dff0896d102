"""One executor interface for many independent evaluations: local process pool (default) or Ray.

``executor.map(fn, items)`` returns ``[fn(x) for x in items]`` in input order whatever the backend, so a seeded
search gives the same result on 1 process, a pool or a Ray cluster. libsumo allows one simulation per process;
every worker runs its simulations one after another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

__all__ = ["Executor", "LocalExecutor", "RayExecutor", "make_executor"]

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """``workers`` = 1: in this process; more: a ``concurrent.futures`` pool of spawned processes."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if self.workers <= 1 or len(items) <= 1:
            return [fn(x) for x in items]
        if self._pool is None:
            import multiprocessing as mp

            self._pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        return list(self._pool.map(fn, items))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class RayExecutor:
    """Ray tasks (``address`` of a cluster, or a local instance with ``num_cpus``)."""

    def __init__(self, address: str | None = None, num_cpus: int | None = 2) -> None:
        import ray

        self._ray = ray
        self._owned = not ray.is_initialized()
        if self._owned:
            if address:
                ray.init(address=address)
            else:
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
        self._remote = ray.remote(_call)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return list(self._ray.get([self._remote.remote(fn, x) for x in items]))

    def close(self) -> None:
        if self._owned:
            self._ray.shutdown()


def _call(fn: Callable[[Any], Any], x: Any) -> Any:
    return fn(x)


def make_executor(kind: str = "process", workers: int = 1, address: str | None = None) -> Executor:
    """``process`` (default) or ``ray``; an unknown kind is an error naming the valid ones."""
    if kind == "process":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(address, num_cpus=max(1, workers))
    raise ValueError(f"executor: expected 'process' or 'ray', got {kind!r}")

"""Nearline item-state store: an embedded default (memory-mapped arrays) and a Redis backend.

AIF computes the item side of the pre-ranking model *nearline* (digest §1.2 step 4): when an item's features or
the model change, an updater recomputes the item's state and writes it to a store that every serving process
reads. States are **versioned by model version**: a state written under version ``v`` is only ever returned to
a reader asking for ``v``; a reader of another version sees the item as missing (and computes it online).

Both backends implement :class:`ItemStateStore`:

* :class:`EmbeddedStore` (default, one machine): one folder per version holding ``states.f32`` (N x D float32)
  and ``seq.i64`` (N int64), both ``numpy.memmap``. Every row carries a **seqlock** counter: a writer makes it
  odd, writes the row, makes it even; a reader copies the row between two reads of the counter and retries when
  they differ or are odd, so a reader never returns a half-written (torn) row. Writers of several processes
  serialise on an ``fcntl`` lock file; readers take no lock. Counter 0 means "never written".
* :class:`RedisStore` (several serving processes): one Redis hash per version, ``<ns>:v:<version>``, field =
  item id, value = the row's float32 bytes; ``HSET`` of one field is atomic, so a reader never sees a torn row.

Item ids are dense integers ``0 .. num_items-1`` (the catalogue's row index); an id outside that range is a
:class:`KeyError` naming it.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

__all__ = ["EmbeddedStore", "ItemStateStore", "RedisStore", "StoreUnavailable", "check_version"]

_VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class StoreUnavailable(ConnectionError):
    """The store cannot be reached (e.g. Redis is down); the caller computes item states online."""


def check_version(version: str) -> str:
    """Return ``version`` if it is a valid model-version tag (letters, digits, ``_ . -``; 1-64 characters)."""
    if not isinstance(version, str) or not _VERSION.match(version):
        raise ValueError(f"model version must match {_VERSION.pattern}, got {version!r}")
    return version


def _ids(item_ids: Sequence[int] | np.ndarray, num_items: int) -> np.ndarray:
    ids = np.asarray(item_ids, dtype=np.int64).reshape(-1)
    bad = ids[(ids < 0) | (ids >= num_items)]
    if bad.size:
        raise KeyError(f"item id {int(bad[0])} outside the catalogue [0, {num_items})")
    return ids


class ItemStateStore(Protocol):
    """What the serving runtime and the nearline updater need from a store."""

    num_items: int
    dim: int

    def put(self, version: str, item_ids: Sequence[int] | np.ndarray, states: np.ndarray) -> None:
        """Write ``states`` (n, D) for ``item_ids`` (n,) under model ``version``."""
        ...

    def get(self, version: str, item_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(states (n, D) float32, found (n,) bool)``; rows not found are zeros."""
        ...

    def set_current_version(self, version: str) -> None:
        """Record the model version the updater has finished writing (for readers and health checks)."""
        ...

    def current_version(self) -> str | None:
        """The version last recorded by :meth:`set_current_version` (``None`` if none)."""
        ...

    def drop_version(self, version: str) -> None:
        """Delete every state of ``version``."""
        ...


class EmbeddedStore:
    """In-process store on memory-mapped arrays under ``root`` (shared by processes that open the same root)."""

    def __init__(self, root: str | Path, num_items: int, dim: int, max_wait_s: float = 2.0) -> None:
        if num_items < 1 or dim < 1:
            raise ValueError(f"num_items and dim must be >= 1, got {num_items}, {dim}")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.num_items = int(num_items)
        self.dim = int(dim)
        self.max_wait_s = max_wait_s
        self._open: dict[str, tuple[np.memmap, np.memmap]] = {}
        self._lock = threading.Lock()  # guards _open and serialises writers of this process
        meta = self.root / "store.json"
        want = {"num_items": self.num_items, "dim": self.dim}
        if meta.exists():
            have = json.loads(meta.read_text())
            if have != want:
                raise ValueError(f"{meta}: store was created with {have}, opened with {want}")
        else:
            tmp = meta.with_suffix(".tmp")
            tmp.write_text(json.dumps(want))
            os.replace(tmp, meta)

    def _arrays(self, version: str, create: bool) -> tuple[np.memmap, np.memmap] | None:
        check_version(version)
        with self._lock:
            if version in self._open:
                return self._open[version]
            d = self.root / f"v_{version}"
            states_p, seq_p = d / "states.f32", d / "seq.i64"
            if not seq_p.exists():
                if not create:
                    return None
                d.mkdir(exist_ok=True)
                with self._file_lock():
                    if not seq_p.exists():  # another process may have created it meanwhile
                        for p, n in ((states_p, self.num_items * self.dim * 4), (seq_p, self.num_items * 8)):
                            tmp = p.with_suffix(".tmp")
                            with open(tmp, "wb") as fh:
                                fh.truncate(n)
                            os.replace(tmp, p)
            states = np.memmap(states_p, dtype=np.float32, mode="r+", shape=(self.num_items, self.dim))
            seq = np.memmap(seq_p, dtype=np.int64, mode="r+", shape=(self.num_items,))
            self._open[version] = (states, seq)
            return states, seq

    def _file_lock(self) -> _FileLock:
        return _FileLock(self.root / "write.lock")

    def put(self, version: str, item_ids: Sequence[int] | np.ndarray, states: np.ndarray) -> None:
        ids = _ids(item_ids, self.num_items)
        vals = np.asarray(states, dtype=np.float32)
        if vals.shape != (ids.size, self.dim):
            raise ValueError(f"states must have shape ({ids.size}, {self.dim}), got {vals.shape}")
        arrays = self._arrays(version, create=True)
        assert arrays is not None
        st, seq = arrays
        with self._lock, self._file_lock():
            for row, i in enumerate(ids):
                s = int(seq[i])
                seq[i] = s + 1 if s % 2 == 0 else s + 2  # odd: write in progress
                st[i] = vals[row]
                seq[i] = int(seq[i]) + 1  # even (>0): complete

    def get(self, version: str, item_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = _ids(item_ids, self.num_items)
        out = np.zeros((ids.size, self.dim), dtype=np.float32)
        found = np.zeros(ids.size, dtype=bool)
        arrays = self._arrays(version, create=False)
        if arrays is None:
            return out, found
        st, seq = arrays
        # Fast path: one vectorised copy between two vectorised counter reads; rows whose counter moved or is
        # odd are re-read one by one (seqlock).
        s1 = np.array(seq[ids])
        out[:] = st[ids]
        s2 = np.array(seq[ids])
        redo = np.nonzero((s1 != s2) | (s1 % 2 == 1))[0]
        for row in redo:
            i = ids[row]
            deadline = time.monotonic() + self.max_wait_s
            while time.monotonic() < deadline:
                a = int(seq[i])
                if a % 2 == 1:
                    time.sleep(0)  # a writer holds the row: yield
                    continue
                val = np.array(st[i])
                if int(seq[i]) == a:
                    out[row] = val
                    s2[row] = a
                    break
            else:
                raise TimeoutError(f"item {int(i)}: row kept changing for {self.max_wait_s}s")
        found[:] = s2 > 0
        out[~found] = 0.0
        return out, found

    def set_current_version(self, version: str) -> None:
        check_version(version)
        p = self.root / "current_version"
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(version)
        os.replace(tmp, p)

    def current_version(self) -> str | None:
        p = self.root / "current_version"
        return p.read_text() if p.exists() else None

    def drop_version(self, version: str) -> None:
        check_version(version)
        with self._lock:
            self._open.pop(version, None)
        d = self.root / f"v_{version}"
        for p in (d / "states.f32", d / "seq.i64"):
            p.unlink(missing_ok=True)
        if d.exists():
            d.rmdir()


class _FileLock:
    """An exclusive ``fcntl.flock`` on a file, as a context manager (writers of several processes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: Any = None

    def __enter__(self) -> _FileLock:
        self.fh = open(self.path, "a+")
        fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
        self.fh.close()


class RedisStore:
    """Item states in Redis, one hash per model version; shared by every serving process of a deployment.

    Every Redis error becomes :class:`StoreUnavailable`, so a caller can fall back to computing online.
    """

    def __init__(
        self,
        url: str,
        num_items: int,
        dim: int,
        namespace: str = "aif",
        timeout_s: float = 0.05,
        client: Any = None,
    ) -> None:
        import redis

        self.num_items = int(num_items)
        self.dim = int(dim)
        self.namespace = namespace
        self.url = url
        self.client = client or redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry_on_timeout=False
        )
        self._errors = (redis.RedisError, OSError)

    def _key(self, version: str) -> str:
        return f"{self.namespace}:v:{check_version(version)}"

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except self._errors as exc:
            raise StoreUnavailable(f"redis at {self.url}: {exc}") from exc

    def ping(self) -> bool:
        """True when Redis answers."""
        try:
            return bool(self.client.ping())
        except self._errors:
            return False

    def put(self, version: str, item_ids: Sequence[int] | np.ndarray, states: np.ndarray) -> None:
        ids = _ids(item_ids, self.num_items)
        vals = np.ascontiguousarray(states, dtype=np.float32)
        if vals.shape != (ids.size, self.dim):
            raise ValueError(f"states must have shape ({ids.size}, {self.dim}), got {vals.shape}")
        if ids.size:
            mapping: dict[Any, Any] = {str(int(i)): vals[r].tobytes() for r, i in enumerate(ids)}
            key = self._key(version)
            self._call(lambda: self.client.hset(key, mapping=mapping))

    def get(self, version: str, item_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = _ids(item_ids, self.num_items)
        out = np.zeros((ids.size, self.dim), dtype=np.float32)
        found = np.zeros(ids.size, dtype=bool)
        if not ids.size:
            return out, found
        raw = self._call(self.client.hmget, self._key(version), [str(int(i)) for i in ids])
        width = self.dim * 4
        for r, blob in enumerate(raw):
            if blob is not None and len(blob) == width:
                out[r] = np.frombuffer(blob, dtype=np.float32)
                found[r] = True
        return out, found

    def set_current_version(self, version: str) -> None:
        self._call(self.client.set, f"{self.namespace}:current", check_version(version))

    def current_version(self) -> str | None:
        v = self._call(self.client.get, f"{self.namespace}:current")
        return None if v is None else v.decode()

    def drop_version(self, version: str) -> None:
        self._call(self.client.delete, self._key(version))

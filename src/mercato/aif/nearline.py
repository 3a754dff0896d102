"""The nearline updater: recomputes item states when item features or the model change.

Events are published on a channel: a :class:`QueueEvents` (``queue.Queue``, embedded, one process) or a
:class:`RedisStreamEvents` (a Redis Stream, ``XADD``/``XREAD``, any process). Two kinds of event:

* ``item``: the features of some items changed -> their states are recomputed under the current version;
* ``model``: a new model version is live -> every item's state is computed under the new version (a new
  namespace of the store, so states of the old version are never mixed in), then the store's current version
  is set to it.

The updater is told how to compute states by a callback ``compute(version, item_ids) -> (n, D) float32``
(the serving runtime passes its item tower and the item-feature table).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mercato.aif.store import ItemStateStore, StoreUnavailable, check_version

__all__ = ["ItemEvent", "NearlineUpdater", "QueueEvents", "RedisStreamEvents"]

log = logging.getLogger(__name__)

ComputeFn = Callable[[str, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ItemEvent:
    """One change the updater reacts to."""

    kind: Literal["item", "model"]
    version: str  # model version the states must be computed with
    item_ids: tuple[int, ...] = field(default_factory=tuple)  # ``item`` events: the items that changed

    def __post_init__(self) -> None:
        if self.kind not in ("item", "model"):
            raise ValueError(f"event kind must be 'item' or 'model', got {self.kind!r}")
        check_version(self.version)


class QueueEvents:
    """Embedded event channel: a thread-safe queue inside one process."""

    def __init__(self) -> None:
        self._q: queue.Queue[ItemEvent] = queue.Queue()

    def publish(self, event: ItemEvent) -> None:
        self._q.put(event)

    def consume(self, timeout_s: float) -> list[ItemEvent]:
        try:
            first = self._q.get(timeout=timeout_s)
        except queue.Empty:
            return []
        out = [first]
        while True:
            try:
                out.append(self._q.get_nowait())
            except queue.Empty:
                return out


class RedisStreamEvents:
    """Event channel on a Redis Stream ``<ns>:events`` (publishers and the updater in any process)."""

    def __init__(self, client: Any, namespace: str = "aif", start_id: str = "$") -> None:
        self.client = client
        self.stream = f"{namespace}:events"
        self.last_id = start_id  # "$": only events published after the first read; "0": the whole stream

    def publish(self, event: ItemEvent) -> None:
        fields = {"kind": event.kind, "version": event.version, "items": ",".join(map(str, event.item_ids))}
        self.client.xadd(self.stream, fields, maxlen=100_000, approximate=True)

    def consume(self, timeout_s: float) -> list[ItemEvent]:
        if self.last_id == "$":  # resolve "$" once so that no event between two reads is lost
            info = self.client.xinfo_stream(self.stream) if self.client.exists(self.stream) else None
            self.last_id = info["last-generated-id"] if info else "0-0"
            if isinstance(self.last_id, bytes):
                self.last_id = self.last_id.decode()
        res = self.client.xread({self.stream: self.last_id}, block=max(1, int(timeout_s * 1000)), count=1000)
        out: list[ItemEvent] = []
        for _stream, entries in res or []:
            for eid, f in entries:
                self.last_id = eid.decode() if isinstance(eid, bytes) else eid
                d = {
                    (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                    for k, v in f.items()
                }
                items = tuple(int(x) for x in d.get("items", "").split(",") if x)
                out.append(ItemEvent(kind=d["kind"], version=d["version"], item_ids=items))  # type: ignore[arg-type]
        return out


class NearlineUpdater:
    """Consumes events and writes recomputed item states to the store (in a background thread or by hand)."""

    def __init__(self, store: ItemStateStore, events: Any, compute: ComputeFn, batch_size: int = 512) -> None:
        self.store = store
        self.events = events
        self.compute = compute
        self.batch_size = batch_size
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.processed = 0  # events handled
        self.written = 0  # item states written

    def recompute(self, version: str, item_ids: Sequence[int] | np.ndarray) -> None:
        """Compute and write the states of ``item_ids`` under ``version``, in batches."""
        ids = np.asarray(item_ids, dtype=np.int64)
        for lo in range(0, ids.size, self.batch_size):
            chunk = ids[lo : lo + self.batch_size]
            self.store.put(version, chunk, self.compute(version, chunk))
            self.written += int(chunk.size)

    def handle(self, event: ItemEvent) -> None:
        """Apply one event."""
        if event.kind == "model":
            self.recompute(event.version, np.arange(self.store.num_items))
            self.store.set_current_version(event.version)
        else:
            self.recompute(event.version, event.item_ids)
        self.processed += 1

    def poll(self, timeout_s: float = 0.1) -> int:
        """Handle the events available within ``timeout_s``; return how many."""
        events = self.events.consume(timeout_s)
        for ev in events:
            self.handle(ev)
        return len(events)

    def start(self) -> None:
        """Run :meth:`poll` in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.poll(0.1)
                except (StoreUnavailable, ConnectionError, OSError) as exc:  # store down: retry later
                    log.warning("nearline updater: %s", exc)
                    self._stop.wait(0.2)
                except Exception as exc:  # redis.RedisError is not an OSError
                    log.warning("nearline updater: %s", exc)
                    self._stop.wait(0.2)

        self._thread = threading.Thread(target=loop, name="aif-nearline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

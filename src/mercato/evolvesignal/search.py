"""Program search: islands + MAP-Elites archive + ring migration, resumable and seeded (digest B4, C).

Own loop rather than OpenEvolve 0.4.0 (see docs/evolvesignal.md): OpenEvolve runs iterations concurrently in
spawned workers and completes them out of order, so a seeded run is not reproducible and a resumed run does not
equal an uninterrupted one; our loop draws every random choice from one seeded RNG in the main process, sends only
evaluations to the executor (pool or Ray, results in input order), and checkpoints its whole state as JSON.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from mercato.core.config import config_to_dict
from mercato.core.runs import atomic_write_json
from mercato.evolvesignal.config import SearchConfig
from mercato.evolvesignal.evaluate import evaluate_program
from mercato.evolvesignal.executor import Executor, make_executor
from mercato.evolvesignal.mutate import DiffError, OfflineMutator, OpenAICompatibleLLM, apply_diff
from mercato.evolvesignal.programs import WEBSTER_PROGRAM

__all__ = ["Search"]

logger = logging.getLogger(__name__)


def _rng_to_json(rng: random.Random) -> list[Any]:
    v, state, gauss = rng.getstate()
    return [v, list(state), gauss]


def _rng_from_json(data: list[Any]) -> random.Random:
    rng = random.Random()
    rng.setstate((data[0], tuple(data[1]), data[2]))
    return rng


class Search:
    """State: programs by id, island membership, archive cell -> id, RNG, generation, best-so-far history."""

    def __init__(
        self, config: SearchConfig, initial: str = WEBSTER_PROGRAM, executor: Executor | None = None
    ) -> None:
        self.config = config
        self.initial = initial
        self.executor = executor
        self.rng = random.Random(config.seed)
        self.programs: dict[str, dict[str, Any]] = {}
        self.islands: list[list[str]] = [[] for _ in range(config.islands)]
        self.archive: dict[str, str] = {}
        self.generation = 0
        self.history: list[dict[str, Any]] = []
        self.memo: dict[str, dict[str, Any]] = {}
        self.edits = {"proposed": 0, "applied": 0}
        # children: applied edits; surrogate: new children scored by the pre-filter; filtered: of those, not sent
        # to SUMO; sumo_programs / sumo_runs: programs scored by the configured fitness and their SUMO runs
        self.counts = {"children": 0, "surrogate": 0, "filtered": 0, "sumo_programs": 0, "sumo_runs": 0}
        self.surrogate_memo: dict[str, dict[str, Any]] = {}
        self.mutator: Any = (
            OfflineMutator() if config.mutator == "offline" else OpenAICompatibleLLM.from_env()
        )

    # ----- evaluation -----
    def _map(self, fn: Callable[[str], dict[str, Any]], todo: list[str]) -> list[dict[str, Any]]:
        ex = self.executor or make_executor(self.config.executor, self.config.workers)
        try:
            return list(ex.map(fn, todo))
        finally:
            if self.executor is None:
                ex.close()

    def _evaluate(self, sources: list[str]) -> list[dict[str, Any]]:
        todo = sorted({s for s in sources if _h(s) not in self.memo})
        if todo:
            fn = functools.partial(evaluate_program, cfg=self.config.evaluation)
            for src, res in zip(todo, self._map(fn, todo), strict=True):
                self.memo[_h(src)] = res
                self.counts["sumo_programs"] += 1
                if self.config.evaluation.fitness == "sumo":
                    self.counts["sumo_runs"] += len(res.get("runs", []))
        return [self.memo[_h(s)] for s in sources]

    def _surrogate(self, sources: list[str]) -> list[dict[str, Any]]:
        """Surrogate fitness (sandbox + HCM/Akcelik, digest E) of programs, memoised like ``_evaluate``."""
        todo = sorted({s for s in sources if _h(s) not in self.surrogate_memo})
        if todo:
            cfg = replace(self.config.evaluation, fitness="surrogate")
            fn = functools.partial(evaluate_program, cfg=cfg)
            for src, res in zip(todo, self._map(fn, todo), strict=True):
                self.surrogate_memo[_h(src)] = {k: res[k] for k in ("ok", "score", "reason")}
        return [self.surrogate_memo[_h(s)] for s in sources]

    def prefilter(self, children: list[tuple[int, str, str, str]]) -> list[tuple[int, str, str, str]]:
        """Keep the children worth a SUMO run: those already scored, plus the top ``config.prefilter`` fraction
        (at least one) of the new valid ones ranked by surrogate score; a child the sandbox refuses is kept (it
        scores 0 without a SUMO run). Ties go to the earlier child."""
        if self.config.prefilter >= 1.0:
            return children
        new: list[str] = []
        for c in children:
            if _h(c[2]) not in self.memo and c[2] not in new:
                new.append(c[2])
        if not new:
            return children
        sur = dict(zip(new, self._surrogate(new), strict=True))
        self.counts["surrogate"] += len(new)
        ok = [s for s in new if sur[s]["ok"]]
        k = max(1, math.ceil(self.config.prefilter * len(ok)))
        ranked = sorted(range(len(ok)), key=lambda j: (-sur[ok[j]]["score"], j))
        keep = {ok[j] for j in ranked[:k]} | {s for s in new if not sur[s]["ok"]}
        self.counts["filtered"] += len(new) - len(keep)
        return [c for c in children if _h(c[2]) in self.memo or c[2] in keep]

    def cell(self, record: dict[str, Any]) -> str:
        """MAP-Elites cell: (bin of the mean cycle run, bin of the program length)."""
        c = bisect.bisect(self.config.cycle_bins, record["mean_cycle"])
        n = bisect.bisect(self.config.length_bins, len(record["code"]))
        return f"{c}-{n}"

    def _add(self, code: str, result: dict[str, Any], island: int, parent: str | None, op: str) -> str:
        pid = f"p{len(self.programs)}"
        rec = {"id": pid, "code": code, "island": island, "parent": parent, "gen": self.generation, "op": op}
        rec.update({k: result[k] for k in ("ok", "score", "delay", "stops", "mean_cycle", "reason")})
        self.programs[pid] = rec
        if not rec["ok"]:
            logger.info(
                "generation %d island %d: child scored 0 (%s)", self.generation, island, rec["reason"]
            )
            return pid
        self.islands[island].append(pid)
        self._trim(island)
        cell = self.cell(rec)
        cur = self.archive.get(cell)
        if cur is None or rec["score"] > self.programs[cur]["score"]:
            self.archive[cell] = pid
        return pid

    def _trim(self, island: int) -> None:
        members = self.islands[island]
        while len(members) > self.config.population:
            worst = min(members, key=lambda i: (self.programs[i]["score"], -int(i[1:])))
            members.remove(worst)

    # ----- the loop -----
    def initialize(self) -> None:
        (res,) = self._evaluate([self.initial])
        if not res["ok"]:
            raise RuntimeError(f"the initial program fails: {res['reason']}")
        for i in range(self.config.islands):
            self._add(self.initial, res, i, None, "initial")
        self._record()

    def _parent(self, island: int) -> str:
        r = self.rng.random()
        members = self.islands[island]
        if r < self.config.exploit_ratio and self.archive:
            return self.archive[self.rng.choice(sorted(self.archive))]
        if r < self.config.exploit_ratio + self.config.explore_ratio:
            a, b = self.rng.choice(members), self.rng.choice(members)  # binary tournament in the island
            return a if self.programs[a]["score"] >= self.programs[b]["score"] else b
        return self.rng.choice(members)

    def step(self) -> None:
        """One generation: ``children_per_island`` children per island, pre-filtered by the surrogate (when
        ``prefilter`` < 1), evaluated together, inserted; migration on schedule."""
        self.generation += 1
        children: list[tuple[int, str, str, str]] = []
        for i in [i for i in range(self.config.islands) for _ in range(self.config.children_per_island)]:
            parent = self._parent(i)
            others = [p for p in self.islands[(i + 1) % self.config.islands] if p != parent] or self.islands[
                i
            ]
            insp = self.programs[self.rng.choice(others)]["code"]
            pcode = self.programs[parent]["code"]
            self.edits["proposed"] += 1
            try:
                if isinstance(self.mutator, OfflineMutator):
                    diff = self.mutator.propose(pcode, insp, self.rng, self.config.crossover_rate)
                else:
                    p = self.programs[parent]
                    diff = self.mutator.propose(
                        pcode, insp, self.rng, metrics={k: p[k] for k in ("score", "delay", "stops")}
                    )
                child = apply_diff(pcode, diff)
                self.edits["applied"] += 1
            except (DiffError, OSError) as err:
                logger.info("generation %d island %d: edit not applied (%s)", self.generation, i, err)
                continue
            children.append((i, parent, child, "edit"))
        self.counts["children"] += len(children)
        children = self.prefilter(children)
        results = self._evaluate([c[2] for c in children])
        for (i, parent, child, op), res in zip(children, results, strict=True):
            self._add(child, res, i, parent, op)
        if self.generation % self.config.migration_interval == 0:
            self.migrate()
        self._record()

    def migrate(self) -> None:
        """Ring migration: the best ``migration_count`` programs of island i join island i+1."""
        best = [
            sorted(m, key=lambda p: (-self.programs[p]["score"], p))[: self.config.migration_count]
            for m in self.islands
        ]
        for i, movers in enumerate(best):
            dst = self.islands[(i + 1) % len(self.islands)]
            for p in movers:
                if p not in dst:
                    dst.append(p)
            self._trim((i + 1) % len(self.islands))

    def _record(self) -> None:
        b = self.best()
        self.history.append(
            {
                "generation": self.generation,
                "evaluations": len(self.memo),
                **self.counts,
                "best_score": b["score"],
                "best_delay": b["delay"],
                "best_stops": b["stops"],
            }
        )

    def best(self) -> dict[str, Any]:
        ok = [p for p in self.programs.values() if p["ok"]]
        return max(ok, key=lambda p: (p["score"], -int(p["id"][1:])))

    def run(
        self, checkpoint: str | Path | None = None, callback: Callable[[Search], None] | None = None
    ) -> dict[str, Any]:
        """Run (or resume, when ``checkpoint`` exists) up to ``config.iterations`` generations."""
        if checkpoint is not None and Path(checkpoint).is_file():
            self.load(checkpoint)
        if not self.programs:
            self.initialize()
        while self.generation < self.config.iterations:
            self.step()
            if checkpoint is not None and self.generation % self.config.checkpoint_every == 0:
                self.save(checkpoint)
            if callback is not None:
                callback(self)
        if checkpoint is not None:
            self.save(checkpoint)
        return self.best()

    # ----- checkpoint -----
    def state(self) -> dict[str, Any]:
        return {
            "config": config_to_dict(self.config),
            "rng": _rng_to_json(self.rng),
            "programs": self.programs,
            "islands": self.islands,
            "archive": self.archive,
            "generation": self.generation,
            "history": self.history,
            "memo": self.memo,
            "edits": self.edits,
            "counts": self.counts,
            "surrogate_memo": self.surrogate_memo,
        }

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, self.state())

    def load(self, path: str | Path) -> None:
        data = json.loads(Path(path).read_text())
        if data["config"] != json.loads(json.dumps(config_to_dict(self.config))):
            raise ValueError(
                f"{path}: checkpoint was written with another search config; use a new --output-dir"
            )
        self.rng = _rng_from_json(data["rng"])
        self.programs, self.islands, self.archive = data["programs"], data["islands"], data["archive"]
        self.generation, self.history, self.memo, self.edits = (
            data["generation"],
            data["history"],
            data["memo"],
            data["edits"],
        )
        self.counts, self.surrogate_memo = data["counts"], data["surrogate_memo"]


def _h(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()

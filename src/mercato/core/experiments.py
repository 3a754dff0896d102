"""The experiment runner every benchmark uses: declared runs, a result cache, shards, executors, reports.

A benchmark declares its runs; the runner does the rest::

    from mercato.core.experiments import Experiment, Run, add_runner_args

    def fit_one(config: MyConfig, data: MyDataSpec) -> dict:    # module-level, in the library
        ...                                                     # returns a JSON-serialisable dict

    parser = argparse.ArgumentParser(); add_runner_args(parser)
    exp = Experiment.from_args("mysys", parser.parse_args(), code=("mercato.core", "mercato.mysys"))
    results = exp.run([Run(f"{m}/s{s}", fit_one, cfg, spec, group=m) for ...])   # {name: result}
    if exp.complete:
        exp.report({"docs/mysys.md": {"mysys-main": table}, "docs/results.md": {"mysys": summary}})

**Cache.** Each run's result is one JSON file ``runs/bench/<benchmark>/cache/<key>.json``. The key is a
:func:`joblib.hash` of the run's name, its function, its config and data spec (dataclasses are turned into
dicts with their class name), the package version and a fingerprint of the *source* of the packages the
benchmark declares in ``code``. The fingerprint is what a git revision would stand for, but it also covers
uncommitted edits and leaves packages the benchmark does not use out of the key; the git revision is recorded
in every result's ``meta``. Change the data spec (say, the synthetic rows), a config field or the code and the
run is recomputed: a stale result is never served.

**Why joblib and JSON files, not ``joblib.Memory``.** joblib does what it does well here: hashing arbitrary
specs (dataclasses, NumPy arrays) and running a local process pool (loky). Its ``Memory`` cache pickles outputs
in a layout keyed by the function's source, which a person cannot read, a report writer cannot list and another
machine's shard cannot be merged into; a result computed by a Ray worker on another machine also has no way into
it. One small JSON file per run is readable, diffable and merged by copying files.

**Executors.** ``--executor process`` (default) runs the runs that are not cached on a local loky pool of
``--workers`` processes (1: in this process); ``--executor ray`` sends them to Ray (``--ray-address`` for an
existing cluster, else a local instance), which is how a user with more machines scales a grid. Results are
written as each run finishes, so an interrupted benchmark resumes at the first missing run.

**Shards.** ``--shard i/n`` computes only the runs whose ``group`` hashes to ``i`` modulo ``n`` (runs in
one group, e.g. one model's learning-rate search and its seeds, stay together); shards started in parallel on
one machine share the cache folder, and a final call without ``--shard`` reports from it. ``--merge DIR``
copies the cached results of another root (another machine's shard) in first.

**Reports.** :meth:`Experiment.report` replaces generated blocks in Markdown files
(:func:`mercato.core.results.update_markdown_section`); in ``--quick`` mode, or with ``--no-docs``, the docs
are never touched: quick blocks go to ``runs/bench/<benchmark>-quick/docs/``. Setup prose in a block is
rendered from the configs actually used (:func:`describe`, :func:`machine_line`), never typed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import joblib

import mercato
from mercato.core.progress import progress
from mercato.core.results import update_markdown_section
from mercato.core.runs import atomic_write_json

__all__ = [
    "Experiment",
    "Run",
    "add_runner_args",
    "best_of",
    "code_fingerprint",
    "describe",
    "git_revision",
    "machine_info",
    "machine_line",
    "run_key",
    "spec_dict",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Run:
    """One declared run: ``fn(config, data)`` returns a JSON-serialisable dict.

    ``fn`` must be a module-level function (a worker process imports it by name); ``config`` and ``data`` are
    dataclasses, mappings or plain values and enter the cache key. ``group`` is the unit of sharding
    (default: the run's own name).
    """

    name: str
    fn: Callable[[Any, Any], Mapping[str, Any]]
    config: Any = None
    data: Any = None
    group: str | None = None

    @property
    def shard_group(self) -> str:
        return self.group if self.group is not None else self.name


# ----------------------------------------------------------------------------------------------- keys
def spec_dict(obj: Any) -> Any:
    """A plain, JSON-serialisable view of a config or data spec (dataclasses carry their class name)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {"__class__": type(obj).__qualname__}
        for f in dataclasses.fields(obj):
            out[f.name] = spec_dict(getattr(obj, f.name))
        return out
    if isinstance(obj, Mapping):
        return {str(k): spec_dict(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [spec_dict(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # NumPy scalars and arrays
        return obj.tolist()
    return obj


def _package_files(package: str) -> list[Path]:
    spec = importlib.util.find_spec(package)
    if spec is None:
        raise ValueError(f"code fingerprint: package {package!r} cannot be imported")
    if spec.submodule_search_locations:  # a package: every .py file below it
        files: list[Path] = []
        for loc in spec.submodule_search_locations:
            files += sorted(p for p in Path(loc).rglob("*.py") if "__pycache__" not in p.parts)
        return files
    return [Path(spec.origin)] if spec.origin else []


def code_fingerprint(packages: Sequence[str]) -> str:
    """SHA-256 over the source files of ``packages`` (their relative paths and bytes)."""
    h = hashlib.sha256()
    for package in sorted(set(packages)):
        files = _package_files(package)
        base = files[0].parent if files else Path(".")
        for path in files:
            rel = os.path.relpath(path, base)
            h.update(f"{package}:{rel}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def git_revision(path: str | Path = ".") -> str | None:
    """``git rev-parse HEAD`` of the checkout at ``path`` (``+dirty`` when it has changes), or None."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return rev + ("+dirty" if dirty else "")


def _fn_name(fn: Callable[..., Any]) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def run_key(benchmark: str, run: Run, code: str) -> str:
    """The cache key of ``run``: a hash of benchmark, name, function, config, data, version and code."""
    payload = {
        "benchmark": benchmark,
        "name": run.name,
        "fn": _fn_name(run.fn),
        "config": spec_dict(run.config),
        "data": spec_dict(run.data),
        "version": mercato.__version__,
        "code": code,
    }
    return str(joblib.hash(payload))


# -------------------------------------------------------------------------------------------- timing
def best_of(fn: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """The fastest of ``repeats`` timed calls of ``fn`` (seconds), after ``warmup`` untimed calls.

    The minimum is the least noisy estimate on a shared machine: other load only ever adds time.
    """
    if repeats < 1:
        raise ValueError(f"best_of: repeats must be >= 1, got {repeats}")
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def machine_info() -> dict[str, Any]:
    """Cores, torch threads, load average, host, Python and torch versions (recorded with every run)."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_avg_1m": round(load[0], 2),
        "host": platform.node(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__.split("+")[0],
        "cuda": torch.cuda.is_available(),
    }


def machine_line(meta: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> str:
    """One sentence on the machine the runs used, from their recorded ``meta`` (several: load as a range)."""
    metas = [meta] if isinstance(meta, Mapping) else list(meta)
    if not metas:
        return "Machine: not recorded."
    m = metas[0]
    loads = [float(x["load_avg_1m"]) for x in metas if "load_avg_1m" in x]
    threads = sorted({int(x["torch_threads"]) for x in metas if "torch_threads" in x})
    load = f"{min(loads):.1f}" if len(set(loads)) <= 1 else f"{min(loads):.1f}-{max(loads):.1f}"
    gpu = ", CUDA available" if m.get("cuda") else ""
    return (
        f"Machine: {m.get('cpu_count')} CPU cores ({m.get('machine')}{gpu}), torch {m.get('torch')} "
        f"({'/'.join(map(str, threads))} threads), Python {m.get('python')}; 1-min load average at run start "
        f"{load}."
    )


def describe(config: Any, keys: Sequence[str] | None = None, names: Mapping[str, str] | None = None) -> str:
    """``"lr 0.001, batch_size 2048, ..."`` from a config dataclass or mapping (``keys`` selects and orders)."""
    d = spec_dict(config)
    if not isinstance(d, dict):
        return str(d)
    d = {k: v for k, v in d.items() if k != "__class__"}
    keys = list(keys) if keys is not None else list(d)
    missing = [k for k in keys if k not in d]
    if missing:
        raise KeyError(f"describe: {missing} not in config (has {sorted(d)})")
    names = names or {}
    return ", ".join(f"{names.get(k, k)} {_fmt(d[k])}" for k in keys)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


# ------------------------------------------------------------------------------------------ execution
def _execute(run: Run, torch_threads: int | None) -> dict[str, Any]:
    """Run one declared run (in a worker or in-process): its result and the meta of how it ran."""
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    meta = machine_info()
    t0 = time.perf_counter()
    result = run.fn(run.config, run.data)
    meta["wall_s"] = round(time.perf_counter() - t0, 3)
    if not isinstance(result, Mapping):
        raise TypeError(f"run {run.name!r}: {_fn_name(run.fn)} returned {type(result).__name__}, not a dict")
    return {"result": dict(result), "meta": meta}


def _parse_shard(text: str | None) -> tuple[int, int] | None:
    if text in (None, ""):
        return None
    try:
        i, n = (int(x) for x in str(text).split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected i/n (e.g. 0/2), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard: need 0 <= i < n, got {text!r}")
    return i, n


def add_runner_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The runner's command-line options, shared by every benchmark script."""
    g = parser.add_argument_group("experiment runner")
    g.add_argument(
        "--quick", action="store_true", help="smoke run; writes only under runs/bench/<name>-quick/"
    )
    g.add_argument(
        "--shard", default=None, help="i/n: compute only shard i of n (no report); share the cache"
    )
    g.add_argument("--workers", type=int, default=1, help="parallel runs (process pool or Ray tasks)")
    g.add_argument("--executor", choices=["process", "ray"], default="process", help="where runs execute")
    g.add_argument("--ray-address", default=None, help="Ray cluster address (default: a local instance)")
    g.add_argument("--threads", type=int, default=None, help="torch threads per run (default: torch's)")
    g.add_argument("--root", default="runs/bench", help="output root: <root>/<benchmark>[-quick]/")
    g.add_argument("--merge", default=None, help="comma list of other roots whose cached results to copy in")
    g.add_argument("--rerun", action="store_true", help="recompute every run even if cached")
    g.add_argument("--no-docs", action="store_true", help="write reports under the output root, not docs/")
    return parser


class Experiment:
    """A benchmark's runs, their cache under ``<root>/<name>/cache/`` and its reports."""

    def __init__(
        self,
        name: str,
        *,
        code: Sequence[str] = ("mercato",),
        quick: bool = False,
        root: str | Path = "runs/bench",
        repo: str | Path | None = None,
        shard: str | tuple[int, int] | None = None,
        workers: int = 1,
        executor: str = "process",
        ray_address: str | None = None,
        threads: int | None = None,
        merge: Sequence[str | Path] = (),
        rerun: bool = False,
        docs: bool = True,
        show_progress: bool = True,
    ) -> None:
        if executor not in ("process", "ray"):
            raise ValueError(f"executor must be 'process' or 'ray', got {executor!r}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.name = name
        self.quick = quick
        self.repo = Path(repo) if repo is not None else Path.cwd()
        self.root = Path(root) / (f"{name}-quick" if quick else name)
        self.cache_dir = self.root / "cache"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.shard = _parse_shard(shard) if isinstance(shard, str | type(None)) else shard
        self.workers, self.executor, self.ray_address, self.threads = workers, executor, ray_address, threads
        self.rerun = rerun
        self.write_docs = docs and not quick
        self.show_progress = show_progress
        self.code = code_fingerprint(code)
        self.code_packages = tuple(code)
        self.git = git_revision(self.repo)
        self.declared: dict[str, Run] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self.computed: list[str] = []  # names computed by this process (the rest came from the cache)
        for other in merge:
            self.merge_from(other)

    @classmethod
    def from_args(
        cls, name: str, args: argparse.Namespace, *, code: Sequence[str], repo: str | Path | None = None
    ) -> Experiment:
        """An experiment configured by :func:`add_runner_args` options."""
        merge = [m for m in (args.merge or "").split(",") if m]
        return cls(
            name,
            code=code,
            quick=args.quick,
            root=args.root,
            repo=repo,
            shard=args.shard,
            workers=args.workers,
            executor=args.executor,
            ray_address=args.ray_address,
            threads=args.threads,
            merge=merge,
            rerun=args.rerun,
            docs=not args.no_docs,
        )

    # ------------------------------------------------------------------------------------- cache
    def key(self, run: Run) -> str:
        return run_key(self.name, run, self.code)

    def _path(self, run: Run) -> Path:
        return self.cache_dir / f"{self.key(run)}.json"

    def cached(self, run: Run) -> dict[str, Any] | None:
        """The cached entry of ``run`` (``{"result", "meta", ...}``) or None."""
        path = self._path(run)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text())
        except json.JSONDecodeError:
            log.warning("%s: unreadable cache entry %s, recomputing", run.name, path)
            return None
        return dict(entry)

    def _store(self, run: Run, out: Mapping[str, Any]) -> None:
        meta = {**out["meta"], "git": self.git, "version": mercato.__version__, "code": self.code}
        entry = {
            "benchmark": self.name,
            "name": run.name,
            "fn": _fn_name(run.fn),
            "config": spec_dict(run.config),
            "data": spec_dict(run.data),
            "code_packages": list(self.code_packages),
            "result": out["result"],
            "meta": meta,
        }
        try:
            atomic_write_json(self._path(run), entry)
        except TypeError as err:
            raise TypeError(f"run {run.name!r}: result is not JSON-serialisable ({err})") from err
        # what the caller sees is what a later cached call will see (JSON round trip)
        stored = json.loads(self._path(run).read_text())
        self.results[run.name], self.meta[run.name] = stored["result"], stored["meta"]
        self.computed.append(run.name)

    def merge_from(self, other_root: str | Path) -> int:
        """Copy the cached results of another root (``<root>/<benchmark>`` or its ``cache``) in; their count."""
        src = Path(other_root)
        src = src / "cache" if (src / "cache").is_dir() else src
        if not src.is_dir():
            raise FileNotFoundError(f"--merge: {src} is not a folder of cached results")
        n = 0
        for f in sorted(src.glob("*.json")):
            target = self.cache_dir / f.name
            if not target.exists():
                shutil.copyfile(f, target)
                n += 1
        log.info("merged %d cached results from %s", n, src)
        return n

    # ------------------------------------------------------------------------------------ running
    def in_shard(self, group: str) -> bool:
        """Whether this process computes runs of ``group`` (always, without ``--shard``)."""
        if self.shard is None:
            return True
        i, n = self.shard
        return int(str(joblib.hash(group)), 16) % n == i

    @property
    def complete(self) -> bool:
        """Every declared run has a result and this is not a shard: the time to write reports."""
        return self.shard is None and all(n in self.results for n in self.declared)

    def run(self, runs: Sequence[Run], desc: str | None = None) -> dict[str, dict[str, Any]]:
        """Serve cached runs, compute the rest of this shard; ``{name: result}`` of every available run."""
        names = [r.name for r in runs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"{self.name}: run names must be unique, repeated: {dup}")
        todo: list[Run] = []
        for run in runs:
            if run.name in self.declared and self.key(self.declared[run.name]) != self.key(run):
                raise ValueError(f"{self.name}: run {run.name!r} declared twice with different specs")
            self.declared[run.name] = run
            entry = None if self.rerun and self.in_shard(run.shard_group) else self.cached(run)
            if entry is not None:
                self.results[run.name], self.meta[run.name] = entry["result"], entry["meta"]
            elif self.in_shard(run.shard_group) and run.name not in self.results:
                todo.append(run)
        if todo:
            log.info("%s: %d of %d runs to compute (%s)", self.name, len(todo), len(runs), self.executor)
            bar = progress(total=len(todo), desc=desc or self.name, disable=not self.show_progress)
            for run, out in self._execute_all(todo):
                self._store(run, out)
                bar.update(1)
            bar.close()
        return {n: self.results[n] for n in names if n in self.results}

    def _execute_all(self, todo: list[Run]) -> Iterator[tuple[Run, dict[str, Any]]]:
        if self.executor == "ray":
            yield from self._execute_ray(todo)
            return
        if self.workers == 1 or len(todo) == 1:
            for run in todo:
                yield run, _execute(run, self.threads)
            return
        parallel = joblib.Parallel(n_jobs=self.workers, backend="loky", return_as="generator_unordered")
        outs = parallel(joblib.delayed(_execute_indexed)(i, run, self.threads) for i, run in enumerate(todo))
        for i, out in outs:
            yield todo[i], out

    def _execute_ray(self, todo: list[Run]) -> Iterator[tuple[Run, dict[str, Any]]]:
        import ray

        started = not ray.is_initialized()
        if started:
            kw: dict[str, Any] = (
                {"address": self.ray_address} if self.ray_address else {"num_cpus": self.workers}
            )
            ray.init(include_dashboard=False, log_to_driver=False, **kw)
        try:
            remote = ray.remote(_execute)
            pending = {remote.remote(run, self.threads): run for run in todo}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), ray.get(ref)
        finally:
            if started:
                ray.shutdown()

    # ------------------------------------------------------------------------------------ reports
    def out_path(self, rel: str | Path) -> Path:
        """Where a report file (``docs/x.md``, ``docs/img/x.png``) goes: the repo, or the output root."""
        rel = Path(rel)
        return (self.repo / rel) if self.write_docs else (self.root / rel)

    def report(
        self, blocks: Mapping[str, Mapping[str, str]], titles: Mapping[str, str] | None = None
    ) -> None:
        """Replace generated blocks: ``{"docs/x.md": {"block-name": markdown}}`` (under the root if quick)."""
        if not self.complete:
            log.info("%s: not every run is available (shard or missing); no report written", self.name)
            return
        for rel, sections in blocks.items():
            path = self.out_path(rel)
            for block, body in sections.items():
                update_markdown_section(path, block, body, title=(titles or {}).get(rel))
            log.info("%s: wrote %s (%s)", self.name, path, ", ".join(sections))

    def write_json(self, rel: str, data: Any) -> Path:
        """A summary JSON under the output root (never into docs/)."""
        return atomic_write_json(self.root / rel, data)

    def all_meta(self) -> list[dict[str, Any]]:
        """The ``meta`` of every declared run that has a result."""
        return [self.meta[n] for n in self.declared if n in self.meta]

    def wall_seconds(self) -> float:
        """Sum of the recorded wall time of every declared run (cached ones included)."""
        return float(sum(m.get("wall_s", 0.0) for m in self.all_meta()))


def _execute_indexed(i: int, run: Run, threads: int | None) -> tuple[int, dict[str, Any]]:
    return i, _execute(run, threads)

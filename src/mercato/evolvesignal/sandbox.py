"""Run a candidate program in a child process with limits; never in this process.

The child is ``python -I -S`` (isolated: no user site, no site-packages, no environment variables) running the small
runner below. Before the program runs, the child

* sets ``RLIMIT_CPU`` (CPU seconds) and ``RLIMIT_AS`` (address space), and ``RLIMIT_NOFILE``/``RLIMIT_NPROC`` small;
* installs an audit hook (PEP 578) that refuses sockets, subprocesses, ``os.system``/``exec``/``fork``/``spawn``,
  and any ``open`` for writing, removal or rename outside the scratch folder (its working directory);
* executes the program with a restricted ``__import__`` that only admits an allowlist of pure stdlib modules.

The parent enforces a wall-clock timeout and kills the child's process group. Every failure (timeout, crash,
memory, forbidden action, bad output) comes back as a :class:`SandboxResult` with ``ok=False`` and a reason; the
caller scores it 0 and goes on.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mercato.evolvesignal.timing import Geometry, PlanError, validate_plan

__all__ = ["DEFAULT_ALLOWED_IMPORTS", "SandboxConfig", "SandboxResult", "run_program"]

logger = logging.getLogger(__name__)

DEFAULT_ALLOWED_IMPORTS = (
    "math",
    "statistics",
    "collections",
    "itertools",
    "functools",
    "typing",
    "dataclasses",
    "copy",
    "heapq",
    "bisect",
    "operator",
    "fractions",
    "decimal",
    "random",
)


@dataclass
class SandboxConfig:
    """Limits of one program call (the program computes plans; SUMO runs outside it)."""

    timeout_s: float = 5.0  # wall-clock limit of the child process, s
    cpu_s: int = 3  # RLIMIT_CPU, CPU seconds
    memory_mb: int = 512  # RLIMIT_AS, address space, MiB
    allowed_imports: tuple[str, ...] = field(
        default_factory=lambda: DEFAULT_ALLOWED_IMPORTS
    )  # import allowlist
    function: str = "signal_timing_algorithm"  # the entry point the program must define


@dataclass
class SandboxResult:
    """Outcome of one sandboxed call: the validated plans (one per demand) or the reason for failure."""

    ok: bool
    plans: list[dict[str, float]] = field(default_factory=list)
    reason: str = ""


_MARK = "@@MERCATO_SANDBOX@@"

_RUNNER = r"""
import sys, os, json, builtins
cfg = json.loads(sys.stdin.readline())
src = sys.stdin.read()
scratch = os.path.realpath(os.getcwd())
out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # the program's prints go to stderr; only the runner writes the result
allowed = set(cfg["allowed"])

def _inside(path):
    try:
        p = os.path.realpath(os.fsdecode(path))
    except Exception:
        return False
    return p == scratch or p.startswith(scratch + os.sep)

def _hook(event, args):
    if event.startswith("socket.") or event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn",
            "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg", "pty.spawn", "ctypes.dlopen", "os.startfile"):
        raise PermissionError("sandbox: forbidden action " + event)
    if event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
            flags is not None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
        if writing and not isinstance(path, int) and not _inside(path):
            raise PermissionError("sandbox: write outside scratch: " + str(path))
    if event in ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate", "os.chmod"):
        if not _inside(args[0]):
            raise PermissionError("sandbox: " + event + " outside scratch: " + str(args[0]))

_real_import = builtins.__import__
def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if level != 0 or name.split(".")[0] not in allowed:
        raise ImportError("sandbox: import of " + repr(name) + " is not allowed")
    return _real_import(name, globals, locals, fromlist, level)

for m in allowed:  # import the allowed modules before the hook is installed
    try:
        _real_import(m)
    except ImportError:
        pass
sys.addaudithook(_hook)
safe_builtins = dict(builtins.__dict__)
safe_builtins["__import__"] = _import
for name in ("exec", "eval", "compile", "breakpoint", "input", "open"):
    safe_builtins.pop(name, None)
def emit(obj):
    out.write("@@MERCATO_SANDBOX@@" + json.dumps(obj) + "\n")
    out.flush()
try:
    env = {"__builtins__": safe_builtins, "__name__": "candidate"}
    exec(compile(src, "<program>", "exec"), env)
    fn = env.get(cfg["function"])
    if not callable(fn):
        raise NameError("program defines no function " + cfg["function"])
    plans = [fn(dict(f)) for f in cfg["flows"]]
    emit({"ok": True, "outputs": plans})
except BaseException as err:
    emit({"ok": False, "reason": type(err).__name__ + ": " + str(err)[:300]})
"""


def _limits(cfg: SandboxConfig) -> Any:
    def apply() -> None:
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (cfg.cpu_s, cfg.cpu_s + 1))
        mem = cfg.memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    return apply


def run_program(
    source: str,
    flows: Sequence[Mapping[str, float]],
    config: SandboxConfig | None = None,
    geometry: Geometry | None = None,
) -> SandboxResult:
    """Call the program's entry point on each demand in a sandboxed child and validate every plan."""
    cfg = config or SandboxConfig()
    payload = json.dumps(
        {"allowed": list(cfg.allowed_imports), "function": cfg.function, "flows": [dict(f) for f in flows]}
    )
    with tempfile.TemporaryDirectory(prefix="mercato-sandbox-") as scratch:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _RUNNER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=scratch,
                env={"PATH": "/usr/bin:/bin"},
                preexec_fn=_limits(cfg),
                text=True,
            )
        except OSError as err:
            return _fail(f"could not start the sandbox: {err}")
        try:
            stdout, stderr = proc.communicate(payload + "\n" + source, timeout=cfg.timeout_s)
        except subprocess.TimeoutExpired:
            _kill(proc)
            return _fail(f"timeout after {cfg.timeout_s} s")
    lines = [ln for ln in stdout.splitlines() if ln.startswith(_MARK)]
    if not lines:
        if proc.returncode is not None and proc.returncode < 0:
            sig = signal.Signals(-proc.returncode).name
            return _fail(f"killed by {sig}" + (" (CPU limit)" if sig == "SIGXCPU" else ""))
        tail = stderr.strip().splitlines()[-1:] if stderr.strip() else []
        return _fail(f"no result (exit code {proc.returncode}) {' '.join(tail)}".strip())
    msg = json.loads(lines[-1][len(_MARK) :])
    if not msg.get("ok"):
        return _fail(str(msg.get("reason", "unknown error")))
    outputs = msg["outputs"]
    plans = []
    for i, out in enumerate(outputs):
        try:
            plans.append(validate_plan(out, geometry))
        except PlanError as err:
            return _fail(f"bad output on demand {i}: {err}")
    return SandboxResult(ok=True, plans=plans)


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _fail(reason: str) -> SandboxResult:
    logger.info("program scored 0: %s", reason)
    return SandboxResult(ok=False, reason=reason)


def write_program(path: str | Path, source: str) -> Path:
    """Write a program's source atomically (used by the CLI for the best program)."""
    from mercato.core.runs import atomic_write_text

    return atomic_write_text(path, source)

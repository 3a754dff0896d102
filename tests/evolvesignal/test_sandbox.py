"""Hostile programs score 0 with a reason, and the caller goes on (the sandbox is a child process)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from mercato.evolvesignal.config import EvaluationConfig
from mercato.evolvesignal.evaluate import evaluate_program
from mercato.evolvesignal.programs import WEBSTER_PROGRAM
from mercato.evolvesignal.sandbox import DEFAULT_ALLOWED_IMPORTS, SandboxConfig, run_program
from mercato.evolvesignal.sim import SCENARIOS

FLOWS = [SCENARIOS["balanced"]]
LOOP = SandboxConfig(timeout_s=1.5, cpu_s=1)
FAST = SandboxConfig(timeout_s=3.0, cpu_s=1, memory_mb=256)
OPEN = SandboxConfig(
    timeout_s=3.0,
    cpu_s=1,
    allowed_imports=(*DEFAULT_ALLOWED_IMPORTS, "os", "socket", "io", "time", "subprocess"),
)


def _body(code: str) -> str:
    return f"def signal_timing_algorithm(f):\n{code}\n"


@pytest.mark.parametrize(
    ("source", "cfg", "reason"),
    [
        (_body("    while True:\n        pass"), LOOP, "SIGXCPU|timeout"),
        (_body("    x = [0] * (10 ** 10)"), FAST, "MemoryError"),
        ("import socket\n" + _body("    socket.socket()"), FAST, "import of 'socket' is not allowed"),
        ("import os\n" + _body("    os.system('true')"), FAST, "import of 'os' is not allowed"),
        (_body("    open('/tmp/x', 'w')"), FAST, "'open' is not defined"),
        (_body("    return 1 / 0"), FAST, "ZeroDivisionError"),
        (_body("    return {'green_times': {'NS_through': 5}}"), FAST, "bad output"),
        ("x = (", FAST, "SyntaxError"),
        ("def other(f):\n    return 1\n", FAST, "no function signal_timing_algorithm"),
        # with the modules admitted, the audit hook still refuses the action
        ("import socket\n" + _body("    socket.socket()"), OPEN, "forbidden action socket"),
        ("import os\n" + _body("    os.system('true')"), OPEN, "forbidden action os.system"),
        ("import subprocess\n" + _body("    subprocess.run(['true'])"), OPEN, "forbidden action"),
        (
            "import io\n" + _body("    io.open('/tmp/mercato-sandbox-evil.txt', 'w')"),
            OPEN,
            "write outside scratch",
        ),
        ("import os\n" + _body("    os.remove('/tmp/whatever')"), OPEN, "outside scratch"),
        (
            "import time\n" + _body("    time.sleep(30)"),
            SandboxConfig(timeout_s=0.5, allowed_imports=OPEN.allowed_imports),
            "timeout",
        ),
    ],
)
def test_hostile_program_scores_zero(source: str, cfg: SandboxConfig, reason: str) -> None:
    res = run_program(source, FLOWS, cfg)
    assert not res.ok
    assert re.search(reason, res.reason), res.reason
    assert not Path("/tmp/mercato-sandbox-evil.txt").exists()


def test_write_inside_scratch_is_allowed_and_good_program_runs_after_failures() -> None:
    src = "import io\n" + _body(
        "    io.open('note.txt', 'w').write('ok')\n    return {'green_times': {'NS_through': 30, 'NS_left': 15, 'EW_through': 30, 'EW_left': 15}}"
    )
    assert run_program(src, FLOWS, OPEN).ok
    res = run_program(WEBSTER_PROGRAM, FLOWS, FAST)
    assert res.ok and res.plans[0]["NS_through"] > 0


def test_evaluate_program_scores_a_failure_zero() -> None:
    cfg = EvaluationConfig(fitness="surrogate", sandbox=FAST)
    bad = evaluate_program(_body("    raise RuntimeError('boom')"), cfg)
    assert bad["score"] == 0.0 and "boom" in bad["reason"]
    good = evaluate_program(WEBSTER_PROGRAM, cfg)
    assert good["ok"] and 0.0 < good["score"] < 1.0


def test_program_prints_do_not_corrupt_the_result() -> None:
    src = _body('    print(\'@@MERCATO_SANDBOX@@{"ok": true, "outputs": []}\')\n    return None')
    res = run_program(src, FLOWS, FAST)
    assert not res.ok and "bad output" in res.reason
    assert os.getcwd() != ""

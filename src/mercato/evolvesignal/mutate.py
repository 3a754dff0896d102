"""Mutation operators on program source text, all emitting SEARCH/REPLACE diffs (digest B4, F2).

* :class:`OfflineMutator` (default, deterministic given a ``random.Random``): numeric-literal perturbation, domain
  edit templates (cycle bounds, right-turn demand, green rescaling, saturation flows, oversaturation cap) and
  crossover with an inspiration program.
* :class:`OpenAICompatibleLLM`: any OpenAI-compatible ``/chat/completions`` endpoint configured by environment
  variables (``MERCATO_LLM_BASE_URL``, ``MERCATO_LLM_MODEL``, ``MERCATO_LLM_API_KEY``), asked for 1-2 SEARCH/REPLACE
  edits as in the paper's diff prompt.

Whatever the operator, the child is only ever executed by the sandbox.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import urllib.request
from dataclasses import dataclass

__all__ = ["DiffError", "OfflineMutator", "OpenAICompatibleLLM", "apply_diff", "constants"]

_CONST = re.compile(r"^([A-Z][A-Z_]*) = (-?[0-9]+(?:\.[0-9]*)?)$", re.MULTILINE)
_BLOCK = re.compile(r"<<<<<<< SEARCH\n(.*?)\n=======\n(.*?)\n>>>>>>> REPLACE", re.DOTALL)

# sane ranges of the seed's named constants (a perturbed value is clipped into them)
RANGES: dict[str, tuple[float, float]] = {
    "S_THROUGH": (1200.0, 2400.0),
    "S_LEFT": (900.0, 2000.0),
    "SHARED_FACTOR": (0.0, 1.0),
    "RIGHT_WEIGHT": (0.0, 1.5),
    "C_MIN": (40.0, 120.0),
    "C_MAX": (60.0, 200.0),
    "C_OVER": (60.0, 200.0),
    "Y_CAP": (0.5, 1.0),
    "GREEN_SCALE": (0.5, 1.5),
    "LOST_TIME": (8.0, 24.0),
    "CRIT_BONUS": (0.0, 0.5),
    "MIN_GREEN_THROUGH": (20.0, 40.0),
    "MIN_GREEN_LEFT": (15.0, 30.0),
}


class DiffError(ValueError):
    """A diff could not be applied (no blocks, or a SEARCH text not found in the program)."""


def apply_diff(source: str, diff: str) -> str:
    """Apply SEARCH/REPLACE blocks in order; each SEARCH must occur in the current text (first occurrence replaced)."""
    blocks = _BLOCK.findall(diff)
    if not blocks:
        raise DiffError("no SEARCH/REPLACE block in the edit")
    out = source
    for search, replace in blocks:
        if search not in out:
            raise DiffError(f"SEARCH text not found: {search[:80]!r}")
        out = out.replace(search, replace, 1)
    return out


def _block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


def constants(source: str) -> dict[str, float]:
    """The module-level ``NAME = number`` constants of a program."""
    return {m.group(1): float(m.group(2)) for m in _CONST.finditer(source)}


def _set_const(name: str, old: str, value: float) -> str:
    return _block(f"{name} = {old}", f"{name} = {round(value, 3)}")


_RESCALE = """    total = sum(greens.values())  # RESCALED: greens sum to cycle - L after the min-green floor
    target = max(cycle - LOST_TIME, 2 * MIN_GREEN_THROUGH + 2 * MIN_GREEN_LEFT)
    for phase in greens:
        low = MIN_GREEN_THROUGH if phase.endswith("through") else MIN_GREEN_LEFT
        greens[phase] = float(max(low, round(greens[phase] * target / total)))
    # <rescale>"""

_CRIT = """    crit = max(y, key=y.get)  # CRITBONUS: extra share for the most critical phase
    greens[crit] = float(round(greens[crit] * (1.0 + CRIT_BONUS)))
    # <rescale>"""


@dataclass
class OfflineMutator:
    """Deterministic (given the caller's RNG) mutation of a program's source; returns a diff."""

    sigma: float = 0.15  # log-normal scale of a numeric perturbation
    name: str = "offline"

    def propose(
        self, parent: str, inspiration: str | None, rng: random.Random, crossover_rate: float = 0.2
    ) -> str:
        if inspiration is not None and rng.random() < crossover_rate:
            diff = self.crossover(parent, inspiration, rng)
            if diff:
                return diff
        op = rng.choice(
            [
                "numeric",
                "numeric",
                "cycle_bounds",
                "right_turn",
                "green_rescale",
                "saturation",
                "oversat",
                "critical",
            ]
        )
        diff = getattr(self, op)(parent, rng)
        return diff or self.numeric(parent, rng)

    def _perturb(self, source: str, name: str, rng: random.Random, sigma: float | None = None) -> str:
        m = re.search(rf"^{name} = (-?[0-9]+(?:\.[0-9]*)?)$", source, re.MULTILINE)
        if m is None:
            return ""
        old = float(m.group(1))
        lo, hi = RANGES.get(name, (-math.inf, math.inf))
        base = old if old != 0 else 0.1 * (hi - lo if math.isfinite(hi - lo) else 1.0)
        new = min(max(base * math.exp(rng.gauss(0.0, sigma or self.sigma)), lo), hi)
        return _set_const(name, m.group(1), new)

    def numeric(self, source: str, rng: random.Random) -> str:
        names = sorted(constants(source))
        return self._perturb(source, rng.choice(names), rng) if names else ""

    def cycle_bounds(self, source: str, rng: random.Random) -> str:
        c = constants(source)
        if "C_MIN" not in c or "C_MAX" not in c:
            return ""
        lo = rng.uniform(*RANGES["C_MIN"])
        hi = max(lo, rng.uniform(*RANGES["C_MAX"]))
        old = {m.group(1): m.group(2) for m in _CONST.finditer(source)}
        return _set_const("C_MIN", old["C_MIN"], lo) + _set_const("C_MAX", old["C_MAX"], hi)

    def right_turn(self, source: str, rng: random.Random) -> str:
        return self._perturb(source, "RIGHT_WEIGHT", rng, sigma=0.5) if "RIGHT_WEIGHT" in source else ""

    def saturation(self, source: str, rng: random.Random) -> str:
        return self._perturb(source, rng.choice(["S_THROUGH", "S_LEFT", "SHARED_FACTOR"]), rng)

    def green_rescale(self, source: str, rng: random.Random) -> str:
        if "# <rescale>" in source and "RESCALED" not in source:
            return _block("    # <rescale>", _RESCALE)
        return self._perturb(source, "GREEN_SCALE", rng)

    def critical(self, source: str, rng: random.Random) -> str:
        if "# <rescale>" in source and "CRITBONUS" not in source and "GREEN_SCALE = " in source:
            line = re.search(r"^GREEN_SCALE = .*$", source, re.MULTILINE)
            assert line is not None
            bonus = round(rng.uniform(0.05, 0.3), 3)
            return _block(line.group(0), f"{line.group(0)}\nCRIT_BONUS = {bonus}") + _block(
                "    # <rescale>", _CRIT
            )
        return self._perturb(source, "CRIT_BONUS", rng) if "CRIT_BONUS" in source else ""

    def oversat(self, source: str, rng: random.Random) -> str:
        if "if y_total >= 1.0:" in source and "C_MAX = " in source:
            line = re.search(r"^C_MAX = .*$", source, re.MULTILINE)
            assert line is not None
            cap = round(rng.uniform(0.8, 0.98), 3)
            over = round(rng.uniform(80.0, 150.0), 1)
            return _block(line.group(0), f"{line.group(0)}\nY_CAP = {cap}\nC_OVER = {over}") + _block(
                "    if y_total >= 1.0:\n        cycle = C_MAX",
                "    if y_total >= Y_CAP:\n        cycle = C_OVER",
            )
        name = rng.choice(["Y_CAP", "C_OVER"])
        return self._perturb(source, name, rng) if f"{name} = " in source else ""

    def crossover(self, parent: str, other: str, rng: random.Random) -> str:
        """Take each shared constant from ``other`` with probability 1/2; adopt a template block ``other`` has."""
        diff = ""
        mine = {m.group(1): m.group(2) for m in _CONST.finditer(parent)}
        theirs = {m.group(1): m.group(2) for m in _CONST.finditer(other)}
        for name in sorted(set(mine) & set(theirs)):
            if mine[name] != theirs[name] and rng.random() < 0.5:
                diff += _block(f"{name} = {mine[name]}", f"{name} = {theirs[name]}")
        if (
            "RESCALED" in other
            and "RESCALED" not in parent
            and "# <rescale>" in parent
            and rng.random() < 0.5
        ):
            diff += _block("    # <rescale>", _RESCALE)
        return diff


SYSTEM_PROMPT = (
    "You are a traffic-signal engineer improving a fixed-time timing program for one isolated 4-arm intersection "
    "(per approach: 2 through lanes, 1 shared through-right lane, 1 left lane; 4 phases NS_through, NS_left, "
    "EW_through, EW_left, each followed by 3 s yellow and 1 s all-red; min green 20 s through, 15 s left). "
    "Fitness = 0.5/(1+delay/100) + 0.5/(1+stops), averaged over SUMO runs. Keep the function "
    "signal_timing_algorithm(traffic_flows) and its output {'green_times': {...4 phases...}}. Only the modules "
    "math, statistics, collections, itertools and functools may be imported."
)


def build_prompt(parent: str, metrics: dict[str, float]) -> str:
    """The diff prompt: current metrics and program, one strategy category, 1-2 SEARCH/REPLACE edits (B4)."""
    metric_text = json.dumps({k: round(float(v), 4) for k, v in metrics.items()})
    return (
        f"Current metrics (JSON): {metric_text}\n\nCurrent program:\n```python\n{parent}\n```\n\n"
        "Pick one strategy category (traffic-engineering principles; rule heuristics; hyperparameter tuning of cycle "
        "bounds, saturation flows or thresholds; ideas from scheduling or control; a lightweight refinement) and "
        "propose 1-2 non-conflicting edits, each exactly in this format, with SEARCH text copied verbatim:\n"
        "<<<<<<< SEARCH\n(old lines)\n=======\n(new lines)\n>>>>>>> REPLACE\n"
    )


@dataclass
class OpenAICompatibleLLM:
    """An OpenAI-compatible chat endpoint as mutation operator; configured from the environment by default."""

    base_url: str = ""  # e.g. http://127.0.0.1:8000/v1 (env MERCATO_LLM_BASE_URL)
    model: str = ""  # model name sent to the endpoint (env MERCATO_LLM_MODEL)
    api_key: str = ""  # bearer token, if any (env MERCATO_LLM_API_KEY)
    temperature: float = 0.6  # sampling temperature (paper: 0.6)
    max_tokens: int = 1024  # completion limit (paper: 8192)
    timeout_s: float = 60.0  # HTTP timeout
    name: str = "llm"

    @classmethod
    def from_env(cls) -> OpenAICompatibleLLM:
        base = os.environ.get("MERCATO_LLM_BASE_URL", "")
        if not base:
            raise RuntimeError(
                "mutator 'llm' needs MERCATO_LLM_BASE_URL (an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1)"
            )
        return cls(
            base_url=base,
            model=os.environ.get("MERCATO_LLM_MODEL", "default"),
            api_key=os.environ.get("MERCATO_LLM_API_KEY", ""),
        )

    def complete(self, prompt: str) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": [
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": prompt},
                ],
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(
            self.base_url.rstrip("/") + "/chat/completions", data=body, headers=headers
        )
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 (user-configured endpoint)
            data = json.loads(resp.read().decode())
        try:
            return str(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError) as err:
            raise DiffError(f"endpoint answer has no choices[0].message.content: {str(data)[:200]}") from err

    def propose(
        self,
        parent: str,
        inspiration: str | None,
        rng: random.Random,
        crossover_rate: float = 0.0,
        metrics: dict[str, float] | None = None,
    ) -> str:
        return self.complete(build_prompt(parent, metrics or {}))

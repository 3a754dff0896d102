"""Timing-plan contract, Webster timing, the fixed 100 s split and the analytic surrogate (HCM 2000 + Akcelik).

Symbols follow ``docs/evolvesignal.md`` (paper digest parts B2 and E; EvolveSignal arXiv 2509.03335).

A *program* defines ``signal_timing_algorithm(traffic_flows) -> {"green_times": {...}}``. Its input is the 12
movement demands in veh/h keyed ``{N,S,E,W}_{through,left,right}``; its output gives displayed greens in seconds for
the four phases ``NS_through, NS_left, EW_through, EW_left`` (each followed by 3 s yellow and 1 s all-red).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = [
    "APPROACHES",
    "MOVEMENTS",
    "PHASES",
    "PlanError",
    "Geometry",
    "akcelik_stop_rate",
    "fixed_split_timing",
    "flow_ratios",
    "hcm_uniform_delay",
    "hcm_overflow_delay",
    "surrogate_metrics",
    "validate_flows",
    "validate_plan",
    "webster_cycle",
    "webster_timing",
]

APPROACHES = ("N", "S", "E", "W")
MOVEMENTS = tuple(f"{a}_{m}" for a in APPROACHES for m in ("through", "left", "right"))
PHASES = ("NS_through", "NS_left", "EW_through", "EW_left")


class PlanError(ValueError):
    """A program's output violates the timing-plan contract (the message names the key)."""


@dataclass(frozen=True)
class Geometry:
    """Fixed constants of the intersection outside the evolved block (digest B2)."""

    yellow: float = 3.0  # yellow per phase, s
    all_red: float = 1.0  # all-red per phase, s
    min_green_through: float = 20.0  # g_min of the through phases, s
    min_green_left: float = 15.0  # g_min of the left phases, s
    max_green: float = 120.0  # upper bound of one displayed green accepted by validate_plan, s
    s_through: float = 1800.0  # s, saturation flow of a through lane, veh/h/lane
    s_left: float = 1400.0  # s, saturation flow of the left lane, veh/h
    through_lanes: float = 2.9  # effective through lanes: 2 + 0.9 x the shared through-right lane

    @property
    def lost_time(self) -> float:
        """L = 4 (yellow + all-red), the lost time per cycle (digest B2)."""
        return 4 * (self.yellow + self.all_red)


def _check_keys(value: object, expected: tuple[str, ...], where: str, what: str) -> Mapping[str, object]:
    """``value`` as a mapping with exactly the keys ``expected``; anything else raises naming ``where``."""
    if not isinstance(value, Mapping):
        raise PlanError(f"{where}: expected {what}, got {type(value).__name__}")
    missing = [k for k in expected if k not in value]
    extra = [k for k in value if k not in expected]
    if missing or extra:
        raise PlanError(f"{where}: missing {missing}, unknown {extra}; expected keys {list(expected)}")
    return value


def validate_flows(flows: Mapping[str, object], where: str = "traffic_flows") -> dict[str, float]:
    """The 12 movement demands as floats; a missing, extra or negative key raises naming it."""
    flows = _check_keys(flows, tuple(MOVEMENTS), where, "a mapping of the 12 movements")
    out: dict[str, float] = {}
    for m in MOVEMENTS:
        v = flows[m]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
            raise PlanError(f"{where}[{m!r}]: expected a finite number >= 0 (veh/h), got {v!r}")
        out[m] = float(v)
    return out


def validate_plan(output: object, geometry: Geometry | None = None) -> dict[str, float]:
    """Check a program's output against the contract and return the four greens (s).

    Accepted: ``{"green_times": {phase: seconds}, ...}`` (extra top-level keys such as ``metadata`` are ignored).
    Each green must be a finite number within [g_min of its phase, ``max_green``].
    """
    g = geometry or Geometry()
    if not isinstance(output, Mapping):
        raise PlanError(f"output: expected a dict with 'green_times', got {type(output).__name__}")
    if "green_times" not in output:
        raise PlanError(f"output: missing key 'green_times' (keys: {sorted(map(str, output))})")
    greens = _check_keys(output["green_times"], tuple(PHASES), "output['green_times']", "a dict")
    plan: dict[str, float] = {}
    for p in PHASES:
        v = greens[p]
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise PlanError(f"output['green_times'][{p!r}]: expected a finite number of seconds, got {v!r}")
        lo = g.min_green_through if p.endswith("through") else g.min_green_left
        if not lo <= v <= g.max_green:
            raise PlanError(f"output['green_times'][{p!r}] = {v}: outside [{lo}, {g.max_green}] s")
        plan[p] = float(v)
    return plan


def flow_ratios(flows: Mapping[str, float], geometry: Geometry | None = None) -> dict[str, float]:
    """Critical flow ratio y_i = max over the two opposing approaches of q/s per phase (digest B2).

    Through: y = q_through / (2.9 s_through) (right turns ignored, as in the paper's seed program);
    left: y = q_left / s_left.
    """
    g = geometry or Geometry()
    f = validate_flows(flows)
    return {
        "NS_through": max(f["N_through"], f["S_through"]) / (g.through_lanes * g.s_through),
        "NS_left": max(f["N_left"], f["S_left"]) / g.s_left,
        "EW_through": max(f["E_through"], f["W_through"]) / (g.through_lanes * g.s_through),
        "EW_left": max(f["E_left"], f["W_left"]) / g.s_left,
    }


def webster_cycle(lost_time: float, y_total: float, c_min: float, c_max: float) -> float:
    """Webster's optimum cycle C0 = (1.5 L + 5) / (1 - Y), clipped to [C_min, C_max]; C_max when Y >= 1 (E)."""
    if y_total >= 1.0:
        return float(c_max)
    c0 = (1.5 * lost_time + 5.0) / (1.0 - y_total)
    return float(min(max(c0, c_min), c_max))


def webster_timing(
    flows: Mapping[str, float],
    geometry: Geometry | None = None,
    c_min: float = 60.0,
    c_max: float = 130.0,
) -> dict[str, float]:
    """The paper's seed program (``initial_program.py`` variant, digest B2): the Webster baseline.

    C = clip(round(C0), 60, 130); g_i = max(g_min, round(y_i / Y (C - L))). The min-green floor may push the cycle
    actually run (sum of greens + 16 s) above C.
    """
    g = geometry or Geometry()
    y = flow_ratios(flows, g)
    y_total = sum(y.values())
    cycle = float(round(webster_cycle(g.lost_time, y_total, c_min, c_max)))
    out = {}
    for p in PHASES:
        lo = g.min_green_through if p.endswith("through") else g.min_green_left
        share = y[p] / y_total if y_total > 0 else 0.25
        out[p] = float(max(lo, round(share * (cycle - g.lost_time))))
    return out


def fixed_split_timing(
    flows: Mapping[str, float], geometry: Geometry | None = None, cycle: float = 100.0
) -> dict[str, float]:
    """Fixed cycle C = 100 s split in proportion to y_i (the repo's ``signal_timing``): g_i = max(g_min, round(y_i/Y (C-L)))."""
    g = geometry or Geometry()
    y = flow_ratios(flows, g)
    y_total = sum(y.values())
    out = {}
    for p in PHASES:
        lo = g.min_green_through if p.endswith("through") else g.min_green_left
        share = y[p] / y_total if y_total > 0 else 0.25
        out[p] = float(max(lo, round(share * (cycle - g.lost_time))))
    return out


def hcm_uniform_delay(cycle: float, green: float, x: float) -> float:
    """HCM 2000 uniform delay d1 = 0.5 C (1 - g/C)^2 / (1 - min(1, X) g/C), s/veh (digest E)."""
    lam = green / cycle
    return 0.5 * cycle * (1.0 - lam) ** 2 / (1.0 - min(1.0, x) * lam)


def hcm_overflow_delay(
    x: float, capacity: float, period_h: float = 0.25, k: float = 0.5, i: float = 1.0
) -> float:
    """HCM 2000 incremental delay d2 = 900 T [(X-1) + sqrt((X-1)^2 + 8 k I X / (c T))], s/veh; c in veh/h (E)."""
    if capacity <= 0:
        raise ValueError("capacity must be > 0 veh/h")
    return (
        900.0 * period_h * ((x - 1.0) + math.sqrt((x - 1.0) ** 2 + 8.0 * k * i * x / (capacity * period_h)))
    )


def akcelik_stop_rate(cycle: float, green: float, y: float) -> float:
    """Akcelik stop rate h = 0.9 (1 - g/C) / (1 - y) for an undersaturated group, capped at 1 + overflow (E).

    When the group is saturated (y >= g/C) every vehicle stops at least once: h = max(1, ...) is returned.
    """
    lam = green / cycle
    if y >= lam or y >= 1.0:
        return 1.0 + max(0.0, y / lam - 1.0)
    return 0.9 * (1.0 - lam) / (1.0 - y)


def surrogate_metrics(
    flows: Mapping[str, float],
    plan: Mapping[str, float],
    geometry: Geometry | None = None,
    period_h: float = 0.25,
) -> dict[str, float]:
    """Flow-weighted average delay (HCM d1 + d2, PF = 1) and stops (Akcelik) of a plan on one demand.

    Each phase serves the critical approach of its movements with lane-group saturation flow s * lanes
    (through: 2.9 x 1800; left: 1400); the cycle run is sum of greens + L. Right turns are served with their
    through movement and share its delay.
    """
    g = geometry or Geometry()
    f = validate_flows(flows)
    cycle = sum(plan[p] for p in PHASES) + g.lost_time
    sat = {"through": g.through_lanes * g.s_through, "left": g.s_left}
    total_q = delay_sum = stop_sum = 0.0
    for a in APPROACHES:
        axis = "NS" if a in "NS" else "EW"
        for m in ("through", "left"):
            q = f[f"{a}_{m}"] + (f[f"{a}_right"] if m == "through" else 0.0)
            if q <= 0:
                continue
            green = plan[f"{axis}_{m}"]
            cap = sat[m] * green / cycle
            x = q / cap
            y = q / sat[m]
            d = hcm_uniform_delay(cycle, green, x) + hcm_overflow_delay(x, cap, period_h)
            total_q += q
            delay_sum += q * d
            stop_sum += q * akcelik_stop_rate(cycle, green, y)
    if total_q == 0:
        return {"delay": 0.0, "stops": 0.0, "cycle": cycle}
    return {"delay": delay_sum / total_q, "stops": stop_sum / total_q, "cycle": cycle}

"""Program sources: the Webster seed program (the search starts from it) and the fixed 100 s split.

A program is Python source text defining ``signal_timing_algorithm(traffic_flows) -> {"green_times": {...}}``.
It is only ever run inside :mod:`mercato.evolvesignal.sandbox` (a child process), never in this process.
The seed mirrors the paper's ``initial_program.py`` (digest B2) and gives the same plans as
:func:`mercato.evolvesignal.timing.webster_timing`; its named constants and ``# <anchor>`` lines are where the
offline mutator's edit templates apply.
"""

from __future__ import annotations

__all__ = ["FIXED_SPLIT_PROGRAM", "WEBSTER_PROGRAM"]

WEBSTER_PROGRAM = """\
import math

# EVOLVE-BLOCK-START
S_THROUGH = 1800.0
S_LEFT = 1400.0
SHARED_FACTOR = 0.9
RIGHT_WEIGHT = 0.0
C_MIN = 60.0
C_MAX = 130.0
GREEN_SCALE = 1.0
LOST_TIME = 16.0
MIN_GREEN_THROUGH = 20.0
MIN_GREEN_LEFT = 15.0


def signal_timing_algorithm(traffic_flows):
    f = traffic_flows
    lanes = 2.0 + SHARED_FACTOR
    q_ns = max(f["N_through"] + RIGHT_WEIGHT * f["N_right"], f["S_through"] + RIGHT_WEIGHT * f["S_right"])
    q_ew = max(f["E_through"] + RIGHT_WEIGHT * f["E_right"], f["W_through"] + RIGHT_WEIGHT * f["W_right"])
    y = {
        "NS_through": q_ns / (lanes * S_THROUGH),
        "NS_left": max(f["N_left"], f["S_left"]) / S_LEFT,
        "EW_through": q_ew / (lanes * S_THROUGH),
        "EW_left": max(f["E_left"], f["W_left"]) / S_LEFT,
    }
    y_total = sum(y.values())
    if y_total >= 1.0:
        cycle = C_MAX
    else:
        cycle = (1.5 * LOST_TIME + 5.0) / (1.0 - y_total)
    cycle = float(round(min(max(cycle, C_MIN), C_MAX)))  # <cycle>
    greens = {}
    for phase, ratio in y.items():
        low = MIN_GREEN_THROUGH if phase.endswith("through") else MIN_GREEN_LEFT
        share = ratio / y_total if y_total > 0 else 0.25
        greens[phase] = float(max(low, round(GREEN_SCALE * share * (cycle - LOST_TIME))))
    # <rescale>
    return {"green_times": greens, "metadata": {"cycle": cycle, "Y": y_total}}
# EVOLVE-BLOCK-END
"""

FIXED_SPLIT_PROGRAM = WEBSTER_PROGRAM.replace("C_MIN = 60.0", "C_MIN = 100.0").replace(
    "C_MAX = 130.0", "C_MAX = 100.0"
)

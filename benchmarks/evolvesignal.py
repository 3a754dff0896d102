"""EvolveSignal benchmark: evolved program vs Webster, fixed 100 s, random search and CMA-ES in SUMO.

    .venv/bin/python benchmarks/evolvesignal.py --workers 2      # full run (resumable: cached runs are served)
    .venv/bin/python benchmarks/evolvesignal.py --quick           # smoke run, < 60 s, writes under runs/bench/

Search and tuners use the search seeds; every reported number uses the held-out report seeds.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import sys
from dataclasses import replace

import numpy as np

from mercato.core.experiments import Experiment, Run, add_runner_args, describe, machine_line
from mercato.core.plots import save_line_plot
from mercato.core.results import markdown_table
from mercato.evolvesignal.bench import (
    BASELINE_PROGRAMS,
    ReportSpec,
    SpeedSpec,
    TunerConfig,
    TuneSpec,
    report_one,
    search_one,
    speed_one,
    tune_one,
)
from mercato.evolvesignal.config import EvaluationConfig, SearchConfig, SimConfig
from mercato.evolvesignal.programs import WEBSTER_PROGRAM
from mercato.evolvesignal.sim import ADDED_SCENARIOS, PAPER_SCENARIOS, REPORT_SEEDS, SCENARIOS

METHODS = ("webster", "fixed_100s", "random", "cma", "evolved")


def configs(quick: bool) -> tuple[SearchConfig, TunerConfig, EvaluationConfig, SpeedSpec]:
    sim = SimConfig(
        horizon_s=60 if quick else 600, drain_s=200 if quick else 900, cache_dir="runs/evolvesignal-cache"
    )
    ev = EvaluationConfig(seeds=(1,), sim=sim)
    search = SearchConfig(
        iterations=1 if quick else 6,
        islands=2 if quick else 3,
        migration_interval=1 if quick else 3,
        evaluation=ev,
    )
    tuner = TunerConfig(evaluations=2 if quick else 6)
    report = replace(ev, seeds=REPORT_SEEDS[:1] if quick else REPORT_SEEDS)
    return search, tuner, report, SpeedSpec(runs=1 if quick else 4)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    add_runner_args(parser)
    args = parser.parse_args(argv)
    exp = Experiment.from_args("evolvesignal", args, code=("mercato.core", "mercato.evolvesignal"))
    search_cfg, tuner, report_cfg, speed = configs(args.quick)
    ev = search_cfg.evaluation

    # 1. search and tuners on the search seeds
    runs = [Run("search/offline", search_one, search_cfg, None, group="search")]
    for m in ("random", "cma"):
        for sc in SCENARIOS:
            runs.append(Run(f"{m}/{sc}", tune_one, ev, TuneSpec(m, sc, tuner), group=f"{m}/{sc}"))
    res = exp.run(runs, desc="search + tuners")
    if not exp.complete:
        return 0
    best_code = res["search/offline"]["code"]

    # 2. every method on every scenario, held-out report seeds
    reports = []
    for sc in SCENARIOS:
        for m in METHODS:
            if m in BASELINE_PROGRAMS:
                spec = ReportSpec(m, sc, code=BASELINE_PROGRAMS[m])
            elif m == "evolved":
                spec = ReportSpec(m, sc, code=best_code)
            else:
                spec = ReportSpec(m, sc, plan=res[f"{m}/{sc}"]["plan"])
            reports.append(Run(f"report/{m}/{sc}", report_one, report_cfg, spec))
    rep = exp.run(reports, desc="report")

    # 3. speed: alone, one run at a time
    exp.workers = 1
    speeds = [
        Run(f"speed/{b}/w{w}", speed_one, ev.sim, replace(speed, backend=b, workers=w))
        for b in ("libsumo", "traci")
        for w in (1, 2)
    ]
    spd = exp.run(speeds, desc="speed")
    if not exp.complete:
        return 0

    # ----- tables -----
    def r(m: str, sc: str) -> dict:
        return rep[f"report/{m}/{sc}"]

    rows = []
    for m in METHODS:
        row: list[object] = [m]
        for sc in SCENARIOS:
            row.append(f"{r(m, sc)['delay']:.1f} / {r(m, sc)['stops']:.2f}")
        paper_d = np.mean([r(m, sc)["delay"] for sc in PAPER_SCENARIOS])
        paper_s = np.mean([r(m, sc)["stops"] for sc in PAPER_SCENARIOS])
        row.append(f"{paper_d:.1f} / {paper_s:.2f}")
        rows.append(row)
    table = markdown_table(["method", *SCENARIOS, "paper's 3 (mean)"], rows)

    web_d = np.mean([r("webster", sc)["delay"] for sc in PAPER_SCENARIOS])
    web_s = np.mean([r("webster", sc)["stops"] for sc in PAPER_SCENARIOS])
    ev_d = np.mean([r("evolved", sc)["delay"] for sc in PAPER_SCENARIOS])
    ev_s = np.mean([r("evolved", sc)["stops"] for sc in PAPER_SCENARIOS])
    dd, ds = 1 - ev_d / web_d, 1 - ev_s / web_s
    added_ok = all(
        r("evolved", sc)["delay"] <= r("webster", sc)["delay"]
        and r("evolved", sc)["stops"] <= r("webster", sc)["stops"]
        for sc in ADDED_SCENARIOS
    )
    main_ok = dd >= 0.15 and ds >= 0.30
    s = res["search/offline"]
    goal = (
        f"Goal: offline mutator >= 15% lower delay and >= 30% fewer stops than Webster over the paper's scenarios, "
        f"no worse on the added ones: delay {100 * dd:+.1f}% lower, stops {100 * ds:+.1f}% fewer, added scenarios "
        f"{'no worse' if added_ok else 'worse on at least one metric'}: **{'met' if main_ok and added_ok else 'missed'}**."
    )
    setup = (
        f"Setup: SUMO horizon {ev.sim.horizon_s} s of demand (+ up to {ev.sim.drain_s} s to drain), backend "
        f"{ev.sim.backend}; search: {describe(search_cfg, ['iterations', 'islands', 'population', 'migration_interval', 'mutator', 'seed'])}, "
        f"search seeds {list(ev.seeds)}, scenarios searched {list(ev.scenarios)}; {s['children']} children, "
        f"{s['valid'] - search_cfg.islands} valid, {s['evaluations']} distinct programs evaluated in {s['wall_s']:.0f} s; "
        f"tuners: {describe(tuner, ['evaluations', 'max_green', 'popsize'])} per scenario on the search seeds; "
        f"report seeds {list(report_cfg.seeds)} (held out). Cells: average delay (s/veh) / stops per vehicle."
    )
    speed_rows = [
        [b, w, f"{spd[f'speed/{b}/w{w}']['per_minute']:.1f}"] for b in ("libsumo", "traci") for w in (1, 2)
    ]
    speed_table = markdown_table(["backend", "worker processes", "SUMO evaluations / min"], speed_rows)
    machine = machine_line(exp.all_meta())

    hist = s["history"]
    img = exp.out_path("docs/img/evolvesignal/search_curve.png")
    save_line_plot(
        img,
        {
            "best-so-far fitness (search seeds)": (
                [h["generation"] for h in hist],
                [h["best_score"] for h in hist],
            )
        },
        xlabel="generation",
        ylabel="0.5/(1+d/100) + 0.5/(1+stops)",
        title="Offline-mutator search",
    )
    diff = "".join(
        difflib.unified_diff(
            WEBSTER_PROGRAM.splitlines(True),
            best_code.splitlines(True),
            "webster (seed)",
            "evolved (best)",
            n=1,
        )
    )
    program_md = f"```diff\n{diff}```\n" if diff else "The search kept the seed program unchanged.\n"

    main_md = "\n\n".join([setup, table, goal, "![search curve](img/evolvesignal/search_curve.png)", machine])
    summary = "\n\n".join(
        [
            f"EvolveSignal, held-out seeds, mean over the paper's 3 scenarios: Webster {web_d:.1f} s / {web_s:.2f} stops, "
            f"evolved {ev_d:.1f} s / {ev_s:.2f} stops (details: [evolvesignal](evolvesignal.md)).",
            goal,
        ]
    )
    exp.report(
        {
            "docs/evolvesignal.md": {
                "evolvesignal-main": main_md,
                "evolvesignal-program": program_md,
                "evolvesignal-speed": speed_table + "\n\n" + machine,
            },
            "docs/results.md": {"evolvesignal": summary},
        }
    )
    print(goal)
    return 0


if __name__ == "__main__":
    sys.exit(main())

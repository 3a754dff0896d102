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
    LLMSpec,
    ReportSpec,
    SpeedSpec,
    TunerConfig,
    TuneSpec,
    llm_edits_one,
    llm_search_one,
    report_one,
    search_one,
    speed_one,
    tune_one,
)
from mercato.evolvesignal.config import EvaluationConfig, SearchConfig, SimConfig
from mercato.evolvesignal.programs import WEBSTER_PROGRAM
from mercato.evolvesignal.sim import ADDED_SCENARIOS, PAPER_SCENARIOS, REPORT_SEEDS, SCENARIOS
from mercato.evolvesignal.timing import PHASES

# report rows; the searched ones name the run their program comes from
METHODS = ("webster", "fixed_100s", "random", "cma", "evolved", "evolved_no_prefilter", "evolved_llm")
SEARCHES = {
    "evolved": "search/prefilter",
    "evolved_no_prefilter": "search/plain",
    "evolved_llm": "llm/search",
}


def configs(quick: bool) -> dict[str, object]:
    sim = SimConfig(
        horizon_s=60 if quick else 600, drain_s=200 if quick else 900, cache_dir="runs/evolvesignal-cache"
    )
    ev = EvaluationConfig(seeds=(1,), sim=sim)
    # with the pre-filter: 4 children per island and generation, the surrogate's best quarter go to SUMO; without:
    # one child per island and generation; both get the same number of SUMO-evaluated programs
    pf = SearchConfig(
        iterations=1 if quick else 20, islands=2 if quick else 3, migration_interval=1 if quick else 4,
        children_per_island=2 if quick else 4, prefilter=0.5 if quick else 0.25, evaluation=ev,
    )  # fmt: skip
    plain = replace(pf, children_per_island=1, prefilter=1.0)
    return {
        "search": pf,
        "plain": plain,
        "tuner": TunerConfig(evaluations=2),  # evaluations replaced by the search's SUMO budget
        "report": replace(ev, seeds=REPORT_SEEDS[:1] if quick else REPORT_SEEDS),
        "speed": SpeedSpec(runs=1 if quick else 4),
        "llm": None if quick else LLMSpec(mutations=20, max_tokens=256),  # --quick skips the model start-up
        "llm_search": replace(plain, mutator="llm", iterations=3, islands=2, migration_interval=2),
    }


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    add_runner_args(parser)
    args = parser.parse_args(argv)
    exp = Experiment.from_args(
        "evolvesignal", args, code=("mercato.core", "mercato.evolvesignal", "mercato.llm")
    )
    cf = configs(args.quick)
    search_cfg, plain_cfg, report_cfg = cf["search"], cf["plain"], cf["report"]
    llm, llm_search, speed, tuner0 = cf["llm"], cf["llm_search"], cf["speed"], cf["tuner"]
    assert isinstance(search_cfg, SearchConfig) and isinstance(plain_cfg, SearchConfig)
    assert isinstance(report_cfg, EvaluationConfig) and isinstance(llm_search, SearchConfig)
    assert isinstance(speed, SpeedSpec) and isinstance(tuner0, TunerConfig)
    ev = search_cfg.evaluation

    # 1. the searches, on the search seeds; the tuners get the pre-filtered search's number of SUMO programs
    res = exp.run(
        [
            Run("search/prefilter", search_one, search_cfg, None, group="search"),
            Run("search/plain", search_one, plain_cfg, None, group="search-plain"),
        ],
        desc="searches",
    )
    if not exp.complete:
        return 0
    budget = int(res["search/prefilter"]["counts"]["sumo_programs"])
    tuner = replace(tuner0, evaluations=budget)
    runs = []
    for m in ("random", "cma"):
        for sc in SCENARIOS:
            runs.append(Run(f"{m}/{sc}", tune_one, ev, TuneSpec(m, sc, tuner), group=f"{m}/{sc}"))
    if isinstance(llm, LLMSpec):
        runs.append(Run("llm/edits", llm_edits_one, replace(ev, fitness="surrogate"), llm, group="llm"))
        runs.append(Run("llm/search", llm_search_one, llm_search, llm, group="llm-search"))
    res |= exp.run(runs, desc="tuners + llm")
    if not exp.complete:
        return 0
    methods = [m for m in METHODS if m not in SEARCHES or SEARCHES[m] in res]

    # 2. every method on every scenario, held-out report seeds
    reports = []
    for sc in SCENARIOS:
        for m in methods:
            if m in BASELINE_PROGRAMS:
                spec = ReportSpec(m, sc, code=BASELINE_PROGRAMS[m])
            elif m in SEARCHES:
                spec = ReportSpec(m, sc, code=res[SEARCHES[m]]["code"])
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

    def paper_mean(m: str, key: str) -> float:
        return float(np.mean([r(m, sc)[key] for sc in PAPER_SCENARIOS]))

    rows = []
    for m in methods:
        row: list[object] = [m]
        for sc in SCENARIOS:
            row.append(f"{r(m, sc)['delay']:.1f} / {r(m, sc)['stops']:.2f}")
        row.append(f"{paper_mean(m, 'delay'):.1f} / {paper_mean(m, 'stops'):.2f}")
        rows.append(row)
    table = markdown_table(["method", *SCENARIOS, "paper's 3 (mean)"], rows)

    web_d, web_s = paper_mean("webster", "delay"), paper_mean("webster", "stops")
    ev_d, ev_s = paper_mean("evolved", "delay"), paper_mean("evolved", "stops")
    dd, ds = 1 - ev_d / web_d, 1 - ev_s / web_s
    added_ok = all(
        r("evolved", sc)["delay"] <= r("webster", sc)["delay"]
        and r("evolved", sc)["stops"] <= r("webster", sc)["stops"]
        for sc in ADDED_SCENARIOS
    )
    main_ok = dd >= 0.15 and ds >= 0.30
    goal = (
        f"Goal: offline mutator >= 15% lower delay and >= 30% fewer stops than Webster over the paper's scenarios, "
        f"no worse on the added ones: delay {100 * dd:+.1f}% lower, stops {100 * ds:+.1f}% fewer, added scenarios "
        f"{'no worse' if added_ok else 'worse on at least one metric'}: **{'met' if main_ok and added_ok else 'missed'}**."
    )
    s, p = res["search/prefilter"], res["search/plain"]
    c, cp = s["counts"], p["counts"]
    per_program = len(ev.scenarios) * len(ev.seeds)
    keys_pf = [
        "iterations",
        "islands",
        "children_per_island",
        "prefilter",
        "population",
        "migration_interval",
    ]
    setup = (
        f"Setup: SUMO horizon {ev.sim.horizon_s} s of demand (+ up to {ev.sim.drain_s} s to drain), backend "
        f"{ev.sim.backend}, departLane {ev.sim.depart_lane}, SUMO seed {ev.sim.sumo_seed}. `evolved`: "
        f"{describe(search_cfg, [*keys_pf, 'mutator', 'seed'])}, search seeds {list(ev.seeds)}, scenarios searched "
        f"{list(ev.scenarios)}: {c['children']} children, {c['surrogate']} new ones scored by the surrogate, "
        f"{c['sumo_programs']} programs ({c['sumo_runs']} SUMO runs) evaluated in SUMO, {s['wall_s']:.0f} s. "
        f"`evolved_no_prefilter`: the same search with {describe(plain_cfg, ['children_per_island', 'prefilter'])} "
        f"({cp['sumo_programs']} programs in SUMO). Tuners (`random`, `cma`): "
        f"{describe(tuner, ['evaluations', 'max_green', 'popsize'])} per scenario on the search seeds (the search's "
        "number of SUMO-evaluated programs; a program evaluation is one run per scenario and seed)."
    )
    if "llm/search" in res:
        ls = res["llm/search"]
        setup += (
            f" `evolved_llm`: {describe(llm_search, ['iterations', 'islands', 'children_per_island', 'mutator'])} "
            f"with the served SmolLM2 ({ls['edits']['applied']} of {ls['edits']['proposed']} edits applied, "
            f"{ls['valid']} valid children, {ls['wall_s']:.0f} s)."
        )
    setup += f" Every cell: report seeds {list(report_cfg.seeds)} (held out); average delay (s/veh) / stops per vehicle."
    spent = c["sumo_runs"] - per_program  # the initial program's runs are not a child's
    prefilter_md = (
        f"**Pre-filter.** Of {c['children']} children, {c['surrogate']} were new programs, scored by the surrogate "
        f"(sandbox + HCM/Akcelik, no SUMO); {c['filtered']} of them were not sent to SUMO. Without the filter every "
        f"new child costs {per_program} SUMO runs: {c['surrogate'] * per_program} runs instead of the {spent} spent "
        f"on children, {c['surrogate'] * per_program - spent} saved. Best search fitness: {s['score']:.4f} with the "
        f"filter, {p['score']:.4f} without it at the same SUMO budget ({cp['sumo_programs']} programs); held-out mean "
        f"over the paper's 3 scenarios: {ev_d:.1f} s / {ev_s:.2f} stops with, "
        f"{paper_mean('evolved_no_prefilter', 'delay'):.1f} s / {paper_mean('evolved_no_prefilter', 'stops'):.2f} "
        "stops without."
    )
    speed_rows = [
        [b, w, f"{spd[f'speed/{b}/w{w}']['per_minute']:.1f}"] for b in ("libsumo", "traci") for w in (1, 2)
    ]
    speed_table = markdown_table(["backend", "worker processes", "SUMO evaluations / min"], speed_rows)
    machine = machine_line(exp.all_meta())

    curves = {}
    for label, key in (
        ("with pre-filter", "search/prefilter"),
        ("no pre-filter", "search/plain"),
        ("SmolLM2 mutator", "llm/search"),
    ):
        if key in res:
            h = res[key]["history"]
            curves[label] = ([x["sumo_programs"] for x in h], [x["best_score"] for x in h])
    save_line_plot(
        exp.out_path("docs/img/evolvesignal/search_curve.png"),
        curves,
        xlabel="programs evaluated in SUMO",
        ylabel="best-so-far fitness (search seeds)",
        title="EvolveSignal search",
    )
    best_code = s["code"]
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
    program_md += "\n" + explain_changes(
        best_code, {sc: (r("webster", sc), r("evolved", sc)) for sc in SCENARIOS}
    )

    blocks = {
        "evolvesignal-main": "\n\n".join(
            [setup, table, goal, prefilter_md, "![search curve](img/evolvesignal/search_curve.png)", machine]
        ),
        "evolvesignal-program": program_md,
        "evolvesignal-speed": speed_table + "\n\n" + machine,
    }
    if isinstance(llm, LLMSpec):
        blocks["evolvesignal-llm"] = llm_block(res["llm/edits"], res["llm/search"], llm, machine)
    summary = "\n\n".join(
        [
            f"EvolveSignal, held-out seeds, mean over the paper's 3 scenarios: Webster {web_d:.1f} s / "
            f"{web_s:.2f} stops, evolved {ev_d:.1f} s / {ev_s:.2f} stops (details: [evolvesignal](evolvesignal.md)).",
            goal,
        ]
    )
    exp.report({"docs/evolvesignal.md": blocks, "docs/results.md": {"evolvesignal": summary}})
    print(goal)
    return 0


MEANING = {
    "S_THROUGH": "saturation flow of a through lane (veh/h/lane)",
    "S_LEFT": "saturation flow of the left lane (veh/h)",
    "SHARED_FACTOR": "share of the through-right lane counted as a through lane",
    "RIGHT_WEIGHT": "weight of right-turn demand in the through phase's flow ratio",
    "C_MIN": "lower bound of the cycle (s)",
    "C_MAX": "upper bound of the cycle (s)",
    "GREEN_SCALE": "scale of every green",
    "LOST_TIME": "lost time L used in the cycle and green formulas (s)",
    "MIN_GREEN_THROUGH": "minimum green of the through phases (s)",
    "MIN_GREEN_LEFT": "minimum green of the left phases (s)",
    "Y_CAP": "flow-ratio sum from which the plan counts as oversaturated",
    "C_OVER": "cycle used when oversaturated (s)",
    "CRIT_BONUS": "extra share of green for the most critical phase",
}
BLOCKS = {
    "RESCALED": "added green rescaling: the greens are scaled to sum to C − L after the min-green floor",
    "CRITBONUS": "added a critical-phase bonus",
    "Y_CAP": "replaced the Y ≥ 1 rule by an oversaturation cap Y_CAP with its own cycle C_OVER",
}


def explain_changes(code: str, reports: dict[str, tuple[dict, dict]]) -> str:
    """What the evolved program changed: its constants and template blocks against the seed, and its plans."""
    from mercato.evolvesignal.mutate import constants

    old, new = constants(WEBSTER_PROGRAM), constants(code)
    lines = [
        f"- `{k}` ({MEANING.get(k, 'constant')}): {old[k]:g} → {new[k]:g}"
        for k in sorted(old)
        if k in new and new[k] != old[k]
    ]
    lines += [
        f"- {text}" for marker, text in BLOCKS.items() if marker in code and marker not in WEBSTER_PROGRAM
    ]
    plans = [
        [
            sc,
            " / ".join(f"{w['plans'][sc][ph]:.0f}" for ph in PHASES),
            " / ".join(f"{e['plans'][sc][ph]:.0f}" for ph in PHASES),
            f"{sum(w['plans'][sc].values()) + 16:.0f} → {sum(e['plans'][sc].values()) + 16:.0f}",
        ]
        for sc, (w, e) in reports.items()
    ]
    table = markdown_table(["scenario", "Webster greens", "evolved greens", "cycle (s)"], plans)
    head = "What it changed:\n\n" + ("\n".join(lines) if lines else "- nothing")
    return f"{head}\n\nGreens {' / '.join(PHASES)} (s) on each scenario:\n\n{table}\n"


def llm_block(edits: dict, search: dict, spec: LLMSpec, machine: str) -> str:
    """Valid-edit rate and time per edit of the served SmolLM2, why edits failed, one raw answer."""
    c, sec = edits["counts"], edits["seconds"]
    n = max(1, c["asked"])
    header = [
        "edits asked",
        "applicable (SEARCH found)",
        "changed the program",
        "valid program",
        "better surrogate score",
        "s / edit (mean, median)",
        "server start-up",
    ]
    row = [
        c["asked"],
        f"{c['applied']} ({100 * c['applied'] / n:.0f}%)",
        c["changed"],
        f"{c['valid']} ({100 * c['valid'] / n:.0f}%)",
        c["improved"],
        f"{np.mean(sec):.1f}, {np.median(sec):.1f}",
        f"{edits['startup_s']:.0f} s",
    ]
    reasons = ", ".join(f"{k}: {v}" for k, v in sorted(edits["reasons"].items(), key=lambda kv: -kv[1]))
    sample = edits["samples"][0].replace("```", "` ` `") if edits["samples"] else ""
    h = search["edits"]
    spec_text = describe(spec, ["mutations", "parents", "max_tokens", "temperature", "threads"])
    return "\n\n".join(
        [
            "SmolLM2-135M-Instruct (the packaged GGUF, de-quantised, on the CPU) behind `mercato.llm.openai_server` "
            f"on 127.0.0.1, asked through `OpenAICompatibleLLM` with the search's diff prompt; {spec_text}. Valid = "
            "applicable, changes the program, and the sandbox accepts its plans on the 3 scenarios.",
            markdown_table(header, [row]),
            f"Why edits failed: {reasons or 'none'}. In the short search: {h['applied']} of {h['proposed']} "
            "edits applied.",
            "First answer, verbatim (cut at 600 characters):\n\n```text\n" + sample + "\n```",
            machine,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())

"""ISA-DRE benchmark: mutual information of correlated Gaussians (true MI = d/4), MSE vs NFE.

Methods: ISA-DRE (1, 2, 4 steps), DRE-infinity (time-score network; 10 and 100 trapezoid steps, RK45 ODE) and
classifier DRE (torch MLP). Also: the quadratic-branch ablation (quadratic_rank=0, both path estimators), the
CIA ablation (anneal='none'), the along-path derivative variant (derivative='total'), and inference time per
10k points. Every number in docs/isadre.md comes from here; the runs and their logic are in
:mod:`mercato.isadre.bench`, the cache, resume and shards in :mod:`mercato.core.experiments`.

    python benchmarks/isadre.py            # full: d in {40, 80, 120, 160}, 3 seeds; updates docs/
    python benchmarks/isadre.py --quick    # smoke run (< 60 s), writes only under runs/bench/isadre-quick/

One run per (d, seed, method), cached under runs/bench/isadre[-gpu]/cache/: an interrupted run resumes at the
next method. Split over processes with ``--seeds``/``--dims``/``--sections`` (or ``--shard i/n``) on the same
``--root``; a final call with the full declaration reports from the shared cache.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from mercato.core.experiments import Experiment, Run, add_runner_args, describe, machine_line
from mercato.core.results import markdown_table
from mercato.isadre import bench

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("benchmarks.isadre")
CODE = ("mercato.core", "mercato.isadre")
MAIN_KEYS = ["isa@1", "isa@2", "isa@4", "dre_inf@10", "dre_inf@100", "dre_inf@ode", "clf"]
MAIN_KEYS += ["isa_to_end@1", "dre_inf_to_end@100", "exact"]
ABL_KEYS = ["isa@1", "isa@4", "dre_inf@100", "isa_noquad@1", "isa_noquad@4", "dre_noquad@100"]
ABL_KEYS += [
    "isa_noanneal@1",
    "isa_noanneal@4",
    "isa_total@1",
    "isa_total@4",
    "isa_lognorm@1",
    "isa_lognorm@4",
]
ABL_KEYS += ["isa_bridge@1", "isa_bridge@4", "dre_bridge@100"]


def _ints(text: str | None, default: list[int]) -> list[int]:
    return default if text is None else [int(s) for s in text.split(",") if s]


def declare(setting: dict[str, Any], sections: list[str], device: str) -> list[Run]:
    """Every run of the requested sections: one per (d, seed, method), the exact floor, the speed test."""
    runs: list[Run] = []
    cells: list[tuple[int, int, tuple[str, ...]]] = []
    if "main" in sections:
        cells += [(d, s, bench.MAIN_METHODS) for d in setting["dims"] for s in setting["seeds"]]
        runs += [
            Run(f"exact/d{d}/s{s}", bench.exact_mi, None, bench.mi_data(setting, d, s), group=f"s{s}")
            for d in setting["dims"]
            for s in setting["seeds"]
        ]
    if "ablation" in sections:
        cells += [
            (d, s, tuple(setting["ablation_methods"]))
            for d in setting["ablation_dims"]
            for s in setting["ablation_seeds"]
        ]
    for d, s, methods in cells:
        data = bench.mi_data(setting, d, s)
        runs += [
            Run(
                f"mi/d{d}/s{s}/{m}", bench.fit_mi, bench.fit_config(setting, [m], device), data, group=f"s{s}"
            )
            for m in methods
        ]
    if "speed" in sections:
        cfg = bench.fit_config(setting, ["isa", "dre_inf"], device)
        size = (max(setting["dims"]), setting["speed_points"])
        runs.append(Run("speed", bench.speed, cfg, size, group="speed"))
    return runs


def collect(results: dict[str, dict[str, Any]]) -> tuple[dict[str, dict[str, dict[str, Any]]], set[str]]:
    """``{str(d): {str(seed): {key: estimate}}}`` from the runs' results, and the devices they ran on."""
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    devices: set[str] = set()
    for name, res in results.items():
        kind, *rest = name.split("/")
        if kind not in ("mi", "exact"):
            continue
        d, s = rest[0][1:], rest[1][1:]
        cell = cells.setdefault(d, {}).setdefault(s, {})
        if kind == "exact":
            cell["exact"] = res
        else:
            devices.add(str(res.get("device", "cpu")))
            cell.update({k: v for k, v in res.items() if k != "device"})
    return cells, devices


def report(
    exp: Experiment, setting: dict[str, Any], sections: list[str], results: dict[str, Any], gpu: bool
) -> None:
    suffix = "-gpu" if gpu else ""
    cells, devices = collect(results)
    dims = setting["dims"]
    rows, summary = bench.summarize(cells, dims, MAIN_KEYS)
    table = markdown_table(["method", "NFE", *[f"d={d} (MI {d / 4:g})" for d in dims]], rows)
    goal = bench.goal_lines(summary, dims)
    sp = results.get("speed")
    speed_line = ""
    if sp:
        speed_line = (
            f"Inference on {sp['points']:,} points at d={sp['dim']:.0f} (same network size, measured side by side in one "
            f"process, fastest of {sp['repeats']} calls after a warm-up call): ISA-DRE 1 step "
            f"{1000 * sp['isa_1step_s']:.1f} ms, 4 steps {1000 * sp['isa_4step_s']:.1f} ms; DRE-∞ 100 steps "
            f"{1000 * sp['dre_inf_100step_s']:.1f} ms; ratio DRE-∞ 100 / ISA-DRE 1 = "
            f"{sp['dre_inf_100step_s'] / sp['isa_1step_s']:.0f}×."
        )
    fit_times = {
        k: np.mean([r[k]["fit_seconds"] for dd in dims for r in cells.get(str(dd), {}).values() if k in r])
        for k in ("isa@1", "dre_inf@100", "clf")
        if any(k in r for dd in dims for r in cells.get(str(dd), {}).values())
    }
    fit_line = ", ".join(f"{bench.LABELS[k].split(',')[0]} {v:.0f} s" for k, v in fit_times.items())
    cfg = bench.fit_config(setting, bench.MAIN_METHODS)
    hardware = f" Devices: {', '.join(sorted(devices))}." if gpu else ""
    setup = (
        f"MSE of the MI estimate (mean ± std over seeds {setting['seeds']}; in brackets the mean estimate). "
        f"Setting: {setting['n_train']} training samples per distribution, {setting['n_test']} test samples; "
        f"path networks: {describe(cfg.train)}; ISA-DRE: {describe(cfg.isa)}, training overrides "
        f"{describe(cfg.isa_train)}; classifier: {describe(cfg.clf)}; path: {describe(cfg.path)}. "
        f"Sum of the runs' recorded wall times: {exp.wall_seconds() / 60:.1f} min. "
        f"{machine_line(exp.all_meta())}{hardware}"
    )
    blocks: dict[str, dict[str, str]] = {"docs/isadre.md": {}}
    if "main" in sections:
        body = "\n\n".join(
            [
                setup,
                table,
                "Goal (ISA-DRE 1 step at or below DRE-∞ 100 steps): " + "; ".join(goal),
                "Paired difference of squared errors, ISA-DRE 1 step minus DRE-∞ 100 (mean ± standard error "
                "over seeds; negative favours ISA-DRE): "
                + "; ".join(bench.paired_comparison(cells, d) for d in dims)
                + ".",
                "Relative error of the mean MI estimate (ISA-DRE 1 step / DRE-∞ 100 / classifier): "
                + "; ".join(
                    f"d={d}: "
                    + " / ".join(
                        f"{100 * (np.mean(summary[(k, d)]['mi']) / (d / 4) - 1):+.0f} %"
                        for k in ("isa@1", "dre_inf@100", "clf")
                        if (k, d) in summary
                    )
                    for d in dims
                )
                + ".",
                f"Mean fit time per model: {fit_line}.",
                speed_line,
                f"![MSE vs NFE](img/isadre/mse_vs_nfe{suffix}.png)",
            ]
        )
        blocks["docs/isadre.md"][f"isadre-mi{suffix}"] = body
        blocks["docs/results.md"] = {
            f"isadre{suffix}": "\n\n".join(
                [
                    f"### ISA-DRE{' on one GPU' if gpu else ''} (density-ratio estimation, MI of correlated "
                    "Gaussians; details in [isadre.md](isadre.md))",
                    table,
                    "Goal: " + "; ".join(goal) + ". " + speed_line,
                ]
            )
        }
        bench.plot_mse_vs_nfe(
            exp.out_path(f"docs/img/isadre/mse_vs_nfe{suffix}.png"), summary, dims, MAIN_KEYS[:-1]
        )  # not NFE 0
    if "ablation" in sections:
        abl_dims = setting["ablation_dims"]
        abl_cells = {
            str(d): {str(s): cells[str(d)][str(s)] for s in setting["ablation_seeds"]} for d in abl_dims
        }
        methods = ("isa", "dre_inf", *setting["ablation_methods"])
        keys = [k for k in ABL_KEYS if k.split("@")[0] in methods]
        abl_rows, _ = bench.summarize(abl_cells, abl_dims, keys)
        abl_table = markdown_table(["variant", "NFE", *[f"d={d}" for d in abl_dims]], abl_rows)
        blocks["docs/isadre.md"][f"isadre-ablation{suffix}"] = (
            f"Seeds {setting['ablation_seeds']}; MSE (mean estimate in brackets). Same setting as above; the "
            f"bridge rows use the path {describe(cfg.bridge)} (the library's default reference) instead of "
            f"{describe(cfg.path)}.\n\n" + abl_table
        )
        print(abl_table)
    print(table)
    print("\n".join(goal))
    print(speed_line)
    exp.write_json("results.json", {"dims": dims, "seeds": setting["seeds"], "cells": cells, "speed": sp})
    exp.report(blocks, titles={"docs/isadre.md": "ISA-DRE", "docs/results.md": "Results"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sections", default="main,ablation,speed", help="comma list of main, ablation, speed"
    )
    parser.add_argument("--seeds", default=None, help="comma list overriding the seeds (to split a run)")
    parser.add_argument("--dims", default=None, help="comma list overriding the main dims (to split a run)")
    parser.add_argument("--ablation-dims", default=None, help="comma list overriding the ablation dims")
    parser.add_argument(
        "--device",
        default="cpu",
        help="torch device of every fit (cpu, cuda, ...); a non-CPU run has its own cache and docs blocks (-gpu)",
    )
    add_runner_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    if args.threads is None:
        args.threads = 1  # one torch thread per run (processes run side by side)
    base = bench.QUICK if args.quick else bench.FULL
    setting = {
        **base,
        "seeds": _ints(args.seeds, base["seeds"]),
        "dims": _ints(args.dims, base["dims"]),
        "ablation_dims": _ints(args.ablation_dims, base["ablation_dims"]),
    }
    sections = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(sections) - {"main", "ablation", "speed"})
    if unknown:
        parser.error(f"--sections: unknown {unknown}; expected main, ablation, speed")
    gpu = args.device != "cpu"
    exp = Experiment.from_args("isadre-gpu" if gpu else "isadre", args, code=CODE, repo=ROOT)
    results = exp.run(declare(setting, sections, args.device))
    if not exp.complete:
        log.info("shard done (%d runs computed); run without --shard to write the report", len(exp.computed))
        return 0
    report(exp, setting, sections, results, gpu)
    log.info("%d runs computed, %d from the cache", len(exp.computed), len(exp.declared) - len(exp.computed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

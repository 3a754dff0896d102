"""MAL benchmark: mercato's MAL and baselines next to PyMAL's BASE / NATAL (= MAL with CAT, run with its own
code) on the same simulated MAC files (short and long paths, Last-Click and First-Click primary, 3 seeds), and
attribution shares on ChannelAttribution's path file.

    python benchmarks/mal.py                # the plan that fits this machine (--plan core); updates docs/
    python benchmarks/mal.py --plan full    # every model for both primaries (hours on 2 cores)
    python benchmarks/mal.py --plan baselines   # every model, Last-Click primary, one seed (block mal-baselines)
    python benchmarks/mal.py --quick        # smoke run (< 60 s), writes only under runs/bench/mal-quick/
    python benchmarks/mal.py --part validation   # the tuning round: MAL settings scored on validation day 19

PyMAL must be checked out at scratch/PyMAL (``--pymal-dir``); ChannelAttribution (GPL-3, test/bench only) is
used when ``MERCATO_CA_PYTHON`` (or scratch/ca/venv/bin/python) has it, on the Data.csv of its sdist.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

import numpy as np

from mercato.core.experiments import Experiment, Run, add_runner_args, describe, machine_line
from mercato.core.results import markdown_table, mean_std
from mercato.mal.attribution import PathFileSpec, attribution_shares
from mercato.mal.bench import MALRunConfig, fit_mal
from mercato.mal.model import preset
from mercato.mal.pymal import PyMALRunConfig, fit_pymal, pymal_available
from mercato.mal.sim import SimSpec, sim_config
from mercato.mal.tuning import fit_mal_validation

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("benchmarks.mal")

ALL_MODELS = ["Base", "Shared-Bottom", "MMoE", "PLE", "MoAE", "MAL w/o CAT", "MAL"]
CORE_MODELS = {"last": ["Base", "MAL", "MAL w/o CAT"], "first": ["Base", "MAL"]}
_1M = 1_000_000  # target clicks per setting (the scale: 20 training days, 1 test day)
PLANS = {
    # core: the scale on 2 cores (about 2 CPU-hours): one pass over the training days, as PyMAL does
    "core": {
        "n_clicks": _1M,
        "settings": ["short", "long"],
        "primaries": ["last", "first"],
        "seeds": [0, 1, 2],
        "models": CORE_MODELS,
        "epochs": 1,
        "pymal_seeds": [0],  # one PyMAL run per model: about 20 min each at 1M clicks on this machine
    },
    # full: every model for both primaries (many CPU-hours on 2 cores)
    "full": {
        "n_clicks": _1M,
        "settings": ["short", "long"],
        "primaries": ["last", "first"],
        "seeds": [0, 1, 2],
        "models": {"last": ALL_MODELS, "first": ALL_MODELS},
        "epochs": 1,
        "pymal_seeds": [0],
    },
    # subsets of core, in the order core computes them (a report from whatever finished first)
    "last": {
        "n_clicks": _1M,
        "settings": ["short", "long"],
        "primaries": ["last"],
        "seeds": [0, 1, 2],
        "models": {"last": CORE_MODELS["last"]},
        "epochs": 1,
        "pymal_seeds": [0],
    },
    "min": {
        "n_clicks": _1M,
        "settings": ["short"],
        "primaries": ["last"],
        "seeds": [0, 1, 2],
        "models": {"last": ["Base", "MAL"]},
        "epochs": 1,
        "pymal_seeds": [0],
    },
    # baselines: every model of the table (PyMAL's included) on Last-Click primary at 1M clicks, one model seed
    # (seed 1; the 3-seed verdict is core's): what a 2-core session fits when full does not
    "baselines": {
        "n_clicks": _1M,
        "settings": ["short", "long"],
        "primaries": ["last"],
        "seeds": [1],
        "models": {"last": ALL_MODELS},
        "epochs": 1,
        "pymal_seeds": [0],
    },
    "quick": {
        "n_clicks": 20_000,
        "settings": ["short"],
        "primaries": ["last"],
        "seeds": [0],
        "models": {"last": ["Base", "MAL"]},
        "epochs": 1,
    },
}
PYMAL_SEEDS = {0: 2026, 1: 2027, 2: 2028}
# the code whose source keys the cached results (the CLI and README are left out on purpose)
CODE = (
    "mercato.core",
    "mercato.ctr",
    "mercato.mal.attribution",
    "mercato.mal.labels",
    "mercato.mal.mac",
    "mercato.mal.sim",
    "mercato.mal.model",
    "mercato.mal.scoring",
    "mercato.mal.bench",
    "mercato.mal.pymal",
    "mercato.mal._pymal_shim",
)
VIEWS = ["last", "first", "linear", "mta"]
# the tuning round (--part validation): MAL settings, Last-Click primary, both settings, seeds 0 and 1, scored on
# validation day 19; Base beside them for the paired difference. name -> MALConfig overrides
VALIDATION_SEEDS = [0, 1]
VALIDATION_GRID = {
    "lambda 0.1, binary (current)": (),
    "lambda 0.3, binary": (("lam", 0.3),),
    "lambda 1.0, binary": (("lam", 1.0),),
    "lambda 0.1, fractional": (("label_mode", "fractional"),),
    "lambda 0.3, fractional": (("lam", 0.3), ("label_mode", "fractional")),
    "lambda 1.0, fractional": (("lam", 1.0), ("label_mode", "fractional")),
    "lambda 0.1, binary, detach_aux": (("detach_aux", True),),
}


def _aux(model: str, primary: str) -> tuple[str, ...]:
    if model == "BASE":
        return ()
    return tuple(v for v in ("first", "last", "mta", "linear") if v != primary) + ("cartesian",)


def _ca_python() -> str | None:
    env = os.environ.get("MERCATO_CA_PYTHON")
    if env:
        return str(Path(env).resolve())
    local = ROOT / "scratch" / "ca" / "venv" / "bin" / "python"
    return str(local) if local.exists() else None


def _attribution_table(res: dict) -> str:
    shares = res["shares"]
    rules = list(shares)
    channels = sorted(shares["markov"], key=lambda c: -shares["markov"][c])
    total = res["total_conversions"]
    rows = [[c] + [f"{100 * shares[r].get(c, 0.0) / total:.2f}" for r in rules] for c in channels]
    return markdown_table(["channel"] + [f"{r} (%)" for r in rules], rows)


def validation(args: argparse.Namespace) -> int:
    """The tuning round: every VALIDATION_GRID setting of MAL (and Base) on validation day 19."""
    plan = PLANS["quick" if args.quick else "core"]
    seeds = [0] if args.quick else VALIDATION_SEEDS
    grid = dict(list(VALIDATION_GRID.items())[:2]) if args.quick else VALIDATION_GRID
    exp = Experiment.from_args("mal-validation", args, code=CODE + ("mercato.mal.tuning",), repo=ROOT)
    trainer = dataclasses.replace(MALRunConfig().trainer, epochs=plan["epochs"])
    specs = {s: SimSpec(setting=s, n_clicks=plan["n_clicks"], seed=0) for s in plan["settings"]}
    runs = []
    for s, spec in specs.items():
        for seed in seeds:
            cfg = MALRunConfig(model="Base", primary="last", seed=seed, trainer=trainer)
            runs.append(Run(f"{s}/Base/s{seed}", fit_mal_validation, cfg, spec))
            for name, kw in grid.items():
                cfg = MALRunConfig(model="MAL", primary="last", seed=seed, trainer=trainer, overrides=kw)
                runs.append(Run(f"{s}/{name}/s{seed}", fit_mal_validation, cfg, spec))
    res = exp.run(runs)
    if not exp.complete:
        return 0
    rows, score = [], {}
    for name in grid:
        cells, rel, pcs = [], [], []
        for s in specs:
            base = [res[f"{s}/Base/s{x}"] for x in seeds]
            rs = [res[f"{s}/{name}/s{x}"] for x in seeds]
            d = np.mean([r["gauc"] - b["gauc"] for r, b in zip(rs, base, strict=True)])
            rel.append(d / np.mean([b["gauc"] for b in base]))
            pc = float(np.mean([r["pcoc"] for r in rs]))
            pcs.append(pc)
            cells += [mean_std([r["gauc"] for r in rs]), f"{d:+.4f}", f"{pc:.3f}"]
        score[name] = (all(abs(p - 1) <= 0.05 for p in pcs), float(np.mean(rel)))
        rows.append([name, *cells, f"{100 * np.mean(rel):+.2f}%"])
    header = ["MAL setting"]
    for s in specs:
        header += [f"{s}: GAUC", f"{s}: − Base", f"{s}: PCOC"]
    header.append("mean relative GAUC lift")
    base_pc = {s: float(np.mean([res[f"{s}/Base/s{x}"]["pcoc"] for x in seeds])) for s in specs}
    # the rule, fixed before the round: highest mean relative lift among settings with PCOC within 1 +- 0.05 in
    # every setting; if none is, highest mean relative lift
    ok = [n for n in grid if score[n][0]] or list(grid)
    best = max(ok, key=lambda n: score[n][1])
    setup = (
        f"Tuning round (Last-Click primary; training days 0-18, scored on validation day 19; the test day is not "
        f"read; {plan['n_clicks']:,} target clicks per setting; seeds {', '.join(map(str, seeds))}; Base PCOC "
        + ", ".join(f"{s} {v:.3f}" for s, v in base_pc.items())
        + "). Rule: the highest mean relative GAUC lift over Base among settings whose PCOC is within 1 ± 0.05 "
        "in both path settings (if none is, the highest lift). " + machine_line(exp.all_meta())
    )
    chosen = f"Chosen: **{best}** (mean relative lift {100 * score[best][1]:+.2f}%" + (
        ", PCOC within 1 ± 0.05)." if score[best][0] else "; no setting kept PCOC within 1 ± 0.05)."
    )
    block = setup + "\n\n" + markdown_table(header, rows) + "\n\n" + chosen
    print(block)
    exp.report({"docs/mal.md": {"mal-validation": block}})
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_runner_args(ap)
    ap.add_argument("--pymal-dir", default=str(ROOT / "scratch" / "PyMAL"), help="PyMAL checkout")
    ap.add_argument(
        "--plan",
        choices=["core", "full", "last", "min", "baselines"],
        default="core",
        help="which grid (see PLANS)",
    )
    ap.add_argument("--seeds", default=None, help="comma list overriding the plan's seeds (e.g. 0,1)")
    ap.add_argument("--settings", default=None, help="comma list overriding the plan's path settings")
    ap.add_argument(
        "--models",
        default=None,
        help="comma list of models to compute, in this order (split work, with --no-docs)",
    )
    ap.add_argument(
        "--part", choices=["test", "validation"], default="test", help="test runs or the tuning round"
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.part == "validation":
        return validation(args)
    plan = dict(PLANS["quick" if args.quick else args.plan])
    if args.seeds:
        plan["seeds"] = [int(x) for x in args.seeds.split(",")]
    if args.settings:
        plan["settings"] = args.settings.split(",")
    if args.models:
        keep = args.models.split(",")
        bad = [x for x in keep if x not in ALL_MODELS]
        if bad:
            ap.error(f"--models: unknown {bad}; known: {ALL_MODELS}")
        # Base always stays: it is every row's paired reference
        plan["models"] = {
            p: ["Base"] + [x for x in keep if x in ms and x != "Base"] for p, ms in plan["models"].items()
        }
    exp = Experiment.from_args(
        "mal",
        args,
        code=CODE,
        repo=ROOT,
    )
    runs: list[Run] = []
    data_csv = sorted(ROOT.glob("scratch/ca/channelattribution-*/src/cypack/data/Data.csv"))
    if data_csv:
        runs.append(
            Run(
                "attribution/Data.csv",
                attribution_shares,
                {"ca_python": _ca_python()},
                PathFileSpec(str(data_csv[-1].relative_to(ROOT))),
                group="attribution",
            )
        )
    why = pymal_available(args.pymal_dir)
    if why:
        log.warning("PyMAL not run: %s", why)
    specs = {s: SimSpec(setting=s, n_clicks=plan["n_clicks"], seed=0) for s in plan["settings"]}
    trainer = dataclasses.replace(MALRunConfig().trainer, epochs=plan["epochs"])
    pymal_dir = str(Path(args.pymal_dir).resolve())
    # priority order (a report from whatever finished first): Last-Click Base and MAL with PyMAL per setting,
    # then the other Last-Click models, then First-Click
    staged: list[tuple[int, Run]] = []
    for primary in plan["primaries"]:
        for si, (s, spec) in enumerate(specs.items()):
            if primary == "last" and not why:
                for seed in plan.get("pymal_seeds", plan["seeds"]):
                    for model in ("BASE", "NATAL"):
                        cfg = PyMALRunConfig(
                            model=model,
                            main_view=primary,
                            aux_views=_aux(model, primary),
                            seed=PYMAL_SEEDS.get(seed, 2026 + seed),
                            pymal_dir=pymal_dir,
                        )
                        run = Run(
                            f"pymal/{s}/{primary}/{model}/s{seed}", fit_pymal, cfg, spec, group=f"pymal/{s}"
                        )
                        staged.append((si, run))
            for seed in plan["seeds"]:
                for model in plan["models"][primary]:
                    mcfg = MALRunConfig(
                        model=model,
                        primary=primary,
                        seed=seed,
                        trainer=trainer,
                        latency=(
                            model == "MAL" and seed == 0
                        ),  # seed 0 whatever --seeds is, so keys stay the same
                    )
                    stage = si if primary == "last" and model in ("Base", "MAL") else len(specs) + si
                    if primary != "last":
                        stage += len(specs)
                    run = Run(f"mal/{s}/{primary}/{model}/s{seed}", fit_mal, mcfg, spec, group=f"mal/{s}")
                    staged.append((stage, run))
    runs += [r for _, r in sorted(staged, key=lambda x: x[0])]
    res = exp.run(runs)
    if not exp.complete:
        return 0

    seeds = plan["seeds"]

    pymal_seeds = plan.get("pymal_seeds", seeds)

    def get(kind: str, s: str, primary: str, model: str) -> list[dict]:
        return [
            res[f"{kind}/{s}/{primary}/{model}/s{seed}"]
            for seed in (pymal_seeds if kind == "pymal" else seeds)
        ]

    def paired(rs: list[dict], base: list[dict], key: str = "gauc") -> tuple[float, float]:
        d = np.array([r[key] - b[key] for r, b in zip(rs, base, strict=True)])
        se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        return float(d.mean()), float(se)

    rows, verdicts = [], []
    for primary in plan["primaries"]:
        for s in specs:
            base = get("mal", s, primary, "Base")
            pymal_here = not why and primary == "last"
            pbase = get("pymal", s, primary, "BASE") if pymal_here else []
            for model in plan["models"][primary]:
                rs = get("mal", s, primary, model)
                dm, se = paired(rs, base)
                rows.append(
                    [
                        s,
                        primary,
                        model,
                        mean_std([r["auc"] for r in rs]),
                        mean_std([r["gauc"] for r in rs]),
                        ""
                        if model == "Base"
                        else (f"{dm:+.4f} ± {se:.4f}" if np.isfinite(se) else f"{dm:+.4f} (1 seed)"),
                        mean_std([r["logloss"] for r in rs]),
                        mean_std([r["pcoc"] for r in rs], 3),
                        f"{np.mean([r['clicks_per_s'] for r in rs]):.0f}",
                    ]
                )
            for model in ("BASE", "NATAL") if pymal_here else ():
                rs = get("pymal", s, primary, model)
                dm, se = paired(rs, pbase)
                cps = [r["clicks_per_s"] for r in rs if r["clicks_per_s"]]
                rows.append(
                    [
                        s,
                        primary,
                        f"PyMAL {model}",
                        mean_std([r["auc"] for r in rs]),
                        mean_std([r["gauc"] for r in rs]),
                        ""
                        if model == "BASE"
                        else (f"{dm:+.4f} ± {se:.4f}" if np.isfinite(se) else f"{dm:+.4f} (1 seed)")
                        + " (vs PyMAL BASE)",
                        "n/a",
                        "n/a",
                        f"{np.mean(cps):.0f}" if cps else "n/a",
                    ]
                )
            if primary == "last" and "MAL" in plan["models"][primary]:
                mal = get("mal", s, primary, "MAL")
                dm, se = paired(mal, base)
                rel = dm / np.mean([b["gauc"] for b in base])
                pc = float(np.mean([r["pcoc"] for r in mal]))
                natal = (
                    float("nan")
                    if why
                    else float(np.mean([r["gauc"] for r in get("pymal", s, primary, "NATAL")]))
                )
                mg = float(np.mean([r["gauc"] for r in mal]))
                ok = [rel >= 0.0051, dm > 2 * se, abs(pc - 1) <= 0.05, mg >= natal]
                verdicts.append(
                    f"{s} paths: MAL − Base GAUC {dm:+.4f} ({100 * rel:+.2f}% relative; needed ≥ +0.51%: "
                    f"{'yes' if ok[0] else 'no'}), paired s.e. {se:.4f} (above 2 s.e.: {'yes' if ok[1] else 'no'}), "
                    f"PCOC {pc:.3f} (within 1 ± 0.05: {'yes' if ok[2] else 'no'}), MAL GAUC {mg:.4f} vs PyMAL NATAL "
                    f"{natal:.4f} (at or above: {'yes' if ok[3] else 'no'}) -> {'met' if all(ok) else 'missed'}"
                )
    header = [
        "paths",
        "primary",
        "model",
        "AUC",
        "GAUC",
        "GAUC − Base (paired, ± s.e.)",
        "logloss",
        "PCOC",
        "train clicks/s",
    ]
    first = specs[plan["settings"][0]]
    st = res[f"mal/{plan['settings'][0]}/{plan['primaries'][0]}/Base/s{seeds[0]}"]
    cfg0 = sim_config(first)
    tr = trainer
    setup = (
        f"Simulated MAC files ({plan['n_clicks']:,} target clicks per setting, generator seed 0; training days "
        f"0-18 ({st['train_clicks']:,} clicks in the '{plan['settings'][0]}' setting), validation day 19, test day 20 "
        f"({st['test_clicks']:,} clicks)). Generator: "
        + describe(
            cfg0,
            [
                "n_users",
                "n_items",
                "n_channels",
                "window_days",
                "base_logit",
                "affinity_weight",
                "touch_noise_sd",
            ],
        )
        + "; "
        + ", ".join(f"{k} paths: mean_path_len {sim_config(v).mean_path_len:g}" for k, v in specs.items())
        + ". mercato models: "
        + describe(tr, ["epochs", "batch_size", "lr", "patience", "monitor"])
        + f", lambda {preset('MAL').lam:g}, binarised labels, seeds {', '.join(map(str, seeds))}; test scores "
        "from the PTP-only serving path. PyMAL: its own run.py with its defaults (lr 3e-3, batch 4096, one pass "
        "over the 20 training days, seeds "
        + ", ".join(str(PYMAL_SEEDS.get(x, 2026 + x)) for x in pymal_seeds)
        + "), in a subprocess on the CPU (its clicks/s count its whole run.py, test included). "
        + (f"PyMAL was NOT run: {why}. " if why else "")
        + machine_line(exp.all_meta())
    )
    lat = [res[f"mal/{s}/last/MAL/s0"] for s in specs if f"mal/{s}/last/MAL/s0" in res]  # timed on seed 0
    lat_md = ""
    if lat:
        lat_md = (
            "\n\nServing latency of MAL (best of 20, ms): "
            + "; ".join(
                f"{s}: batch 1 full {r['latency_full_ms_b1']:.2f} / PTP-only {r['latency_serve_ms_b1']:.2f}, batch 1,000 "
                f"full {r['latency_full_ms_b1000']:.1f} / PTP-only {r['latency_serve_ms_b1000']:.1f}"
                for s, r in zip(specs, lat, strict=False)
            )
            + "."
        )
    main_block = setup + "\n\n" + markdown_table(header, rows) + lat_md
    goal = "Goal: " + (
        "; ".join(verdicts) if verdicts else "not evaluated (no Last-Click MAL runs in this plan)"
    )
    if verdicts:
        goal += ". Overall: " + ("met" if all(v.endswith("met") for v in verdicts) else "missed") + "."
    if args.plan in ("core", "full"):
        blocks = {
            "docs/mal.md": {"mal-main": main_block},
            "docs/results.md": {"mal": goal + "\n\n" + main_block},
        }
    else:  # a partial plan: its own block; the verdict of docs/results.md stays core's (3 seeds)
        blocks = {"docs/mal.md": {f"mal-{args.plan}": main_block}}
    if "attribution/Data.csv" in res:
        blocks["docs/mal.md"]["mal-attribution"] = (
            "Share of conversions (%) credited to each channel of ChannelAttribution's `Data.csv` "
            f"({res['attribution/Data.csv']['total_conversions']:,.0f} conversions) by every rule; "
            "'ChannelAttribution markov' is its own first-order Markov model (1e6 simulated paths).\n\n"
            + _attribution_table(res["attribution/Data.csv"])
        )
    exp.report(blocks, titles={"docs/mal.md": "MAL"})
    return 0


if __name__ == "__main__":
    sys.exit(main())

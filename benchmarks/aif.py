"""AIF benchmark: the pre-ranker on MovieLens-1M (exact vs BEA, 4x towers, baselines), SimHash LSH on synthetic
1,000-event sequences, then the trained AIFModel served: sequential vs aif latency/QPS and soak runs.

Stage 1 trains with ``mercato.ctr.CTRTrainer`` and exports serving folders under
``<root>/aif/serving/``. Stage 2 starts every server (``mercato aif serve --checkpoint``, one uvicorn worker
each) and, for the Redis runs, its own ``redis-server``, all on 127.0.0.1; load is open-loop
(``mercato.aif.loadgen``).

    python benchmarks/aif.py --threads 1          # full (about 25 minutes), cached per run under runs/bench/aif/
    python benchmarks/aif.py --quick --threads 1  # smoke test (< 60 s): ML-100K subset, short runs
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from mercato.aif.bench import Arm, ArmsSpec, LatencyConfig, SoakConfig, latency_run, soak_run
from mercato.aif.train import HistoryDataSpec, LongDataSpec, ModelRunConfig, model_run
from mercato.core.cli import setup_logging
from mercato.core.experiments import Experiment, Run, add_runner_args, describe, machine_line
from mercato.core.results import markdown_table

ROOT = Path(__file__).resolve().parents[1]
CODE = ("mercato.core", "mercato.ctr", "mercato.data", "mercato.aif")
GOAL_RATIO = 0.6  # AIF p99 <= 0.6x sequential p99 at 2,000 candidates (issue 25)
BASE_WIDTH = 64  # the base model's tower_width (2 d̂ with d̂ = 32)
BIG_WIDTH = 320  # the "4x" model: 4.0x the tower parameters of the base (measured and printed)


def model_runs(quick: bool, serving: Path) -> tuple[list[Run], HistoryDataSpec, LongDataSpec]:
    ml = HistoryDataSpec("100k", 20, max_users=60) if quick else HistoryDataSpec("1m", 20)
    long = (
        LongDataSpec(num_users=20, num_items=60, rows_per_user=8)
        if quick
        else LongDataSpec(num_users=200, num_items=500, rows_per_user=40, seed=1)
    )
    base = {"epochs": 1, "batch_size": 4096, "lr": 2e-3, "seed": 0}
    ml_models = {
        "two-tower": ModelRunConfig(model="two-tower", **base),
        "aif-exact": ModelRunConfig(model="aif-exact", tower_width=BASE_WIDTH, **base),
        "aif-bea": ModelRunConfig(
            model="aif-bea", tower_width=BASE_WIDTH, export=str(serving / "aif-bea"), **base
        ),
        "aif-bea-4x": ModelRunConfig(
            model="aif-bea", tower_width=BIG_WIDTH, export=str(serving / "aif-bea-4x"), **base
        ),
    }
    lbase = {"epochs": 1 if quick else 4, "batch_size": 256, "lr": 1e-2, "seed": 0}
    long_models = {
        "aif-short": ModelRunConfig(model="aif-short", **lbase),
        "aif-lsh": ModelRunConfig(model="aif-lsh", **lbase),
        "aif-lsh-exact": ModelRunConfig(model="aif-lsh-exact", **lbase),
    }
    runs = [Run(f"ml/{n}", model_run, c, ml, group=f"ml/{n}") for n, c in ml_models.items()]
    runs += [Run(f"long/{n}", model_run, c, long, group=f"long/{n}") for n, c in long_models.items()]
    return runs, ml, long


def serving_runs(quick: bool, got: dict[str, Any]) -> tuple[list[Run], list[int]]:
    base, big = got["ml/aif-bea"], got["ml/aif-bea-4x"]
    for g in (base, big):
        if not (Path(g["export"]) / "catalog.npz").is_file():
            raise SystemExit(f"serving folder {g['export']} is missing: rerun the model stage with --rerun")
    arm = {
        "sequential": Arm("sequential", base["export"], "sequential", base["model_version"]),
        "aif": Arm("aif", base["export"], "aif", base["model_version"]),
        "aif 4x": Arm("aif 4x", big["export"], "aif", big["model_version"]),
        "sequential 4x": Arm("sequential 4x", big["export"], "sequential", big["model_version"]),
    }
    users = int(base["catalog"]["users"])
    cands = [200] if quick else [500, 2000]
    runs = []
    for n in cands:
        names = ["sequential", "aif"] if n != cands[-1] else list(arm)[: 3 if quick else 4]
        cfg = (
            LatencyConfig(
                num_candidates=n,
                segments=1,
                segment_seconds=2.0,
                sweep_rates=(10.0,),
                sweep_seconds=2.0,
                warmup=5,
            )
            if quick
            else LatencyConfig(num_candidates=n)
        )
        runs.append(Run(f"latency/{n}", latency_run, cfg, ArmsSpec(tuple(arm[a] for a in names), users)))
    secs = 4.5 if quick else 60.0
    soaks = {
        "embedded": SoakConfig(store="embedded", seconds=secs),
        "redis": SoakConfig(store="redis", seconds=secs),
        "redis-outage": SoakConfig(store="redis", seconds=secs, kill_at=secs / 3, restart_at=2 * secs / 3),
    }
    if quick:
        soaks = {"redis-outage": soaks["redis-outage"]}
    spec = ArmsSpec((arm["aif"],), users)
    runs += [Run(f"soak/{name}", soak_run, cfg, spec, group="soak") for name, cfg in soaks.items()]
    return runs, cands


def _plot(path: Path, soak: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mercato.core.plots import save_figure

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    t = [row[0] for row in soak["timeline"]]
    lat = [row[1] for row in soak["timeline"]]
    bad = [(row[0], row[1]) for row in soak["timeline"] if row[2] != 200]
    ax.plot(t, lat, ".", ms=2, label="200 answers")
    if bad:
        ax.plot(*zip(*bad, strict=True), "rx", label="failed")
    for name, at in soak["events"]:
        ax.axvline(at, color="k", ls="--", lw=0.8)
        ax.text(at, max(lat) if lat else 1, f" {name}", va="top", fontsize=8)
    ax.set_xlabel("scheduled send time (s)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title(
        f"AIFModel (BEA), aif mode, Redis store, {soak['rate']:g} req/s, Redis stopped and restarted"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    save_figure(fig, path)


def model_block(
    got: dict[str, Any], runs: list[Run], ml: HistoryDataSpec, long: LongDataSpec, meta: str
) -> str:
    rows = []
    for r in runs:
        g = got[r.name]
        rows.append(
            [
                r.name.split("/")[1] if r.name.startswith("ml/") else f"{r.name.split('/')[1]} (synthetic)",
                f"{g['params']:,}",
                f"{g['tower_params']:,}" if "tower_params" in g else "-",
                f"{g['auc']:.4f}",
                f"{g['gauc']:.4f}",
                f"{g['train_seconds']:.0f}",
            ]
        )
    table = markdown_table(
        ["model", "parameters", "tower parameters", "test AUC", "test GAUC", "train s"], rows
    )
    bea, lsh, lshx = got["ml/aif-bea"], got["long/aif-lsh"], got["long/aif-lsh-exact"]
    approx_rows = [
        [
            "ML-1M" if ml.variant == "1m" else f"ML-{ml.variant.upper()}",
            "exact target attention (trained exact)",
            f"{got['ml/aif-exact']['auc']:.4f}",
            f"{got['ml/aif-exact']['gauc']:.4f}",
            "-",
            "-",
        ],
        [
            "",
            "BEA (trained BEA)",
            f"{bea['auc']:.4f}",
            f"{bea['gauc']:.4f}",
            f"{bea['score_pearson']:.4f}",
            f"{bea['logit_mean_abs_diff']:.4f}",
        ],
        [
            "",
            "BEA weights, exact target attention",
            f"{bea['twin_auc']:.4f}",
            f"{bea['twin_gauc']:.4f}",
            "1",
            "0",
        ],
        [
            "synthetic long",
            "no long-sequence interest (recent 20 only)",
            f"{got['long/aif-short']['auc']:.4f}",
            f"{got['long/aif-short']['gauc']:.4f}",
            "-",
            "-",
        ],
        [
            "",
            "SimHash LSH (trained LSH)",
            f"{lsh['auc']:.4f}",
            f"{lsh['gauc']:.4f}",
            f"{lsh['score_pearson']:.4f}",
            f"{lsh['logit_mean_abs_diff']:.4f}",
        ],
        [
            "",
            "LSH weights, exact twin (H -> inf)",
            f"{lsh['twin_auc']:.4f}",
            f"{lsh['twin_gauc']:.4f}",
            "1",
            "0",
        ],
        ["", "exact twin (trained exact twin)", f"{lshx['auc']:.4f}", f"{lshx['gauc']:.4f}", "1", "0"],
        [
            "",
            "exact-twin weights, SimHash LSH",
            f"{lshx['twin_auc']:.4f}",
            f"{lshx['twin_gauc']:.4f}",
            f"{lshx['score_pearson']:.4f}",
            f"{lshx['logit_mean_abs_diff']:.4f}",
        ],
    ]
    approx = markdown_table(
        ["data", "interaction", "test AUC", "test GAUC", "Pearson vs exact twin", "mean abs logit gap"],
        approx_rows,
    )
    c0 = runs[0].config
    lc = next(r.config for r in runs if r.name == "long/aif-lsh")
    setup = (
        f"Setup: {got['ml/aif-bea']['train_rows']:,} training / {got['ml/aif-bea']['test_rows']:,} test rows of "
        f"MovieLens-{ml.variant.upper()}{f' ({ml.max_users} random users)' if ml.max_users else ' (all users)'} "
        f"(rating >= 4 is a click, per-user time split), history field of up to {ml.max_len} earlier items; "
        f"{describe(c0, ['model_dim', 'num_bridges', 'epochs', 'batch_size', 'lr', 'seed'])}; tower_width "
        f"{BASE_WIDTH} (base) and {BIG_WIDTH} (4x). Synthetic long sequences: {long.num_users} users, "
        f"{long.num_items} items, {long.length:,} events per user ({long.recent} recent), "
        f"{got['long/aif-lsh']['train_rows']:,} training rows; {describe(lc, ['lsh_groups', 'lsh_bits', 'epochs', 'batch_size', 'lr'])}. "
        f"mercato.ctr.CTRTrainer, early stopping on validation AUC, one seed. {meta}"
    )
    return f"{setup}\n\n{table}\n\nApproximations and their exact twins (same test rows):\n\n{approx}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_runner_args(parser)
    args = parser.parse_args(argv)
    setup_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    exp = Experiment.from_args("aif", args, code=CODE, repo=ROOT)
    mruns, ml, long = model_runs(args.quick, exp.root / "serving")
    mgot = exp.run(mruns)
    if not all(r.name in mgot for r in mruns):
        return 0
    sruns, cands = serving_runs(args.quick, mgot)
    got = exp.run(sruns)
    if not exp.complete:
        return 0
    mblock = model_block(mgot, mruns, ml, long, machine_line([exp.meta[r.name] for r in mruns]))

    lat = {n: got[f"latency/{n}"] for n in cands}
    rows = []
    for n in cands:
        for arm, f in lat[n].items():
            rows.append(
                [
                    arm,
                    f"{n:,}",
                    f"{f['rate']:g}",
                    f["sent"],
                    f["failed"],
                    f"{f['p50_ms']:.1f}",
                    f"{f['p99_ms']:.1f}",
                    f"{f['max_qps']:g}",
                ]
            )
    cfg0 = sruns[0].config
    users = sruns[0].data.num_users
    setup = (
        f"Setup: the AIFModel with BEA trained above served from its serving folder (base: tower_width {BASE_WIDTH}; "
        f"4x: tower_width {BIG_WIDTH}), {mgot['ml/aif-bea']['catalog']['items']:,} items, {users:,} users; every "
        f"server of a row group up at once, one uvicorn worker and one torch thread each; {cfg0.segments} "
        f"interleaved fixed-rate segments of {cfg0.segment_seconds:g} s at {cfg0.rate:g} req/s per server; max QPS = "
        f"highest of {list(cfg0.sweep_rates)} req/s ({cfg0.sweep_seconds:g} s each) with zero failures, >= 95 % of "
        f"the rate achieved and p99 <= {cfg0.slo_ms:g} ms. {machine_line([exp.meta[r.name] for r in sruns])}"
    )
    table = markdown_table(
        ["server", "candidates", "rate (req/s)", "sent", "failed", "p50 (ms)", "p99 (ms)", "max QPS"], rows
    )
    top = cands[-1]
    t = lat[top]
    ratio = t["aif"]["p99_ms"] / t["sequential"]["p99_ms"]
    goals = [
        f"Goal: AIF p99 <= {GOAL_RATIO}x sequential at {top:,} candidates (same weights): "
        f"{'met' if ratio <= GOAL_RATIO else 'missed'} (ratio {ratio:.2f}: {t['aif']['p99_ms']:.1f} vs "
        f"{t['sequential']['p99_ms']:.1f} ms)."
    ]
    base, big = mgot["ml/aif-bea"], mgot["ml/aif-bea-4x"]
    p99_ok = t["aif 4x"]["p99_ms"] <= t["sequential"]["p99_ms"]
    better = big["auc"] > base["auc"] and big["gauc"] > base["gauc"]
    goals.append(
        f"Goal: the AIF model with 4x towers ({big['tower_params'] / base['tower_params']:.1f}x tower parameters) "
        f"served in aif mode keeps p99 at or below the base sequential model's at {top:,} candidates, with higher "
        f"AUC and GAUC: {'met' if p99_ok and better else 'missed'} (p99 {t['aif 4x']['p99_ms']:.1f} vs "
        f"{t['sequential']['p99_ms']:.1f} ms; AUC {big['auc']:.4f} vs {base['auc']:.4f}, GAUC {big['gauc']:.4f} vs "
        f"{base['gauc']:.4f})."
    )
    soaks = {r.name.split("/")[1]: got[r.name] for r in sruns if r.name.startswith("soak/")}
    soak_rows = [
        [
            name,
            f"{s['rate']:g}",
            s["sent"],
            s["failed"],
            f"{s['p50_ms']:.1f}",
            f"{s['p99_ms']:.1f}",
            f"{s['max_ms']:.1f}",
            ", ".join(f"{e} at {at:.1f} s" for e, at in s["events"]) or "-",
        ]
        for name, s in soaks.items()
    ]
    zero = all(s["failed"] == 0 for s in soaks.values())
    goals.append(
        f"Goal: zero failed requests in every soak run ({', '.join(soaks)}): {'met' if zero else 'missed'} "
        f"({sum(s['failed'] for s in soaks.values())} failed of {sum(s['sent'] for s in soaks.values())})."
    )
    soak_cfg = next(r.config for r in sruns if r.name.startswith("soak/"))
    soak_table = markdown_table(
        ["run", "rate (req/s)", "sent", "failed", "p50 (ms)", "p99 (ms)", "max (ms)", "faults"], soak_rows
    )
    img = "docs/img/aif/redis_outage.png"
    _plot(exp.out_path(img), soaks["redis-outage"])
    main_block = (
        f"{setup}\n\n{table}\n\nSoak runs: the base model in aif mode, {soak_cfg.num_candidates} candidates, "
        f"{soak_cfg.seconds:g} s at {soak_cfg.rate:g} req/s.\n\n{soak_table}\n\n"
        "![latency over time](img/aif/redis_outage.png)\n\n" + "\n".join(f"- {g}" for g in goals)
    )
    summary = (
        f"AIF (AIFModel trained on MovieLens-{ml.variant.upper()}, served): p99 at {top:,} candidates "
        f"{t['sequential']['p99_ms']:.1f} ms sequential vs {t['aif']['p99_ms']:.1f} ms aif, "
        f"{t['aif 4x']['p99_ms']:.1f} ms aif with 4x towers; test AUC {base['auc']:.4f} (base) vs "
        f"{big['auc']:.4f} (4x). Details: [aif.md](aif.md).\n\n" + "\n".join(f"- {g}" for g in goals)
    )
    exp.report(
        {"docs/aif.md": {"aif-main": main_block, "aif-model": mblock}, "docs/results.md": {"aif": summary}},
        titles={"docs/aif.md": "AIF"},
    )
    print(mblock)
    print(main_block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""FAT benchmark: FAT vs Transformer, AutoInt, DCNv2, DeepFM; width scaling; modulation heatmap; speed.

Usage::

    python benchmarks/fat.py            # full run: writes docs/fat.md blocks, the `fat` block of docs/results.md
    python benchmarks/fat.py --quick    # < 90 s smoke run (tiny synthetic + ML-100K subset, 1 seed);
                                        # writes under runs/bench/fat-quick/, never into docs/
    python benchmarks/fat.py --sections scaling,speed   # rerun some sections (the others are served cached)
    python benchmarks/fat.py --shard 0/2 & python benchmarks/fat.py --shard 1/2; python benchmarks/fat.py

Protocol of the synthetic comparison and the scaling study (the same budget for every model): the shared
trainer (:class:`mercato.ctr.trainer.CTRTrainer`), the same data and width ``d``, library defaults otherwise,
an epoch cap with early stopping on the *validation* AUC (``patience``), and a learning-rate grid
(``lrs``) searched per model on seed 0, picked by validation AUC; the other seeds reuse the chosen rate. The
ML-1M comparison follows the same protocol with a lower epoch cap (CPU budget); the scaling study searches
the grid per model and per width. The test split never selects anything; it is evaluated once per run.
Every training run is one cached run of the experiment runner (:mod:`mercato.core.experiments`) under
``runs/bench/fat/``: shards (``--shard i/n``, one model's grid and seeds stay together) run in parallel
processes, and a final call without ``--shard`` assembles the report from the cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import curve_fit

from mercato.core.experiments import Experiment, Run, add_runner_args, best_of, machine_line
from mercato.core.plots import plt, save_figure, save_heatmap
from mercato.core.results import markdown_table, mean_std, update_markdown_section
from mercato.core.seed import seed_everything
from mercato.ctr.experiment import CTRDataSpec, CTRRunConfig, build_model, load_encoded
from mercato.fat import FieldAwareTransformer
from mercato.fat.experiment import BASELINES, MODELS, model_overrides, train_run

log = logging.getLogger("benchmarks.fat")
ROOT = Path(__file__).resolve().parents[1]
CODE = ("mercato.core", "mercato.data", "mercato.ctr", "mercato.fat")

FULL: dict[str, Any] = {
    "synthetic": {"n_samples": 200_000, "num_fields": 10, "cardinality": 200},
    "ml_rows": 200_000,  # seeded subset of ML-1M's 800k training rows (CPU budget); valid/test complete
    "seeds": [0, 1, 2],  # the lr grid runs on seed 0; seeds 1, 2 reuse the chosen lr
    "width": 16,
    "lrs": [1e-3, 3e-3],  # per-model grid, picked on validation AUC (seed 0)
    # epoch cap + early stopping on validation AUC; "lr" is replaced by the grid's choice
    "trainer": {"epochs": 15, "batch_size": 2048, "patience": 2},
    "ml_trainer": {"epochs": 8, "batch_size": 2048, "patience": 2},  # same protocol, lower cap (CPU budget)
    "widths": [8, 16, 32, 64, 128],
    "scaling_rows": 50_000,  # first rows of the synthetic training split
    "scaling_trainer": {"epochs": 15, "batch_size": 1024, "patience": 2},  # lr grid per model and width
    "speed_width": 32,
}
QUICK: dict[str, Any] = {
    "synthetic": {"n_samples": 12_000, "num_fields": 6, "cardinality": 50},
    "ml_rows": 12_000,
    "seeds": [0],
    "width": 8,
    "lrs": [1e-3, 3e-3],
    "trainer": {"epochs": 2, "batch_size": 1024, "patience": 1},
    "ml_trainer": {"epochs": 1, "batch_size": 1024, "patience": 0},
    "widths": [8, 16],
    "scaling_rows": 6_000,
    "scaling_trainer": {"epochs": 2, "batch_size": 1024, "patience": 1},
    "speed_width": 8,
}


# ------------------------------------------------------------------------------------------------- data
def synthetic_spec(plan: dict[str, Any], head: int | None = None) -> CTRDataSpec:
    return CTRDataSpec("synthetic", synthetic=plan["synthetic"], train_head=head)


def movielens_spec(plan: dict[str, Any], quick: bool) -> CTRDataSpec:
    """A seeded subset of the training rows of ML-1M (ML-100K when quick); valid/test untouched."""
    return CTRDataSpec("ml-100k" if quick else "ml-1m", train_rows=plan["ml_rows"])


# ------------------------------------------------------------------------------------------- sections
def _run(
    prefix: str,
    name: str,
    width: int,
    trainer: dict[str, Any],
    lr: float,
    seed: int,
    spec: CTRDataSpec,
    extra: dict[str, Any] | None = None,
    tag: str | None = None,
    group: str | None = None,
) -> Run:
    cfg = CTRRunConfig(name, model_overrides(name, width, extra), {**trainer, "lr": lr}, seed)
    return Run(tag or f"{prefix}/{name}/lr{lr:g}/s{seed}", train_run, cfg, spec, group=group or name)


def _row(r: dict[str, Any], name: str, lr: float, seed: int, trainer: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: v for k, v in r.items() if k != "modulation"},
        "model": name,
        "lr": lr,
        "seed": seed,
        "trainer": {**trainer, "lr": lr},
    }


def lr_search(
    exp: Experiment,
    spec: CTRDataSpec,
    name: str,
    width: int,
    trainer: dict[str, Any],
    lrs: list[float],
    prefix: str,
    group: str | None = None,
) -> tuple[float, list[dict[str, Any]]] | None:
    """Seed-0 runs of ``name`` for every lr of the grid; the lr with the best *validation* AUC (None: a shard)."""
    runs = [_run(prefix, name, width, trainer, lr, 0, spec, group=group) for lr in lrs]
    got = exp.run(runs, desc=f"{prefix} {name} lr grid")
    if len(got) < len(runs):
        return None
    grid = [got[r.name] for r in runs]
    best = max(range(len(grid)), key=lambda i: grid[i]["valid"]["auc"])
    return float(lrs[best]), grid


def tuned_comparison(
    exp: Experiment,
    spec: CTRDataSpec,
    plan: dict[str, Any],
    trainer: dict[str, Any],
    models: list[str],
    prefix: str,
) -> dict[str, Any] | None:
    """Per model: lr grid on validation (seed 0), then every seed at the chosen lr (seed 0 reused)."""
    runs: list[dict[str, Any]] = []
    grid: list[dict[str, Any]] = []
    modulation = None
    width = plan["width"]
    for name in models:
        if not exp.in_shard(name):
            continue
        found = lr_search(exp, spec, name, width, trainer, plan["lrs"], prefix)
        if found is None:
            continue
        lr, g = found
        grid += [
            {"model": name, "lr": l, **{k: r[k] for k in ("valid", "best_epoch", "epochs_run")}}
            for l, r in zip(plan["lrs"], g)
        ]
        seed_runs = [_run(prefix, name, width, trainer, lr, s, spec) for s in plan["seeds"]]
        got = exp.run(seed_runs, desc=f"{prefix} {name} seeds")
        for s, run in zip(plan["seeds"], seed_runs):
            if run.name in got:
                r = got[run.name]
                if name == "fat" and s == plan["seeds"][0]:
                    modulation = r.get("modulation")
                runs.append(_row(r, name, lr, s, trainer))
    if not exp.complete:
        return None
    data = load_encoded(spec)
    return {
        "name": data.name,
        "fields": data.schema.field_names,
        "bayes_auc": data.bayes_auc,
        "bayes_logloss": data.bayes_logloss,
        "strengths": None if data.strengths is None else data.strengths.tolist(),
        "runs": runs,
        "grid": grid,
        "modulation": modulation,
        "trainer": trainer,
        "lrs": plan["lrs"],
        "seeds": plan["seeds"],
        "train_rows": len(data.train),
    }


ABLATIONS: dict[str, dict[str, Any]] = {
    "FAT (defaults)": {},
    "4 heads (d_k = d / 4)": {"num_heads": 4},
    "free per-field weights (no hypernetwork)": {"hypernetwork": False},
    "dense basis mixture (top_k = 0)": {"top_k": 0},
    "shared Q/K/V/O (no per-field projections)": {"per_field_qkv": False, "field_aware_output": False},
    "shared FFN": {"field_aware_ffn": False},
    "additive modulation (s + w)": {"modulation": "add"},
    "concatenated tokens to the head": {"pooling": "concat"},
}


def ablation(exp: Experiment, spec: CTRDataSpec, plan: dict[str, Any]) -> dict[str, Any] | None:
    """FAT variants (one option changed each), seed 0, at FAT's lr of the comparison: valid and test AUC."""
    if not exp.in_shard("fat"):
        return None
    found = lr_search(exp, spec, "fat", plan["width"], plan["trainer"], plan["lrs"], "cmp")
    if found is None:
        return None
    lr = found[0]
    runs = {
        label: _run(
            "cmp",
            "fat",
            plan["width"],
            plan["trainer"],
            lr,
            0,
            spec,
            extra,
            tag=None if not extra else "abl/" + "_".join(f"{k}-{v}" for k, v in extra.items()),
            group="fat",
        )
        for label, extra in ABLATIONS.items()
    }
    got = exp.run(list(runs.values()), desc="ablation")
    if len(got) < len(runs):
        return None
    rows = []
    for label, run in runs.items():
        r = got[run.name]
        rows.append(
            {
                "variant": label,
                "config": ABLATIONS[label],
                "valid_auc": r["valid"]["auc"],
                "test_auc": r["test"]["auc"],
                "best_epoch": r["best_epoch"],
                "epochs_run": r["epochs_run"],
                "params": r["params"],
            }
        )
    return {"lr": lr, "trainer": {**plan["trainer"], "lr": lr}, "rows": rows}


def power_law(d: np.ndarray, c: float, alpha: float, ceiling: float) -> np.ndarray:
    """``AUC(d) = ceiling - c d^(-alpha)``: the reducible AUC gap shrinks as a power of the width."""
    return ceiling - c * np.power(d, -alpha)


def fit_power_law(widths: list[int], aucs: list[float], ceiling: float) -> dict[str, float]:
    """Fit ``c, alpha`` of :func:`power_law` with the ceiling fixed (the Bayes AUC); R^2 on the AUC values."""
    d, y = np.asarray(widths, float), np.asarray(aucs, float)
    if len(d) < 2:  # two parameters need at least two widths
        return {"c": float("nan"), "alpha": float("nan"), "r2": float("nan")}
    f = lambda x, c, a: power_law(x, c, a, ceiling)  # noqa: E731
    try:
        (c, alpha), _ = curve_fit(f, d, y, p0=(max(ceiling - y[0], 1e-3) * d[0] ** 0.3, 0.3), maxfev=20000)
    except RuntimeError:
        return {"c": float("nan"), "alpha": float("nan"), "r2": float("nan")}
    resid = y - f(d, c, alpha)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return {"c": float(c), "alpha": float(alpha), "r2": r2}


def scaling(
    exp: Experiment, spec: CTRDataSpec, plan: dict[str, Any], models: list[str]
) -> dict[str, Any] | None:
    """Test AUC vs width d (seed 0, lr chosen on validation per model and width) and power-law fits."""
    out: dict[str, Any] = {
        "widths": plan["widths"],
        "auc": {},
        "params": {},
        "fit": {},
        "lr": {},
        "epochs": {},
    }
    out["trainer"] = plan["scaling_trainer"]
    for name in [m for m in ("fat", "transformer") if m in models]:
        aucs, params, epochs, lrs = [], [], [], []
        for width in plan["widths"]:
            group = f"scaling/{name}/d{width}"
            if not exp.in_shard(group):
                continue
            found = lr_search(
                exp, spec, name, width, plan["scaling_trainer"], plan["lrs"], f"scale_d{width}", group
            )
            if found is None:
                continue
            lr, grid = found
            res = grid[plan["lrs"].index(lr)]
            aucs.append(res["test"]["auc"])
            params.append(res["params"])
            epochs.append([res["best_epoch"], res["epochs_run"]])
            lrs.append(lr)
        out["auc"][name], out["params"][name], out["lr"][name], out["epochs"][name] = (
            aucs,
            params,
            lrs,
            epochs,
        )
    if not exp.complete:
        return None
    data = load_encoded(spec)
    out["train_rows"] = len(data.train)
    assert data.bayes_auc is not None
    for name in out["auc"]:
        aucs = out["auc"][name]
        out["fit"][name] = fit_power_law(plan["widths"], aucs, data.bayes_auc)
        out.setdefault("fit_without_largest", {})[name] = fit_power_law(
            plan["widths"][:-1], aucs[:-1], data.bayes_auc
        )
    out["bayes_auc"] = data.bayes_auc
    return out


@dataclasses.dataclass(frozen=True)
class SpeedConfig:
    width: int
    quick: bool


def speed_run(config: SpeedConfig, spec: CTRDataSpec) -> dict[str, Any]:
    """Training samples/s and 1,000-candidate scoring latency, FAT vs Transformer, measured interleaved."""
    data = load_encoded(spec)
    width, quick = config.width, config.quick
    seed_everything(0)
    fat = build_model("fat", data.schema, model_overrides("fat", width), registry=MODELS)
    transformer = build_model(
        "transformer", data.schema, model_overrides("transformer", width), registry=MODELS
    )
    assert isinstance(fat, FieldAwareTransformer)
    served = fat.export()
    bs, steps, reps = 1024, (3 if quick else 10), (5 if quick else 30)
    opts = {id(m): torch.optim.Adam(m.parameters(), lr=1e-3) for m in (fat, transformer)}
    train_batches = [data.train.batch(slice(i * bs, (i + 1) * bs)) for i in range(steps)]

    def train_steps(model: Any) -> None:
        model.train()
        for batch in train_batches:
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch["label"])
            opts[id(model)].zero_grad()
            (loss + model.auxiliary_loss()).backward()
            opts[id(model)].step()

    candidates = data.test.batch(slice(0, 1000))
    train_times: dict[str, list[float]] = {"fat": [], "transformer": []}
    for _ in range(2 if quick else 3):  # interleave to share the machine's load fairly
        for name, model in (("fat", fat), ("transformer", transformer)):
            train_times[name].append(best_of(lambda m=model: train_steps(m), repeats=1, warmup=0))
    fat.eval()
    transformer.eval()
    latency: dict[str, list[float]] = {"fat (hypernetwork)": [], "fat (exported)": [], "transformer": []}
    with torch.no_grad():
        for _ in range(3):
            for name, model in (
                ("fat (hypernetwork)", fat),
                ("fat (exported)", served),
                ("transformer", transformer),
            ):
                latency[name].append(best_of(lambda m=model: m(candidates), repeats=reps, warmup=1))
    return {
        "width": width,
        "threads": torch.get_num_threads(),
        "batch_size": bs,
        "train_samples_per_s": {k: steps * bs / min(v) for k, v in train_times.items()},
        "latency_ms_1000": {k: 1000 * min(v) for k, v in latency.items()},
        "params": {
            "fat": sum(p.numel() for p in fat.parameters()),
            "served": sum(p.numel() for p in served.parameters()),
        },
    }


# ------------------------------------------------------------------------------------------------ reports
def _stats(runs: list[dict[str, Any]], model: str, key: str) -> list[float]:
    return [r["test"][key] for r in runs if r["model"] == model]


def comparison_table(res: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    runs = res["runs"]
    best_base = max(BASELINES, key=lambda m: np.mean(_stats(runs, m, "auc")))
    ref = float(np.mean(_stats(runs, best_base, "auc")))
    rows = []
    for m in MODELS:
        a = _stats(runs, m, "auc")
        mine = [r for r in runs if r["model"] == m]
        secs = np.mean([r["train_seconds"] for r in mine])
        delta = 100 * (np.mean(a) - ref) / ref
        epochs = ", ".join(f"{r['best_epoch']}/{r['epochs_run']}" for r in mine)
        row = [
            m,
            mean_std(a),
            mean_std(_stats(runs, m, "logloss")),
            f"{delta:+.2f}%",
            f"{mine[0]['lr']:g}",
            epochs,
        ]
        rows.append(row + [f"{mine[0]['params']:,}", f"{secs:.0f}"])
    if res["bayes_auc"] is not None:
        pad = [""] * 5
        rows.append(
            ["Bayes-optimal (ceiling)", f"{res['bayes_auc']:.4f}", f"{res['bayes_logloss']:.4f}", *pad]
        )
    header = ["model", "test AUC", "test logloss", "ΔAUC vs best baseline", "lr (valid-chosen)"]
    header += ["best epoch / epochs run", "params", "train s"]
    fat_auc = float(np.mean(_stats(runs, "fat", "auc")))
    return markdown_table(header, rows), {
        "best_baseline": best_base,
        "delta_pct": 100 * (fat_auc - ref) / ref,
        "fat_auc": mean_std(_stats(runs, "fat", "auc")),
        "base_auc": mean_std(_stats(runs, best_base, "auc")),
    }


def write_reports(results: dict[str, Any], docs: Path, quick: bool) -> None:
    img = docs / "img" / "fat"
    img_rel = "img/fat"
    fat_md, results_md = docs / "fat.md", docs / "results.md"
    summary: list[str] = []
    mode = "quick smoke run" if quick else "full run"
    cmp_blocks = []
    for key, res in results.get("comparison", {}).items():
        table, info = comparison_table(res)
        cfg = res["trainer"]
        width = results["plan"]["width"]
        seeds = res["seeds"]
        grid_rows = [
            [g["model"], f"{g['lr']:g}", f"{g['valid']['auc']:.4f}", f"{g['best_epoch']}/{g['epochs_run']}"]
            for g in res["grid"]
        ]
        cmp_blocks.append(
            f"**{res['name']}** ({res['train_rows']:,} training rows; {len(seeds)} seed(s) {seeds}; "
            f"d = {width} for every model; Adam, batch {cfg['batch_size']}, at most {cfg['epochs']} epochs "
            f"with early stopping on validation AUC (patience {cfg['patience']}), best epoch restored; "
            f"lr per model from {res['lrs']} by validation AUC on seed 0)\n\n{table}\n\n"
            "Learning-rate grid (seed 0; validation AUC of the best epoch, the only quantity used to choose):\n\n"
            + markdown_table(["model", "lr", "valid AUC", "best epoch / epochs run"], grid_rows)
            + "\n"
        )
        verdict = "above" if info["delta_pct"] > 0 else "below"
        bayes = f"; Bayes-optimal {res['bayes_auc']:.4f}" if res["bayes_auc"] is not None else ""
        summary.append(
            f"- {res['name']}: FAT test AUC {info['fat_auc']} vs best baseline {info['best_baseline']} "
            f"{info['base_auc']}: {info['delta_pct']:+.2f}% ({verdict}){bayes}."
        )
        if res.get("modulation") is not None:
            save_heatmap(
                img / f"modulation_{key}.png",
                res["modulation"],
                res["fields"],
                f"FAT learned w - neutral\n{res['name']}",
            )
        if res.get("strengths") is not None:
            save_heatmap(
                img / f"true_pairs_{key}.png", res["strengths"], res["fields"], "generator S_ij (true pairs)"
            )
    if cmp_blocks:
        text = (
            f"_Generated by `python benchmarks/fat.py` ({mode}); numbers are test-split mean ± std over seeds. "
            f"{results.get('machine', '')}_\n\n"
        )
        update_markdown_section(fat_md, "fat-comparison", text + "\n".join(cmp_blocks))
    heat = []
    for key, res in results.get("comparison", {}).items():
        if res.get("modulation") is None:
            continue
        line = f"![FAT modulation, {res['name']}]({img_rel}/modulation_{key}.png)"
        if res.get("strengths") is not None:
            line += f" ![true pair strengths]({img_rel}/true_pairs_{key}.png)"
            w, s = np.abs(np.asarray(res["modulation"])), np.abs(np.asarray(res["strengths"]))
            off = ~np.eye(len(s), dtype=bool)
            corr = float(np.corrcoef(w[off], s[off])[0, 1])
            sym = float(np.corrcoef(w[off], (s + s.T)[off])[0, 1])
            line += (
                f"\n\nPearson correlation of |learned w| with the true |S_ij| off the diagonal: {corr:.3f} "
                f"(with the symmetrised |S_ij| + |S_ji|: {sym:.3f})."
            )
        heat.append(line)
    if heat:
        update_markdown_section(fat_md, "fat-heatmap", "\n\n".join(heat))
    sc = results.get("scaling")
    if sc:
        widths = sc["widths"]
        tr, rows_used = sc["trainer"], sc["train_rows"]
        fig, ax = plt.subplots(figsize=(6, 4))
        dense = np.geomspace(widths[0], widths[-1], 50)
        for m, color in (("fat", "C0"), ("transformer", "C1")):
            ax.plot(widths, sc["auc"][m], "o", color=color, label=f"{m} (R²={sc['fit'][m]['r2']:.2f})")
            fit = sc["fit"][m]
            if np.isfinite(fit["c"]):
                ax.plot(
                    dense,
                    power_law(dense, fit["c"], fit["alpha"], sc["bayes_auc"]),
                    "-",
                    color=color,
                    alpha=0.6,
                )
        ax.axhline(sc["bayes_auc"], color="grey", ls="--", label="Bayes-optimal")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("width d")
        ax.set_ylabel("test AUC")
        ax.legend()
        ax.grid(alpha=0.3)
        save_figure(fig, img / "scaling.png")
        ep = sc["epochs"]
        rows = [
            [w]
            + [f"{sc['auc'][m][i]:.4f}" for m in ("fat", "transformer")]
            + [f"{ep[m][i][0]}/{ep[m][i][1]}" for m in ("fat", "transformer")]
            + [f"{sc['lr'][m][i]:g}" for m in ("fat", "transformer")]
            + [f"{sc['params']['fat'][i]:,}", f"{sc['params']['transformer'][i]:,}"]
            for i, w in enumerate(widths)
        ]
        fits = [
            [m, label, f"{f[m]['alpha']:.3f}", f"{f[m]['c']:.4f}", f"{f[m]['r2']:.3f}"]
            for label, f in (
                (f"d = {widths[0]}..{widths[-1]}", sc["fit"]),
                (f"d = {widths[0]}..{widths[-2]}", sc["fit_without_largest"]),
            )
            for m in ("fat", "transformer")
        ]
        body = (
            f"Synthetic data (first {rows_used:,} training rows; validation and test splits complete), seed 0, "
            f"batch {tr['batch_size']}, at most {tr['epochs']} epochs with early stopping on validation AUC "
            f"(patience {tr['patience']}), best epoch restored; lr per model and width from {results['plan']['lrs']} "
            "by validation AUC (column lr). Test AUC per width. Fit: "
            f"`AUC(d) = AUC_Bayes - c d^(-alpha)` with AUC_Bayes = {sc['bayes_auc']:.4f} fixed (scipy `curve_fit`).\n\n"
            + markdown_table(
                [
                    "d",
                    "FAT AUC",
                    "Transformer AUC",
                    "FAT best epoch / run",
                    "Transformer best epoch / run",
                    "FAT lr",
                    "Transformer lr",
                    "FAT params",
                    "Transformer params",
                ],
                rows,
            )
            + "\n\n"
            + markdown_table(["model", "widths fitted", "alpha", "c", "R²"], fits)
            + f"\n\n![AUC vs width]({img_rel}/scaling.png)"
        )
        update_markdown_section(fat_md, "fat-scaling", body)
        gains = {m: sc["auc"][m][-1] - sc["auc"][m][-2] for m in ("fat", "transformer")}
        fit = sc["fit"]
        summary.append(
            f"- scaling (synthetic, d = {widths[0]}..{widths[-1]}): power law R² FAT {fit['fat']['r2']:.3f} "
            f"(alpha {fit['fat']['alpha']:.2f}), Transformer {fit['transformer']['r2']:.3f} "
            f"(alpha {fit['transformer']['alpha']:.2f}); AUC gain of the last doubling "
            f"(d {widths[-2]} -> {widths[-1]}): FAT {gains['fat']:+.4f}, Transformer {gains['transformer']:+.4f}."
        )
    sp = results.get("speed")
    if sp:
        t, lat = sp["train_samples_per_s"], sp["latency_ms_1000"]
        rows = [
            [
                "training samples/s",
                f"{t['fat']:,.0f}",
                f"{t['transformer']:,.0f}",
                f"{t['fat'] / t['transformer']:.2f}",
            ],
            [
                "scoring 1,000 candidates, FAT hypernetwork path (ms)",
                f"{lat['fat (hypernetwork)']:.2f}",
                f"{lat['transformer']:.2f}",
                f"{lat['fat (hypernetwork)'] / lat['transformer']:.2f}",
            ],
            [
                "scoring 1,000 candidates, FAT exported (ms)",
                f"{lat['fat (exported)']:.2f}",
                f"{lat['transformer']:.2f}",
                f"{lat['fat (exported)'] / lat['transformer']:.2f}",
            ],
        ]
        body = (
            f"d = {sp['width']}, synthetic fields, {sp['threads']} CPU thread(s), training batch {sp['batch_size']}, "
            "FAT and the Transformer interleaved in one process (best of repeats). The machine was shared with "
            "other jobs, so absolute numbers are noisy; the ratios are the point.\n\n"
            + markdown_table(["measure", "FAT", "Transformer", "FAT / Transformer"], rows)
            + f"\n\nExported vs hypernetwork path: {lat['fat (exported)']:.2f} ms vs {lat['fat (hypernetwork)']:.2f} ms "
            f"per 1,000 candidates (ratio {lat['fat (exported)'] / lat['fat (hypernetwork)']:.2f}); "
            f"parameters {sp['params']['fat']:,} (training) vs {sp['params']['served']:,} (served)."
        )
        update_markdown_section(fat_md, "fat-speed", body)
        summary.append(
            f"- speed (d = {sp['width']}): FAT trains at {t['fat'] / t['transformer']:.2f}x the Transformer's samples/s; exported FAT scores 1,000 candidates in {lat['fat (exported)'] / lat['transformer']:.2f}x its latency."
        )
    if "ablation" in results:
        ab = results["ablation"]
        ref = ab["rows"][0]
        rows = [
            [
                r["variant"],
                f"{r['valid_auc']:.4f}",
                f"{r['valid_auc'] - ref['valid_auc']:+.4f}",
                f"{r['test_auc']:.4f}",
                f"{r['best_epoch']}/{r['epochs_run']}",
                f"{r['params']:,}",
            ]
            for r in ab["rows"]
        ]
        body = (
            f"Synthetic data, seed 0, d = {results['plan']['width']}, FAT's lr of the comparison ({ab['lr']:g}), "
            f"the comparison's trainer (at most {ab['trainer']['epochs']} epochs, early stopping on validation "
            "AUC); one option changed per row. One seed: differences below the comparison's seed spread "
            "are not significant.\n\n"
            + markdown_table(
                ["variant", "valid AUC", "Δ valid vs defaults", "test AUC", "best epoch / run", "params"],
                rows,
            )
        )
        update_markdown_section(fat_md, "fat-ablation", body)
    if summary:
        update_markdown_section(
            results_md,
            "fat",
            f"### FAT (Field-Aware Transformer)\n\n_{mode}; every comparison and the scaling study: per-model lr "
            "grid and early stopping on validation; details in [fat.md](fat.md)._\n\n" + "\n".join(summary),
        )


SECTIONS = ("comparison", "movielens", "speed", "scaling", "ablation")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="comma-separated sections to compute; the report also uses every cached section",
    )
    add_runner_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    os.environ.setdefault("MERCATO_NO_PROGRESS", "1")
    if args.threads is None:
        args.threads = 1
    torch.set_num_threads(args.threads)
    plan = QUICK if args.quick else FULL
    exp = Experiment.from_args("fat", args, code=CODE, repo=ROOT)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; valid: {list(SECTIONS)}")
    models = list(MODELS)
    syn = synthetic_spec(plan)
    results: dict[str, Any] = {"plan": plan}
    if "comparison" in sections:
        results.setdefault("comparison", {})["synthetic"] = tuned_comparison(
            exp, syn, plan, plan["trainer"], models, "cmp"
        )
    if "scaling" in sections:
        results["scaling"] = scaling(exp, synthetic_spec(plan, head=plan["scaling_rows"]), plan, models)
    if "movielens" in sections:
        ml = tuned_comparison(exp, movielens_spec(plan, args.quick), plan, plan["ml_trainer"], models, "ml")
        results.setdefault("comparison", {})["movielens"] = ml
    if "ablation" in sections:
        results["ablation"] = ablation(exp, syn, plan)
    if "speed" in sections and exp.in_shard("speed"):
        got = exp.run(
            [Run("speed", speed_run, SpeedConfig(plan["speed_width"], args.quick), syn, group="speed")]
        )
        results["speed"] = got.get("speed")
    if not exp.complete:
        log.info("shard done (%d runs computed); run without --shard to write the report", len(exp.computed))
        return 0
    results["comparison"] = {k: v for k, v in results.get("comparison", {}).items() if v is not None}
    results = {k: v for k, v in results.items() if v is not None}
    results["machine"] = machine_line(exp.all_meta())
    exp.write_json("results.json", results)
    write_reports(results, exp.out_path("docs"), args.quick)
    log.info(
        "done: %d runs computed, %d served from the cache; wall time of all runs %.0f s",
        len(exp.computed),
        len(exp.declared) - len(exp.computed),
        exp.wall_seconds(),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

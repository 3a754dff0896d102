"""AIGB-Pearl benchmark: GMV / cost / ROI per budget level for Pearl and its baselines, pathologies, the
seed-paired Pearl-vs-DiffBid difference, evaluator OOD AUC, ablations, simulator speed.

    python benchmarks/pearl.py            # full run (resumable: cached runs are served)
    python benchmarks/pearl.py --quick    # smoke run, < 60 s, writes under runs/bench/pearl-quick/
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from mercato.core.experiments import Experiment, Run, add_runner_args, describe, machine_line
from mercato.pearl.bench import METHODS, MethodSpec, SpeedSpec, fit_one, speed_one
from mercato.pearl.config import (
    DataConfig,
    DiffBidConfig,
    DTConfig,
    InvDynConfig,
    PearlConfig,
    PlannerConfig,
    SimConfig,
)

SEEDS = (0, 1, 2, 3, 4)
ABLATION_SEEDS = (0, 1)
TEST_SEEDS = (2000, 2001)  # test episodes; defaults were looked at on validation seeds 1000-1003
ABLATIONS = {"Pearl-noPair": {"use_pairwise": False}, "Pearl-noLip": {"use_lipschitz": False},
             "Pearl-noKL": {"use_kl": False}}  # fmt: skip


def specs(quick: bool) -> tuple[list[MethodSpec], dict[str, MethodSpec]]:
    if quick:
        sim = SimConfig(n_advertisers=10, n_steps=24, n_impressions=2000)
        data = DataConfig(n_episodes=6)
        inv = InvDynConfig(steps=50)
        pearl = PearlConfig(invdyn=inv, planner=PlannerConfig(bc_steps=20), search_steps=2, rollouts=8)
        pearl.evaluator.steps = 30
        diff = DiffBidConfig(invdyn=inv, steps=20, n_diffusion=4)
        dt = DTConfig(steps=20)
        seeds, abl, tests = (0, 1), (0,), (2000,)
    else:
        # the budget of this machine (2 cores shared by ~8 agents): fewer steps than the library defaults
        sim, data = SimConfig(), DataConfig(n_episodes=30)
        inv = InvDynConfig(steps=400)
        pearl = PearlConfig(invdyn=inv, planner=PlannerConfig(bc_steps=150), search_steps=10, rollouts=16)
        pearl.evaluator.steps = 400
        diff = DiffBidConfig(invdyn=inv, steps=150, n_diffusion=6)
        dt = DTConfig(steps=150)
        seeds, abl, tests = SEEDS, ABLATION_SEEDS, TEST_SEEDS
    base = dict(sim=sim, data=data, pearl=pearl, diffbid=diff, dt=dt)
    from mercato.pearl.config import BCConfig, IQLConfig

    base.update(bc=BCConfig(steps=20), iql=IQLConfig(steps=20)) if quick else base.update(
        bc=BCConfig(steps=400), iql=IQLConfig(steps=400)
    )
    main = [MethodSpec(m, s, tests, **base) for m in METHODS for s in seeds]
    ab = {}
    for name, kw in ABLATIONS.items():
        for s in abl:
            ab[f"{name}/s{s}"] = MethodSpec(
                name, s, tests, **{**base, "pearl": dataclasses.replace(pearl, **kw)}
            )
    return main, ab


def _ms(x: list[float]) -> str:
    return f"{np.mean(x):.1f} ± {np.std(x):.1f}" if len(x) > 1 else f"{x[0]:.1f}"


def render(res: dict, main: list[MethodSpec], ab: dict, speed: dict, meta: list) -> tuple[str, str]:
    levels = [f"{b:g}" for b in main[0].sim.budget_levels]
    seeds = sorted({s.seed for s in main})
    get = lambda m, s: res[f"{m}/s{s}"]  # noqa: E731
    lines = ["| method | " + " | ".join(f"GMV B={b}" for b in levels) + " | mean GMV | cost/B (max) | ROI | "
             "spike / front-back / under-spend |", "|---" * (len(levels) + 5) + "|"]  # fmt: skip
    mean_gmv = {}
    for m in METHODS:
        cells = []
        for b in levels:
            cells.append(_ms([get(m, s)["per_budget"][b]["gmv"] for s in seeds]))
        per_seed = [np.mean([get(m, s)["per_budget"][b]["gmv"] for b in levels]) for s in seeds]
        mean_gmv[m] = per_seed
        cr = [get(m, s)["per_budget"][b]["cost_ratio"] for s in seeds for b in levels]
        crmax = max(get(m, s)["per_budget"][b]["max_cost_ratio"] for s in seeds for b in levels)
        roi = np.mean([get(m, s)["per_budget"][b]["roi"] for s in seeds for b in levels])
        pat = [
            sum(get(m, s)["per_budget"][b][k] for s in seeds for b in levels)
            for k in ("spike", "front_or_back", "underspend")
        ]
        n_ep = sum(get(m, s)["per_budget"][b]["episodes"] for s in seeds for b in levels)
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {_ms(per_seed)} | {np.mean(cr):.3f} ({crmax:.3f}) | "
                     f"{roi:.3f} | {pat[0]} / {pat[1]} / {pat[2]} of {n_ep} |")  # fmt: skip
    # seed-paired Pearl - DiffBid, relative to DiffBid, averaged over budget levels
    rel = []
    for s in seeds:
        rel.append(
            np.mean(
                [
                    get("Pearl", s)["per_budget"][b]["gmv"] / get("DiffBid", s)["per_budget"][b]["gmv"] - 1
                    for b in levels
                ]
            )
        )
    rel = np.asarray(rel) * 100
    se = rel.std(ddof=1) / np.sqrt(len(rel)) if len(rel) > 1 else float("nan")
    within = all(
        get("Pearl", s)["per_budget"][b]["max_cost_ratio"] <= 1.0 + 1e-9 for s in seeds for b in levels
    )
    met = rel.mean() >= 3.0 and within and rel.mean() > 2 * se
    auc_ood = [get("Pearl", s)["auc"]["ood"] for s in seeds]
    auc_iid = [get("Pearl", s)["auc"]["iid"] for s in seeds]
    goal1 = (f"Goal: Pearl GMV over DiffBid (seed-paired, mean over budget levels) {rel.mean():+.2f}% ± {se:.2f}% SE "
             f"over {len(rel)} seeds, cost within budget: {'yes' if within else 'no'}; goal (>= +3%, > 2 SE, within "
             f"budget): **{'met' if met else 'missed'}**")  # fmt: skip
    goal2 = (f"Goal: evaluator pair-wise AUC on held-out OOD trajectory pairs {np.nanmean(auc_ood):.3f} ± "
             f"{np.nanstd(auc_ood):.3f} (in-distribution {np.nanmean(auc_iid):.3f}); goal >= 0.8: "
             f"**{'met' if np.nanmean(auc_ood) >= 0.8 else 'missed'}**")  # fmt: skip
    ab_lines = ["| variant | mean GMV | OOD AUC | seeds |", "|---|---|---|---|"]
    abl_seeds = sorted({sp.seed for sp in ab.values()})
    for name in ["Pearl", *ABLATIONS]:

        def src(s, n=name):
            return res[f"{n}/s{s}"]

        g = [np.mean([src(s)["per_budget"][b]["gmv"] for b in levels]) for s in abl_seeds]
        a = [src(s)["auc"]["ood"] for s in abl_seeds]
        ab_lines.append(f"| {name} | {_ms(g)} | {np.nanmean(a):.3f} | {', '.join(map(str, abl_seeds))} |")
    sp = (f"Simulator speed: {speed['vec_auctions_per_s']:.0f} auctions/s vectorised vs "
          f"{speed['loop_auctions_per_s']:.0f} plain loop (ratio {speed['ratio']:.1f}x, one step of 300 impressions x "
          f"10 advertisers with budgets binding); one AuctionNet-scale episode ({speed['an_agents']} advertisers, "
          f"{speed['an_impressions']} impressions, 48 steps, heuristic bidders): {speed['an_episode_s']:.1f} s.")  # fmt: skip
    s0 = main[0]
    setup = (f"Setup: {len(seeds)} training seeds ({', '.join(map(str, seeds))}); per seed {s0.data.n_episodes} "
             f"episodes x {s0.sim.n_advertisers} advertisers of offline data; test episodes (seeds "
             f"{', '.join(map(str, s0.test_seeds))}) per budget level, agent in slot 0 against behaviour-policy "
             f"competitors. Simulator: {describe(s0.sim, ['n_advertisers', 'n_steps', 'n_impressions', 'auction'])}. "
             f"Pearl: {describe(s0.pearl, ['search_steps', 'rollouts', 'beta2', 'beta3', 'gradient', 'search_lr'])}; "
             f"planner {describe(s0.pearl.planner, ['d_model', 'n_layers', 'bc_steps', 'sigma'])}; evaluator "
             f"{describe(s0.pearl.evaluator, ['steps', 'beta1', 'beta4', 'bt_scale'])}. DiffBid: "
             f"{describe(s0.diffbid, ['steps', 'n_diffusion', 'channels', 'guidance'])}. DT: "
             f"{describe(s0.dt, ['steps', 'd_model'])}. {machine_line(meta)}.")  # fmt: skip
    table = "\n".join(lines)
    page = "\n\n".join([setup, table, goal1, goal2, "Ablations (Pearl variants):", "\n".join(ab_lines), sp])
    summary = "\n\n".join([table, goal1, goal2, sp])
    return page, summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_runner_args(parser)
    args = parser.parse_args(argv)
    exp = Experiment.from_args("pearl", args, code=("mercato.core", "mercato.pearl"))
    main_specs, ab = specs(args.quick)
    runs = [
        Run(f"{sp.method}/s{sp.seed}", fit_one, sp, None, group=f"{sp.method}/s{sp.seed}")
        for sp in main_specs
    ]
    runs += [Run(name, fit_one, sp, None, group=name) for name, sp in ab.items()]
    sspec = SpeedSpec(an_impressions=20000, an_agents=12) if args.quick else SpeedSpec()
    runs.append(Run("speed", speed_one, sspec, None))
    res = exp.run(runs)
    if exp.complete:
        page, summary = render(res, main_specs, ab, res["speed"], exp.all_meta())
        print(page)
        exp.report({"docs/pearl.md": {"pearl-main": page}, "docs/results.md": {"pearl": summary}})
    return 0


if __name__ == "__main__":
    sys.exit(main())

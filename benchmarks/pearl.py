"""AIGB-Pearl benchmark: GMV / cost / ROI per budget level for Pearl and its baselines, pathologies, the
seed-paired Pearl-vs-DiffBid difference, evaluator AUC on held-out trajectories, ablations, simulator speed.

    python benchmarks/pearl.py --part validation   # one tuning round of the policy search (validation episodes)
    python benchmarks/pearl.py                     # the test run (resumable: cached runs are served)
    python benchmarks/pearl.py --quick             # smoke run of both parts, under runs/bench/pearl-quick/

The validation part trains on the training seeds 0 and 1 and scores on validation episodes 1000-1001; the
test part reports on episodes 2000-2001, never looked at when choosing.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from mercato.core.experiments import Experiment, Run, add_runner_args, describe, machine_line
from mercato.pearl.bench import (
    METHODS,
    MethodSpec,
    SearchGrid,
    SpeedSpec,
    fit_one,
    speed_one,
    validate_search,
)
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
TEST_SEEDS = (
    2000,
    2001,
    2002,
    2003,
)  # test episodes; the search settings were chosen on validation episodes 1000-1001
VALIDATION_SEEDS = (1000, 1001)
VALIDATION_TRAIN_SEEDS = (0, 1)
# the tuning round's grid (policy search only; the warm start is shared): name -> PearlConfig overrides
SEARCH_GRID = (
    ("reinforce, 10 steps, lr 3e-4", (("gradient", "reinforce"), ("search_steps", 10), ("search_lr", 3e-4))),
    ("reinforce, 40 steps, lr 3e-4", (("gradient", "reinforce"), ("search_steps", 40), ("search_lr", 3e-4))),
    ("reinforce, 40 steps, lr 1e-3", (("gradient", "reinforce"), ("search_steps", 40), ("search_lr", 1e-3))),
    ("pathwise, 10 steps, lr 3e-4", (("gradient", "pathwise"), ("search_steps", 10), ("search_lr", 3e-4))),
    ("pathwise, 40 steps, lr 3e-4", (("gradient", "pathwise"), ("search_steps", 40), ("search_lr", 3e-4))),
    ("pathwise, 40 steps, lr 1e-3", (("gradient", "pathwise"), ("search_steps", 40), ("search_lr", 1e-3))),
)
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
        # the library defaults: what a user gets
        sim, data, pearl = SimConfig(), DataConfig(), PearlConfig()
        diff, dt = DiffBidConfig(), DTConfig()
        seeds, abl, tests = SEEDS, ABLATION_SEEDS, TEST_SEEDS
    base = dict(sim=sim, data=data, pearl=pearl, diffbid=diff, dt=dt)
    from mercato.pearl.config import BCConfig, IQLConfig

    base.update(bc=BCConfig(steps=20), iql=IQLConfig(steps=20)) if quick else base.update(
        bc=BCConfig(), iql=IQLConfig()
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
    goal1 = (f"Goal: Pearl GMV over DiffBid (seed-paired, mean over budget levels) {rel.mean():+.2f}% ± {se:.2f}% SE "
             f"over {len(rel)} seeds, cost within budget: {'yes' if within else 'no'}; goal (>= +3%, > 2 SE, within "
             f"budget): **{'met' if met else 'missed'}**")  # fmt: skip
    auc = {k: [get("Pearl", s)["auc"][k] for s in seeds] for k in ("cv", "policy", "iid")}
    goal2 = (f"Goal: evaluator pair-wise AUC on held-out trajectories (5-fold cross-validation over episodes, the "
             f"paper's protocol; pairs within a budget level) {np.mean(auc['cv']):.3f} ± {np.std(auc['cv']):.3f} over "
             f"{len(seeds)} seeds; goal >= 0.8: **{'met' if np.mean(auc['cv']) >= 0.8 else 'missed'}**. "
             f"Stricter: on a behaviour policy held out of training (online LP, held-out episodes) "
             f"{np.mean(auc['policy']):.3f} ± {np.std(auc['policy']):.3f}; in-distribution policies of the same "
             f"episodes {np.mean(auc['iid']):.3f}.")  # fmt: skip
    ab_lines = [
        "| variant | mean GMV | AUC (5-fold CV) | AUC (held-out policy) | seeds |",
        "|---|---|---|---|---|",
    ]
    abl_seeds = sorted({sp.seed for sp in ab.values()})
    for name in ["Pearl", *ABLATIONS]:

        def src(s, n=name):
            return res[f"{n}/s{s}"]

        g = [np.mean([src(s)["per_budget"][b]["gmv"] for b in levels]) for s in abl_seeds]
        a = [src(s)["auc"]["cv"] for s in abl_seeds]
        ap = [src(s)["auc"]["policy"] for s in abl_seeds]
        ab_lines.append(f"| {name} | {_ms(g)} | {np.nanmean(a):.3f} | {np.nanmean(ap):.3f} | "
                        f"{', '.join(map(str, abl_seeds))} |")  # fmt: skip
    sp = (f"Simulator speed: {speed['vec_auctions_per_s']:.0f} auctions/s vectorised vs "
          f"{speed['loop_auctions_per_s']:.0f} plain loop (ratio {speed['ratio']:.1f}x; the auctions of one episode, "
          f"{speed['episode_impressions']} impressions x {speed['episode_agents']} advertisers over "
          f"{speed['episode_steps']} steps, fixed bid scales, {speed['exhausted']} of {speed['episode_agents']} "
          f"advertisers spent at least 95% of their budget, the same "
          f"costs: {'yes' if speed['same_costs'] else 'NO'}); one AuctionNet-scale episode ({speed['an_agents']} advertisers, "
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


def validation_specs(quick: bool) -> list[SearchGrid]:
    main, _ = specs(quick)
    base = next(sp for sp in main if sp.method == "Pearl")
    seeds = (0,) if quick else VALIDATION_TRAIN_SEEDS
    tests = (1000,) if quick else VALIDATION_SEEDS
    grid = SEARCH_GRID[:2] if quick else SEARCH_GRID
    # the grid's settings replace the test part's: its search steps, learning rate and gradient
    return [SearchGrid(dataclasses.replace(base, seed=s, test_seeds=tests), grid) for s in seeds]


def render_validation(res: dict, grids: list[SearchGrid], meta: list) -> str:
    levels = [f"{b:g}" for b in grids[0].spec.sim.budget_levels]
    seeds = [g.spec.seed for g in grids]
    names = list(res[f"validation/s{seeds[0]}"]["variants"])
    lines = ["| search setting | " + " | ".join(f"GMV B={b}" for b in levels) + " | mean GMV | cost/B |",
             "|---" * (len(levels) + 3) + "|"]  # fmt: skip
    score = {}
    for n in names:
        per = [res[f"validation/s{s}"]["variants"][n] for s in seeds]
        cells = [_ms([p[b]["gmv"] for p in per]) for b in levels]
        mean = [np.mean([p[b]["gmv"] for b in levels]) for p in per]
        cr = np.mean([p[b]["cost_ratio"] for p in per for b in levels])
        score[n] = float(np.mean(mean))
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {_ms(mean)} | {cr:.3f} |")
    best = max((n for n in names if n != "BC warm start"), key=score.get)
    g0 = grids[0].spec
    setup = (
        f"Validation round (training seeds {', '.join(map(str, seeds))}; validation episodes "
        f"{', '.join(map(str, g0.test_seeds))} at every budget level; every setting starts from the same "
        f"evaluator, inverse dynamics and conditional-BC warm start of its seed; the other Pearl settings as "
        f"in the test run: {describe(g0.pearl, ['rollouts', 'beta2', 'beta3'])}). {machine_line(meta)}."
    )
    chosen = f"Chosen (highest mean validation GMV): **{best}** ({score[best]:.1f}; BC warm start {score['BC warm start']:.1f})."
    return "\n\n".join([setup, "\n".join(lines), chosen])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_runner_args(parser)
    parser.add_argument(
        "--part", choices=["test", "validation"], default="test", help="which part (default test)"
    )
    args = parser.parse_args(argv)
    exp = Experiment.from_args("pearl", args, code=("mercato.core", "mercato.pearl"))
    parts = ["validation", "test"] if args.quick else [args.part]
    runs: list[Run] = []
    grids = validation_specs(args.quick)
    if "validation" in parts:
        runs += [Run(f"validation/s{g.spec.seed}", validate_search, g, None) for g in grids]
    main_specs, ab = specs(args.quick)
    if "test" in parts:
        runs += [
            Run(f"{sp.method}/s{sp.seed}", fit_one, sp, None, group=f"{sp.method}/s{sp.seed}")
            for sp in main_specs
        ]
        runs += [Run(name, fit_one, sp, None, group=name) for name, sp in ab.items()]
        sspec = (
            SpeedSpec(episode_impressions=2000, episode_steps=24, an_impressions=20000, an_agents=12)
            if args.quick
            else SpeedSpec()
        )
        runs.append(Run("speed", speed_one, sspec, None))
    res = exp.run(runs)
    if not exp.complete:
        return 0
    blocks: dict[str, dict[str, str]] = {"docs/pearl.md": {}}
    if "validation" in parts:
        page = render_validation(res, grids, exp.all_meta())
        print(page)
        blocks["docs/pearl.md"]["pearl-validation"] = page
    if "test" in parts:
        page, summary = render(res, main_specs, ab, res["speed"], exp.all_meta())
        print(page)
        blocks["docs/pearl.md"]["pearl-main"] = page
        blocks["docs/results.md"] = {"pearl": summary}
    exp.report(blocks)
    return 0


if __name__ == "__main__":
    sys.exit(main())

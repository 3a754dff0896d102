"""``mercato pearl simulate | train | eval | bench``.

* ``simulate``: offline trajectories from the behaviour policies -> ``trajectories.parquet`` (schema in
  :mod:`mercato.pearl.data`); ``--episodes``, ``--seed``, simulator keys as ``--key value``.
* ``train``: AIGB-Pearl (Algorithm 1) on ``--data FILE.parquet`` (or freshly simulated data): inverse dynamics,
  evaluator, conditional-BC planner, policy search. Checkpoints after every stage and every ``--save-every``
  search steps; rerun with the same ``--output-dir`` to resume.
* ``eval``: a trained run (``--run-dir``) against PID in the simulator, GMV / cost per budget level.
* ``bench``: ``benchmarks/pearl.py`` (``--quick`` by default; ``--full`` for the full run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mercato.core.checkpoint import load_checkpoint, save_checkpoint
from mercato.core.cli import add_common_args, fail, parse_config, print_table
from mercato.core.config import config_from_dict
from mercato.core.runs import make_run_dir, write_config, write_metrics
from mercato.pearl.config import DataConfig, PearlConfig, SimConfig
from mercato.pearl.data import TrajectoryError, generate, load_parquet, save_parquet
from mercato.pearl.evaluate import evaluate, pathologies
from mercato.pearl.methods import (
    Arrays,
    Evaluator,
    InverseDynamics,
    PearlAgent,
    PIDAgent,
    Planner,
    advertiser_side,
    fit_evaluator,
    fit_invdyn,
    fit_pearl,
    y_targets,
)

__all__ = ["TrainSpec", "main"]


@dataclass
class TrainSpec:
    """Everything ``mercato pearl train`` uses (nested keys on the command line: --pearl.beta2 0.5)."""

    sim: SimConfig = field(default_factory=SimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    pearl: PearlConfig = field(default_factory=PearlConfig)
    seed: int = 0  # training seed


def _simulate(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mercato pearl simulate", description="Simulate offline trajectories."
    )
    parser.add_argument("--episodes", type=int, default=40, help="episodes (x advertisers = trajectories)")
    parser.add_argument("--seed", type=int, default=0)
    add_common_args(parser, SimConfig)
    args, sim = parse_config(parser, argv, SimConfig)
    run = make_run_dir("pearl", args.output_dir)
    d = generate(sim, DataConfig(n_episodes=args.episodes), args.seed)
    save_parquet(d, run / "trajectories.parquet")
    write_config(run, sim)
    rows = [{"policy": p, "trajectories": int((d.policy == p).sum()), "mean_y": float(d.y[d.policy == p].mean()),
             "spent": float((d.cost.sum(1) / d.budget)[d.policy == p].mean())} for p in sorted(set(d.policy))]  # fmt: skip
    write_metrics(run, {"trajectories": d.n, "per_policy": rows})
    print_table(rows)
    print(f"wrote {run / 'trajectories.parquet'}")
    return 0


def _load_data(path: str | None, spec: TrainSpec) -> Any:
    if path is None:
        return generate(spec.sim, spec.data, spec.seed)
    try:
        d = load_parquet(path)
    except TrajectoryError as err:
        fail(str(err))
    if d.T != spec.sim.n_steps:
        fail(
            f"{path}: trajectories have {d.T} steps but sim.n_steps is {spec.sim.n_steps} (pass --sim.n_steps {d.T})"
        )
    return d


def _train(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="mercato pearl train", description="Train AIGB-Pearl (Algorithm 1)."
    )
    parser.add_argument(
        "--data", default=None, help="trajectories.parquet (default: simulate data.n_episodes)"
    )
    parser.add_argument("--save-every", type=int, default=10, help="checkpoint every N policy-search steps")
    add_common_args(parser, PearlConfig)
    args, spec = parse_config(parser, argv, TrainSpec)
    run = make_run_dir("pearl", args.output_dir)
    write_config(run, spec)
    d = _load_data(args.data, spec)
    if args.data is None:
        save_parquet(d, run / "trajectories.parquet")
    arr = Arrays.from_data(d, spec.sim)
    pc = spec.pearl
    inv = InverseDynamics(pc.invdyn.hidden)
    if (run / "invdyn").is_dir():
        inv.load_state_dict(load_checkpoint(run / "invdyn").model_state)
    else:
        inv = fit_invdyn(arr, pc.invdyn, spec.seed, show=True)
        save_checkpoint(run / "invdyn", inv)
    if pc.evaluator.text_embedding:
        fail(
            "evaluator.text_embedding: use the library (mercato.pearl.bench.build_agent); the CLI trains without it"
        )
    side = advertiser_side(d, pc.evaluator)  # the file's attr_* columns, when it has them
    ev = Evaluator(d.T, pc.evaluator.hidden, 0 if side is None else side.shape[1])
    if (run / "evaluator").is_dir():
        ck = load_checkpoint(run / "evaluator")
        ev.load_state_dict(ck.model_state)
        lip_e = float(ck.state["L_e"])
    else:
        ev, lip_e = fit_evaluator(
            arr, pc.evaluator, spec.seed, pc.use_pairwise, pc.use_lipschitz, side, show=True
        )
        save_checkpoint(run / "evaluator", ev, state={"L_e": lip_e})
    start, opt_state = 0, None
    if (run / "planner").is_dir():
        ck = load_checkpoint(run / "planner")
        targets = y_targets(d, pc.y_star_eps, pc.y_star_scope)
        planner = Planner(pc.planner, d.T, max(targets.values()))
        planner.load_state_dict(ck.model_state)
        start, opt_state = int(ck.state["search_step"]), ck.optimizer_state
        ck.restore_rng()
        print(f"resuming policy search at step {start} of {pc.search_steps}")
    else:
        planner, _ = fit_pearl(d, arr, _no_search(pc), spec.seed, ev, inv, show=True, side=side)
        save_checkpoint(run / "planner", planner, state={"search_step": 0})
    live = planner

    def on_step(step: int, rec: dict[str, float], opt: torch.optim.Optimizer) -> None:
        if step % args.save_every == 0 or step == pc.search_steps:
            save_checkpoint(run / "planner", live, opt, state={"search_step": step, **rec})

    planner, info = fit_pearl(d, arr, pc, spec.seed, ev, inv, show=True, on_step=on_step, planner=planner,
                              start_step=start, opt_state=opt_state, side=side)  # fmt: skip
    save_checkpoint(run / "planner", planner, state={"search_step": pc.search_steps})
    write_metrics(run, {"L_e": lip_e, "L_p": info["L_p"], "y_star": info["y_star"], "last": info["trace"],
                        "trajectories": d.n})  # fmt: skip
    print(f"trained AIGB-Pearl in {run} (L_e {lip_e:.4g}, L_p {info['L_p']:.4g})")
    return 0


def _no_search(pc: PearlConfig) -> PearlConfig:
    from dataclasses import replace

    return replace(pc, search_steps=0)


def _eval(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mercato pearl eval", description="Evaluate a trained Pearl run.")
    parser.add_argument("--run-dir", required=True, help="folder written by `mercato pearl train`")
    parser.add_argument("--episodes", type=int, default=4, help="test episodes per budget level")
    parser.add_argument("--seed", type=int, default=2000, help="first test episode seed")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    run = Path(args.run_dir)
    import yaml

    cfg_file = run / "config.yaml"
    if not cfg_file.is_file() or not (run / "planner").is_dir():
        fail(f"{run}: not a trained pearl run (config.yaml or planner/ missing)")
    spec = config_from_dict(TrainSpec, yaml.safe_load(cfg_file.read_text()), source=str(cfg_file))
    if not (run / "metrics.json").is_file():
        fail(f"{run}: metrics.json missing (training did not finish; rerun train to resume)")
    metrics = json.loads((run / "metrics.json").read_text())
    targets = {float(k): float(v) for k, v in metrics["y_star"].items()}
    pc = spec.pearl
    planner = Planner(pc.planner, spec.sim.n_steps, max(targets.values()))
    planner.load_state_dict(load_checkpoint(run / "planner").model_state)
    inv = InverseDynamics(pc.invdyn.hidden)
    inv.load_state_dict(load_checkpoint(run / "invdyn").model_state)
    seeds = list(range(args.seed, args.seed + args.episodes))
    rows = []
    for name, agent in (
        ("Pearl", PearlAgent(planner.eval(), inv.eval(), targets)),
        ("PID", PIDAgent(T=spec.sim.n_steps)),
    ):
        for b in spec.sim.budget_levels:
            st = evaluate(agent, spec.sim, seeds, b, behaviour=spec.data)
            flags = pathologies(st.step_cost, st.budget)
            rows.append({"method": name, "budget": b, "gmv": float(st.gmv.mean()),
                         "cost_ratio": float((st.cost / st.budget).mean()), "roi": float(st.gmv.sum() / max(st.cost.sum(), 1e-9)),
                         "underspend": int(flags["underspend"].sum())})  # fmt: skip
    write_metrics(run, {"eval": rows, "seeds": seeds}, name="eval.json")
    print_table(rows)
    return 0


def _bench(argv: list[str]) -> int:
    script = Path(__file__).resolve().parents[3] / "benchmarks" / "pearl.py"
    if not script.is_file():
        fail(f"{script}: benchmark script not found (run from a source checkout)")
    extra = [a for a in argv if a != "--full"]
    if "--full" not in argv and "--quick" not in extra:
        extra = ["--quick", *extra]
    return subprocess.call([sys.executable, str(script), *extra])


_VERBS = {"simulate": _simulate, "train": _train, "eval": _eval, "bench": _bench}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: mercato pearl {simulate,train,eval,bench} [options]\n\n" + (__doc__ or ""))
        return 0
    verb, rest = argv[0], argv[1:]
    if verb not in _VERBS:
        print(f"mercato pearl: error: unknown verb '{verb}'; valid: {', '.join(_VERBS)}", file=sys.stderr)
        return 2
    return _VERBS[verb](rest)

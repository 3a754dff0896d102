"""``mercato evolvesignal evaluate | evolve | bench``.

* ``evaluate PROGRAM.py``: run the program in the sandbox on the scenarios and score its plans in SUMO (or
  ``--evaluation.fitness surrogate``); prints the metrics as JSON.
* ``evolve``: the island / MAP-Elites search from the Webster seed (or ``--initial PROGRAM.py``); progress per
  generation, ``best_program.py``, ``history.json`` and ``search_curve.png`` in ``--output-dir``; rerunning with
  the same ``--output-dir`` resumes from its ``checkpoint.json``.
* ``bench``: run ``benchmarks/evolvesignal.py --quick``.

Config keys are the fields of :class:`~mercato.evolvesignal.config.SearchConfig` (``--iterations 10``,
``--evaluation.sim.backend traci``, ``--evaluation.sim.horizon_s 600``), or a YAML file via ``--config``.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from mercato.core.config import ConfigError, load_config
from mercato.core.plots import save_line_plot
from mercato.core.progress import progress
from mercato.core.runs import atomic_write_text, make_run_dir, write_config, write_metrics

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _read_program(path: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: program file not found")
    return p.read_text()


def _evaluate(args: argparse.Namespace, rest: list[str]) -> int:
    from mercato.evolvesignal.config import SearchConfig
    from mercato.evolvesignal.evaluate import evaluate_program

    cfg = load_config(SearchConfig, args.config, rest)
    res = evaluate_program(_read_program(args.program), cfg.evaluation)
    print(json.dumps(res, indent=2, default=float))
    return 0 if res["ok"] else 1


def _evolve(args: argparse.Namespace, rest: list[str]) -> int:
    from mercato.evolvesignal.config import SearchConfig
    from mercato.evolvesignal.programs import WEBSTER_PROGRAM
    from mercato.evolvesignal.search import Search

    cfg = load_config(SearchConfig, args.config, rest)
    initial = _read_program(args.initial) if args.initial else WEBSTER_PROGRAM
    run_dir = make_run_dir("evolvesignal", args.output_dir)
    write_config(run_dir, cfg)
    search = Search(cfg, initial)
    bar = progress(total=cfg.iterations, desc="generations")

    def report(s: Search) -> None:
        b = s.best()
        bar.n = s.generation
        bar.set_postfix(best=f"{b['score']:.4f}", delay=f"{b['delay']:.1f}", stops=f"{b['stops']:.2f}")
        bar.refresh()
        _write_outputs(run_dir, s)

    best = search.run(run_dir / "checkpoint.json", callback=report)
    bar.close()
    _write_outputs(run_dir, search)
    print(
        json.dumps(
            {k: best[k] for k in ("id", "score", "delay", "stops", "mean_cycle")} | {"run_dir": str(run_dir)},
            indent=2,
        )
    )
    return 0


def _write_outputs(run_dir: Path, s: Any) -> None:
    b = s.best()
    atomic_write_text(run_dir / "best_program.py", b["code"])
    hist = s.history
    write_metrics(
        run_dir,
        {k: b[k] for k in ("id", "score", "delay", "stops", "mean_cycle")}
        | {"generation": s.generation, "edits": s.edits, "counts": s.counts},
    )
    atomic_write_text(run_dir / "history.json", json.dumps(hist, indent=2))
    save_line_plot(
        run_dir / "search_curve.png",
        {"best so far": ([h["generation"] for h in hist], [h["best_score"] for h in hist])},
        xlabel="generation",
        ylabel="fitness",
        title="EvolveSignal search",
    )


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(
        prog="mercato evolvesignal", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="verb", required=True)
    ev = sub.add_parser("evaluate", help="metrics of one program as JSON")
    ev.add_argument("program")
    ev.add_argument("--config", default=None)
    evo = sub.add_parser("evolve", help="program search (resumable)")
    evo.add_argument("--initial", default=None, help="seed program (default: the Webster program)")
    evo.add_argument("--output-dir", default=None)
    evo.add_argument("--config", default=None)
    sub.add_parser("bench", help="benchmarks/evolvesignal.py --quick")
    args, rest = parser.parse_known_args(argv)
    try:
        if args.verb == "evaluate":
            return _evaluate(args, rest)
        if args.verb == "evolve":
            return _evolve(args, rest)
        script = Path(__file__).resolve().parents[3] / "benchmarks" / "evolvesignal.py"
        return subprocess.call([sys.executable, str(script), "--quick", *rest])
    except ConfigError as err:
        print(f"mercato evolvesignal: error: {err}", file=sys.stderr)
        return 2

"""ISA-DRE on the problem suite (mercato.isadre.suite), every estimator with package defaults.

    python benchmarks/isadre_suite.py [--quick] [--shard i/2] [--workers 1]

Runs are declared here; the problems and the run function live in mercato.isadre.suite. Test seeds only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from mercato.core.experiments import Experiment, Run, add_runner_args, machine_line
from mercato.isadre.suite import SuiteMethod, run_problem, suite_specs

ROWS = [
    ("ISA-DRE 1 step", "isadre", "1"),
    ("ISA-DRE 2 steps", "isadre", "2"),
    ("ISA-DRE 4 steps", "isadre", "4"),
    ("DRE-inf 100 steps", "dre_inf", "100"),
    ("classifier", "classifier", "1"),
]


def methods(quick: bool) -> dict[str, SuiteMethod]:
    n_eval = 2000 if quick else 10_000
    return {
        "isadre": SuiteMethod("isadre", (1, 2, 4), n_eval, quick),
        "dre_inf": SuiteMethod("dre_inf", (100,), n_eval, quick),
        "classifier": SuiteMethod("classifier", (1,), n_eval, quick),
    }


def render(
    results: dict[str, dict[str, Any]], specs: list, meths: dict[str, SuiteMethod], meta: list
) -> tuple[str, str]:
    problems = sorted({s.name for s in specs}, key=lambda n: [s.name for s in specs].index(n))
    head = (
        "| problem | true KL | Var[log r] | "
        + " | ".join(r[0] for r in ROWS)
        + " | fit s (ISA / inf / clf) |"
    )
    lines = [head, "|" + "---|" * (len(ROWS) + 4)]
    wins_inf = 0
    big_ok, big_n = 0, 0
    for prob in problems:
        seeds = [s for s in specs if s.name == prob]

        def mean(m: str, k: str, key: str, seeds: list = seeds) -> float:
            vals = [results[f"{m}/{s.name}/s{s.seed}"]["steps"][k][key] for s in seeds]
            return sum(vals) / len(vals)

        def meanf(m: str, key: str, seeds: list = seeds) -> float:
            vals = [results[f"{m}/{s.name}/s{s.seed}"][key] for s in seeds]
            return sum(v for v in vals if v is not None) / len(vals) if vals[0] is not None else float("nan")

        kl = meanf("dre_inf", "kl")
        var = meanf("classifier", "true_var")
        cells = [f"{mean(m, k, 'mse'):.3g} ({mean(m, k, 'nmse'):.2f})" for _, m, k in ROWS]
        isa, inf, clf = (
            mean("isadre", "1", "mse"),
            mean("dre_inf", "100", "mse"),
            mean("classifier", "1", "mse"),
        )
        wins_inf += isa <= 1.1 * inf
        if kl == kl and kl > 10:
            big_n += 1
            big_ok += isa <= clf
        fits = " / ".join(f"{meanf(m, 'fit_s'):.1f}" for m in ("isadre", "dre_inf", "classifier"))
        lines.append(f"| {prob} | {kl:.3g} | {var:.3g} | " + " | ".join(cells) + f" | {fits} |")
    share = wins_inf / len(problems)
    met = share >= 0.8 and big_ok == big_n
    goal = (
        f"Goal: {'met' if met else 'missed'}: ISA-DRE 1 step within 1.1x of DRE-inf 100 steps on "
        f"{wins_inf}/{len(problems)} problems ({share:.0%}, needed 80%); no worse than the classifier on "
        f"{big_ok}/{big_n} problems with a closed-form KL above 10 nats."
    )
    smoke = next(iter(meths.values())).smoke
    which = (
        "Smoke settings (--quick: tiny networks, 30 steps), not the package defaults"
        if smoke
        else ("Package defaults for every estimator")
    )
    setup = (
        f"{which}; log-ratio MSE (MSE / Var[true log r]) on "
        f"{next(iter(meths.values())).n_eval} test points, mean over test seeds {sorted({s.seed for s in specs})}. "
        f"{machine_line(meta)}"
    )
    table = setup + "\n\n" + "\n".join(lines) + "\n\n" + goal
    return table, goal


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_runner_args(parser)
    args = parser.parse_args(argv)
    exp = Experiment.from_args("isadre_suite", args, code=("mercato.core", "mercato.isadre"))
    specs = suite_specs("test", quick=args.quick)
    meths = methods(args.quick)
    runs = [
        Run(f"{m}/{s.name}/s{s.seed}", run_problem, meth, s, group=f"{s.name}/s{s.seed}")
        for s in specs
        for m, meth in meths.items()
    ]
    results = exp.run(runs, desc="isadre_suite")
    if exp.complete:
        table, goal = render(results, specs, meths, exp.all_meta())
        exp.report({"docs/isadre.md": {"isadre-suite": table}, "docs/results.md": {"isadre-suite": table}})
        print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

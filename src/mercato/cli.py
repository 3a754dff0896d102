"""``mercato <command> ...``: one literal table of subcommands, each importing its system lazily.

Each system owns ``mercato/<system>/cli.py`` with ``main(argv: list[str]) -> int``; adding a system adds
one line to ``COMMANDS``. Imports are lazy so that ``mercato --help`` stays instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


def _demo(argv: list[str]) -> int:
    from mercato.demo import main

    return main(argv)


def _ctr(argv: list[str]) -> int:
    from mercato.ctr.cli import main

    return main(argv)


def _fat(argv: list[str]) -> int:
    from mercato.fat.cli import main

    return main(argv)


def _reczero(argv: list[str]) -> int:
    from mercato.reczero.cli import main

    return main(argv)


def _mal(argv: list[str]) -> int:
    from mercato.mal.cli import main

    return main(argv)


def _aif(argv: list[str]) -> int:
    from mercato.aif.cli import main

    return main(argv)


def _isadre(argv: list[str]) -> int:
    from mercato.isadre.cli import main

    return main(argv)


def _pearl(argv: list[str]) -> int:
    from mercato.pearl.cli import main

    return main(argv)


def _evolvesignal(argv: list[str]) -> int:
    from mercato.evolvesignal.cli import main

    return main(argv)


COMMANDS: dict[str, tuple[str, Callable[[list[str]], int]]] = {
    "demo": ("run a short end-to-end job of every system on the embedded default data", _demo),
    "ctr": ("CTR baselines (LR, FM, DeepFM, DCNv2, ...): train | eval", _ctr),
    "fat": ("FAT, Field-Aware Transformer for CTR: train | eval | bench", _fat),
    "reczero": ("RecZero / RecOne, LLM rating prediction with GRPO: sft | train | eval | bench", _reczero),
    "mal": ("MAL, multi-attribution CVR: simulate | train | eval | attribute | pymal | bench", _mal),
    "aif": ("AIF, asynchronous pre-ranking with a nearline item store: train | serve | bench", _aif),
    "isadre": ("ISA-DRE, density-ratio estimation by secant alignment: fit | eval | bench", _isadre),
    "evolvesignal": (
        "EvolveSignal, evolved fixed-time signal timing in SUMO: evaluate | evolve | bench",
        _evolvesignal,
    ),
    "pearl": (
        "AIGB-Pearl, generative auto-bidding with an offline evaluator: simulate | train | eval | bench",
        _pearl,
    ),
}


def usage() -> str:
    """The top-level help text."""
    width = max(len(name) for name in COMMANDS)
    lines = [
        "usage: mercato <command> [options]   (mercato <command> --help for its options)",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (help_, _) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mercato`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if args[0] in ("-V", "--version"):
        from mercato import __version__

        print(f"mercato {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(
            f"mercato: error: unknown command '{name}'; valid commands: {', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    return COMMANDS[name][1](rest)


if __name__ == "__main__":
    raise SystemExit(main())

"""MkDocs hook: renders the home page's systems table from the pages that exist in ``docs/``.

``docs/index.md`` holds the marker ``<!-- mercato:systems -->``; this hook replaces it with one row per system.
A system whose page (``docs/<page>.md``) exists links to it; one whose page is not written yet is listed as
plain text, so the home page never links to a missing page and a new page needs no edit here to be linked.
Pages in ``docs/`` that no row names are listed under the table, so nothing is left out.
"""

from __future__ import annotations

from typing import Any

MARKER = "<!-- mercato:systems -->"

# (system, subpackage, job it does for a user, page in docs/)
SYSTEMS: tuple[tuple[str, str, str, str], ...] = (
    (
        "Foundation: CTR substrate",
        "`mercato.core`, `mercato.data`, `mercato.ctr`",
        "strict configs, metrics, checkpoints, experiment runner; MovieLens / Open Bandit / price loaders; "
        "CTR schema, LR / FM / DeepFM / DCNv2 / AutoInt / Transformer baselines and trainer",
        "ctr.md",
    ),
    (
        "FAT",
        "`mercato.fat`",
        "Field-Aware Transformer for CTR: field-decomposed attention, cross-field modulation, "
        "basis-composed hypernetwork, scaling-law study",
        "fat.md",
    ),
    (
        "RecZero / RecOne",
        "`mercato.reczero`, `mercato.llm`",
        "rating prediction by an LLM trained with GRPO (and SFT cold start) on a think-before-recommend template",
        "reczero.md",
    ),
    (
        "ISA-DRE",
        "`mercato.isadre`",
        "density-ratio estimation by secant alignment, any-step, no numerical integration",
        "isadre.md",
    ),
    (
        "MAL",
        "`mercato.mal`",
        "multi-attribution CVR learning and attribution-label generation",
        "mal.md",
    ),
    (
        "AIF",
        "`mercato.aif`",
        "pre-ranking model split into user / item / interaction parts, with an asynchronous serving runtime",
        "aif.md",
    ),
    (
        "AIGB-Pearl",
        "`mercato.pearl`",
        "generative auto-bidding: planner, offline trajectory evaluator and policy search in an auction simulator",
        "pearl.md",
    ),
    (
        "EvolveSignal",
        "`mercato.evolvesignal`",
        "evolutionary program search for fixed-time traffic-signal timing, evaluated in SUMO",
        "evolvesignal.md",
    ),
    (
        "MOON Embedding + MOON2.0",
        "`mercato.moon`",
        "multimodal (image + text) product embeddings trained contrastively; retrieval; CTR features",
        "moon.md",
    ),
    (
        "FinZero",
        "`mercato.finzero`",
        "price-chart forecasting with uncertainty by a model fine-tuned with UARPO",
        "finzero.md",
    ),
)


def systems_table(existing: set[str]) -> str:
    """The Markdown systems table; ``existing`` holds the page paths (``"fat.md"``) present in ``docs/``."""
    rows = ["| system | subpackage | what it does | page |", "| --- | --- | --- | --- |"]
    for name, package, job, page in SYSTEMS:
        link = f"[{page[:-3]}]({page})" if page in existing else "not written yet"
        rows.append(f"| {name} | {package} | {job} | {link} |")
    named = {page for *_, page in SYSTEMS} | {"index.md", "results.md"}
    others = sorted(p for p in existing if p.endswith(".md") and "/" not in p and p not in named)
    if others:
        rows.append("")
        rows.append("Other pages: " + ", ".join(f"[{p[:-3]}]({p})" for p in others) + ".")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """Replace the marker on the home page with the table (MkDocs hook event)."""
    if page.file.src_uri != "index.md":
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"docs/index.md: the marker {MARKER!r} is missing; the systems table goes there")
    existing = {f.src_uri for f in files.documentation_pages()}
    return markdown.replace(MARKER, systems_table(existing))

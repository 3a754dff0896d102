"""Attribution rules: how one conversion's credit is split over the clicks of its path.

Rule-based rules (``first_click``, ``last_click``, ``linear``, ``position_based``, ``time_decay``) take the
click times of one path and the conversion time, keep the clicks inside the attribution window
``conv_time - window <= t <= conv_time`` and return one credit per click (clicks outside the window get 0).
The credits of a path with at least one click in the window sum to 1; a path with none gets all zeros.
Ties in time are broken by input order (a log's sequence number): the earlier row is the earlier click.

Data-driven rules work on aggregated channel paths (``paths``: channel sequences, ``conversions`` and
``nulls`` per path, the layout of ChannelAttribution's ``Data.csv``) and return one value per channel:
``markov`` (first-order removal effect, states start / channels / conversion / null) and ``shapley``
(exact Shapley values of a coalition game over channels). ``path_credits`` turns channel values into one
path's per-click credits (the ``mta`` label). Digest: ``../shared/papers/ctr.md`` §3.2; MAL paper Table 1.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "RULES",
    "PathFileSpec",
    "attribution_shares",
    "first_click",
    "in_window",
    "last_click",
    "linear",
    "markov",
    "markov_conversion_probability",
    "channel_shares",
    "path_credits",
    "read_path_file",
    "position_based",
    "shapley",
    "time_decay",
]


def in_window(times: ArrayLike, conv_time: float, window: float | None = None) -> np.ndarray:
    """Mask of the clicks that may take credit: ``t <= conv_time`` and ``conv_time - t <= window``.

    ``window=None`` means an unbounded window (every click before the conversion counts).
    """
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {t.shape}")
    if window is not None and window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    mask = t <= conv_time
    if window is not None:
        mask &= conv_time - t <= window
    return mask


def _order(times: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Indices of the in-window clicks sorted by time, ties by input order (stable sort)."""
    idx = np.flatnonzero(mask)
    return idx[np.argsort(times[idx], kind="stable")]


def first_click(times: ArrayLike, conv_time: float, window: float | None = None) -> np.ndarray:
    """First-Click: credit 1 to the earliest click in the window (label ``1[t = 1]``, §3.2)."""
    t = np.asarray(times, dtype=np.float64)
    out = np.zeros(len(t))
    order = _order(t, in_window(t, conv_time, window))
    if len(order):
        out[order[0]] = 1.0
    return out


def last_click(times: ArrayLike, conv_time: float, window: float | None = None) -> np.ndarray:
    """Last-Click: credit 1 to the latest click in the window (label ``1[t = T]``, §3.2)."""
    t = np.asarray(times, dtype=np.float64)
    out = np.zeros(len(t))
    order = _order(t, in_window(t, conv_time, window))
    if len(order):
        out[order[-1]] = 1.0
    return out


def linear(times: ArrayLike, conv_time: float, window: float | None = None) -> np.ndarray:
    """Linear: credit ``1/T`` to each of the T clicks in the window (§3.2)."""
    t = np.asarray(times, dtype=np.float64)
    mask = in_window(t, conv_time, window)
    n = int(mask.sum())
    return mask / n if n else np.zeros(len(t))


def position_based(
    times: ArrayLike,
    conv_time: float,
    window: float | None = None,
    first_share: float = 0.4,
    last_share: float = 0.4,
) -> np.ndarray:
    """U-shaped: ``first_share`` to the first click, ``last_share`` to the last, the rest split evenly.

    One click gets 1; two clicks split ``first_share : last_share`` renormalised to 1 (0.5 / 0.5 by default).
    """
    if first_share < 0 or last_share < 0 or first_share + last_share > 1:
        raise ValueError(
            "position_based needs first_share, last_share >= 0 with first_share + last_share <= 1"
        )
    t = np.asarray(times, dtype=np.float64)
    out = np.zeros(len(t))
    order = _order(t, in_window(t, conv_time, window))
    n = len(order)
    if n == 1:
        out[order[0]] = 1.0
    elif n == 2:
        total = first_share + last_share
        out[order[0]] = first_share / total if total else 0.5
        out[order[1]] = last_share / total if total else 0.5
    elif n > 2:
        out[order[1:-1]] = (1.0 - first_share - last_share) / (n - 2)
        out[order[0]] = first_share
        out[order[-1]] = last_share
    return out


def time_decay(
    times: ArrayLike, conv_time: float, window: float | None = None, half_life: float = 7.0
) -> np.ndarray:
    """Time decay: weight ``2^{-(conv_time - t) / half_life}`` per click in the window, normalised to 1."""
    if half_life <= 0:
        raise ValueError(f"half_life must be > 0, got {half_life}")
    t = np.asarray(times, dtype=np.float64)
    mask = in_window(t, conv_time, window)
    w = np.where(mask, np.exp2(-(conv_time - t) / half_life), 0.0)
    s = w.sum()
    return w / s if s > 0 else w


RULES = {
    "first": first_click,
    "last": last_click,
    "linear": linear,
    "position": position_based,
    "time_decay": time_decay,
}


def _check_paths(
    paths: Sequence[Sequence[str]], conversions: ArrayLike, nulls: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    conv = np.asarray(conversions, dtype=np.float64)
    null = np.asarray(nulls, dtype=np.float64)
    if not (len(paths) == len(conv) == len(null)):
        raise ValueError(
            f"paths, conversions and nulls must have one entry per path, got {len(paths)}, {len(conv)}, {len(null)}"
        )
    if (conv < 0).any() or (null < 0).any():
        raise ValueError("conversions and nulls must be >= 0")
    for i, p in enumerate(paths):
        if len(p) == 0:
            raise ValueError(f"path {i} is empty")
    return conv, null


def _absorption(channels: list[str], trans: np.ndarray, removed: int | None) -> float:
    """P(reach conversion | start) for the chain with states [start, channels..., conv, null].

    ``removed``: index (in ``channels``) of a channel whose incoming transitions go to null instead.
    """
    k = len(channels)
    n = k + 1  # transient states: start + channels
    out = trans.sum(axis=1, keepdims=True)
    prob = np.divide(trans, out, out=np.zeros_like(trans), where=out > 0)  # (n, n + 2)
    q = prob[:, :n].copy()  # transient -> transient
    r = prob[:, n].copy()  # transient -> conversion
    if removed is not None:
        s = 1 + removed
        q[:, s] = 0.0  # every arrival into the removed channel is absorbed in null
        q[s, :] = 0.0
        r[s] = 0.0
    # x = Q x + r, x = P(conversion | state)
    x = np.linalg.solve(np.eye(n) - q, r)
    return float(x[0])


def _transitions(
    paths: Sequence[Sequence[str]], conv: np.ndarray, null: np.ndarray
) -> tuple[list[str], np.ndarray]:
    channels = sorted({c for p in paths for c in p})
    pos = {c: 1 + i for i, c in enumerate(channels)}
    k = len(channels)
    trans = np.zeros((k + 1, k + 3))  # rows: start, channels; cols: start, channels, conv, null
    for p, cv, nl in zip(paths, conv, null, strict=True):
        w = cv + nl
        prev = 0
        for c in p:
            trans[prev, pos[c]] += w
            prev = pos[c]
        trans[prev, k + 1] += cv
        trans[prev, k + 2] += nl
    return channels, trans


def markov_conversion_probability(
    paths: Sequence[Sequence[str]], conversions: ArrayLike, nulls: ArrayLike
) -> float:
    """P(conversion) of the first-order Markov chain fitted by counting transitions of all paths."""
    conv, null = _check_paths(paths, conversions, nulls)
    channels, trans = _transitions(paths, conv, null)
    return _absorption(channels, trans, None)


def markov(paths: Sequence[Sequence[str]], conversions: ArrayLike, nulls: ArrayLike) -> dict[str, float]:
    """First-order Markov attribution: conversions credited to each channel by its removal effect.

    Transition counts ``start -> c_1 -> ... -> c_T -> conversion|null`` are weighted by the path's
    conversions + nulls; ``RE_c = 1 - P(conv | c removed) / P(conv)``; channel c receives
    ``RE_c / sum_j RE_j * total conversions`` (Anderl et al. 2016; ChannelAttribution's ``markov_model``).
    Self-loops (``a > a``) do not change absorption probabilities, so they need no special case.
    """
    conv, null = _check_paths(paths, conversions, nulls)
    channels, trans = _transitions(paths, conv, null)
    base = _absorption(channels, trans, None)
    if base <= 0:
        return dict.fromkeys(channels, 0.0)
    removal = np.array([1.0 - _absorption(channels, trans, i) / base for i in range(len(channels))])
    removal = np.clip(removal, 0.0, None)
    total = conv.sum()
    shares = removal / removal.sum() if removal.sum() > 0 else np.zeros_like(removal)
    return {c: float(s * total) for c, s in zip(channels, shares, strict=True)}


def shapley(
    paths: Sequence[Sequence[str]],
    conversions: ArrayLike,
    nulls: ArrayLike,
    value: str = "conversions",
    max_channels: int = 16,
) -> dict[str, float]:
    """Exact Shapley values over channels, scaled so that they add up to the total conversions.

    Coalition value ``v(S)`` over the paths whose set of channels is a subset of S:
    ``value="conversions"``: their conversions (monotone, values >= 0, Zhao et al. 2018);
    ``value="rate"``: their conversions / (conversions + nulls), converting vs non-converting paths
    (a channel that appears mostly on non-converting paths can get a negative value).
    ``phi_c = sum_{S not containing c} |S|! (n-|S|-1)! / n! (v(S + c) - v(S))``.
    """
    if value not in ("conversions", "rate"):
        raise ValueError(f"value must be 'conversions' or 'rate', got {value!r}")
    conv, null = _check_paths(paths, conversions, nulls)
    channels = sorted({c for p in paths for c in p})
    n = len(channels)
    if n > max_channels:
        raise ValueError(
            f"exact Shapley over {n} channels needs 2^{n} coalitions; max_channels={max_channels}"
        )
    bit = {c: 1 << i for i, c in enumerate(channels)}
    masks = np.array([sum(bit[c] for c in set(p)) for p in paths], dtype=np.int64)
    v = np.zeros(1 << n)
    for s in range(1 << n):
        sub = (masks & ~s) == 0
        if value == "conversions":
            v[s] = conv[sub].sum()
        else:
            d = conv[sub].sum() + null[sub].sum()
            v[s] = conv[sub].sum() / d if d > 0 else 0.0
    phi = np.zeros(n)
    fact = [math.factorial(i) for i in range(n + 1)]
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            w = fact[size] * fact[n - size - 1] / fact[n]
            for combo in combinations(others, size):
                s = sum(1 << j for j in combo)
                phi[i] += w * (v[s | (1 << i)] - v[s])
    total_v = v[(1 << n) - 1]
    scale = conv.sum() / total_v if total_v != 0 else 0.0
    return {c: float(p * scale) for c, p in zip(channels, phi, strict=True)}


def path_credits(
    channels: Sequence[str],
    values: Mapping[str, float],
    times: ArrayLike | None = None,
    conv_time: float | None = None,
    window: float | None = None,
) -> np.ndarray:
    """Per-click credit of one converting path from data-driven channel values (the ``mta`` label).

    Each click in the window gets ``max(value[channel], 0)`` normalised over the path's in-window clicks,
    so the credits sum to 1; when every in-window channel has value 0 the path falls back to ``linear``.
    """
    n = len(channels)
    if times is None:
        mask = np.ones(n, dtype=bool)
    else:
        if conv_time is None:
            raise ValueError("path_credits: conv_time is needed with times")
        mask = in_window(times, conv_time, window)
        if len(mask) != n:
            raise ValueError(f"path_credits: {n} channels but {len(mask)} times")
    w = np.array([max(values.get(c, 0.0), 0.0) for c in channels]) * mask
    s = w.sum()
    if s > 0:
        return w / s
    k = mask.sum()
    return mask / k if k else np.zeros(n)


def read_path_file(path: str, sep: str = ">") -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Read an aggregated path file in ChannelAttribution's ``Data.csv`` layout.

    Columns (``;`` or ``,`` separated): ``path`` (channels joined by ``sep``), ``total_conversions``,
    ``total_null`` (``total_conversion_value`` is ignored). Errors name the file, column and row.
    """
    import pandas as pd

    with open(path) as f:
        head = f.readline()
    df = pd.read_csv(path, sep=";" if head.count(";") >= head.count(",") else ",")
    for col in ("path", "total_conversions", "total_null"):
        if col not in df.columns:
            raise ValueError(f"{path}: missing column {col!r} (have {list(df.columns)})")
    conv = pd.to_numeric(df["total_conversions"], errors="coerce").to_numpy(dtype=np.float64)
    null = pd.to_numeric(df["total_null"], errors="coerce").to_numpy(dtype=np.float64)
    for name, arr in (("total_conversions", conv), ("total_null", null)):
        bad = np.flatnonzero(~(arr >= 0))
        if len(bad):
            raise ValueError(f"{path}: column {name!r} row {bad[0]} must be a number >= 0")
    paths = []
    for i, p in enumerate(df["path"].astype(str)):
        chans = [c.strip() for c in p.split(sep) if c.strip()]
        if not chans:
            raise ValueError(f"{path}: column 'path' row {i} is empty")
        paths.append(chans)
    return paths, conv, null


def channel_shares(
    paths: Sequence[Sequence[str]], conversions: ArrayLike, nulls: ArrayLike
) -> dict[str, dict[str, float]]:
    """Conversions credited to each channel by every rule: ``{rule: {channel: conversions}}``.

    Rule-based rules split each path's conversions over its touches (touch k of T at time k, the conversion
    at time T: no window, ``time_decay`` with half-life 1 step); ``markov`` and ``shapley`` are data-driven.
    """
    conv, null = _check_paths(paths, conversions, nulls)
    channels = sorted({c for p in paths for c in p})
    out: dict[str, dict[str, float]] = {}
    for name, rule in RULES.items():
        acc = dict.fromkeys(channels, 0.0)
        for p, cv in zip(paths, conv, strict=True):
            if cv <= 0:
                continue
            t = np.arange(len(p), dtype=np.float64)
            credit = (
                time_decay(t, float(len(p)), half_life=1.0)
                if name == "time_decay"
                else rule(t, float(len(p)))
            )
            for c, w in zip(p, credit, strict=True):
                acc[c] += float(w) * cv
        out[name] = acc
    out["markov"] = markov(paths, conv, null)
    out["shapley"] = shapley(paths, conv, null)
    return out


@dataclass(frozen=True)
class PathFileSpec:
    """An aggregated path file (ChannelAttribution's Data.csv layout)."""

    path: str


CA_SCRIPT = """
import sys, pandas as pd, ChannelAttribution as ca
df = pd.read_csv(sys.argv[1], sep=";")
res = ca.markov_model(df, "path", "total_conversions", var_null="total_null", order=1, nsim_start=1e6,
                      verbose=False, flg_pro=False, seed=0)
print("RESULT" + res.to_json(orient="records"))
"""


def attribution_shares(config: dict[str, Any], data: PathFileSpec) -> dict[str, Any]:
    """Conversions per channel under every rule on ``data.path``; with ``config["ca_python"]`` (an interpreter
    that has ChannelAttribution, GPL-3, run in a subprocess) also ChannelAttribution's first-order Markov."""
    paths, conv, null = read_path_file(data.path)
    out: dict[str, Any] = {
        "shares": channel_shares(paths, conv, null),
        "total_conversions": float(conv.sum()),
    }
    ca_python = config.get("ca_python")
    if ca_python:
        res = subprocess.run(
            [ca_python, "-c", CA_SCRIPT, str(Path(data.path).resolve())],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if res.returncode != 0:
            raise RuntimeError(f"ChannelAttribution failed: {res.stderr[-2000:]}")
        line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT"))
        rows = json.loads(line[len("RESULT") :])
        out["shares"]["ChannelAttribution markov"] = {r["channel_name"]: r["total_conversions"] for r in rows}
    return out

"""MovieLens CTR rows with each user's behaviour sequence, and a synthetic long-sequence generator."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from mercato.data import CTRSplits
from mercato.data.movielens import MovieLens, load_movielens, movielens_ctr

__all__ = ["long_sequence_ctr", "long_sequences", "movielens_history_splits"]


def add_history(df: pd.DataFrame, max_len: int) -> pd.Series:
    """Per row, the ``max_len`` items the user rated before it, most recent first, ``|``-joined."""
    order = df.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    out = pd.Series("", index=df.index, dtype=object)
    users, items = order["user_id"].to_numpy(), order["item_id"].astype(str).to_numpy()
    idx = order.index.to_numpy()
    start = 0
    vals: list[str] = [""] * len(order)
    for i in range(len(order)):
        if i and users[i] != users[i - 1]:
            start = i
        lo = max(start, i - max_len)
        vals[i] = "|".join(items[lo:i][::-1])
    out.loc[idx] = vals
    return out


def movielens_history_splits(
    variant: Literal["100k", "1m"] = "1m", max_len: int = 20, max_users: int = 0, seed: int = 0
) -> CTRSplits:
    """:func:`mercato.data.movielens.movielens_ctr` plus a multi-hot ``history`` field (earlier items only).

    ``max_users`` > 0 keeps that many users drawn at random (``seed``), with all their ratings.
    """
    ml = load_movielens(variant)
    if max_users > 0:
        ids = np.sort(ml.ratings["user_id"].unique())
        if max_users < ids.size:
            keep = np.random.default_rng(seed).choice(ids, max_users, replace=False)
            ratings = ml.ratings[ml.ratings["user_id"].isin(keep)].reset_index(drop=True)
            ml = MovieLens(ratings, ml.users, ml.items, f"{ml.name}-{max_users}users")
    base = movielens_ctr(ml)
    frames = [base.train.assign(_s=0), base.valid.assign(_s=1), base.test.assign(_s=2)]
    allrows = pd.concat(frames, ignore_index=True)
    allrows["history"] = add_history(allrows, max_len)
    parts = [allrows[allrows["_s"] == s].drop(columns="_s").reset_index(drop=True) for s in range(3)]
    return CTRSplits(
        parts[0],
        parts[1],
        parts[2],
        categorical=list(base.categorical),
        numeric=list(base.numeric),
        multihot=[*base.multihot, "history"],
        label=base.label,
        user=base.user,
        name=f"{base.name}+history",
    )


def long_sequences(
    num_users: int, length: int = 1000, dim: int = 16, num_interests: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic long behaviour sequences: each user mixes ``num_interests`` interest directions.

    Returns ``seq (U, length, dim)`` float32 and ``interest (U, num_interests, dim)``, the directions each
    user's events are drawn around (unit vectors plus noise 0.3).
    """
    if length < 1 or num_users < 1:
        raise ValueError(f"num_users and length must be >= 1, got {num_users}, {length}")
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_users, num_interests, dim))
    centres /= np.linalg.norm(centres, axis=-1, keepdims=True)
    pick = rng.integers(0, num_interests, (num_users, length))
    seq = centres[np.arange(num_users)[:, None], pick] + 0.3 * rng.standard_normal((num_users, length, dim))
    return seq.astype(np.float32), centres.astype(np.float32)


def long_sequence_ctr(
    num_users: int = 400,
    num_items: int = 500,
    length: int = 1000,
    recent: int = 20,
    rows_per_user: int = 40,
    num_clusters: int = 20,
    num_interests: int = 4,
    seed: int = 0,
) -> CTRSplits:
    """Synthetic CTR rows whose label depends on a long behaviour sequence (the LSH part of AIF).

    Items belong to ``num_clusters`` categories. Each user has ``num_interests`` interest categories with
    random shares; the ``history`` field holds ``length`` items (most recent first) drawn from them by share,
    and the ``recent`` field the last ``recent`` events, all drawn from the user's smallest interest (the
    "current" one), so a short sequence alone cannot see the others. A candidate is from the user's interests or random (half each); its
    click probability is ``sigmoid(-2 + 12 s)``, ``s`` the candidate category's share of the long history.
    Split per user at random: 80 / 10 / 10 % of rows. Fields: ``user_id``, ``item_id``, ``cat``, ``recent``,
    ``history``.
    """
    if min(num_users, num_items, length, recent, rows_per_user, num_interests) < 1 or recent > length:
        raise ValueError("every size must be >= 1 and recent <= length")
    if num_interests > num_clusters or num_items < num_clusters:
        raise ValueError(
            f"need num_interests <= num_clusters <= num_items, got {num_interests}, {num_clusters}, {num_items}"
        )
    rng = np.random.default_rng(seed)
    cat = np.arange(num_items) % num_clusters  # item -> category
    by_cat = [np.nonzero(cat == c)[0] for c in range(num_clusters)]
    rows: list[dict[str, object]] = []
    split: list[int] = []
    for u in range(num_users):
        interests = rng.choice(num_clusters, num_interests, replace=False)
        share = rng.dirichlet(np.ones(num_interests))
        picks = rng.choice(interests, length - recent, p=share)
        older = np.array([rng.choice(by_cat[c]) for c in picks])
        newest = rng.choice(by_cat[int(interests[np.argmin(share)])], recent)
        hist = np.concatenate([newest, older])  # most recent first
        counts = np.bincount(cat[hist], minlength=num_clusters) / length
        h_str, r_str = "|".join(map(str, hist)), "|".join(map(str, newest))
        for _ in range(rows_per_user):
            if rng.random() < 0.5:
                item = int(rng.choice(by_cat[int(rng.choice(interests))]))
            else:
                item = int(rng.integers(num_items))
            p = 1.0 / (1.0 + np.exp(2.0 - 12.0 * counts[cat[item]]))
            rows.append(
                {
                    "user_id": u,
                    "item_id": item,
                    "cat": int(cat[item]),
                    "recent": r_str,
                    "history": h_str,
                    "label": float(rng.random() < p),
                }
            )
            split.append(int(rng.choice(3, p=[0.8, 0.1, 0.1])))
    df = pd.DataFrame(rows)
    part = np.asarray(split)
    frames = [df[part == s].reset_index(drop=True) for s in range(3)]
    return CTRSplits(
        frames[0],
        frames[1],
        frames[2],
        categorical=["user_id", "item_id", "cat"],
        numeric=[],
        multihot=["recent", "history"],
        name=f"synthetic-long{length}",
    )

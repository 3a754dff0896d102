"""MovieLens rating-prediction data for RecZero: per-user time split and prompt examples.

Split (per user, by timestamp, ties broken by item id): the last rating is the test target, the
second-to-last the validation target, everything earlier is training data. Test examples are the last ratings
of ``num_test_users`` users drawn with a fixed seed; validation examples are the second-to-last ratings of
``num_val_users`` *other* users; training prompts are drawn from training positions only.

Leakage rules: a target's history and user mean use only that user's earlier ratings; item means use
training ratings (train + validation ratings for test targets), leaving the target's own rating out.

Examples:
    >>> import pandas as pd
    >>> r = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [5, 6, 7], "rating": [3.0, 4.0, 5.0],
    ...                   "timestamp": [1, 2, 3]})
    >>> split_by_time(r)["part"].tolist()
    ['train', 'valid', 'test']
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mercato.reczero.config import DataConfig
from mercato.reczero.prompts import HistoryItem, RatingExample, build_messages

logger = logging.getLogger(__name__)

__all__ = ["RecZeroData", "build_data", "examples_to_rows", "make_examples", "split_by_time"]


@dataclass
class RecZeroData:
    """Everything the trainer, evaluators and baselines need."""

    ratings: pd.DataFrame  # all ratings with a ``part`` column (train / valid / test)
    train: list[RatingExample]  # training prompts (SFT and GRPO pools)
    valid: list[RatingExample]  # validation targets (model selection, never the test set)
    test: list[RatingExample]  # held-out targets
    global_mean: float  # mean training rating


def split_by_time(ratings: pd.DataFrame) -> pd.DataFrame:
    """Add ``part`` (train/valid/test) and ``pos`` (0-based position in the user's timeline), sorted by time."""
    missing = {"user_id", "item_id", "rating", "timestamp"} - set(ratings.columns)
    if missing:
        raise ValueError(f"ratings frame lacks columns {sorted(missing)}")
    df = ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)
    df["pos"] = df.groupby("user_id").cumcount()
    from_end = df.groupby("user_id")["pos"].transform("max") - df["pos"]
    df["part"] = np.where(from_end == 0, "test", np.where(from_end == 1, "valid", "train"))
    return df


def _item_stats(df: pd.DataFrame, parts: tuple[str, ...]) -> tuple[dict[int, float], dict[int, int]]:
    sub = df[df["part"].isin(parts)]
    g = sub.groupby("item_id")["rating"]
    return g.sum().to_dict(), g.count().to_dict()


def make_examples(
    df: pd.DataFrame,
    items: pd.DataFrame,
    rows: pd.DataFrame,
    history_len: int,
    item_parts: tuple[str, ...],
    global_mean: float,
) -> list[RatingExample]:
    """Build prompt examples for the target ``rows`` of the split frame ``df``.

    The item mean is over ratings in ``item_parts``, leaving the target's own rating out if it is one of them.
    """
    meta = items.set_index("item_id")[["title", "genres", "year"]].to_dict("index")
    sums, counts = _item_stats(df, item_parts)
    by_user = {u: g for u, g in df.groupby("user_id", sort=False)}
    out = []
    for row in rows.itertuples(index=False):
        hist = by_user[row.user_id]
        earlier = hist[hist["pos"] < row.pos]
        s, n = sums.get(row.item_id, 0.0), counts.get(row.item_id, 0)
        if row.part in item_parts:
            s, n = s - row.rating, n - 1
        item_mean = s / n if n > 0 else global_mean
        user_mean = float(earlier["rating"].mean()) if len(earlier) else global_mean
        recent = earlier.tail(history_len)
        history = tuple(
            HistoryItem(_title(meta, int(h.item_id)), _genres(meta, int(h.item_id)), float(h.rating))
            for h in recent.itertuples(index=False)
        )
        out.append(
            RatingExample(
                user_id=int(row.user_id),
                item_id=int(row.item_id),
                rating=float(row.rating),
                title=_title(meta, int(row.item_id)),
                genres=_genres(meta, int(row.item_id)),
                user_mean=round(user_mean, 2),
                item_mean=round(float(item_mean), 2),
                history=history,
            )
        )
    return out


def _title(meta: dict[int, dict[str, Any]], item_id: int) -> str:
    m = meta.get(item_id)
    if m is None:
        return f"item {item_id}"
    year = int(m.get("year") or 0)
    return f"{m['title']} ({year})" if year > 0 else str(m["title"])


def _genres(meta: dict[int, dict[str, Any]], item_id: int) -> str:
    m = meta.get(item_id)
    return str(m["genres"]) if m is not None and m["genres"] else "unknown"


def build_data(
    cfg: DataConfig, ratings: pd.DataFrame | None = None, items: pd.DataFrame | None = None
) -> RecZeroData:
    """Load MovieLens (or use the given frames), split by time and build train/valid/test examples."""
    if ratings is None or items is None:
        from mercato.data.movielens import load_movielens

        ml = load_movielens(cfg.variant)  # type: ignore[arg-type]
        ratings, items = ml.ratings, ml.items
    df = split_by_time(ratings)
    rng = np.random.default_rng(cfg.seed)
    counts = df.groupby("user_id").size()
    eligible = np.sort(counts[counts >= cfg.min_history + 2].index.to_numpy())
    if len(eligible) < cfg.num_test_users:
        raise ValueError(
            f"only {len(eligible)} users have >= {cfg.min_history + 2} ratings; num_test_users={cfg.num_test_users}"
        )
    perm = rng.permutation(eligible)
    test_users = perm[: cfg.num_test_users]
    val_users = perm[cfg.num_test_users : cfg.num_test_users + cfg.num_val_users]
    train_part = df[df["part"] == "train"]
    global_mean = float(train_part["rating"].mean())
    test_rows = df[(df["part"] == "test") & df["user_id"].isin(test_users)]
    val_rows = df[(df["part"] == "valid") & df["user_id"].isin(val_users)]
    pool = train_part[train_part["pos"] >= cfg.min_history]
    take = min(cfg.num_train_prompts, len(pool))
    train_rows = pool.iloc[np.sort(rng.choice(len(pool), size=take, replace=False))]
    train_rows = train_rows.iloc[rng.permutation(len(train_rows))]
    data = RecZeroData(
        ratings=df,
        train=make_examples(df, items, train_rows, cfg.history_len, ("train",), global_mean),
        valid=make_examples(df, items, val_rows, cfg.history_len, ("train",), global_mean),
        test=make_examples(df, items, test_rows, cfg.history_len, ("train", "valid"), global_mean),
        global_mean=global_mean,
    )
    logger.info(
        "RecZero data: %d train prompts, %d valid, %d test targets",
        len(data.train),
        len(data.valid),
        len(data.test),
    )
    return data


def examples_to_rows(examples: list[RatingExample], system_prompt: str | None = None) -> list[dict[str, Any]]:
    """Rows for a TRL dataset: conversational ``prompt`` plus ``rating`` / ``user_mean`` / ``item_mean``."""
    rows = []
    for ex in examples:
        msgs = build_messages(ex) if system_prompt is None else build_messages(ex, system_prompt)
        rows.append(
            {"prompt": msgs, "rating": ex.rating, "user_mean": ex.user_mean, "item_mean": ex.item_mean}
        )
    return rows

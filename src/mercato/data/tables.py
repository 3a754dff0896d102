"""Validated reading of users' own CSV/Parquet files.

Every loader in :mod:`mercato.data` accepts a user's file in a documented schema. :func:`read_table` checks it
up front and raises :class:`DataError` naming the file and the column, instead of letting a bad value surface
later as a traceback deep inside torch or as a silent NaN.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["ColumnKind", "DataError", "read_table", "validate_columns"]

ColumnKind = Literal["id", "numeric", "label", "text", "any"]


class DataError(ValueError):
    """A data file that does not match the documented schema."""


def _read_any(path: Path) -> pd.DataFrame:
    suffix = (
        "".join(path.suffixes[-2:]).lower() if path.suffix.lower() in (".gz", ".bz2", ".zst") else path.suffix
    )
    suffix = suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix.startswith(".tsv") or suffix.startswith(".inter"):
            return pd.read_csv(path, sep="\t")
        return pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty") from err
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot be read as a table: {err}") from err


def validate_columns(df: pd.DataFrame, schema: Mapping[str, ColumnKind], source: str) -> pd.DataFrame:
    """Check ``df`` against ``schema`` (column -> kind) and return it with numeric columns converted.

    Kinds: ``id`` (no missing values), ``numeric`` (numbers, no NaN/inf), ``label`` (0/1), ``text``
    (strings; missing becomes ""), ``any`` (must exist).
    """
    if len(df) == 0:
        raise DataError(f"{source}: the file has no rows")
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; expected columns {list(schema)}, found {list(df.columns)}"
        )
    out = df.copy()
    for col, kind in schema.items():
        series = out[col]
        if kind in ("numeric", "label"):
            values = pd.to_numeric(series, errors="coerce")
            bad = values.isna() & series.notna()
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"{source}: column '{col}' must be numeric; row {row} has {series.iloc[row]!r}"
                )
            if values.isna().any():
                row = int(np.flatnonzero(values.isna().to_numpy())[0])
                raise DataError(f"{source}: column '{col}' has missing values (NaN), first at row {row}")
            if not np.isfinite(values.to_numpy(dtype=np.float64)).all():
                raise DataError(f"{source}: column '{col}' has infinite values")
            if kind == "label":
                uniq = set(np.unique(values.to_numpy()).tolist())
                if not uniq <= {0, 1}:
                    raise DataError(f"{source}: column '{col}' must be 0/1, found values {sorted(uniq)[:5]}")
                values = values.astype(np.float32)
            out[col] = values
        elif kind == "id":
            if series.isna().any():
                row = int(np.flatnonzero(series.isna().to_numpy())[0])
                raise DataError(f"{source}: column '{col}' has missing values, first at row {row}")
        elif kind == "text":
            out[col] = series.fillna("").astype(str)
    return out


def read_table(path: str | Path, schema: Mapping[str, ColumnKind]) -> pd.DataFrame:
    """Read a CSV/TSV/Parquet file and validate it with :func:`validate_columns`.

    Raises:
        DataError: the file is missing, empty, unreadable, lacks a column, or has a bad value.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: the file is empty")
    return validate_columns(_read_any(p), schema, str(p))

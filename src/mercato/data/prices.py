"""Daily OHLCV price series from public-domain sample data (``bokeh-sampledata==2026.1``, Quandl WIKI).

Tickers: AAPL, IBM, MSFT (2000-03-01..2013-03-01), GOOG (from 2004-08-19), FB (from 2012-05-18).
A user's own series works too: a CSV/Parquet with ``date,open,high,low,close,volume``.

Dates may be date strings (``2020-01-31``), datetimes, ``YYYYMMDD`` integers, or integer epoch times whose unit
(seconds, milliseconds, microseconds or nanoseconds) is read from their magnitude: a number is taken as an
epoch time only if every date of the file falls in 1971..2199 in one unit, otherwise the file is refused (an
epoch-second column is never read as nanoseconds, i.e. as 1970). A file is also refused, naming the row
(counted from 0, header excluded) and the column, for a non-positive price, ``high < low``, an open or close
outside ``[low, high]``, a negative volume or a date that occurs twice.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mercato.data.packaged import MissingAssetError
from mercato.data.tables import ColumnKind, DataError, read_table, validate_columns

__all__ = ["PRICE_COLUMNS", "epoch_unit", "load_prices", "load_prices_file"]

PRICE_COLUMNS = ["date", "open", "high", "low", "close", "volume"]
_SCHEMA: dict[str, ColumnKind] = {
    "date": "id",
    "open": "numeric",
    "high": "numeric",
    "low": "numeric",
    "close": "numeric",
    "volume": "numeric",
}


# Epoch-time units and the values that put a date in 1971-01-01 .. 2200-01-01 (disjoint ranges).
_EPOCH_START_S, _EPOCH_END_S = 31_536_000, 7_258_118_400
_EPOCH_UNITS: tuple[tuple[str, float], ...] = (("s", 1.0), ("ms", 1e3), ("us", 1e6), ("ns", 1e9))
_YYYYMMDD = (19_000_101, 21_991_231)


def epoch_unit(values: np.ndarray) -> str | None:
    """The unit (``"s"``, ``"ms"``, ``"us"``, ``"ns"``) in which every value of ``values`` is an epoch time in
    1971..2199, or None when there is none (the ranges of the units do not overlap, so at most one fits)."""
    for unit, scale in _EPOCH_UNITS:
        if ((values >= _EPOCH_START_S * scale) & (values < _EPOCH_END_S * scale)).all():
            return unit
    return None


def _numeric_dates(values: pd.Series, source: str) -> pd.Series:
    """Dates from numbers: ``YYYYMMDD`` integers or epoch times in the one unit that fits every value."""
    x = values.to_numpy(dtype=np.float64)
    integral = bool(np.all(x == np.floor(x)))
    if integral and bool(np.all((x >= _YYYYMMDD[0]) & (x <= _YYYYMMDD[1]))):
        text = pd.Series(x.astype(np.int64).astype(str), index=values.index)
        parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
        if parsed.notna().all():
            return parsed
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(
            f"{source}: column 'date' looks like YYYYMMDD integers, but row {row} has {values.iloc[row]}, "
            "which is not a calendar date"
        )
    unit = epoch_unit(x)
    if unit is not None:
        return pd.to_datetime(values, unit=unit)
    # Name the first row that does not fit the unit of the median value, or the median itself if none fits.
    median = float(np.median(x))
    fits = [u for u, scale in _EPOCH_UNITS if _EPOCH_START_S * scale <= median < _EPOCH_END_S * scale]
    if fits:
        scale = dict(_EPOCH_UNITS)[fits[0]]
        bad = (x < _EPOCH_START_S * scale) | (x >= _EPOCH_END_S * scale)
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: column 'date' holds epoch times in {fits[0]} (from the median value), but row {row} has "
            f"{values.iloc[row]}, which is not a date in 1971..2199 in that unit; use one unit for every row"
        )
    raise DataError(
        f"{source}: column 'date' holds numbers (median {median:.17g}) that are neither YYYYMMDD dates nor epoch "
        "times in seconds, milliseconds, microseconds or nanoseconds for dates in 1971..2199; write the dates "
        "as text (2020-01-31) or as epoch times in one of those units"
    )


def _parse_dates(values: pd.Series, source: str) -> pd.Series:
    """The ``date`` column as datetimes; numbers by :func:`_numeric_dates`, text by pandas' parser."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values
    if pd.api.types.is_bool_dtype(values):
        raise DataError(f"{source}: column 'date' holds booleans, not dates")
    if pd.api.types.is_numeric_dtype(values):
        return _numeric_dates(values, source)
    text = values.astype(str).str.strip()
    if text.str.fullmatch(r"\d+").all():  # integers stored as text (e.g. a string column in Parquet)
        return _numeric_dates(text.astype(np.int64), source)
    try:
        parsed = pd.to_datetime(values, errors="coerce")
    except (ValueError, TypeError) as err:
        raise DataError(f"{source}: column 'date' has values that are not dates: {err}") from err
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: column 'date' row {row} has {values.iloc[row]!r}, which is not a date "
            f"(or not in the format of the first row, {values.iloc[0]!r})"
        )
    return parsed


def _first(mask: pd.Series) -> int | None:
    hits = np.flatnonzero(mask.to_numpy())
    return int(hits[0]) if len(hits) else None


def _num(value: float) -> str:
    return f"{float(value):g}"


def _check_bars(out: pd.DataFrame, source: str) -> None:
    """Refuse impossible bars and repeated dates, naming the row (file order, from 0) and the column."""
    for col in ("open", "high", "low", "close"):
        row = _first(out[col] <= 0)
        if row is not None:
            raise DataError(
                f"{source}: row {row}, column '{col}': prices must be positive, found {_num(out[col].iloc[row])}"
            )
    row = _first(out["high"] < out["low"])
    if row is not None:
        raise DataError(
            f"{source}: row {row}, column 'high': high {_num(out['high'].iloc[row])} "
            f"is below low {_num(out['low'].iloc[row])}"
        )
    for col in ("open", "close"):
        row = _first((out[col] > out["high"]) | (out[col] < out["low"]))
        if row is not None:
            raise DataError(
                f"{source}: row {row}, column '{col}': {col} {_num(out[col].iloc[row])} lies outside "
                f"[low, high] = [{_num(out['low'].iloc[row])}, {_num(out['high'].iloc[row])}]"
            )
    row = _first(out["volume"] < 0)
    if row is not None:
        raise DataError(
            f"{source}: row {row}, column 'volume': volume must be >= 0, found {_num(out['volume'].iloc[row])}"
        )
    dup = out["date"].duplicated(keep="first")
    row = _first(dup)
    if row is not None:
        date = out["date"].iloc[row]
        twin = int(np.flatnonzero((out["date"] == date).to_numpy())[0])
        raise DataError(f"{source}: row {row}, column 'date': date {date} occurs twice (also at row {twin})")


def _finish(df: pd.DataFrame, source: str) -> pd.DataFrame:
    out = df[PRICE_COLUMNS].reset_index(drop=True).copy()
    out["date"] = _parse_dates(out["date"], source)
    _check_bars(out, source)
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def load_prices(ticker: str = "AAPL") -> pd.DataFrame:
    """Daily OHLCV of ``ticker`` from the packaged sample data, sorted by date."""
    try:
        from bokeh_sampledata.stocks import data
    except ImportError as err:
        raise MissingAssetError(
            "the data package 'bokeh-sampledata==2026.1' is not installed; run `make install` "
            "or `pip install --no-deps bokeh-sampledata==2026.1`"
        ) from err
    tickers = sorted(data["ticker"].unique())
    if ticker not in tickers:
        raise ValueError(f"unknown ticker {ticker!r}; packaged tickers: {tickers}")
    df = validate_columns(data[data["ticker"] == ticker], _SCHEMA, f"bokeh_sampledata.stocks[{ticker}]")
    return _finish(df, ticker)


def load_prices_file(path: str | Path) -> pd.DataFrame:
    """Read a user's daily OHLCV file (columns ``date,open,high,low,close,volume``)."""
    return _finish(read_table(path, _SCHEMA), str(path))

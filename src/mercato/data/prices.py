"""Daily OHLCV price series from public-domain sample data (``bokeh-sampledata==2026.1``, Quandl WIKI).

Tickers: AAPL, IBM, MSFT (2000-03-01..2013-03-01), GOOG (from 2004-08-19), FB (from 2012-05-18).
A user's own series works too: a CSV/Parquet with ``date,open,high,low,close,volume``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mercato.data.packaged import MissingAssetError
from mercato.data.tables import ColumnKind, DataError, read_table, validate_columns

__all__ = ["PRICE_COLUMNS", "load_prices", "load_prices_file"]

PRICE_COLUMNS = ["date", "open", "high", "low", "close", "volume"]
_SCHEMA: dict[str, ColumnKind] = {
    "date": "id",
    "open": "numeric",
    "high": "numeric",
    "low": "numeric",
    "close": "numeric",
    "volume": "numeric",
}


def _finish(df: pd.DataFrame, source: str) -> pd.DataFrame:
    out = df[PRICE_COLUMNS].copy()
    try:
        out["date"] = pd.to_datetime(out["date"])
    except (ValueError, TypeError) as err:
        raise DataError(f"{source}: column 'date' has values that are not dates: {err}") from err
    out = out.sort_values("date", kind="stable").reset_index(drop=True)
    if (out[["open", "high", "low", "close"]] <= 0).any().any():
        raise DataError(f"{source}: prices must be positive")
    return out


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

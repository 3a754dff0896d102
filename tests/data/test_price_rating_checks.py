"""A user's price and ratings files: date units, impossible bars, repeated dates, ratings off the scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mercato.data.movielens import load_ratings_file
from mercato.data.prices import epoch_unit, load_prices_file
from mercato.data.tables import DataError

HEADER = "date,open,high,low,close,volume"
BARS = ["10,12,9,11,1000", "11,13,10,12,1200", "12,12.5,11,11.5,900"]
DAY = 86_400
START = 1_577_836_800  # 2020-01-01T00:00:00Z in epoch seconds


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def prices(tmp_path: Path, dates: list[object], bars: list[str] = BARS) -> Path:
    return write(tmp_path, "p.csv", [HEADER] + [f"{d},{b}" for d, b in zip(dates, bars, strict=True)])


@pytest.mark.parametrize("unit, scale", [("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)])
def test_integer_epoch_dates_are_read_in_their_unit(tmp_path, unit, scale):
    dates = [(START + k * DAY) * scale for k in range(3)]
    df = load_prices_file(prices(tmp_path, dates))
    assert [d.strftime("%Y-%m-%d") for d in df["date"]] == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert epoch_unit(np.array(dates, dtype=np.float64)) == unit


def test_yyyymmdd_and_text_dates(tmp_path):
    df = load_prices_file(prices(tmp_path, [20200103, 20200101, 20200102]))
    assert [d.strftime("%Y-%m-%d") for d in df["date"]] == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert df["open"].tolist() == [11.0, 12.0, 10.0]  # sorted by date, each bar kept with its date
    df = load_prices_file(prices(tmp_path, ["2020-01-01", "2020-01-02", "2020-01-03"]))
    assert df["date"].iloc[2] == pd.Timestamp("2020-01-03")


def test_numeric_dates_in_no_unit_or_mixed_units_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"p.csv: column 'date' holds numbers .* neither YYYYMMDD"):
        load_prices_file(prices(tmp_path, [5, 6, 7]))
    mixed = [START, START + DAY, (START + 2 * DAY) * 1000]  # seconds, then one in milliseconds
    with pytest.raises(DataError, match=r"p.csv: column 'date' holds epoch times in s .* row 2 has"):
        load_prices_file(prices(tmp_path, mixed))
    with pytest.raises(DataError, match=r"column 'date' row 1 has 'yesterday', which is not a date"):
        load_prices_file(prices(tmp_path, ["2020-01-01", "yesterday", "2020-01-03"]))
    assert epoch_unit(np.array([5.0])) is None


@pytest.mark.parametrize(
    "bar, message",
    [
        ("12,9,11,11,1000", r"row 1, column 'high': high 9 is below low 11"),
        ("10,12,9,11,-5", r"row 1, column 'volume': volume must be >= 0, found -5"),
        ("13,12,9,11,1000", r"row 1, column 'open': open 13 lies outside \[low, high\] = \[9, 12\]"),
        ("10,12,9,8,1000", r"row 1, column 'close': close 8 lies outside"),
        ("10,12,0,11,1000", r"row 1, column 'low': prices must be positive, found 0"),
    ],
)
def test_impossible_bars_are_refused_naming_file_row_and_column(tmp_path, bar, message):
    path = prices(tmp_path, ["2020-01-01", "2020-01-02", "2020-01-03"], [BARS[0], bar, BARS[2]])
    with pytest.raises(DataError, match=r"p.csv: " + message):
        load_prices_file(path)


def test_duplicate_dates_are_refused(tmp_path):
    path = prices(tmp_path, ["2020-01-01", "2020-01-02", "2020-01-01"])
    with pytest.raises(
        DataError, match=r"p.csv: row 2, column 'date': date 2020-01-01 .* twice \(also at row 0\)"
    ):
        load_prices_file(path)
    # the same day written as epoch seconds in two rows is a duplicate too
    with pytest.raises(DataError, match=r"row 1, column 'date'.*also at row 0"):
        load_prices_file(prices(tmp_path, [START, START, START + DAY]))


def test_ratings_outside_the_declared_scale_are_refused(tmp_path):
    path = write(
        tmp_path, "r.csv", ["user_id,item_id,rating,timestamp", "1,10,4,100", "2,10,6,101", "3,11,0,102"]
    )
    with pytest.raises(
        DataError, match=r"r.csv: row 1, column 'rating': 6 lies outside .* \[1, 5\] \(2 such rows\)"
    ):
        load_ratings_file(path)
    ml = load_ratings_file(path, scale=(0, 10))
    assert ml.ratings["rating"].tolist() == [4.0, 6.0, 0.0]
    with pytest.raises(ValueError, match="lowest < highest"):
        load_ratings_file(path, scale=(5, 1))
    ok = write(tmp_path, "ok.csv", ["user_id,item_id,rating,timestamp", "1,10,1,100", "2,10,5,101"])
    assert load_ratings_file(ok).ratings["rating"].tolist() == [1.0, 5.0]

"""Offline data: generation, Parquet round trip, strict loader errors, AuctionNet conversion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mercato.pearl.config import DataConfig, SimConfig
from mercato.pearl.data import TrajectoryError, from_auctionnet, generate, load_parquet, save_parquet

SIM = SimConfig(n_advertisers=4, n_steps=6, n_impressions=200)


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return generate(SIM, DataConfig(n_episodes=3), seed=0, show_progress=False)


def test_generate_shapes_and_quality(data) -> None:  # type: ignore[no-untyped-def]
    assert data.a.shape == (12, 6)
    np.testing.assert_allclose(data.y, data.value.sum(1) / data.budget)
    assert (data.cost.sum(1) <= data.budget + 1e-9).all()
    assert set(np.unique(data.budget)) == set(SIM.budget_levels)
    s = data.states(SIM)
    assert s.shape == (12, 7, 7)  # 4 dynamic columns + 3 attributes
    np.testing.assert_array_equal(s[:, 3, 4:], data.attrs)
    np.testing.assert_allclose(s[:, -1, 2], 1 - data.cost.sum(1) / data.budget)


def test_parquet_round_trip(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    p = save_parquet(data, tmp_path / "d.parquet")
    back = load_parquet(p)
    np.testing.assert_array_equal(back.cost, data.cost)
    np.testing.assert_array_equal(back.policy, data.policy)


def _write(tmp_path: Path, df: pd.DataFrame) -> Path:
    p = tmp_path / "user.parquet"
    df.to_parquet(p, index=False)
    return p


def test_missing_step_names_file_and_row(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    df = data.to_frame().drop(index=[8]).reset_index(drop=True)  # traj 1, step 2
    p = _write(tmp_path, df)
    with pytest.raises(TrajectoryError, match=r"user\.parquet: row 6: trajectory 1: step 2 is missing"):
        load_parquet(p)


def test_negative_budget_names_row(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    df = data.to_frame()
    df.loc[13, "budget"] = -5.0
    with pytest.raises(TrajectoryError, match=r"user\.parquet: row 13: budget must be > 0"):
        load_parquet(_write(tmp_path, df))


def test_cost_above_budget_names_row(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    df = data.to_frame()
    df.loc[15, "cost"] = 1e6  # traj 2, step 3
    with pytest.raises(
        TrajectoryError, match=r"row 15: trajectory 2: cumulative cost .* exceeds budget .* step 3"
    ):
        load_parquet(_write(tmp_path, df))


def test_missing_column_and_not_parquet(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TrajectoryError, match=r"missing column\(s\) \['cost'\]"):
        load_parquet(_write(tmp_path, data.to_frame().drop(columns=["cost"])))
    bad = tmp_path / "x.parquet"
    bad.write_text("not parquet")
    with pytest.raises(TrajectoryError, match="not a readable Parquet"):
        load_parquet(bad)


def test_from_auctionnet_aggregates_steps() -> None:
    log = pd.DataFrame(
        {
            "deliveryPeriodIndex": [0, 0, 0, 0],
            "advertiserNumber": [3, 3, 3, 3],
            "timeStepIndex": [0, 0, 1, 1],
            "budget": [100.0] * 4,
            "pValue": [0.2, 0.4, 0.5, 0.5],
            "bid": [1.0, 2.0, 1.0, 3.0],
            "cost": [0.5, 0.7, 0.9, 2.0],
            "isExposed": [1, 0, 1, 1],
        }
    )
    out = from_auctionnet(log)
    np.testing.assert_allclose(out["cost"], [0.5, 2.9])
    np.testing.assert_allclose(out["value"], [0.2, 1.0])
    np.testing.assert_allclose(out["bid_scale"], [3.0 / 0.6, 4.0 / 1.0])
    assert out["step"].tolist() == [0, 1]


def test_attributes_are_the_markets_and_round_trip(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    from mercato.pearl.sim import ATTRIBUTE_NAMES

    assert data.attr_names == ATTRIBUTE_NAMES
    assert data.attrs.shape == (12, 3)
    # one market per episode: 4 advertisers each, amplitude sqrt(sin^2 + cos^2) within [0, 0.5)
    amp = np.hypot(data.attrs[:, 1], data.attrs[:, 2])
    assert ((amp >= 0) & (amp < 0.5)).all()
    assert len(np.unique(data.attrs[:, 0])) == 12
    back = load_parquet(save_parquet(data, tmp_path / "d.parquet"))
    assert back.attr_names == ATTRIBUTE_NAMES
    np.testing.assert_array_equal(back.attrs, data.attrs)
    assert back.subset(np.array([2, 0])).attrs.tolist() == data.attrs[[2, 0]].tolist()


def test_file_without_attributes_loads_without_them(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    df = data.to_frame()
    back = load_parquet(_write(tmp_path, df.drop(columns=[c for c in df if c.startswith("attr_")])))
    assert back.attrs is None and back.attr_names == ()


def test_attribute_changing_within_a_trajectory_names_row(tmp_path: Path, data) -> None:  # type: ignore[no-untyped-def]
    df = data.to_frame()
    df.loc[9, "attr_day_sin"] += 1.0  # traj 1, step 3
    with pytest.raises(TrajectoryError, match=r"row 9: trajectory 1: 'attr_day_sin' changes within"):
        load_parquet(_write(tmp_path, df))
    df = data.to_frame()
    df.loc[4, "attr_log_value_level"] = np.nan
    with pytest.raises(TrajectoryError, match=r"row 4: column 'attr_log_value_level' is not a finite"):
        load_parquet(_write(tmp_path, df))

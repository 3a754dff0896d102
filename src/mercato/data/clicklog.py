"""The Open Bandit Dataset (ZOZOTOWN fashion e-commerce) click log, small version, from ``obp==0.4.1``.

Each campaign/policy file has 10,000 impressions over 80 items in 3 slots, with ``click``, the logging
policy's ``propensity_score``, 4 hashed user features and 80 user-item affinity columns; ``item_context.csv``
has 4 item features. The package is Apache-2.0. mercato reads the CSVs directly (obp's own loader breaks on
pandas >= 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from mercato.data.packaged import package_dir
from mercato.data.splits import CTRSplits
from mercato.data.tables import ColumnKind, DataError, validate_columns

__all__ = ["load_open_bandit", "open_bandit_ctr"]

Policy = Literal["random", "bts"]
Campaign = Literal["all", "men", "women"]

_USER_FEATURES = [f"user_feature_{i}" for i in range(4)]


def load_open_bandit(
    policy: Policy = "random", campaign: Campaign = "all", path: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(log, item_context)``; ``path`` points at a folder with the same two CSVs instead.

    The log keeps timestamp, item_id, position, click, propensity_score, user_feature_0..3 and the
    user-item affinity columns, sorted by time.
    """
    if policy not in ("random", "bts") or campaign not in ("all", "men", "women"):
        raise ValueError(f"unknown policy/campaign {policy!r}/{campaign!r}")
    folder = (
        Path(path)
        if path is not None
        else package_dir("obp", "obp==0.4.1") / "dataset" / "obd" / policy / campaign
    )
    log_file, ctx_file = folder / f"{campaign}.csv", folder / "item_context.csv"
    for f in (log_file, ctx_file):
        if not f.is_file():
            raise DataError(f"{f}: file not found")
    log = pd.read_csv(log_file, index_col=0)
    schema: dict[str, ColumnKind] = {
        "timestamp": "any",
        "item_id": "id",
        "position": "numeric",
        "click": "label",
        "propensity_score": "numeric",
    }
    schema.update({c: "id" for c in _USER_FEATURES})
    log = validate_columns(log, schema, str(log_file))
    log["timestamp"] = pd.to_datetime(log["timestamp"])
    ctx = pd.read_csv(ctx_file, index_col=0)
    return log.sort_values("timestamp", kind="stable").reset_index(drop=True), ctx


def open_bandit_ctr(
    policy: Policy = "random", campaign: Campaign = "all", valid_frac: float = 0.1, test_frac: float = 0.2
) -> CTRSplits:
    """CTR view of the click log: a global time split (oldest rows train, newest test).

    Fields: item_id, position, user_feature_0..3 and item_feature_1..3 as categorical, item_feature_0
    numeric. The user key for GAUC is the combination of the 4 hashed user features.
    """
    log, ctx = load_open_bandit(policy, campaign)
    df = log.merge(ctx, on="item_id", how="left")
    df["user_key"] = df[_USER_FEATURES].astype(str).agg("|".join, axis=1)
    df["label"] = df["click"].astype("float32")
    n = len(df)
    n_test, n_valid = int(n * test_frac), int(n * valid_frac)
    train, valid, test = (
        df.iloc[: n - n_test - n_valid].reset_index(drop=True),
        df.iloc[n - n_test - n_valid : n - n_test].reset_index(drop=True),
        df.iloc[n - n_test :].reset_index(drop=True),
    )
    categorical = [
        "item_id",
        "position",
        *_USER_FEATURES,
        "item_feature_1",
        "item_feature_2",
        "item_feature_3",
    ]
    return CTRSplits(
        train,
        valid,
        test,
        categorical,
        ["item_feature_0"],
        [],
        "label",
        "user_key",
        name=f"obd-{policy}-{campaign}",
    )

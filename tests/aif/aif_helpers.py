"""Tiny MovieLens-like rows and an exported serving folder for the AIF tests (imported by conftest and tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mercato.data import CTRSplits


def movielens_like(num_users: int = 8, num_items: int = 20, n: int = 96, seed: int = 0) -> CTRSplits:
    """Rows with MovieLens' columns and a ``history`` field of earlier item ids (built here, tiny)."""
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, num_users, n), rng.integers(0, num_items, n)
    hist = ["|".join(str(x) for x in rng.integers(0, num_items, rng.integers(0, 6))) for _ in range(n)]
    df = pd.DataFrame(
        {
            "user_id": users,
            "gender": users % 2,
            "age": users % 3,
            "occupation": users % 4,
            "zip3": users % 5,
            "item_id": items,
            "year": items * 1.0,
            "genres": [f"g{i % 3}|g{i % 5}" for i in items],
            "history": hist,
            "label": ((items + users) % 3 == 0).astype(np.float32),
            "timestamp": np.arange(n),
        }
    )
    a, b = int(n * 2 / 3), int(n * 5 / 6)
    return CTRSplits(
        df[:a],
        df[a:b],
        df[b:],
        categorical=["user_id", "gender", "age", "occupation", "zip3", "item_id"],
        numeric=["year"],
        multihot=["genres", "history"],
    )


def make_serving_folder(path: Path, num_users: int, num_items: int, seed: int = 0, **cfg: object) -> Path:
    """Export a seeded AIFModel and the catalogue of :func:`movielens_like` rows (every item appears)."""
    from mercato.aif.model import AIFConfig, AIFModel
    from mercato.aif.served import build_catalog, export_serving
    from mercato.ctr import FeatureSchema

    splits = movielens_like(num_users, num_items, n=max(96, 3 * num_items), seed=0)
    splits.train.loc[: num_items - 1, "item_id"] = np.arange(num_items)  # every item in the catalogue
    splits.train.loc[: num_users - 1, "user_id"] = np.arange(num_users)
    schema = FeatureSchema.fit(splits, n_buckets=3, max_tokens=6)
    torch.manual_seed(seed)
    model = AIFModel(schema, AIFConfig(**cfg)).eval()  # type: ignore[arg-type]
    catalog = build_catalog(schema, [splits.train, splits.valid, splits.test], model.config)
    return export_serving(path, model, schema, catalog)

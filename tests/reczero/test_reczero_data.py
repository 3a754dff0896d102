"""Per-user time split, leakage rules, prompts and template rationales on a hand-built ratings table."""

from __future__ import annotations

import pandas as pd
import pytest

from mercato.reczero.config import DataConfig
from mercato.reczero.data import build_data, examples_to_rows, split_by_time
from mercato.reczero.prompts import TAGS, build_messages, template_rationale
from mercato.reczero.rewards import is_valid_format, parse_rating


def _toy(n_users: int = 6, n_per_user: int = 9) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for u in range(1, n_users + 1):
        for k in range(n_per_user):
            item = (u * 3 + k) % 12 + 1
            rows.append(
                {"user_id": u, "item_id": item, "rating": float((u + k) % 5 + 1), "timestamp": 1000 - k}
            )
    items = pd.DataFrame(
        {
            "item_id": range(1, 13),
            "title": [f"Movie {i}" for i in range(1, 13)],
            "year": [1990 + i for i in range(12)],
            "genres": ["Drama|Comedy" if i % 2 else "Horror" for i in range(12)],
        }
    )
    return pd.DataFrame(rows), items


def test_split_marks_last_as_test_and_second_last_as_valid():
    ratings, _ = _toy()
    df = split_by_time(ratings)
    for _, g in df.groupby("user_id"):
        g = g.sort_values("timestamp")
        assert g["part"].tolist()[-2:] == ["valid", "test"]
        assert (g["part"].iloc[:-2] == "train").all()
        assert g["timestamp"].iloc[-1] == g["timestamp"].max()


def test_build_data_has_no_leakage_and_disjoint_users():
    ratings, items = _toy()
    cfg = DataConfig(num_test_users=3, num_val_users=2, num_train_prompts=5, history_len=3, min_history=2)
    data = build_data(cfg, ratings, items)
    df = data.ratings
    assert len(data.test) == 3 and len(data.valid) == 2 and len(data.train) == 5
    assert not {e.user_id for e in data.test} & {e.user_id for e in data.valid}
    for ex in data.test:
        user = df[df.user_id == ex.user_id].sort_values("pos")
        earlier = user.iloc[:-1]
        assert ex.rating == user.iloc[-1]["rating"]
        assert ex.user_mean == pytest.approx(round(earlier["rating"].mean(), 2))
        assert [h.rating for h in ex.history] == earlier["rating"].tolist()[-3:]
        pool = df[(df.item_id == ex.item_id) & df.part.isin(["train", "valid"])]
        expected = pool["rating"].mean() if len(pool) else data.global_mean
        assert ex.item_mean == pytest.approx(round(expected, 2))
    for ex in data.train:  # the target's own rating is left out of its item mean
        pool = df[(df.item_id == ex.item_id) & (df.part == "train")]
        rest = pool["rating"].sum() - ex.rating
        expected = rest / (len(pool) - 1) if len(pool) > 1 else data.global_mean
        assert ex.item_mean == pytest.approx(round(expected, 2))


def test_too_few_users_is_a_clear_error():
    ratings, items = _toy(n_users=2)
    with pytest.raises(ValueError, match="num_test_users"):
        build_data(DataConfig(num_test_users=5, min_history=2), ratings, items)


def test_prompt_mentions_every_feature_and_all_tags():
    ratings, items = _toy()
    data = build_data(
        DataConfig(num_test_users=2, num_val_users=1, num_train_prompts=3, min_history=2), ratings, items
    )
    ex = data.test[0]
    system, user = build_messages(ex)
    for tag in TAGS:
        assert f"<{tag}>" in system["content"] and f"</{tag}>" in system["content"]
    assert ex.title in user["content"] and f"{ex.user_mean:.2f}" in user["content"]
    assert f"{ex.item_mean:.2f}" in user["content"] and ex.history[-1].title in user["content"]
    rows = examples_to_rows(data.test)
    assert rows[0]["rating"] == ex.rating and rows[0]["prompt"][1]["content"] == user["content"]


def test_template_rationale_is_valid_and_consistent_with_truth():
    ratings, items = _toy()
    data = build_data(
        DataConfig(num_test_users=4, num_val_users=1, num_train_prompts=8, min_history=2), ratings, items
    )
    for ex in data.train + data.test:
        text = template_rationale(ex)
        assert is_valid_format(text)
        assert parse_rating(text) == ex.rating
        expected = (ex.user_mean + ex.item_mean) / 2
        if ex.rating > expected + 0.5:
            assert "Above average" in text
        elif ex.rating < expected - 0.5:
            assert "Below average" in text

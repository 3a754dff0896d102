"""RecZero rewards and rating parsing on hand-written completions."""

from __future__ import annotations

import pytest

from mercato.reczero.config import RewardConfig
from mercato.reczero.rewards import (
    answer_reward,
    format_reward,
    is_valid_format,
    parse_rating,
    predict_ratings,
    total_reward,
    trl_reward_functions,
)

VALID = (
    "<analyze user>Likes Drama.</analyze user><analyze item>Drama. Avg 4.1.</analyze item>"
    "<match>Good fit.</match><rate>4</rate>"
)
MISSING_TAG = "<analyze user>Likes Drama.</analyze user><match>Good fit.</match><rate>4</rate>"
WRONG_ORDER = "<analyze item>Drama.</analyze item><analyze user>Likes Drama.</analyze user><match>ok</match><rate>4</rate>"
OUT_OF_RANGE = VALID.replace("<rate>4</rate>", "<rate>7</rate>")
NOT_A_NUMBER = VALID.replace("<rate>4</rate>", "<rate>four stars</rate>")
FRACTIONAL = VALID.replace("<rate>4</rate>", "<rate> 3.5 </rate>")


def test_valid_completion_gets_format_and_graded_answer_reward():
    assert is_valid_format(VALID)
    assert format_reward(VALID) == 0.5
    assert answer_reward(VALID, rating=4.0) == 1.0
    assert answer_reward(VALID, rating=2.0) == pytest.approx(0.5)  # 1 - 2/4
    assert answer_reward(VALID, rating=1.0) == pytest.approx(0.25)
    assert total_reward(FRACTIONAL, rating=5.0) == pytest.approx(0.5 + 1 - 1.5 / 4)


@pytest.mark.parametrize("bad", [MISSING_TAG, WRONG_ORDER, OUT_OF_RANGE, NOT_A_NUMBER, "", "<rate>4</rate>"])
def test_invalid_completions_get_negative_format_and_no_answer_reward(bad):
    assert not is_valid_format(bad)
    assert format_reward(bad) == -0.5
    assert answer_reward(bad, rating=4.0) == 0.0


def test_constants_are_configurable():
    fork = RewardConfig(format_valid=1.0, format_invalid=-1.0, max_error=2.0)
    assert format_reward(VALID, fork) == 1.0 and format_reward(MISSING_TAG, fork) == -1.0
    assert answer_reward(VALID, 3.0, fork) == pytest.approx(0.5)
    lenient = RewardConfig(answer_requires_format=False, partial_format_weight=0.4)
    assert answer_reward(MISSING_TAG, 4.0, lenient) == 1.0  # rating parses although a stage is missing
    assert format_reward(MISSING_TAG, lenient) == pytest.approx(-0.5 + 0.4 * 0.75)  # 3 of 4 stages in order


def test_parse_rating_takes_last_rate_tag_and_range():
    assert parse_rating("<rate>2</rate> ... <rate>3</rate>") == 3.0
    assert parse_rating("<rate>0</rate>") is None
    assert parse_rating("no tag 4") is None


def test_predict_ratings_counts_fallbacks():
    parsed = predict_ratings([VALID, MISSING_TAG, "rambling 5", OUT_OF_RANGE], [3.3, 3.3, 2.2, 1.1])
    assert parsed.predictions == [4.0, 4.0, 2.2, 1.1]
    assert parsed.used_fallback == [False, False, True, True]
    assert parsed.valid_format == [True, False, False, False]
    assert parsed.fallback_rate == 0.5 and parsed.valid_rate == 0.25


def test_trl_reward_functions_sum_to_total():
    fmt, ans = trl_reward_functions()
    comps = [[{"role": "assistant", "content": VALID}], [{"role": "assistant", "content": WRONG_ORDER}]]
    f = fmt(["p", "p"], comps, rating=[5.0, 5.0])
    a = ans(["p", "p"], comps, rating=[5.0, 5.0])
    assert [x + y for x, y in zip(f, a)] == [total_reward(VALID, 5.0), total_reward(WRONG_ORDER, 5.0)]
    assert fmt.__name__ == "format_reward" and ans.__name__ == "answer_reward"

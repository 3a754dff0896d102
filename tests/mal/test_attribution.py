"""Attribution rules on hand-computed paths; Markov and Shapley on a 3-channel example done by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mercato.mal.attribution import (
    first_click,
    last_click,
    linear,
    markov,
    markov_conversion_probability,
    path_credits,
    position_based,
    shapley,
    time_decay,
)

TIMES = [0.0, 1.0, 3.0, 6.0]  # conversion at 10
CONV = 10.0


def test_rules_on_four_clicks():
    assert first_click(TIMES, CONV).tolist() == [1, 0, 0, 0]
    assert last_click(TIMES, CONV).tolist() == [0, 0, 0, 1]
    np.testing.assert_allclose(linear(TIMES, CONV), [0.25] * 4)
    np.testing.assert_allclose(position_based(TIMES, CONV), [0.4, 0.1, 0.1, 0.4])
    # half-life 2: weights 2^-5, 2^-4.5, 2^-3.5, 2^-2 normalised
    w = np.exp2([-5.0, -4.5, -3.5, -2.0])
    np.testing.assert_allclose(time_decay(TIMES, CONV, half_life=2.0), w / w.sum())


def test_window_drops_old_clicks():
    # window 8: clicks at 0 and 1 are 10 and 9 days old -> out
    assert first_click(TIMES, CONV, window=8).tolist() == [0, 0, 1, 0]
    np.testing.assert_allclose(linear(TIMES, CONV, window=8), [0, 0, 0.5, 0.5])
    np.testing.assert_allclose(position_based(TIMES, CONV, window=8), [0, 0, 0.5, 0.5])
    # no click in the window: nothing attributed
    assert linear(TIMES, CONV, window=1).sum() == 0
    assert last_click(TIMES, CONV, window=1).sum() == 0
    # a click after the conversion never gets credit
    assert last_click([1.0, 12.0], CONV).tolist() == [1, 0]


def test_one_touch_path():
    for rule in (first_click, last_click, linear, position_based, time_decay):
        assert rule([4.0], CONV).tolist() == [1.0]


def test_ties_broken_by_input_order_and_unsorted_input():
    assert first_click([2.0, 2.0, 5.0], CONV).tolist() == [1, 0, 0]
    assert last_click([2.0, 5.0, 5.0], CONV).tolist() == [0, 0, 1]
    # unsorted times: the earliest by time is first regardless of row order
    assert first_click([5.0, 1.0, 3.0], CONV).tolist() == [0, 1, 0]
    np.testing.assert_allclose(position_based([5.0, 1.0, 3.0], CONV), [0.4, 0.4, 0.2])


def test_rule_credits_sum_to_one_on_random_paths():
    rng = np.random.default_rng(0)
    for _ in range(50):
        t = rng.uniform(0, 30, size=rng.integers(1, 8))
        for rule in (first_click, last_click, linear, position_based, time_decay):
            c = rule(t, 30.0, window=40.0)
            assert c.sum() == pytest.approx(1.0) and (c >= 0).all()


# 3 channels: A>B converts once, B>C and A never convert.
PATHS = [["A", "B"], ["B", "C"], ["A"]]
CONVS = [1, 0, 0]
NULLS = [0, 1, 1]


def test_markov_by_hand():
    # start->A 2/3, start->B 1/3; A->B 1/2, A->null 1/2; B->conv 1/2, B->C 1/2; C->null.
    # P(B)=1/2, P(A)=1/4, P(start)=2/3*1/4+1/3*1/2=1/3
    assert markov_conversion_probability(PATHS, CONVS, NULLS) == pytest.approx(1 / 3)
    # remove A: 1/6 -> RE 1/2; remove B: 0 -> RE 1; remove C: 1/3 -> RE 0. Shares 1/3, 2/3, 0.
    got = markov(PATHS, CONVS, NULLS)
    assert got == pytest.approx({"A": 1 / 3, "B": 2 / 3, "C": 0.0})


def test_markov_self_loops_do_not_change_result():
    looped = [["A", "A", "B"], ["B", "B", "C"], ["A"]]
    assert markov(looped, CONVS, NULLS) == pytest.approx(markov(PATHS, CONVS, NULLS))


def test_shapley_by_hand():
    # v(S) = conversions of paths with channel set in S: only {A,B} and {A,B,C} are worth 1.
    assert shapley(PATHS, CONVS, NULLS) == pytest.approx({"A": 0.5, "B": 0.5, "C": 0.0})
    # rate: v(A)=0, v(AB)=1/2, v(AC)=0, v(BC)=0, v(ABC)=1/3 -> phi = 7/36, 7/36, -2/36, scaled by 1/(1/3)
    got = shapley(PATHS, CONVS, NULLS, value="rate")
    assert got == pytest.approx({"A": 7 / 12, "B": 7 / 12, "C": -1 / 6})
    assert sum(got.values()) == pytest.approx(sum(CONVS))


def test_path_credits():
    vals = {"A": 1 / 3, "B": 2 / 3, "C": 0.0}
    np.testing.assert_allclose(path_credits(["A", "B"], vals), [1 / 3, 2 / 3])
    np.testing.assert_allclose(path_credits(["A", "B", "B"], vals), [0.2, 0.4, 0.4])
    # all-zero channels fall back to linear; window drops the first click
    np.testing.assert_allclose(path_credits(["C", "C"], vals), [0.5, 0.5])
    np.testing.assert_allclose(path_credits(["A", "B"], vals, times=[0, 9], conv_time=10, window=5), [0, 1])


def test_bad_input():
    with pytest.raises(ValueError, match="one entry per path"):
        markov(PATHS, [1, 0], NULLS)
    with pytest.raises(ValueError, match="path 1 is empty"):
        markov([["A"], []], [1, 0], [0, 1])
    with pytest.raises(ValueError, match="window"):
        linear([1.0], 2.0, window=-1)

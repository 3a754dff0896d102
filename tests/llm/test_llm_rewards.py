"""Tagged-format reward helpers on hand-written completions."""

from __future__ import annotations

from mercato.llm.rewards import (
    as_trl_reward,
    check_tagged_format,
    completion_text,
    extract_tag,
    first_number,
    parse_number,
    tag_partial_credit,
)

TAGS = ("think", "answer")


def test_check_tagged_format_cases():
    assert check_tagged_format("pre <think>a</think> mid <answer>b</answer> post", TAGS)
    assert not check_tagged_format("<think>a</think>", TAGS)  # missing tag
    assert not check_tagged_format("<answer>b</answer><think>a</think>", TAGS)  # wrong order
    assert not check_tagged_format("<think> </think><answer>b</answer>", TAGS)  # empty stage
    assert not check_tagged_format("<think>a</think><think>a</think><answer>b</answer>", TAGS)  # repeated
    assert not check_tagged_format("<think>a<answer>b</think></answer>", TAGS)  # interleaved


def test_partial_credit_counts_ordered_stages():
    assert tag_partial_credit("<think>a</think><answer>b</answer>", TAGS) == 1.0
    assert tag_partial_credit("<think>a</think>", TAGS) == 0.5
    assert tag_partial_credit("<answer>b</answer>", TAGS) == 0.5
    assert tag_partial_credit("nothing", TAGS) == 0.0


def test_extract_and_parse_numbers():
    assert extract_tag("<answer>1</answer><answer> 2 </answer>", "answer") == "2"
    assert extract_tag("<answer>1</answer><answer>2</answer>", "answer", last=False) == "1"
    assert extract_tag("no tags", "answer") is None
    assert parse_number(" 3.5 ") == 3.5
    assert parse_number("4 stars") is None
    assert parse_number("6", lo=1, hi=5) is None
    assert parse_number(None) is None
    assert first_number("maybe 4 stars") == 4.0


def test_completion_text_and_trl_adapter():
    conv = [{"role": "assistant", "content": "<answer>2</answer>"}]
    assert completion_text(conv) == "<answer>2</answer>"

    def f(text: str, target: float) -> float:
        return float(parse_number(extract_tag(text, "answer")) == target)

    reward = as_trl_reward(f, "hit")
    out = reward(["p", "p"], [conv, "<answer>3</answer>"], target=[2.0, 2.0], completion_ids=[[1], [2]])
    assert out == [1.0, 0.0]
    assert reward.__name__ == "hit"

"""BEA and SimHash-LSH approximations against their exact twins (hand-checkable cases and oracles)."""

from __future__ import annotations

import math

import torch

from mercato.aif.approx import (
    bea_combine,
    bea_item_weights,
    bea_user_summaries,
    lsh_combine,
    lsh_expected_pool,
    lsh_pool_bruteforce,
    lsh_user_buckets,
    simhash_codes,
    target_attention,
)


def test_target_attention_by_hand() -> None:
    seq = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    item = torch.tensor([[math.sqrt(2) * math.log(3.0), 0.0]])  # logits ln3, 0 -> weights 3/4, 1/4
    torch.testing.assert_close(target_attention(item, seq), torch.tensor([[0.75, 0.25]]))
    masked = target_attention(item, seq, torch.tensor([False, True]))
    torch.testing.assert_close(masked, torch.tensor([[0.0, 1.0]]))
    empty = target_attention(item, seq, torch.tensor([False, False]))
    torch.testing.assert_close(empty, torch.zeros(1, 2))


def test_bea_equals_exact_when_bridges_are_the_items() -> None:
    g = torch.Generator().manual_seed(0)
    items, seq = torch.randn(6, 8, generator=g), torch.randn(20, 8, generator=g)
    mask = torch.arange(20) < 15
    approx = bea_combine(bea_item_weights(items, items, tau=1e-3), bea_user_summaries(items, seq, mask))
    torch.testing.assert_close(approx, target_attention(items, seq, mask), atol=1e-5, rtol=1e-5)
    # with fewer bridges than items the approximation has a real, nonzero error
    bridges = torch.randn(2, 8, generator=g)
    rough = bea_combine(bea_item_weights(items, bridges), bea_user_summaries(bridges, seq, mask))
    assert (rough - target_attention(items, seq, mask)).abs().max() > 1e-2


def test_simhash_codes_by_hand() -> None:
    planes = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, -1.0]])  # d=2, m=4, tau=2 -> H=2
    x = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])
    # x0 bits (1,1,1,0) -> codes (1+2, 1) ; x1 bits (0,1,0,0) -> (2, 0)
    assert simhash_codes(x, planes, 2).tolist() == [[3, 1], [2, 0]]


def test_lsh_lookup_equals_bruteforce_and_converges_to_expected() -> None:
    g = torch.Generator().manual_seed(1)
    d, tau = 16, 3
    items, seq = torch.randn(5, d, generator=g), torch.randn(1200, d, generator=g)  # a 1,200-event sequence
    mask = torch.arange(1200) < 1100
    planes = torch.randn(d, 48 * tau, generator=g)
    fast = lsh_combine(simhash_codes(items, planes, tau), *lsh_user_buckets(seq, planes, tau, mask))
    torch.testing.assert_close(fast, lsh_pool_bruteforce(items, seq, planes, tau, mask), atol=1e-5, rtol=1e-5)
    many = torch.randn(d, 1000 * tau, generator=g)
    est = lsh_combine(simhash_codes(items, many, tau), *lsh_user_buckets(seq, many, tau, mask))
    exact = lsh_expected_pool(items, seq, tau, mask)
    cos = torch.nn.functional.cosine_similarity(est, exact, dim=-1)
    assert cos.min() > 0.99

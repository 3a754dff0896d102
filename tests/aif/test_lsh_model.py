"""SimHash LSH inside AIFModel: batched pooling == the pure functions, the model trains end to end, and the
synthetic long-sequence data carries its signal in the long sequence."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mercato.aif.approx import lsh_combine, lsh_expected_pool, lsh_user_buckets, simhash_codes
from mercato.aif.data import long_sequence_ctr
from mercato.aif.model import lsh_bucket_sums, lsh_expected, lsh_lookup, lsh_rate
from mercato.aif.train import LongDataSpec, ModelRunConfig, model_run


def test_batched_lsh_equals_the_pure_functions() -> None:
    g = torch.Generator().manual_seed(0)
    b, length, m, groups, tau = 3, 1200, 8, 6, 2
    seq = torch.randn(b, length, m, generator=g)
    mask = torch.rand(b, length, generator=g) > 0.2
    items = torch.randn(b, m, generator=g)
    planes = torch.randn(m, groups * tau, generator=g)
    codes = torch.stack([simhash_codes(seq[i], planes, tau) for i in range(b)])  # (B, L, H)
    sums, counts = lsh_bucket_sums(codes, seq, mask, 2**tau)
    item_codes = simhash_codes(items, planes, tau)  # (B, H)
    pooled = lsh_lookup(item_codes, sums, counts)
    for i in range(b):
        s_i, c_i = lsh_user_buckets(seq[i], planes, tau, mask[i])
        torch.testing.assert_close(sums[i], s_i, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(counts[i], c_i)
        torch.testing.assert_close(
            pooled[i], lsh_combine(item_codes[i : i + 1], s_i, c_i)[0], rtol=1e-4, atol=1e-5
        )
        want = lsh_expected_pool(items[i : i + 1], seq[i], tau, mask[i])[0]
        torch.testing.assert_close(lsh_expected(items, seq, mask, tau)[0][i], want, rtol=1e-4, atol=1e-5)
        # collision rate by hand: collisions of (t, h) over valid t and all groups, / (H n)
        hits = ((codes[i] == item_codes[i][None, :]) & mask[i][:, None]).sum()
        assert lsh_rate(item_codes, counts)[i, 0].item() == pytest.approx(
            hits.item() / (groups * mask[i].sum().item())
        )


def test_lsh_rate_converges_to_its_exact_twin() -> None:
    g = torch.Generator().manual_seed(1)
    seq, items = torch.randn(2, 300, 8, generator=g), torch.randn(2, 8, generator=g)
    mask = torch.ones(2, 300, dtype=torch.bool)
    tau, groups = 2, 2000
    planes = torch.randn(8, groups * tau, generator=g)
    codes = torch.stack([simhash_codes(seq[i], planes, tau) for i in range(2)])
    _, counts = lsh_bucket_sums(codes, seq, mask, 2**tau)
    rate = lsh_rate(simhash_codes(items, planes, tau), counts)
    _, exact = lsh_expected(items, seq, mask, tau)
    torch.testing.assert_close(rate, exact, atol=0.01, rtol=0.0)
    assert 0.2 < float(exact.min()) < float(exact.max()) < 0.5  # (1 - angle/pi)^2 of random vectors: ~1/4


def test_long_sequence_ctr_data() -> None:
    s = long_sequence_ctr(num_users=20, num_items=60, length=1000, recent=20, rows_per_user=30, seed=0)
    df = s.train
    hist = df["history"].iloc[0].split("|")
    assert len(hist) == 1000 and df["recent"].iloc[0].split("|") == hist[:20]
    assert s.multihot == ["recent", "history"] and set(s.categorical) == {"user_id", "item_id", "cat"}
    n = len(s.train) + len(s.valid) + len(s.test)
    assert n == 600 and 0.7 < len(s.train) / n < 0.9
    # clicks follow the candidate category's share of the long history, not the recent field
    allrows = [s.train, s.valid, s.test]
    share, label, in_recent = [], [], []
    for part in allrows:
        for h, r, c, y in zip(part["history"], part["recent"], part["cat"], part["label"], strict=True):
            cats = np.array([int(x) % 20 for x in h.split("|")])
            share.append(float((cats == c).mean()))
            in_recent.append(int(r.split("|")[0]) % 20 == c)
            label.append(y)
    share_a, label_a = np.array(share), np.array(label)
    assert label_a[share_a > 0.2].mean() > 0.6 > 0.2 > label_a[share_a == 0].mean()
    assert np.mean(in_recent) < 0.2  # most candidates are outside the recent interest
    with pytest.raises(ValueError, match="num_interests"):
        long_sequence_ctr(num_users=2, num_items=60, num_clusters=3, num_interests=4)


def test_lsh_model_trains_end_to_end_and_reports_its_twin() -> None:
    torch.set_num_threads(1)
    spec = LongDataSpec(num_users=24, num_items=40, length=1000, rows_per_user=10)
    res = model_run(ModelRunConfig(model="aif-lsh", batch_size=64, epochs=1, lsh_groups=4, lsh_bits=2), spec)
    assert res["train_rows"] > 150 and 0.0 <= res["auc"] <= 1.0 and 0.0 <= res["twin_auc"] <= 1.0
    # the approximation error is measured, not hidden: LSH and its H -> inf twin differ, and correlate
    assert res["logit_mean_abs_diff"] > 0.0 and -1.0 <= res["score_pearson"] <= 1.0
    assert res["tower_params"] < res["params"]
    with pytest.raises(ValueError, match="long-sequence"):
        from mercato.aif.train import HistoryDataSpec

        model_run(ModelRunConfig(model="aif-lsh"), HistoryDataSpec("100k", max_users=5))

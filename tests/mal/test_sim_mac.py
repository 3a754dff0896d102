"""Journey simulator, MAC loader/writer, CAT labels: leakage, schema errors, round-trips."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mercato.mal.labels import CAT_VIEWS, cat_decode, cat_encode
from mercato.mal.mac import AD_COLS, MM_COLS, SEQ_COLS, USER_COLS, MACError, load_mac, write_mac
from mercato.mal.sim import SimConfig, simulate, simulate_to_mac

TINY = dict(n_clicks=3000, n_users=150, n_items=80, n_categories=6, n_brands=10, n_shops=12, n_days=6)


@pytest.fixture(scope="module")
def mac_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mac") / "sim"
    simulate_to_mac(SimConfig(**TINY, mean_path_len=2.5), root)
    return root


def test_cat_round_trip_all_16():
    combos = np.array(list(itertools.product([0, 1], repeat=4)))  # (16, 4)
    labels = {v: combos[:, k].astype(float) * 0.5 for k, v in enumerate(CAT_VIEWS)}  # fractional credits
    y = cat_encode(labels)
    assert sorted(y.tolist()) == list(range(16))
    back = cat_decode(y)
    for k, v in enumerate(CAT_VIEWS):
        assert back[v].tolist() == combos[:, k].tolist()
    assert cat_encode({"last": [1.0], "first": [0.0], "linear": [0.3], "mta": [0.0]}).tolist() == [5]
    with pytest.raises(ValueError, match="classes"):
        cat_decode(np.array([16]))


def test_layout_and_labels(mac_root):
    assert sorted(p.name for p in (mac_root / "train").iterdir()) == [
        f"train-{i:02d}.parquet" for i in range(5)
    ]
    assert (mac_root / "test" / "test.parquet").exists()
    vocab = json.loads((mac_root / "vocabs" / "ad_feat0.json").read_text())
    assert vocab["0"] == 0 and len(vocab) == TINY["n_items"] + 1
    tr = load_mac(mac_root, "train", files=[f"train-{i:02d}.parquet" for i in range(5)])
    assert tr.seq.shape[1:] == (3, 20) and tr.mm.shape[1:] == (2, 20) and tr.user.shape[1] == 7
    # journeys run past the written days, so a written click may be the first or last of a longer path
    te = load_mac(mac_root, "test")
    assert len(te) > 0 and (tr.labels["last"] > 0).any() and (tr.labels["first"] > 0).any()
    for v in ("first", "last", "linear", "mta"):
        assert ((tr.labels[v] >= 0) & (tr.labels[v] <= 1)).all()
    # a click with a last-click credit always has linear credit; mta and linear agree on which clicks count
    assert ((tr.labels["last"] > 0) <= (tr.labels["linear"] > 0)).all()
    assert ((tr.labels["mta"] > 0) == (tr.labels["linear"] > 0)).all()


def test_simulated_labels_sum_per_journey():
    j, _ = simulate(SimConfig(**TINY, mean_path_len=3.0))
    conv = j.converted
    for v in ("first", "last", "linear", "mta"):
        per = np.bincount(j.journey, weights=j.labels[v], minlength=len(conv))
        has = np.bincount(j.journey, minlength=len(conv)) > 0
        np.testing.assert_allclose(per[has], conv[has].astype(float), atol=1e-5)


def test_test_day_strictly_after_train(mac_root):
    tr = load_mac(mac_root, "train", files=[f"train-{i:02d}.parquet" for i in range(5)])
    te = load_mac(mac_root, "test")
    assert tr.click_time.max() < 5.0 <= te.click_time.min() < 6.0
    assert np.all(np.floor(tr.click_time) == tr.day)


def test_features_never_depend_on_outcome(tmp_path):
    # Same seed, conversion made impossible vs certain: every label flips, every feature stays identical.
    a = simulate_to_mac(SimConfig(**TINY, base_logit=-50.0), tmp_path / "a")
    b = simulate_to_mac(SimConfig(**TINY, base_logit=50.0), tmp_path / "b")
    assert a["rate_last"] == 0.0 and b["rate_last"] > 0.2
    for split, name in (("train", "train-03.parquet"), ("test", "test.parquet")):
        ta, tb = pq.read_table(tmp_path / "a" / split / name), pq.read_table(tmp_path / "b" / split / name)
        for c in USER_COLS + AD_COLS + SEQ_COLS + MM_COLS + ["click_time"]:
            assert ta.column(c).equals(tb.column(c)), c
        assert not ta.column("linear").equals(tb.column("linear"))


def _copy_with(mac_root, tmp_path, name, fn):
    import shutil

    root = tmp_path / "bad"
    shutil.copytree(mac_root, root)
    path = root / "train" / name
    pq.write_table(fn(pq.read_table(path)), path)
    return root


FILES = [f"train-{i:02d}.parquet" for i in range(5)]


def test_missing_label_column(mac_root, tmp_path):
    root = _copy_with(mac_root, tmp_path, "train-02.parquet", lambda t: t.drop(["mta"]))
    with pytest.raises(MACError, match=r"train-02\.parquet: missing column\(s\) \['mta'\]"):
        load_mac(root, "train", files=FILES)


def test_label_outside_unit_interval(mac_root, tmp_path):
    def bump(t):
        y = t.column("linear").to_numpy().copy()
        y[3] = 1.5
        return t.set_column(t.column_names.index("linear"), "linear", pa.array(y))

    root = _copy_with(mac_root, tmp_path, "train-01.parquet", bump)
    with pytest.raises(MACError, match=r"train-01\.parquet: label column 'linear' row 3 is 1\.5"):
        load_mac(root, "train", files=FILES)


def test_wrong_sequence_length(mac_root, tmp_path):
    def shorten(t):
        seqs = t.column("ad_feat1_seq").to_pylist()
        seqs[0] = seqs[0][:19]
        return t.set_column(t.column_names.index("ad_feat1_seq"), "ad_feat1_seq", pa.array(seqs))

    root = _copy_with(mac_root, tmp_path, "train-00.parquet", shorten)
    with pytest.raises(
        MACError, match=r"train-00\.parquet: column 'ad_feat1_seq' row 0 .* length 19, expected 20"
    ):
        load_mac(root, "train", files=FILES)


def test_test_day_overlapping_train(mac_root, tmp_path):
    import shutil

    root = tmp_path / "overlap"
    shutil.copytree(mac_root, root)
    t = pq.read_table(root / "test" / "test.parquet")
    times = t.column("click_time").to_numpy() - 2.0  # test clicks moved onto day 3
    pq.write_table(
        t.set_column(t.column_names.index("click_time"), "click_time", pa.array(times)),
        root / "test" / "test.parquet",
    )
    with pytest.raises(MACError, match=r"test\.parquet: column 'click_time' starts on day 3, which overlaps"):
        load_mac(root, "test")


def test_unknown_value_and_missing_file(mac_root, tmp_path):
    def alien(t):
        vals = t.column("ad_feat3").to_pylist()
        vals[2] = "nope"
        return t.set_column(t.column_names.index("ad_feat3"), "ad_feat3", pa.array(vals))

    root = _copy_with(mac_root, tmp_path, "train-04.parquet", alien)
    with pytest.raises(MACError, match=r"train-04\.parquet column 'ad_feat3': value 'nope' is not in"):
        load_mac(root, "train", files=FILES)
    with pytest.raises(MACError, match=r"train-19\.parquet: file not found"):
        load_mac(mac_root, "train", files=["train-00.parquet", "train-19.parquet"])
    assert len(load_mac(mac_root, "train")) == len(load_mac(mac_root, "train", files=FILES))


def test_write_is_all_or_nothing(tmp_path):
    good = pa.table({"x": [1]})
    with pytest.raises(AttributeError):
        write_mac(tmp_path / "out", {"train/train-00.parquet": good, "test/test.parquet": "not a table"}, {})
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.iterdir()) == []
    write_mac(tmp_path / "out", {"train/train-00.parquet": good}, {})
    with pytest.raises(FileExistsError, match="not empty"):
        write_mac(tmp_path / "out", {"train/train-00.parquet": good}, {})

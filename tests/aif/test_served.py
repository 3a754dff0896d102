"""Serving the real AIFModel: state layouts round-trip, served scores == the model's forward, export/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from aif_helpers import make_serving_folder, movielens_like

from mercato.aif.model import AIFConfig, AIFModel
from mercato.aif.serve import AIFRuntime, FaissRetriever
from mercato.aif.served import ServedAIF, StateLayout, build_catalog, load_serving
from mercato.aif.store import EmbeddedStore
from mercato.aif.train import LongDataSpec, build_data
from mercato.ctr import FeatureSchema


def _model(**cfg: object) -> tuple[AIFModel, object]:
    splits = movielens_like()
    schema = FeatureSchema.fit(splits, n_buckets=3, max_tokens=6)
    torch.manual_seed(0)
    model = AIFModel(schema, AIFConfig(**cfg)).eval()  # type: ignore[arg-type]
    return model, build_catalog(schema, [splits.train, splits.valid, splits.test], model.config)


def _long_model(interest: str = "lsh") -> tuple[AIFModel, object]:
    splits, schema, fields = build_data(LongDataSpec(num_users=6, num_items=40, length=1000, rows_per_user=4))
    torch.manual_seed(0)
    model = AIFModel(schema, AIFConfig(long_interest=interest, **fields)).eval()  # type: ignore[arg-type]
    return model, build_catalog(schema, [splits.train, splits.valid, splits.test], model.config)


def _joined(cat, user: int, ids: np.ndarray) -> dict[str, torch.Tensor]:  # type: ignore[no-untyped-def]
    """The CTR rows (user, item i): the two sides' fields are disjoint, the other side's are 0."""
    return {
        "sparse": cat.user_sparse[user : user + 1] + cat.item_sparse[ids],
        "multihot": cat.user_multihot[user : user + 1] + cat.item_multihot[ids],
    }


def test_layout_round_trip_by_hand() -> None:
    lay = StateLayout((("a", (2,), "float"), ("m", (3,), "bool"), ("c", (2, 2), "int")))
    st = {
        "a": torch.tensor([[0.5, -1.0]]),
        "m": torch.tensor([[True, False, True]]),
        "c": torch.tensor([[[1, 7], [0, 3]]]),
    }
    flat = lay.flatten(st)
    assert flat.shape == (1, 9) and lay.dim == 9 and flat.dtype == torch.float32
    assert flat[0].tolist() == [0.5, -1.0, 1.0, 0.0, 1.0, 1.0, 7.0, 0.0, 3.0]
    back = lay.unflatten(flat)
    assert back["m"].dtype == torch.bool and back["c"].dtype == torch.long
    for k in st:
        assert torch.equal(back[k], st[k])
    assert lay.tag == "v1:a[2],m[3],c[2x2]"
    with pytest.raises(ValueError, match="'c' has shape"):
        lay.flatten({**st, "c": torch.zeros(1, 4)})
    with pytest.raises(ValueError, match="no field 'm'"):
        lay.flatten({"a": st["a"]})


@pytest.mark.parametrize("kind", ["exact", "bea", "lsh", "lsh-exact"])
def test_served_scores_equal_the_full_forward(kind: str) -> None:
    if kind.startswith("lsh"):
        model, cat = _long_model("exact" if kind == "lsh-exact" else "lsh")
    else:
        model, cat = _model(attention=kind)
    served = ServedAIF(model)
    ids = np.arange(cat.num_items)  # type: ignore[attr-defined]
    with torch.no_grad():
        # states survive flatten -> unflatten exactly
        us = model.user_state(cat.user_batch(2, {}))  # type: ignore[attr-defined]
        back = served.user_layout.unflatten(served.user_layout.flatten(us))
        assert set(back) == set(us) and all(torch.equal(back[k], us[k]) for k in us)
        its = model.item_state(cat.item_batch(ids))  # type: ignore[attr-defined]
        back_i = served.item_layout.unflatten(served.item_layout.flatten(its))
        assert all(torch.equal(back_i[k], its[k]) for k in its)
        for user in (0, 3):
            got = served.interact(
                served.user_state(cat.user_batch(user, {})), served.item_state(cat.item_batch(ids))
            )  # type: ignore[attr-defined]
            want = model(_joined(cat, user, ids))
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert got.shape == (cat.num_items,) and got.std() > 0  # type: ignore[attr-defined]


def test_runtime_modes_serve_the_same_aif_model(tmp_path: Path) -> None:
    model, cat = _model(attention="bea")
    served = ServedAIF(model)
    rng = np.random.default_rng(1)
    retr = FaissRetriever(rng.standard_normal((cat.num_items, 4)), rng.standard_normal((cat.num_users, 4)))  # type: ignore[attr-defined]
    store = EmbeddedStore(tmp_path, cat.num_items, served.item_state_dim)  # type: ignore[attr-defined]
    seq = AIFRuntime(served, cat, retr, None, mode="sequential", num_candidates=15)
    aif = AIFRuntime(served, cat, retr, store, mode="aif", num_candidates=15)
    ids = np.arange(cat.num_items)  # type: ignore[attr-defined]
    store.put(aif.version, ids, aif.item_states_online(served, ids))
    a, b = seq.rank(1, {"hour": 2}, k=15), aif.rank(1, {"hour": 2}, k=15)
    assert b.from_store == 15 and b.computed_online == 0 and a.computed_online == 15
    assert a.items == b.items and a.model_version == b.model_version == served.version
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        want = model(_joined(cat, 1, np.asarray(b.items))).numpy()
    np.testing.assert_allclose(b.scores, want, rtol=1e-5, atol=1e-6)  # == the full model's forward
    assert aif.rank(10_000, {}, k=3).cold_start  # unknown user: cold-start answer


def test_export_and_load_round_trip(tmp_path: Path) -> None:
    folder = make_serving_folder(tmp_path / "srv", 8, 20, attention="bea")
    served, cat = load_serving(folder)
    assert cat.num_items == 20 and cat.num_users == 8 and cat.item_keys[:3] == ["0", "1", "2"]
    again, _ = load_serving(folder)
    assert served.version == again.version and served.version.startswith("m")
    other = make_serving_folder(tmp_path / "srv2", 8, 20, seed=1, attention="bea")
    assert load_serving(other)[0].version != served.version  # other weights, other version
    (folder / "catalog.npz").unlink()
    with pytest.raises(FileNotFoundError, match="catalog.npz"):
        load_serving(folder)

"""AIF split model: full forward == UserTower/ItemTower/Interaction composition; the CTR trainer trains it."""

from __future__ import annotations

import pytest
import torch
from aif_helpers import movielens_like

from mercato.aif.model import AIFConfig, AIFModel
from mercato.ctr import CTRTrainer, FeatureSchema, TrainerConfig
from mercato.data import CTRSplits


def _splits(n: int = 96, seed: int = 0) -> CTRSplits:
    return movielens_like(8, 20, n=n, seed=seed)


@pytest.mark.parametrize("attention", ["exact", "bea"])
def test_full_model_equals_composition(attention: str) -> None:
    splits = _splits()
    schema = FeatureSchema.fit(splits, n_buckets=3, max_tokens=6)
    torch.manual_seed(0)
    model = AIFModel(schema, AIFConfig(attention=attention)).eval()  # type: ignore[arg-type]
    batch = schema.encode(splits.valid).batch(slice(None))
    with torch.no_grad():
        full = model(batch)
        served = model.interact(model.user_state(batch), model.item_state(batch))
    assert full.shape == (16,)
    torch.testing.assert_close(full, served)


def test_bea_with_item_bridges_matches_exact_twin() -> None:
    splits = _splits()
    schema = FeatureSchema.fit(splits, n_buckets=3, max_tokens=6)
    torch.manual_seed(0)
    exact = AIFModel(schema, AIFConfig(attention="exact", num_bridges=16)).eval()
    bea = AIFModel(schema, AIFConfig(attention="bea", num_bridges=16, bridge_tau=1e-4)).eval()
    bea.load_state_dict(exact.state_dict())
    batch = schema.encode(splits.valid).batch(slice(0, 1))
    with torch.no_grad():
        e = exact.item_state(batch)["item"]  # one candidate: make it bridge 0 exactly
        bea.bridges[:] = torch.cat([e, torch.randn(15, e.shape[1]) * 1e-3])
        exact.bridges[:] = bea.bridges
        torch.testing.assert_close(bea(batch), exact(batch), atol=1e-5, rtol=1e-5)


@pytest.mark.integration
def test_trainer_trains_the_split_model() -> None:
    splits = _splits(n=160)
    schema = FeatureSchema.fit(splits, n_buckets=3, max_tokens=6)
    torch.manual_seed(0)
    model = AIFModel(schema, AIFConfig(attention="bea"))
    before = {k: v.clone() for k, v in model.named_parameters()}
    cfg = TrainerConfig(epochs=2, batch_size=16, lr=1e-2, patience=0, progress=False)
    res = CTRTrainer(model, cfg, schema.encode(splits.train), schema.encode(splits.valid)).fit()
    assert "auc" in res.best_valid
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert set(changed) == set(before)  # every trainable parameter moved


def test_batched_attention_equals_the_pure_functions() -> None:
    from mercato.aif.approx import target_attention

    splits = _splits()
    schema = FeatureSchema.fit(splits, n_buckets=3, max_tokens=6)
    torch.manual_seed(0)
    model = AIFModel(schema).eval()
    batch = schema.encode(splits.valid).batch(slice(None))
    with torch.no_grad():
        us = model.user_state(batch)
        for i in range(4):
            want = target_attention(model.bridges, us["seq"][i], us["mask"][i])
            torch.testing.assert_close(us["bridges"][i], want)
        assert us["mask"].any(1).sum() > 0 and (~us["mask"].any(1)).sum() > 0  # empty and non-empty histories

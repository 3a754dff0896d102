"""MAL and its baselines on the ctr multi-output contract: shapes, serving oracle, one step, CAT target."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mercato.ctr.trainer import CTRTrainer, TrainerConfig
from mercato.mal.labels import cat_encode
from mercato.mal.mac import load_mac, load_vocabs
from mercato.mal.model import MAL, PRESETS, MACSchema, MALConfig, mac_to_tensors, preset
from mercato.mal.sim import SimConfig, simulate_to_mac

TINY = dict(n_clicks=2000, n_users=100, n_items=60, n_categories=5, n_brands=8, n_shops=9, n_days=4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("malm") / "sim"
    simulate_to_mac(SimConfig(**TINY, mean_path_len=2.5, base_logit=-2.0), root)
    schema = MACSchema.from_vocabs(load_vocabs(root))
    return schema, load_mac(root, "train"), load_mac(root, "test")


def _small(cfg: MALConfig) -> MALConfig:
    from dataclasses import replace

    return replace(cfg, bottom_dim=32, tower_dims=(16, 8, 4), emb_dim=8, attn_heads=2)


def test_outputs_and_losses(tiny):
    schema, tr, _ = tiny
    data = mac_to_tensors(tr, "last")
    batch = data.batch(slice(0, 32))
    model = MAL(schema, _small(preset("MAL")))
    out = model.outputs(batch)
    assert list(out) == ["last", "first", "linear", "mta", "cat"]
    assert out["last"].shape == (32,) and out["cat"].shape == (32, 16)
    assert set(model.losses(out, batch)) == {"primary", "first", "linear", "mta", "cat"}
    # the CAT target in the model equals mercato.mal.labels.cat_encode
    labels = {v: batch[f"label:{v}"].numpy() for v in ("last", "first", "linear", "mta")}
    assert model.cat_target(batch).tolist() == cat_encode(labels).tolist()


@pytest.mark.parametrize("name", PRESETS)
def test_serving_path_equals_full_primary(tiny, name):
    schema, tr, _ = tiny
    batch = mac_to_tensors(tr, "first").batch(slice(0, 64))
    model = MAL(schema, _small(preset(name, primary="first"))).eval()
    with torch.no_grad():
        full = model(batch)["first"]
    torch.testing.assert_close(model.serve(batch), full, rtol=0, atol=0)


@pytest.mark.parametrize("name", ["MAL", "MoAE", "MMoE", "Base"])
def test_one_step_changes_every_parameter(tiny, name):
    schema, tr, _ = tiny
    batch = mac_to_tensors(tr, "last").batch(slice(0, 256))
    torch.manual_seed(0)
    model = MAL(schema, _small(preset(name)))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.backward_losses(model.losses(model.outputs(batch), batch))
    opt.step()
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert unchanged == []


def test_pcgrad_step_differs_from_sum(tiny):
    schema, tr, _ = tiny
    batch = mac_to_tensors(tr, "last").batch(slice(0, 256))
    grads = {}
    for pc in (False, True):
        torch.manual_seed(0)
        model = MAL(schema, _small(preset("MAL", pcgrad=pc, lam=1.0)))
        model.backward_losses(model.losses(model.outputs(batch), batch))
        grads[pc] = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert grads[True].shape == grads[False].shape and not torch.allclose(grads[True], grads[False])


def test_padding_is_masked(tiny):
    schema, tr, _ = tiny
    batch = mac_to_tensors(tr, "last").batch(slice(0, 64))
    model = MAL(schema, _small(preset("MAL"))).eval()
    seq = batch["multihot"][:, :3, :]
    assert (seq == 0).any()
    # moving the embedding of the padding index (0) must not move the attention output: padded keys are masked
    with torch.no_grad():
        ref = model.encoder(batch)
        model.encoder.ad_emb[0].weight[0].add_(5.0)
        moved = model.encoder(batch)
    cols = slice(16 * 8, 17 * 8)  # attention output of ad_feat0_seq
    torch.testing.assert_close(moved[:, cols], ref[:, cols], rtol=1e-5, atol=1e-5)


def test_train_with_ctr_trainer_learns(tiny):
    schema, tr, te = tiny
    train, valid = (
        mac_to_tensors(tr.subset(tr.day < 2), "last"),
        mac_to_tensors(tr.subset(tr.day == 2), "last"),
    )
    torch.manual_seed(0)
    model = MAL(schema, _small(preset("MAL")))
    cfg = TrainerConfig(epochs=1, batch_size=128, lr=3e-3, patience=0, monitor="auc", progress=False)
    res = CTRTrainer(model, cfg, train, valid).fit()
    assert res.global_step == int(np.ceil(len(train) / 128)) and np.isfinite(res.history[0]["train_loss"])


def test_overfit_16_rows_loss_falls(tiny):
    schema, tr, _ = tiny
    batch = mac_to_tensors(tr, "last").batch(slice(0, 16))
    torch.manual_seed(0)
    model = MAL(schema, _small(preset("MAL")))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        opt.zero_grad()
        terms = model.losses(model.outputs(batch), batch)
        loss = sum(terms.values())
        first = float(loss.detach()) if first is None else first
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.2 * first


def test_config_errors():
    with pytest.raises(ValueError, match="also an auxiliary"):
        MALConfig(primary="last", aux_views=("last",))
    with pytest.raises(ValueError, match="unknown model"):
        preset("HoME")

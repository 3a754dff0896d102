"""FAT model tests: shapes, training signal, oracle vs plain attention, export, permutation, parameter count."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mercato.core.checkpoint import load_checkpoint, save_checkpoint
from mercato.ctr.attention import MultiHeadSelfAttention
from mercato.ctr.schema import CTRTensors, FeatureSchema
from mercato.ctr.transformer import TransformerBlock
from mercato.fat import (
    BasisBank,
    FATBlock,
    FATConfig,
    FieldAwareTransformer,
    FieldDecomposedAttention,
    FieldLinear,
    fat_parameter_count,
)

Tiny = tuple[FeatureSchema, CTRTensors]
SMALL = FATConfig(
    embed_dim=8, num_heads=2, num_layers=2, ffn_dim=16, num_bases=4, meta_dim=4, top_k=2, head_units=(8,)
)
VARIANTS = {
    "default": SMALL,
    "mul": dataclasses.replace(SMALL, modulation="mul", modulation_init_std=0.01),
    "add-shared-head": dataclasses.replace(SMALL, modulation="add", modulation_per_head=False),
    "post-ln": dataclasses.replace(SMALL, norm="post"),
    "no-hyper": dataclasses.replace(SMALL, hypernetwork=False),
    "shared-bases-gumbel": dataclasses.replace(SMALL, share_bases_across_layers=True, router_noise="gumbel"),
    "ablate-shared-qkv": dataclasses.replace(SMALL, per_field_qkv=False, field_aware_output=False),
    "concat-head": dataclasses.replace(SMALL, pooling="concat"),
}


def two_rows(schema: FeatureSchema) -> dict[str, torch.Tensor]:
    """A hand-built two-row batch; the second row's multi-hot field is empty (masked key)."""
    f_s, f_m = len(schema.sparse_fields), len(schema.multihot_fields)
    return {
        "sparse": torch.tensor([[1] * f_s, [2] * f_s]),
        "multihot": torch.tensor([[[1, 2, 0]] * f_m, [[0, 0, 0]] * f_m]),
        "label": torch.tensor([1.0, 0.0]),
        "user": torch.tensor([0, 1]),
    }


def body_parameters(model: FieldAwareTransformer) -> int:
    skip = {id(p) for p in model.embedding.parameters()} | {id(p) for p in model.head.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_output_shape(name: str, tiny: Tiny) -> None:
    schema, _ = tiny
    model = FieldAwareTransformer(schema, VARIANTS[name])
    batch = two_rows(schema)
    assert model(batch).shape == (2,)
    assert model.encode(batch).shape == (2, schema.num_fields, 8)
    assert torch.isfinite(model(batch)).all()


@pytest.mark.parametrize("name", ["dense-router", "no-hyper", "shared-bases"])
def test_one_step_changes_every_parameter(name: str, tiny: Tiny) -> None:
    schema, data = tiny
    cfg = {
        "dense-router": dataclasses.replace(SMALL, top_k=0, load_balance_weight=0.1),
        "no-hyper": VARIANTS["no-hyper"],
        "shared-bases": dataclasses.replace(SMALL, top_k=0, share_bases_across_layers=True),
    }[name]
    model = FieldAwareTransformer(schema, cfg)
    batch = data.batch(slice(None))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch["label"])
    (loss + model.auxiliary_loss()).backward()
    opt.step()
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    assert len(before) > 10


def test_top_k_sends_gradient_only_to_selected_bases(tiny: Tiny) -> None:
    schema, data = tiny
    model = FieldAwareTransformer(schema, dataclasses.replace(SMALL, num_bases=8, top_k=1))
    batch = data.batch(slice(None))
    torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch["label"]).backward()
    lin = model.blocks[0].attn.q
    assert isinstance(lin, FieldLinear) and lin.last_routing is not None
    used = (lin.last_routing > 0).any(dim=0)  # (M,)
    bank = lin.basis_bank
    assert bank is not None and bank.bases.grad is not None
    has_grad = bank.bases.grad.flatten(1).abs().sum(dim=1) > 0  # (M,)
    assert torch.equal(has_grad, used)
    assert int(used.sum()) <= schema.num_fields


def test_overfits_16_samples(tiny: Tiny) -> None:
    schema, data = tiny
    model = FieldAwareTransformer(schema, SMALL)
    batch = data.batch(slice(0, 16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch["label"])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def _tie(lin: FieldLinear, linear: torch.nn.Linear) -> None:
    """Set every field's weight and bias of ``lin`` to those of ``linear``."""
    assert lin.weight is not None and lin.bias is not None
    with torch.no_grad():
        lin.weight.copy_(linear.weight.t().expand_as(lin.weight))
        lin.bias.copy_(linear.bias.expand_as(lin.bias))


@pytest.mark.parametrize(("mode", "per_head"), [("one_plus", True), ("mul", False), ("add", True)])
def test_oracle_tied_weights_and_neutral_modulation_equal_plain_attention(mode: str, per_head: bool) -> None:
    torch.manual_seed(0)
    cfg = FATConfig(
        embed_dim=8, num_heads=2, hypernetwork=False, modulation=mode, modulation_per_head=per_head
    )  # type: ignore[arg-type]
    fat = FieldDecomposedAttention(cfg, num_fields=5)
    plain = MultiHeadSelfAttention(8, 2)
    for mine, ref in ((fat.q, plain.q), (fat.k, plain.k), (fat.v, plain.v), (fat.o, plain.o)):
        assert isinstance(ref, torch.nn.Linear)
        _tie(mine, ref)
    with torch.no_grad():
        fat.modulation.fill_(1.0 if mode == "mul" else 0.0)
    x = torch.randn(3, 5, 8)
    mask = torch.tensor([[True] * 5, [True, True, True, True, False], [True] * 5])
    ids = torch.arange(5)
    torch.testing.assert_close(fat(x, ids, key_mask=mask), plain(x, key_mask=mask))
    with torch.no_grad():  # a non-neutral modulation must change the output
        fat.modulation[..., 0, 1] += 2.0
    assert not torch.allclose(fat(x, ids, key_mask=mask), plain(x, key_mask=mask))


def test_oracle_fat_block_equals_transformer_block() -> None:
    torch.manual_seed(0)
    cfg = FATConfig(embed_dim=8, num_heads=2, ffn_dim=16, hypernetwork=False, ffn_activation="silu")
    fat, ref = FATBlock(cfg, num_fields=4), TransformerBlock(8, 2, ffn_dim=16, ffn_activation="silu")
    fat.load_state_dict({k: v for k, v in fat.state_dict().items()})
    for mine, lin in (
        (fat.attn.q, ref.attn.q),
        (fat.attn.k, ref.attn.k),
        (fat.attn.v, ref.attn.v),
        (fat.attn.o, ref.attn.o),
        (fat.ffn.w1, ref.ffn[0]),
        (fat.ffn.w2, ref.ffn[2]),
    ):
        assert isinstance(lin, torch.nn.Linear)
        _tie(mine, lin)
    x = torch.randn(2, 4, 8)
    torch.testing.assert_close(fat(x, torch.arange(4)), ref(x))


def test_oracle_identical_bases_compose_to_tied_weights() -> None:
    torch.manual_seed(0)
    bank = BasisBank(num_bases=6, in_dim=4, out_dim=3, meta_dim=5)
    with torch.no_grad():
        bank.bases.copy_(bank.bases[0].expand_as(bank.bases))
    w, _, routing = bank.compose(torch.randn(7, 5), top_k=2)
    assert w.shape == (7, 4, 3)
    torch.testing.assert_close(w, bank.bases[0].expand(7, 4, 3))
    assert (routing > 0).sum(dim=1).eq(2).all()


@pytest.mark.parametrize("name", ["default", "shared-bases-gumbel", "no-hyper", "concat-head"])
def test_export_matches_hypernetwork_path(name: str, tiny: Tiny, tmp_path: object) -> None:
    schema, data = tiny
    model = FieldAwareTransformer(schema, VARIANTS[name])
    batch = data.batch(slice(None))
    model(batch).sum().backward()  # a training forward leaves graph-attached routing state behind
    model.eval()
    served = model.export()
    torch.testing.assert_close(served(batch), model(batch))
    assert served.meta is None and served.exported
    assert not any(isinstance(m, BasisBank) for m in served.modules())
    assert all(lin.basis_bank is None for lin in served.field_linears())
    assert model.meta is not None or name == "no-hyper"  # the original keeps its hypernetwork
    save_checkpoint(tmp_path / "served", served, None, {})  # type: ignore[operator]
    restored = FieldAwareTransformer(schema, dataclasses.replace(VARIANTS[name], hypernetwork=False)).eval()
    restored.load_state_dict(load_checkpoint(tmp_path / "served").model_state)  # type: ignore[operator]
    torch.testing.assert_close(restored(batch), model(batch))


def test_shared_bases_checkpoint_round_trip(tiny: Tiny, tmp_path: object) -> None:
    schema, data = tiny
    model = FieldAwareTransformer(schema, VARIANTS["shared-bases-gumbel"]).eval()
    save_checkpoint(tmp_path / "ck", model, None, {})  # type: ignore[operator]
    other = FieldAwareTransformer(schema, VARIANTS["shared-bases-gumbel"]).eval()
    other.load_state_dict(load_checkpoint(tmp_path / "ck").model_state)  # type: ignore[operator]
    batch = data.batch(slice(None))
    torch.testing.assert_close(other(batch), model(batch))


@pytest.mark.parametrize("name", ["default", "mul", "no-hyper", "add-shared-head"])
def test_permuting_fields_with_their_ids_permutes_outputs(name: str, tiny: Tiny) -> None:
    schema, _ = tiny
    cfg = dataclasses.replace(VARIANTS[name], modulation_init_std=0.5)
    model = FieldAwareTransformer(schema, cfg).eval()
    assert model.field_bias is not None
    with torch.no_grad():
        model.field_bias.normal_()
    f = schema.num_fields
    tokens = torch.randn(3, f, 8)
    perm = torch.tensor([3, 0, 4, 1, 2])
    out = model.encode_tokens(tokens)
    out_perm = model.encode_tokens(tokens[:, perm], field_ids=perm)
    torch.testing.assert_close(out_perm, out[:, perm])
    # the ids matter: permuting tokens alone (asymmetric w, per-field weights) does not permute the outputs
    assert not torch.allclose(model.encode_tokens(tokens[:, perm]), out[:, perm], atol=1e-4)


@pytest.mark.parametrize(
    "cfg",
    [
        SMALL,
        dataclasses.replace(SMALL, hypernetwork=False),
        dataclasses.replace(SMALL, share_bases_across_layers=True, modulation_per_head=False),
        dataclasses.replace(SMALL, per_field_qkv=False, field_bias=False, norm="post"),
        dataclasses.replace(SMALL, hypernetwork=False, attn_dim=12, num_heads=3, field_aware_ffn=False),
    ],
)
def test_parameter_count_matches_formula(cfg: FATConfig, tiny: Tiny) -> None:
    schema, _ = tiny
    assert body_parameters(FieldAwareTransformer(schema, cfg)) == fat_parameter_count(cfg, schema.num_fields)


def test_parameter_count_scales_with_fields_as_documented() -> None:
    d = 32
    free = FATConfig(embed_dim=d, num_heads=4, num_layers=1, hypernetwork=False)
    based = dataclasses.replace(free, hypernetwork=True, num_bases=8, meta_dim=16)
    dd = 4 * d * d + 2 * d * free.hidden_width  # Q, K, V, O and the FFN per field
    # free per-field weights: every extra field costs its own projections (O(F d d_k)) plus O(F) modulation
    assert fat_parameter_count(free, 20) - fat_parameter_count(free, 10) > 10 * dd
    # with bases: the d^2 term is M-fold, independent of F; an extra field costs k + biases + modulation
    growth = fat_parameter_count(based, 20) - fat_parameter_count(based, 10)
    biases = 3 * d + d + free.hidden_width + d
    assert growth == 10 * (16 + d + biases) + 4 * (20**2 - 10**2)
    assert fat_parameter_count(based, 10) - fat_parameter_count(based, 10 - 1) < dd


def test_modulation_matrix_reads_the_learned_deviation(tiny: Tiny) -> None:
    schema, _ = tiny
    model = FieldAwareTransformer(
        schema, dataclasses.replace(SMALL, modulation="mul", modulation_init_mean=1.0)
    )
    f = schema.num_fields
    assert torch.equal(model.modulation_matrix(), torch.zeros(f, f))
    with torch.no_grad():
        model.blocks[1].attn.modulation[:, 0, 2] = 3.0  # layer 1, all heads: query field 0, key field 2
    m = model.modulation_matrix()
    assert m.shape == (f, f) and m[0, 2].item() == pytest.approx(1.0) and m[2, 0].item() == 0.0
    assert model.modulation_matrix(layer=1)[0, 2].item() == pytest.approx(2.0)

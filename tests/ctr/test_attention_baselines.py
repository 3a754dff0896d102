"""AutoInt and the vanilla Transformer baseline: shapes, training signal, and attention by hand."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from mercato.ctr import CTRModel, FeatureSchema
from mercato.ctr.attention import (
    MultiHeadSelfAttention,
    field_softmax,
    merge_heads,
    scaled_dot_product_attention,
    split_heads,
)
from mercato.ctr.autoint import AutoInt, AutoIntConfig
from mercato.ctr.transformer import TransformerCTR, TransformerCTRConfig, field_key_mask
from mercato.data import CTRSplits

MODELS: list[tuple[type[CTRModel], Any]] = [
    (AutoInt, AutoIntConfig(embed_dim=4, num_layers=2, num_heads=2, attn_dim=8)),
    (
        AutoInt,
        AutoIntConfig(embed_dim=4, num_layers=1, attn_dim=8, dnn_units=(8,), use_scale=True, layer_norm=True),
    ),
    (TransformerCTR, TransformerCTRConfig(embed_dim=8, num_heads=2, ffn_dim=16, head_units=(8,))),
    (TransformerCTR, TransformerCTRConfig(embed_dim=8, num_heads=2, norm="post", position_embedding=False)),
    (TransformerCTR, TransformerCTRConfig(embed_dim=8, num_heads=2, ffn_dim=16, pooling="concat")),
]
IDS = ["autoint", "autoint-plus", "transformer", "transformer-postln", "transformer-concat"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _two_rows(schema: FeatureSchema) -> dict[str, torch.Tensor]:
    f_s, f_m = len(schema.sparse_fields), len(schema.multihot_fields)
    return {
        "sparse": torch.tensor([[1] * f_s, [2] * f_s]),
        "multihot": torch.tensor([[[1, 2, 0]] * f_m, [[0, 0, 0]] * f_m]),
        "label": torch.tensor([1.0, 0.0]),
        "user": torch.tensor([0, 1]),
    }


@pytest.mark.parametrize(("cls", "cfg"), MODELS, ids=IDS)
def test_output_shape(cls: type[CTRModel], cfg: Any, schema: FeatureSchema) -> None:
    out = cls(schema, cfg)(_two_rows(schema))  # type: ignore[call-arg]
    assert out.shape == (2,) and torch.isfinite(out).all()


@pytest.mark.parametrize(("cls", "cfg"), MODELS, ids=IDS)
def test_one_step_changes_every_parameter(
    cls: type[CTRModel], cfg: Any, schema: FeatureSchema, splits: CTRSplits
) -> None:
    torch.manual_seed(0)
    model = cls(schema, cfg)  # type: ignore[call-arg]
    batch = schema.encode(splits.train).batch(slice(None))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch["label"]).backward()
    opt.step()
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"


@pytest.mark.parametrize(("cls", "cfg"), MODELS, ids=IDS)
def test_overfits_16_samples(cls: type[CTRModel], cfg: Any, schema: FeatureSchema, splits: CTRSplits) -> None:
    torch.manual_seed(0)
    model = cls(schema, cfg)  # type: ignore[call-arg]
    batch = schema.encode(splits.train).batch(slice(0, 16))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(80):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch["label"])
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_scaled_dot_product_attention_by_hand() -> None:
    q = torch.tensor([[[[1.0, 1.0]]]])  # (1, 1, 1, 2)
    k = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])  # (1, 1, 2, 2)
    v = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    out, attn = scaled_dot_product_attention(q, k, v)
    a = math.exp(2 / math.sqrt(2)) / (math.exp(2 / math.sqrt(2)) + 1)
    torch.testing.assert_close(out.flatten(), torch.tensor([a, 1 - a]))
    _, unscaled = scaled_dot_product_attention(q, k, v, scale=False)
    assert unscaled[0, 0, 0, 0].item() == pytest.approx(math.exp(2) / (math.exp(2) + 1))


def test_split_merge_heads_round_trip_and_mha_matches_reference() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 5, 8)
    assert split_heads(x, 4).shape == (2, 4, 5, 2)
    torch.testing.assert_close(merge_heads(split_heads(x, 4)), x)
    mha = MultiHeadSelfAttention(8, 2)
    ref = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    assert isinstance(mha.o, torch.nn.Linear)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.q.weight, mha.k.weight, mha.v.weight]))
        ref.in_proj_bias.copy_(torch.cat([mha.q.bias, mha.k.bias, mha.v.bias]))
        ref.out_proj.weight.copy_(mha.o.weight)
        ref.out_proj.bias.copy_(mha.o.bias)
    torch.testing.assert_close(mha(x), ref(x, x, x, need_weights=False)[0])


def test_field_key_mask_masks_empty_multihot_only(schema: FeatureSchema) -> None:
    mask = field_key_mask(_two_rows(schema))
    f_s = len(schema.sparse_fields)
    assert mask.shape == (2, schema.num_fields)
    assert mask[:, :f_s].all() and mask[0, f_s:].all() and not mask[1, f_s:].any()
    empty = {
        "sparse": torch.zeros(1, 0, dtype=torch.long),
        "multihot": torch.zeros(1, 2, 3, dtype=torch.long),
    }
    assert field_key_mask(empty).all()  # nothing valid: attend to everything rather than NaN


@pytest.mark.parametrize("f", [7, 20])  # written-out branch, ATen branch
def test_field_softmax_matches_torch_softmax_with_masked_keys(f: int) -> None:
    torch.manual_seed(0)
    scores = (5 * torch.randn(3, 2, f, f)).requires_grad_()
    masked = scores.masked_fill(torch.rand(3, 1, 1, f) < 0.3, float("-inf"))
    masked = masked.masked_fill(torch.arange(f) == 0, 0.0)  # keep one key per row
    ours, ref = field_softmax(masked), torch.softmax(masked, dim=-1)
    torch.testing.assert_close(ours, ref)
    assert (ours[torch.isinf(masked)] == 0).all()
    g = torch.randn_like(ref)
    (grad_ours,) = torch.autograd.grad((ours * g).sum(), scores, retain_graph=True)
    (grad_ref,) = torch.autograd.grad((ref * g).sum(), scores)
    torch.testing.assert_close(grad_ours, grad_ref)

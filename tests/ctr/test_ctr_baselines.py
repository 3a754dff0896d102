from __future__ import annotations

from typing import Any

import pytest
import torch

from mercato.ctr import CTRModel, FeatureSchema
from mercato.ctr.autoint import AutoIntConfig
from mercato.ctr.baselines import FM, LR, DCNv2, DCNv2Config, DeepFM, DeepFMConfig, FMConfig, LRConfig
from mercato.ctr.transformer import TransformerCTRConfig
from mercato.data import CTRSplits

MODELS: list[tuple[type[CTRModel], Any]] = [
    (LR, LRConfig()),
    (FM, FMConfig(embed_dim=4)),
    (DeepFM, DeepFMConfig(embed_dim=4, hidden_units=(8, 8))),
    (DCNv2, DCNv2Config(embed_dim=4, hidden_units=(8,), structure="parallel")),
    (DCNv2, DCNv2Config(embed_dim=4, hidden_units=(8,), structure="stacked")),
    (DCNv2, DCNv2Config(embed_dim=4, hidden_units=(8,), low_rank=2, num_experts=2)),
]
IDS = ["lr", "fm", "deepfm", "dcnv2-parallel", "dcnv2-stacked", "dcnv2-mix"]


def _two_rows(schema: FeatureSchema) -> dict[str, torch.Tensor]:
    """A hand-built two-row batch: sparse (2, F_s), multihot (2, F_m, L)."""
    f_s, f_m = len(schema.sparse_fields), len(schema.multihot_fields)
    return {
        "sparse": torch.tensor([[1] * f_s, [2] * f_s]),
        "multihot": torch.tensor([[[1, 2, 0]] * f_m, [[3, 0, 0]] * f_m]),
        "label": torch.tensor([1.0, 0.0]),
        "user": torch.tensor([0, 1]),
    }


@pytest.mark.parametrize(("cls", "cfg"), MODELS, ids=IDS)
def test_output_shape(cls: type[CTRModel], cfg: Any, schema: FeatureSchema) -> None:
    model = cls(schema, cfg)  # type: ignore[call-arg]
    out = model(_two_rows(schema))
    assert out.shape == (2,)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(("cls", "cfg"), MODELS, ids=IDS)
def test_one_step_changes_every_parameter(
    cls: type[CTRModel], cfg: Any, schema: FeatureSchema, splits: CTRSplits
) -> None:
    torch.manual_seed(0)
    model = cls(schema, cfg)  # type: ignore[call-arg]
    batch = schema.encode(splits.train).batch(slice(None))  # all 64 rows: every table is touched
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch["label"])
    loss.backward()
    opt.step()
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    assert len(before) >= 2


@pytest.mark.parametrize(("cls", "cfg"), MODELS, ids=IDS)
def test_overfits_16_samples(cls: type[CTRModel], cfg: Any, schema: FeatureSchema, splits: CTRSplits) -> None:
    torch.manual_seed(0)
    model = cls(schema, cfg)  # type: ignore[call-arg]
    batch = schema.encode(splits.train.iloc[:16]).batch(slice(None))
    opt = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(60):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(batch), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_dcnv2_rejects_bad_structure(schema: FeatureSchema) -> None:
    with pytest.raises(ValueError, match="parallel"):
        DCNv2(schema, DCNv2Config(structure="sideways"))  # type: ignore[arg-type]


def test_deepfm_is_fm_plus_dnn(schema: FeatureSchema) -> None:
    model = DeepFM(schema, DeepFMConfig(embed_dim=4, hidden_units=(8,)))
    batch = _two_rows(schema)
    with torch.no_grad():
        model.dnn.net[-1].weight.zero_()
        model.dnn.net[-1].bias.fill_(0.25)
        fm = FM(schema, FMConfig(embed_dim=4))
        fm.linear.load_state_dict(model.linear.state_dict())
        fm.embedding.load_state_dict(model.embedding.state_dict())
        assert torch.allclose(model(batch), fm(batch) + 0.25)


@pytest.mark.parametrize(
    ("cls", "key", "value"),
    [
        (FMConfig, "embed_dim", 0),
        (DeepFMConfig, "embed_dim", 0),
        (DeepFMConfig, "dropout", 1.5),
        (DeepFMConfig, "hidden_units", (8, 0)),
        (DCNv2Config, "embed_dim", 0),
        (DCNv2Config, "dropout", -0.1),
        (DCNv2Config, "low_rank", 0),
        (AutoIntConfig, "embed_dim", 0),
        (AutoIntConfig, "dropout", 1.5),
        (TransformerCTRConfig, "embed_dim", 0),
        (TransformerCTRConfig, "dropout", 1.0),
        (LRConfig, "init_std", -1.0),
    ],
)
def test_model_configs_validate_values_naming_the_key(cls: type, key: str, value: object) -> None:
    with pytest.raises(ValueError, match=rf"^{key} must "):
        cls(**{key: value})

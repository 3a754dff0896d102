"""The multi-output CTR contract (mercato.ctr.base): a two-head model with a categorical head built from two
labels, a split user/item/interaction model, per-head metrics, a monitored head, PCGrad and weights."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from ctr_testdata import make_splits
from torch import nn

from mercato.core.metrics import auc, gauc, logloss, pcoc
from mercato.ctr import (
    MLP,
    CTRTensors,
    CTRTrainer,
    FeatureSchema,
    FieldEmbedding,
    Outputs,
    SplitCTRModel,
    TrainerConfig,
    pcgrad,
    pcgrad_backward,
    weighted_bce,
)
from mercato.ctr.base import CTRModel
from mercato.data import CTRSplits


def _with_conv(splits: CTRSplits) -> CTRSplits:
    """Add a fractional auxiliary label ``conv`` (in [0, 1]) and a weight column to every split."""
    out = {}
    for name in ("train", "valid", "test"):
        df = getattr(splits, name).copy()
        rng = np.random.default_rng(len(df))
        df["conv"] = df["label"] * np.round(rng.random(len(df)), 2)  # fractional, 0 where not clicked
        df["w"] = 1.0 + (df["item_id"] % 2)
        out[name] = df
    return dataclasses.replace(splits, **out)


@pytest.fixture
def mt_splits() -> CTRSplits:
    return _with_conv(make_splits())


@pytest.fixture
def mt_schema(mt_splits: CTRSplits) -> FeatureSchema:
    return FeatureSchema.fit(mt_splits, n_buckets=4, max_tokens=3, labels=["conv"], weight="w")


class TwoHead(CTRModel):
    """Shared bottom; heads ``ctr`` (primary), ``conv`` (fractional target) and ``cat``: a 4-way softmax over
    the Cartesian product of the binarised click and conv labels (MAL's CAT with two labels)."""

    def __init__(self, schema: FeatureSchema, lam: float = 0.3, surgery: bool = False) -> None:
        super().__init__()
        self.lam, self.surgery = lam, surgery
        self.embedding = FieldEmbedding(schema, 4)
        self.bottom = MLP(schema.num_fields * 4, (8,))
        self.ctr = nn.Linear(8, 1)
        self.conv = nn.Linear(8, 1)
        self.cat = nn.Linear(8, 4)

    def forward(self, batch: dict[str, torch.Tensor]) -> Outputs:
        h = self.bottom(self.embedding(batch).flatten(1))  # (B, 8)
        return {"ctr": self.ctr(h).squeeze(-1), "conv": self.conv(h).squeeze(-1), "cat": self.cat(h)}

    def losses(self, outputs: Outputs, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        y_cat = (batch["label:label"] > 0.5).long() + 2 * (batch["label:conv"] > 0).long()  # (B,) in 0..3
        return {
            "ctr": weighted_bce(outputs["ctr"], batch["label"], batch.get("weight")),
            "conv": self.lam * weighted_bce(outputs["conv"], batch["label:conv"], None),
            "cat": self.lam * nn.functional.cross_entropy(outputs["cat"], y_cat),
        }

    def backward_losses(self, losses: dict[str, torch.Tensor]) -> None:
        if self.surgery:
            pcgrad_backward(losses, [p for p in self.parameters() if p.requires_grad])
        else:
            super().backward_losses(losses)


def _cfg(**kw: object) -> TrainerConfig:
    base = {"epochs": 2, "batch_size": 16, "lr": 1e-2, "patience": 0, "progress": False}
    return TrainerConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_tensors_carry_named_labels_and_weights(mt_schema: FeatureSchema, mt_splits: CTRSplits) -> None:
    t = mt_schema.encode(mt_splits.train)
    assert t.label_names == ["label", "conv"] and mt_schema.labels == ["label", "conv"]
    assert torch.equal(t.aux_labels["conv"], torch.tensor(mt_splits.train["conv"].to_numpy(np.float32)))
    assert t.weight is not None and set(t.weight.tolist()) == {1.0, 2.0}
    b = t.batch(torch.tensor([3, 1]))
    assert set(b) == {"sparse", "multihot", "label", "user", "label:label", "label:conv", "weight"}
    sub = t.subset(slice(0, 5))
    assert len(sub) == 5 and torch.equal(sub.aux_labels["conv"], t.aux_labels["conv"][:5])
    again = FeatureSchema.from_json(mt_schema.to_json())
    assert again.labels == ["label", "conv"] and again.weight == "w"


def test_label_or_weight_column_as_feature_is_refused(mt_splits: CTRSplits) -> None:
    leaky = dataclasses.replace(mt_splits, categorical=[*mt_splits.categorical, "label"])
    with pytest.raises(ValueError, match="column 'label' is the label column"):
        FeatureSchema.fit(leaky)
    with pytest.raises(ValueError, match="column 'year' is the weight column"):
        FeatureSchema.fit(mt_splits, weight="year")


def test_labels_outside_unit_interval_are_refused(mt_schema: FeatureSchema, mt_splits: CTRSplits) -> None:
    bad = mt_splits.train.copy()
    bad.loc[0, "conv"] = 1.5
    with pytest.raises(ValueError, match="label column 'conv'"):
        mt_schema.encode(bad)


def test_two_head_per_head_metrics_equal_core_metrics(mt_schema: FeatureSchema, mt_splits: CTRSplits) -> None:
    train, valid = mt_schema.encode(mt_splits.train), mt_schema.encode(mt_splits.valid)
    torch.manual_seed(0)
    model = TwoHead(mt_schema)
    trainer = CTRTrainer(model, _cfg(eval_batch_size=7), train, valid)
    got = trainer.evaluate(valid)
    model.eval()
    with torch.no_grad():
        out = model(valid.batch(slice(None)))
    p_ctr = torch.sigmoid(out["ctr"]).double().numpy()
    p_conv = torch.sigmoid(out["conv"]).double().numpy()
    y, conv, u = valid.label.double().numpy(), valid.aux_labels["conv"].double().numpy(), valid.user.numpy()
    assert got["auc"] == pytest.approx(auc(y, p_ctr), abs=1e-9)
    assert got["gauc"] == pytest.approx(gauc(y, p_ctr, groups=u), abs=1e-9)
    assert got["logloss"] == pytest.approx(logloss(y, p_ctr), abs=1e-6)
    assert got["pcoc"] == pytest.approx(pcoc(y, p_ctr), rel=1e-6)
    assert got["conv/logloss"] == pytest.approx(logloss(conv, p_conv), abs=1e-6)
    assert got["conv/pcoc"] == pytest.approx(pcoc(conv, p_conv), rel=1e-6)
    assert np.isnan(got["conv/auc"])  # fractional labels: AUC is undefined, reported NaN with a warning
    assert not any(k.startswith("cat/") for k in got)  # a (B, 4) head is not scored by default
    only = CTRTrainer(model, _cfg(metrics=("logloss",), monitor="logloss", eval_heads=("ctr",)), train, valid)
    assert list(only.evaluate(valid)) == ["logloss"]


def test_one_step_changes_every_trainable_parameter(mt_schema: FeatureSchema, mt_splits: CTRSplits) -> None:
    train = mt_schema.encode(mt_splits.train)
    for surgery in (False, True):
        torch.manual_seed(0)
        model = TwoHead(mt_schema, surgery=surgery)
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        trainer = CTRTrainer(model, _cfg(batch_size=64), train, train)
        trainer._step(model, torch.arange(len(train)), 0, 0)
        unchanged = [k for k, v in model.named_parameters() if torch.equal(v, before[k])]
        assert not unchanged, (surgery, unchanged)


def test_loss_falls_when_overfitting_16_samples(mt_schema: FeatureSchema, mt_splits: CTRSplits) -> None:
    train = mt_schema.encode(mt_splits.train).subset(slice(0, 16))
    torch.manual_seed(0)
    model = TwoHead(mt_schema)
    result = CTRTrainer(model, _cfg(epochs=60, batch_size=16, lr=3e-2), train, train).fit()
    first, last = result.history[0]["train_loss"], result.history[-1]["train_loss"]
    assert last < 0.2 * first
    assert result.history[-1]["valid_auc"] == 1.0


def test_monitor_another_head_and_a_wrong_monitor(mt_schema: FeatureSchema, mt_splits: CTRSplits) -> None:
    train, valid = mt_schema.encode(mt_splits.train), mt_schema.encode(mt_splits.valid)
    torch.manual_seed(0)
    result = CTRTrainer(TwoHead(mt_schema), _cfg(epochs=3, monitor="conv/logloss"), train, valid).fit()
    best = min(result.history, key=lambda h: h["valid_conv/logloss"])
    assert result.best_epoch == int(best["epoch"])
    with pytest.raises(ValueError, match="monitor 'cvr/auc' is not an evaluated metric"):
        CTRTrainer(TwoHead(mt_schema), _cfg(monitor="cvr/auc"), train, valid).fit()
    with pytest.raises(ValueError, match="monitor 'pcoc' is not among metrics"):
        TrainerConfig(metrics=("auc",), monitor="pcoc")


def test_weights_scale_the_default_loss(schema: FeatureSchema, splits: CTRSplits) -> None:
    logits, y = torch.tensor([0.3, -1.0, 2.0]), torch.tensor([1.0, 0.0, 0.25])
    w = torch.tensor([2.0, 0.0, 1.0])
    per_row = nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    assert weighted_bce(logits, y, w).item() == pytest.approx(((per_row * w).sum() / 3).item())
    assert weighted_bce(logits, y, None).item() == pytest.approx(per_row.mean().item())


def test_pcgrad_projects_only_conflicting_gradients() -> None:
    g1, g2 = torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])  # g1 . g2 = -1 < 0
    # g1' = g1 - (-1 / 2) g2 = (0.5, 0.5); g2' = g2 - (-1 / 1) g1 = (0, 1); sum = (0.5, 1.5)
    assert torch.allclose(pcgrad([g1, g2]), torch.tensor([0.5, 1.5]))
    g3 = torch.tensor([1.0, 1.0])  # no conflict with g1: plain sum
    assert torch.allclose(pcgrad([g1, g3]), g1 + g3)


class SplitTwoTower(SplitCTRModel):
    """User tower (user_id, gender), item tower (item_id, year, genres), interaction MLP on both states."""

    def __init__(self, schema: FeatureSchema) -> None:
        super().__init__()
        self.embedding = FieldEmbedding(schema, 4)
        self.user_fields = schema.field_positions(["user_id", "gender"])
        self.item_fields = schema.field_positions(["item_id", "year", "genres"])
        self.user_tower = MLP(len(self.user_fields) * 4, (8,))
        self.item_tower = MLP(len(self.item_fields) * 4, (8,))
        self.head = MLP(16, (8,), output_dim=1)

    def user_state(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.user_tower(self.embedding(batch)[:, self.user_fields].flatten(1))  # (B, 8)

    def item_state(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.item_tower(self.embedding(batch)[:, self.item_fields].flatten(1))  # (B, 8)

    def interact(
        self, user_state: torch.Tensor, item_state: torch.Tensor, batch: dict[str, torch.Tensor] | None = None
    ) -> torch.Tensor:
        dot = (user_state * item_state).sum(-1)  # (B,)
        return dot + self.head(torch.cat([user_state, item_state], dim=1)).squeeze(-1)  # (B,)


def test_split_model_trains_as_one_and_precomputed_items_equal_full_forward(
    schema: FeatureSchema, splits: CTRSplits
) -> None:
    train, valid = schema.encode(splits.train), schema.encode(splits.valid)
    torch.manual_seed(0)
    model = SplitTwoTower(schema)
    result = CTRTrainer(model, _cfg(epochs=3), train, valid).fit()
    assert result.global_step == 12 and {"auc", "gauc", "logloss", "pcoc"} <= set(result.best_valid)
    model.eval()
    rows = splits.valid
    with torch.no_grad():
        full = model(valid.batch(slice(None)))  # (N,)
        item_cols = ["item_id", "year", "genres"]  # the item's features (random per row in this toy data)
        items = rows.drop_duplicates(item_cols).reset_index(drop=True)  # nearline: one state per item
        item_states = model.item_state(schema.encode(items).batch(slice(None)))  # (I, 8)
        lookup = {key: i for i, key in enumerate(items[item_cols].itertuples(index=False))}
        gathered = item_states[torch.tensor([lookup[k] for k in rows[item_cols].itertuples(index=False)])]
        served = model.interact(model.user_state(valid.batch(slice(None))), gathered)
    assert torch.allclose(served, full, atol=1e-6)


def test_tensor_return_is_the_primary_head(schema: FeatureSchema, splits: CTRSplits) -> None:
    from mercato.ctr import LR

    model = LR(schema)
    out = model.outputs(schema.encode(splits.valid).batch(slice(None)))
    assert list(out) == ["ctr"] and out["ctr"].shape == (len(splits.valid),)


class _Bad(CTRModel):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))

    def forward(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        return [self.w]


def test_forward_of_another_type_is_a_clear_error(schema: FeatureSchema, splits: CTRSplits) -> None:
    t = schema.encode(splits.valid)
    with pytest.raises(TypeError, match="must return a tensor of logits"):
        CTRTrainer(_Bad(), _cfg(), t, t).fit()


def test_ctr_tensors_refuse_mismatched_label_rows() -> None:
    z = torch.zeros(3, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="conv has 2 rows"):
        CTRTensors(z, z.view(3, 1, 1), torch.zeros(3), torch.zeros(3), {"conv": torch.zeros(2)})


def test_resume_bit_exact_with_two_heads(
    mt_schema: FeatureSchema, mt_splits: CTRSplits, tmp_path: Path
) -> None:
    train, valid = mt_schema.encode(mt_splits.train), mt_schema.encode(mt_splits.valid)
    cfg = _cfg(epochs=2, batch_size=8, checkpoint_every_steps=3, seed=1)
    torch.manual_seed(0)
    full = CTRTrainer(TwoHead(mt_schema), cfg, train, valid, tmp_path / "a")
    ref = full.fit()
    torch.manual_seed(0)
    CTRTrainer(TwoHead(mt_schema), cfg, train, valid, tmp_path / "b").fit(stop_after_steps=10)
    torch.manual_seed(5)
    second = CTRTrainer(TwoHead(mt_schema), cfg, train, valid, tmp_path / "b")
    assert repr(second.fit(resume=True).history) == repr(ref.history)  # repr: NaN (conv/auc) equals NaN
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, second.model.state_dict()[k]), k

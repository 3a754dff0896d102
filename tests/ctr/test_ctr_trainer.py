from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from mercato.core.metrics import auc, gauc, logloss
from mercato.ctr import CTRModel, CTRTensors, FeatureSchema
from mercato.ctr.baselines import LR, DeepFM, DeepFMConfig
from mercato.ctr.trainer import CTRTrainer, NonFiniteLossError, TrainerConfig
from mercato.data import CTRSplits


def _tensors(schema: FeatureSchema, splits: CTRSplits) -> tuple[CTRTensors, CTRTensors]:
    return schema.encode(splits.train), schema.encode(splits.valid)


def _deepfm(schema: FeatureSchema, seed: int = 0) -> DeepFM:
    torch.manual_seed(seed)
    return DeepFM(schema, DeepFMConfig(embed_dim=4, hidden_units=(8,), dropout=0.2))


def test_fit_learns_and_records_history(schema: FeatureSchema, splits: CTRSplits) -> None:
    train, valid = _tensors(schema, splits)
    cfg = TrainerConfig(epochs=5, batch_size=16, lr=3e-2, patience=0, progress=False)
    result = CTRTrainer(_deepfm(schema), cfg, train, valid).fit()
    assert [h["epoch"] for h in result.history] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.global_step == 5 * 4
    assert 1 <= result.best_epoch <= 5
    best = max(result.history, key=lambda h: h["valid_auc"])
    assert result.best_valid["auc"] == best["valid_auc"]


class _ScriptedTrainer(CTRTrainer):
    """Validation AUC follows a script; records the weights seen at each evaluation."""

    def __init__(self, *args: Any, aucs: list[float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aucs = list(aucs)
        self.seen: list[dict[str, torch.Tensor]] = []

    def evaluate(self, data: CTRTensors) -> dict[str, float]:
        self.seen.append({k: v.clone() for k, v in self.model.state_dict().items()})
        return {"auc": self.aucs.pop(0), "gauc": 0.5, "logloss": 0.7}


def test_early_stopping_restores_best_epoch(schema: FeatureSchema, splits: CTRSplits) -> None:
    train, valid = _tensors(schema, splits)
    cfg = TrainerConfig(epochs=10, batch_size=16, lr=1e-2, patience=2, progress=False)
    trainer = _ScriptedTrainer(LR(schema), cfg, train, valid, aucs=[0.6, 0.7, 0.65, 0.69, 0.9])
    result = trainer.fit()
    assert result.stopped_early
    assert len(result.history) == 4  # epochs 3 and 4 did not improve on epoch 2
    assert result.best_epoch == 2
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, trainer.seen[1][k])
    assert not torch.equal(trainer.seen[1]["weights.table.weight"], trainer.seen[3]["weights.table.weight"])


@pytest.mark.parametrize("kill_at", [11, 16])  # mid-epoch (last checkpoint at step 9) and at an epoch end
def test_resume_after_kill_matches_uninterrupted_run(
    schema: FeatureSchema, splits: CTRSplits, tmp_path: Path, kill_at: int
) -> None:
    train, valid = _tensors(schema, splits)
    cfg = TrainerConfig(
        epochs=3, batch_size=8, lr=1e-2, patience=0, seed=3, checkpoint_every_steps=3, progress=False
    )
    full = CTRTrainer(_deepfm(schema), cfg, train, valid, tmp_path / "full")
    full_result = full.fit()

    first = CTRTrainer(_deepfm(schema), cfg, train, valid, tmp_path / "resumed")
    partial = first.fit(stop_after_steps=kill_at)
    assert partial.interrupted and partial.global_step == kill_at
    # a fresh process: new model object with different initial weights, state comes from the checkpoint
    second = CTRTrainer(_deepfm(schema, seed=99), cfg, train, valid, tmp_path / "resumed")
    resumed = second.fit(resume=True)

    assert resumed.global_step == full_result.global_step == 24
    assert resumed.history == full_result.history
    assert resumed.best_epoch == full_result.best_epoch
    for k, v in full.model.state_dict().items():
        assert torch.equal(v, second.model.state_dict()[k]), k
    assert second.evaluate(valid) == full.evaluate(valid)


def test_resume_without_output_dir_is_an_error(schema: FeatureSchema, splits: CTRSplits) -> None:
    train, valid = _tensors(schema, splits)
    with pytest.raises(ValueError, match="output_dir"):
        CTRTrainer(LR(schema), TrainerConfig(progress=False), train, valid).fit(resume=True)


def test_checkpoint_and_best_folders_written(
    schema: FeatureSchema, splits: CTRSplits, tmp_path: Path
) -> None:
    train, valid = _tensors(schema, splits)
    cfg = TrainerConfig(epochs=2, batch_size=32, progress=False)
    CTRTrainer(LR(schema), cfg, train, valid, tmp_path).fit()
    for folder in ("checkpoint", "best"):
        assert (tmp_path / folder / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_evaluate_agrees_with_core_metrics(schema: FeatureSchema, splits: CTRSplits) -> None:
    train, valid = _tensors(schema, splits)
    model = _deepfm(schema)
    trainer = CTRTrainer(model, TrainerConfig(eval_batch_size=5, progress=False), train, valid)
    model.eval()
    with torch.no_grad():
        prob = torch.sigmoid(model(valid.batch(slice(None)))).numpy().astype(np.float64)
    got = trainer.evaluate(valid)
    y, u = valid.label.numpy(), valid.user.numpy()
    assert got["auc"] == pytest.approx(auc(y, prob), abs=1e-9)
    assert got["gauc"] == pytest.approx(gauc(y, prob, groups=u), abs=1e-9)
    assert got["logloss"] == pytest.approx(logloss(y, prob), abs=1e-6)
    assert np.allclose(trainer.predict(valid), prob, atol=1e-6)
    assert trainer.predict(valid).shape == (len(valid),)


class _NaNModel(CTRModel):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.w + torch.full(batch["label"].shape, float("nan"))


def test_nan_loss_raises_clear_error(schema: FeatureSchema, splits: CTRSplits) -> None:
    train, valid = _tensors(schema, splits)
    trainer = CTRTrainer(_NaNModel(), TrainerConfig(batch_size=16, progress=False), train, valid)
    with pytest.raises(NonFiniteLossError, match="epoch 1, step 1"):
        trainer.fit()


def test_auxiliary_loss_is_added(schema: FeatureSchema, splits: CTRSplits) -> None:
    class _Aux(LR):
        def auxiliary_loss(self) -> torch.Tensor:
            return self.bias**2 * 100.0  # pulls the bias to 0

    train, valid = _tensors(schema, splits)
    cfg = TrainerConfig(epochs=3, batch_size=64, lr=0.1, patience=0, progress=False)
    plain, aux = LR(schema), _Aux(schema)
    CTRTrainer(plain, cfg, train, valid).fit()
    CTRTrainer(aux, cfg, train, valid).fit()
    assert abs(aux.bias.item()) < abs(plain.bias.item())


def test_embedding_l2_and_weight_decay_go_to_separate_groups(
    schema: FeatureSchema, splits: CTRSplits
) -> None:
    train, valid = _tensors(schema, splits)
    model = _deepfm(schema)
    cfg = TrainerConfig(weight_decay=1e-5, embedding_l2=1e-3, progress=False)
    groups = CTRTrainer(model, cfg, train, valid).optimizer.param_groups
    emb_ids = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    assert [g["weight_decay"] for g in groups] == [1e-3, 1e-5]
    assert {id(p) for p in groups[0]["params"]} == emb_ids
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_without_gpu_is_a_clear_error(schema: FeatureSchema, splits: CTRSplits) -> None:
    train, valid = _tensors(schema, splits)
    with pytest.raises(ValueError, match="CUDA is not available"):
        CTRTrainer(LR(schema), TrainerConfig(device="cuda"), train, valid)


def _killed_run(schema: FeatureSchema, splits: CTRSplits, out: Path) -> TrainerConfig:
    train, valid = _tensors(schema, splits)
    cfg = TrainerConfig(epochs=2, batch_size=16, lr=1e-2, checkpoint_every_steps=2, progress=False)
    CTRTrainer(_deepfm(schema), cfg, train, valid, out).fit(stop_after_steps=3)
    return cfg


def test_fit_without_resume_refuses_to_overwrite_a_checkpoint(
    schema: FeatureSchema, splits: CTRSplits, tmp_path: Path
) -> None:
    cfg = _killed_run(schema, splits, tmp_path)
    train, valid = _tensors(schema, splits)
    with pytest.raises(ValueError, match="pass resume=True"):
        CTRTrainer(_deepfm(schema), cfg, train, valid, tmp_path).fit()


def test_resume_with_a_changed_config_names_the_keys(
    schema: FeatureSchema, splits: CTRSplits, tmp_path: Path
) -> None:
    import dataclasses

    cfg = _killed_run(schema, splits, tmp_path)
    train, valid = _tensors(schema, splits)
    changed = dataclasses.replace(cfg, lr=0.5, batch_size=8, epochs=5, progress=True)
    with pytest.raises(ValueError, match=r"training config differs.*batch_size: 16 -> 8; lr: 0.01 -> 0.5$"):
        CTRTrainer(_deepfm(schema), changed, train, valid, tmp_path).fit(resume=True)
    # epochs / progress may change on resume (they do not change the updates made so far)
    more = dataclasses.replace(cfg, epochs=3, progress=True)
    assert CTRTrainer(_deepfm(schema), more, train, valid, tmp_path).fit(resume=True).epochs_run == 3
    other = DeepFM(schema, DeepFMConfig(embed_dim=4, hidden_units=(8,), dropout=0.1))
    with pytest.raises(ValueError, match=r"model config differs: dropout: 0.2 -> 0.1"):
        CTRTrainer(other, more, train, valid, tmp_path).fit(resume=True)
    with pytest.raises(
        ValueError, match="holds a mercato.ctr.baselines.DeepFM, not a mercato.ctr.baselines.LR"
    ):
        CTRTrainer(LR(schema), more, train, valid, tmp_path).fit(resume=True)


@pytest.mark.parametrize("name", ["model.safetensors", "state.json", "optimizer.safetensors"])
def test_resume_from_a_truncated_checkpoint_names_the_file(
    schema: FeatureSchema, splits: CTRSplits, tmp_path: Path, name: str
) -> None:
    cfg = _killed_run(schema, splits, tmp_path)
    path = tmp_path / "checkpoint" / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    train, valid = _tensors(schema, splits)
    with pytest.raises(ValueError, match=str(path)):
        CTRTrainer(_deepfm(schema), cfg, train, valid, tmp_path).fit(resume=True)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epochs", 0, "epochs must be >= 1, got 0"),
        ("epochs", -1, "epochs must be >= 1, got -1"),
        ("lr", 0.0, "lr must be > 0, got 0.0"),
        ("patience", -1, "patience must be >= 0, got -1"),
        ("batch_size", 0, "batch_size must be >= 1, got 0"),
        ("max_grad_norm", float("nan"), "max_grad_norm must be >= 0"),
    ],
)
def test_trainer_config_validates_values(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainerConfig(**{key: value})  # type: ignore[arg-type]


def test_empty_validation_split_is_refused_before_training(schema: FeatureSchema, splits: CTRSplits) -> None:
    train, valid = _tensors(schema, splits)
    with pytest.raises(ValueError, match="validation split is empty"):
        CTRTrainer(LR(schema), TrainerConfig(progress=False), train, valid.subset(slice(0, 0)))

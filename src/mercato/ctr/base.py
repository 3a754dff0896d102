"""The contract every CTR model in mercato follows: named outputs, a model-declared loss, per-head metrics.

**Inputs.** A CTR model is an ``nn.Module`` built as ``Model(schema, config)``. ``forward(batch)`` takes the
batch dict of :meth:`mercato.ctr.schema.CTRTensors.batch`::

    sparse (B, F_s) int64, multihot (B, F_m, L) int64, user (B,) int64,
    label (B,) float         the primary label (first label column of the schema)
    label:<name> (B,) float  every label column by name, primary included; values in [0, 1] (may be fractional)
    weight (B,) float        per-sample weights, only when the schema has a weight column

**Outputs.** ``forward`` returns either one tensor of logits ``(B,)`` (a single-head model: its head is
called :attr:`CTRModel.primary_head`, ``"ctr"``) or a dict of named tensors, primary head first (e.g.
``{"cvr": (B,), "first": (B,), "cat": (B, 16)}``). :meth:`CTRModel.outputs` always gives the dict form.

**Loss.** :meth:`CTRModel.losses` ``(outputs, batch) -> dict[str, Tensor]`` returns named scalar terms, each a
mean over the batch rows (the trainer rescales them for data parallelism). The default is one term ``"bce"``:
BCE-with-logits of the primary head against ``batch["label"]``, weighted by ``batch["weight"]`` when present
(``mean(w * bce)``). A multi-task model returns e.g. ``{"primary": ..., "first": lam * ..., "cat": lam * ...}``
(a categorical head's cross-entropy against a target built from several labels is just another term). The
trainer adds :meth:`CTRModel.auxiliary_loss` (e.g. FAT's load-balance loss), then calls
:meth:`CTRModel.backward_losses` with all terms; the default back-propagates their sum. A model doing gradient
surgery (PCGrad, :func:`mercato.ctr.losses.pcgrad_backward`) overrides it and leaves ``.grad`` set on its
parameters; the trainer then clips and steps. The recorded ``train_loss`` is the sum of the terms of
:meth:`losses` (without the auxiliary loss).

**Metrics.** :meth:`CTRModel.probabilities` maps outputs to probabilities ``(B,)`` per evaluable head (default:
sigmoid of every ``(B,)`` output; other shapes are skipped unless a model overrides it, e.g. a 16-way CAT head
whose marginals it returns). :meth:`CTRModel.head_labels` maps each evaluable head to the label it is scored
against (default: the primary head to the primary label, any other head to the label of the same name when
the data has it). The trainer computes the metric functions it is given (``TrainerConfig.metrics``; AUC, GAUC,
logloss, PCOC from :mod:`mercato.core.metrics` by default, see :mod:`mercato.ctr.evaluation`) and returns one
flat dict: ``{"auc", "gauc", "logloss", "pcoc"}`` for the primary head and ``"<head>/auc"`` etc. for the others
(``TrainerConfig.eval_heads`` restricts which). Early stopping monitors any of those keys
(``TrainerConfig.monitor``, default ``"auc"``).

**Split models.** :class:`SplitCTRModel` is composed of ``user_state(batch)``, ``item_state(batch)`` and
``interact(user_state, item_state, batch)``; its ``forward`` is their composition, so the trainer trains and
scores it as one model, while a serving runtime computes item states once (nearline) and user states once
per request, then calls ``interact`` on the candidates. Which fields feed which side is the model's choice
(:meth:`mercato.ctr.schema.FeatureSchema.field_positions` finds them by name).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["PRIMARY_HEAD", "CTRModel", "Outputs", "SplitCTRModel", "as_outputs", "label_key", "weighted_bce"]

Outputs = dict[str, torch.Tensor]
PRIMARY_HEAD = "ctr"  # the head name of a model whose forward returns a single tensor


def label_key(name: str) -> str:
    """The batch key of the label column ``name`` (``"label:<name>"``)."""
    return f"label:{name}"


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """``mean(w * BCEWithLogits(logits, target))`` (plain mean without weights); targets may be fractional."""
    if weight is None:
        return nn.functional.binary_cross_entropy_with_logits(logits, target)
    per_row = nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")  # (B,)
    return (per_row * weight).mean()


class CTRModel(nn.Module):
    """Base class: ``forward(batch) -> logits (B,) | {head: tensor}`` plus its loss and metric hooks."""

    primary_head: str = PRIMARY_HEAD

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def outputs(self, batch: dict[str, torch.Tensor]) -> Outputs:
        """``forward(batch)`` as a dict of named outputs, primary head first."""
        return as_outputs(self(batch), self.primary_head)

    def losses(self, outputs: Outputs, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Named loss terms (each a mean over rows); default: weighted BCE of the primary head."""
        primary = next(iter(outputs.values()))
        return {"bce": weighted_bce(primary, batch["label"], batch.get("weight"))}

    def backward_losses(self, losses: dict[str, torch.Tensor]) -> None:
        """Back-propagate the loss terms (default: their sum); override for gradient surgery such as PCGrad."""
        total = torch.stack(list(losses.values())).sum()
        total.backward()

    def auxiliary_loss(self) -> torch.Tensor:
        """Extra loss from the last forward pass (0 by default), added by the trainer to :meth:`losses`."""
        return torch.zeros((), device=next(self.parameters()).device)

    def probabilities(self, outputs: Outputs) -> dict[str, torch.Tensor]:
        """Probabilities ``(B,)`` of every head that metrics can score (default: sigmoid of each ``(B,)`` head)."""
        return {k: torch.sigmoid(v.float()) for k, v in outputs.items() if v.dim() == 1}

    def head_labels(self, heads: list[str], labels: list[str]) -> dict[str, str]:
        """Which label each head is scored against: primary head -> primary label, others by equal name."""
        if not heads or not labels:
            return {}
        out = {heads[0]: labels[0]}
        out.update({h: h for h in heads[1:] if h in labels})
        return out


class SplitCTRModel(CTRModel):
    """A CTR model composed of a user side, an item side and an interaction (e.g. AIF's pre-ranker).

    ``forward(batch) == interact(user_state(batch), item_state(batch), batch)``, so training and evaluation
    see one model; serving precomputes :meth:`item_state` per item and :meth:`user_state` per request.
    """

    def user_state(self, batch: dict[str, torch.Tensor]) -> Any:  # pragma: no cover - abstract
        """Everything computed from the user and context fields alone (one state per row)."""
        raise NotImplementedError

    def item_state(self, batch: dict[str, torch.Tensor]) -> Any:  # pragma: no cover - abstract
        """Everything computed from the item fields alone (one state per row; cacheable per item)."""
        raise NotImplementedError

    def interact(
        self, user_state: Any, item_state: Any, batch: dict[str, torch.Tensor] | None = None
    ) -> Any:  # pragma: no cover - abstract
        """Outputs (logits ``(B,)`` or named outputs) from matching user and item states, row by row."""
        raise NotImplementedError

    def forward(self, batch: dict[str, torch.Tensor]) -> Any:
        """The composition ``interact(user_state(batch), item_state(batch), batch)``."""
        return self.interact(self.user_state(batch), self.item_state(batch), batch)


def as_outputs(raw: Any, primary_head: str = PRIMARY_HEAD) -> Outputs:
    """Normalise a forward result (a tensor or a mapping of tensors) to a non-empty dict of named outputs."""
    if isinstance(raw, torch.Tensor):
        return {primary_head: raw}
    if isinstance(raw, dict) and raw and all(isinstance(v, torch.Tensor) for v in raw.values()):
        return dict(raw)
    raise TypeError(
        f"a CTR model's forward must return a tensor of logits (B,) or a non-empty dict of tensors, "
        f"got {type(raw).__name__}"
    )

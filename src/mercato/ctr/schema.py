"""Feature schema: turns the frames of a :class:`~mercato.data.splits.CTRSplits` into index tensors.

Vocabularies and numeric bucket edges are fitted on the training split only (no leakage from valid/test).
Index 0 of every field is reserved for out-of-vocabulary / missing / padding.

Field kinds:
    categorical: one id per row -> one index.
    numeric: bucketised by train quantiles -> one index (bucket ``i`` is index ``i + 1``).
    multihot: ``|``-separated tokens -> up to ``max_tokens`` indices, padded with 0, mean-pooled by the embedding.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from mercato.data.splits import CTRSplits

__all__ = ["CTRTensors", "FeatureSchema", "FieldSpec"]

FieldKind = Literal["categorical", "numeric", "multihot"]


@dataclass
class FieldSpec:
    """One input field."""

    name: str
    kind: FieldKind
    vocab: dict[str, int] = field(default_factory=dict)  # token -> index (>= 1)
    boundaries: list[float] = field(default_factory=list)  # numeric bucket edges
    max_tokens: int = 1  # multihot: tokens kept per row

    @property
    def vocab_size(self) -> int:
        """Number of embedding rows, including index 0 (OOV / padding)."""
        if self.kind == "numeric":
            return len(self.boundaries) + 2
        return len(self.vocab) + 1


@dataclass
class CTRTensors:
    """Encoded rows. ``sparse`` (N, F_s) holds categorical+numeric fields, ``multihot`` (N, F_m, L).

    ``label`` (N,) is the primary label; ``aux_labels`` the further label columns by name (N,) each, all float
    and possibly fractional in [0, 1]; ``weight`` (N,) optional per-sample loss weights.
    """

    sparse: torch.Tensor
    multihot: torch.Tensor
    label: torch.Tensor
    user: torch.Tensor
    aux_labels: dict[str, torch.Tensor] = field(default_factory=dict)
    weight: torch.Tensor | None = None
    label_name: str = "label"  # the primary label column's name

    def __post_init__(self) -> None:
        n = int(self.label.shape[0])
        for name, col in {
            **self.aux_labels,
            **({"weight": self.weight} if self.weight is not None else {}),
        }.items():
            if int(col.shape[0]) != n:
                raise ValueError(f"{name} has {int(col.shape[0])} rows but the primary label has {n}")
        if self.label_name in self.aux_labels:
            raise ValueError(f"label '{self.label_name}' appears as primary and as an auxiliary label")

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def label_names(self) -> list[str]:
        """Every label column, primary first."""
        return [self.label_name, *self.aux_labels]

    @property
    def labels(self) -> dict[str, torch.Tensor]:
        """Every label column by name, primary first."""
        return {self.label_name: self.label, **self.aux_labels}

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        """The rows at ``index`` as a batch dict (see :mod:`mercato.ctr.base` for the keys)."""
        out = {
            "sparse": self.sparse[index],
            "multihot": self.multihot[index],
            "label": self.label[index],
            "user": self.user[index],
        }
        out.update({f"label:{k}": v[index] for k, v in self.labels.items()})
        if self.weight is not None:
            out["weight"] = self.weight[index]
        return out

    def subset(self, index: torch.Tensor | slice) -> CTRTensors:
        """The rows at ``index`` (every label and the weights included)."""
        return CTRTensors(
            self.sparse[index],
            self.multihot[index],
            self.label[index],
            self.user[index],
            {k: v[index] for k, v in self.aux_labels.items()},
            None if self.weight is None else self.weight[index],
            self.label_name,
        )

    def batches(
        self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
    ) -> Iterator[dict[str, torch.Tensor]]:
        """Iterate over mini-batches (a seeded ``generator`` makes the shuffle reproducible)."""
        n = len(self)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        for start in range(0, n, batch_size):
            yield self.batch(order[start : start + batch_size])


def _tokens(value: object) -> list[str]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    return [t for t in str(value).split("|") if t]


class FeatureSchema:
    """Fitted field specs; ``encode`` maps a frame to :class:`CTRTensors`."""

    def __init__(
        self,
        fields: Sequence[FieldSpec],
        label: str = "label",
        user: str = "user_id",
        labels: Sequence[str] = (),
        weight: str | None = None,
    ) -> None:
        self.fields = list(fields)
        self.label = label  # the primary label column
        self.aux_labels = [name for name in labels if name != label]  # further label columns
        self.user = user
        self.weight = weight  # per-sample weight column, or None
        _check_roles(self.field_names, self.labels, weight)

    @property
    def labels(self) -> list[str]:
        """Every label column, primary first."""
        return [self.label, *self.aux_labels]

    def field_positions(self, names: Sequence[str]) -> list[int]:
        """Positions of the fields ``names`` in model field order (the F axis of ``FieldEmbedding``)."""
        order = self.field_names
        missing = [n for n in names if n not in order]
        if missing:
            raise KeyError(f"fields {missing} are not in the schema; fields: {', '.join(order)}")
        return [order.index(n) for n in names]

    @property
    def sparse_fields(self) -> list[FieldSpec]:
        """Categorical and numeric fields (one index each), in model field order."""
        return [f for f in self.fields if f.kind != "multihot"]

    @property
    def multihot_fields(self) -> list[FieldSpec]:
        """Multi-hot fields, after the sparse ones in model field order."""
        return [f for f in self.fields if f.kind == "multihot"]

    @property
    def num_fields(self) -> int:
        """F, the number of field tokens a model sees."""
        return len(self.fields)

    @property
    def field_names(self) -> list[str]:
        """Field names in model order (sparse first, then multihot)."""
        return [f.name for f in self.sparse_fields + self.multihot_fields]

    @classmethod
    def fit(
        cls,
        data: CTRSplits,
        min_count: int = 1,
        n_buckets: int = 10,
        max_tokens: int = 8,
        labels: Sequence[str] = (),
        weight: str | None = None,
    ) -> FeatureSchema:
        """Fit vocabularies (tokens seen ``>= min_count`` times) and quantile buckets on ``data.train``.

        ``labels`` are further label columns after ``data.label`` (the primary one); ``weight`` a per-sample
        weight column. A label or weight column among the feature columns is refused with a ``ValueError``
        naming it (the model would read its own target).
        """
        _check_roles(data.fields, [data.label, *labels], weight)
        train = data.train
        fields: list[FieldSpec] = []
        for col in data.categorical:
            counts = train[col].astype(str).value_counts()
            kept = sorted(counts[counts >= min_count].index.tolist())
            fields.append(FieldSpec(col, "categorical", vocab={t: i + 1 for i, t in enumerate(kept)}))
        for col in data.numeric:
            values = train[col].to_numpy(dtype=np.float64)
            qs = np.quantile(values, np.linspace(0, 1, n_buckets + 1)[1:-1]) if len(values) else np.array([])
            fields.append(FieldSpec(col, "numeric", boundaries=sorted(set(float(q) for q in qs))))
        for col in data.multihot:
            counts = pd.Series([t for v in train[col] for t in _tokens(v)]).value_counts()
            kept = sorted(counts[counts >= min_count].index.tolist())
            fields.append(
                FieldSpec(
                    col, "multihot", vocab={t: i + 1 for i, t in enumerate(kept)}, max_tokens=max_tokens
                )
            )
        return cls(fields, label=data.label, user=data.user, labels=labels, weight=weight)

    def encode(self, df: pd.DataFrame) -> CTRTensors:
        """Encode ``df`` (unknown tokens -> 0). Missing feature columns raise ``KeyError`` naming them."""
        missing = [f.name for f in self.fields if f.name not in df.columns]
        if missing:
            raise KeyError(f"columns {missing} are missing from the frame to encode")
        n = len(df)
        sparse = np.zeros((n, len(self.sparse_fields)), dtype=np.int64)
        for j, f in enumerate(self.sparse_fields):
            if f.kind == "categorical":
                sparse[:, j] = df[f.name].astype(str).map(f.vocab).fillna(0).to_numpy(dtype=np.int64)
            else:
                values = df[f.name].to_numpy(dtype=np.float64)
                sparse[:, j] = np.searchsorted(np.asarray(f.boundaries), values, side="right") + 1
        mh = self.multihot_fields
        max_len = max((f.max_tokens for f in mh), default=1)
        multihot = np.zeros((n, len(mh), max_len), dtype=np.int64)
        for j, f in enumerate(mh):
            # Encode each distinct value once (multi-hot columns repeat few distinct strings).
            codes, uniques = pd.factorize(df[f.name].astype(str), use_na_sentinel=False)
            table = np.zeros((len(uniques), max_len), dtype=np.int64)
            for u, value in enumerate(uniques):
                ids = [f.vocab.get(t, 0) for t in _tokens(value)][: f.max_tokens]
                table[u, : len(ids)] = ids
            multihot[:, j, :] = table[codes]
        user_codes = (
            pd.factorize(df[self.user])[0] if self.user in df.columns else np.zeros(n, dtype=np.int64)
        )
        cols = {name: _label_column(df, name, n) for name in self.labels}
        weight = None
        if self.weight is not None and self.weight in df.columns:
            w = df[self.weight].to_numpy(dtype=np.float32, copy=True)
            if not np.all(np.isfinite(w)) or (w < 0).any():
                raise ValueError(f"weight column '{self.weight}' must hold finite values >= 0")
            weight = torch.from_numpy(w)
        return CTRTensors(
            sparse=torch.from_numpy(sparse),
            multihot=torch.from_numpy(multihot),
            label=cols[self.label],
            user=torch.from_numpy(np.asarray(user_codes, dtype=np.int64)),
            aux_labels={k: v for k, v in cols.items() if k != self.label},
            weight=weight,
            label_name=self.label,
        )

    def to_json(self) -> str:
        """Serialise (for checkpoints)."""
        return json.dumps(
            {
                "label": self.label,
                "labels": self.labels,
                "weight": self.weight,
                "user": self.user,
                "fields": [asdict(f) for f in self.fields],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> FeatureSchema:
        """Inverse of :meth:`to_json` (also reads schemas written before several labels existed)."""
        data = json.loads(text)
        return cls(
            [FieldSpec(**f) for f in data["fields"]],
            label=data["label"],
            user=data["user"],
            labels=data.get("labels", ()),
            weight=data.get("weight"),
        )


def _check_roles(features: Sequence[str], labels: Sequence[str], weight: str | None) -> None:
    """Refuse a label or weight column that is also a feature (the model would read its own target)."""
    for name in [*labels, *([weight] if weight else [])]:
        if name in features:
            role = "weight" if name == weight else "label"
            raise ValueError(
                f"column '{name}' is the {role} column and cannot also be a feature; "
                f"remove it from the feature columns"
            )


def _label_column(df: pd.DataFrame, name: str, n: int) -> torch.Tensor:
    """Label column ``name`` as float32 (zeros when the frame has no such column, e.g. at serving)."""
    if name not in df.columns:
        return torch.zeros(n, dtype=torch.float32)
    y = df[name].to_numpy(dtype=np.float32, copy=True)
    if not np.all(np.isfinite(y)) or (y < 0).any() or (y > 1).any():
        raise ValueError(f"label column '{name}' must hold values in [0, 1]")
    return torch.from_numpy(y)

"""The MAC file schema (as PyMAL's ``utils/data.py`` reads it), a validating loader and an atomic writer.

Layout of a MAC folder::

    train/train-00.parquet ... train/train-19.parquet   one file per day, in time order
    test/test.parquet                                   the day after the last training day
    vocabs/<col>.json                                   {raw value (string): index} per user/ad/context column

Columns: ``user_id``, ``user_feat0-5``, ``ad_feat0-5``, ``context_feat0-3`` (raw values, strings),
``ad_feat{0,1,2}_seq`` (lists of SEQ_LEN raw values of ``ad_feat{0,1,2}``, the user's purchase sequence),
``mm_feat{0,1}_seq`` (lists of SEQ_LEN float scores) and the labels ``first``, ``last``, ``mta``, ``linear``
(credits in [0, 1]). An optional ``click_time`` column (days, float) lets the loader prove that the test day
comes strictly after the training days. Sequence index 0 (``pad_value``) is padding and is masked by the model.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mercato.core.runs import atomic_dir

__all__ = [
    "AD_COLS",
    "LABEL_COLS",
    "MACData",
    "MACError",
    "MM_COLS",
    "SEQ_COLS",
    "SEQ_LEN",
    "TEST_FILES",
    "TRAIN_FILES",
    "USER_COLS",
    "load_mac",
    "load_vocabs",
    "write_mac",
]

SEQ_LEN = 20
TRAIN_FILES = [f"train-{i:02d}.parquet" for i in range(20)]
TEST_FILES = ["test.parquet"]
USER_COLS = ["user_id"] + [f"user_feat{i}" for i in range(6)]
AD_COLS = [f"ad_feat{i}" for i in range(6)] + [f"context_feat{i}" for i in range(4)]
MM_COLS = ["mm_feat0_seq", "mm_feat1_seq"]
SEQ_COLS = ["ad_feat0_seq", "ad_feat1_seq", "ad_feat2_seq"]
SEQ_SOURCE = {"ad_feat0_seq": "ad_feat0", "ad_feat1_seq": "ad_feat1", "ad_feat2_seq": "ad_feat2"}
LABEL_COLS = ["first", "last", "mta", "linear"]


class MACError(ValueError):
    """A MAC file that does not follow the schema; the message names the file and the column."""


@dataclass
class MACData:
    """One split (train or test) as index arrays, rows in file order."""

    user: np.ndarray  # (N, 7) int64: user_id, user_feat0-5
    ad: np.ndarray  # (N, 10) int64: ad_feat0-5, context_feat0-3
    seq: np.ndarray  # (N, 3, SEQ_LEN) int64: ad_feat{0,1,2}_seq as indices of ad_feat{0,1,2}
    mm: np.ndarray  # (N, 2, SEQ_LEN) float32
    labels: dict[str, np.ndarray]  # name -> (N,) float32 credit in [0, 1]
    day: np.ndarray  # (N,) int64: index of the file the row came from
    click_time: np.ndarray | None = None  # (N,) float64 days, when the files have it

    def __len__(self) -> int:
        return len(self.user)

    def subset(self, idx: np.ndarray) -> MACData:
        """Rows ``idx`` (a boolean mask or indices)."""
        return MACData(
            self.user[idx],
            self.ad[idx],
            self.seq[idx],
            self.mm[idx],
            {k: v[idx] for k, v in self.labels.items()},
            self.day[idx],
            None if self.click_time is None else self.click_time[idx],
        )


def load_vocabs(root: str | Path) -> dict[str, dict[str, int]]:
    """``vocabs/<col>.json`` for every user/ad/context column; indices must be 0..len-1."""
    vocabs: dict[str, dict[str, int]] = {}
    for col in USER_COLS + AD_COLS:
        path = Path(root) / "vocabs" / f"{col}.json"
        if not path.exists():
            raise MACError(f"{path}: missing vocabulary file for column {col!r}")
        try:
            vocab = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise MACError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(vocab, dict) or sorted(vocab.values()) != list(range(len(vocab))):
            raise MACError(f"{path}: expected {{raw value: index}} with indices 0..{len(vocab) - 1}")
        vocabs[col] = vocab
    return vocabs


def _encode(values: pa.Array, vocab: dict[str, int], where: str) -> np.ndarray:
    """Raw values -> indices through ``vocab``; an unknown value is an error naming ``where``."""
    if values.null_count:
        raise MACError(f"{where}: {values.null_count} null value(s)")
    values = pc.cast(values, pa.string())
    enc = pc.dictionary_encode(values)
    dictionary = enc.dictionary.to_pylist()
    lookup = np.empty(len(dictionary), dtype=np.int64)
    for j, raw in enumerate(dictionary):
        if raw not in vocab:
            raise MACError(f"{where}: value {raw!r} is not in its vocabulary")
        lookup[j] = vocab[raw]
    return lookup[enc.indices.to_numpy(zero_copy_only=False)]


def _list_column(table: pa.Table, col: str, where: str, seq_len: int) -> pa.Array:
    arr = table.column(col).combine_chunks()
    if not (
        pa.types.is_list(arr.type)
        or pa.types.is_large_list(arr.type)
        or pa.types.is_fixed_size_list(arr.type)
    ):
        raise MACError(f"{where}: column {col!r} must hold lists, got {arr.type}")
    if arr.null_count:
        raise MACError(f"{where}: column {col!r} has {arr.null_count} null list(s)")
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(lengths != seq_len)
    if len(bad):
        raise MACError(
            f"{where}: column {col!r} row {bad[0]} has a sequence of length {lengths[bad[0]]}, expected {seq_len}"
        )
    return pc.list_flatten(arr)


def _read_file(path: Path, vocabs: dict[str, dict[str, int]], seq_len: int) -> dict[str, np.ndarray]:
    where = str(path)
    try:
        table = pq.read_table(path)
    except Exception as e:  # noqa: BLE001 - any reader failure becomes a MACError naming the file
        raise MACError(f"{where}: cannot read parquet ({e})") from None
    missing = [
        c for c in USER_COLS + AD_COLS + SEQ_COLS + MM_COLS + LABEL_COLS if c not in table.column_names
    ]
    if missing:
        raise MACError(f"{where}: missing column(s) {missing}")
    n = table.num_rows
    out: dict[str, np.ndarray] = {}
    out["user"] = np.stack(
        [_encode(table.column(c).combine_chunks(), vocabs[c], f"{where} column {c!r}") for c in USER_COLS], 1
    )
    out["ad"] = np.stack(
        [_encode(table.column(c).combine_chunks(), vocabs[c], f"{where} column {c!r}") for c in AD_COLS], 1
    )
    seqs = []
    for c in SEQ_COLS:
        flat = _list_column(table, c, where, seq_len)
        seqs.append(_encode(flat, vocabs[SEQ_SOURCE[c]], f"{where} column {c!r}").reshape(n, seq_len))
    out["seq"] = np.stack(seqs, 1)
    mms = []
    for c in MM_COLS:
        flat = _list_column(table, c, where, seq_len).to_numpy(zero_copy_only=False).astype(np.float32)
        if not np.isfinite(flat).all():
            raise MACError(f"{where}: column {c!r} has non-finite scores")
        mms.append(flat.reshape(n, seq_len))
    out["mm"] = np.stack(mms, 1)
    for c in LABEL_COLS:
        y = table.column(c).to_numpy().astype(np.float64)
        bad = np.flatnonzero(~((y >= 0) & (y <= 1)))
        if len(bad):
            raise MACError(
                f"{where}: label column {c!r} row {bad[0]} is {y[bad[0]]}, expected a credit in [0, 1]"
            )
        out[c] = y.astype(np.float32)
    if "click_time" in table.column_names:
        out["click_time"] = table.column("click_time").to_numpy().astype(np.float64)
    return out


def load_mac(
    root: str | Path,
    split: str = "train",
    files: Sequence[str] | None = None,
    seq_len: int = SEQ_LEN,
    vocabs: dict[str, dict[str, int]] | None = None,
) -> MACData:
    """Read and validate ``train/`` (20 daily files) or ``test/`` of a MAC folder.

    Errors (``MACError``) name the file and the column: a missing label column, a label outside [0, 1],
    a sequence of the wrong length, a value not in its vocabulary, and (with ``split="test"`` and a
    ``click_time`` column in both splits) a test day that does not come strictly after every training day.
    """
    root = Path(root)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if files is not None:
        names = list(files)
    elif split == "train":
        names = sorted(p.name for p in (root / "train").glob("train-*.parquet"))  # MAC: the 20 TRAIN_FILES
        if not names:
            raise MACError(
                f"{root / 'train'}: no train-*.parquet files (a MAC folder has train/train-00.parquet ...)"
            )
    else:
        names = list(TEST_FILES)
    vocabs = vocabs if vocabs is not None else load_vocabs(root)
    parts = []
    for name in names:
        path = root / split / name
        if not path.exists():
            raise MACError(f"{path}: file not found (a MAC folder has {split}/{names[0]} ...)")
        parts.append(_read_file(path, vocabs, seq_len))
    has_time = all("click_time" in p for p in parts)
    data = MACData(
        user=np.concatenate([p["user"] for p in parts]),
        ad=np.concatenate([p["ad"] for p in parts]),
        seq=np.concatenate([p["seq"] for p in parts]),
        mm=np.concatenate([p["mm"] for p in parts]),
        labels={c: np.concatenate([p[c] for p in parts]) for c in LABEL_COLS},
        day=np.concatenate([np.full(len(p["user"]), i, dtype=np.int64) for i, p in enumerate(parts)]),
        click_time=np.concatenate([p["click_time"] for p in parts]) if has_time else None,
    )
    if split == "test" and data.click_time is not None and len(data):
        last_train = None
        for path in sorted((root / "train").glob("train-*.parquet")):
            if "click_time" in pq.read_schema(path).names:
                mx = pc.max(pq.read_table(path, columns=["click_time"]).column("click_time")).as_py()
                last_train = mx if last_train is None or (mx is not None and mx > last_train) else last_train
        first_test = float(data.click_time.min())
        if last_train is not None and np.floor(first_test) <= np.floor(last_train):
            raise MACError(
                f"{root / 'test' / names[0]}: column 'click_time' starts on day {np.floor(first_test):.0f}, "
                f"which overlaps the training days (last training day {np.floor(last_train):.0f})"
            )
    return data


def write_mac(
    root: str | Path,
    tables: dict[str, pa.Table],
    vocabs: dict[str, dict[str, int]],
    overwrite: bool = False,
) -> Path:
    """Write ``{"train/train-00.parquet": table, ..., "test/test.parquet": table}`` and the vocabularies.

    The whole folder is written under a temporary sibling name and renamed onto ``root`` at the end, so a
    crash leaves no half-written MAC folder. An existing non-empty ``root`` is an error unless ``overwrite``.
    """
    root = Path(root)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root}: already exists and is not empty (pass overwrite=True)")
    with atomic_dir(root) as tmp:
        for rel, table in tables.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)
        (tmp / "vocabs").mkdir(parents=True, exist_ok=True)
        for col, vocab in vocabs.items():
            (tmp / "vocabs" / f"{col}.json").write_text(json.dumps(vocab))
    return root

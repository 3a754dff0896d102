"""Tiny synthetic CTR data shared by the tests in tests/ctr (built in memory, < 100 rows)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from ctr_testdata import make_splits

import mercato.core.metrics  # noqa: F401  (heavy lazy imports happen at collection, not in a timed test)
import mercato.ctr.cli  # noqa: F401
from mercato.ctr import FeatureSchema
from mercato.data import CTRSplits


def _warm_up_optimizer() -> None:
    """The first ``optimizer.step()`` of a process imports torch._dynamo (~5 s on a busy machine); pay that
    once at collection so that no single test's time includes it."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param])
    param.sum().backward()
    opt.step()


_warm_up_optimizer()


@pytest.fixture
def splits() -> CTRSplits:
    return make_splits()


@pytest.fixture
def schema(splits: CTRSplits) -> FeatureSchema:
    return FeatureSchema.fit(splits, n_buckets=4, max_tokens=3)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors run faster on one thread, and much faster on a busy machine (no OpenMP spin-waits)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""A synthetic field-interaction CTR benchmark whose Bayes-optimal AUC is known.

Generator (all draws from one seeded ``numpy`` generator):

1. ``F`` categorical fields ``f0 .. f{F-1}``, each with ``cardinality`` values drawn from a Zipf-like law
   ``P(v) ∝ (rank(v) + 1)^(-zipf_exponent)`` (a random rank order per field): a few head values, a long tail.
2. Each value ``v`` of field ``f`` has a first-order weight ``beta_f[v] ~ N(0, first_order_std^2)``, a
   "query" latent ``u_f[v]`` and a "key" latent ``k_f[v]``, both ``N(0, I_r)``.
3. A sparse set ``P`` of ``num_pairs`` *ordered* field pairs ``(i, j)``, ``i != j``, with strengths
   ``S_ij = ±U(0.5, 1.5) * pair_scale`` (random sign). ``(i, j) in P`` does not put ``(j, i)`` in ``P``, and the
   term uses ``i``'s query latent with ``j``'s key latent, so ``S`` and the interactions are asymmetric.
4. Logit ``z = bias + sum_f beta_f[x_f] + sum_{(i,j) in P} S_ij <u_i[x_i], k_j[x_j]> / sqrt(r)``.
5. Label ``y ~ Bernoulli(p)`` with ``p = flip_prob + (1 - 2 flip_prob) sigmoid(z)``: a click drawn from
   ``sigmoid(z)`` and then flipped with probability ``flip_prob`` (label noise).

``p`` is the true click probability given the fields, so no model can beat ``AUC(y, p)`` in expectation: that
is the Bayes-optimal AUC reported on the test split (and ``logloss(y, p)`` the Bayes logloss). Each frame
keeps ``p`` in the column ``p_true`` (not a feature) and ``user_id`` (a copy of ``f0``, for GAUC).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mercato.core.metrics import auc, logloss
from mercato.data.splits import CTRSplits, random_split

__all__ = ["FieldInteractionData", "field_interaction_data", "pair_strengths"]

log = logging.getLogger(__name__)


@dataclass
class FieldInteractionData:
    """The benchmark: splits, the generator's ground truth and the Bayes-optimal test metrics."""

    splits: CTRSplits  # train/valid/test frames; features f0..f{F-1} (categorical)
    bayes_auc: float  # AUC of the true probabilities p_true on the test split (the ceiling)
    bayes_logloss: float  # logloss of p_true on the test split (the floor)
    strengths: np.ndarray  # (F, F) S_ij, zero outside the active ordered pairs (asymmetric)
    pairs: list[tuple[int, int]]  # the active ordered field pairs (query field, key field)


def pair_strengths(
    num_fields: int, num_pairs: int, pair_scale: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Draw ``num_pairs`` distinct ordered pairs ``(i, j), i != j`` and their strengths; ``S`` is ``(F, F)``."""
    all_pairs = [(i, j) for i in range(num_fields) for j in range(num_fields) if i != j]
    if not 0 <= num_pairs <= len(all_pairs):
        raise ValueError(
            f"num_pairs must lie in [0, {len(all_pairs)}] for {num_fields} fields, got {num_pairs}"
        )
    chosen = rng.choice(len(all_pairs), size=num_pairs, replace=False)
    pairs = [all_pairs[c] for c in sorted(chosen)]
    s = np.zeros((num_fields, num_fields))
    for i, j in pairs:
        s[i, j] = rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.5) * pair_scale
    return s, pairs


def field_interaction_data(
    num_fields: int = 10,
    cardinality: int = 1000,
    n_samples: int = 200_000,
    num_pairs: int = 8,
    rank: int = 4,
    pair_scale: float = 1.0,
    first_order_std: float = 0.5,
    zipf_exponent: float = 1.05,
    bias: float = -1.0,
    flip_prob: float = 0.05,
    valid_frac: float = 0.1,
    test_frac: float = 0.1,
    seed: int = 0,
) -> FieldInteractionData:
    """Generate the synthetic field-interaction CTR data (see the module docstring for the generator).

    Args:
        num_fields: F, categorical fields.
        cardinality: values per field (high cardinality: most values are rare under the Zipf law).
        n_samples: rows before the random train/valid/test split.
        num_pairs: |P|, active ordered field pairs (sparse: much fewer than F (F - 1)).
        rank: r, width of the query/key latents of each value.
        pair_scale: scale of the pair strengths S_ij.
        first_order_std: std of the first-order weights beta.
        zipf_exponent: exponent of the value frequency law.
        bias: global logit offset (sets the click rate).
        flip_prob: label-noise flip probability (must be < 0.5).
        valid_frac, test_frac: split fractions.
        seed: seeds everything.
    """
    if num_fields < 2 or cardinality < 2 or n_samples < 10 or rank < 1:
        raise ValueError("need num_fields >= 2, cardinality >= 2, n_samples >= 10 and rank >= 1")
    if not 0.0 <= flip_prob < 0.5:
        raise ValueError(f"flip_prob must lie in [0, 0.5), got {flip_prob}")
    rng = np.random.default_rng(seed)
    f, n = num_fields, n_samples
    freq = (np.arange(cardinality) + 1.0) ** (-zipf_exponent)
    freq /= freq.sum()
    x = np.empty((n, f), dtype=np.int64)
    for field in range(f):
        order = rng.permutation(cardinality)  # which value is the head of this field
        x[:, field] = order[rng.choice(cardinality, size=n, p=freq)]
    beta = rng.normal(0.0, first_order_std, size=(f, cardinality))  # (F, V)
    query = rng.normal(size=(f, cardinality, rank))  # (F, V, r)
    key = rng.normal(size=(f, cardinality, rank))  # (F, V, r)
    strengths, pairs = pair_strengths(f, num_pairs, pair_scale, rng)
    fields = np.arange(f)
    z = bias + beta[fields, x].sum(axis=1)  # (N,)
    for i, j in pairs:
        z += strengths[i, j] * np.einsum("nr,nr->n", query[i, x[:, i]], key[j, x[:, j]]) / np.sqrt(rank)
    p = flip_prob + (1.0 - 2.0 * flip_prob) / (1.0 + np.exp(-z))  # (N,) true click probability
    y = (rng.random(n) < p).astype(np.float32)
    frame = pd.DataFrame({f"f{k}": x[:, k] for k in range(f)})
    frame["user_id"] = x[:, 0]
    frame["p_true"] = p
    frame["label"] = y
    train, valid, test = random_split(frame, valid_frac, test_frac, seed)
    splits = CTRSplits(train, valid, test, categorical=[f"f{k}" for k in range(f)], name="synthetic")
    bayes_auc = auc(test["label"], test["p_true"])
    bayes_ll = logloss(test["label"], test["p_true"])
    log.info("synthetic: %d rows, CTR %.3f, Bayes-optimal test AUC %.4f", n, float(y.mean()), bayes_auc)
    return FieldInteractionData(splits, bayes_auc, bayes_ll, strengths, pairs)

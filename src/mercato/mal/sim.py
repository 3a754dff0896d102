"""A multi-touch journey simulator that writes MAC files (``mercato.mal.mac``) with known causes.

Latent model (fixed before any model was trained; ``SimConfig`` holds every number)::

    user u: p_u ~ N(0, I_d), activity a_u ~ LogNormal(0, activity_sigma)
    item i: q_i = centre[category(i)] + N(0, item_noise^2 I_d), bias b_i ~ N(0, item_bias_sd^2)
    journey j = (u, i, touches t_1 < ... < t_T):  u ~ a_u, i = Gumbel-argmax over n_candidates random items
                of p_u.q_i / sqrt(d) / item_temperature;  T = min(1 + Poisson(mean_path_len - 1), max_path_len)
                t_1 ~ U[-edge_days, n_days + edge_days), t_{k+1} = t_k + Exp(gap_mean_days); touches before day 0 or
                on/after day n_days count in the model and the labels but are not written (no edge effects)
    touch k: channel c_k (context_feat0), slot s_k (context_feat1), hour, device drawn uniformly
    P(convert | j) = sigmoid(base_logit + affinity_weight * p_u.q_i / sqrt(d) + b_i
                             + sum_k (channel_effect[c_k] + slot_effect[s_k] + touch_noise_k))

Every touch on the path adds to the conversion logit, so the Last-Click label (credit only on the last touch)
is a noisy view of the cause. A converting journey converts ``Exp(conv_delay_days)`` after its last touch;
touches older than ``window_days`` before the conversion get no credit. Per-click labels: ``first``, ``last``,
``linear`` (``mercato.mal.attribution`` rules) and ``mta`` (``path_credits`` with first-order Markov channel
values fitted on the channel paths of all journeys). Features of a click are the user's, the item's and the
touch's own plus the user's purchase history before day 0 (``ad_feat{0,1,2}_seq``) and cosine scores of the
item against that history (``mm_feat{0,1}_seq``): nothing about the click's own outcome or later touches.
Days 0..n_days-2 are the training files, day n_days-1 is the test file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from mercato.core.progress import progress
from mercato.mal.attribution import markov
from mercato.mal.mac import (
    AD_COLS,
    MM_COLS,
    SEQ_COLS,
    SEQ_LEN,
    SEQ_SOURCE,
    TEST_FILES,
    TRAIN_FILES,
    USER_COLS,
    write_mac,
)

__all__ = [
    "SETTINGS",
    "Journeys",
    "SimConfig",
    "SimSpec",
    "ensure_mac",
    "sim_config",
    "simulate",
    "simulate_to_mac",
]

log = logging.getLogger(__name__)


@dataclass
class SimConfig:
    """Parameters of the journey simulator (module docstring). Frozen for the benchmark; see docs/mal.md."""

    n_clicks: int = 1_000_000  # target number of clicks (journeys = n_clicks / mean_path_len)
    n_users: int = 20_000  # users
    n_items: int = 4_000  # items (ad_feat0)
    n_categories: int = 40  # item categories (ad_feat1)
    n_brands: int = 400  # brands (ad_feat2)
    n_shops: int = 800  # shops (ad_feat3)
    n_channels: int = 6  # channels (context_feat0), the attribution unit of the mta label
    n_slots: int = 5  # ad slot positions (context_feat1)
    latent_dim: int = 8  # d
    mean_path_len: float = 1.5  # E[T] before truncation (short: 1.5, long: 4.0)
    max_path_len: int = 12  # cap on T
    gap_mean_days: float = 1.0  # mean gap between consecutive touches of a journey
    window_days: float = 7.0  # attribution window
    conv_delay_days: float = 0.5  # mean delay from the last touch to the conversion
    n_days: int = 21  # 20 training days + 1 test day (MAC layout)
    edge_days: float = 7.0  # journeys also run this long before day 0 and after the last day (never written)
    base_logit: float = -4.5  # intercept of the journey conversion logit
    affinity_weight: float = 1.0  # weight of p_u.q_i / sqrt(d)
    item_bias_sd: float = 0.5  # sd of b_i
    item_noise: float = 0.7  # spread of items around their category centre
    item_temperature: float = 0.5  # temperature of the user's choice of item
    n_candidates: int = 32  # items a journey's item is chosen from
    channel_effect_sd: float = 0.5  # sd of channel_effect[c]
    slot_effect_step: float = 0.15  # slot_effect[s] = slot_effect_step * (n_slots/2 - s)
    touch_noise_sd: float = 0.3  # sd of touch_noise_k (unobserved)
    activity_sigma: float = 1.0  # sigma of the users' log-normal activity
    mm_noise: float = 0.5  # noise of the multimodal embeddings behind mm_feat{0,1}_seq
    seed: int = 0  # generator seed (fixed per setting, not per model seed)

    def __post_init__(self) -> None:
        if self.n_days < 2:
            raise ValueError("n_days must be >= 2 (training days + 1 test day)")
        if self.mean_path_len < 1:
            raise ValueError("mean_path_len must be >= 1")
        if self.n_clicks < 1 or self.n_users < 1 or self.n_items < 1:
            raise ValueError("n_clicks, n_users and n_items must be >= 1")


SETTINGS: dict[str, dict[str, Any]] = {
    "short": {"mean_path_len": 1.5},
    "long": {"mean_path_len": 4.0},
}


@dataclass
class Journeys:
    """Flat click table of a simulation, rows sorted by time (one entry per click unless noted)."""

    click_time: np.ndarray  # (N,) days
    journey: np.ndarray  # (N,) journey index
    user: np.ndarray  # (N,) user index
    item: np.ndarray  # (N,) item index
    channel: np.ndarray  # (N,)
    slot: np.ndarray  # (N,)
    hour: np.ndarray  # (N,)
    device: np.ndarray  # (N,)
    labels: dict[str, np.ndarray]  # first/last/linear/mta credits
    converted: np.ndarray  # (J,) per journey
    p_convert: np.ndarray  # (J,) true P(convert | journey)
    channel_values: dict[str, float] = field(default_factory=dict)  # Markov credit per channel


def _segment_first(journey: np.ndarray) -> np.ndarray:
    """Boolean: row is the first of its journey (rows grouped by journey)."""
    first = np.ones(len(journey), dtype=bool)
    first[1:] = journey[1:] != journey[:-1]
    return first


def simulate(cfg: SimConfig) -> tuple[Journeys, dict[str, np.ndarray]]:
    """Draw journeys and labels; also returns the static user/item tables used to build the features."""
    rng = np.random.default_rng(cfg.seed)
    d = cfg.latent_dim
    p_user = rng.standard_normal((cfg.n_users, d)).astype(np.float32)
    activity = rng.lognormal(0.0, cfg.activity_sigma, cfg.n_users)
    centres = rng.standard_normal((cfg.n_categories, d)).astype(np.float32)
    category = rng.integers(0, cfg.n_categories, cfg.n_items)
    q_item = centres[category] + cfg.item_noise * rng.standard_normal((cfg.n_items, d)).astype(np.float32)
    b_item = cfg.item_bias_sd * rng.standard_normal(cfg.n_items)
    brand = rng.integers(0, cfg.n_brands, cfg.n_items)
    shop = rng.integers(0, cfg.n_shops, cfg.n_items)
    price = np.clip(((b_item / cfg.item_bias_sd + 2) * 2).astype(int), 0, 7)  # price bucket tracks the bias
    channel_effect = cfg.channel_effect_sd * rng.standard_normal(cfg.n_channels)
    slot_effect = cfg.slot_effect_step * (cfg.n_slots / 2 - np.arange(cfg.n_slots))

    span = cfg.n_days + 2 * cfg.edge_days  # journeys start in [-edge, n_days + edge)
    n_j = max(1, int(round(cfg.n_clicks / cfg.mean_path_len * span / cfg.n_days)))
    users = rng.choice(cfg.n_users, size=n_j, p=activity / activity.sum())
    cand = rng.integers(0, cfg.n_items, (n_j, cfg.n_candidates))
    aff_c = np.einsum("jd,jcd->jc", p_user[users], q_item[cand]) / np.sqrt(d)  # (J, C)
    pick = np.argmax(aff_c / cfg.item_temperature + rng.gumbel(size=aff_c.shape), axis=1)
    items = cand[np.arange(n_j), pick]
    affinity = aff_c[np.arange(n_j), pick]

    length = np.minimum(1 + rng.poisson(cfg.mean_path_len - 1, n_j), cfg.max_path_len)
    journey = np.repeat(np.arange(n_j), length)
    first = _segment_first(journey)
    gaps = rng.exponential(cfg.gap_mean_days, len(journey))
    gaps[first] = rng.uniform(-cfg.edge_days, cfg.n_days + cfg.edge_days, n_j)
    t = np.cumsum(gaps)
    starts = np.flatnonzero(first)
    t = t - np.repeat(t[starts] - gaps[starts], length)  # cumulative time restarted per journey
    keep = t < cfg.n_days + cfg.edge_days  # touches outside [0, n_days) count but are never written
    journey, t = journey[keep], t[keep]
    n = len(t)
    channel = rng.integers(0, cfg.n_channels, n)
    slot = rng.integers(0, cfg.n_slots, n)
    hour = rng.integers(0, 24, n)
    device = rng.integers(0, 3, n)
    touch = channel_effect[channel] + slot_effect[slot] + cfg.touch_noise_sd * rng.standard_normal(n)
    logit = cfg.base_logit + cfg.affinity_weight * affinity + b_item[items]
    logit = logit + np.bincount(journey, weights=touch, minlength=n_j)
    p_conv = 1.0 / (1.0 + np.exp(-logit))
    has_click = np.bincount(journey, minlength=n_j) > 0
    converted = (rng.random(n_j) < p_conv) & has_click

    # labels: rows are grouped by journey and sorted by time inside it
    first = _segment_first(journey)
    last = np.ones(n, dtype=bool)
    last[:-1] = journey[1:] != journey[:-1]
    last_t = np.zeros(n_j)
    last_t[journey[last]] = t[last]
    conv_time = last_t + rng.exponential(cfg.conv_delay_days, n_j)
    conv_row = converted[journey]
    in_win = conv_row & (conv_time[journey] - t <= cfg.window_days)
    n_in = np.bincount(journey, weights=in_win, minlength=n_j)
    # first in-window touch: in window and (first of journey or previous row not in window)
    prev_in = np.zeros(n, dtype=bool)
    prev_in[1:] = in_win[:-1] & ~first[1:]
    y_first = (in_win & ~prev_in).astype(np.float32)
    y_last = (conv_row & last).astype(np.float32)
    y_linear = np.where(in_win, 1.0 / np.maximum(n_in[journey], 1), 0.0).astype(np.float32)
    # mta: Markov channel values from the channel paths of all journeys (ChannelAttribution's layout)
    names = [f"c{c}" for c in range(cfg.n_channels)]
    starts = np.flatnonzero(first)
    bounds = np.append(starts, n)
    keys: dict[tuple[int, ...], list[float]] = {}
    for s, e in zip(bounds[:-1], bounds[1:], strict=True):
        k = tuple(channel[s:e].tolist())
        acc = keys.setdefault(k, [0.0, 0.0])
        acc[0 if converted[journey[s]] else 1] += 1.0
    paths = [[names[c] for c in k] for k in keys]
    values = markov(paths, [v[0] for v in keys.values()], [v[1] for v in keys.values()])
    w = np.array([max(values.get(nm, 0.0), 0.0) for nm in names])[channel] * in_win
    w_sum = np.bincount(journey, weights=w, minlength=n_j)[journey]
    y_mta = np.where(w_sum > 0, w / np.where(w_sum > 0, w_sum, 1.0), y_linear).astype(np.float32)

    order = np.argsort(t, kind="stable")
    labels = {"first": y_first, "last": y_last, "linear": y_linear, "mta": y_mta}
    journeys = Journeys(
        click_time=t[order],
        journey=journey[order],
        user=users[journey][order],
        item=items[journey][order],
        channel=channel[order],
        slot=slot[order],
        hour=hour[order],
        device=device[order],
        labels={k: v[order] for k, v in labels.items()},
        converted=converted,
        p_convert=p_conv,
        channel_values=values,
    )
    tables = {
        "p_user": p_user,
        "q_item": q_item,
        "category": category,
        "brand": brand,
        "shop": shop,
        "price": price,
    }
    return journeys, tables


def _user_features(cfg: SimConfig, p_user: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(U, 6) categorical user features: 4 noisy quantised projections of p_u and 2 uninformative ones."""
    proj = p_user @ rng.standard_normal((cfg.latent_dim, 4)) / np.sqrt(cfg.latent_dim)
    proj = proj + 0.5 * rng.standard_normal(proj.shape)
    qs = np.quantile(proj, np.linspace(0, 1, 9)[1:-1], axis=0)  # (7, 4)
    buckets = np.stack([np.searchsorted(qs[:, k], proj[:, k]) for k in range(4)], 1)
    extra = np.stack([rng.integers(0, 2, len(p_user)), rng.integers(0, 5, len(p_user))], 1)
    return np.concatenate([buckets, extra], 1)


def _history(cfg: SimConfig, p_user: np.ndarray, q_item: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(U, SEQ_LEN) purchase history before day 0 (item index + 1; 0 = padding), right-padded."""
    n_u = len(p_user)
    hist = np.zeros((n_u, SEQ_LEN), dtype=np.int64)
    h_len = rng.integers(0, SEQ_LEN + 1, n_u)
    for s in range(0, n_u, 2048):
        cand = rng.integers(0, cfg.n_items, (min(2048, n_u - s), 4 * SEQ_LEN))
        aff = np.einsum("ud,ucd->uc", p_user[s : s + 2048], q_item[cand]) / np.sqrt(cfg.latent_dim)
        top = np.argsort(-(aff / cfg.item_temperature + rng.gumbel(size=aff.shape)), axis=1)[:, :SEQ_LEN]
        hist[s : s + 2048] = np.take_along_axis(cand, top, 1) + 1
    hist[np.arange(SEQ_LEN)[None, :] >= h_len[:, None]] = 0
    return hist


def _str_list_column(idx: np.ndarray) -> pa.Array:
    """(N, L) int indices -> a list<string> column of raw values (str of the index)."""
    n, length = idx.shape
    flat = pa.array(idx.reshape(-1).astype(str))
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * length + 1, length, dtype=np.int32)), flat)


def _float_list_column(x: np.ndarray) -> pa.Array:
    n, length = x.shape
    return pa.ListArray.from_arrays(
        pa.array(np.arange(0, n * length + 1, length, dtype=np.int32)),
        pa.array(x.reshape(-1).astype(np.float32)),
    )


def simulate_to_mac(cfg: SimConfig, root: str | Path, overwrite: bool = False) -> dict[str, float]:
    """Simulate and write a MAC folder at ``root``; returns summary statistics (also in ``sim.json``)."""
    journeys, tab = simulate(cfg)
    rng = np.random.default_rng(cfg.seed + 1)
    user_feat = _user_features(cfg, tab["p_user"], rng)
    hist = _history(cfg, tab["p_user"], tab["q_item"], rng)  # (U, L), item + 1
    creative = rng.integers(0, 4, len(journeys.click_time))
    emb_img = tab["q_item"] + cfg.mm_noise * rng.standard_normal(tab["q_item"].shape).astype(np.float32)
    emb_txt = tab["q_item"] + cfg.mm_noise * rng.standard_normal(tab["q_item"].shape).astype(np.float32)
    emb_img /= np.linalg.norm(emb_img, axis=1, keepdims=True)
    emb_txt /= np.linalg.norm(emb_txt, axis=1, keepdims=True)

    u, it = journeys.user, journeys.item
    # raw values are str(index); index 0 is reserved (padding / unknown) in every vocabulary
    user_idx = np.stack([u + 1] + [user_feat[u, k] + 1 for k in range(6)], 1)
    ad_idx = np.stack(
        [
            it + 1,
            tab["category"][it] + 1,
            tab["brand"][it] + 1,
            tab["shop"][it] + 1,
            tab["price"][it] + 1,
            it * 4 + creative + 1,
            journeys.channel + 1,
            journeys.slot + 1,
            journeys.hour + 1,
            journeys.device + 1,
        ],
        1,
    )
    sizes = {
        "user_id": cfg.n_users,
        **{f"user_feat{k}": int(user_feat[:, k].max()) + 1 for k in range(6)},
        "ad_feat0": cfg.n_items,
        "ad_feat1": cfg.n_categories,
        "ad_feat2": cfg.n_brands,
        "ad_feat3": cfg.n_shops,
        "ad_feat4": 8,
        "ad_feat5": cfg.n_items * 4,
        "context_feat0": cfg.n_channels,
        "context_feat1": cfg.n_slots,
        "context_feat2": 24,
        "context_feat3": 3,
    }
    vocabs = {col: {str(i): i for i in range(sizes[col] + 1)} for col in USER_COLS + AD_COLS}
    h_items = hist[u]  # (N, L) item + 1 or 0
    h0 = np.maximum(h_items - 1, 0)
    seq_idx = {
        "ad_feat0_seq": h_items,
        "ad_feat1_seq": np.where(h_items > 0, tab["category"][h0] + 1, 0),
        "ad_feat2_seq": np.where(h_items > 0, tab["brand"][h0] + 1, 0),
    }
    assert set(SEQ_SOURCE) == set(seq_idx)
    mm = {
        "mm_feat0_seq": np.where(h_items > 0, np.einsum("nd,nld->nl", emb_img[it], emb_img[h0]), 0.0),
        "mm_feat1_seq": np.where(h_items > 0, np.einsum("nd,nld->nl", emb_txt[it], emb_txt[h0]), 0.0),
    }
    day = np.floor(journeys.click_time).astype(np.int64)
    tables: dict[str, pa.Table] = {}
    names = [f"train/{f}" for f in TRAIN_FILES[: cfg.n_days - 1]] + [f"test/{TEST_FILES[0]}"]
    for dd, rel in enumerate(progress(names, desc="simulate days", unit="day")):
        rows = np.flatnonzero(day == dd)
        cols: dict[str, pa.Array] = {}
        for k, c in enumerate(USER_COLS):
            cols[c] = pa.array(user_idx[rows, k].astype(str))
        for k, c in enumerate(AD_COLS):
            cols[c] = pa.array(ad_idx[rows, k].astype(str))
        for c in SEQ_COLS:
            cols[c] = _str_list_column(seq_idx[c][rows])
        for c in MM_COLS:
            cols[c] = _float_list_column(mm[c][rows])
        for c in ("first", "last", "mta", "linear"):
            cols[c] = pa.array(journeys.labels[c][rows])
        cols["click_time"] = pa.array(journeys.click_time[rows])
        tables[rel] = pa.table(cols)
    write_mac(root, tables, vocabs, overwrite=overwrite)
    written = (day >= 0) & (day < cfg.n_days)
    test = day == cfg.n_days - 1
    stats = {
        "clicks": int(written.sum()),
        "train_clicks": int((written & ~test).sum()),
        "test_clicks": int(test.sum()),
        "journeys": int(len(np.unique(journeys.journey[written]))),
        "journey_cvr": float(journeys.converted[np.unique(journeys.journey[written])].mean()),
        **{f"rate_{k}": float((v[written] > 0).mean()) for k, v in journeys.labels.items()},
        "mean_path_len": float(len(day) / max(1, len(np.unique(journeys.journey)))),
    }
    from mercato.core.runs import atomic_write_json

    atomic_write_json(Path(root) / "sim.json", {"config": cfg.__dict__, "stats": stats})
    log.info("simulated %d clicks into %s", stats["clicks"], root)
    return stats


DATA_ROOT = Path("runs/bench/mal/data")  # where benchmark MAC folders are cached (MERCATO_MAL_DATA)


@dataclass(frozen=True)
class SimSpec:
    """One simulated MAC folder: ``setting`` in SETTINGS ('short', 'long'), ``n_clicks``, generator seed."""

    setting: str = "short"
    n_clicks: int = 1_000_000
    seed: int = 0


def sim_config(spec: SimSpec) -> SimConfig:
    """The frozen generator config of a spec (defaults of SimConfig + the setting's path length)."""
    if spec.setting not in SETTINGS:
        raise ValueError(f"unknown setting {spec.setting!r}; valid: {sorted(SETTINGS)}")
    return dataclasses.replace(SimConfig(), n_clicks=spec.n_clicks, seed=spec.seed, **SETTINGS[spec.setting])


def ensure_mac(spec: SimSpec, root: str | Path | None = None) -> Path:
    """Path of the MAC folder of ``spec``, simulated first if it is missing or was made with another config."""
    cfg = sim_config(spec)
    base = Path(root) if root is not None else Path(os.environ.get("MERCATO_MAL_DATA", DATA_ROOT))
    path = base / f"{spec.setting}-{spec.n_clicks}-s{spec.seed}"
    meta = path / "sim.json"
    if meta.exists() and json.loads(meta.read_text())["config"] == json.loads(json.dumps(cfg.__dict__)):
        return path
    simulate_to_mac(cfg, path, overwrite=True)
    return path

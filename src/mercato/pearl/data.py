"""Offline trajectories: generation from behaviour policies, a Parquet schema, a strict loader.

Schema (one row per advertiser-episode and step, file ``*.parquet``):

=============  =======  ==================================================================
column         type     meaning
=============  =======  ==================================================================
traj           int64    trajectory id (one advertiser in one episode)
step           int64    time step t, 0 .. T-1, each exactly once per trajectory
budget         float64  the advertiser's budget B (> 0, constant within a trajectory)
bid_scale      float64  action a_t (bid = a_t * value); AuctionNet: sum(bid) / sum(pValue) of the step
cost           float64  payment in step t (>= 0; the running sum never exceeds B)
value          float64  value won in step t, r_t (AuctionNet: sum of pValue of won impressions)
policy         string   behaviour policy name (optional)
attr_<name>    float64  static advertiser attributes (optional, constant within a trajectory); the
                        simulator writes ``attr_log_value_level``, ``attr_day_sin``, ``attr_day_cos``
=============  =======  ==================================================================

:func:`from_auctionnet` converts AuctionNet's impression-level log columns into these rows.
The quality of a trajectory is y(tau) = sum_t r_t / B (section 2.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mercato.core.progress import progress
from mercato.core.runs import atomic_path
from mercato.pearl.config import DataConfig, SimConfig
from mercato.pearl.sim import ATTRIBUTE_NAMES, AuctionEnv, PolicyBank, state_features

__all__ = [
    "COLUMNS",
    "TrajectoryData",
    "TrajectoryError",
    "budgets_for",
    "from_auctionnet",
    "generate",
    "load_parquet",
    "save_parquet",
]

COLUMNS = {"traj": "int64", "step": "int64", "budget": "float64", "bid_scale": "float64",
           "cost": "float64", "value": "float64"}  # fmt: skip


class TrajectoryError(ValueError):
    """A trajectory file that breaks the schema (the message names the file and row)."""


@dataclass
class TrajectoryData:
    """N trajectories of T steps: budgets (N,), actions, costs and values (N, T)."""

    budget: np.ndarray  # (N,)
    a: np.ndarray  # (N, T)
    cost: np.ndarray  # (N, T)
    value: np.ndarray  # (N, T)
    policy: np.ndarray  # (N,) str
    attrs: np.ndarray | None = None  # (N, K) static advertiser attributes (``attr_<name>`` columns), or None
    attr_names: tuple[str, ...] = ()  # their names, K of them

    def __post_init__(self) -> None:
        if self.attrs is not None and self.attrs.shape != (self.n, len(self.attr_names)):
            raise ValueError(
                f"attrs: expected shape ({self.n}, {len(self.attr_names)}) for names {self.attr_names}, "
                f"got {self.attrs.shape}"
            )

    @property
    def n(self) -> int:
        return len(self.budget)

    @property
    def T(self) -> int:  # noqa: N802
        return self.a.shape[1]

    @property
    def y(self) -> np.ndarray:
        """y(tau) = sum_t r_t / B (section 2.1)."""
        return self.value.sum(axis=1) / self.budget

    @property
    def x(self) -> np.ndarray:
        """The dynamic part of the state trajectory: cost ratios c_t / B (N, T)."""
        return self.cost / self.budget[:, None]

    def states(self, sim: SimConfig) -> np.ndarray:
        """s_t for t = 0 .. T (N, T+1, STATE_DIM); the attribute columns are zeros when the data has none."""
        rem = self.budget[:, None] - np.concatenate([np.zeros((self.n, 1)), np.cumsum(self.cost, 1)], 1)
        last = np.concatenate([np.zeros((self.n, 1)), self.cost], 1)
        cfg = SimConfig(**{**sim.__dict__, "n_steps": self.T})
        return np.stack(
            [
                state_features(t, last[:, t], rem[:, t], self.budget, cfg, self._state_attrs())
                for t in range(self.T + 1)
            ],
            1,
        )

    def _state_attrs(self) -> np.ndarray | None:
        """The attributes in the state's order (ATTRIBUTE_NAMES); None (zeros) when the data lacks any."""
        if self.attrs is None or not set(ATTRIBUTE_NAMES) <= set(self.attr_names):
            return None
        return self.attrs[:, [self.attr_names.index(k) for k in ATTRIBUTE_NAMES]]

    def subset(self, idx: np.ndarray) -> TrajectoryData:
        return TrajectoryData(
            self.budget[idx], self.a[idx], self.cost[idx], self.value[idx], self.policy[idx],
            None if self.attrs is None else self.attrs[idx], self.attr_names,
        )  # fmt: skip

    def to_frame(self) -> pd.DataFrame:
        n, t = self.a.shape
        attrs = {} if self.attrs is None else {
            f"attr_{k}": np.repeat(self.attrs[:, i], t) for i, k in enumerate(self.attr_names)
        }  # fmt: skip
        return pd.DataFrame(
            {
                "traj": np.repeat(np.arange(n), t),
                "step": np.tile(np.arange(t), n),
                "budget": np.repeat(self.budget, t),
                "bid_scale": self.a.ravel(),
                "cost": self.cost.ravel(),
                "value": self.value.ravel(),
                "policy": np.repeat(self.policy, t).astype(str),
                **attrs,
            }
        )


def budgets_for(sim: SimConfig, m: int | None = None) -> np.ndarray:
    """Budgets of the M advertisers of an episode: the levels in turn."""
    m = m or sim.n_advertisers
    return np.asarray([sim.budget_levels[i % len(sim.budget_levels)] for i in range(m)], dtype=np.float64)


def generate(sim: SimConfig, data: DataConfig, seed: int, show_progress: bool = True) -> TrajectoryData:
    """Simulate ``data.n_episodes`` episodes; every advertiser of every episode gives one trajectory."""
    rng = np.random.default_rng(seed)
    budget = budgets_for(sim)
    env = AuctionEnv(sim, budget)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("budget", "a", "cost", "value", "policy", "attrs")}
    for _ in progress(range(data.n_episodes), desc="pearl data", disable=not show_progress):
        bank = PolicyBank.random(data.policies, env.m, rng, noise=data.noise)
        bank.reset()
        s = env.reset(int(rng.integers(2**31)))
        a_t, c_t, v_t = [], [], []
        while not env.done:
            a = bank.act(env.t, s, env)
            s, v, c, _ = env.step(a)
            a_t.append(a)
            c_t.append(c)
            v_t.append(v)
        out["budget"].append(budget)
        out["a"].append(np.stack(a_t, 1))
        out["cost"].append(np.stack(c_t, 1))
        out["value"].append(np.stack(v_t, 1))
        out["policy"].append(np.asarray(bank.kinds))
        out["attrs"].append(env.market.attributes)
    cat = {k: np.concatenate(v) for k, v in out.items()}
    return TrajectoryData(
        cat["budget"], cat["a"], cat["cost"], cat["value"], cat["policy"], attrs=cat["attrs"],
        attr_names=ATTRIBUTE_NAMES,
    )  # fmt: skip


def save_parquet(data: TrajectoryData, path: str | Path) -> Path:
    """Write ``data`` in the documented schema (atomically)."""
    with atomic_path(path) as tmp:
        data.to_frame().to_parquet(tmp, index=False)
    return Path(path)


def _fail(path: str | Path, row: int, msg: str) -> TrajectoryError:
    return TrajectoryError(f"{path}: row {row}: {msg}")


def validate_frame(df: pd.DataFrame, source: str | Path = "<frame>") -> TrajectoryData:
    """Check a frame against the schema and turn it into arrays. Rows are numbered from 0 in file order."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise TrajectoryError(f"{source}: missing column(s) {missing}; expected {list(COLUMNS)}")
    for c in COLUMNS:
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise TrajectoryError(f"{source}: column {c!r} must be numeric, got {df[c].dtype}")
        bad = ~np.isfinite(df[c].to_numpy(dtype=np.float64))
        if bad.any():
            raise _fail(source, int(np.flatnonzero(bad)[0]), f"column {c!r} is not a finite number")
    df = df.reset_index(drop=True)
    neg = np.flatnonzero(df["budget"].to_numpy() <= 0)
    if len(neg):
        raise _fail(source, int(neg[0]), f"budget must be > 0, got {df['budget'].iloc[neg[0]]}")
    negc = np.flatnonzero(df["cost"].to_numpy() < 0)
    if len(negc):
        raise _fail(source, int(negc[0]), f"cost must be >= 0, got {df['cost'].iloc[negc[0]]}")
    order = np.lexsort((df["step"].to_numpy(), df["traj"].to_numpy()))
    d = df.iloc[order]
    trajs, start, counts = np.unique(d["traj"].to_numpy(), return_index=True, return_counts=True)
    t_ = int(d["step"].max()) + 1
    steps = d["step"].to_numpy()
    rows = d.index.to_numpy()
    for _k, (tr, s0, cnt) in enumerate(zip(trajs, start, counts)):
        st = steps[s0 : s0 + cnt]
        if cnt != t_ or not np.array_equal(st, np.arange(t_)):
            have = set(st.tolist())
            gap = next((i for i in range(t_) if i not in have), None)
            dup = next((int(s) for s in st if (st == s).sum() > 1), None)
            what = f"step {gap} is missing" if gap is not None else f"step {dup} appears twice"
            raise _fail(source, int(rows[s0]), f"trajectory {tr}: {what} (expected steps 0..{t_ - 1})")
        b = d["budget"].to_numpy()[s0 : s0 + cnt]
        if not np.allclose(b, b[0]):
            i = int(np.flatnonzero(~np.isclose(b, b[0]))[0])
            raise _fail(source, int(rows[s0 + i]), f"trajectory {tr}: budget changes within the trajectory")
        cum = np.cumsum(d["cost"].to_numpy()[s0 : s0 + cnt])
        over = np.flatnonzero(cum > b[0] * (1 + 1e-9) + 1e-9)
        if len(over):
            i = int(over[0])
            raise _fail(
                source, int(rows[s0 + i]),
                f"trajectory {tr}: cumulative cost {cum[i]:.4g} exceeds budget {b[0]:.4g} at step {i}",
            )  # fmt: skip
    n = len(trajs)
    arr = {
        c: d[c].to_numpy(dtype=np.float64).reshape(n, t_) for c in ("bid_scale", "cost", "value", "budget")
    }
    policy = d["policy"].to_numpy().reshape(n, t_)[:, 0].astype(str) if "policy" in d else np.full(n, "")
    names = tuple(c[len("attr_") :] for c in d.columns if str(c).startswith("attr_"))
    attrs = None
    if names:
        cols = []
        for k in names:
            c = f"attr_{k}"
            if not pd.api.types.is_numeric_dtype(d[c]):
                raise TrajectoryError(f"{source}: column {c!r} must be numeric, got {d[c].dtype}")
            v = d[c].to_numpy(dtype=np.float64)
            bad = np.flatnonzero(~np.isfinite(v))
            if len(bad):
                raise _fail(source, int(rows[bad[0]]), f"column {c!r} is not a finite number")
            v = v.reshape(n, t_)
            moving = np.flatnonzero(~np.isclose(v, v[:, :1]).all(1))
            if len(moving):
                i = int(moving[0])
                j = int(np.flatnonzero(~np.isclose(v[i], v[i, 0]))[0])
                raise _fail(
                    source, int(rows[i * t_ + j]),
                    f"trajectory {trajs[i]}: {c!r} changes within the trajectory (attributes are static)",
                )  # fmt: skip
            cols.append(v[:, 0])
        attrs = np.stack(cols, 1)
    return TrajectoryData(
        arr["budget"][:, 0], arr["bid_scale"], arr["cost"], arr["value"], policy, attrs, names
    )


def load_parquet(path: str | Path) -> TrajectoryData:
    """Read and validate a trajectory file; a bad row raises :class:`TrajectoryError` naming file and row."""
    p = Path(path)
    if not p.is_file():
        raise TrajectoryError(f"{p}: file not found")
    try:
        df = pd.read_parquet(p)
    except Exception as err:  # pyarrow raises several types for a non-Parquet file
        raise TrajectoryError(f"{p}: not a readable Parquet file ({err})") from err
    return validate_frame(df, p)


def from_auctionnet(log: pd.DataFrame) -> pd.DataFrame:
    """AuctionNet impression rows -> our schema (one trajectory per deliveryPeriodIndex x advertiserNumber).

    Needs AuctionNet's columns deliveryPeriodIndex, advertiserNumber, timeStepIndex, budget, pValue, bid,
    cost, isExposed. value = sum of pValue of exposed impressions; bid_scale = sum(bid) / sum(pValue).
    """
    need = ["deliveryPeriodIndex", "advertiserNumber", "timeStepIndex", "budget", "pValue", "bid", "cost",
            "isExposed"]  # fmt: skip
    missing = [c for c in need if c not in log.columns]
    if missing:
        raise TrajectoryError(f"AuctionNet log: missing column(s) {missing}")
    g = log.assign(_v=log["pValue"] * log["isExposed"], _c=log["cost"] * log["isExposed"]).groupby(
        ["deliveryPeriodIndex", "advertiserNumber", "timeStepIndex"], sort=True
    )
    agg = g.agg(budget=("budget", "first"), bid=("bid", "sum"), pv=("pValue", "sum"), cost=("_c", "sum"),
                value=("_v", "sum")).reset_index()  # fmt: skip
    traj = agg.groupby(["deliveryPeriodIndex", "advertiserNumber"], sort=True).ngroup()
    return pd.DataFrame(
        {
            "traj": traj.astype("int64"),
            "step": agg["timeStepIndex"].astype("int64"),
            "budget": agg["budget"].astype("float64"),
            "bid_scale": (agg["bid"] / agg["pv"].where(agg["pv"] > 0, 1.0)).astype("float64"),
            "cost": agg["cost"].astype("float64"),
            "value": agg["value"].astype("float64"),
            "policy": "auctionnet",
        }
    )

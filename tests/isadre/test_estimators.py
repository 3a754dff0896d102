"""Networks, estimators and baselines: shapes, one step moves every parameter, overfitting, API errors."""

import dataclasses
import os

import numpy as np
import pytest
import torch
import torch.autograd.forward_ad as fwAD
from sklearn.exceptions import NotFittedError

from mercato.isadre import (
    ISADRE,
    ClassifierDRE,
    ClassifierDREConfig,
    ISADREConfig,
    PathConfig,
    TimeScoreDRE,
    TimeScoreDREConfig,
    TrainConfig,
)
from mercato.isadre.estimator import select_checkpoint
from mercato.isadre.networks import TimeConditionedMLP, build_network, sinusoidal_embedding
from mercato.isadre.toy import GaussianPair, correlated_gaussian_pair

os.environ.setdefault("MERCATO_NO_PROGRESS", "1")

# quadratic_rank=0: the package default is now K = d (chosen on the suite); these tests pin the plain MLP, and
# test_quadratic_branch_trains_in_both_estimators checks the branch (its coefficients start at zero)
TINY = TrainConfig(
    hidden=16, n_blocks=1, emb_dim=8, n_iters=3, batch_size=16, ema_decay=0.0, quadratic_rank=0
)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA)]


def _data(n=64, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(0.5, 0.8, size=(n, d)), rng.normal(size=(n, d))


def test_embedding_shape_and_smoothness():
    e = sinusoidal_embedding(torch.tensor([0.0, 0.5]), 8)
    assert e.shape == (2, 8)
    assert torch.allclose(e[0, :4], torch.zeros(4)) and torch.allclose(e[0, 4:], torch.ones(4))
    with fwAD.dual_level():  # d/dt by forward mode, as in training (torch.func's first import costs ~10 s)
        _, de = fwAD.unpack_dual(sinusoidal_embedding(fwAD.make_dual(torch.tensor([0.3]), torch.ones(1)), 8))
    assert de.abs().max() <= 64.0 + 1e-4
    with fwAD.dual_level():  # a lower bandwidth bounds |d/dt| lower (train.emb_max_freq)
        _, de8 = fwAD.unpack_dual(
            sinusoidal_embedding(fwAD.make_dual(torch.tensor([0.3]), torch.ones(1)), 8, max_freq=8.0)
        )
    assert de8.abs().max() <= 8.0 + 1e-4 and de8.abs().max() > 1.0


def test_network_output_shapes_and_secant_needs_l():
    net = TimeConditionedMLP(3, hidden=16, n_blocks=2, emb_dim=8, secant=True)
    x, t = torch.randn(5, 3), torch.rand(5)
    assert net(x, t, t * 0.5).shape == (5,)
    assert net.n_calls == 1
    with pytest.raises(ValueError, match="interval start"):
        net(x, t)
    assert TimeConditionedMLP(3, 16, 1, 8, secant=False)(x, t).shape == (5,)


def test_quadratic_branch_starts_off_and_adds_a_time_dependent_quadratic_form():
    x, t = torch.randn(5, 3), torch.rand(5)
    torch.manual_seed(0)
    plain = TimeConditionedMLP(3, 16, 1, 8, secant=False)
    torch.manual_seed(0)
    quad = TimeConditionedMLP(3, 16, 1, 8, secant=False, quadratic_rank=3)
    assert torch.allclose(quad(x, t), plain(x, t))  # zero coefficients at init: the same function
    with torch.no_grad():
        quad.quad_proj.weight.copy_(torch.eye(3))
        quad.quad_coef.bias.copy_(torch.tensor([1.0, 2.0, 0.0]))
    assert torch.allclose(quad(x, t) - plain(x, t), x[:, 0] ** 2 + 2 * x[:, 1] ** 2, atol=1e-5)
    with pytest.raises(ValueError, match="quadratic_rank"):
        TrainConfig(quadratic_rank=-1)


def _step_changes_all(est, X_p, X_q, steps=1):
    torch.manual_seed(0)
    net = build_network(2, dataclasses.replace(est._train_cfg(), hidden=16, n_blocks=2), est._secant)
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        loss = est._loss(
            net,
            torch.as_tensor(X_q[:32], dtype=torch.float32),
            torch.as_tensor(X_p[:32], dtype=torch.float32),
            gen,
            10,
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [name for (name, p), b in zip(net.named_parameters(), before) if torch.equal(p, b)]


@pytest.mark.parametrize("derivative", ["partial", "total"])
def test_one_sai_step_changes_every_parameter(derivative):
    X_p, X_q = _data()
    est = ISADRE(ISADREConfig(train=TINY, derivative=derivative, aligned_ratio=0.0))
    assert _step_changes_all(est, X_p, X_q) == []


def test_one_time_score_step_changes_every_parameter():
    X_p, X_q = _data()
    assert _step_changes_all(TimeScoreDRE(TimeScoreDREConfig(train=TINY)), X_p, X_q) == []


def test_quadratic_branch_trains_in_both_estimators():
    # the coefficients start at 0, so the directions p_k get a gradient from the second step on
    X_p, X_q = _data()
    train = dataclasses.replace(TINY, quadratic_rank=4)
    assert _step_changes_all(ISADRE(ISADREConfig(train=train, aligned_ratio=0.0)), X_p, X_q, steps=2) == []
    assert _step_changes_all(TimeScoreDRE(TimeScoreDREConfig(train=train)), X_p, X_q, steps=2) == []
    one = _step_changes_all(TimeScoreDRE(TimeScoreDREConfig(train=train)), X_p, X_q, steps=1)
    assert one == ["quad_proj.weight"]


def _overfit_loss(est, steps=60):
    X_p, X_q = _data(16)
    torch.manual_seed(0)
    net = TimeConditionedMLP(2, 32, 1, 8, secant=est._secant)
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    xq, xp = torch.as_tensor(X_q, dtype=torch.float32), torch.as_tensor(X_p, dtype=torch.float32)
    losses = []
    for k in range(steps):
        gen = torch.Generator().manual_seed(0)  # the same 16 pairs, times and noise every step
        loss = est._loss(net, xq, xp, gen, k)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


GAUSS_REF = PathConfig(kind="linear", reference="gaussian", gamma=0.0, noise_eps=0.0)


def test_sai_loss_falls_when_overfitting_16_samples():
    # aligned_ratio=1 (l = t) fixes the regression target; with l < t the SAI target moves with the network
    # (bootstrap) and on a fixed 16-sample batch the loss need not fall monotonically (see docs/isadre.md).
    est = ISADRE(ISADREConfig(path=GAUSS_REF, train=TINY, anneal="none", aligned_ratio=1.0))
    losses = _overfit_loss(est)
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])


def test_time_score_loss_falls_when_overfitting_16_samples():
    losses = _overfit_loss(TimeScoreDRE(TimeScoreDREConfig(path=GAUSS_REF, train=TINY)))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])


def test_fit_sets_state_and_counts_nfe():
    X_p, X_q = _data()
    est = ISADRE(ISADREConfig(train=TINY)).fit(X_p, X_q)
    assert est.n_features_in_ == 2 and len(est.loss_history_) == 3
    for steps in (1, 2, 4):
        out = est.log_ratio(X_p[:7], steps=steps)
        assert out.shape == (7,) and np.isfinite(out).all()
        assert est.last_nfe_ == steps
    assert np.allclose(est.ratio(X_p[:3]), np.exp(est.log_ratio(X_p[:3])), rtol=1e-5)
    ts = TimeScoreDRE(TimeScoreDREConfig(train=TINY)).fit(X_p, X_q)
    ts.log_ratio(X_p[:5], steps=10)
    assert ts.last_nfe_ == 11
    ts.log_ratio(X_p[:5], integrator="ode")
    assert ts.last_nfe_ >= 6  # at least one RK45 step


def test_query_end_shortens_every_query():
    X_p, X_q = _data()
    path = PathConfig(t_end=0.9)
    isa = ISADRE(ISADREConfig(path=path, train=TINY)).fit(X_p, X_q)
    eps = path.t_eps
    assert np.allclose(isa.log_ratio(X_p[:5], steps=1), (0.9 - eps) * isa.secant(X_p[:5], eps, 0.9))
    ts = TimeScoreDRE(TimeScoreDREConfig(path=path, train=TINY)).fit(X_p, X_q)
    grid = np.linspace(eps, 0.9, 5)
    tau = np.stack([ts.time_score(X_p[:5], float(t)) for t in grid])
    assert np.allclose(ts.log_ratio(X_p[:5], steps=4), np.trapezoid(tau, grid, axis=0))
    assert PathConfig().query_end == 1 - PathConfig().t_eps
    with pytest.raises(ValueError, match="t_end"):
        PathConfig(t_end=1.0)


def test_network_narrower_than_the_data_warns(caplog):
    X_p, X_q = _data(d=20)  # TINY.hidden = 16 < 20 features
    with caplog.at_level("WARNING", logger="mercato.isadre.estimator"):
        ISADRE(ISADREConfig(train=TINY)).fit(X_p, X_q)
        ClassifierDRE(ClassifierDREConfig(hidden=16, max_iter=1)).fit(X_p, X_q)
    assert sum("below the number of features (20)" in r.message for r in caplog.records) == 2
    caplog.clear()
    with caplog.at_level("WARNING", logger="mercato.isadre.estimator"):
        ISADRE(ISADREConfig(train=TINY)).fit(*_data(d=16))  # as wide as the data: no warning
    assert not any("below the number of features" in r.message for r in caplog.records)


@pytest.mark.parametrize("cls", ["isa", "time_score"])
def test_checkpoint_selection_keeps_the_lowest_held_out_loss(cls):
    X_p, X_q = _data()
    cfg = dataclasses.replace(
        TINY, n_iters=12, val_every=4, val_fraction=0.2, ema_decay=0.9, val_select_se=0.0
    )
    est = ISADRE(ISADREConfig(train=cfg)) if cls == "isa" else TimeScoreDRE(TimeScoreDREConfig(train=cfg))
    est.fit(X_p, X_q)
    steps, losses = est.val_history_[:, 0], est.val_history_[:, 1]
    assert steps.tolist() == [4, 8, 12]
    assert est.best_step_ == int(steps[np.argmin(losses)])
    # the kept network scores the held-out loss that was recorded for its step
    _, _, val_loss = est._split_validation(est._transform(X_p), est._transform(X_q), cfg)
    assert val_loss is not None and val_loss(est.network_).mean() == pytest.approx(losses.min(), rel=1e-5)
    off = dataclasses.replace(cfg, val_fraction=0.0)
    est_off = ISADRE(ISADREConfig(train=off)).fit(X_p, X_q)
    assert est_off.best_step_ == 12 and est_off.val_history_.shape == (0, 2)


def test_select_checkpoint_prefers_later_weights_unless_clearly_worse():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(16)
    early, late = 1.0 + noise, 1.02 + noise + 0.5 * rng.standard_normal(16)  # late: higher, within the noise
    assert select_checkpoint([early, late], 0.0) == 0  # plain argmin
    assert select_checkpoint([early, late], 2.0) == 1  # not significantly worse: keep the later weights
    clearly = 2.0 + noise + 0.01 * rng.standard_normal(16)  # higher by 1.0 with a tiny paired spread
    assert select_checkpoint([early, clearly], 2.0) == 0
    near = early + 0.001 + 0.1 * rng.standard_normal(16)  # within 2 paired SEs of the lowest
    assert select_checkpoint([early + 1.0, early, near], 2.0) == 2  # the latest within 2 SE of the minimum
    assert select_checkpoint([early], 2.0) == 0


def test_quadrature_and_ode_agree_on_a_fitted_time_score():
    X_p, X_q = _data()
    ts = TimeScoreDRE(TimeScoreDREConfig(train=TINY, rtol=1e-4, atol=1e-4)).fit(X_p, X_q)
    quad = ts.log_ratio(X_p[:5], steps=400)
    ode = ts.log_ratio(X_p[:5], integrator="ode")
    assert np.allclose(quad, ode, atol=2e-3 * (1 + np.abs(quad).max()))


def test_bad_input_errors():
    X_p, X_q = _data()
    est = ISADRE(ISADREConfig(train=TINY))
    with pytest.raises(NotFittedError, match="not fitted"):
        est.log_ratio(X_p)
    with pytest.raises(ValueError, match="X_p has 2 features but X_q has 3"):
        est.fit(X_p, np.zeros((5, 3)))
    bad = X_p.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X_p: .*NaN"):
        est.fit(bad, X_q)
    est.fit(X_p, X_q)
    with pytest.raises(ValueError, match="3 features"):
        est.log_ratio(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="steps"):
        est.log_ratio(X_p, steps=0)
    with pytest.raises(NotFittedError):
        ClassifierDRE().log_ratio(X_p)


def test_classifier_dre_recovers_gaussian_log_ratio():
    pair = GaussianPair(np.zeros(1), np.eye(1), np.array([1.0]), np.eye(1))  # log r = x - 1/2, linear
    rng = np.random.default_rng(0)
    X_p, X_q = pair.sample_p(2000, rng), pair.sample_q(2000, rng)
    est = ClassifierDRE(ClassifierDREConfig(model="logistic")).fit(X_p, X_q)
    x = np.array([[-1.0], [0.0], [2.0]])
    assert np.allclose(est.log_ratio(x), pair.log_ratio(x), atol=0.15)
    assert est.last_nfe_ == 1


def test_torch_mlp_classifier_recovers_gaussian_log_ratio():
    pair = GaussianPair(np.zeros(1), np.eye(1), np.array([1.0]), np.eye(1))  # log r = x - 1/2
    rng = np.random.default_rng(0)
    X_p, X_q = pair.sample_p(1500, rng), pair.sample_q(1000, rng)  # unequal sizes: the log-prior term matters
    cfg = ClassifierDREConfig(model="mlp", hidden=16, max_iter=15, batch_size=128, lr=1e-2)
    est = ClassifierDRE(cfg).fit(X_p, X_q)
    x = np.array([[-1.0], [0.0], [1.0], [2.0]])
    assert np.allclose(est.log_ratio(x), pair.log_ratio(x), atol=0.3)
    assert est.last_nfe_ == 1
    with pytest.raises(ValueError, match="patience"):
        ClassifierDREConfig(patience=0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("cls,cfg_cls", [(ISADRE, ISADREConfig), (TimeScoreDRE, TimeScoreDREConfig)])
def test_path_estimators_train_and_answer_on_the_requested_device(cls, cfg_cls, device):
    X_p, X_q = _data()
    est = cls(cfg_cls(train=dataclasses.replace(TINY, n_iters=5, device=device))).fit(X_p, X_q)
    assert est.device_.type == device
    assert all(p.device.type == device for p in est.network_.parameters())
    out = est.log_ratio(X_p[:5])  # query points arrive as NumPy on the host and come back there
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (5,)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("device", DEVICES)
def test_mlp_classifier_trains_on_the_requested_device(device):
    X_p, X_q = _data()
    cfg = ClassifierDREConfig(model="mlp", hidden=8, max_iter=2, batch_size=32, device=device)
    est = ClassifierDRE(cfg).fit(X_p, X_q)
    assert next(est.classifier_.net.parameters()).device.type == device
    assert np.isfinite(est.log_ratio(X_q[:4])).all()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_fit_on_a_missing_gpu_fails_before_training_with_the_fix():
    with pytest.raises(ValueError, match="use device=cpu or auto"):
        ISADRE(ISADREConfig(train=dataclasses.replace(TINY, device="cuda"))).fit(*_data())


@pytest.mark.integration
@pytest.mark.parametrize("device", DEVICES)
def test_trained_isadre_estimates_mi_of_correlated_gaussians(device):
    # d = 10, true MI = 2.5. Measured (seed 0, val_select_se=2): MI 2.69 / 2.37, correlation 0.957 / 0.954, RMSE
    # 0.34 / 0.37 of its std (before the checkpoint rule: MI 2.53 (1 step) / 2.38 (4 steps), correlation with the exact
    # log ratio 0.96, RMSE 0.30-0.38 of its std); with the old embedding bandwidth (64 rad) 2.87 / 2.15,
    # correlation 0.90 / 0.89, RMSE 0.54 / 0.68, which fails the correlation and RMSE bounds.
    pair = correlated_gaussian_pair(10)
    rng = np.random.default_rng(0)
    X_p, X_q, X = pair.sample_p(10_000, rng), pair.sample_q(10_000, rng), pair.sample_p(4000, rng)
    path = PathConfig(kind="trig", reference="gaussian", gamma=0.0, noise_eps=0.0)
    train = TrainConfig(
        hidden=64, n_blocks=2, emb_dim=32, n_iters=400, batch_size=1024, lr=3e-3, t_sampler="lognorm",
        emb_max_freq=8.0, ema_decay=0.99, device=device, quadratic_rank=0, weighting="inv_var",
    )  # fmt: skip
    # quadratic_rank 0 and inv_var: the defaults when the numbers above were measured (issue 28 changed them)
    est = ISADRE(ISADREConfig(path=path, train=train, full_ratio=0.5)).fit(X_p, X_q)
    true = pair.log_ratio(X)
    for steps in (1, 4):
        est_lr = est.log_ratio(X, steps=steps)
        assert abs(est_lr.mean() - 2.5) < 0.375  # MI within 15 %
        assert np.corrcoef(est_lr, true)[0, 1] > 0.93
        assert np.sqrt(np.mean((est_lr - true) ** 2)) < 0.5 * true.std()

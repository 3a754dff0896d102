"""`mercato isadre fit|eval`: a fitted run folder reloads with the network it was trained with."""

import os

import numpy as np
import pytest
import torch

from mercato.isadre.cli import load_fitted, main

os.environ.setdefault("MERCATO_NO_PROGRESS", "1")


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA")),
]


@pytest.mark.parametrize("device", DEVICES)
def test_fit_then_eval_reloads_the_quadratic_branch(tmp_path, device):
    """A run fitted on any device reloads on the host (checkpoints hold CPU tensors) and evaluates there."""
    run = tmp_path / "run"
    tiny = ["--train.n_iters", "4", "--train.hidden", "8", "--train.n_blocks", "1", "--train.emb_dim", "8"]
    tiny += ["--train.device", device]
    assert (
        main(
            [
                "fit",
                "--toy",
                "ring",
                "--n",
                "200",
                "--train.quadratic_rank",
                "3",
                *tiny,
                "--output-dir",
                str(run),
            ]
        )
        == 0
    )
    est = load_fitted(run)
    assert est.device_.type == "cpu"
    assert est.network_.quad_proj is not None and est.network_.quad_proj.weight.shape == (3, 2)
    # the stored coefficients were trained away from their zero initialisation, and they are the ones loaded
    assert torch.count_nonzero(est.network_.quad_coef.bias) > 0
    assert main(["eval", "--run-dir", str(run), "--steps", "2"]) == 0
    assert torch.is_grad_enabled()  # eval must not switch autograd off for its caller (it once did, globally)
    out = np.load(run / "log_ratio.npy")
    assert out.shape == (5000,) and np.isfinite(out).all()

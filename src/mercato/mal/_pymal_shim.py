"""Run one of PyMAL's own scripts, unmodified, in this (separate) process on a machine without CUDA.

PyMAL hard-codes ``.to('cuda')``; this shim maps the device ``'cuda'`` to ``'cpu'`` when CUDA is absent,
stubs ``torch.utils.tensorboard.SummaryWriter`` (PyMAL only logs scalars to it) and sets the DataLoader's
``num_workers`` to ``PYMAL_WORKERS`` (default 0). Nothing of PyMAL is copied or edited.
Usage: ``python -m mercato.mal._pymal_shim PYMAL_DIR SCRIPT [args...]`` (run by ``mercato.mal.pymal``).
"""

import os
import runpy
import sys
import time
import types

import torch

if len(sys.argv) < 3:
    raise SystemExit("usage: python -m mercato.mal._pymal_shim PYMAL_DIR SCRIPT [args...]")
pymal, script, *rest = sys.argv[1:]
_to_t, _to_m = torch.Tensor.to, torch.nn.Module.to


def _fix(a: tuple, k: dict) -> tuple[tuple, dict]:
    a = tuple("cpu" if x == "cuda" else x for x in a)
    if k.get("device") == "cuda":
        k["device"] = "cpu"
    return a, k


def t_to(self, *a, **k):  # type: ignore[no-untyped-def]
    a, k = _fix(a, k)
    return _to_t(self, *a, **k)


def m_to(self, *a, **k):  # type: ignore[no-untyped-def]
    a, k = _fix(a, k)
    return _to_m(self, *a, **k)


if not torch.cuda.is_available():
    torch.Tensor.to, torch.nn.Module.to = t_to, m_to  # type: ignore[method-assign]
tb = types.ModuleType("torch.utils.tensorboard")


class SummaryWriter:
    def __init__(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        pass

    def add_scalar(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        pass


tb.SummaryWriter = SummaryWriter  # type: ignore[attr-defined]
sys.modules["torch.utils.tensorboard"] = tb
import torch.utils.data as tud  # noqa: E402

_DL = tud.DataLoader


class DataLoader(_DL):  # type: ignore[type-arg,misc]
    def __init__(self, *a, **k) -> None:  # type: ignore[no-untyped-def]
        k["num_workers"] = int(os.environ.get("PYMAL_WORKERS", "0"))
        super().__init__(*a, **k)


tud.DataLoader = DataLoader  # type: ignore[misc]
torch.set_num_threads(int(os.environ.get("PYMAL_THREADS", "2")))
sys.path.insert(0, pymal)
os.chdir(pymal)
sys.argv = [script, *rest]
t0 = time.time()
runpy.run_path(os.path.join(pymal, script), run_name="__main__")
print(f"SHIM_WALL_S {time.time() - t0:.3f}")

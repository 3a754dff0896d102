import json

import pytest
import torch

from mercato.core.checkpoint import load_checkpoint, save_checkpoint
from mercato.core.results import mean_std, update_markdown_section
from mercato.core.runs import atomic_dir, atomic_path, atomic_write_json, make_run_dir


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    atomic_write_json(target, {"auc": 0.5})
    assert json.loads(target.read_text()) == {"auc": 0.5}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_dir_replaces_the_folder_whole_or_not_at_all(tmp_path):
    target = tmp_path / "serve"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("crash while writing")
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["serve"]  # no temporary folder left behind
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("new")
        assert not (target / "new.txt").exists()  # nothing visible before the block ends
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["serve"]


def test_make_run_dir_is_unique(tmp_path):
    a = make_run_dir("fat", root=tmp_path)
    b = make_run_dir("fat", root=tmp_path)
    assert a != b and a.parent == b.parent == tmp_path / "fat"


def test_checkpoint_round_trip_restores_model_optimizer_and_rng(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "ckpt", model, opt, {"epoch": 3, "best_auc": 0.7})
    expected_draw = torch.rand(2)

    model2 = torch.nn.Linear(3, 2)
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.5)
    ck = load_checkpoint(tmp_path / "ckpt")
    model2.load_state_dict(ck.model_state)
    assert ck.optimizer_state is not None
    opt2.load_state_dict(ck.optimizer_state)
    assert ck.state == {"epoch": 3, "best_auc": 0.7}
    for p, q in zip(model.parameters(), model2.parameters()):
        assert torch.equal(p, q)
    assert opt2.param_groups[0]["lr"] == 0.1
    s1, s2 = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert torch.equal(s1[0]["exp_avg"], s2[0]["exp_avg"])
    assert ck.rng_state is not None
    ck.restore_rng()
    assert torch.equal(torch.rand(2), expected_draw)
    if not torch.cuda.is_initialized():
        assert ck.cuda_rng_states == []  # nothing saved for devices never used


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_checkpoint_restores_the_cuda_rng(tmp_path):
    """Dropout on a GPU draws from the CUDA RNG: without it a resumed GPU run diverges from an uninterrupted one."""
    torch.cuda.manual_seed_all(1)
    torch.rand(3, device="cuda")
    save_checkpoint(tmp_path / "ckpt", torch.nn.Linear(2, 1))
    expected = torch.rand(4, device="cuda")
    torch.rand(5, device="cuda")  # move the state on
    ck = load_checkpoint(tmp_path / "ckpt")
    assert len(ck.cuda_rng_states) == torch.cuda.device_count()
    ck.restore_rng()
    assert torch.equal(torch.rand(4, device="cuda"), expected)


def test_save_checkpoint_replaces_previous_atomically(tmp_path):
    model = torch.nn.Linear(2, 1)
    save_checkpoint(tmp_path / "ckpt", model, state={"epoch": 1})
    save_checkpoint(tmp_path / "ckpt", model, state={"epoch": 2})
    assert load_checkpoint(tmp_path / "ckpt").state["epoch"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    with pytest.raises(FileNotFoundError, match="not a mercato checkpoint"):
        load_checkpoint(tmp_path)


def test_update_markdown_section_replaces_only_its_block(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nprose stays\n")
    update_markdown_section(doc, "fat", "table v1")
    update_markdown_section(doc, "ctr", "ctr table")
    update_markdown_section(doc, "fat", "table v2")
    text = doc.read_text()
    assert "prose stays" in text and "table v2" in text and "ctr table" in text
    assert "table v1" not in text
    assert text.count("<!-- mercato:begin fat -->") == 1


def test_mean_std_format():
    assert mean_std([1.0, 2.0, 3.0], digits=2) == "2.00 ± 1.00"
    assert mean_std([0.5]) == "0.5000"

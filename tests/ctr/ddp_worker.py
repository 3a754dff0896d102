"""Worker for the data-parallel integration test: trains DeepFM on tiny synthetic data and saves the result.

Run as ``python ddp_worker.py OUT_DIR`` (one process) or under ``torchrun --nproc_per_node=2`` (two ranks);
the global batch is the same, so both runs should reach the same weights. Rank 0 writes ``OUT_DIR/result.pt``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from ctr_testdata import make_splits  # noqa: E402

from mercato.ctr import CTRTrainer, DeepFM, DeepFMConfig, FeatureSchema, TrainerConfig  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    splits = make_splits(n_train=250, n_eval=64)  # 250 rows: the last global batch (58) splits 29/29
    schema = FeatureSchema.fit(splits, n_buckets=4, max_tokens=3)
    train, valid = schema.encode(splits.train), schema.encode(splits.valid)
    torch.manual_seed(0)
    model = DeepFM(schema, DeepFMConfig(embed_dim=4, hidden_units=(16, 16)))
    cfg = TrainerConfig(epochs=3, batch_size=64, lr=1e-2, patience=0, seed=5, progress=False, device="cpu")
    trainer = CTRTrainer(model, cfg, train, valid, output_dir=out / "run")
    result = trainer.fit()
    if int(os.environ.get("RANK", "0")) == 0:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        torch.save(
            {
                "state": state,
                "history": result.history,
                "valid": trainer.evaluate(valid),
                "world_size": int(os.environ.get("WORLD_SIZE", "1")),
            },
            out / "result.pt",
        )


if __name__ == "__main__":
    main()

"""Domain-free building blocks: configs, metrics, seeding, progress, checkpoints, run folders, plots."""

from mercato.core.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from mercato.core.config import ConfigError, config_from_dict, config_to_dict, load_config, parse_overrides
from mercato.core.metrics import auc, ece, gauc, logloss, mae, ndcg_at_k, pcoc, recall_at_k, rmse
from mercato.core.progress import progress
from mercato.core.results import markdown_table, mean_std, update_markdown_section
from mercato.core.runs import atomic_write_json, atomic_write_text, make_run_dir, write_config, write_metrics
from mercato.core.seed import seed_everything

__all__ = [
    "Checkpoint",
    "ConfigError",
    "atomic_write_json",
    "atomic_write_text",
    "auc",
    "config_from_dict",
    "config_to_dict",
    "ece",
    "gauc",
    "load_checkpoint",
    "load_config",
    "logloss",
    "mae",
    "make_run_dir",
    "markdown_table",
    "mean_std",
    "ndcg_at_k",
    "parse_overrides",
    "pcoc",
    "progress",
    "recall_at_k",
    "rmse",
    "save_checkpoint",
    "seed_everything",
    "update_markdown_section",
    "write_config",
    "write_metrics",
]

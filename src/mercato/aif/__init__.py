"""AIF: asynchronous pre-ranking (Kou et al., arXiv 2511.12934): split model, serving runtime, nearline store.

``from mercato.aif import AIFModel, ServedAIF, AIFRuntime, EmbeddedStore, RedisStore, NearlineUpdater`` is the
API; see ``docs/aif.md``.
"""

from mercato.aif.approx import (
    bea_combine,
    bea_item_weights,
    bea_user_summaries,
    lsh_combine,
    lsh_expected_pool,
    lsh_pool_bruteforce,
    lsh_user_buckets,
    simhash_codes,
    target_attention,
)
from mercato.aif.data import long_sequence_ctr, long_sequences, movielens_history_splits
from mercato.aif.model import AIFConfig, AIFModel, TwoTowerModel
from mercato.aif.nearline import ItemEvent, NearlineUpdater, QueueEvents, RedisStreamEvents
from mercato.aif.serve import AIFRuntime, FaissRetriever, RankError, RankResult, ServeConfig, create_app
from mercato.aif.served import CTRCatalog, ServedAIF, StateLayout, build_catalog, export_serving, load_serving
from mercato.aif.store import EmbeddedStore, ItemStateStore, RedisStore, StoreUnavailable
from mercato.aif.toy import Catalog, SplitModel, ToyConfig, ToySplitModel, model_version, toy_catalog

__all__ = [
    "AIFConfig",
    "AIFModel",
    "AIFRuntime",
    "CTRCatalog",
    "ServedAIF",
    "StateLayout",
    "TwoTowerModel",
    "build_catalog",
    "export_serving",
    "load_serving",
    "long_sequence_ctr",
    "long_sequences",
    "movielens_history_splits",
    "Catalog",
    "EmbeddedStore",
    "FaissRetriever",
    "ItemEvent",
    "ItemStateStore",
    "NearlineUpdater",
    "QueueEvents",
    "RankError",
    "RankResult",
    "RedisStore",
    "RedisStreamEvents",
    "ServeConfig",
    "SplitModel",
    "StoreUnavailable",
    "ToyConfig",
    "ToySplitModel",
    "bea_combine",
    "bea_item_weights",
    "bea_user_summaries",
    "create_app",
    "lsh_combine",
    "lsh_expected_pool",
    "lsh_pool_bruteforce",
    "lsh_user_buckets",
    "model_version",
    "simhash_codes",
    "target_attention",
    "toy_catalog",
]

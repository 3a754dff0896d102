"""Datasets and simulators used by more than one system; every loader also reads a user's own files."""

from mercato.data.clicklog import load_open_bandit, open_bandit_ctr
from mercato.data.movielens import (
    MovieLens,
    load_movielens,
    load_ratings_file,
    movielens_ctr,
    movielens_sequences,
)
from mercato.data.prices import load_prices, load_prices_file
from mercato.data.splits import CTRSplits, ctr_from_table, per_user_time_split, random_split
from mercato.data.synthetic import FieldInteractionData, field_interaction_data
from mercato.data.tables import DataError, read_table, validate_columns

__all__ = [
    "CTRSplits",
    "DataError",
    "FieldInteractionData",
    "MovieLens",
    "ctr_from_table",
    "field_interaction_data",
    "load_movielens",
    "load_open_bandit",
    "load_prices",
    "load_prices_file",
    "load_ratings_file",
    "movielens_ctr",
    "movielens_sequences",
    "open_bandit_ctr",
    "per_user_time_split",
    "random_split",
    "read_table",
    "validate_columns",
]

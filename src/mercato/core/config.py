"""Strict dataclass configs: YAML files plus ``--key value`` overrides.

Every method in mercato has one ``@dataclass`` config. This module turns a YAML file and command-line
overrides into an instance of it and refuses anything it does not understand:

* an unknown key raises :class:`ConfigError` naming the key, where it came from and the valid keys;
* a value of the wrong type raises :class:`ConfigError` naming the field, the expected type and the value.

Nested dataclasses are supported (``trainer.lr`` on the command line, a mapping in YAML).

Examples:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Cfg:
    ...     lr: float = 1e-3
    ...     layers: int = 2
    >>> load_config(Cfg, overrides=["--lr", "0.01"])
    Cfg(lr=0.01, layers=2)
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

T = TypeVar("T")

__all__ = [
    "ConfigError",
    "merge_config_classes",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "parse_overrides",
]


class ConfigError(ValueError):
    """A configuration file or override that does not fit the config dataclass."""


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Return a plain, YAML/JSON-serialisable dict of a (nested) config dataclass."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a dataclass instance, got {type(cfg).__name__}")
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out[f.name] = config_to_dict(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp`` and convert lossless cases (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
        return value
    if origin in (list, tuple, Sequence):
        if isinstance(value, str) and "," in value:
            value = [yaml.safe_load(v) for v in value.split(",")]
        if not isinstance(value, (list, tuple)):
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                value = [value]  # `--hidden-units 8` means [8]
            else:
                raise ConfigError(f"{where}: expected a list ({_type_name(tp)}), got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} items ({_type_name(tp)}), got {value!r}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(args, value)))
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if dataclasses.is_dataclass(value) and isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return config_from_dict(tp, value, source=where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected bool (true/false), got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected int, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected float, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected str, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value


def _unknown_key_message(key: str, valid: Sequence[str], source: str) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{source}: unknown config key '{key}'{hint}; valid keys: {', '.join(sorted(valid))}"


def config_from_dict(cls: type[T], data: Mapping[str, Any], source: str = "config") -> T:
    """Build ``cls`` from a mapping, rejecting unknown keys and wrongly typed values.

    Args:
        cls: the config dataclass.
        data: field name -> value; nested dataclass fields take a mapping.
        source: where the data came from (a file name), used in error messages.
    """
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"{cls!r} is not a dataclass type")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping of config keys, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in fields:
            raise ConfigError(_unknown_key_message(str(key), list(fields), source))
        kwargs[key] = _coerce(value, hints[key], f"{source}: field '{key}'")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{source}: {err}") from err


def _scalar(raw: str) -> Any:
    """Parse a command-line value as YAML, also reading ``1e-3`` as a float (YAML 1.1 does not)."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value) if any(c in value for c in ".eE") else value
        except ValueError:
            return value
    return raw if value is None else value


def parse_overrides(args: Sequence[str]) -> dict[str, Any]:
    """Parse ``["--lr", "0.1", "--model.depth=3", "--flag"]`` into a nested dict.

    Values are parsed as YAML scalars (``0.1`` -> float, ``true`` -> bool, ``[1,2]`` -> list);
    dashes in keys become underscores; a bare ``--flag`` means ``true``; ``--no-flag`` means ``false``.
    """
    out: dict[str, Any] = {}
    i = 0
    args = list(args)
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"command line: expected '--key value', got {token!r}")
        key = token[2:]
        if "=" in key:
            key, raw = key.split("=", 1)
            value: Any = _scalar(raw) if raw else ""
            i += 1
        elif i + 1 < len(args) and not args[i + 1].startswith("--"):
            value = _scalar(args[i + 1])
            i += 2
        elif key.startswith("no-"):
            key, value = key[3:], False
            i += 1
        else:
            value = True
            i += 1
        parts = key.replace("-", "_").split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"command line: '{key}' mixes a value and a nested key")
        node[parts[-1]] = value
    return out


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_config(
    cls: type[T],
    path: str | Path | None = None,
    overrides: Sequence[str] | Mapping[str, Any] | None = None,
) -> T:
    """Load ``cls`` from an optional YAML file, then apply command-line or mapping overrides.

    Raises:
        ConfigError: the file is missing or not a mapping, a key is unknown, or a value has the wrong type.
    """
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"{p}: config file not found")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: not valid YAML: {err}") from err
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"{p}: expected a mapping of config keys at the top level")
        data = dict(loaded)
    if overrides:
        extra = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
        if not isinstance(overrides, Mapping):
            source = f"{source} + command line" if path is not None else "command line"
        data = _deep_merge(data, extra)
    return config_from_dict(cls, data, source=source)


def merge_config_classes(name: str, *classes: type) -> type:
    """One flat dataclass with the fields (types, defaults) of every class in ``classes``.

    Used by CLIs whose ``--key value`` overrides cover a model config and a trainer config at once; the
    field names of the classes must not overlap.
    """
    specs: list[tuple[str, Any, Any]] = []
    seen: set[str] = set()
    for cls in classes:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name in seen:
                raise TypeError(
                    f"field '{f.name}' appears in more than one of {[c.__name__ for c in classes]}"
                )
            seen.add(f.name)
            default = (
                dataclasses.field(default_factory=f.default_factory)
                if f.default_factory is not dataclasses.MISSING
                else dataclasses.field(default=f.default)
            )
            specs.append((f.name, hints[f.name], default))
    return dataclasses.make_dataclass(name, specs)

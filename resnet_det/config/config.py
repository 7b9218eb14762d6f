"""The config object: fvcore's CfgNode with strict, explained errors.

- ``_BASE_`` inheritance (paths relative to the including file), YAML read with
  ``yaml.safe_load`` only: a config file can never run python code (fvcore's unsafe mode
  is never enabled).
- Unknown keys name the key, the closest known key and where they came from (file or
  command line); wrong types name the key, the expected and the given type.
"""

import copy
import difflib
import logging
import os
from typing import Any, Dict, List, Sequence, Tuple

import yaml
from fvcore.common.config import BASE_KEY
from fvcore.common.config import CfgNode as _FvCfgNode

from ..utils.errors import ConfigError, ConfigKeyError, ConfigTypeError, MissingFileError
from ..utils.file_io import atomic_write_text
from .defaults import DEFAULTS

__all__ = ["CfgNode", "ConfigError", "ConfigKeyError", "ConfigTypeError", "get_cfg", "save_config"]

logger = logging.getLogger(__name__)

COMMAND_LINE = "the command line"


def _type_name(value: Any) -> str:
    return type(value).__name__


def _coerce(new: Any, old: Any, full_key: str, source: str) -> Any:
    """Return ``new`` converted to the type of ``old``, or raise naming the key.

    Allowed conversions (lossless only): list <-> tuple, int -> float (not bool: True is no
    learning rate), anything <-> None. Elements of lists are checked against the default's
    elements when the default is non-empty and homogeneous.
    """
    if old is None or new is None:
        return new
    if isinstance(old, bool) or isinstance(new, bool):
        if type(new) is type(old):
            return new
    elif isinstance(old, float) and isinstance(new, int):
        return float(new)
    elif isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)):
        new = type(old)(new)
        if old and new:
            kinds = {type(x) for x in old}
            if len(kinds) == 1 and not isinstance(old[0], (list, tuple)):
                new = type(old)(
                    _coerce(x, old[0], f"{full_key}[{i}]", source) for i, x in enumerate(new)
                )
        return new
    elif type(new) is type(old):
        return new
    raise ConfigTypeError(
        f"Config key {full_key} (from {source}): expected {_type_name(old)} (current value "
        f"{old!r}), got {_type_name(new)} {new!r}"
    )


def _check_acyclic(data: Any, filename: str, _parents: Tuple[int, ...] = ()) -> None:
    """Refuse a YAML alias to an enclosing node (``a: &x {b: *x}``): such a value contains
    itself, and merging or dumping it would never end."""
    if isinstance(data, (dict, list)):
        if id(data) in _parents:
            raise ConfigError(
                f"Config file {filename}: a value contains itself (a YAML alias "
                f"to an enclosing anchor); write the value out instead"
            )
        for v in data.values() if isinstance(data, dict) else data:
            _check_acyclic(v, filename, _parents + (id(data),))


class CfgNode(_FvCfgNode):
    """fvcore's CfgNode with file-and-key-naming errors; see the module docstring."""

    # ------------------------------------------------------------------ key listing
    def all_keys(self, prefix: str = "") -> List[str]:
        """Every leaf key as a dotted path, e.g. "MODEL.RESNETS.DEPTH"."""
        out = []
        for k, v in self.items():
            full = prefix + k
            if isinstance(v, _FvCfgNode):
                out.extend(CfgNode.all_keys(v, full + "."))
            else:
                out.append(full)
        return out

    # ------------------------------------------------------------------ merging
    def _merge_dict(self, data: Dict[str, Any], source: str) -> None:
        """Merge a plain nested dict into this (root) node, all or nothing."""
        staged = self.clone()
        known = self.all_keys()

        def merge(node: _FvCfgNode, d: Dict[str, Any], prefix: str) -> None:
            for k, v in d.items():
                full = prefix + str(k)
                if k not in node:
                    # name the leaf the user wrote (MODEL.RESNET.DEPTH), not just the section
                    while isinstance(v, dict) and v:
                        k2, v = next(iter(v.items()))
                        full = f"{full}.{k2}"
                    close = difflib.get_close_matches(full, known, n=1, cutoff=0.0)
                    hint = f"; did you mean {close[0]}?" if close else ""
                    raise ConfigKeyError(f"Unknown config key {full} in {source}{hint}")
                old = node[k]
                if isinstance(old, _FvCfgNode):
                    if not isinstance(v, dict):
                        raise ConfigTypeError(
                            f"Config key {full} (from {source}) is a section; expected a "
                            f"mapping of its keys, got {_type_name(v)} {v!r}"
                        )
                    merge(old, v, full + ".")
                else:
                    if isinstance(v, dict):
                        raise ConfigTypeError(
                            f"Config key {full} (from {source}): expected "
                            f"{_type_name(old)} (current value {old!r}), got a mapping"
                        )
                    node[k] = _coerce(v, old, full, source)

        if staged.is_frozen():
            raise ConfigError(f"Cannot merge {source} into a frozen config; call defrost()")
        merge(staged, data, "")
        for k in list(self.keys()):
            dict.__setitem__(self, k, staged[k])

    @classmethod
    def _read_yaml(cls, filename: str) -> Dict[str, Any]:
        try:
            with cls._open_cfg(filename) as f:
                data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            # safe_load refuses !!python tags: configs never run code.
            raise ConfigError(f"Cannot parse config file {filename}: {e}") from e
        except (UnicodeDecodeError, RecursionError, OSError) as e:
            raise ConfigError(f"Cannot read config file {filename}: {type(e).__name__}: {e}") from e
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ConfigError(f"Config file {filename} must hold a mapping, got {_type_name(data)}")
        _check_acyclic(data, filename)
        return data

    def merge_from_file(self, cfg_filename: str, allow_unsafe: bool = False) -> None:
        """Merge a YAML file, its ``_BASE_`` files first (paths relative to the file).

        Args:
            cfg_filename: the YAML file.
            allow_unsafe: must stay False; present for fvcore signature compatibility.
        """
        if allow_unsafe:
            raise ConfigError(
                "allow_unsafe=True is not supported: config files may not "
                f"run python code ({cfg_filename})"
            )
        self._merge_file(cfg_filename, chain=())

    def _merge_file(self, filename: str, chain: Tuple[str, ...]) -> None:
        real = os.path.realpath(filename) if "://" not in filename else filename
        if real in chain:
            raise ConfigError(f"_BASE_ cycle: {' -> '.join(chain + (real,))}")
        if "://" not in filename and not os.path.isfile(filename):
            where = f" (a _BASE_ of {chain[-1]})" if chain else ""
            raise MissingFileError(f"Config file {filename}{where} does not exist")
        data = self._read_yaml(filename)
        bases = data.pop(BASE_KEY, None)
        if bases is not None:
            if not isinstance(bases, (str, list)):
                raise ConfigError(
                    f"{BASE_KEY} in {filename} must be a path or a list of paths, got {bases!r}"
                )
            for base in [bases] if isinstance(bases, str) else bases:
                if not isinstance(base, str):
                    raise ConfigError(
                        f"{BASE_KEY} in {filename} must be a path or a list of paths, got {base!r}"
                    )
                base = os.path.expanduser(base)
                if not (os.path.isabs(base) or "://" in base):
                    base = os.path.join(os.path.dirname(filename), base)
                self._merge_file(base, chain + (real,))
        self._merge_dict(data, f"file {filename}")

    def merge_from_list(self, cfg_list: Sequence[str]) -> None:
        """Merge ``["KEY", "VALUE", ...]`` (command-line overrides); values are python literals
        (parsed with ast.literal_eval, else kept as strings)."""
        cfg_list = list(cfg_list)
        if len(cfg_list) % 2 != 0:
            raise ConfigError(
                f"Overrides from {COMMAND_LINE} must be KEY VALUE pairs, got an "
                f"odd number of items: {cfg_list}"
            )
        for key, raw in zip(cfg_list[0::2], cfg_list[1::2]):
            if key == BASE_KEY:
                raise ConfigError(f"{BASE_KEY} can only be used in files, not on {COMMAND_LINE}")
            value = _FvCfgNode._decode_cfg_value(raw)
            nested: Dict[str, Any] = {}
            d = nested
            parts = key.split(".")
            for p in parts[:-1]:
                d = d.setdefault(p, {})
            d[parts[-1]] = value
            # a dict value would be read as a section; override leaves only
            if isinstance(value, dict):
                raise ConfigTypeError(
                    f"Config key {key} (from {COMMAND_LINE}): mappings are not accepted as values"
                )
            self._merge_dict(nested, COMMAND_LINE)

    def merge_from_other_cfg(self, cfg_other: _FvCfgNode) -> None:
        """Merge another CfgNode with the same checks."""
        if BASE_KEY in cfg_other:
            raise ConfigError(f"{BASE_KEY} can only be used in files")
        self._merge_dict(_to_dict(cfg_other), "another config object")

    # ------------------------------------------------------------------ output
    def dump(self, **kwargs) -> str:
        """YAML text of the full config (safe_dump: plain types only)."""
        kwargs.setdefault("default_flow_style", None)
        kwargs.setdefault("sort_keys", False)
        return yaml.safe_dump(_to_dict(self), **kwargs)


def _to_dict(node: Any) -> Any:
    if isinstance(node, _FvCfgNode):
        return {k: _to_dict(v) for k, v in node.items()}
    if isinstance(node, tuple):
        return [_to_dict(v) for v in node]
    if isinstance(node, list):
        return [_to_dict(v) for v in node]
    return node


def get_cfg() -> CfgNode:
    """A fresh copy of the defaults (resnet_det/config/defaults.py) as our :class:`CfgNode`."""
    # yacs turns every nested dict (fvcore node) into our class; tuples stay tuples.
    return CfgNode(copy.deepcopy(DEFAULTS))


def save_config(cfg: _FvCfgNode, path: str) -> None:
    """Write ``cfg.dump()`` to ``path`` atomically (temp file + os.replace)."""
    text = cfg.dump() if isinstance(cfg, CfgNode) else CfgNode(_to_dict(cfg)).dump()
    atomic_write_text(path, text)
    logger.info("Full config saved to %s", path)

"""Configuration: ``get_cfg()`` (defaults in defaults.py, detectron2 key names), YAML files with
``_BASE_`` inheritance, ``KEY VALUE`` overrides, and :func:`validate_cfg`."""

from .config import CfgNode, get_cfg, save_config
from .errors import ConfigError, ConfigKeyError, ConfigTypeError, reject_value, require_one_of
from .validation import check_batch_divisible, validate_cfg

__all__ = [
    "CfgNode",
    "ConfigError",
    "ConfigKeyError",
    "ConfigTypeError",
    "get_cfg",
    "save_config",
    "validate_cfg",
    "check_batch_divisible",
    "reject_value",
    "require_one_of",
]

"""Configuration: ``get_cfg()`` (defaults in defaults.py, detectron2 key names), YAML files with
``_BASE_`` inheritance, ``KEY VALUE`` overrides, and :func:`validate_cfg` (the keys of the
solver, data loader and engine; the model's keys are read and checked by
``resnet_det.modeling.describe_model``)."""

from ..utils.errors import (
    ConfigError,
    ConfigKeyError,
    ConfigTypeError,
    reject_value,
    require_one_of,
)
from .config import CfgNode, get_cfg, save_config
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

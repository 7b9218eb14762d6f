"""Weights: reading (restricted unpickling for .pkl), layout detection and conversion,
``load_weights``."""
from .layouts import convert_state_dict, detect_layout, to_resnet_det, unwrap_checkpoint
from .safe_pickle import safe_load
from .weights import (LoadResult, WeightsMismatchError, convert_weights_file, load_weights,
                      read_checkpoint, save_weights)

__all__ = ["convert_state_dict", "detect_layout", "to_resnet_det", "unwrap_checkpoint",
           "safe_load", "LoadResult", "WeightsMismatchError", "convert_weights_file",
           "load_weights", "read_checkpoint", "save_weights"]

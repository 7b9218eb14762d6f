"""Weights and checkpoints, in one package: reading (restricted unpickling for .pkl), layout
detection and conversion, ``load_weights`` for classifiers and backbones,
``load_pretrained_weights`` for the built-in detector's MODEL.WEIGHTS, and the training
``Checkpointer`` (atomic save, exact resume). The detectron2 plugin's checkpointer
(resnet_det.d2.checkpoint) reads and writes through this package too."""
from .checkpointer import LAST_CHECKPOINT, Checkpointer, tag_last_checkpoint, unwrap_model, write_checkpoint
from .detector import load_pretrained_weights
from .layouts import convert_state_dict, detect_layout, to_resnet_det, unwrap_checkpoint
from .safe_pickle import WeightsFileError, safe_load
from .weights import (LoadResult, WeightsMismatchError, convert_weights_file, load_weights,
                      read_checkpoint, save_weights)

__all__ = ["convert_state_dict", "detect_layout", "to_resnet_det", "unwrap_checkpoint",
           "safe_load", "WeightsFileError", "LoadResult", "WeightsMismatchError",
           "convert_weights_file", "load_weights", "read_checkpoint", "save_weights",
           "load_pretrained_weights", "Checkpointer", "unwrap_model", "write_checkpoint",
           "tag_last_checkpoint", "LAST_CHECKPOINT"]

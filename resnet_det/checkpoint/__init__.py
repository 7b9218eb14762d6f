"""Weights and checkpoints, in one package: reading (restricted unpickling for .pkl), layout
detection and conversion, ``load_weights`` for classifiers and backbones,
``load_pretrained_weights`` for the built-in detector's MODEL.WEIGHTS, and the training
``Checkpointer`` (atomic save, exact resume). The detectron2 plugin's checkpointer
(resnet_det.d2.checkpoint) reads and writes through this package too."""

from .checkpointer import (
    LAST_CHECKPOINT,
    Checkpointer,
    CheckpointWriteError,
    DamagedCheckpointError,
    checkpoint_files,
    tag_last_checkpoint,
    unwrap_model,
    write_checkpoint,
)
from .contract import (
    CAFFE_VGG16_CONTRACT,
    INPUT_CONTRACT_KEY,
    MSRA_CONTRACT,
    TORCHVISION_CONTRACT,
    InputContract,
    contract_of,
)
from .detector import (
    check_weights_contract,
    detector_input_contract,
    load_pretrained_weights,
    read_weights_contract,
    resolve_weights_contract,
)
from .layouts import convert_state_dict, detect_layout, to_resnet_det, unwrap_checkpoint
from .safe_pickle import WeightsFileError, safe_load
from .weights import (
    LoadResult,
    WeightsMismatchError,
    convert_weights_file,
    load_weights,
    read_checkpoint,
    save_weights,
)

__all__ = [
    "convert_state_dict",
    "detect_layout",
    "to_resnet_det",
    "unwrap_checkpoint",
    "safe_load",
    "WeightsFileError",
    "LoadResult",
    "WeightsMismatchError",
    "convert_weights_file",
    "load_weights",
    "read_checkpoint",
    "save_weights",
    "load_pretrained_weights",
    "check_weights_contract",
    "resolve_weights_contract",
    "read_weights_contract",
    "detector_input_contract",
    "InputContract",
    "contract_of",
    "INPUT_CONTRACT_KEY",
    "MSRA_CONTRACT",
    "CAFFE_VGG16_CONTRACT",
    "TORCHVISION_CONTRACT",
    "Checkpointer",
    "unwrap_model",
    "write_checkpoint",
    "tag_last_checkpoint",
    "LAST_CHECKPOINT",
    "CheckpointWriteError",
    "DamagedCheckpointError",
    "checkpoint_files",
]

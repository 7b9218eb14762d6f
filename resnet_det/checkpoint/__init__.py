"""Weights and checkpoints, in one package:

- layouts.py: the key maps between weight layouts (torchvision, detectron2, MSRA/Caffe2, ours)
  and of whole torchvision / detectron2 detectors;
- weights.py: reading weights files safely, their input contract, ``load_weights`` for
  classifiers and backbones, writing and converting files;
- detector.py: MODEL.WEIGHTS for the built-in detector (``load_pretrained_weights``) and the
  config side of the input contract;
- checkpointer.py: the training ``Checkpointer`` (atomic save, exact resume), whose writers the
  detectron2 plugin's checkpointer (resnet_det.d2.checkpoint) uses too.
"""

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
from .detector import (
    adopt_weights_contract,
    detector_input_contract,
    load_pretrained_weights,
    resolve_weights_contract,
)
from .layouts import convert_state_dict, detect_layout, unwrap_checkpoint
from .weights import (
    INPUT_CONTRACT_KEY,
    InputContract,
    LoadResult,
    WeightsFileError,
    WeightsMismatchError,
    contract_of,
    convert_weights_file,
    load_weights,
    read_checkpoint,
)

__all__ = [
    "load_weights",
    "LoadResult",
    "WeightsMismatchError",
    "WeightsFileError",
    "read_checkpoint",
    "convert_weights_file",
    "convert_state_dict",
    "detect_layout",
    "unwrap_checkpoint",
    "InputContract",
    "INPUT_CONTRACT_KEY",
    "contract_of",
    "load_pretrained_weights",
    "detector_input_contract",
    "adopt_weights_contract",
    "resolve_weights_contract",
    "Checkpointer",
    "unwrap_model",
    "write_checkpoint",
    "tag_last_checkpoint",
    "LAST_CHECKPOINT",
    "CheckpointWriteError",
    "DamagedCheckpointError",
    "checkpoint_files",
]

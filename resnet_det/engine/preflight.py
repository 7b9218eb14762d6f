"""Fail fast: what can be checked before the first iteration is checked then.

A detection run costs GPU-days; an error that only shows at the final evaluation (an 80-class
head on 3-class data: "label 26 outside [0, 3)"), a missing weights file or a full disk must
stop the run within seconds of start-up instead. The trainers call these checks before they
build the model or read any image (DefaultTrainer.preflight, and tools' --eval-only path);
each error names the config key, the file and the fix, with the project's error types.

None of these reads an image or a whole annotation file: datasets are checked through their
registration and metadata (class names, annotation file, image folder), weights by opening
the file, the output folder by writing a temporary file into it.
"""

import logging
import os
import shutil
import tempfile
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..checkpoint import LAST_CHECKPOINT
from ..data import DatasetCatalog, MetadataCatalog
from ..data.catalog import common_thing_classes
from ..utils.errors import ConfigError, MissingFileError, UserKeyError, WeightsError

__all__ = [
    "check_datasets_registered",
    "check_dataset_files",
    "check_dataset_class_counts",
    "may_resume",
    "check_weights_file",
    "check_output_dir",
    "estimate_checkpoint_bytes",
    "warn_frozen_from_scratch",
]

logger = logging.getLogger(__name__)

_MB = 1024 * 1024


def _dataset_files(name: str) -> List[Tuple[str, str, str]]:
    """(label, path, "file" or "dir") of what a dataset's metadata names (a path given as a
    function is resolved now: the demo sets are generated on first use)."""
    meta = MetadataCatalog.get(name)
    files = []
    for attr, kind in (("json_file", "file"), ("image_root", "dir"), ("dirname", "dir")):
        if attr in meta:
            path = getattr(meta, attr)
            if isinstance(path, str) and path:
                files.append((attr, path, kind))
    split = meta.get("split")
    dirname = meta.get("dirname")
    if isinstance(dirname, str) and isinstance(split, str) and meta.get("evaluator_type") == "voc":
        files.append(
            ("split list", os.path.join(dirname, "ImageSets", "Main", f"{split}.txt"), "file")
        )
        files.append(("annotation folder", os.path.join(dirname, "Annotations"), "dir"))
    return files


def check_datasets_registered(key: str, names: Sequence[str]) -> None:
    """Every name in ``names`` (the value of config ``key``) is a registered dataset.

    Raises:
        UserKeyError: a name is not registered (close names listed).
    """
    for name in names:
        if name not in DatasetCatalog:
            try:
                DatasetCatalog.get(name)  # raises UserKeyError naming the close names
            except UserKeyError as e:
                raise UserKeyError(
                    f"config {key}: {e} (register it before training: docs/datasets.md)"
                ) from None


def check_dataset_files(key: str, names: Sequence[str]) -> None:
    """The files the metadata of each dataset in ``names`` names exist: a COCO set's
    annotation json and image folder, a VOC set's folder, split list and Annotations/.
    Images are not opened (the loaders apply DATALOADER.ON_BAD_IMAGE to them).

    Raises:
        MissingFileError: a dataset's annotation file or folder is missing.
    """
    for name in names:
        for label, path, kind in _dataset_files(name):
            ok = os.path.isfile(path) if kind == "file" else os.path.isdir(path)
            if not ok:
                raise MissingFileError(
                    f"config {key}: dataset {name!r} needs its {label} {path}, which "
                    f"{'does not exist' if not os.path.exists(path) else 'is not a ' + kind}. "
                    "Put the dataset there (layouts in docs/datasets.md), point "
                    "RESNET_DET_DATASETS at the folder that holds it, or register the dataset "
                    "with its actual path"
                )


def _class_count(name: str) -> Optional[int]:
    meta = MetadataCatalog.get(name)
    classes = meta.get("thing_classes")
    if classes is not None:
        return len(classes)
    n = meta.get("num_classes")
    return int(n) if n is not None else None


def check_dataset_class_counts(
    key: str, num_classes: int, train: Sequence[str], test: Sequence[str]
) -> None:
    """The head's class count (config ``key`` = ``num_classes``) equals the class count of
    every training and test set whose metadata states one, and train and test sets that
    name their classes name the same ones in the same order.

    Raises:
        ConfigError: a count differs (names the key, the datasets and the value to set).
        DataError: two sets name different classes.
    """
    names = list(train) + [n for n in test if n not in train]
    common_thing_classes(names)  # same names, same order, or DataError naming both sets
    for name in names:
        count = _class_count(name)
        if count is not None and count != num_classes:
            role = "training" if name in train else "test"
            classes = MetadataCatalog.get(name).get("thing_classes")
            shown = (
                f" ({', '.join(map(str, classes[:10]))}{', ...' if len(classes) > 10 else ''})"
                if classes
                else ""
            )
            raise ConfigError(
                f"config {key}={num_classes}: the {role} set {name!r} has {count} classes{shown}; "
                f"the head would predict labels the evaluation cannot map (or never learn some). "
                f"Set {key} {count}, or use datasets with {num_classes} classes"
            )


def may_resume(output_dir: str) -> bool:
    """OUTPUT_DIR has a last_checkpoint, which --resume would load instead of MODEL.WEIGHTS:
    the weights are then checked only if they are used (resume_or_load)."""
    return bool(output_dir) and os.path.isfile(os.path.join(output_dir, LAST_CHECKPOINT))


def check_weights_file(path: str, key: str = "MODEL.WEIGHTS") -> None:
    """``path`` (config ``key``; "" = none) is an existing, readable file (its first bytes
    are read, not the whole file; the layout is checked when the weights are loaded, before
    the first iteration).

    Raises:
        MissingFileError: no such file.
        WeightsError: a folder, an empty or an unreadable file.
    """
    if not path:
        return
    if not os.path.exists(path):
        raise MissingFileError(
            f"config {key}={path!r}: no such file (working directory {os.getcwd()}). Fix the "
            f"path, get the weights (README.md, 'The detection configs': MSRA's R-50.pkl / "
            f'R-101.pkl, torchvision\'s files, or your own pretraining run), or set {key} "" '
            "to train from scratch"
        )
    if not os.path.isfile(path):
        raise WeightsError(
            f"config {key}={path!r} is a folder, not a weights file; name the "
            ".pkl / .pth file in it"
        )
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise WeightsError(
            f"config {key}={path!r} cannot be read ({e.strerror}); fix its "
            "permissions or copy it somewhere readable"
        ) from None
    if not head:
        raise WeightsError(
            f"config {key}={path!r} is an empty file (an interrupted download?); download it again"
        )


def estimate_checkpoint_bytes(
    model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None
) -> int:
    """About the size of one training checkpoint: the model's state (parameters and buffers)
    plus the optimizer's per-parameter state (1 tensor per trainable parameter for SGD with
    momentum, 2 for Adam-like optimizers) plus 1 MB for the rest."""
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    slots = 0
    if optimizer is not None:
        if isinstance(optimizer, torch.optim.SGD):
            slots = int(any(g.get("momentum", 0) for g in optimizer.param_groups))
        else:
            slots = 2  # Adam, AdamW, ...: two moments; a safe guess for others
    return model_bytes + slots * trainable + _MB


def check_output_dir(
    output_dir: str, *, needed_bytes: int = 0, num_checkpoints: int = 1, key: str = "OUTPUT_DIR"
) -> None:
    """``output_dir`` can be created and written, and its file system has room for one
    checkpoint of ``needed_bytes`` (a checkpoint is written next to the previous one before
    it replaces it). Warns when all ``num_checkpoints`` the run will keep do not fit.

    Raises:
        ConfigError: not creatable or writable, or not enough free space (names both sizes).
    """
    if not output_dir:
        return
    try:
        os.makedirs(output_dir, exist_ok=True)
        # An anonymous file (gone when closed): a probe, not a write that must land atomically.
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as e:
        raise ConfigError(
            f"config {key}={output_dir!r}: cannot write there ({e.strerror or e}); "
            f"set {key} to a writable folder"
        ) from None
    if needed_bytes <= 0:
        return
    free = shutil.disk_usage(output_dir).free
    if free < needed_bytes:
        raise ConfigError(
            f"config {key}={output_dir!r}: {free / _MB:.0f} MB free, one checkpoint needs about "
            f"{needed_bytes / _MB:.0f} MB (model + optimizer state). Free some space or set {key} "
            "to a folder on a larger disk"
        )
    if num_checkpoints > 1 and free < needed_bytes * num_checkpoints:
        logger.warning(
            "%s=%s has %.0f MB free; the run will keep %d checkpoints of about %.0f MB each. "
            "Set SOLVER.CHECKPOINT_KEEP_LAST to keep only the newest few, or free space",
            key,
            output_dir,
            free / _MB,
            num_checkpoints,
            needed_bytes / _MB,
        )


def warn_frozen_from_scratch(
    weights: str,
    norms: Dict[str, str],
    freeze_at: Optional[int] = None,
    freeze_key: str = "MODEL.BACKBONE.FREEZE_AT",
) -> List[str]:
    """Warn (and return the warnings) when a run without pretrained weights (``weights`` "")
    freezes what only pretrained weights could fill: a FrozenBN norm (``norms``: key ->
    value) keeps the statistics and affine of initialisation, so nothing normalises and
    training diverges (ResNet-101 with the paper's FrozenBN reaches NaN at iteration 1);
    ``freeze_at`` > 0 keeps the first stages at their random initialisation."""
    if weights:
        return []
    out = []
    for key, value in norms.items():
        if value == "FrozenBN":
            out.append(
                f"MODEL.WEIGHTS is empty (training from scratch) but {key} is 'FrozenBN': frozen "
                "BatchNorm keeps its initial statistics (there are no pretrained ones to freeze), "
                f"so the network is not normalised and training usually diverges. Set {key} "
                "'BN' (or 'GN', 'SyncBN'), or set MODEL.WEIGHTS to pretrained weights"
            )
    if freeze_at:
        out.append(
            f"MODEL.WEIGHTS is empty (training from scratch) but {freeze_key}={freeze_at} "
            "freezes the first stages at their random initialisation. Set "
            f"{freeze_key} 0, or set MODEL.WEIGHTS to pretrained weights"
        )
    for text in out:
        logger.warning(text)
    return out

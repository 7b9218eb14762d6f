"""Checkpointer: atomic save of everything a run needs to resume EXACTLY, and loading.

A checkpoint file (model_NNNNNNN.pth, model_final.pth) is a dict of plain types and tensors:
    {"model": state_dict (unwrapped from DDP), "optimizer": ..., "scheduler": ...,
     <other checkpointables>: ..., "iteration": int, "rng_states": [per-rank RNG states]}
so it loads with torch.load(weights_only=True) (no code runs when reading it).
``last_checkpoint`` in the same folder holds the file name of the newest one; both are written
by :func:`write_checkpoint`, which the detectron2 plugin's checkpointer uses too.
"""
import logging
import os
from typing import Any, Callable, Dict, Mapping, Optional

import torch
from torch import nn

from ..utils import dist as comm
from ..utils.errors import MissingFileError, WeightsError
from ..utils.file_io import atomic_torch_save, atomic_write_text
from ..utils.seeding import get_rng_states, set_rng_states
from .weights import WeightsMismatchError, load_weights, read_checkpoint

__all__ = ["Checkpointer", "unwrap_model", "write_checkpoint", "tag_last_checkpoint", "LAST_CHECKPOINT"]

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last_checkpoint"


def tag_last_checkpoint(save_dir: str, basename: str) -> None:
    """Point ``save_dir/last_checkpoint`` at ``basename`` (atomically)."""
    atomic_write_text(os.path.join(save_dir, LAST_CHECKPOINT), basename)


def write_checkpoint(data: Mapping[str, Any], save_dir: str, name: str) -> str:
    """Write ``save_dir/name.pth`` atomically, then point last_checkpoint at it (in that order:
    last_checkpoint never names a partial file). Returns the path."""
    basename = f"{name}.pth"
    path = os.path.join(save_dir, basename)
    os.makedirs(save_dir, exist_ok=True)
    atomic_torch_save(data, path)
    tag_last_checkpoint(save_dir, basename)
    return path


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DistributedDataParallel / DataParallel wrappers."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def _default_weights_loader(model: nn.Module, path: str):
    return load_weights(model, path, strict=True)


class Checkpointer:
    """Saves and restores model, optimizer, scheduler, other state and RNG streams."""

    def __init__(self, model: nn.Module, save_dir: str = "", *,
                 optimizer: Optional[torch.optim.Optimizer] = None, scheduler: Any = None,
                 save_to_disk: Optional[bool] = None,
                 weights_loader: Optional[Callable[[nn.Module, str], Any]] = None,
                 **checkpointables: Any) -> None:
        """
        Args:
            model: the model (DDP wrappers are removed for saving/loading).
            save_dir: folder for checkpoints and last_checkpoint.
            optimizer: saved under "optimizer".
            scheduler: saved under "scheduler".
            save_to_disk: write files (default: only the main process does).
            weights_loader: ``f(model, path)`` used by :meth:`resume_or_load` for initial
                weights (not a resume); default ``resnet_det.load_weights(model, path,
                strict=True)``. A detector passes one that loads into its backbone.
            checkpointables: more objects with state_dict/load_state_dict (e.g. a GradScaler).
        """
        self.model = model
        self.save_dir = save_dir
        self.checkpointables: Dict[str, Any] = {}
        if optimizer is not None:
            self.checkpointables["optimizer"] = optimizer
        if scheduler is not None:
            self.checkpointables["scheduler"] = scheduler
        for name, obj in checkpointables.items():
            if name in ("model", "iteration", "rng_states", "optimizer", "scheduler"):
                raise ValueError(f"Checkpointer: checkpointable name {name!r} is reserved")
            if obj is None:
                continue
            if not (hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict")):
                raise TypeError(f"Checkpointer: checkpointable {name!r} "
                                f"({type(obj).__name__}) has no state_dict/load_state_dict")
            self.checkpointables[name] = obj
        self.save_to_disk = comm.is_main_process() if save_to_disk is None else save_to_disk
        self.weights_loader = weights_loader or _default_weights_loader
        # Plain values written at the top level of every checkpoint, e.g. the weights' input
        # contract under "__input_contract__" (resnet_det.checkpoint.contract).
        self.metadata: Dict[str, Any] = {}

    # ------------------------------------------------------------------ saving
    def save(self, name: str, **extra: Any) -> Optional[str]:
        """Write ``save_dir/name.pth`` atomically and point last_checkpoint at it.

        A collective call when distributed (every rank's RNG state is gathered), so call it
        on all ranks. ``extra`` (e.g. iteration=...) is stored alongside. Returns the path
        (on the process that writes).
        """
        rng = comm.all_gather(get_rng_states())
        if not self.save_to_disk:
            return None
        if not self.save_dir:
            raise ValueError("Checkpointer.save: save_dir is empty")
        data: Dict[str, Any] = {"model": unwrap_model(self.model).state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data["rng_states"] = rng
        data.update(self.metadata)
        data.update(extra)
        path = write_checkpoint(data, self.save_dir, name)
        logger.info("Saved checkpoint to %s", path)
        return path

    # ------------------------------------------------------------------ finding
    def has_checkpoint(self) -> bool:
        return bool(self.save_dir) and os.path.isfile(os.path.join(self.save_dir, LAST_CHECKPOINT))

    def get_checkpoint_file(self) -> str:
        """Path of the checkpoint last_checkpoint names."""
        tag = os.path.join(self.save_dir, LAST_CHECKPOINT)
        with open(tag) as f:
            name = f.read().strip()
        if not name or os.sep in name or name.startswith(".."):
            raise WeightsError(f"{tag} holds {name!r}, not a checkpoint file name")
        path = os.path.join(self.save_dir, name)
        if not os.path.isfile(path):
            raise MissingFileError(f"{tag} names {name}, but {path} does not exist")
        return path

    # ------------------------------------------------------------------ loading
    def load_checkpoint(self, path: str) -> Dict[str, Any]:
        """Restore everything from one of our checkpoint files; returns the extra entries
        (e.g. {"iteration": 99})."""
        data = read_checkpoint(path)  # torch.load(weights_only=True): no code runs
        if not isinstance(data, dict) or "model" not in data:
            raise WeightsError(f"{path} is not a resnet_det training checkpoint (no 'model' "
                               "entry); load pretrained weights with MODEL.WEIGHTS instead")
        model = unwrap_model(self.model)
        state, own = data.pop("model"), model.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
        if missing or unexpected or shapes:
            raise WeightsMismatchError(
                f"Resuming from {path}: the model does not match the checkpoint; missing keys "
                f"{missing}, unexpected keys {unexpected}, other shapes {shapes} (another config "
                "in the same OUTPUT_DIR? start a new OUTPUT_DIR or drop --resume)")
        model.load_state_dict(state, strict=True)
        for key, obj in self.checkpointables.items():
            if key not in data:
                raise WeightsError(f"Resuming from {path}: no '{key}' state in the checkpoint "
                                   f"(has {sorted(data)})")
            obj.load_state_dict(data.pop(key))
        rng = data.pop("rng_states", None)
        if rng is not None:
            rank, world = comm.get_rank(), comm.get_world_size()
            if len(rng) != world:
                # Each rank's stream was saved; another world size cannot reproduce them.
                logger.warning("Checkpoint %s holds RNG states of %d processes, this run has "
                               "%d: RNG streams are not restored (resume is not bit-exact)",
                               path, len(rng), world)
            else:
                set_rng_states(rng[rank])
        logger.info("Resumed from %s", path)
        return data

    def resume_or_load(self, path: str, *, resume: bool = True) -> int:
        """With ``resume`` and a last_checkpoint in save_dir: restore everything from it and
        return the iteration to start from (saved iteration + 1). Otherwise load initial
        weights from ``path`` (MODEL.WEIGHTS; "" = none) with ``weights_loader`` and return 0.
        """
        if resume and self.has_checkpoint():
            ckpt = self.get_checkpoint_file()
            extra = self.load_checkpoint(ckpt)
            if "iteration" not in extra:
                raise WeightsError(f"Checkpoint {ckpt} has no 'iteration' entry to resume from")
            return int(extra["iteration"]) + 1
        if resume:
            logger.info("No checkpoint found in %s: starting from %s", self.save_dir or "''",
                        path or "scratch")
        if path:
            report = self.weights_loader(unwrap_model(self.model), path)
            missing = getattr(report, "missing_keys", None)
            unexpected = getattr(report, "unexpected_keys", None)
            if missing:
                logger.warning("Weights %s: missing keys (left at initialisation): %s", path,
                               missing)
            if unexpected:
                logger.warning("Weights %s: unexpected keys (ignored): %s", path, unexpected)
            logger.info("Loaded initial weights from %s", path)
        return 0

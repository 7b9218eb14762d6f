"""Checkpointer: atomic save of everything a run needs to resume EXACTLY, and loading.

A checkpoint file (model_NNNNNNN.pth, model_final.pth) is a dict of plain types and tensors:
    {"model": state_dict (unwrapped from DDP), "optimizer": ..., "scheduler": ...,
     <other checkpointables>: ..., "iteration": int, "rng_states": [per-rank RNG states]}
so it loads with torch.load(weights_only=True) (no code runs when reading it).
``last_checkpoint`` in the same folder holds the file name of the newest one; both are written
by :func:`write_checkpoint`, which the detectron2 plugin's checkpointer uses too.

What goes wrong on clusters (docs/reliability.md): a full disk while saving leaves the previous
checkpoint and last_checkpoint as they were and raises :class:`CheckpointWriteError`; a newest
checkpoint that is truncated or corrupt (its zip CRCs are checked, which torch.load does not
do) makes a resume fall back to the newest intact older one, with a warning naming both.
"""

import logging
import os
import re
import shutil
import zipfile
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import torch
from torch import nn

from ..utils import comm
from ..utils.errors import MissingFileError, UserError, WeightsError
from ..utils.file_io import atomic_torch_save, atomic_write_text
from ..utils.seeding import get_rng_states, set_rng_states
from .weights import WeightsMismatchError, load_weights, read_checkpoint

__all__ = [
    "Checkpointer",
    "unwrap_model",
    "write_checkpoint",
    "tag_last_checkpoint",
    "LAST_CHECKPOINT",
    "CheckpointWriteError",
    "DamagedCheckpointError",
    "checkpoint_files",
]

logger = logging.getLogger(__name__)

LAST_CHECKPOINT = "last_checkpoint"

# model_0000999.pth, model_final.pth (any prefix): the files PeriodicCheckpointer writes.
_CHECKPOINT_NAME = re.compile(r"^(?P<prefix>.+)_(?P<iter>\d{7}|final)\.pth$")


class CheckpointWriteError(UserError, OSError):
    """Writing a checkpoint failed (full disk, quota, permissions); the previous checkpoint and
    last_checkpoint are left as they were."""


class DamagedCheckpointError(WeightsError):
    """No checkpoint in the folder can be read to resume from (truncated, corrupt, refused)."""


def checkpoint_files(save_dir: str, prefix: Optional[str] = None) -> List[str]:
    """The checkpoint files (name_NNNNNNN.pth, name_final.pth) in ``save_dir``, newest first:
    ``_final`` first, then by the iteration in the name."""
    out = []
    for name in os.listdir(save_dir) if os.path.isdir(save_dir) else []:
        m = _CHECKPOINT_NAME.match(name)
        if m and (prefix is None or m.group("prefix") == prefix):
            it = m.group("iter")
            out.append((float("inf") if it == "final" else int(it), name))
    return [name for _, name in sorted(out, reverse=True)]


def _iteration_in_name(name: str) -> float:
    m = _CHECKPOINT_NAME.match(name)
    if not m:
        return float("inf")
    return float("inf") if m.group("iter") == "final" else int(m.group("iter"))


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

    def __init__(
        self,
        model: nn.Module,
        save_dir: str = "",
        *,
        optimizer: Optional[torch.optim.Optimizer] = None,
        scheduler: Any = None,
        save_to_disk: Optional[bool] = None,
        weights_loader: Optional[Callable[[nn.Module, str], Any]] = None,
        **checkpointables: Any,
    ) -> None:
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
                raise TypeError(
                    f"Checkpointer: checkpointable {name!r} "
                    f"({type(obj).__name__}) has no state_dict/load_state_dict"
                )
            self.checkpointables[name] = obj
        self.save_to_disk = comm.is_main_process() if save_to_disk is None else save_to_disk
        self.weights_loader = weights_loader or _default_weights_loader
        # Plain values written at the top level of every checkpoint, e.g. the weights' input
        # contract under "__input_contract__" (resnet_det.checkpoint.weights).
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
        try:
            path = write_checkpoint(data, self.save_dir, name)
        except OSError as e:
            raise self._write_error(name, e) from e
        logger.info("Saved checkpoint to %s", path)
        return path

    def _write_error(self, name: str, error: OSError) -> CheckpointWriteError:
        target = os.path.join(self.save_dir, f"{name}.pth")
        try:
            free = f"{shutil.disk_usage(self.save_dir).free / 2**20:.0f} MB free there"
        except OSError:
            free = "free space unknown"
        kept = (
            f"{self.get_checkpoint_file()} (named by last_checkpoint) is intact"
            if self._has_valid_tag()
            else "no earlier checkpoint exists"
        )
        return CheckpointWriteError(
            error.errno,
            f"Saving checkpoint {target} failed: {error.strerror or error} ({free}). "
            f"Nothing was replaced: {kept}. Free space in OUTPUT_DIR (SOLVER.CHECKPOINT_KEEP_LAST "
            "bounds how many checkpoints a run keeps) and rerun with --resume",
        )

    def _has_valid_tag(self) -> bool:
        try:
            self.get_checkpoint_file()
            return True
        except (OSError, WeightsError):
            return False

    # ------------------------------------------------------------------ finding
    def has_checkpoint(self) -> bool:
        return bool(self.save_dir) and os.path.isfile(os.path.join(self.save_dir, LAST_CHECKPOINT))

    def get_checkpoint_file(self) -> str:
        """Path of the checkpoint last_checkpoint names."""
        path = self._named_checkpoint()
        if not os.path.isfile(path):
            raise MissingFileError(
                f"{os.path.join(self.save_dir, LAST_CHECKPOINT)} names "
                f"{os.path.basename(path)}, but {path} does not exist"
            )
        return path

    def _named_checkpoint(self) -> str:
        """Path last_checkpoint names (which may not exist)."""
        tag = os.path.join(self.save_dir, LAST_CHECKPOINT)
        with open(tag) as f:
            name = f.read().strip()
        if not name or os.sep in name or name.startswith(".."):
            raise WeightsError(f"{tag} holds {name!r}, not a checkpoint file name")
        return os.path.join(self.save_dir, name)

    # ------------------------------------------------------------------ loading
    def load_checkpoint(self, path: str) -> Dict[str, Any]:
        """Restore everything from one of our checkpoint files; returns the extra entries
        (e.g. {"iteration": 99})."""
        data = read_checkpoint(path)  # torch.load(weights_only=True): no code runs
        if not isinstance(data, dict) or "model" not in data:
            raise WeightsError(
                f"{path} is not a resnet_det training checkpoint (no 'model' "
                "entry); load pretrained weights with MODEL.WEIGHTS instead"
            )
        return self._restore(path, data)

    @staticmethod
    def _read_intact(path: str) -> Dict[str, Any]:
        """The content of a training checkpoint, or ValueError/OSError saying why it cannot
        be resumed from (missing, truncated, corrupt, refused, not a training checkpoint)."""
        if not os.path.isfile(path):
            raise FileNotFoundError("the file does not exist")
        size = os.path.getsize(path)
        if size == 0:
            raise ValueError("empty (0 bytes)")
        with open(path, "rb") as f:
            zipped = f.read(4) == b"PK\x03\x04"  # torch.save's format is a zip archive
        if zipped and not zipfile.is_zipfile(path):
            raise ValueError(
                f"truncated: a zip archive without its end ({size} bytes; an "
                "interrupted write or copy)"
            )
        if zipped:
            # torch.load does not check the CRCs: flipped bytes would load as wrong weights.
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                raise ValueError(f"corrupt: the CRC of its entry {bad} does not match")
        try:
            data = read_checkpoint(path)
        except (WeightsError, OSError, EOFError, RuntimeError, ValueError) as e:
            # RuntimeError: torch's zip reader ("failed finding central directory") on a
            # truncated file; EOFError: an empty one; WeightsError: a refused pickle.
            first = str(e).splitlines()[0] if str(e) else ""
            raise ValueError(f"unreadable: {type(e).__name__}: {first[:300]}") from e
        if not isinstance(data, dict) or "model" not in data or "iteration" not in data:
            raise ValueError("not a training checkpoint (no 'model' and 'iteration' entries)")
        return data

    def _newest_intact(self, named: str) -> Tuple[str, Dict[str, Any]]:
        """The checkpoint last_checkpoint names if intact, else the newest intact one older
        than it (warning naming both). Raises DamagedCheckpointError if none is intact."""
        problems = []
        candidates = [named] + [
            os.path.join(self.save_dir, n)
            for n in checkpoint_files(self.save_dir)
            if _iteration_in_name(n) < _iteration_in_name(os.path.basename(named))
        ]
        for path in candidates:
            try:
                data = self._read_intact(path)
            except (ValueError, OSError) as e:
                problems.append(f"{path}: {e}")
                logger.warning("Checkpoint %s cannot be resumed from (%s)", path, e)
                continue
            if path != named:
                logger.warning(
                    "Resuming from %s, the newest intact checkpoint: %s, which "
                    "last_checkpoint names, is damaged",
                    path,
                    named,
                )
            return path, data
        if len(candidates) == 1 and not os.path.exists(named):
            raise MissingFileError(
                f"{os.path.join(self.save_dir, LAST_CHECKPOINT)} names "
                f"{os.path.basename(named)}, but {named} does not exist and no "
                "older checkpoint is there; drop --resume to start from MODEL.WEIGHTS"
            )
        raise DamagedCheckpointError(
            f"--resume: no intact checkpoint in {self.save_dir}: "
            + "; ".join(problems)
            + ". Drop --resume (or use a new OUTPUT_DIR) to start again from MODEL.WEIGHTS"
        )

    def _restore(self, path: str, data: Dict[str, Any]) -> Dict[str, Any]:
        """Apply a checkpoint's content to the model, checkpointables and RNG streams."""
        model = unwrap_model(self.model)
        state, own = data.pop("model"), model.state_dict()
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
        if missing or unexpected or shapes:
            raise WeightsMismatchError(
                f"Resuming from {path}: the model does not match the checkpoint; missing keys "
                f"{missing}, unexpected keys {unexpected}, other shapes {shapes} (another config "
                "in the same OUTPUT_DIR? start a new OUTPUT_DIR or drop --resume)"
            )
        model.load_state_dict(state, strict=True)
        for key, obj in self.checkpointables.items():
            if key not in data:
                raise WeightsError(
                    f"Resuming from {path}: no '{key}' state in the checkpoint (has {sorted(data)})"
                )
            obj.load_state_dict(data.pop(key))
        rng = data.pop("rng_states", None)
        if rng is not None:
            rank, world = comm.get_rank(), comm.get_world_size()
            if len(rng) != world:
                # Each rank's stream was saved; another world size cannot reproduce them.
                logger.warning(
                    "Checkpoint %s holds RNG states of %d processes, this run has "
                    "%d: RNG streams are not restored (resume is not bit-exact)",
                    path,
                    len(rng),
                    world,
                )
            else:
                set_rng_states(rng[rank])
        logger.info("Resumed from %s", path)
        return data

    def resume_or_load(self, path: str, *, resume: bool = True) -> int:
        """With ``resume`` and a last_checkpoint in save_dir: restore everything from it (or,
        if it is damaged, from the newest intact older one) and return the iteration to start
        from (saved iteration + 1). Otherwise load initial weights from ``path``
        (MODEL.WEIGHTS; "" = none) with ``weights_loader`` and return 0. A collective call
        with several processes: every rank must resume from the same checkpoint.
        """
        ckpt = None
        if resume and self.has_checkpoint():
            ckpt, data = self._newest_intact(self._named_checkpoint())
        if comm.get_world_size() > 1:
            # Every rank decides from its own view of save_dir; resuming from different
            # states would train on silently (a collective: every rank calls resume_or_load).
            chosen = comm.all_gather(os.path.basename(ckpt) if ckpt else None)
            if len(set(chosen)) > 1:
                raise WeightsError(
                    f"The ranks would resume from different checkpoints: "
                    f"{dict(enumerate(chosen))}; give every rank the same "
                    "OUTPUT_DIR (a folder all machines share)"
                )
        if ckpt is not None:
            extra = self._restore(ckpt, data)
            return int(extra["iteration"]) + 1
        if resume:
            logger.info(
                "No checkpoint found in %s: starting from %s",
                self.save_dir or "''",
                path or "scratch",
            )
        if path:
            try:
                report = self.weights_loader(unwrap_model(self.model), path)
            except WeightsError as e:
                if "MODEL.WEIGHTS" in str(e):
                    raise
                # The loaders speak of files and keys; the user set a config key.
                raise type(e)(
                    f"config MODEL.WEIGHTS={path!r}: {e}. Give weights of the network "
                    "this config builds (MODEL.BACKBONE.NAME, MODEL.RESNETS.DEPTH / "
                    "MODEL.VGG.DEPTH; tools/convert_weights.py converts other layouts), "
                    'or set MODEL.WEIGHTS "" to train from scratch'
                ) from e
            missing = getattr(report, "missing_keys", None)
            unexpected = getattr(report, "unexpected_keys", None)
            if missing:
                logger.warning(
                    "Weights %s: missing keys (left at initialisation): %s", path, missing
                )
            if unexpected:
                logger.warning("Weights %s: unexpected keys (ignored): %s", path, unexpected)
            logger.info("Loaded initial weights from %s", path)
        return 0

"""Weights files: reading them safely, their input contract, loading them into our models, and
writing or converting them.

- ``read_checkpoint``: .pkl files through the restricted unpickler
  (resnet_det.utils.safe_pickle), anything else through ``torch.load(weights_only=True)``.
- ``load_weights(model, source, strict=True)``: any layout of resnet_det.checkpoint.layouts
  into our classifiers and backbones.
- ``save_weights`` / ``convert_weights_file`` (tools/convert_weights.py), which keep the
  weights' input contract.

The input contract of a set of weights (``InputContract``) is the channel order and the
per-channel mean and std of the pixels (0-255) the network was trained on.

A backbone fine-tuned on input normalised differently from its pretraining trains without an
error on wrongly scaled images (the paper's MSRA ResNets take BGR minus the mean with std 1;
torchvision's and our own pretraining take RGB divided by the ImageNet std of ~58). So a
weights file carries its contract:

- files written by our pretraining (resnet_det.engine.pretrain) and by
  tools/convert_weights.py record it under the top-level key ``"__input_contract__"``:
  ``{"format": "RGB", "pixel_mean": [...], "pixel_std": [...], "origin": "..."}``;
- files in a layout whose origin fixes the contract get the known one: Caffe2 blob names
  (MSRA's R-50/R-101/R-152.pkl, detectron2's ``ImageNetPretrained/MSRA``; the VGG group's Caffe
  VGG-16 for VGG blobs), torchvision names, and detectron2 files converted from torchvision
  (``"__author__": "torchvision"``);
- anything else (a resnet_det-layout file without the key, a detectron2 detector checkpoint)
  has an unknown contract.

Loading weights into a detector compares their contract with the config's (INPUT.FORMAT,
MODEL.PIXEL_MEAN, MODEL.PIXEL_STD) under MODEL.WEIGHTS_INPUT_CONTRACT
(resnet_det.checkpoint.detector): "check" stops with the keys to set, "adopt" takes the
weights' values, "ignore" does neither.
"""

import logging
import math
import os
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..utils.errors import MissingFileError, WeightsError
from ..utils.file_io import atomic_open, atomic_torch_save
from ..utils.safe_pickle import WeightsFileError, safe_load
from .layouts import convert_state_dict, to_resnet_det, unwrap_checkpoint

__all__ = [
    "INPUT_CONTRACT_KEY",
    "CONTRACT_POLICIES",
    "DETECTOR_CONTRACT_KEYS",
    "InputContract",
    "MSRA_CONTRACT",
    "CAFFE_VGG16_CONTRACT",
    "TORCHVISION_CONTRACT",
    "contract_of",
    "compare_input_contract",
    "LoadResult",
    "WeightsFileError",
    "WeightsMismatchError",
    "load_weights",
    "read_checkpoint",
    "save_weights",
    "convert_weights_file",
]

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------- input contract
INPUT_CONTRACT_KEY = "__input_contract__"
# MODEL.WEIGHTS_INPUT_CONTRACT values.
CONTRACT_POLICIES = ("check", "adopt", "ignore")
# The detector config's keys for format, mean and std.
DETECTOR_CONTRACT_KEYS = ("INPUT.FORMAT", "MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD")
# Means and stds closer than this are the same (configs write 103.53 or 103.530).
_REL_TOL, _ABS_TOL = 1e-4, 1e-3


def _floats(values: Sequence[Any], what: str) -> Tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be 3 numbers, got {values!r}") from None
    if len(out) != 3 or not all(math.isfinite(v) for v in out):
        raise ValueError(f"{what} must be 3 finite numbers, got {values!r}")
    return out


def _fmt(values: Sequence[float]) -> str:
    return "[" + ", ".join(repr(float(v)) for v in values) + "]"


@dataclass(frozen=True)
class InputContract:
    """What input a set of weights expects.

    Args:
        format: channel order, "RGB" or "BGR".
        pixel_mean: per-channel mean subtracted from 0-255 pixels, in ``format`` order.
        pixel_std: per-channel std the centred pixels are divided by, in ``format`` order.
        origin: how the contract is known (for messages; not compared).
    """

    format: str
    pixel_mean: Tuple[float, ...]
    pixel_std: Tuple[float, ...]
    origin: str = field(default="", compare=False)

    def __post_init__(self):
        if self.format not in ("RGB", "BGR"):
            raise ValueError(f"input format must be 'RGB' or 'BGR', got {self.format!r}")
        object.__setattr__(self, "pixel_mean", _floats(self.pixel_mean, "pixel_mean"))
        object.__setattr__(self, "pixel_std", _floats(self.pixel_std, "pixel_std"))
        if any(s <= 0 for s in self.pixel_std):
            raise ValueError(f"pixel_std must be > 0, got {list(self.pixel_std)}")

    def to_dict(self) -> Dict[str, Any]:
        """The form stored in a weights file under INPUT_CONTRACT_KEY (plain types only)."""
        return {
            "format": self.format,
            "pixel_mean": list(self.pixel_mean),
            "pixel_std": list(self.pixel_std),
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, data: Any, origin: str = "") -> "InputContract":
        """Read the stored form (its own "origin", else ``origin``); WeightsError if it is
        malformed."""
        if not isinstance(data, Mapping) or not {"format", "pixel_mean", "pixel_std"} <= set(data):
            raise WeightsError(
                f"{origin or 'weights'}: {INPUT_CONTRACT_KEY} must be a dict with "
                f"format, pixel_mean and pixel_std, got {data!r}"
            )
        try:
            return cls(
                str(data["format"]),
                data["pixel_mean"],
                data["pixel_std"],
                origin=str(data.get("origin") or origin),
            )
        except ValueError as e:
            raise WeightsError(
                f"{origin or 'weights'}: malformed {INPUT_CONTRACT_KEY}: {e}"
            ) from None

    def differing_keys(
        self, other: "InputContract", keys: Sequence[str] = DETECTOR_CONTRACT_KEYS
    ) -> List[str]:
        """The config keys (format, mean, std) whose values differ between the two."""

        def close(a, b) -> bool:
            return all(math.isclose(x, y, rel_tol=_REL_TOL, abs_tol=_ABS_TOL) for x, y in zip(a, b))

        same = (
            self.format == other.format,
            close(self.pixel_mean, other.pixel_mean),
            close(self.pixel_std, other.pixel_std),
        )
        return [k for k, ok in zip(keys, same) if not ok]

    def matches(self, other: "InputContract") -> bool:
        """Same format, and means and stds equal within a small tolerance."""
        return not self.differing_keys(other)

    def values(self, keys: Sequence[str] = DETECTOR_CONTRACT_KEYS) -> Dict[str, Any]:
        """{config key: value} for format, mean and std."""
        return dict(zip(keys, (self.format, list(self.pixel_mean), list(self.pixel_std))))

    def overrides(
        self, only: Optional[Sequence[str]] = None, keys: Sequence[str] = DETECTOR_CONTRACT_KEYS
    ) -> str:
        """Command-line overrides setting ``keys`` (or those of them in ``only``) to this
        contract's values, e.g. ``INPUT.FORMAT RGB MODEL.PIXEL_STD "[58.395, 57.12, 57.375]"``."""
        return " ".join(
            f"{k} {v}" if isinstance(v, str) else f'{k} "{_fmt(v)}"'
            for k, v in self.values(keys).items()
            if only is None or k in only
        )

    def __str__(self) -> str:
        return f"{self.format}, mean {_fmt(self.pixel_mean)}, std {_fmt(self.pixel_std)}"


MSRA_CONTRACT = InputContract(
    "BGR",
    (103.530, 116.280, 123.675),
    (1.0, 1.0, 1.0),
    origin="MSRA's Caffe ResNets (Caffe2 blob names, e.g. detectron2's ImageNetPretrained/MSRA/"
    "R-101.pkl): 0-255 BGR minus the mean, as detectron2 feeds them",
)
CAFFE_VGG16_CONTRACT = InputContract(
    "BGR",
    (102.9801, 115.9465, 122.7717),
    (1.0, 1.0, 1.0),
    origin="the VGG group's Caffe VGG-16 (Caffe2 blob names): 0-255 BGR minus the mean, as "
    "py-faster-rcnn and Detectron feed it",
)
TORCHVISION_CONTRACT = InputContract(
    "RGB",
    (123.675, 116.28, 103.53),
    (58.395, 57.12, 57.375),
    origin="torchvision's ImageNet weights: RGB normalised by the ImageNet mean and std",
)


def contract_of(
    flat: Mapping[str, Any], meta: Mapping[str, Any], name: str = "weights"
) -> Tuple[Optional[InputContract], str]:
    """The contract of an unwrapped checkpoint (``layouts.unwrap_checkpoint``'s flat state dict
    and metadata) and how it is known; (None, why) when it is unknown."""
    if INPUT_CONTRACT_KEY in meta:
        found = InputContract.from_dict(meta[INPUT_CONTRACT_KEY], origin=name)
        return found, f"recorded in {name}" + (f": {found.origin}" if found.origin != name else "")
    try:
        ours, layout = to_resnet_det(flat, meta=meta)
    except WeightsError:
        return None, f"{name} is in no layout resnet_det recognises"
    if layout == "caffe2":
        known = (
            CAFFE_VGG16_CONTRACT if any(k.startswith("vgg_block") for k in ours) else MSRA_CONTRACT
        )
        return known, known.origin
    if layout == "torchvision" or (
        layout == "detectron2" and meta.get("__author__") == "torchvision"
    ):
        return TORCHVISION_CONTRACT, TORCHVISION_CONTRACT.origin
    return None, (
        f"{name} ({layout} layout) records no input contract and its layout has no known one"
    )


def compare_input_contract(
    expected: InputContract,
    found: Optional[InputContract],
    how: str,
    *,
    policy: str,
    weights: str,
    keys: Sequence[str] = DETECTOR_CONTRACT_KEYS,
    log: logging.Logger = logger,
) -> None:
    """Compare the contract a config feeds (``expected``) with the weights' (``found``, known
    by ``how``) under ``policy`` (CONTRACT_POLICIES).

    "check": a mismatch raises WeightsError naming both contracts and the overrides that make
    the config agree; an unknown contract is a warning naming the file. "adopt": the config
    must already hold the weights' values (``adopt_weights_contract`` sets them before
    anything is built); a mismatch here means it did not run, which raises. "ignore": nothing.
    """
    if policy not in CONTRACT_POLICIES:
        raise WeightsError(
            f"config MODEL.WEIGHTS_INPUT_CONTRACT={policy!r}: choose one of "
            f"{list(CONTRACT_POLICIES)}"
        )
    if policy == "ignore":
        log.info(
            "MODEL.WEIGHTS_INPUT_CONTRACT ignore: %s is not checked against the config's "
            "input (%s)",
            weights,
            expected,
        )
        return
    if found is None:
        log.warning(
            "MODEL.WEIGHTS=%s: the input contract is unknown: %s. The detector feeds "
            "%s (%s): make sure the weights were trained on that input (tools/"
            "convert_weights.py --input-format ... records it in the file)",
            weights,
            how,
            expected,
            ", ".join(keys),
        )
        return
    differ = found.differing_keys(expected, keys)
    if not differ:
        log.info("MODEL.WEIGHTS=%s: input contract %s (%s) matches the config", weights, found, how)
        return
    if policy == "adopt":
        raise WeightsError(
            f"MODEL.WEIGHTS_INPUT_CONTRACT adopt: the config still feeds {expected}, not the "
            f"weights' {found}: the weights' values must be set before the detector and the "
            "loaders are built (resnet_det.checkpoint.adopt_weights_contract(cfg), which "
            "default_setup runs)"
        )
    raise WeightsError(
        f"MODEL.WEIGHTS={weights} expects input {found} ({how}), but the config feeds "
        f"{expected} ({', '.join(keys)}): the detector would train on wrongly normalised "
        f"images. Set  {found.overrides(differ, keys)}  (or MODEL.WEIGHTS_INPUT_CONTRACT adopt to "
        "take "
        "the weights' values, ignore to keep the config's)"
    )


# ---------------------------------------------------------------- reading
PathLike = Union[str, os.PathLike]


class WeightsMismatchError(WeightsError):
    """The weights do not fit the model (shape, architecture, or strict key mismatch)."""


@dataclass
class LoadResult:
    """What ``load_weights`` did. Key names are in our (resnet_det) layout.

    Attributes:
        missing_keys: model entries the source did not provide (left as they were).
        unexpected_keys: source entries the model has no place for (ignored).
        layout: the detected source layout (resnet_det, detectron2, caffe2, torchvision).
        source: the path, or "<state dict>".
        filled_keys: norm running statistics set to identity (mean 0, var 1 - eps) because a
            Caffe2 file stores its frozen BN as scale and bias only.
    """

    missing_keys: List[str] = field(default_factory=list)
    unexpected_keys: List[str] = field(default_factory=list)
    layout: str = ""
    source: str = ""
    filled_keys: List[str] = field(default_factory=list)


def read_checkpoint(source: Union[PathLike, Mapping[str, Any]]) -> Any:
    """The object stored in ``source`` (a dict is returned as it is).

    .pkl files go through the restricted unpickler (numpy arrays and containers only) unless
    they are torch zip archives; everything else through ``torch.load(weights_only=True)``.
    A file that would need code to run raises :class:`WeightsFileError`.
    """
    if isinstance(source, Mapping):
        return source
    path = os.fspath(source)
    if not os.path.isfile(path):
        raise MissingFileError(f"resnet_det: weights file {path!r} does not exist")
    if path.endswith(".pkl") and not zipfile.is_zipfile(path):
        return safe_load(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise WeightsFileError(
            f"resnet_det: {path!r} is not a plain weights file (torch.load(weights_only=True) "
            f"refused it): {e}"
        ) from None


def _is_counter(key: str) -> bool:
    return key.endswith("num_batches_tracked")


# ---------------------------------------------------------------- architecture summary
def _describe(sd: Mapping[str, torch.Tensor]) -> Dict[str, str]:
    """{part: description} of the stages/blocks a state dict (our names) holds."""
    parts: Dict[str, Dict[str, Any]] = OrderedDict()
    for key, value in sd.items():
        m = re.match(r"^(res\d+)\.(\d+)\.(\w+)\.", key)
        if m:
            stage = parts.setdefault(m[1], {"blocks": 0, "convs": set(), "channels": None})
            stage["blocks"] = max(stage["blocks"], int(m[2]) + 1)
            stage["convs"].add(m[3])
            continue
        m = re.match(r"^(vgg_block\d)\.(conv\d_\d)\.weight$", key)
        if m:
            parts.setdefault(m[1], {"blocks": 0, "convs": set(), "channels": None})["blocks"] += 1
            continue
        if key == "stem.conv1.weight" and value.dim() == 4:
            parts["stem"] = {
                "desc": f"{value.shape[-1]}x{value.shape[-2]} conv, {value.shape[0]} filters"
            }
    out = {}
    for name, info in parts.items():
        if "desc" in info:
            out[name] = info["desc"]
        elif name.startswith("vgg_block"):
            out[name] = f"{info['blocks']} convs"
        else:
            kind = "bottleneck" if "conv3" in info["convs"] else "basic"
            out[name] = f"{info['blocks']} {kind} blocks"
    return out


def _arch_difference(src: Mapping, dst: Mapping) -> str:
    a, b = _describe(src), _describe(dst)
    if not a or not b:
        return (
            ""
            if a == b
            else (
                f"checkpoint has {', '.join(a) or 'no ResNet/VGG parts'}; model has "
                f"{', '.join(b) or 'no ResNet/VGG parts'}"
            )
        )
    diffs = [f"{k}: checkpoint {a[k]} vs model {b[k]}" for k in a if k in b and a[k] != b[k]]
    if not set(a) & set(b):
        diffs.append(f"checkpoint parts {', '.join(a)} vs model parts {', '.join(b)}")
    return "; ".join(diffs)


# ---------------------------------------------------------------- loading
def _fill_affine_bn(src: Dict[str, torch.Tensor], model: nn.Module, model_sd: Mapping) -> List[str]:
    """Caffe2 MSRA files store frozen BN as an affine (scale, bias) only: set the statistics
    so the norm computes exactly x * scale + bias, instead of leaving them at init."""
    filled = []
    modules = dict(model.named_modules())
    for key in list(src):
        if not key.endswith(".norm.weight"):
            continue
        prefix = key[: -len("weight")]
        norm = modules.get(prefix[:-1])
        for stat in ("running_mean", "running_var"):
            name = prefix + stat
            if name in model_sd and name not in src:
                value = (
                    torch.zeros_like(model_sd[name])
                    if stat == "running_mean"
                    else (torch.ones_like(model_sd[name]) - getattr(norm, "eps", 0.0))
                )
                src[name] = value
                filled.append(name)
    return filled


def _preview(keys: List[str], n: int = 8) -> str:
    return ", ".join(keys[:n]) + (f", ... ({len(keys)} in all)" if len(keys) > n else "")


def load_weights(
    model: nn.Module, source: Union[PathLike, Mapping[str, Any]], strict: bool = True
) -> LoadResult:
    """Load weights into ``model`` from a file or a state dict, in any supported layout.

    Args:
        model: a resnet_det model (or any module with our parameter names).
        source: a path (.pth/.pt: torch.load(weights_only=True); .pkl: restricted unpickler)
            or a dict, in torchvision, detectron2 (maybe under backbone.bottom_up. /
            backbone., or {"model": ...}), MSRA/Caffe2 ({"blobs": ...} of numpy arrays) or
            resnet_det layout; the layout is detected.
        strict: raise if the model misses any weight or the source has unused entries.
    Returns:
        LoadResult with missing_keys, unexpected_keys (our names), layout, filled_keys.
    Raises:
        WeightsMismatchError: different architecture, a shape mismatch (always), or missing/
            unexpected keys under strict.
    """
    where = "state dict" if isinstance(source, Mapping) else f"file {os.fspath(source)!r}"
    flat, meta = unwrap_checkpoint(read_checkpoint(source))
    src, layout = to_resnet_det(flat, meta=meta)
    model_sd = model.state_dict()
    filled = _fill_affine_bn(src, model, model_sd) if layout == "caffe2" else []

    # BatchNorm's num_batches_tracked counters are bookkeeping, not weights: never reported,
    # loaded only when they fit.
    for k in [k for k in src if _is_counter(k)]:
        if k not in model_sd or src[k].shape != model_sd[k].shape:
            del src[k]
    matched = [k for k in src if k in model_sd]
    mismatched = [k for k in matched if tuple(src[k].shape) != tuple(model_sd[k].shape)]
    missing = [k for k in model_sd if k not in src and not _is_counter(k)]
    unexpected = [k for k in src if k not in model_sd and not _is_counter(k)]
    arch = _arch_difference(src, model_sd)
    real_matches = [k for k in matched if not _is_counter(k)]
    if arch and (mismatched or strict or not real_matches):
        first = ""
        if mismatched:
            k = mismatched[0]
            first = (
                f"; first shape mismatch: {k} is {tuple(src[k].shape)} in the checkpoint "
                f"but {tuple(model_sd[k].shape)} in the model"
            )
        raise WeightsMismatchError(
            f"resnet_det: weights {where} looks like a different architecture: {arch} "
            f"(layout {layout}){first}"
        )
    if mismatched:
        k = mismatched[0]
        more = f" and {len(mismatched) - 1} more" if len(mismatched) > 1 else ""
        raise WeightsMismatchError(
            f"resnet_det: shape mismatch loading {where}: {k} is {tuple(src[k].shape)} in the "
            f"checkpoint but {tuple(model_sd[k].shape)} in the model{more}"
        )
    if not real_matches:
        raise WeightsMismatchError(
            f"resnet_det: weights {where} looks like a different architecture: none of its "
            f"{len(src)} entries (layout {layout}, e.g. {_preview(list(src), 3)}) names a "
            "parameter of this model"
        )
    if strict and (missing or unexpected):
        lines = [f"resnet_det: weights {where} (layout {layout}) do not match the model exactly:"]
        if missing:
            lines.append(f"  missing in the checkpoint: {_preview(missing)}")
        if unexpected:
            lines.append(f"  unexpected in the checkpoint: {_preview(unexpected)}")
        lines.append("  pass strict=False to load the matching part and get these lists back")
        raise WeightsMismatchError("\n".join(lines))
    model.load_state_dict({k: v for k, v in src.items() if k in model_sd}, strict=False)
    return LoadResult(
        missing_keys=missing,
        unexpected_keys=unexpected,
        layout=layout,
        source=where,
        filled_keys=filled,
    )


# ---------------------------------------------------------------- saving / converting
def save_weights(
    sd: Mapping[str, torch.Tensor],
    path: PathLike,
    layout: str = "resnet_det",
    *,
    input_contract: Optional[InputContract] = None,
) -> None:
    """Write ``sd`` (already in ``layout``) atomically (resnet_det.utils.file_io).

    .pkl: {"model": {name: numpy array}, "__author__": "resnet_det", "matching_heuristics":
    True}, which detectron2's checkpointer reads. .pth/.pt: torchvision layout as a plain state
    dict, others as {"model": state_dict, "__author__": "resnet_det"}. ``input_contract`` is
    recorded under "__input_contract__" (not in a torchvision-layout file, a plain state dict
    with no place for it: there it must be torchvision's own, which that layout implies).

    Raises:
        WeightsError: a torchvision-layout file for weights with another input contract.
    """
    path = os.fspath(path)
    tensors = OrderedDict((k, v.detach().cpu().contiguous()) for k, v in sd.items())
    contract = {} if input_contract is None else {INPUT_CONTRACT_KEY: input_contract.to_dict()}
    if path.endswith(".pkl"):
        obj = {
            "model": OrderedDict((k, v.numpy()) for k, v in tensors.items()),
            "__author__": "resnet_det",
            "matching_heuristics": True,
            **contract,
        }
        with atomic_open(path, "wb") as f:
            pickle.dump(obj, f, protocol=4)
        return
    if layout == "torchvision":
        if input_contract is not None and not input_contract.matches(TORCHVISION_CONTRACT):
            raise WeightsError(
                f"resnet_det: {path!r} in torchvision layout would be read as torchvision's "
                f"input contract ({TORCHVISION_CONTRACT}), but these weights expect "
                f"{input_contract}: write the resnet_det or detectron2 layout (.pth or .pkl), "
                "which records it"
            )
        obj = tensors
    else:
        obj = {"model": tensors, "__author__": "resnet_det", **contract}
        if layout == "detectron2":
            obj["matching_heuristics"] = True
    atomic_torch_save(obj, path)


def convert_weights_file(
    src: PathLike, dst: PathLike, to: str, *, input_contract: Optional[InputContract] = None
) -> Dict[str, torch.Tensor]:
    """Read ``src`` (any layout), convert to ``to`` and write ``dst``; returns the state dict.

    The input contract ``src`` records or its layout implies (resnet_det.checkpoint.weights)
    is written into ``dst``; ``input_contract`` replaces it (e.g. for a file that has none).
    """
    checkpoint = read_checkpoint(src)
    if input_contract is None:
        flat, meta = unwrap_checkpoint(checkpoint)
        input_contract, _ = contract_of(
            flat, meta, repr(os.fspath(src)) if not isinstance(src, Mapping) else "weights"
        )
    sd = convert_state_dict(checkpoint, to=to)
    save_weights(sd, dst, layout=to, input_contract=input_contract)
    return sd

"""``load_weights(model, source, strict=True)``: load any supported layout into our models,
and ``save_weights`` / ``convert_weights_file`` for tools/convert_weights.py (which keep the
weights' input contract, resnet_det.checkpoint.contract)."""

import os
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Union

import torch
from torch import nn

from ..utils.errors import MissingFileError, WeightsError
from ..utils.file_io import atomic_open, atomic_torch_save
from .contract import INPUT_CONTRACT_KEY, TORCHVISION_CONTRACT, InputContract, contract_of
from .layouts import convert_state_dict, to_resnet_det, unwrap_checkpoint
from .safe_pickle import WeightsFileError, safe_load

__all__ = [
    "LoadResult",
    "WeightsMismatchError",
    "load_weights",
    "read_checkpoint",
    "save_weights",
    "convert_weights_file",
]

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

    The input contract ``src`` records or its layout implies (resnet_det.checkpoint.contract)
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

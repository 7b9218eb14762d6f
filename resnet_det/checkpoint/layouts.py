"""Weight layouts and the key maps between them.

Layouts:
- "resnet_det": our module names (docs/internals.md), which are detectron2's ResNet names.
- "detectron2": the same names, maybe under "backbone.bottom_up." / "backbone." (C4 models
  keep res5 under "roi_heads.res5."), values possibly numpy arrays in a .pkl.
- "caffe2": MSRA / Detectron (Caffe2) blob names, e.g. conv1_w, res_conv1_bn_s,
  res2_0_branch2a_w, res2_0_branch1_bn_b, fc1000_w; VGG conv1_1_w, fc6_w.
- "torchvision": conv1, bn1, layer1.0.conv1, layer1.0.downsample.0/1, fc; VGG features.N /
  classifier.N.
"""

import re
from collections import OrderedDict
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import torch

from ..utils.errors import WeightsError

__all__ = [
    "LAYOUTS",
    "unwrap_checkpoint",
    "detect_layout",
    "to_resnet_det",
    "convert_state_dict",
    "torchvision_to_resnet_det",
    "resnet_det_to_torchvision",
    "caffe2_to_resnet_det",
]

LAYOUTS = ("resnet_det", "detectron2", "torchvision", "caffe2")
StateDict = Dict[str, torch.Tensor]

_VGG_BLOCK_SIZES = {13: (2, 2, 3, 3, 3), 16: (2, 2, 4, 4, 4)}  # convs -> per-block counts


# ---------------------------------------------------------------- containers
def unwrap_checkpoint(obj: Any) -> Tuple[StateDict, Dict[str, Any]]:
    """The flat {name: tensor} inside a checkpoint object, and its metadata.

    Handles {"model": ...} (detectron2 / our trainer), {"state_dict": ...}, {"blobs": ...}
    (Caffe2 / Detectron), plain state dicts; numpy arrays become tensors; Caffe2 "_momentum"
    blobs (optimizer state) and non-array entries are dropped.
    """
    if not isinstance(obj, Mapping):
        raise WeightsError(
            f"resnet_det: a weights source must be a dict of arrays, got {type(obj).__name__}"
        )
    meta = {k: v for k, v in obj.items() if isinstance(k, str) and k.startswith("__")}
    for wrapper in ("model", "state_dict", "blobs"):
        inner = obj.get(wrapper)
        if isinstance(inner, Mapping):
            meta["wrapper"] = wrapper
            obj = inner
            if wrapper == "model" and isinstance(obj.get("blobs"), Mapping):
                obj = obj["blobs"]
            break
    flat: StateDict = OrderedDict()
    numpy_values = False
    for key, value in obj.items():
        if not isinstance(key, str) or key.endswith("_momentum"):
            continue
        if isinstance(value, np.ndarray):
            numpy_values = True
            value = torch.from_numpy(np.array(value))  # a copy: keeps 0-d shapes, writable
        elif isinstance(value, np.generic):
            numpy_values = True
            value = torch.as_tensor(np.asarray(value))
        if isinstance(value, torch.Tensor):
            flat[key] = value
    meta["numpy"] = numpy_values
    return flat, meta


# ---------------------------------------------------------------- detection
_OURS = re.compile(r"^(stem\.|res\d+\.|linear\.|final_norm\.|vgg_block\d\.|fc[678]\.)")
_TV = re.compile(r"^(conv1\.|bn1\.|layer\d\.|fc\.|features\.\d+\.|classifier\.\d+\.)")
_C2 = re.compile(
    r"^(conv1_[wb]|(res_conv1|conv1)_(bn|gn)_(s|b|rm|riv)|res\d_\d+_branch(1|2[abc])_"
    r"([wb]|(bn|gn)_(s|b|rm|riv))|(fc1000|pred)_[wb]|conv\d_\d_[wb]|fc[678]_[wb])$"
)


def _strip_prefixes(sd: StateDict) -> Tuple[StateDict, bool]:
    """Remove DDP "module." and detection-model prefixes; True if a detection prefix was
    found (a detectron2 / torchvision detection checkpoint)."""
    keys = list(sd)
    if keys and all(k.startswith("module.") for k in keys):
        sd = OrderedDict((k[len("module.") :], v) for k, v in sd.items())
    found = False
    for prefix in ("backbone.bottom_up.", "backbone.body.", "backbone."):
        if any(k.startswith(prefix) for k in sd):
            sd = OrderedDict(
                (k[len(prefix) :] if k.startswith(prefix) else k, v) for k, v in sd.items()
            )
            found = True
            break
    # detectron2's C4 models run res5 as the box head (Res5ROIHeads): its weights are ours.
    if any(k.startswith("roi_heads.res5.") for k in sd) and not any(
        k.startswith("res5.") for k in sd
    ):
        sd = OrderedDict(
            (k[len("roi_heads.") :] if k.startswith("roi_heads.res5.") else k, v)
            for k, v in sd.items()
        )
        found = True
    return sd, found


def detect_layout(sd: Mapping[str, Any]) -> str:
    """ "resnet_det", "torchvision" or "caffe2", by which naming most keys follow (prefixes
    already stripped); WeightsError if none does."""
    counts = {
        "resnet_det": sum(bool(_OURS.match(k)) for k in sd),
        "torchvision": sum(bool(_TV.match(k)) for k in sd),
        "caffe2": sum(bool(_C2.match(k)) for k in sd),
    }
    best = max(counts, key=counts.get)
    if counts[best] == 0:
        sample = ", ".join(list(sd)[:5])
        raise WeightsError(
            "resnet_det: cannot recognize the weights layout (expected torchvision, detectron2/"
            f"MSRA or resnet_det names); first keys: {sample or '(none)'}"
        )
    return best


# ---------------------------------------------------------------- torchvision
_TV_TO_OURS = [
    (re.compile(r"^conv1\."), "stem.conv1."),
    (re.compile(r"^bn1\."), "stem.conv1.norm."),
    (
        re.compile(r"^layer(\d)\.(\d+)\.conv(\d)\."),
        lambda m: f"res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.",
    ),
    (
        re.compile(r"^layer(\d)\.(\d+)\.bn(\d)\."),
        lambda m: f"res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.norm.",
    ),
    (
        re.compile(r"^layer(\d)\.(\d+)\.downsample\.0\."),
        lambda m: f"res{int(m[1]) + 1}.{m[2]}.shortcut.",
    ),
    (
        re.compile(r"^layer(\d)\.(\d+)\.downsample\.1\."),
        lambda m: f"res{int(m[1]) + 1}.{m[2]}.shortcut.norm.",
    ),
    (re.compile(r"^fc\."), "linear."),
]
_OURS_TO_TV = [
    (re.compile(r"^stem\.conv1\.norm\."), "bn1."),
    (re.compile(r"^stem\.conv1\."), "conv1."),
    (
        re.compile(r"^res(\d)\.(\d+)\.conv(\d)\.norm\."),
        lambda m: f"layer{int(m[1]) - 1}.{m[2]}.bn{m[3]}.",
    ),
    (
        re.compile(r"^res(\d)\.(\d+)\.conv(\d)\."),
        lambda m: f"layer{int(m[1]) - 1}.{m[2]}.conv{m[3]}.",
    ),
    (
        re.compile(r"^res(\d)\.(\d+)\.shortcut\.norm\."),
        lambda m: f"layer{int(m[1]) - 1}.{m[2]}.downsample.1.",
    ),
    (
        re.compile(r"^res(\d)\.(\d+)\.shortcut\."),
        lambda m: f"layer{int(m[1]) - 1}.{m[2]}.downsample.0.",
    ),
    (re.compile(r"^linear\."), "fc."),
]


def _rename(key: str, rules) -> Optional[str]:
    for pattern, repl in rules:
        m = pattern.match(key)
        if m:
            new = repl(m) if callable(repl) else repl
            return new + key[m.end() :]
    return None


def _vgg_conv_names(num_convs: int):
    if num_convs not in _VGG_BLOCK_SIZES:
        raise WeightsError(
            f"resnet_det: a VGG state dict with {num_convs} conv layers is neither VGG-16 (13) "
            "nor VGG-19 (16)"
        )
    return [
        f"vgg_block{k}.conv{k}_{j}"
        for k, n in enumerate(_VGG_BLOCK_SIZES[num_convs], start=1)
        for j in range(1, n + 1)
    ]


def torchvision_to_resnet_det(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """torchvision ResNet / ResNeXt / Wide ResNet / VGG names -> ours (unknown keys kept)."""
    out: StateDict = OrderedDict()
    conv_idx = sorted(
        {
            int(k.split(".")[1])
            for k, v in sd.items()
            if k.startswith("features.") and k.endswith(".weight") and v.dim() == 4
        }
    )
    vgg_map = {}
    if conv_idx:
        # features.N counts every layer (conv, [bn], relu, pool); convs are the 4-d weights
        # and a BatchNorm (vgg16_bn) sits right after its conv.
        for idx, name in zip(conv_idx, _vgg_conv_names(len(conv_idx))):
            vgg_map[f"features.{idx}."] = name + "."
            vgg_map[f"features.{idx + 1}."] = name + ".norm."
    for key, value in sd.items():
        if key.startswith("features."):
            prefix = ".".join(key.split(".")[:2]) + "."
            new = vgg_map[prefix] + key[len(prefix) :] if prefix in vgg_map else None
        elif key.startswith("classifier."):
            # torchvision: Linear(0), ReLU(1), Dropout(2), Linear(3), ReLU, Dropout, Linear(6).
            idx = key.split(".")[1]
            fc = {"0": "fc6", "3": "fc7", "6": "fc8"}.get(idx)
            new = f"{fc}.{key.split('.', 2)[2]}" if fc else None
        else:
            new = _rename(key, _TV_TO_OURS)
        out[new if new is not None else key] = value
    return out


def resnet_det_to_torchvision(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Our names -> torchvision's; WeightsError for keys torchvision has no name for (the CIFAR
    and pre-activation nets are not torchvision architectures)."""
    out: StateDict = OrderedDict()
    convs = [
        k[: -len(".weight")]
        for k, v in sd.items()
        if k.startswith("vgg_block") and k.endswith(".weight") and v.dim() == 4
    ]
    vgg_map = {}
    if convs:
        with_norm = any(".norm." in k for k in sd if k.startswith("vgg_block"))
        idx = 0
        names = _vgg_conv_names(len(convs))
        for i, name in enumerate(names):
            vgg_map[name + "."] = f"features.{idx}."
            vgg_map[name + ".norm."] = f"features.{idx + 1}."
            idx += 3 if with_norm else 2  # conv, [bn], relu
            if i + 1 == len(names) or names[i + 1].split(".")[0] != name.split(".")[0]:
                idx += 1  # the block's max pool
    bad = []
    for key, value in sd.items():
        if key.startswith("vgg_block"):
            head, _, leaf = key.rpartition(".")
            prefix = head + "."
            new = vgg_map[prefix] + leaf if prefix in vgg_map else None
        elif re.match(r"^fc[678]\.", key):
            new = "classifier." + {"fc6": "0", "fc7": "3", "fc8": "6"}[key[:3]] + key[3:]
        else:
            new = _rename(key, _OURS_TO_TV)
        if new is None:
            bad.append(key)
        else:
            out[new] = value
    if bad:
        raise WeightsError(
            f"resnet_det: {len(bad)} keys have no torchvision name (e.g. {bad[0]!r}); only the "
            "ImageNet ResNet / ResNeXt / Wide ResNet / VGG layouts exist in torchvision"
        )
    return out


# ---------------------------------------------------------------- caffe2 (MSRA / Detectron)
_C2_LEAF = {"w": "weight", "b": "bias", "s": "weight", "rm": "running_mean", "riv": "running_var"}
_C2_BRANCH = {"1": "shortcut", "2a": "conv1", "2b": "conv2", "2c": "conv3"}


def _caffe2_name(key: str) -> Optional[str]:
    m = re.match(r"^conv1_([wb])$", key)
    if m:
        return f"stem.conv1.{_C2_LEAF[m[1]]}"
    m = re.match(r"^(?:res_conv1|conv1)_(?:bn|gn)_(s|b|rm|riv)$", key)
    if m:
        return f"stem.conv1.norm.{_C2_LEAF[m[1]]}"
    m = re.match(r"^res(\d)_(\d+)_branch(1|2[abc])_([wb])$", key)
    if m:
        return f"res{m[1]}.{m[2]}.{_C2_BRANCH[m[3]]}.{_C2_LEAF[m[4]]}"
    m = re.match(r"^res(\d)_(\d+)_branch(1|2[abc])_(?:bn|gn)_(s|b|rm|riv)$", key)
    if m:
        return f"res{m[1]}.{m[2]}.{_C2_BRANCH[m[3]]}.norm.{_C2_LEAF[m[4]]}"
    m = re.match(r"^(?:fc1000|pred)_([wb])$", key)  # some Caffe2 releases name the fc "pred"
    if m:
        return f"linear.{_C2_LEAF[m[1]]}"
    m = re.match(r"^conv(\d)_(\d)_([wb])$", key)
    if m:
        return f"vgg_block{m[1]}.conv{m[1]}_{m[2]}.{_C2_LEAF[m[3]]}"
    m = re.match(r"^(fc[678])_([wb])$", key)
    if m:
        return f"{m[1]}.{_C2_LEAF[m[2]]}"
    return None


def caffe2_to_resnet_det(sd: Mapping[str, torch.Tensor]) -> StateDict:
    """Caffe2 blob names (MSRA ResNets, Detectron) -> ours; unknown keys are kept as they are.

    Mapping as documented by detectron2's c2_model_loading: "_" separates levels, branch1 is
    the shortcut, branch2a/b/c are conv1/2/3, bn_s/bn_b/bn_rm/bn_riv are the norm's
    weight/bias/running_mean/running_var, res_conv1_bn is the stem's norm, fc1000 the
    classifier (also called "pred").
    """
    return OrderedDict((_caffe2_name(k) or k, v) for k, v in sd.items())


# ---------------------------------------------------------------- entry points
def to_resnet_det(
    sd: Mapping[str, torch.Tensor],
    layout: Optional[str] = None,
    meta: Optional[Mapping[str, Any]] = None,
) -> Tuple[StateDict, str]:
    """A flat state dict in any layout -> (our names, the layout it was in).

    The returned layout is "torchvision", "caffe2", "detectron2" (our names under a detection
    prefix, or from a .pkl / detectron2 file) or "resnet_det".
    """
    sd, had_prefix = _strip_prefixes(OrderedDict(sd))
    detected = detect_layout(sd)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"resnet_det: layout={layout!r} is not one of {', '.join(LAYOUTS)}")
    layout = layout or detected
    if layout == "torchvision":
        return torchvision_to_resnet_det(sd), layout
    if layout == "caffe2":
        return caffe2_to_resnet_det(sd), layout
    meta = meta or {}
    from_d2 = had_prefix or meta.get("numpy") or meta.get("__author__") not in (None, "resnet_det")
    return OrderedDict(sd), ("detectron2" if from_d2 else layout)


def convert_state_dict(sd: Mapping[str, Any], to: str = "resnet_det") -> StateDict:
    """Convert a state dict (or a checkpoint dict wrapping one) to the layout ``to``.

    Args:
        sd: weights in any layout this module detects.
        to: "resnet_det", "detectron2" (the same names, which detectron2's matching
            heuristics place under backbone.bottom_up.) or "torchvision".
    Returns:
        {name: tensor} in the target layout.
    """
    if to not in ("resnet_det", "detectron2", "torchvision"):
        raise ValueError(
            f"resnet_det: to={to!r} is not a target layout; choose resnet_det, detectron2 or "
            "torchvision"
        )
    flat, meta = unwrap_checkpoint(sd)
    ours, _ = to_resnet_det(flat, meta=meta)
    if to == "torchvision":
        return resnet_det_to_torchvision(ours)
    return ours

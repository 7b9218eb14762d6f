"""Weight layouts and the key maps between them.

Layouts:
- "resnet_det": our module names (docs/internals.md), which are detectron2's ResNet names.
- "detectron2": the same names, maybe under "backbone.bottom_up." / "backbone." (C4 models
  keep res5 under "roi_heads.res5."), values possibly numpy arrays in a .pkl.
- "caffe2": MSRA / Detectron (Caffe2) blob names, e.g. conv1_w, res_conv1_bn_s,
  res2_0_branch2a_w, res2_0_branch1_bn_b, fc1000_w; VGG conv1_1_w, fc6_w.
- "torchvision": conv1, bn1, layer1.0.conv1, layer1.0.downsample.0/1, fc; VGG features.N /
  classifier.N.

Whole-detector checkpoints of torchvision and detectron2 map to our detector's names
(``detector_to_resnet_det``, the end of this module). Our detector
(resnet_det.modeling.detection.GeneralizedRCNN) names its parts:

    backbone.bottom_up.<our ResNet names> (FPN) / backbone.<our names> (C4, VGG)
    backbone.fpn.{inner,layer}_blocks.<i>.{0,1}   torchvision's FeaturePyramidNetwork (1 = norm)
    rpn.head.{conv.0.0, cls_logits, bbox_pred}    torchvision's RPNHead
    roi_heads.box_head.{fcs.<i>, res5.*, fc6, fc7}
    roi_heads.box_predictor.{cls_score, bbox_pred} torchvision's: class 0 is the background
    roi_heads.mask_head.<i>.{0,1} (convs; C4: mask_head.convs.<i>.*; its res5 is the box head's)
    roi_heads.mask_predictor.{conv5_mask, mask_fcn_logits}  one mask channel per class + background

torchvision's fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn differ in backbone.body.<torchvision
ResNet names> and the box head's fc6 / fc7 (TwoMLPHead). detectron2's GeneralizedRCNN (FPN or C4,
with or without masks) names the FPN backbone.fpn_lateral<L> / fpn_output<L> (L = log2 of the
stride), the RPN proposal_generator.rpn_head.{conv, objectness_logits, anchor_deltas} with the
anchors of a location ordered by size, then aspect ratio (torchvision: aspect ratio, then size),
the C4 head roi_heads.res5, the FPN box head roi_heads.box_head.fc<k>, puts the background LAST
in cls_score and has no background rows in bbox_pred (4 per class, or 4 in all when class-
agnostic) nor a background channel in the mask predictor (roi_heads.mask_head.{mask_fcn<k>,
deconv, predictor}).
"""

import re
from collections import OrderedDict
from typing import Any, Collection, Dict, Mapping, Optional, Tuple

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
    "DETECTOR_LAYOUTS",
    "detect_detector_layout",
    "detector_to_resnet_det",
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


# ---------------------------------------------------------------- whole detectors
DETECTOR_LAYOUTS = ("resnet_det", "torchvision", "detectron2")
# detectron2 buffers that are not weights (older checkpoints saved the normalisation).
_D2_DROP = re.compile(r"^(pixel_mean|pixel_std|proposal_generator\.anchor_generator\.)")


def detect_detector_layout(sd: Mapping[str, Any]) -> str:
    """ "torchvision", "detectron2" or "resnet_det" for a whole-detector state dict."""
    if any(k.startswith("backbone.body.") for k in sd):
        return "torchvision"
    if any(
        k.startswith(
            (
                "proposal_generator.",
                "backbone.fpn_lateral",
                "roi_heads.res5.",
                "roi_heads.mask_head.deconv.",
            )
        )
        for k in sd
    ):
        return "detectron2"
    return "resnet_det"


def _from_torchvision(sd: Mapping[str, torch.Tensor], target: Collection[str]) -> StateDict:
    body = OrderedDict(
        (k[len("backbone.body.") :], v) for k, v in sd.items() if k.startswith("backbone.body.")
    )
    out = OrderedDict(
        ("backbone.bottom_up." + k, v) for k, v in torchvision_to_resnet_det(body).items()
    )
    for key, value in sd.items():
        if key.startswith("backbone.body."):
            continue
        m = re.match(r"^roi_heads\.box_head\.fc([67])\.(.*)$", key)
        if m and key not in target:  # TwoMLPHead's fc6 / fc7 are our FastRCNNConvFCHead's fcs
            key = f"roi_heads.box_head.fcs.{int(m[1]) - 6}.{m[2]}"
        out[key] = value
    return out


def _anchor_order(
    num_anchors: int, anchors_per_location: Optional[Tuple[int, int]]
) -> Optional[torch.Tensor]:
    """Our anchor index -> detectron2's: ours r * S + s, detectron2's s * R + r."""
    if anchors_per_location is None:
        return None
    sizes, ratios = anchors_per_location
    if sizes * ratios != num_anchors or sizes == 1 or ratios == 1:
        return None
    return torch.tensor([s * ratios + r for r in range(ratios) for s in range(sizes)])


def _rpn(name: str, value: torch.Tensor, anchors_per_location) -> Tuple[str, torch.Tensor]:
    leaf = name.rsplit(".", 1)[1]
    if name.startswith("objectness_logits."):
        order = _anchor_order(value.shape[0], anchors_per_location)
        return f"rpn.head.cls_logits.{leaf}", value if order is None else value[order]
    if name.startswith("anchor_deltas."):
        order = _anchor_order(value.shape[0] // 4, anchors_per_location)
        if order is not None:  # 4 deltas per anchor, consecutive in both layouts
            value = value.reshape(-1, 4, *value.shape[1:])[order].reshape(value.shape)
        return f"rpn.head.bbox_pred.{leaf}", value
    return f"rpn.head.conv.0.0.{name[len('conv.') :]}", value


def _box_predictor(name: str, value: torch.Tensor, num_classes: Optional[int]) -> torch.Tensor:
    if name.startswith("cls_score."):  # background from last to first
        return torch.cat([value[-1:], value[:-1]])
    # bbox_pred: no background rows in detectron2; torchvision's are never used, zeros here.
    if value.shape[0] == 4 and num_classes is not None and num_classes > 1:
        # Class-agnostic regression: the same deltas for every class decode the same boxes.
        return torch.cat([torch.zeros_like(value)] + [value] * (num_classes - 1))
    return torch.cat([torch.zeros_like(value[:4]), value])


def _from_detectron2(
    sd: Mapping[str, torch.Tensor],
    target: Collection[str],
    anchors_per_location: Optional[Tuple[int, int]],
) -> StateDict:
    levels = sorted(
        {int(m[1]) for m in (re.match(r"^backbone\.fpn_lateral(\d+)\.", k) for k in sd) if m}
    )
    cls = sd.get("roi_heads.box_predictor.cls_score.weight")
    num_classes = None if cls is None else cls.shape[0]  # including the background
    out = OrderedDict()
    for key, value in sd.items():
        if _D2_DROP.match(key):
            continue
        m = re.match(r"^backbone\.fpn_(lateral|output)(\d+)\.(norm\.)?(.*)$", key)
        mask = re.match(r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(norm\.)?(.*)$", key)
        if m:
            blocks = "inner_blocks" if m[1] == "lateral" else "layer_blocks"
            key = f"backbone.fpn.{blocks}.{levels.index(int(m[2]))}.{1 if m[3] else 0}.{m[4]}"
        elif key.startswith("proposal_generator.rpn_head."):
            key, value = _rpn(
                key[len("proposal_generator.rpn_head.") :], value, anchors_per_location
            )
        elif key.startswith("roi_heads.res5."):
            key = "roi_heads.box_head." + key[len("roi_heads.") :]
        elif re.match(r"^roi_heads\.box_head\.fc\d+\.", key) and key not in target:
            k, rest = re.match(r"^roi_heads\.box_head\.fc(\d+)\.(.*)$", key).groups()
            key = f"roi_heads.box_head.fcs.{int(k) - 1}.{rest}"
        elif key.startswith("roi_heads.box_predictor."):
            value = _box_predictor(key[len("roi_heads.box_predictor.") :], value, num_classes)
        elif mask:
            sub = f"{int(mask[1]) - 1}.{1 if mask[2] else 0}.{mask[3]}"
            key = (
                f"roi_heads.mask_head.convs.{sub}"
                if f"roi_heads.mask_head.convs.{sub}" in target
                else f"roi_heads.mask_head.{sub}"
            )
        elif key.startswith("roi_heads.mask_head.deconv."):
            key = "roi_heads.mask_predictor.conv5_mask." + key[len("roi_heads.mask_head.deconv.") :]
        elif key.startswith("roi_heads.mask_head.predictor."):
            key = (
                "roi_heads.mask_predictor.mask_fcn_logits."
                + key[len("roi_heads.mask_head.predictor.") :]
            )
            if value.shape[0] > 1:  # per-class masks: add torchvision's background channel
                value = torch.cat([torch.zeros_like(value[:1]), value])
        out[key] = value
    return out


def detector_to_resnet_det(
    sd: Mapping[str, torch.Tensor],
    *,
    target_keys: Collection[str],
    anchors_per_location: Optional[Tuple[int, int]] = None,
    layout: Optional[str] = None,
) -> Tuple[StateDict, str]:
    """A whole detector's state dict (torchvision, detectron2 or ours) -> our detector's names.

    Args:
        sd: flat {name: tensor} (``layouts.unwrap_checkpoint`` unwraps checkpoint files).
        target_keys: the state-dict keys of the detector it is for; where a name could map to
            two of our layouts (VGG's fc6 or the FPN head's fcs.0; C4's mask convs), the one
            the detector has is chosen.
        anchors_per_location: (sizes, aspect ratios) of each RPN location, to reorder
            detectron2's RPN outputs when both are above one (C4's 5 sizes x 3 ratios); None
            leaves them in the file's order.
        layout: the source's layout (default: detected).
    Returns:
        (state dict in our names, the source's layout).
    """
    layout = layout or detect_detector_layout(sd)
    if layout not in DETECTOR_LAYOUTS:
        raise ValueError(
            f"resnet_det: detector layout {layout!r} is not one of {', '.join(DETECTOR_LAYOUTS)}"
        )
    target = set(target_keys)
    if layout == "torchvision":
        out = _from_torchvision(sd, target)
    elif layout == "detectron2":
        out = _from_detectron2(sd, target, anchors_per_location)
    else:
        out = OrderedDict(sd)
    # BatchNorm's step counter has no place in a FrozenBN (torchvision's detectors built without
    # weights train plain BN): not a weight, dropped where the detector has none.
    return OrderedDict(
        (k, v)
        for k, v in out.items()
        if not (k.endswith(".num_batches_tracked") and k not in target)
    ), layout

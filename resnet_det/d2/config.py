"""Our config keys in detectron2's CfgNode, and cfg -> kwargs for the plugin's builders.

resnet_det's YAML files use detectron2's key names plus a few of our own (defaults.py).
``add_resnet_det_config`` adds every key of ours that detectron2 lacks, so the same files load
into detectron2's config. Each added key is in exactly one of these tables, so that none is
silently dropped:

- ``HONORED_KEYS``: read by this plugin (backbone/head builders, trainer).
- ``RESTRICTED_KEYS``: built-in-engine features detectron2 lacks; only the listed values
  (detectron2's own behaviour) are accepted, anything else raises.
- ``IGNORED_KEYS``: keys of classification pretraining (tools/pretrain_net.py, built-in
  engine only), which a detection run never reads, whatever their value.

A key of ours in none of them (added to defaults.py later) is rejected by
``check_resnet_det_keys`` when set to anything but its default.
"""

import logging
from typing import Dict, List, Tuple

from detectron2.config import CfgNode as D2CfgNode
from detectron2.config import get_cfg as d2_get_cfg

from ..config import ConfigError, get_cfg, reject_value
from ..modeling.registry import BACKBONES, ROI_HEADS, Registry

__all__ = [
    "add_resnet_det_config",
    "check_resnet_det_keys",
    "shared_default_differences",
    "resolve_for_detectron2",
    "HONORED_KEYS",
    "RESTRICTED_KEYS",
    "IGNORED_KEYS",
    "backbone_aliases",
    "roi_heads_aliases",
    "reject_deformable",
]

logger = logging.getLogger(__name__)

HONORED_KEYS: Dict[str, str] = {
    "MODEL.RESNETS.SHORTCUT": "shortcut option of our ResNet backbone and res5 head",
    "MODEL.RESNETS.PLAIN": "plain (no-shortcut) backbone and res5 head",
    "MODEL.RESNETS.ZERO_INIT_RESIDUAL": "zero-init of each block's last norm",
    "MODEL.VGG.DEPTH": "build_vgg16_backbone (16 or 19)",
    "MODEL.VGG.NORM": "build_vgg16_backbone",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE": "copied to detectron2's TEST.DETECTIONS_PER_IMAGE",
    "INPUT.RANDOM_FLIP_PROB": "probability of the training loader's RandomFlip",
    "TEST.IMS_PER_BATCH": "batch size of the test loader",
    "TEST.VOC_USE_07_METRIC": "checked against the VOC evaluator's year (2007: 11-point)",
    "MODEL.WEIGHTS_INPUT_CONTRACT": "MODEL.WEIGHTS checked against INPUT.FORMAT / MODEL.PIXEL_* at "
    "set-up (resnet_det.checkpoint.resolve_weights_contract)",
    "SOLVER.AMP.DTYPE": "autocast dtype of detectron2's AMPTrainer",
    "LOG_PERIOD": "period of the metric writers",
    "ENGINE": "set to 'detectron2' and saved in OUTPUT_DIR/config.yaml",
}
RESTRICTED_KEYS: Dict[str, Tuple] = {
    # detectron2's mapper raises on an unreadable image, which is our "stop". (Bad mask
    # annotations follow detectron2's reader's own rules: docs/detectron2.md, "Mask R-CNN".)
    "DATALOADER.ON_BAD_IMAGE": ("stop",),
    # detectron2's trainer has no channels_last switch.
    "SOLVER.CHANNELS_LAST": (False,),
    # detectron2's loaders decode in their workers.
    "INPUT.DECODE_DEVICE": ("",),
    # detectron2's DefaultTrainer keeps every periodic checkpoint (no max_to_keep), i.e. 0.
    "SOLVER.CHECKPOINT_KEEP_LAST": (0,),
    # detectron2's trainer raises FloatingPointError at the first non-finite loss, i.e. 0.
    "SOLVER.SKIP_NONFINITE_ITERS": (0,),
    # The error analysis runs in the built-in engine's evaluation; for a detectron2 run, score
    # its coco_instances_results.json with tools/evaluate.py --errors.
    "TEST.ERROR_ANALYSIS": (False,),
}
_CLASSIFICATION = "classification pretraining only (tools/pretrain_net.py, built-in engine)"
_PLATEAU = (
    "read only by SOLVER.LR_SCHEDULER_NAME 'ReduceLROnPlateau', which the detectron2 engine refuses"
)
IGNORED_KEYS: Dict[str, str] = {
    "MODEL.CLASSIFIER.ARCH": _CLASSIFICATION,
    "MODEL.CLASSIFIER.NUM_CLASSES": _CLASSIFICATION,
    "MODEL.CLASSIFIER.LABEL_SMOOTHING": _CLASSIFICATION,
    "INPUT.CLS.CROP_SIZE": _CLASSIFICATION,
    "INPUT.CLS.SCALE_RANGE": _CLASSIFICATION,
    "INPUT.CLS.PAD": _CLASSIFICATION,
    "INPUT.CLS.PCA_LIGHTING": _CLASSIFICATION,
    "INPUT.CLS.TEST_RESIZE": _CLASSIFICATION,
    "INPUT.CLS.PIXEL_MEAN": _CLASSIFICATION,
    "INPUT.CLS.PIXEL_STD": _CLASSIFICATION,
    "TEST.CLS_MODES": _CLASSIFICATION,
    "TEST.CLS_MULTISCALE_SIZES": _CLASSIFICATION,
    "SOLVER.PLATEAU_PATIENCE": _PLATEAU,
    "SOLVER.PLATEAU_METRIC": _PLATEAU,
    "SOLVER.PLATEAU_MODE": _PLATEAU,
}


def _aliases(registry: Registry) -> Dict[str, str]:
    return {entry.name: entry.d2_name for entry in registry if entry.d2_name}


def backbone_aliases() -> Dict[str, str]:
    """The built-in engine's backbone names -> the plugin's, from the backbone registry (an
    entry's ``d2_name``, where detectron2's own builder has its name: build_resnet_backbone ->
    build_resnet_det_backbone), so that our YAML files build our backbone, with SHORTCUT /
    PLAIN / ... applied, under detectron2."""
    return _aliases(BACKBONES)


def roi_heads_aliases() -> Dict[str, str]:
    """The built-in engine's RoI heads names -> the plugin's (Res5ROIHeads ->
    ResNetDetRes5ROIHeads, whose res5 is ours), from the RoI heads registry."""
    return _aliases(ROI_HEADS)


def _plugin_backbone_names() -> Tuple[str, ...]:
    """The names resnet_det.d2 registers in detectron2's BACKBONE_REGISTRY."""
    return tuple(entry.d2_name or entry.name for entry in BACKBONES)


def reject_deformable(cfg) -> None:
    """Raise ConfigError for MODEL.RESNETS.DEFORM_ON_PER_STAGE (a detectron2-only key) when our
    ResNet would silently drop it."""
    if any(cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE):
        reject_value(
            "MODEL.RESNETS.DEFORM_ON_PER_STAGE",
            list(cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE),
            "deformable convs are detectron2's own ResNet (build_resnet_backbone); resnet_det's "
            "backbones are the paper's",
        )


def _leaves(node, prefix: str = "") -> Dict[str, object]:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def _our_only_keys(cfg) -> Dict[str, object]:
    """{key: our default} for our keys that ``cfg`` (detectron2's) does not define."""
    ours = _leaves(get_cfg())
    theirs = set(_leaves(cfg))
    return {k: v for k, v in ours.items() if k not in theirs}


_ADDED_MARK = "_resnet_det_added_keys"


def add_resnet_det_config(cfg: D2CfgNode, *, resnet_det_defaults: bool = False) -> D2CfgNode:
    """Add resnet_det's keys (with our defaults) to detectron2's config ``cfg``, in place.

    Adds every key of resnet_det/config/defaults.py that detectron2 lacks (SHORTCUT, PLAIN,
    ZERO_INIT_RESIDUAL, MODEL.VGG.*, ENGINE, ...); calling it twice is harmless. Returns cfg.

    Args:
        cfg: a detectron2 config (not frozen).
        resnet_det_defaults: also give the keys both define our default where detectron2's
            differs (``shared_default_differences``: MODEL.DEVICE, INPUT sizes, SEED, ...), so
            that a resnet_det YAML means the same under both engines. Off by default: a
            detectron2 project adding our keys keeps detectron2's defaults.
    """
    if cfg.is_frozen():
        raise ConfigError("add_resnet_det_config: the config is frozen; call it before freeze()")
    for key, value in _our_only_keys(cfg).items():
        node = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            if part not in node:
                node[part] = D2CfgNode()
            node = node[part]
        # lists/tuples are copied so that the two configs never share a mutable default
        node[parts[-1]] = type(value)(value) if isinstance(value, (list, tuple)) else value
    if resnet_det_defaults:
        for key, (ours, _) in shared_default_differences().items():
            section, leaf = key.rsplit(".", 1) if "." in key else ("", key)
            node = _get(cfg, section) if section else cfg
            node[leaf] = type(ours)(ours) if isinstance(ours, (list, tuple)) else ours
    return cfg


def shared_default_differences() -> Dict[str, Tuple[object, object]]:
    """{key: (our default, detectron2's default)} for the keys both define with different
    defaults (e.g. MODEL.DEVICE "cpu" vs "cuda", INPUT.MIN_SIZE_TRAIN (600,) vs (800,))."""
    theirs = _leaves(d2_get_cfg())
    out = {}
    for key, ours in _leaves(get_cfg()).items():
        if key not in theirs:
            continue
        a, b = ours, theirs[key]
        if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
            a, b = list(a), list(b)
        if a != b:
            out[key] = (ours, theirs[key])
    return out


def _defaults() -> Dict[str, object]:
    return _leaves(get_cfg())


def check_resnet_det_keys(cfg) -> None:
    """Raise ConfigError for any of our keys whose value the detectron2 engine cannot honor.

    Our keys are the ones ``add_resnet_det_config`` adds. RESTRICTED_KEYS must hold an accepted
    value; a key in no table must keep its default.
    """
    defaults = _defaults()
    for key in _our_only_keys(d2_get_cfg()):
        value = _get(cfg, key)
        if key in RESTRICTED_KEYS:
            if value not in RESTRICTED_KEYS[key]:
                raise ConfigError(
                    f"config {key}={value!r}: the detectron2 engine supports only "
                    f"{list(RESTRICTED_KEYS[key])} (use ENGINE builtin for {value!r})"
                )
        elif key not in HONORED_KEYS and key not in IGNORED_KEYS and value != defaults[key]:
            raise ConfigError(
                f"config {key}={value!r}: resnet_det.d2 does not know this key, so detectron2 "
                f"would ignore it; keep its default {defaults[key]!r} or use ENGINE builtin"
            )


def resolve_for_detectron2(cfg) -> List[str]:
    """Turn a config written for resnet_det into what detectron2 runs, in place (not frozen).

    - our builder names -> the plugin's (``backbone_aliases()``, ROI_HEADS_ALIASES);
    - MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE -> TEST.DETECTIONS_PER_IMAGE;
    - ENGINE = "detectron2";
    - refuses what detectron2 cannot run (classifiers, the plateau schedule, our keys with
      values detectron2 would ignore: ``check_resnet_det_keys``).
    Returns one line per change, for the log.
    """
    notes = []
    if cfg.MODEL.META_ARCHITECTURE != "GeneralizedRCNN":
        raise ConfigError(
            f"config MODEL.META_ARCHITECTURE={cfg.MODEL.META_ARCHITECTURE!r}: the detectron2 "
            "engine "
            "runs detectors ('GeneralizedRCNN'); classification pretraining runs on the built-in "
            "engine (tools/pretrain_net.py)"
        )
    if cfg.SOLVER.LR_SCHEDULER_NAME not in ("WarmupMultiStepLR", "WarmupCosineLR"):
        raise ConfigError(
            f"config SOLVER.LR_SCHEDULER_NAME={cfg.SOLVER.LR_SCHEDULER_NAME!r}: detectron2 has "
            "'WarmupMultiStepLR' and 'WarmupCosineLR' (ReduceLROnPlateau: ENGINE builtin)"
        )
    check_resnet_det_keys(cfg)
    for key, aliases in (
        ("MODEL.BACKBONE.NAME", backbone_aliases()),
        ("MODEL.ROI_HEADS.NAME", roi_heads_aliases()),
    ):
        section, leaf = key.rsplit(".", 1)
        node = _get(cfg, section)
        if node[leaf] in aliases:
            notes.append(f"{key}: {node[leaf]} -> {aliases[node[leaf]]} (resnet_det's)")
            node[leaf] = aliases[node[leaf]]
    if cfg.MODEL.BACKBONE.NAME not in _plugin_backbone_names():
        # detectron2's own backbone: our ResNet options would be dropped, so they must be off.
        for key in (
            "MODEL.RESNETS.SHORTCUT",
            "MODEL.RESNETS.PLAIN",
            "MODEL.RESNETS.ZERO_INIT_RESIDUAL",
        ):
            if _get(cfg, key) != _defaults()[key]:
                raise ConfigError(
                    f"config {key}={_get(cfg, key)!r}: MODEL.BACKBONE.NAME "
                    f"{cfg.MODEL.BACKBONE.NAME!r} is not a resnet_det backbone and ignores it; use "
                    "build_resnet_det_backbone or build_resnet_det_fpn_backbone"
                )
    ours, theirs = cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE, cfg.TEST.DETECTIONS_PER_IMAGE
    if ours != theirs:
        default = _defaults()["MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE"]
        if theirs == default:
            cfg.TEST.DETECTIONS_PER_IMAGE = ours
            notes.append(
                f"TEST.DETECTIONS_PER_IMAGE: {theirs} -> {ours} (from MODEL.ROI_HEADS."
                "DETECTIONS_PER_IMAGE)"
            )
        elif ours != default:
            raise ConfigError(
                f"config MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE={ours} and detectron2's "
                f"TEST.DETECTIONS_PER_IMAGE={theirs} disagree; set one of them"
            )
    if cfg.ENGINE != "detectron2":
        notes.append(f"ENGINE: {cfg.ENGINE} -> detectron2")
        cfg.ENGINE = "detectron2"
    return notes

"""The detectron2 plugin: resnet_det backbones and heads in detectron2's registries.

    import resnet_det.d2                     # registers the names below
    from detectron2.config import get_cfg
    cfg = get_cfg()
    resnet_det.d2.add_resnet_det_config(cfg)
    cfg.merge_from_file("configs/faster_rcnn_R101.yaml", allow_unsafe=False)

Registered: BACKBONE_REGISTRY build_resnet_det_backbone, build_resnet_det_fpn_backbone,
build_vgg16_backbone, and every other entry of resnet_det's backbone registry
(resnet_det.modeling.registry.BACKBONES, also those added later); ROI_HEADS_REGISTRY
ResNetDetRes5ROIHeads; ROI_BOX_HEAD_REGISTRY VGGFCHead. ``resnet_det.d2.train`` runs a config
under detectron2's DefaultTrainer. With MODEL.MASK_ON the model is detectron2's Mask R-CNN on
these backbones (detectron2's mask head; for C4 on our res5 in ResNetDetRes5ROIHeads).

detectron2 publishes no installable package for current PyTorch (docs/engines.md, "Why two
engines"), so this is the one part of resnet_det that needs it; ``import resnet_det`` never
imports this package.
"""

INSTALL_HINT = (
    "resnet_det.d2 needs detectron2, which is not importable here. detectron2 publishes no "
    "package for current PyTorch; build it from source into the environment that has torch:\n"
    "    pip install 'setuptools<81'   # detectron2's model_zoo still imports pkg_resources\n"
    "    pip install --no-build-isolation 'git+https://github.com/facebookresearch/detectron2.git'\n"
    "or from a checkout:\n"
    "    git clone https://github.com/facebookresearch/detectron2 && "
    "pip install --no-build-isolation ./detectron2\n"
    "(a CPU build takes a few minutes). Without detectron2, run the built-in engine: "
    "ENGINE builtin (the default) or tools/train_net.py --engine builtin."
)

try:
    import detectron2  # noqa: F401

    # The compiled parts and the registries: a broken build fails here, not in the middle
    # of a training run.
    from detectron2 import modeling as _d2_modeling  # noqa: F401
except ImportError as e:  # also ModuleNotFoundError and sys.modules["detectron2"] = None
    raise ImportError(f"{INSTALL_HINT}\n(import failed: {e})") from e

from .backbone import (  # noqa: E402
    ResNetDetBackbone,
    VGGDetBackbone,
    build_resnet_det_backbone,
    build_resnet_det_fpn_backbone,
    build_vgg16_backbone,
    detectron2_class,
)
from .checkpoint import SafeDetectionCheckpointer  # noqa: E402
from .config import add_resnet_det_config, check_resnet_det_keys, resolve_for_detectron2  # noqa: E402
from .roi_heads import ResNetDetRes5ROIHeads, VGGFCHead  # noqa: E402

__all__ = [
    "INSTALL_HINT",
    "add_resnet_det_config",
    "check_resnet_det_keys",
    "resolve_for_detectron2",
    "build_resnet_det_backbone",
    "build_resnet_det_fpn_backbone",
    "build_vgg16_backbone",
    "ResNetDetBackbone",
    "VGGDetBackbone",
    "detectron2_class",
    "ResNetDetRes5ROIHeads",
    "VGGFCHead",
    "SafeDetectionCheckpointer",
]

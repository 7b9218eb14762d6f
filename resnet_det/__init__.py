"""resnet_det: the ResNets of "Deep Residual Learning for Image Recognition" (He et al., 2015)
for classification and detection.

    import resnet_det
    model = resnet_det.create_model("resnet50")           # paper layout, random weights
    resnet_det.load_weights(model, "R-50.pkl")             # torchvision / detectron2 / MSRA
    predictor = resnet_det.Predictor("configs/demo/faster_rcnn_shapes.yaml")  # a trained detector
    result = predictor("photo.jpg")                        # boxes, scores, labels, class_names

Importing this package is cheap: the entry points are loaded on first use (PEP 562), so
``import resnet_det`` (e.g. for resnet_det.config) does not import torch, and nothing here ever
imports detectron2.
"""

from typing import TYPE_CHECKING

from .utils.lazy import lazy_attributes

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "load_weights", "Predictor", "__version__"]

_LAZY = {
    "create_model": "resnet_det.modeling.zoo",
    "list_models": "resnet_det.modeling.zoo",
    "load_weights": "resnet_det.checkpoint.weights",
    "Predictor": "resnet_det.predictor",
}

if TYPE_CHECKING:  # pragma: no cover
    from .checkpoint.weights import load_weights
    from .modeling.zoo import create_model, list_models
    from .predictor import Predictor


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())

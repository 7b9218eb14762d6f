"""resnet_det: the ResNets of "Deep Residual Learning for Image Recognition" (He et al., 2015)
for classification and detection.

    import resnet_det
    model = resnet_det.create_model("resnet50")           # paper layout, random weights
    resnet_det.load_weights(model, "R-50.pkl")             # torchvision / detectron2 / MSRA

Importing this package is cheap and never imports detectron2.
"""
from .checkpoint import load_weights
from .modeling.zoo import create_model, list_models

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "load_weights", "__version__"]

"""Using a trained detector on one's own images: ``Predictor`` (the Python API, exported as
``resnet_det.Predictor``) and what tools/predict.py runs (inputs, drawing, results files).
docs/deployment.md describes both."""

from .inputs import expand_inputs, to_image_tensor
from .predictor import PRECISIONS, Predictor, class_names_of, resolve_weights

__all__ = [
    "Predictor",
    "PRECISIONS",
    "class_names_of",
    "resolve_weights",
    "expand_inputs",
    "to_image_tensor",
]

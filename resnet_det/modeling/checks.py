"""Argument checks shared by the networks' constructors.

Each raises ValueError naming the argument and what it accepts; the config builders turn that
into a ConfigError naming the config key (resnet_det.modeling.registry).
"""

from typing import List, Optional, Sequence

__all__ = ["check_bool", "check_positive_int", "check_num_classes", "resolve_out_features"]


def check_bool(name: str, value) -> None:
    """``value`` must be True or False (not 0/1: a flag given a number is a mistake)."""
    if not isinstance(value, bool):
        raise ValueError(f"resnet_det: {name}={value!r} must be True or False")


def check_positive_int(name: str, value) -> None:
    """``value`` must be an int >= 1 (bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"resnet_det: {name}={value!r} must be a positive int")


def check_num_classes(num_classes) -> None:
    """A classifier's outputs (a positive int), or None for a backbone that returns features."""
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
    ):
        raise ValueError(
            f"resnet_det: num_classes={num_classes!r} must be a positive int, or None for a "
            "backbone that returns features"
        )


def resolve_out_features(
    out_features: Optional[Sequence[str]], valid: Sequence[str], num_classes: Optional[int]
) -> List[str]:
    """The requested feature names, checked against ``valid``; default: the last one
    (backbone mode). A classifier (``num_classes`` set) takes no ``out_features``."""
    if out_features is not None and num_classes is not None:
        raise ValueError(
            f"resnet_det: out_features={list(out_features)!r} is for backbones, but "
            f"num_classes={num_classes} builds a classifier that returns logits; pass "
            "num_classes=None to get features"
        )
    if out_features is None:
        return [valid[-1]]
    if isinstance(out_features, str):
        out_features = [out_features]
    out_features = list(out_features)
    bad = [f for f in out_features if f not in valid]
    if bad or not out_features:
        raise ValueError(
            f"resnet_det: out_features={out_features!r} has unknown names {bad!r}; choose from "
            + ", ".join(valid)
        )
    return out_features

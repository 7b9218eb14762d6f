"""The input contract of a set of weights: the channel order and the per-channel mean and std
of the pixels (0-255) the network was trained on.

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
MODEL.PIXEL_MEAN, MODEL.PIXEL_STD) under MODEL.WEIGHTS_INPUT_CONTRACT (resnet_det.checkpoint.
detector): "check" stops with the keys to set, "adopt" takes the weights' values, "ignore"
does neither.
"""

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..utils.errors import WeightsError
from .layouts import to_resnet_det

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
]

logger = logging.getLogger(__name__)

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
    must already hold the weights' values (``resolve_weights_contract`` sets them before
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
            "loaders are built (resnet_det.checkpoint.resolve_weights_contract(cfg), which "
            "default_setup runs)"
        )
    raise WeightsError(
        f"MODEL.WEIGHTS={weights} expects input {found} ({how}), but the config feeds "
        f"{expected} ({', '.join(keys)}): the detector would train on wrongly normalised "
        f"images. Set  {found.overrides(differ, keys)}  (or MODEL.WEIGHTS_INPUT_CONTRACT adopt to "
        "take "
        "the weights' values, ignore to keep the config's)"
    )

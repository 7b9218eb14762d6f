"""MODEL.WEIGHTS for the built-in detector: a whole detector checkpoint, or ImageNet weights
for its backbone and ImageNet-named box head, checked against the input the config feeds
(the weights' input contract, resnet_det.checkpoint.weights).

The contract is read once per run: under MODEL.WEIGHTS_INPUT_CONTRACT "check" the loader
compares the contract of what it loads (``load_pretrained_weights``); "adopt" needs the
weights' values in the config before it is saved and anything is built, so set-up reads them
(``adopt_weights_contract``); an engine whose loader does not check (the detectron2 plugin's)
reads and compares at set-up (``resolve_weights_contract``).

The detector is not imported: anything with ``state_dict`` / ``load_state_dict`` and
``pretrained_view()`` (resnet_det.modeling.detection.GeneralizedRCNN) is loaded, so the
checkpoint package stays below the modeling package. The functions taking ``cfg`` read only
MODEL.WEIGHTS, MODEL.WEIGHTS_INPUT_CONTRACT, INPUT.FORMAT, MODEL.PIXEL_MEAN and
MODEL.PIXEL_STD.
"""

import logging
import os
from typing import Any, Mapping, Optional, Tuple, Union

from torch import nn

from ..utils.errors import WeightsError
from .layouts import detector_to_resnet_det, unwrap_checkpoint
from .weights import (
    CONTRACT_POLICIES,
    DETECTOR_CONTRACT_KEYS,
    InputContract,
    PathLike,
    WeightsMismatchError,
    compare_input_contract,
    contract_of,
    load_weights,
    read_checkpoint,
)

__all__ = [
    "load_pretrained_weights",
    "read_weights_contract",
    "detector_input_contract",
    "check_weights_contract",
    "adopt_weights_contract",
    "resolve_weights_contract",
]

logger = logging.getLogger(__name__)

# Keys of a detector's heads (ours and torchvision's; detectron2's RPN): a state dict with
# them is a whole detector's checkpoint.
_DETECTOR_HEADS = ("rpn.", "roi_heads.", "proposal_generator.")


def _anchors_per_location(model: nn.Module):
    """(sizes, aspect ratios) per RPN location of a detector with torchvision's AnchorGenerator."""
    generator = getattr(getattr(model, "rpn", None), "anchor_generator", None)
    sizes, ratios = getattr(generator, "sizes", None), getattr(generator, "aspect_ratios", None)
    if not sizes or not ratios:
        return None
    return len(sizes[0]), len(ratios[0])


def _describe(source) -> str:
    return repr(str(source)) if not isinstance(source, dict) else "<state dict>"


def load_pretrained_weights(
    model: nn.Module,
    source: Union[PathLike, Mapping[str, Any]],
    *,
    input_contract: Optional[InputContract] = None,
    contract_policy: str = "check",
    log: logging.Logger = logger,
):
    """Load MODEL.WEIGHTS into the detector.

    A checkpoint of this detector (keys under backbone. / rpn. / roi_heads., e.g. a
    model_final.pth for --eval-only), or of the same detector as torchvision or detectron2 name
    it (torchvision's fasterrcnn_resnet50_fpn / maskrcnn_resnet50_fpn, detectron2's Faster / Mask
    R-CNN, C4 or FPN; ``layouts.detector_to_resnet_det``), loads whole and strictly. Anything
    else is taken as ImageNet-pretrained weights for the backbone and its ImageNet-named
    box-head parts (res5 for C4, fc6/fc7 for VGG), in any layout ``resnet_det.load_weights``
    reads; parts with no ImageNet counterpart (FPN, RPN, predictor) keep their initialisation.
    A backbone or box-head key the source lacks raises with the keys named: a silently random
    backbone would waste a training run.

    Before anything is loaded, the weights' input contract is compared with
    ``input_contract``, the input the detector is fed (``detector_input_contract(cfg)``),
    under ``contract_policy`` (MODEL.WEIGHTS_INPUT_CONTRACT; ``weights.compare_input_contract``).

    Args:
        model: the detector (unwrapped, not DDP): a GeneralizedRCNN.
        source: a path or a state dict.
        input_contract: what the config feeds the detector; None: not checked.
        contract_policy: "check", "adopt" or "ignore".
        log: where to report what was loaded.
    Returns:
        ``resnet_det.checkpoint.LoadResult`` (ImageNet weights) or torch's incompatible-keys
        result (detector checkpoints).
    Raises:
        WeightsMismatchError: the weights do not fit (another detector, missing backbone keys,
            shapes).
        WeightsError: their input contract differs from ``input_contract`` under "check".
    """
    flat, meta = unwrap_checkpoint(read_checkpoint(source))
    if input_contract is not None:
        found, how = contract_of(flat, meta, _describe(source))
        compare_input_contract(
            input_contract, found, how, policy=contract_policy, weights=_describe(source), log=log
        )
    own = model.state_dict()
    if any(k.startswith(_DETECTOR_HEADS) for k in flat):
        # torchvision's and detectron2's detectors load by name mapping.
        flat, layout = detector_to_resnet_det(
            flat, target_keys=own, anchors_per_location=_anchors_per_location(model)
        )
        missing = [k for k in own if k not in flat]
        unexpected = [k for k in flat if k not in own]
        if missing or unexpected:
            raise WeightsMismatchError(
                f"MODEL.WEIGHTS={_describe(source)} is a detector checkpoint ({layout} layout) of "
                f"another model: missing {missing[:10]}, unexpected {unexpected[:10]}"
            )
        bad = [k for k in own if tuple(own[k].shape) != tuple(flat[k].shape)]
        if bad:
            raise WeightsMismatchError(
                f"MODEL.WEIGHTS={_describe(source)}: shape mismatch for {bad[:10]} "
                f"(e.g. {bad[0]}: checkpoint {tuple(flat[bad[0]].shape)}, model "
                f"{tuple(own[bad[0]].shape)})"
            )
        log.info(
            "MODEL.WEIGHTS: loaded a full detector checkpoint (%s layout) %s",
            layout,
            _describe(source),
        )
        return model.load_state_dict(flat, strict=True)
    result = load_weights(model.pretrained_view(), flat, strict=False)
    if result.missing_keys:
        raise WeightsMismatchError(
            f"MODEL.WEIGHTS={_describe(source)}: the weights ({result.layout} layout) lack "
            f"{len(result.missing_keys)} backbone/box-head keys, e.g. {result.missing_keys[:10]}"
        )
    if result.unexpected_keys:
        log.info(
            "MODEL.WEIGHTS: entries with no place in the detector (classifier head etc.): %s",
            result.unexpected_keys[:20],
        )
    log.info(
        "MODEL.WEIGHTS: ImageNet weights (%s layout) loaded into the backbone and box head from %s",
        result.layout,
        _describe(source),
    )
    return result


# ---------------------------------------------------------------- from the config
def read_weights_contract(path: PathLike) -> Tuple[Optional[InputContract], str]:
    """The input contract of the weights file ``path`` and how it is known ((None, why) if
    unknown); the file is read."""
    path = os.fspath(path)
    flat, meta = unwrap_checkpoint(read_checkpoint(path))
    return contract_of(flat, meta, repr(path))


def detector_input_contract(cfg) -> InputContract:
    """The input the config feeds the detector: INPUT.FORMAT, MODEL.PIXEL_MEAN, MODEL.PIXEL_STD."""
    try:
        return InputContract(
            cfg.INPUT.FORMAT, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD, origin="the config"
        )
    except ValueError as e:
        raise WeightsError(f"config {', '.join(DETECTOR_CONTRACT_KEYS)}: {e}") from None


def _contract_applies(cfg) -> bool:
    """MODEL.WEIGHTS_INPUT_CONTRACT is valid, and MODEL.WEIGHTS is a detector's weights file
    (its absence is reported by the loader) whose contract the policy reads."""
    path, policy = cfg.MODEL.WEIGHTS, cfg.MODEL.WEIGHTS_INPUT_CONTRACT
    if policy not in CONTRACT_POLICIES:
        raise WeightsError(
            f"config MODEL.WEIGHTS_INPUT_CONTRACT={policy!r}: choose one of "
            f"{list(CONTRACT_POLICIES)}"
        )
    return (
        policy != "ignore"
        and cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN"
        and bool(path)
        and os.path.isfile(path)
    )


def _adopt(cfg, found: Optional[InputContract], how: str, log: logging.Logger) -> None:
    """Set INPUT.FORMAT, MODEL.PIXEL_MEAN and MODEL.PIXEL_STD to ``found`` (in place; a frozen
    config is unfrozen for it and frozen again)."""
    path = cfg.MODEL.WEIGHTS
    if found is None:
        raise WeightsError(
            f"config MODEL.WEIGHTS_INPUT_CONTRACT adopt: {how}, so there is nothing to adopt. "
            f"Set {', '.join(DETECTOR_CONTRACT_KEYS)} to the input the weights were trained "
            "on and use MODEL.WEIGHTS_INPUT_CONTRACT check"
        )
    expected = detector_input_contract(cfg)
    differ = found.differing_keys(expected)
    if not differ:
        return
    frozen = cfg.is_frozen()
    cfg.defrost()
    cfg.INPUT.FORMAT = found.format
    cfg.MODEL.PIXEL_MEAN = list(found.pixel_mean)
    cfg.MODEL.PIXEL_STD = list(found.pixel_std)
    if frozen:
        cfg.freeze()
    log.warning(
        "MODEL.WEIGHTS_INPUT_CONTRACT adopt: the detector is fed %s (%s), the input "
        "contract of %s (%s), instead of the config's %s",
        found,
        ", ".join(differ),
        path,
        found.origin,
        expected,
    )


def _read(cfg) -> Optional[Tuple[Optional[InputContract], str]]:
    return read_weights_contract(cfg.MODEL.WEIGHTS) if _contract_applies(cfg) else None


def _compare(cfg, found: Optional[InputContract], how: str, log: logging.Logger) -> None:
    if cfg.MODEL.WEIGHTS_INPUT_CONTRACT == "check":
        compare_input_contract(
            detector_input_contract(cfg),
            found,
            how,
            policy="check",
            weights=repr(cfg.MODEL.WEIGHTS),
            log=log,
        )


def check_weights_contract(cfg, *, log: logging.Logger = logger) -> Optional[InputContract]:
    """Read MODEL.WEIGHTS's input contract and compare it with the config's (the config is not
    changed).

    Under MODEL.WEIGHTS_INPUT_CONTRACT "check", a mismatch raises WeightsError naming both
    contracts and the keys to set, and an unknown contract is a warning; under "adopt" nothing
    is raised. Nothing is read when MODEL.WEIGHTS is empty or not a file, the policy is
    "ignore" or the config is not a detector's.

    Returns:
        The weights' contract (None when unknown or not read).
    """
    read = _read(cfg)
    if read is None:
        return None
    _compare(cfg, *read, log)
    return read[0]


def adopt_weights_contract(cfg, *, log: logging.Logger = logger) -> Optional[InputContract]:
    """Under MODEL.WEIGHTS_INPUT_CONTRACT "adopt", read MODEL.WEIGHTS's input contract and set
    INPUT.FORMAT, MODEL.PIXEL_MEAN and MODEL.PIXEL_STD in ``cfg`` to it (in place). Call it
    once at set-up, before the config is saved and before the detector or a loader is built
    (engine.default_setup does); under the other policies nothing is read.

    Raises:
        WeightsError: the weights' contract is unknown (there is nothing to adopt: set the keys
            yourself, with "check").
    """
    if not _contract_applies(cfg) or cfg.MODEL.WEIGHTS_INPUT_CONTRACT != "adopt":
        return None
    found, how = read_weights_contract(cfg.MODEL.WEIGHTS)
    _adopt(cfg, found, how, log)
    return found


def resolve_weights_contract(cfg, *, log: logging.Logger = logger) -> Optional[InputContract]:
    """``check_weights_contract`` and ``adopt_weights_contract`` with one read of the file, for
    the engines whose weights loader does not check the contract (the detectron2 plugin's, the
    Predictor's). Call it once at set-up, before the config is saved."""
    read = _read(cfg)
    if read is None:
        return None
    _compare(cfg, *read, log)
    if cfg.MODEL.WEIGHTS_INPUT_CONTRACT == "adopt":
        _adopt(cfg, *read, log)
    return read[0]

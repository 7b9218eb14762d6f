"""MODEL.WEIGHTS for the built-in detector: a whole detector checkpoint, or ImageNet weights
for its backbone and ImageNet-named box head.

The detector is not imported: anything with ``state_dict`` / ``load_state_dict`` and
``pretrained_view()`` (resnet_det.modeling.detection.GeneralizedRCNN) is loaded, so the
checkpoint package stays below the modeling package.
"""
import logging
from typing import Any, Mapping, Union

from torch import nn

from .layouts import unwrap_checkpoint
from .weights import PathLike, WeightsMismatchError, load_weights, read_checkpoint

__all__ = ["load_pretrained_weights"]

logger = logging.getLogger(__name__)

# Keys of our detector's own heads: a state dict with them is a detector checkpoint.
_DETECTOR_HEADS = ("rpn.", "roi_heads.")


def _describe(source) -> str:
    return repr(str(source)) if not isinstance(source, dict) else "<state dict>"


def load_pretrained_weights(model: nn.Module, source: Union[PathLike, Mapping[str, Any]], *,
                            log: logging.Logger = logger):
    """Load MODEL.WEIGHTS into the detector.

    A checkpoint of this detector (keys under backbone. / rpn. / roi_heads., e.g. a
    model_final.pth for --eval-only) loads whole and strictly. Anything else is taken as
    ImageNet-pretrained weights for the backbone and its ImageNet-named box-head parts (res5 for
    C4, fc6/fc7 for VGG), in any layout ``resnet_det.load_weights`` reads; parts with no
    ImageNet counterpart (FPN, RPN, predictor) keep their initialisation. A backbone or box-head
    key the source lacks raises with the keys named: a silently random backbone would waste a
    training run.

    Args:
        model: the detector (unwrapped, not DDP): a GeneralizedRCNN.
        source: a path or a state dict.
        log: where to report what was loaded.
    Returns:
        ``resnet_det.checkpoint.LoadResult`` (ImageNet weights) or torch's incompatible-keys
        result (detector checkpoints).
    Raises:
        WeightsMismatchError: the weights do not fit (another detector, missing backbone keys,
            shapes).
    """
    flat, _ = unwrap_checkpoint(read_checkpoint(source))
    own = model.state_dict()
    if any(k.startswith(_DETECTOR_HEADS) for k in flat):
        missing = [k for k in own if k not in flat]
        unexpected = [k for k in flat if k not in own]
        if missing or unexpected:
            raise WeightsMismatchError(
                f"MODEL.WEIGHTS={_describe(source)} is a detector checkpoint of another model: "
                f"missing {missing[:10]}, unexpected {unexpected[:10]}"
            )
        bad = [k for k in own if tuple(own[k].shape) != tuple(flat[k].shape)]
        if bad:
            raise WeightsMismatchError(
                f"MODEL.WEIGHTS={_describe(source)}: shape mismatch for {bad[:10]} "
                f"(e.g. {bad[0]}: checkpoint {tuple(flat[bad[0]].shape)}, model {tuple(own[bad[0]].shape)})"
            )
        log.info("MODEL.WEIGHTS: loaded a full detector checkpoint %s", _describe(source))
        return model.load_state_dict(flat, strict=True)
    result = load_weights(model.pretrained_view(), flat, strict=False)
    if result.missing_keys:
        raise WeightsMismatchError(
            f"MODEL.WEIGHTS={_describe(source)}: the weights ({result.layout} layout) lack "
            f"{len(result.missing_keys)} backbone/box-head keys, e.g. {result.missing_keys[:10]}"
        )
    if result.unexpected_keys:
        log.info("MODEL.WEIGHTS: entries with no place in the detector (classifier head etc.): %s",
                 result.unexpected_keys[:20])
    log.info("MODEL.WEIGHTS: ImageNet weights (%s layout) loaded into the backbone and box head from %s",
             result.layout, _describe(source))
    return result

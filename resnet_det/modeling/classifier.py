"""ImageClassifier: a create_model() network wrapped to the trainer contract
(docs/internals.md): ``model(batch)`` returns {"loss_cls": ...} in train mode and logits in
eval mode. ``build_image_classifier`` builds it from the description of its network (the
MODEL.META_ARCHITECTURE "ImageClassifier" entry; ``resnet_det.modeling.build_model``)."""

from typing import Any, Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import ArgumentError
from .registry import ModelDescription

__all__ = ["ImageClassifier", "build_image_classifier", "check_label_smoothing"]


def check_label_smoothing(label_smoothing) -> None:
    """``label_smoothing`` must be in [0, 1)."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ArgumentError(
            "label_smoothing", f"label_smoothing must be in [0, 1), got {label_smoothing}"
        )


class ImageClassifier(nn.Module):
    """Cross-entropy classification around a network that maps images to logits.

    Args:
        net: images [B, 3, H, W] -> logits [B, num_classes] (e.g. resnet_det.create_model()).
        label_smoothing: label smoothing of the loss (0 in the paper; 0.1 in modern recipes).
        channels_last: feed the input in channels_last memory format (faster convolutions
            with AMP on recent GPUs); the net should be converted too (build_classifier does).
    """

    def __init__(
        self, *, net: nn.Module, label_smoothing: float = 0.0, channels_last: bool = False
    ):
        super().__init__()
        check_label_smoothing(label_smoothing)
        self.net = net
        self.label_smoothing = float(label_smoothing)
        self.channels_last = bool(channels_last)
        # Top-1 error (percent) of the last training batch, read by the trainer for the
        # training-error curves of Fig. 4/6 (kept as a tensor: no device sync in forward).
        self.last_train_error: Optional[torch.Tensor] = None

    # The checkpoint holds the network's own keys ("stem.conv1.weight", "linear.weight": the
    # resnet_det layout of docs/internals.md), so load_weights and tools/convert_weights.py
    # read a pretraining checkpoint like any other classifier's weights.
    def state_dict(self, *args, **kwargs):
        return self.net.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        return self.net.load_state_dict(state_dict, strict=strict, assign=assign)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def forward(self, batch: Union[Dict[str, Any], torch.Tensor]):
        images = batch["image"] if isinstance(batch, dict) else batch
        images = images.to(self.device, non_blocking=True)
        if self.channels_last and images.is_cuda:
            # The engine converts the weights on CUDA only (SimpleTrainer), so do the input.
            images = images.contiguous(memory_format=torch.channels_last)
        if not self.training:
            return self.net(images)
        if not isinstance(batch, dict) or "label" not in batch:
            raise ValueError(
                "ImageClassifier in train mode needs a batch dict with 'image' and 'label'"
            )
        labels = batch["label"].to(self.device, non_blocking=True)
        if labels.numel() == 0:
            # Every image of the batch was skipped as unreadable: a zero loss that still touches
            # every parameter, so DDP's gradient reduction stays in step across processes.
            return {"loss_cls": sum(p.sum() * 0.0 for p in self.parameters())}
        logits = self.net(images)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=self.label_smoothing)
        with torch.no_grad():
            self.last_train_error = (logits.argmax(dim=1) != labels).float().mean() * 100.0
        return {"loss_cls": loss}


def build_image_classifier(
    *,
    net: ModelDescription,
    label_smoothing: float = 0.0,
    channels_last: bool = False,
    device: str = "cpu",
) -> ImageClassifier:
    """The network ``net`` describes (an entry of the classifier registry), moved to
    ``device`` and wrapped in ImageClassifier (see its Args)."""
    network = net.build().to(torch.device(device))
    return ImageClassifier(
        net=network, label_smoothing=label_smoothing, channels_last=channels_last
    )

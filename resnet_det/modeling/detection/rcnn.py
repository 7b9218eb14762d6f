"""Faster R-CNN (Ren et al., 2015) as the paper uses it for detection (Sec. 4.3, Appendix A),
assembled from torchvision.models.detection parts: the RPN (anchor generator, RPNHead,
RegionProposalNetwork) and RoIHeads (fg/bg sampling, box coder, losses, per-class NMS), with
our backbone, RoI pooler and box head plugged in.

With a mask branch in its RoIHeads (mask_roi_pool / mask_head / mask_predictor) it is Mask
R-CNN (He et al., 2017): torchvision's mask loss in training, per-box mask probabilities pasted
into the original image in eval.

Model I/O follows docs/internals.md ("Detector I/O"): a list of mapper dicts in; in training a
dict of losses with detectron2's names, in eval one dict per image with "boxes" (XYXY, original
image coordinates), "scores", 0-based "labels" and, with masks, "masks".
"""

from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads, paste_masks_in_image
from torchvision.models.detection.rpn import RegionProposalNetwork

from ...utils.errors import ArgumentError
from ..backbone import Backbone
from ..registry import ModelDescription
from .sampling import SeededBalancedSampler, image_seed

__all__ = [
    "GeneralizedRCNN",
    "LOSS_NAMES",
    "build_generalized_rcnn",
    "check_generalized_rcnn_arguments",
]

# torchvision's loss names -> detectron2's (metrics.json and the logs use these).
LOSS_NAMES = {
    "loss_objectness": "loss_rpn_cls",
    "loss_rpn_box_reg": "loss_rpn_loc",
    "loss_classifier": "loss_cls",
    "loss_box_reg": "loss_box_reg",
    "loss_mask": "loss_mask",
}


def _shared_modules(model: nn.Module) -> Dict[str, str]:
    """Second and later paths of a module reachable twice ("roi_heads.mask_head.res5." for the
    C4 mask head's res5) -> its first path ("roi_heads.box_head.res5."), prefixes with dots."""
    first: Dict[int, str] = {}
    aliases: Dict[str, str] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        if any(name.startswith(a) for a in aliases):
            continue  # inside an alias already listed
        if id(m) in first:
            aliases[name + "."] = first[id(m)] + "."
        else:
            first[id(m)] = name
    return aliases


def _drop_shared_keys(model: nn.Module, state_dict, prefix: str, local_metadata) -> None:
    """state_dict hook: a shared module's tensors once, under its first path."""
    for alias in _shared_modules(model):
        for key in [k for k in state_dict if k.startswith(prefix + alias)]:
            del state_dict[key]


def _fill_shared_keys(model: nn.Module, state_dict, prefix: str, *args) -> None:
    """load_state_dict pre-hook: the shared module's entries for its other paths too."""
    for alias, canonical in _shared_modules(model).items():
        for key in [k for k in state_dict if k.startswith(prefix + canonical)]:
            state_dict.setdefault(prefix + alias + key[len(prefix + canonical) :], state_dict[key])


def _bad_image_message(i: int, x: Dict, img: Tensor) -> str:
    return (
        f"GeneralizedRCNN: input {i} (image_id {x.get('image_id')!r}) 'image' must be a "
        f"[3, H, W] tensor, got shape {tuple(img.shape)}"
    )


def check_generalized_rcnn_arguments(
    *,
    pixel_mean: Sequence[float],
    pixel_std: Sequence[float],
    input_format: str = "BGR",
    **_,
) -> None:
    """The checks of the detector's own arguments: the input's channel order, and one mean and
    one (positive) std per channel in that order."""
    if input_format not in ("BGR", "RGB"):
        raise ArgumentError(
            "input_format",
            f"GeneralizedRCNN: input_format={input_format!r}: choose one of ['BGR', 'RGB']",
        )
    for name, values in (("pixel_mean", pixel_mean), ("pixel_std", pixel_std)):
        if len(values) != 3 or (name == "pixel_std" and min(values) <= 0):
            raise ArgumentError(
                name,
                f"GeneralizedRCNN: {name}={list(values)} needs 3 values in input_format "
                "channel order (std > 0)",
            )


class GeneralizedRCNN(nn.Module):
    """Backbone -> RPN -> RoI heads, with detectron2-style input batching.

    Args:
        backbone: a Backbone (forward -> dict of named features, output_shape()).
        rpn: a torchvision RegionProposalNetwork whose anchor generator has one entry per name
            in ``rpn_in_features``.
        roi_heads: a torchvision RoIHeads whose box_roi_pool takes the backbone's feature dict.
        rpn_in_features: backbone features the RPN runs on, in anchor-generator order.
        roi_in_features: backbone features the RoI pooler reads.
        pixel_mean, pixel_std: per-channel normalisation in ``input_format`` channel order.
        input_format: channel order of the input images ("BGR" or "RGB"); informational, the
            mapper already delivers this order.
        size_divisibility: pad the batch so both sides are multiples of this (at least the
            largest feature stride, so anchors and pooled RoIs line up exactly).
        sampling_seed: if set, the RPN and RoI fg/bg samplers draw per image from a generator
            seeded by (sampling_seed, iteration, image_id) instead of the global RNG, so a
            batch split over processes sees the same draws as one process
            (docs/reproducibility.md).
    """

    def __init__(
        self,
        *,
        backbone: Backbone,
        rpn: RegionProposalNetwork,
        roi_heads: RoIHeads,
        rpn_in_features: Sequence[str],
        roi_in_features: Sequence[str],
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        input_format: str = "BGR",
        size_divisibility: int = 32,
        sampling_seed: Optional[int] = None,
    ):
        super().__init__()
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.rpn_in_features = list(rpn_in_features)
        self.roi_in_features = list(roi_in_features)
        self.input_format = input_format
        self.size_divisibility = int(size_divisibility)
        check_generalized_rcnn_arguments(
            pixel_mean=pixel_mean, pixel_std=pixel_std, input_format=input_format
        )
        # Not persistent: they come from the config, not from a checkpoint.
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean, dtype=torch.float32).view(3, 1, 1), False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(pixel_std, dtype=torch.float32).view(3, 1, 1), False
        )
        self.sampling_seed = sampling_seed
        # Training iteration mixed into the sampler seeds; the trainer sets it before each step
        # (so a resumed run continues the same sequence), otherwise it counts forwards.
        self.sampling_iteration = 0
        for part, sampler in (("rpn", rpn.fg_bg_sampler), ("roi_heads", roi_heads.fg_bg_sampler)):
            if sampling_seed is not None and not isinstance(sampler, SeededBalancedSampler):
                raise TypeError(
                    f"GeneralizedRCNN: sampling_seed needs {part}.fg_bg_sampler to be a "
                    "SeededBalancedSampler"
                )
        # The C4 mask head runs the box head's res5 (shared weights): checkpoints list its
        # tensors once (under roi_heads.box_head.res5.), as detectron2's do.
        self._register_state_dict_hook(_drop_shared_keys)
        self._register_load_state_dict_pre_hook(_fill_shared_keys, with_module=True)

    @property
    def mask_on(self) -> bool:
        """Whether the detector predicts masks (Mask R-CNN)."""
        return self.roi_heads.has_mask()

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ------------------------------------------------------------------------------ inputs
    def preprocess_image(self, batched_inputs: List[Dict[str, Tensor]]) -> ImageList:
        """Normalise each image and pad the batch (zeros after normalisation, as detectron2)."""
        images: List[Tensor] = []
        for i, x in enumerate(batched_inputs):
            img = x["image"]
            if img.dim() != 3 or img.shape[0] != 3:
                if torch.jit.is_scripting():
                    raise ValueError(
                        "GeneralizedRCNN: each input's 'image' must be a [3, H, W] tensor"
                    )
                raise ValueError(_bad_image_message(i, x, img))
            images.append((img.to(self.device, torch.float32) - self.pixel_mean) / self.pixel_std)
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        max_h = max([s[0] for s in sizes])
        max_w = max([s[1] for s in sizes])
        d = self.size_divisibility
        if d > 1:
            max_h = (max_h + d - 1) // d * d
            max_w = (max_w + d - 1) // d * d
        batch = images[0].new_zeros((len(images), 3, max_h, max_w))
        for i, im in enumerate(images):
            batch[i, :, : im.shape[1], : im.shape[2]].copy_(im)
        return ImageList(batch, sizes)

    def _targets(self, batched_inputs: List[Dict]) -> List[Dict[str, Tensor]]:
        targets = []
        for i, x in enumerate(batched_inputs):
            if "boxes" not in x or "labels" not in x:
                raise ValueError(
                    f"GeneralizedRCNN: training input {i} (image_id {x.get('image_id')!r}) lacks "
                    "'boxes'/'labels' (docs/internals.md, the train mapper's output)"
                )
            boxes = torch.as_tensor(x["boxes"], dtype=torch.float32, device=self.device).reshape(
                -1, 4
            )
            labels = torch.as_tensor(x["labels"], dtype=torch.int64, device=self.device).reshape(-1)
            # torchvision's RoIHeads reserves class 0 for background; our labels are 0-based.
            target = {"boxes": boxes, "labels": labels + 1}
            if self.mask_on:
                target["masks"] = self._target_masks(i, x, len(boxes))
            targets.append(target)
        return targets

    def _target_masks(self, i: int, x: Dict, num_boxes: int) -> Tensor:
        """x["masks"]: one uint8 [H, W] mask per box, in the input image's pixels."""
        where = f"GeneralizedRCNN: training input {i} (image_id {x.get('image_id')!r})"
        if "masks" not in x:
            raise ValueError(
                f"{where} lacks 'masks', which Mask R-CNN (MODEL.MASK_ON) trains on: "
                "the mapper gives them when built with mask_on=True from annotations "
                "with 'segmentation' (docs/internals.md)"
            )
        masks = torch.as_tensor(x["masks"], device=self.device)
        size = tuple(x["image"].shape[-2:])
        if masks.dim() != 3 or masks.shape[0] != num_boxes or tuple(masks.shape[-2:]) != size:
            raise ValueError(
                f"{where} 'masks' must be [{num_boxes}, {size[0]}, {size[1]}] (one per "
                f"box, at the image's size), got {tuple(masks.shape)}"
            )
        return masks.to(torch.uint8)

    def _set_sampler_seeds(self, batched_inputs: Optional[List[Dict]]) -> None:
        seeds_rpn = seeds_roi = None
        if batched_inputs is not None and self.sampling_seed is not None:
            ids = [x.get("image_id", i) for i, x in enumerate(batched_inputs)]
            it = self.sampling_iteration
            seeds_rpn = [image_seed(self.sampling_seed, it, i, "rpn") for i in ids]
            seeds_roi = [image_seed(self.sampling_seed, it, i, "roi") for i in ids]
        if isinstance(self.rpn.fg_bg_sampler, SeededBalancedSampler):
            self.rpn.fg_bg_sampler.image_seeds = seeds_rpn
        if isinstance(self.roi_heads.fg_bg_sampler, SeededBalancedSampler):
            self.roi_heads.fg_bg_sampler.image_seeds = seeds_roi

    # ----------------------------------------------------------------------------- forward
    def forward(self, batched_inputs: List[Dict[str, Tensor]]):
        """Training: a dict of losses; eval: one dict of detections per image.

        Scripted (torch.jit.script), the detector has only the inference path (run it in eval
        mode); its inputs are then ``Dict[str, Tensor]`` ("height"/"width", if given, as
        0-dim tensors).
        """
        if len(batched_inputs) == 0:
            raise ValueError("GeneralizedRCNN: empty batch")
        # torch.jit.is_scripting() is a constant when scripted: the training path is left out.
        if self.training and not torch.jit.is_scripting():
            return self._forward_training(batched_inputs)
        return self.inference(batched_inputs)

    @torch.jit.unused
    def _forward_training(self, batched_inputs: List[Dict[str, Tensor]]) -> Dict[str, Tensor]:
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensors)
        targets = self._targets(batched_inputs)
        self._set_sampler_seeds(batched_inputs)
        try:
            proposals, rpn_losses = self.rpn(
                images, {f: features[f] for f in self.rpn_in_features}, targets
            )
            detections, roi_losses = self.roi_heads(
                {f: features[f] for f in self.roi_in_features},
                proposals,
                images.image_sizes,
                targets,
            )
        finally:
            self._set_sampler_seeds(None)
        self.sampling_iteration += 1
        losses = {**rpn_losses, **roi_losses}
        return {LOSS_NAMES[k]: v for k, v in losses.items()}

    def inference(self, batched_inputs: List[Dict[str, Tensor]]) -> List[Dict[str, Tensor]]:
        """Detections for each input, in its original coordinates (eval mode's forward)."""
        images = self.preprocess_image(batched_inputs)
        features = self.backbone(images.tensors)
        proposals, _ = self.rpn(images, {f: features[f] for f in self.rpn_in_features})
        detections, _ = self.roi_heads(
            {f: features[f] for f in self.roi_in_features}, proposals, images.image_sizes
        )
        return self.postprocess(detections, batched_inputs, images.image_sizes)

    @staticmethod
    def postprocess(
        detections: List[Dict[str, Tensor]],
        batched_inputs: List[Dict[str, Tensor]],
        image_sizes: List[Tuple[int, int]],
    ) -> List[Dict[str, Tensor]]:
        """Scale boxes from the resized input back to the original image ("height"/"width"),
        make labels 0-based and paste masks into the original image (torchvision's
        paste_masks_in_image, as its MaskRCNN returns them: float [N, 1, H, W])."""
        results: List[Dict[str, Tensor]] = []
        for det, x, (h, w) in zip(detections, batched_inputs, image_sizes):
            out_h = int(x["height"]) if "height" in x else h
            out_w = int(x["width"]) if "width" in x else w
            boxes = det["boxes"].clone()
            # Ratios as float32 tensors: torchvision's resize_boxes, to the bit.
            boxes[:, 0::2] *= torch.tensor(out_w, dtype=torch.float32) / torch.tensor(
                w, dtype=torch.float32
            )
            boxes[:, 1::2] *= torch.tensor(out_h, dtype=torch.float32) / torch.tensor(
                h, dtype=torch.float32
            )
            result = {"boxes": boxes, "scores": det["scores"], "labels": det["labels"] - 1}
            if "masks" in det:
                # Pasted with the scaled boxes before clamping, as torchvision does.
                result["masks"] = paste_masks_in_image(det["masks"], boxes, (out_h, out_w))
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, out_w)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, out_h)
            results.append(result)
        return results

    # ----------------------------------------------------------------------------- weights
    def pretrained_view(self) -> nn.Module:
        """A module sharing this detector's backbone and box-head parameters under the names
        an ImageNet classifier uses (stem, res2..res5 / VGG convs, fc6, fc7), so that
        ``resnet_det.load_weights`` maps ImageNet weights onto it directly."""
        view = nn.Module()
        body = getattr(self.backbone, "bottom_up", self.backbone)
        for name, child in body.named_children():
            view.add_module(name, child)
        box_head = self.roi_heads.box_head
        for name in ("res5", "fc6", "fc7"):
            if hasattr(box_head, name):
                view.add_module(name, getattr(box_head, name))
        return view


def build_generalized_rcnn(
    *,
    backbone: ModelDescription,
    proposal_generator: ModelDescription,
    roi_heads: ModelDescription,
    pixel_mean: Sequence[float],
    pixel_std: Sequence[float],
    input_format: str = "BGR",
    sampling_seed: Optional[int] = None,
    device: str = "cpu",
) -> GeneralizedRCNN:
    """The detector of the descriptions of its parts (built in this order: backbone, proposal
    generator, RoI heads, each given the backbone's output shapes), on ``device``.

    The batch is padded to the coarsest stride the RPN and the RoI heads use, so that every
    feature map tiles the input exactly and torchvision's anchor generator (which infers
    strides from sizes) gets exact strides. Other arguments: as ``GeneralizedRCNN``'s.
    """
    body = backbone.build()
    shapes = body.output_shape()
    rpn = proposal_generator.build(shapes)
    heads = roi_heads.build(shapes)
    used = list(proposal_generator["in_features"]) + list(roi_heads["in_features"])
    size_div = max([body.size_divisibility] + [shapes[f].stride for f in used])
    model = GeneralizedRCNN(
        backbone=body,
        rpn=rpn,
        roi_heads=heads,
        rpn_in_features=proposal_generator["in_features"],
        roi_in_features=roi_heads["in_features"],
        pixel_mean=pixel_mean,
        pixel_std=pixel_std,
        input_format=input_format,
        size_divisibility=size_div,
        sampling_seed=sampling_seed,
    )
    return model.to(torch.device(device))

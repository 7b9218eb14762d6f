"""Detector rows: one training iteration and inference, ours against a peer on the same inputs.

- R50-FPN against torchvision's Faster R-CNN R50-FPN (``fasterrcnn_resnet50_fpn``'s
  architecture, built without weights). With ``weights=None`` torchvision's builder trains
  every layer with plain BatchNorm, so the peer is assembled from the same public parts
  (``resnet_fpn_backbone`` with FrozenBatchNorm2d and 3 trainable stages, ``FasterRCNN``) to
  match our recipe: frozen BN, stem and res2 frozen, stride in the 3x3 (torchvision's
  layout), RoIAlign sampling ratio 2, 1000 RPN proposals per training image, the same RoI
  batch per image.
- R50-C4 / R101-C4 against detectron2's model-zoo config of the same name, when detectron2
  is importable (the row is skipped with a note otherwise).

Both sides get the same images (uint8, shorter side ``opts.size``) and boxes; a training
iteration is forward, backward and an SGD step.
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from resnet_det.config import get_cfg
from resnet_det.modeling import build_model
from resnet_det.utils.errors import MissingFileError

from .harness import BenchOptions, BenchRow, autocast, compare, skipped_row

__all__ = [
    "detection_inputs",
    "build_ours",
    "fpn_rows",
    "c4_rows",
    "CONFIGS_DIR",
    "neutral_rpn",
    "neutral_torchvision_rpn",
    "prepare_detector",
    "training_step",
    "inference_step",
]

CONFIGS_DIR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "configs"))
NUM_CLASSES = 80
TORCHVISION_FPN = "torchvision FasterRCNN R50-FPN"


def detection_inputs(
    opts: BenchOptions, *, num_boxes: int = 6, seed: int = 0
) -> List[Dict[str, Any]]:
    """``opts.batch`` random uint8 images of shorter side ``opts.size`` (4:3) with random boxes,
    as our mapper outputs them (docs/internals.md)."""
    g = torch.Generator().manual_seed(seed)
    h, w = opts.size, (opts.size * 4 + 2) // 3
    out = []
    for i in range(opts.batch):
        xy = torch.rand(num_boxes, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
        wh = (0.1 + 0.2 * torch.rand(num_boxes, 2, generator=g)) * torch.tensor([w, h])
        out.append(
            {
                "image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g),
                "boxes": torch.cat([xy, xy + wh], dim=1),
                "labels": torch.randint(0, NUM_CLASSES, (num_boxes,), generator=g),
                "image_id": i,
                "height": h,
                "width": w,
            }
        )
    return out


def build_ours(config_name: str, opts: BenchOptions, overrides: Sequence[str] = ()):
    """Our detector from ``configs/<config_name>`` (no weights) on the options' device."""
    path = os.path.join(CONFIGS_DIR, config_name)
    if not os.path.isfile(path):
        raise MissingFileError(
            f"config {path} not found: the detector rows read the repository's configs/"
        )
    cfg = get_cfg()
    cfg.merge_from_file(path)
    cfg.merge_from_list(
        [
            "MODEL.WEIGHTS",
            "",
            "MODEL.DEVICE",
            opts.device,
            "MODEL.ROI_HEADS.NUM_CLASSES",
            str(NUM_CLASSES),
            *overrides,
        ]
    )
    return build_model(cfg)


def neutral_rpn(head_convs: Sequence[torch.nn.Module]) -> None:
    """Zero the RPN's objectness and box-delta convs: every anchor becomes a proposal of equal
    score. Without trained weights the features of a deep net with frozen (identity) BN are
    in the thousands, the predicted deltas clip every proposal to the image border and NMS
    leaves two or three of them, so the RoI head, most of a C4 detector's work, would see a
    handful of RoIs instead of its full batch. Done the same way on both sides."""
    with torch.no_grad():
        for conv in head_convs:
            conv.weight.zero_()
            conv.bias.zero_()


def neutral_torchvision_rpn(model):
    neutral_rpn([model.rpn.head.cls_logits, model.rpn.head.bbox_pred])
    return model


def prepare_detector(model, opts: BenchOptions, compile_part: str = "backbone"):
    model = model.to(opts.torch_device)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if opts.compile:
        setattr(model, compile_part, torch.compile(getattr(model, compile_part)))
    return model


def training_step(
    model, call: Callable[[], Dict[str, torch.Tensor]], opts: BenchOptions
) -> Callable[[], None]:
    """One iteration: ``call()`` gives the losses (forward), then backward and SGD.

    The learning rate is 0: the optimizer does all its arithmetic (momentum, weight decay,
    update), but the weights stay, so that repeated steps on random data cannot diverge
    (detectron2 stops on non-finite proposals)."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.0, momentum=0.9, weight_decay=1e-4)
    scaler = torch.amp.GradScaler(opts.torch_device.type, enabled=opts.amp == "fp16")

    def step() -> None:
        with autocast(opts.torch_device, opts.amp_dtype):
            losses = call()
            loss = sum(losses.values())
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    return step


def inference_step(call: Callable[[], Any], opts: BenchOptions) -> Callable[[], None]:
    def step() -> None:
        with torch.inference_mode(), autocast(opts.torch_device, opts.amp_dtype):
            call()

    return step


def _on_device(inputs: List[Dict[str, Any]], device: torch.device) -> List[Dict[str, Any]]:
    return [{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in x.items()} for x in inputs]


def torchvision_fpn(opts: BenchOptions, *, roi_batch: int):
    """torchvision's Faster R-CNN R50-FPN with our recipe's settings (module doc)."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops import FrozenBatchNorm2d

    backbone = resnet_fpn_backbone(
        backbone_name="resnet50", weights=None, norm_layer=FrozenBatchNorm2d, trainable_layers=3
    )
    # min_size = our shorter side and a max_size that never binds: torchvision's transform
    # then keeps the images at the size both models are given.
    return FasterRCNN(
        backbone,
        num_classes=NUM_CLASSES + 1,
        min_size=opts.size,
        max_size=4 * opts.size,
        rpn_post_nms_top_n_train=1000,
        box_batch_size_per_image=roi_batch,
    )


def fpn_rows(opts: BenchOptions, *, roi_batch: int = 512) -> List[BenchRow]:
    """R50-FPN training iteration and inference against torchvision's."""
    device = opts.torch_device
    ours = prepare_detector(
        neutral_torchvision_rpn(
            build_ours(
                "modern/faster_rcnn_R50_FPN_1x.yaml",
                opts,
                [
                    "MODEL.RESNETS.STRIDE_IN_1X1",
                    "False",  # torchvision's layout
                    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO",
                    "2",  # torchvision's MultiScaleRoIAlign
                    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
                    str(roi_batch),
                ],
            )
        ),
        opts,
    )
    peer = prepare_detector(
        neutral_torchvision_rpn(torchvision_fpn(opts, roi_batch=roi_batch)), opts
    )
    inputs = _on_device(detection_inputs(opts), device)
    images = [x["image"].float() / 255.0 for x in inputs]
    targets = [{"boxes": x["boxes"], "labels": x["labels"] + 1} for x in inputs]
    note = f"{opts.batch} images {opts.size}x{inputs[0]['width']}, {roi_batch} RoIs/image"

    ours.train(), peer.train()
    rows = [
        compare(
            "R50-FPN train iter",
            training_step(ours, partial(ours, inputs), opts),
            training_step(peer, lambda: peer(images, targets), opts),
            peer_name=TORCHVISION_FPN,
            opts=opts,
            note=note,
        )
    ]
    ours.eval(), peer.eval()
    rows.append(
        compare(
            "R50-FPN inference",
            inference_step(partial(ours, inputs), opts),
            inference_step(lambda: peer(images), opts),
            peer_name=TORCHVISION_FPN,
            opts=opts,
            unit="s/batch",
            note=f"{opts.batch} images {opts.size}px",
        )
    )
    return rows


def _schedule(depth: int) -> str:
    # The model zoo has R50-C4 1x and R101-C4 3x (the schedule does not change the model).
    return "1x" if depth == 50 else "3x"


def _detectron2_c4(depth: int, opts: BenchOptions, roi_batch: int, overrides: Sequence[str] = ()):
    from detectron2 import model_zoo
    from detectron2.config import get_cfg as d2_get_cfg
    from detectron2.modeling import build_model as d2_build_model

    cfg = d2_get_cfg()
    cfg.merge_from_file(
        model_zoo.get_config_file(
            f"COCO-Detection/faster_rcnn_R_{depth}_C4_{_schedule(depth)}.yaml"
        )
    )
    cfg.merge_from_list(
        [
            "MODEL.WEIGHTS",
            "",
            "MODEL.DEVICE",
            opts.device,
            "MODEL.ROI_HEADS.NUM_CLASSES",
            str(NUM_CLASSES),
            "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
            str(roi_batch),
            *overrides,
        ]
    )
    model = d2_build_model(cfg)
    head = model.proposal_generator.rpn_head
    neutral_rpn([head.objectness_logits, head.anchor_deltas])
    return model


def _d2_inputs(inputs: List[Dict[str, Any]]):
    from detectron2.structures import Boxes, Instances

    out = []
    for x in inputs:
        inst = Instances((x["height"], x["width"]))
        inst.gt_boxes = Boxes(x["boxes"])
        inst.gt_classes = x["labels"]
        out.append(
            {"image": x["image"], "instances": inst, "height": x["height"], "width": x["width"]}
        )
    return out


def _d2_train_call(model, inputs):
    # detectron2's heads log to the EventStorage its trainer opens around each step.
    from detectron2.utils.events import EventStorage

    with EventStorage():
        return model(inputs)


def c4_rows(
    opts: BenchOptions,
    *,
    depths: Sequence[int] = (50, 101),
    roi_batch: int = 512,
    inference: bool = True,
    test_proposals: Optional[int] = None,
) -> List[BenchRow]:
    """R{depth}-C4 training iteration (and inference) against detectron2's, when installed.

    Args:
        opts: the run's options (batch, shorter side, device, ...).
        depths: 50 and/or 101.
        roi_batch: RoIs sampled per training image (both sides).
        inference: add the inference rows.
        test_proposals: proposals per image at inference (both sides; None: the configs'
            1000). The res5 head runs on each of them, so on a CPU inference costs more than
            a training iteration with a few hundred sampled RoIs.
    """
    peer_name = "detectron2 R{}-C4"
    try:
        import detectron2  # noqa: F401
    except ImportError:
        return [
            skipped_row(
                f"R{d}-C4 train iter",
                "s/iter",
                peer_name.format(d),
                "detectron2 is not installed in this Python",
            )
            for d in depths
        ]
    device = opts.torch_device
    inputs = _on_device(detection_inputs(opts), device)
    d2_inputs = _d2_inputs(inputs)
    note = f"{opts.batch} images {opts.size}x{inputs[0]['width']}, {roi_batch} RoIs/image"
    overrides = (
        [] if test_proposals is None else ["MODEL.RPN.POST_NMS_TOPK_TEST", str(test_proposals)]
    )
    proposals = f"{test_proposals or 1000} proposals/image"
    rows = []
    for depth in depths:
        ours = prepare_detector(
            neutral_torchvision_rpn(
                build_ours(
                    f"modern/faster_rcnn_R{depth}_C4_{_schedule(depth)}.yaml",
                    opts,
                    ["MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", str(roi_batch), *overrides],
                )
            ),
            opts,
        )
        peer = prepare_detector(_detectron2_c4(depth, opts, roi_batch, overrides), opts)
        ours.train(), peer.train()
        rows.append(
            compare(
                f"R{depth}-C4 train iter",
                training_step(ours, partial(ours, inputs), opts),
                training_step(peer, partial(_d2_train_call, peer, d2_inputs), opts),
                peer_name=peer_name.format(depth),
                opts=opts,
                note=note,
            )
        )
        if inference:
            ours.eval(), peer.eval()
            rows.append(
                compare(
                    f"R{depth}-C4 inference",
                    inference_step(partial(ours, inputs), opts),
                    inference_step(partial(peer, d2_inputs), opts),
                    peer_name=peer_name.format(depth),
                    opts=opts,
                    unit="s/batch",
                    note=f"{opts.batch} images {opts.size}px, {proposals}",
                )
            )
        del ours, peer
    return rows

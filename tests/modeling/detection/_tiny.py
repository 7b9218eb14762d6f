"""Tiny detector configs and synthetic inputs shared by the detection model tests."""

import torch

from resnet_det.config import get_cfg

# ResNet-18 at small sizes keeps every test to about a second on 2 CPU cores.
R18 = [
    "MODEL.RESNETS.DEPTH",
    "18",
    "MODEL.RESNETS.RES2_OUT_CHANNELS",
    "64",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "3",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE",
    "64",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "16",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "64",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "200",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "50",
    "MODEL.ANCHOR_GENERATOR.SIZES",
    "[[16, 32, 64]]",
]
C4 = R18
FPN = R18 + [
    "MODEL.BACKBONE.NAME",
    "build_resnet_fpn_backbone",
    "MODEL.RESNETS.OUT_FEATURES",
    "['res2', 'res3', 'res4', 'res5']",
    "MODEL.FPN.OUT_CHANNELS",
    "64",
    "MODEL.RPN.IN_FEATURES",
    "['p2', 'p3', 'p4', 'p5', 'p6']",
    "MODEL.ANCHOR_GENERATOR.SIZES",
    "[[8], [16], [32], [64], [128]]",
    "MODEL.ROI_HEADS.NAME",
    "StandardROIHeads",
    "MODEL.ROI_HEADS.IN_FEATURES",
    "['p2', 'p3', 'p4', 'p5']",
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    "7",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "64",
]
VGG = [
    "MODEL.BACKBONE.NAME",
    "build_vgg_backbone",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "3",
    "MODEL.RPN.IN_FEATURES",
    "['vgg_conv5']",
    "MODEL.ROI_HEADS.NAME",
    "StandardROIHeads",
    "MODEL.ROI_HEADS.IN_FEATURES",
    "['vgg_conv5']",
    "MODEL.ROI_BOX_HEAD.NAME",
    "VGGFCHead",
    "MODEL.ROI_BOX_HEAD.POOLER_TYPE",
    "ROIPool",
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    "7",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "64",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE",
    "64",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "16",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "64",
    "MODEL.ANCHOR_GENERATOR.SIZES",
    "[[16, 32, 64]]",
]


def tiny_cfg(base, *extra):
    cfg = get_cfg()
    cfg.merge_from_list(list(base) + list(extra))
    return cfg


def synthetic_batch(num_images=2, size=(96, 128), seed=0, scale=1.0, ids=None):
    """Images with a bright rectangle per object; 'height'/'width' = size * scale."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    batch = []
    for i in range(num_images):
        img = torch.randint(0, 60, (3, h, w), generator=g, dtype=torch.uint8)
        boxes = torch.tensor([[8.0 + 4 * i, 10.0, 48.0 + 4 * i, 60.0], [60.0, 30.0, 110.0, 80.0]])
        for x0, y0, x1, y1 in boxes.long().tolist():
            img[:, y0:y1, x0:x1] = 200
        batch.append(
            {
                "image": img,
                "boxes": boxes,
                "labels": torch.tensor([0, 2]),
                "image_id": i if ids is None else ids[i],
                "height": int(round(h * scale)),
                "width": int(round(w * scale)),
            }
        )
    return batch

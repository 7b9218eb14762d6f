"""Our R50-FPN Mask R-CNN and torchvision's maskrcnn_resnet50_fpn give the same detections
with the same weights: torchvision's model is built here at random (no download), its state dict
loaded into ours by name mapping (MODEL.WEIGHTS's path, resnet_det.checkpoint), and ours built
from configs/mask_rcnn_R50_FPN.yaml with the settings where torchvision differs set to its
values: RGB input normalised by the ImageNet mean / std, the stride in the 3x3 conv, unaligned
RoIAlign with 2x2 samples, no minimum proposal size, 90 classes. torchvision's model in eval
mode normalises with its BN statistics, which is what our FrozenBN does.

Both get the same images: torchvision resizes them itself; ours gets them resized as
torchvision's transform resizes (its own function), as our mapper would hand them over.
"""

import os

import pytest
import torch
from torchvision.models.detection import maskrcnn_resnet50_fpn
from torchvision.models.detection.transform import _resize_image_and_masks

from resnet_det.checkpoint import load_pretrained_weights
from resnet_det.config import get_cfg
from resnet_det.modeling.build import build_model

pytestmark = pytest.mark.usefixtures("single_thread")

CONFIG = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "configs", "mask_rcnn_R50_FPN.yaml"
)
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
TORCHVISION_SETTINGS = [
    "MODEL.WEIGHTS",
    "",
    "MODEL.DEVICE",
    "cpu",
    "INPUT.FORMAT",
    "RGB",
    "MODEL.PIXEL_MEAN",
    str([255 * m for m in MEAN]),
    "MODEL.PIXEL_STD",
    str([255 * s for s in STD]),
    "MODEL.RESNETS.STRIDE_IN_1X1",
    "False",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "90",
    "MODEL.PROPOSAL_GENERATOR.MIN_SIZE",
    "0",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "1000",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "1000",
    "MODEL.RPN.NMS_THRESH",
    "0.7",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
    "0.05",
    "MODEL.ROI_HEADS.NMS_THRESH_TEST",
    "0.5",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE",
    "100",
    "MODEL.ROI_BOX_HEAD.POOLER_TYPE",
    "ROIAlign",
    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO",
    "2",
    "MODEL.ROI_MASK_HEAD.POOLER_TYPE",
    "ROIAlign",
    "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO",
    "2",
]


def _tame(model):
    """BN statistics and affine that keep a random R50's activations O(1) (the residual
    branches' last norms small), so that float rounding cannot decide a detection; a classifier
    confident enough that random features give detections above the 0.05 score threshold."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, m in model.named_modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                last = name.endswith(("bn3", "bn2")) and ".layer" in "." + name
                m.weight.copy_(
                    torch.empty(n).uniform_(*((0.05, 0.2) if last else (0.5, 1.0)), generator=g)
                )
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
                m.running_var.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=g))
        model.roi_heads.box_predictor.cls_score.weight.mul_(40.0)
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.randn(91, generator=g))


def _images(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for h, w in sizes:
        img = torch.randint(0, 90, (3, h, w), generator=g).float()
        img[:, h // 8 : h // 2, w // 6 : 2 * w // 3] = torch.tensor([220.0, 60.0, 40.0])[
            :, None, None
        ]
        img[:, 3 * h // 5 : 7 * h // 8, w // 2 : 7 * w // 8] = 170.0
        out.append(img)
    return out


@pytest.fixture(scope="module")
def pair():
    torch.manual_seed(0)
    theirs = maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, min_size=64, max_size=1000
    ).eval()
    _tame(theirs)
    cfg = get_cfg()
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(TORCHVISION_SETTINGS)
    ours = build_model(cfg).eval()
    load_pretrained_weights(ours, theirs.state_dict())
    return theirs, ours


@pytest.mark.parametrize(
    "sizes",
    [[(64, 64), (64, 64)], [(96, 96)], [(192, 96)]],
    ids=["input-size", "resized-96", "resized-192x96"],
)
def test_same_boxes_scores_labels_and_masks_as_torchvision(pair, sizes):
    theirs, ours = pair
    images = _images(sizes)
    with torch.no_grad():
        expected = theirs([im / 255.0 for im in images])
        # What torchvision's transform feeds its backbone, before normalisation (shorter side 64).
        resized = [_resize_image_and_masks(im, 64.0, 1000.0)[0] for im in images]
        got = ours(
            [
                {"image": r, "height": im.shape[1], "width": im.shape[2]}
                for r, im in zip(resized, images)
            ]
        )
    for e, g, im in zip(expected, got, images):
        n = len(e["boxes"])
        assert n > 0, "no detections to compare"
        assert len(g["boxes"]) == n
        torch.testing.assert_close(g["boxes"], e["boxes"], rtol=0, atol=1e-4)
        torch.testing.assert_close(g["scores"], e["scores"], rtol=0, atol=1e-4)
        assert torch.equal(g["labels"] + 1, e["labels"])  # ours are 0-based
        assert g["masks"].shape == e["masks"].shape == (n, 1) + tuple(im.shape[1:])
        assert e["masks"].amax() > 0.1
        torch.testing.assert_close(g["masks"], e["masks"], rtol=0, atol=1e-4)

"""The plugin's heads with masks: detectron2's Mask R-CNN on our backbone equals detectron2's
own with the same weights (R50-C4: our res5 in ResNetDetRes5ROIHeads, shared by the box and
mask heads; R50-FPN: StandardROIHeads on our bottom-up ResNet), and the C4 mask head runs on
our res5 whatever its block options."""

import pytest

pytest.importorskip("detectron2")

import torch  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402
from detectron2.modeling.roi_heads import Res5ROIHeads  # noqa: E402
from detectron2.structures import BitMasks, Boxes, Instances  # noqa: E402
from detectron2.utils.events import EventStorage  # noqa: E402

import resnet_det.d2  # noqa: E402
from resnet_det.d2 import ResNetDetBackbone, ResNetDetRes5ROIHeads  # noqa: E402

from .conftest import d2_zoo_config, randomize_norms  # noqa: E402

ZOO = {
    "R50-C4": "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml",
    "R50-FPN": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
}
SMALL = {
    "MODEL.DEVICE": "cpu",
    "MODEL.WEIGHTS": "",
    "MODEL.ROI_HEADS.NUM_CLASSES": 3,
    "MODEL.RPN.PRE_NMS_TOPK_TEST": 300,
    "MODEL.RPN.POST_NMS_TOPK_TEST": 30,
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST": 0.0,
    "TEST.DETECTIONS_PER_IMAGE": 20,
}


def _zoo_cfg(name, ours: bool):
    cfg = get_cfg()
    resnet_det.d2.add_resnet_det_config(cfg)
    cfg.merge_from_file(d2_zoo_config(ZOO[name]), allow_unsafe=False)
    for key, value in SMALL.items():
        cfg.merge_from_list([key, str(value)])
    if (
        ours
    ):  # detectron2's names -> the plugin's, as tools/train_net.py --engine detectron2 maps them
        resnet_det.d2.resolve_for_detectron2(cfg)
    return cfg


def _image(h=96, w=128):
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 80, (3, h, w), generator=g).float()
    img[:, 10:50, 20:70] = 220.0
    img[:, 55:90, 80:120] = 140.0
    return img


@pytest.mark.parametrize("name", sorted(ZOO))
def test_mask_rcnn_on_our_backbone_equals_detectron2s_own(name, single_thread):
    torch.manual_seed(0)
    theirs = build_model(_zoo_cfg(name, ours=False)).eval()
    randomize_norms(theirs)
    ours = build_model(_zoo_cfg(name, ours=True)).eval()
    if name == "R50-C4":
        assert (
            type(theirs.roi_heads) is Res5ROIHeads and type(ours.roi_heads) is ResNetDetRes5ROIHeads
        )
        assert isinstance(ours.backbone, ResNetDetBackbone)
    else:
        assert isinstance(ours.backbone.bottom_up, ResNetDetBackbone)
    assert not isinstance(theirs.backbone, ResNetDetBackbone)
    # the same parameter names: detectron2's checkpoint loads into ours exactly
    result = ours.load_state_dict(theirs.state_dict(), strict=True)
    assert result.missing_keys == [] and result.unexpected_keys == []
    inputs = [{"image": _image()}]
    with torch.no_grad():
        a = theirs.inference(inputs, do_postprocess=False)[0]
        b = ours.inference(inputs, do_postprocess=False)[0]
    assert len(a) > 0 and len(a) == len(b)
    # boxes in pixels (up to 128): 1e-3 px is a relative 1e-5, float32 summation-order noise
    torch.testing.assert_close(b.pred_boxes.tensor, a.pred_boxes.tensor, rtol=0, atol=1e-3)
    torch.testing.assert_close(b.scores, a.scores, rtol=0, atol=1e-4)
    assert torch.equal(b.pred_classes, a.pred_classes)
    side = 28 if name == "R50-FPN" else 14  # C4: 14x14 RoIs -> res5 (7x7) -> deconv
    assert b.pred_masks.shape == a.pred_masks.shape == (len(a), 1, side, side)
    torch.testing.assert_close(b.pred_masks, a.pred_masks, rtol=0, atol=1e-4)


def test_c4_mask_head_runs_on_our_res5_with_its_block_options():
    cfg = _zoo_cfg("R50-C4", ours=True)
    cfg.MODEL.RESNETS.SHORTCUT = "C"  # projection in every block: a res5 detectron2 cannot build
    cfg.MODEL.RESNETS.DEPTH = 50
    torch.manual_seed(0)
    model = build_model(cfg).train()
    heads = model.roi_heads
    assert heads.mask_on and "res5.2.shortcut.weight" in dict(heads.named_parameters())
    features = {"res4": torch.randn(2, 1024, 6, 8)}
    boxes = torch.tensor([[8.0, 8.0, 60.0, 50.0], [30.0, 20.0, 90.0, 80.0]])
    proposals, targets = [], []
    for _ in range(2):
        p = Instances((96, 128))
        p.proposal_boxes = Boxes(boxes.clone())
        p.objectness_logits = torch.zeros(2)
        proposals.append(p)
        t = Instances((96, 128))
        t.gt_boxes = Boxes(boxes.clone())
        t.gt_classes = torch.tensor([0, 2])
        m = torch.zeros(2, 96, 128, dtype=torch.bool)
        m[0, 10:45, 10:55] = True
        m[1, 25:75, 35:85] = True
        t.gt_masks = BitMasks(m)
        targets.append(t)
    with EventStorage():  # detectron2's heads log training statistics
        _, losses = heads(None, features, proposals, targets)
    assert set(losses) >= {"loss_cls", "loss_box_reg", "loss_mask"}
    losses["loss_mask"].backward()
    grad = heads.res5[2].shortcut.weight.grad
    assert grad is not None and grad.abs().sum() > 0  # the mask loss reaches our res5's blocks
    assert heads.box_predictor.cls_score.weight.grad is None  # and only the mask loss was used

"""Weights between detectron2 and resnet_det: our converter's detectron2 layout loads into
detectron2's own ResNet; the MSRA/Caffe2 .pkl layout loads into ours through the restricted
unpickler; the plugin's checkpointer never runs code from a file and writes atomically; and
detectron2's whole Mask R-CNN checkpoints (R50-FPN, R50-C4) load into the built-in engine's
Mask R-CNN and compute what detectron2 computes."""

import os
import pickle
import re

import numpy as np
import pytest

pytest.importorskip("detectron2")

import torch  # noqa: E402
from detectron2.checkpoint import DetectionCheckpointer  # noqa: E402
from detectron2.config import get_cfg  # noqa: E402
from detectron2.modeling import build_backbone  # noqa: E402
from detectron2.modeling import build_model as d2_build_model  # noqa: E402

import resnet_det  # noqa: E402
import resnet_det.d2  # noqa: E402
from resnet_det.checkpoint import convert_state_dict  # noqa: E402
from resnet_det.checkpoint.detector import load_pretrained_weights  # noqa: E402
from resnet_det.checkpoint.weights import save_weights  # noqa: E402
from resnet_det.config import get_cfg as our_cfg  # noqa: E402
from resnet_det.d2 import SafeDetectionCheckpointer  # noqa: E402
from resnet_det.modeling import build_model  # noqa: E402

from .conftest import d2_zoo_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _backbone(name, depth=50):
    cfg = get_cfg()
    resnet_det.d2.add_resnet_det_config(cfg)
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.OUT_FEATURES = ["res4", "res5"]
    cfg.MODEL.BACKBONE.NAME = name
    return build_backbone(cfg).eval()


def _features(model, x):
    with torch.no_grad():
        return model(x)


@pytest.mark.parametrize("ext", [".pth", ".pkl"])
def test_our_detectron2_layout_loads_into_detectron2_resnet(tmp_path, ext, random_norms):
    torch.manual_seed(1)
    ours = _backbone("build_resnet_det_backbone")
    random_norms(ours, seed=1)
    path = str(tmp_path / f"ours{ext}")
    save_weights(convert_state_dict(ours.state_dict(), to="detectron2"), path, layout="detectron2")
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp")]  # atomic: no leftovers
    theirs = _backbone("build_resnet_backbone")
    before = theirs.res2[0].conv1.weight.clone()
    incompatible = DetectionCheckpointer(theirs).load(path)
    assert not torch.equal(before, theirs.res2[0].conv1.weight)
    assert incompatible == {} or not incompatible.get("checkpointables")
    x = torch.randn(1, 3, 64, 96) * 50
    a, b = _features(ours, x), _features(theirs, x)
    for name in ("res4", "res5"):
        assert (a[name] - b[name]).abs().max().item() < 1e-4


_C2_BRANCH = {"shortcut": "1", "conv1": "2a", "conv2": "2b", "conv3": "2c"}


def _to_caffe2(sd):
    """Our / detectron2 names -> MSRA Caffe2 blob names (the layout of R-50.pkl / R-101.pkl),
    with BN stored as an affine only (scale, bias), as MSRA's files are."""
    blobs = {}
    for key, v in sd.items():
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        v = v.numpy()
        leaf = {"weight": "w", "bias": "b"}[key.rsplit(".", 1)[1]]
        if key.startswith("stem.conv1.norm."):
            blobs["res_conv1_bn_" + {"w": "s", "b": "b"}[leaf]] = v
        elif key.startswith("stem.conv1."):
            blobs["conv1_" + leaf] = v
        else:
            m = re.match(r"res(\d)\.(\d+)\.(\w+)\.(norm\.)?", key)
            name = f"res{m[1]}_{m[2]}_branch{_C2_BRANCH[m[3]]}"
            blobs[name + ("_bn_" + {"w": "s", "b": "b"}[leaf] if m[4] else "_" + leaf)] = v
    blobs["fc1000_w"] = np.zeros((1000, 2048), np.float32)  # classifier: not in the backbone
    blobs["res2_0_branch2a_w_momentum"] = np.zeros(1, np.float32)  # optimizer state
    return blobs


def test_msra_caffe2_pkl_loads_into_our_backbone(tmp_path, random_norms):
    torch.manual_seed(2)
    reference = _backbone("build_resnet_backbone", depth=50)
    random_norms(reference, seed=2)
    # An affine-only frozen BN is x * scale + bias: statistics (0, 1 - eps) compute exactly that.
    for m in reference.modules():
        if hasattr(m, "running_var") and isinstance(m.running_var, torch.Tensor):
            m.running_mean.zero_()
            m.running_var.fill_(1.0 - m.eps)
    path = tmp_path / "R-50.pkl"
    with open(path, "wb") as f:  # as the Detectron-era files: protocol 2, latin-1 numpy
        pickle.dump({"blobs": _to_caffe2(reference.state_dict())}, f, protocol=2)

    ours = _backbone("build_resnet_det_backbone", depth=50)
    result = resnet_det.load_weights(ours, str(path), strict=False)
    assert result.layout == "caffe2" and result.missing_keys == []
    assert "linear.weight" in result.unexpected_keys
    assert result.filled_keys  # running statistics set for the affine-only BN
    x = torch.randn(1, 3, 64, 64) * 50
    a, b = _features(ours, x), _features(reference, x)
    for name in ("res4", "res5"):
        assert (a[name] - b[name]).abs().max().item() < 1e-4

    # The same file through the plugin's checkpointer (detectron2's c2 renaming, safe reading).
    ours2 = _backbone("build_resnet_det_backbone", depth=50)
    SafeDetectionCheckpointer(ours2).load(str(path))
    for key in ("stem.conv1.weight", "res4.5.conv3.norm.weight", "res5.0.shortcut.weight"):
        assert torch.equal(ours2.state_dict()[key], reference.state_dict()[key]), key


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_checkpointer_refuses_code_in_pkl_and_pth(tmp_path):
    model = _backbone("build_resnet_det_backbone")
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"blobs": {"conv1_w": _Evil()}}))
    with pytest.raises(pickle.UnpicklingError, match="os|system|posix"):
        SafeDetectionCheckpointer(model).load(str(pkl))
    pth = tmp_path / "evil.pth"
    torch.save({"model": {"x": _Evil()}}, str(pth))
    with pytest.raises(pickle.UnpicklingError):
        SafeDetectionCheckpointer(model).load(str(pth))


def test_checkpointer_saves_atomically_and_resumes(tmp_path):
    model = _backbone("build_resnet_det_backbone")
    ckpt = SafeDetectionCheckpointer(model, str(tmp_path))
    ckpt.save("model_0000001", iteration=1)
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000001.pth"]
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    other = _backbone("build_resnet_det_backbone")
    with torch.no_grad():
        other.res3[0].conv1.weight.add_(1.0)
    extra = SafeDetectionCheckpointer(other, str(tmp_path)).resume_or_load("", resume=True)
    assert extra["iteration"] == 1
    assert torch.equal(other.res3[0].conv1.weight, model.res3[0].conv1.weight)


def test_torchvision_layout_imagenet_weights_reach_backbone(tmp_path):
    """A torchvision-layout classifier file (layer1.0.conv1, fc) is renamed and placed by
    detectron2's suffix matching, e.g. into backbone.res2.0.conv1."""
    clf = resnet_det.create_model("resnet50", stride_in_1x1=False)
    tv = convert_state_dict(clf.state_dict(), to="torchvision")
    assert "layer1.0.conv1.weight" in tv
    path = str(tmp_path / "tv.pth")
    torch.save(tv, path)
    model = _backbone("build_resnet_det_backbone")
    SafeDetectionCheckpointer(model).load(path)
    assert torch.equal(model.res2[0].conv1.weight, clf.res2[0].conv1.weight)
    assert torch.equal(model.res4[5].conv3.norm.running_var, clf.res4[5].conv3.norm.running_var)


# ------------------------------------------------- detectron2 Mask R-CNN -> the built-in engine
MASK_ZOO = {
    # detectron2's model-zoo config -> our built-in engine's YAML of the same architecture
    "R50-FPN": (
        "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml",
        "mask_rcnn_R50_FPN.yaml",
        [],
    ),
    "R50-C4": (
        "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_1x.yaml",
        "mask_rcnn_R101.yaml",
        ["MODEL.RESNETS.DEPTH", "50"],
    ),
}


def _anchor_permutation(ours_cells, theirs_cells):
    """For each of our anchors (torchvision's order, sizes rounded) the index of detectron2's
    anchor of the same shape, found by width and height."""
    wh = lambda c: torch.stack([c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]], dim=1)  # noqa: E731
    dist = (wh(ours_cells)[:, None, :] - wh(theirs_cells)[None, :, :]).abs().sum(-1)
    perm = dist.argmin(1)
    assert sorted(perm.tolist()) == list(range(len(theirs_cells)))
    return perm


@pytest.mark.parametrize("name", sorted(MASK_ZOO))
def test_detectron2_mask_rcnn_checkpoint_loads_into_the_builtin_model(
    name, tmp_path, random_norms, single_thread
):
    """A detectron2 Mask R-CNN checkpoint (a randomly initialised model of its model-zoo config,
    saved by its DetectionCheckpointer) is MODEL.WEIGHTS for our built-in Mask R-CNN: every key
    placed, none left over, and the same numbers wherever the two architectures compute the
    same thing: backbone (+FPN) features, the RPN head's outputs (anchors reordered), and the
    RoI heads' boxes, scores, classes and masks on the same proposals. The proposals
    themselves differ: torchvision rounds its anchors' sides, detectron2 does not."""
    zoo, yaml, opts = MASK_ZOO[name]
    cfg = get_cfg()
    cfg.merge_from_file(d2_zoo_config(zoo), allow_unsafe=False)
    cfg.merge_from_list(
        ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.ROI_HEADS.NUM_CLASSES", "3"]
    )
    torch.manual_seed(0)
    theirs = d2_build_model(cfg).eval()
    random_norms(theirs)
    DetectionCheckpointer(theirs, save_dir=str(tmp_path)).save("d2_mask_rcnn")
    ours_cfg = our_cfg()
    ours_cfg.merge_from_file(os.path.join(ROOT, "configs", yaml))
    ours_cfg.merge_from_list(
        opts + ["MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", "", "MODEL.ROI_HEADS.NUM_CLASSES", "3"]
    )
    ours = build_model(ours_cfg).eval()
    result = load_pretrained_weights(ours, str(tmp_path / "d2_mask_rcnn.pth"))
    assert result.missing_keys == [] and result.unexpected_keys == []  # strict: all placed

    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 80, (3, 96, 128), generator=g).float()
    img[:, 10:50, 20:70], img[:, 55:90, 80:120] = 220.0, 140.0
    with torch.no_grad():
        images = theirs.preprocess_image([{"image": img}])
        fa, fb = theirs.backbone(images.tensor), ours.backbone(images.tensor)
        assert set(fa) <= set(fb)
        for k in fa:  # p2..p6 (FPN) or res4 (C4)
            assert 1e-2 < fa[k].abs().mean() < 1e3
            torch.testing.assert_close(fb[k], fa[k], rtol=0, atol=1e-4)

        rpn_in = [fa[f] for f in theirs.proposal_generator.in_features]
        logits_a, deltas_a = theirs.proposal_generator.rpn_head(rpn_in)
        logits_b, deltas_b = ours.rpn.head(rpn_in)
        perm = _anchor_permutation(
            ours.rpn.anchor_generator.cell_anchors[0],
            next(iter(theirs.proposal_generator.anchor_generator.cell_anchors)),
        )
        for la, da, lb, db in zip(logits_a, deltas_a, logits_b, deltas_b):
            torch.testing.assert_close(lb, la[:, perm], rtol=0, atol=1e-4)
            n, _, h, w = da.shape
            torch.testing.assert_close(
                db, da.view(n, -1, 4, h, w)[:, perm].view(n, -1, h, w), rtol=0, atol=1e-4
            )

        proposals, _ = theirs.proposal_generator(images, fa)
        expected = theirs.roi_heads(images, fa, proposals)[0][0]
        got = ours.roi_heads(
            {f: fa[f] for f in ours.roi_in_features},
            [proposals[0].proposal_boxes.tensor],
            list(images.image_sizes),
        )[0][0]
    assert len(expected) > 10 and len(got["boxes"]) == len(expected)
    torch.testing.assert_close(got["boxes"], expected.pred_boxes.tensor, rtol=0, atol=1e-4)
    torch.testing.assert_close(got["scores"], expected.scores, rtol=0, atol=1e-4)
    assert torch.equal(got["labels"] - 1, expected.pred_classes)  # ours 1-based (torchvision)
    side = 28 if name == "R50-FPN" else 14
    assert got["masks"].shape == expected.pred_masks.shape == (len(expected), 1, side, side)
    torch.testing.assert_close(got["masks"], expected.pred_masks, rtol=0, atol=1e-4)

"""Weights between detectron2 and resnet_det: our converter's detectron2 layout loads into
detectron2's own ResNet; the MSRA/Caffe2 .pkl layout loads into ours through the restricted
unpickler; the plugin's checkpointer never runs code from a file and writes atomically."""
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

import resnet_det  # noqa: E402
import resnet_det.d2  # noqa: E402
from resnet_det.checkpoint import convert_state_dict, save_weights  # noqa: E402
from resnet_det.d2 import SafeDetectionCheckpointer  # noqa: E402


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

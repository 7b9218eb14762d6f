"""load_weights: layout detection (torchvision, detectron2, MSRA/Caffe2, resnet_det), strict
checks, clear errors, conversion."""

import importlib.util
import os
import pickle
import re

import numpy as np
import pytest
import torch
import torchvision

from resnet_det import create_model, load_weights
from resnet_det.checkpoint import WeightsMismatchError, convert_state_dict, read_checkpoint
from resnet_det.modeling import FrozenBatchNorm2d
from resnet_det.utils.safe_pickle import safe_load

pytestmark = pytest.mark.usefixtures("single_thread")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _randomized(model):
    """Random weights and non-trivial BN statistics, so that every entry matters."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                t.copy_(
                    torch.rand(t.shape, generator=g) * (0.5 if "running_var" in name else 0.1)
                    + (0.75 if "running_var" in name or name.endswith("norm.weight") else 0)
                )
    return model.eval()


def _outputs(model, x):
    with torch.no_grad():
        return model.eval()(x)


# Our name -> Caffe2 blob name (written independently of the package's own mapping).
def to_caffe2(key):
    leaf = {"weight": "w", "bias": "b"}
    bn_leaf = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}
    m = re.match(r"stem\.conv1\.norm\.(\w+)$", key)
    if m:
        return f"res_conv1_bn_{bn_leaf[m[1]]}"
    m = re.match(r"stem\.conv1\.(\w+)$", key)
    if m:
        return f"conv1_{leaf[m[1]]}"
    branch = {"conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c", "shortcut": "branch1"}
    m = re.match(r"res(\d)\.(\d+)\.(conv\d|shortcut)\.norm\.(\w+)$", key)
    if m:
        return f"res{m[1]}_{m[2]}_{branch[m[3]]}_bn_{bn_leaf[m[4]]}"
    m = re.match(r"res(\d)\.(\d+)\.(conv\d|shortcut)\.(\w+)$", key)
    if m:
        return f"res{m[1]}_{m[2]}_{branch[m[3]]}_{leaf[m[4]]}"
    m = re.match(r"linear\.(\w+)$", key)
    return f"fc1000_{leaf[m[1]]}"


@pytest.fixture(scope="module")
def r50():
    """A randomized paper-layout ResNet-50 with FrozenBN (as MSRA's), its input and logits."""
    torch.manual_seed(0)
    model = _randomized(create_model("resnet50", norm="FrozenBN"))
    x = torch.randn(1, 3, 32, 32)
    return model, x, _outputs(model, x)


def test_resnet_det_layout_raw_and_wrapped(tmp_path, r50):
    model, x, expected = r50
    path = tmp_path / "model_final.pth"
    torch.save({"model": model.state_dict(), "iteration": 10}, path)
    target = create_model("resnet50", norm="FrozenBN")
    result = load_weights(target, path)
    assert result.layout == "resnet_det"
    assert torch.equal(_outputs(target, x), expected)
    target2 = create_model("resnet50", norm="FrozenBN")
    load_weights(target2, model.state_dict())
    assert torch.equal(_outputs(target2, x), expected)


def test_detectron2_prefixed_checkpoint(tmp_path, r50):
    model, x, expected = r50
    sd = {f"backbone.bottom_up.{k}": v for k, v in model.state_dict().items() if k[:3] != "lin"}
    sd["proposal_generator.rpn_head.conv.weight"] = torch.zeros(3, 3, 3, 3)
    path = tmp_path / "d2.pth"
    torch.save({"model": sd, "__author__": "detectron2"}, path)
    target = create_model(
        "resnet50", norm="FrozenBN", num_classes=None, out_features=["res4", "res5"]
    )
    with pytest.raises(WeightsMismatchError, match="proposal_generator"):
        load_weights(target, path)  # strict: the RPN weights have no place here
    result = load_weights(target, path, strict=False)
    assert result.layout == "detectron2" and result.missing_keys == []
    assert result.unexpected_keys == ["proposal_generator.rpn_head.conv.weight"]
    reference = create_model(
        "resnet50", norm="FrozenBN", num_classes=None, out_features=["res4", "res5"]
    )
    load_weights(reference, model.state_dict(), strict=False)
    with torch.no_grad():
        got, want = target(x), reference(x)
    assert all(torch.equal(got[k], want[k]) for k in ("res4", "res5"))


def test_detectron2_c4_checkpoint_res5_in_roi_heads(r50):
    model, x, expected = r50
    sd = {}
    for k, v in model.state_dict().items():
        sd[("roi_heads." + k) if k.startswith("res5.") else ("backbone." + k)] = v
    target = create_model("resnet50", norm="FrozenBN")
    assert load_weights(target, {"model": sd}).missing_keys == []
    assert torch.equal(_outputs(target, x), expected)


def test_msra_caffe2_pkl_gives_identical_outputs(tmp_path, r50):
    model, x, expected = r50
    blobs = {to_caffe2(k): v.numpy() for k, v in model.state_dict().items()}
    blobs["res2_0_branch2a_w_momentum"] = np.zeros(1, dtype=np.float32)  # optimizer state
    path = tmp_path / "R-50.pkl"
    path.write_bytes(pickle.dumps({"blobs": blobs}, protocol=2))
    target = create_model("resnet50", norm="FrozenBN")
    result = load_weights(target, path)
    assert result.layout == "caffe2" and result.missing_keys == result.unexpected_keys == []
    assert torch.equal(_outputs(target, x), expected)
    # {"model": {...}} wrapper, as some Detectron files have it.
    path2 = tmp_path / "R-50-model.pkl"
    path2.write_bytes(pickle.dumps({"model": blobs}, protocol=4))
    target2 = create_model("resnet50", norm="FrozenBN")
    load_weights(target2, path2)
    assert torch.equal(_outputs(target2, x), expected)


def test_caffe2_affine_only_bn_fills_statistics(tmp_path, r50):
    # MSRA's released pkls store frozen BN as scale and bias only.
    model, x, _ = r50
    blobs = {
        to_caffe2(k): v.numpy()
        for k, v in model.state_dict().items()
        if not k.endswith(("running_mean", "running_var"))
    }
    target = _randomized(create_model("resnet50", norm="FrozenBN"))
    result = load_weights(target, blobs)
    assert result.missing_keys == []
    assert "stem.conv1.norm.running_var" in result.filled_keys
    norm = target.stem.conv1.norm
    y = norm(torch.ones(1, 64, 1, 1)).flatten()
    assert torch.allclose(y, norm.weight + norm.bias, atol=1e-6)  # exactly x * s + b


def test_torchvision_into_frozen_bn_loads_buffers():
    tv = torchvision.models.resnet18()
    with torch.no_grad():
        tv.bn1.running_mean.uniform_(1, 2)
    target = create_model("resnet18", norm="FrozenBN", stride_in_1x1=False)
    assert isinstance(target.stem.conv1.norm, FrozenBatchNorm2d)
    load_weights(target, tv.state_dict())
    assert torch.equal(target.stem.conv1.norm.running_mean, tv.bn1.running_mean)


def test_frozen_model_after_freeze_loads():
    tv = torchvision.models.resnet18()
    target = create_model("resnet18", stride_in_1x1=False, freeze_at=2)
    result = load_weights(target, tv.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(target.res2[0].conv1.norm.running_var, tv.layer1[0].bn1.running_var)


def test_different_architecture_error(tmp_path):
    path = tmp_path / "resnet50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    with pytest.raises(WeightsMismatchError, match="looks like a different architecture") as e:
        load_weights(create_model("resnet18"), path)
    assert "resnet50.pth" in str(e.value) and "bottleneck" in str(e.value)
    assert "res2.0.conv1.weight is (64, 64, 1, 1) in the checkpoint but (64, 64, 3, 3)" in str(
        e.value
    )
    with pytest.raises(WeightsMismatchError, match="different architecture"):
        load_weights(create_model("resnet18"), path, strict=False)
    # VGG weights name nothing in a ResNet: never a silent no-op.
    with torch.device("meta"):
        vgg_sd = {k: torch.empty(v.shape) for k, v in create_model("vgg16").state_dict().items()}
    with pytest.raises(WeightsMismatchError, match="different architecture"):
        load_weights(create_model("resnet18"), vgg_sd, strict=False)


def test_shape_mismatch_names_key_and_shapes():
    sd = create_model("resnet18").state_dict()
    sd["linear.weight"] = torch.zeros(10, 512)
    sd["linear.bias"] = torch.zeros(10)
    with pytest.raises(WeightsMismatchError, match="linear") as e:
        load_weights(create_model("resnet18"), sd, strict=False)
    assert "(10, 512)" in str(e.value) and "(1000, 512)" in str(e.value)


def test_strict_missing_and_unexpected():
    sd = create_model("resnet18").state_dict()
    del sd["res3.0.conv1.weight"]
    sd["res3.0.extra.weight"] = torch.zeros(1)
    model = create_model("resnet18")
    before = model.res3[0].conv1.weight.clone()
    with pytest.raises(WeightsMismatchError) as e:
        load_weights(model, sd)
    assert "res3.0.conv1.weight" in str(e.value) and "res3.0.extra.weight" in str(e.value)
    assert torch.equal(model.res3[0].conv1.weight, before)  # nothing loaded on failure
    result = load_weights(model, sd, strict=False)
    assert result.missing_keys == ["res3.0.conv1.weight"]
    assert result.unexpected_keys == ["res3.0.extra.weight"]
    assert torch.equal(model.res2[0].conv1.weight, sd["res2.0.conv1.weight"])


def test_unrecognized_layout():
    with pytest.raises(ValueError, match="layout"):
        load_weights(create_model("resnet18"), {"foo.bar": torch.zeros(1)})


@pytest.mark.parametrize("tv_name,bn", [("resnet18", False), ("vgg16_bn", True)])
def test_convert_round_trip_torchvision(tv_name, bn):
    with torch.device("meta"):
        tv_sd = getattr(torchvision.models, tv_name)().state_dict()
    tv_sd = {k: torch.zeros(v.shape, dtype=v.dtype) for k, v in tv_sd.items()}
    ours = convert_state_dict(tv_sd, to="resnet_det")
    name = tv_name.replace("_bn", "")
    kwargs = {"norm": "BN"} if bn else {"stride_in_1x1": False}
    with torch.device("meta"):
        model_keys = list(create_model(name, **kwargs).state_dict())
    assert sorted(ours) == sorted(model_keys)
    assert convert_state_dict(ours, to="detectron2").keys() == ours.keys()
    back = convert_state_dict(ours, to="torchvision")
    assert list(back) == list(tv_sd)


def test_torchvision_conversion_rejects_cifar_names():
    with pytest.raises(ValueError, match="torchvision"):
        convert_state_dict(create_model("preact_resnet110_cifar").state_dict(), to="torchvision")


def _convert_tool():
    spec = importlib.util.spec_from_file_location(
        "convert_weights_tool", os.path.join(REPO, "tools", "convert_weights.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_convert_weights_tool(tmp_path, capsys):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    src = tmp_path / "r18_tv.pth"
    torch.save(tv.state_dict(), src)
    tool = _convert_tool()
    out_pkl = tmp_path / "r18_d2.pkl"
    assert (
        tool.main(
            [
                str(src),
                str(out_pkl),
                "--to",
                "detectron2",
                "--check-model",
                "resnet18",
                "--stride-in-1x1",
                "false",
            ]
        )
        == 0
    )
    data = safe_load(out_pkl)
    assert data["__author__"] == "resnet_det" and data["matching_heuristics"] is True
    assert isinstance(data["model"]["stem.conv1.weight"], np.ndarray)
    model = create_model("resnet18", stride_in_1x1=False)
    assert load_weights(model, out_pkl).layout == "detectron2"
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert (model.eval()(x) - tv(x)).abs().max() < 1e-5
    out_tv = tmp_path / "r18_back.pth"
    assert tool.main([str(out_pkl), str(out_tv), "--to", "torchvision"]) == 0
    back = read_checkpoint(out_tv)
    assert list(back) == list(tv.state_dict())
    assert all(torch.equal(back[k], v) for k, v in tv.state_dict().items())
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp_")]  # atomic writes
    assert "wrote" in capsys.readouterr().out


def test_caffe2_name_map():
    from resnet_det.checkpoint.layouts import caffe2_to_resnet_det, detect_layout

    names = {
        "conv1_w": "stem.conv1.weight",
        "res_conv1_bn_s": "stem.conv1.norm.weight",
        "res2_0_branch1_w": "res2.0.shortcut.weight",
        "res2_0_branch1_bn_b": "res2.0.shortcut.norm.bias",
        "res4_22_branch2b_bn_rm": "res4.22.conv2.norm.running_mean",
        "res5_2_branch2c_gn_s": "res5.2.conv3.norm.weight",
        "fc1000_w": "linear.weight",
        "pred_b": "linear.bias",
        "conv5_3_w": "vgg_block5.conv5_3.weight",
        "fc6_b": "fc6.bias",
    }
    sd = {k: torch.zeros(1) for k in names}
    assert detect_layout(sd) == "caffe2"
    assert list(caffe2_to_resnet_det(sd)) == list(names.values())

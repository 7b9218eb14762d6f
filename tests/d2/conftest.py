"""Fixtures of the detectron2 plugin tests (only torch here: the file loads without detectron2)."""

import os

import pytest
import torch
from torch import nn


def randomize_norms(model: nn.Module, seed: int = 0) -> None:
    """Give every (Frozen)BatchNorm random statistics and affine parameters, so that a wrong
    mapping of any norm shows in the features; the last norm of each residual branch is kept
    small so that the activations of a deep random net stay O(1) and 1e-4 is a meaningful
    tolerance."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, m in model.named_modules():
            if not all(hasattr(m, b) for b in ("weight", "bias", "running_mean", "running_var")):
                continue
            if not isinstance(m.running_mean, torch.Tensor):
                continue
            n = m.running_mean.numel()
            scale = (0.05, 0.2) if name.endswith("conv3.norm") else (0.5, 1.0)
            m.weight.copy_(torch.empty(n).uniform_(*scale, generator=g))
            m.bias.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.empty(n).uniform_(0.5, 1.5, generator=g))


@pytest.fixture
def random_norms():
    """``randomize_norms`` as a fixture."""
    return randomize_norms


def d2_zoo_config(name: str) -> str:
    """Path of detectron2's model-zoo config ``name`` (e.g.
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml") in the installed detectron2 (its
    package copy, else the source tree it was installed from); skips the test when neither has
    it."""
    import detectron2

    package = os.path.dirname(detectron2.__file__)
    for folder in (
        os.path.join(package, "model_zoo", "configs"),
        os.path.join(os.path.dirname(package), "configs"),
    ):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    pytest.skip(f"detectron2's model-zoo config {name} is not in this installation ({package})")


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    """One folder for the demo data of every plugin test module (generated on first use),
    unless RESNET_DET_DATASETS is set."""
    return os.environ.get("RESNET_DET_DATASETS") or str(tmp_path_factory.mktemp("datasets"))


@pytest.fixture(scope="module")
def demo_datasets(demo_root):
    """RESNET_DET_DATASETS pointed at ``demo_root`` for one module; also registers
    ``shapes_val_first2`` (the first 2 validation images) in detectron2's catalogs."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESNET_DET_DATASETS", demo_root)
        register_first2()
        yield demo_root


def register_first2() -> None:
    """``shapes_val_first2`` in detectron2's catalogs: shapes_val's first 2 images, evaluated
    with its json (COCO evaluation of a few images in a short test)."""
    from detectron2.data import DatasetCatalog as D2DatasetCatalog
    from detectron2.data import MetadataCatalog as D2MetadataCatalog

    from resnet_det.d2 import train as d2train

    d2train.register_datasets(["shapes_val"])
    if "shapes_val_first2" in D2DatasetCatalog.list():
        return
    meta = D2MetadataCatalog.get("shapes_val")
    D2DatasetCatalog.register("shapes_val_first2", lambda: D2DatasetCatalog.get("shapes_val")[:2])
    D2MetadataCatalog.get("shapes_val_first2").set(
        json_file=meta.json_file, image_root=meta.image_root, evaluator_type="coco"
    )

"""Classification evaluation: top-k by hand, 10-crop = mean softmax over torchvision's ten
views, the fully-convolutional multi-scale test, and the loader on a generated JPEG tree."""

import os

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2 as T
from PIL import Image
from torch import nn

import resnet_det
from resnet_det.data.classification import (
    build_classification_transform,
    classification_test_loader,
)
from resnet_det.data.datasets.imagenet import load_image_folder
from resnet_det.evaluation.classification import (
    ClassificationEvaluator,
    evaluate_classifier,
    fully_convolutional_scores,
    multiscale_probs,
    ten_crop_probs,
    topk_correct,
)
from resnet_det.utils.errors import DataError

WNIDS = ["n02000000", "n01000000", "n03000000"]
COLOURS = {"n01000000": (250, 0, 0), "n02000000": (0, 250, 0), "n03000000": (0, 0, 250)}


def make_tree(root):
    for wnid in WNIDS:
        os.makedirs(os.path.join(root, wnid))
        for i, size in enumerate([(70, 60), (64, 90)]):
            Image.new("RGB", size, COLOURS[wnid]).save(os.path.join(root, wnid, f"img{i}.JPEG"))
    return root


class ColourNet(nn.Module):
    """Logits = mean of each RGB channel: the red image is class 0, green 1, blue 2 (the
    sorted-wnid order), so a correct label order gives zero error."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x.mean(dim=(2, 3)) * self.scale


def test_topk_by_hand():
    scores = torch.tensor(
        [
            [0.1, 0.5, 0.2, 0.15, 0.05, 0.0],
            [0.3, 0.1, 0.2, 0.15, 0.05, 0.2],
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
        ]
    )
    labels = torch.tensor([1, 2, 0])
    # Row 0: label 1 is top-1. Row 1: label 2 ranks 2nd or 3rd (tie with 5). Row 2: label 0 is last.
    assert topk_correct(scores, labels, (1, 3, 5)) == {1: 1, 3: 2, 5: 2}


def test_classification_evaluator_counts_hits_and_skipped_images():
    scores = torch.tensor(
        [
            [0.1, 0.5, 0.2, 0.15, 0.05, 0.0],
            [0.3, 0.1, 0.2, 0.15, 0.05, 0.2],
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5],
        ]
    )
    ev = ClassificationEvaluator("toy", topk=(1, 3))
    ev.process({"label": torch.tensor([1, 2]), "skipped": ["bad.jpg"]}, scores[:2])
    ev.process({"label": torch.tensor([], dtype=torch.int64), "skipped": ["worse.jpg"]}, None)
    ev.process({"label": torch.tensor([0])}, scores[2:])
    res = ev.evaluate()["classification"]
    # Hits as in test_topk_by_hand: top-1 1 of 3, top-3 2 of 3.
    assert res["top1"] == pytest.approx(100 / 3) and res["top1_err"] == pytest.approx(200 / 3)
    assert res["top3"] == pytest.approx(200 / 3)
    assert (res["num_images"], res["num_skipped"]) == (3, 2)
    ev.reset()
    with pytest.raises(DataError, match="no image.*'toy'"):
        ev.evaluate()


def test_label_order_and_errors_on_jpeg_tree(tmp_path):
    dicts = load_image_folder(make_tree(str(tmp_path / "val")))
    t = build_classification_transform(is_train=False, crop_size=48, test_resize=56)
    loader = classification_test_loader(dicts, transform=t, batch_size=4)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 48, 48)
    res = evaluate_classifier(ColourNet(), loader, mode="center", topk=(1, 2))
    assert res["num_images"] == 6 and res["top1_err"] == 0.0 and res["top2"] == 100.0

    # A net that always says class 2 (blue) is right on 2 of 6 images: top-1 error 66.67%.
    class Blue(ColourNet):
        def forward(self, x):
            return torch.tensor([0.0, 0.0, 1.0]).expand(x.shape[0], 3) * self.scale

    res = evaluate_classifier(Blue(), loader, mode="center", topk=(1, 2))
    assert res["top1_err"] == pytest.approx(100 * 4 / 6)


def test_ten_crop_averages_torchvision_views(tmp_path):
    torch.manual_seed(0)
    net = resnet_det.create_model("resnet20_cifar", num_classes=3).eval()
    img = torch.randint(0, 256, (3, 45, 60), dtype=torch.uint8)
    mean, std = [120.0, 110.0, 100.0], [60.0, 61.0, 62.0]
    t = build_classification_transform(
        is_train=False,
        crop_size=32,
        test_resize=40,
        test_mode="10crop",
        pixel_mean=mean,
        pixel_std=std,
    )
    views = t(img)
    assert views.shape == (10, 3, 32, 32)
    ref_views = T.TenCrop(32)(T.Resize(40, antialias=True)(img))
    with torch.no_grad():
        manual = torch.stack(
            [
                F.softmax(net(T.functional.normalize(v.float(), mean, std)[None]), 1)[0]
                for v in ref_views
            ]
        ).mean(0)
    got = ten_crop_probs(net, views[None])[0]
    assert torch.allclose(got, manual, atol=1e-5)
    # ... and it is not simply the centre view.
    with torch.no_grad():
        centre = F.softmax(net(views[4:5]), 1)[0]
    assert not torch.allclose(got, centre, atol=1e-4)


def test_fully_convolutional_multiscale():
    torch.manual_seed(0)
    net = resnet_det.create_model("resnet18", num_classes=4).eval()
    x = torch.randn(1, 3, 96, 128)
    maps = fully_convolutional_scores(net, x)
    assert maps.shape == (1, 4, 3, 4)  # stride 32
    with torch.no_grad():
        assert torch.allclose(maps.mean(dim=(2, 3)), net(x), atol=1e-5)
    img = torch.randint(0, 256, (3, 50, 70), dtype=torch.uint8)
    t = build_classification_transform(
        is_train=False, crop_size=64, test_mode="multiscale", multiscale_sizes=[64, 96]
    )
    scales = t(img)
    assert [tuple(s.shape) for s in scales] == [(3, 64, 89), (3, 96, 134)]
    manual = torch.stack(
        [F.softmax(fully_convolutional_scores(net, s[None]), 1).mean(dim=(2, 3))[0] for s in scales]
    ).mean(0)
    assert torch.allclose(multiscale_probs(net, scales), manual, atol=1e-6)
    assert multiscale_probs(net, scales).sum().item() == pytest.approx(1.0, abs=1e-5)

    # VGG pools to 7x7 for its fc6 (building a real VGG-16 costs 138M parameters here).
    class VGGLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.avgpool, self.linear = nn.AdaptiveAvgPool2d((7, 7)), nn.Linear(3 * 49, 4)

        def forward(self, x):
            return self.linear(self.avgpool(x).flatten(1))

    with pytest.raises(ValueError, match="VGG"):
        fully_convolutional_scores(VGGLike(), x)


def test_multiscale_mode_through_loader(tmp_path):
    dicts = load_image_folder(make_tree(str(tmp_path / "val")))
    t = build_classification_transform(
        is_train=False, crop_size=32, test_mode="multiscale", multiscale_sizes=[32, 48]
    )
    loader = classification_test_loader(dicts, transform=t, batch_size=1)
    torch.manual_seed(0)
    net = resnet_det.create_model("resnet20_cifar", num_classes=3)
    res = evaluate_classifier(net, loader, mode="multiscale", topk=(1,))
    assert res["num_images"] == 6 and 0.0 <= res["top1_err"] <= 100.0
    assert net.training  # mode restored

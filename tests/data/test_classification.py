"""Classification transforms and the training stream: PCA lighting by hand, scale
augmentation range, determinism across workers, resume offsets and process shards."""
import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T

from resnet_det.data.classification import (
    IMAGENET_PCA_EIGVAL,
    IMAGENET_PCA_EIGVEC,
    PCALighting,
    build_classification_transform,
    classification_train_loader,
)
from resnet_det.data.digits import load_digits_split


def test_pca_lighting_shift_by_hand():
    pca = PCALighting(alphastd=0.1)
    # alpha = (1, 0, 0) adds 255 * 0.2175 * first eigenvector (column 0 of the matrix).
    shift = pca.rgb_shift(torch.tensor([1.0, 0.0, 0.0]))
    expected = [255 * 0.2175 * IMAGENET_PCA_EIGVEC[r][0] for r in range(3)]
    assert torch.allclose(shift, torch.tensor(expected), atol=1e-4)
    img = torch.full((3, 4, 5), 100.0)
    torch.manual_seed(0)
    out = pca(img)
    torch.manual_seed(0)
    alpha = torch.randn(3) * 0.1
    manual = sum(255 * alpha[j] * IMAGENET_PCA_EIGVAL[j] * torch.tensor([IMAGENET_PCA_EIGVEC[r][j] for r in range(3)])
                 for j in range(3))
    assert torch.allclose(out[:, 0, 0] - 100.0, manual, atol=1e-4)
    assert torch.equal(PCALighting(alphastd=0.0)(img), img)


def test_scale_augmentation_range():
    # Shorter side drawn from [256, 480] inclusive (Sec. 3.4).
    t = build_classification_transform(is_train=True, crop_size=224, scale_range=[256, 480])
    resize = t.transforms[0]
    assert isinstance(resize, T.RandomResize) and (resize.min_size, resize.max_size) == (256, 481)
    sides = set()
    for s in range(40):
        torch.manual_seed(s)
        sides.add(min(resize(torch.zeros(3, 300, 400, dtype=torch.uint8)).shape[-2:]))
    assert min(sides) >= 256 and max(sides) <= 480 and len(sides) > 20


def test_cifar_pad_crop_flip_is_a_shifted_view():
    img = torch.arange(3 * 32 * 32, dtype=torch.float32).view(3, 32, 32).to(torch.uint8)
    t = build_classification_transform(is_train=True, crop_size=32, pad=4, flip_prob=0.0)
    padded = torch.nn.functional.pad(img.float(), (4, 4, 4, 4))
    for s in range(5):
        torch.manual_seed(s)
        out = t(img)
        hits = [(i, j) for i in range(9) for j in range(9) if torch.equal(padded[:, i:i + 32, j:j + 32], out)]
        assert hits, "the output is not a 32x32 window of the 4-pixel zero-padded image"


def _batches(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def _loader(dicts, **kw):
    t = build_classification_transform(is_train=True, crop_size=32, pad=4, flip_prob=0.5)
    return classification_train_loader(dicts, transform=t, seed=7, **kw)


def test_stream_deterministic_across_workers_and_resume():
    dicts = load_digits_split("test")  # 297 images: batches cross epoch boundaries
    ref = _batches(_loader(dicts, global_batch_size=64, num_workers=0), 6)
    two = _batches(_loader(dicts, global_batch_size=64, num_workers=2), 6)
    resumed = _batches(_loader(dicts, global_batch_size=64, num_workers=0, start_iter=4), 2)
    for a, b in zip(ref, two):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    for a, b in zip(ref[4:], resumed):
        assert torch.equal(a["image"], b["image"]) and a["image_id"] == b["image_id"]
    # Each epoch visits every image once.
    first_epoch = [i for b in ref for i in b["image_id"]][:297]
    assert sorted(first_epoch) == sorted(d["image_id"] for d in dicts)
    assert not torch.equal(ref[0]["image"], ref[1]["image"])


def test_process_shards_make_up_the_global_batch():
    dicts = load_digits_split("test")
    full = _batches(_loader(dicts, global_batch_size=8), 3)
    r0 = _batches(_loader(dicts, global_batch_size=8, rank=0, world_size=2), 3)
    r1 = _batches(_loader(dicts, global_batch_size=8, rank=1, world_size=2), 3)
    for f, a, b in zip(full, r0, r1):
        assert torch.equal(f["image"], torch.cat([a["image"], b["image"]]))
    with pytest.raises(ValueError, match="IMS_PER_BATCH"):
        _loader(dicts, global_batch_size=7, world_size=2)


def test_config_errors_name_the_key():
    import os

    from resnet_det.config import get_cfg
    from resnet_det.data.classification import build_classification_train_loader

    root = os.path.join(os.path.dirname(__file__), "..", "..")
    for key, value, match in (("INPUT.CLS.SCALE_RANGE", "[480, 256]", "INPUT.CLS.SCALE_RANGE"),
                              ("TEST.CLS_MODES", "['center', '12crop']", "12crop"),
                              ("INPUT.CLS.TEST_RESIZE", "8", "INPUT.CLS.TEST_RESIZE"),
                              ("MODEL.CLASSIFIER.NUM_CLASSES", "5", "NUM_CLASSES")):
        cfg = get_cfg()
        cfg.merge_from_file(os.path.join(root, "configs", "digits", "resnet20.yaml"))
        cfg.merge_from_list([key, value])
        with pytest.raises(ValueError, match=match):
            build_classification_train_loader(cfg)

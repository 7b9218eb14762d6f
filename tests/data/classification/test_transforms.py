"""Classification transforms: PCA lighting by hand, the scale augmentation range (Sec. 3.4),
CIFAR's pad + crop (Sec. 4.2), test views."""

import pytest
import torch
import torchvision.transforms.v2 as T

from resnet_det.data.classification import (
    IMAGENET_PCA_EIGVAL,
    IMAGENET_PCA_EIGVEC,
    PCALighting,
    build_classification_transform,
)


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
    manual = sum(
        255
        * alpha[j]
        * IMAGENET_PCA_EIGVAL[j]
        * torch.tensor([IMAGENET_PCA_EIGVEC[r][j] for r in range(3)])
        for j in range(3)
    )
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
        hits = [
            (i, j)
            for i in range(9)
            for j in range(9)
            if torch.equal(padded[:, i : i + 32, j : j + 32], out)
        ]
        assert hits, "the output is not a 32x32 window of the 4-pixel zero-padded image"


def test_test_views():
    img = torch.randint(0, 256, (3, 40, 60), dtype=torch.uint8)
    mean, std = [10.0, 20.0, 30.0], [2.0, 4.0, 8.0]
    kw = dict(is_train=False, crop_size=32, test_resize=36, pixel_mean=mean, pixel_std=std)
    center = build_classification_transform(test_mode="center", **kw)(img)
    assert center.shape == (3, 32, 32) and center.dtype == torch.float32
    ten = build_classification_transform(test_mode="10crop", **kw)(img)
    assert ten.shape == (10, 3, 32, 32)
    # Views 5..9 are the corners and centre of the flipped image: its top-left corner is the
    # flipped top-right one, its centre the flipped centre.
    assert torch.equal(ten[5], ten[1].flip(-1)) and torch.equal(ten[9], ten[4].flip(-1))
    assert torch.equal(ten[4], center)
    multi = build_classification_transform(test_mode="multiscale", multiscale_sizes=[20, 30], **kw)(
        img
    )
    assert [tuple(m.shape) for m in multi] == [(3, 20, 30), (3, 30, 45)]
    with pytest.raises(ValueError, match="12crop"):
        build_classification_transform(test_mode="12crop", **kw)

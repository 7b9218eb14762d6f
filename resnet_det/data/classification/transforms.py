"""Classification input transforms: the paper's training augmentation and test views.

ImageNet (Sec. 3.4): scale augmentation with the shorter side sampled in [256, 480], a 224
crop, horizontal flip, mean subtraction and AlexNet's PCA colour augmentation; test by a
centre crop, ten crops, or the whole image at several scales. CIFAR-10 (Sec. 4.2): 4-pixel
zero padding, a 32x32 crop and a flip. The random ops draw from torch's global generator; the
training dataset seeds it per sample (classification/dataset.py).
"""

from typing import Any, Callable, List, Sequence

import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from ..io import to_format

__all__ = [
    "IMAGENET_PCA_EIGVAL",
    "IMAGENET_PCA_EIGVEC",
    "TEST_MODES",
    "PCALighting",
    "build_classification_transform",
]

# AlexNet's PCA of ImageNet RGB pixels (values in [0, 1]); the colour augmentation adds
# eigvec @ (alpha * eigval) with alpha ~ N(0, 0.1) per image (Krizhevsky et al. 2012, Sec. 4.1;
# the paper's Sec. 3.4 "standard color augmentation in [21]").
IMAGENET_PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
IMAGENET_PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)

TEST_MODES = ("center", "10crop", "multiscale")


class PCALighting(torch.nn.Module):
    """AlexNet-style PCA colour augmentation on a float RGB image in 0-255.

    Args:
        alphastd: std of the per-image Gaussian weights of the principal components
            (0.1 in AlexNet and the paper's recipe); 0 leaves the image unchanged.
        eigval: eigenvalues of the RGB covariance, for pixels in [0, 1].
        eigvec: eigenvectors as the columns of a 3x3 matrix (RGB rows).
        pixel_scale: range of the pixels the eigenvalues refer to, relative to the input
            (255: the image is in 0-255, the PCA was computed in 0-1).
    """

    def __init__(
        self,
        *,
        alphastd: float = 0.1,
        eigval: Sequence[float] = IMAGENET_PCA_EIGVAL,
        eigvec: Sequence[Sequence[float]] = IMAGENET_PCA_EIGVEC,
        pixel_scale: float = 255.0,
    ):
        super().__init__()
        if alphastd < 0:
            raise ValueError(f"PCALighting: alphastd must be >= 0, got {alphastd}")
        self.alphastd = float(alphastd)
        self.register_buffer("eigval", torch.tensor(eigval, dtype=torch.float32))
        self.register_buffer("eigvec", torch.tensor(eigvec, dtype=torch.float32))
        self.pixel_scale = float(pixel_scale)

    def rgb_shift(self, alpha: torch.Tensor) -> torch.Tensor:
        """The per-channel offset added for component weights ``alpha`` (shape [3])."""
        return self.eigvec @ (alpha * self.eigval) * self.pixel_scale

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if self.alphastd == 0:
            return img
        if img.shape[-3] != 3:
            raise ValueError(f"PCALighting expects 3 RGB channels, got shape {tuple(img.shape)}")
        alpha = torch.randn(3) * self.alphastd
        return img + self.rgb_shift(alpha).view(3, 1, 1).to(img.dtype)


class _Dense(torch.nn.Module):
    """The uint8 image as a contiguous [3, H, W] tensor. Decoders leave images channels-last in
    memory, which resizing takes fastest; the float conversion and normalisation that follow
    run several times faster on a contiguous tensor (the per-channel mean and std broadcast
    along contiguous rows), and the crop is the smallest image of the chain to copy."""

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return to_format(img, "RGB")


class _Normalize(torch.nn.Module):
    """uint8 -> float, minus mean, divided by std (per channel, RGB, 0-255 units)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.mean = [float(m) for m in mean]
        self.std = [float(s) for s in std]

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return TF.normalize(img.float(), self.mean, self.std)


class _TenCrop(torch.nn.Module):
    """Resize, then the ten standard views (4 corners + centre, and their flips) stacked."""

    def __init__(self, resize: int, crop: int):
        super().__init__()
        self.resize, self.crop = resize, crop

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        img = TF.resize(img, [self.resize], antialias=True)
        return torch.stack(TF.ten_crop(img, [self.crop, self.crop]))


class _MultiScale(torch.nn.Module):
    """The whole image at each shorter side in ``sizes`` (the paper's fully-convolutional
    test, Sec. 3.4); returns a list of images of different sizes."""

    def __init__(self, sizes: Sequence[int], normalize: torch.nn.Module):
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        self.normalize = normalize

    def forward(self, img: torch.Tensor) -> List[torch.Tensor]:
        return [
            self.normalize(to_format(TF.resize(img, [s], antialias=True), "RGB"))
            for s in self.sizes
        ]


def build_classification_transform(
    *,
    is_train: bool,
    crop_size: int,
    scale_range: Sequence[int] = (),
    pad: int = 0,
    flip_prob: float = 0.5,
    pca_lighting: float = 0.0,
    test_resize: int = 0,
    pixel_mean: Sequence[float] = (0.0, 0.0, 0.0),
    pixel_std: Sequence[float] = (1.0, 1.0, 1.0),
    test_mode: str = "center",
    multiscale_sizes: Sequence[int] = (224, 256, 384, 480, 640),
) -> Callable[[torch.Tensor], Any]:
    """The transform from a uint8 RGB Tensor[3, H, W] to the model's input.

    Args:
        is_train: training augmentation (True) or a test view (False).
        crop_size: side of the square crop (224 ImageNet, 32 CIFAR).
        scale_range: (min, max): the shorter side is sampled uniformly in [min, max] before
            the crop (Sec. 3.4: [256, 480]); empty keeps the image size.
        pad: zero padding on every side before the random crop (CIFAR: 4, Sec. 4.2).
        flip_prob: probability of a horizontal flip in training.
        pca_lighting: std of AlexNet's PCA colour augmentation (0 disables).
        test_resize: shorter side before the test crops (0 keeps the image size).
        pixel_mean, pixel_std: per-channel RGB mean and std in 0-255 units.
        test_mode: "center" (Tensor[3, c, c]), "10crop" (Tensor[10, 3, c, c]) or
            "multiscale" (list of Tensor[3, h_s, w_s], one per size).
        multiscale_sizes: shorter sides of the multi-scale test.
    """
    if len(pixel_mean) != 3 or len(pixel_std) != 3:
        raise ValueError(f"pixel_mean/pixel_std need 3 values, got {pixel_mean} / {pixel_std}")
    normalize = _Normalize(pixel_mean, pixel_std)
    if is_train:
        ops: List[torch.nn.Module] = []
        if scale_range:
            if len(scale_range) != 2 or scale_range[0] > scale_range[1]:
                raise ValueError(f"scale_range must be [min, max], got {list(scale_range)}")
            # RandomResize draws the shorter side from [min_size, max_size).
            ops.append(T.RandomResize(int(scale_range[0]), int(scale_range[1]) + 1, antialias=True))
        ops.append(T.RandomCrop(crop_size, padding=pad if pad > 0 else None, pad_if_needed=True))
        if flip_prob > 0:
            ops.append(T.RandomHorizontalFlip(flip_prob))
        ops.append(_Dense())
        ops.append(T.ToDtype(torch.float32, scale=False))
        if pca_lighting > 0:
            ops.append(PCALighting(alphastd=pca_lighting))
        ops.append(T.Normalize([float(m) for m in pixel_mean], [float(s) for s in pixel_std]))
        return T.Compose(ops)
    if test_mode == "center":
        ops = [T.Resize(test_resize, antialias=True)] if test_resize else []
        return T.Compose(ops + [T.CenterCrop(crop_size), _Dense(), normalize])
    if test_mode == "10crop":
        return T.Compose([_TenCrop(test_resize or crop_size, crop_size), normalize])
    if test_mode == "multiscale":
        return _MultiScale(multiscale_sizes, normalize)
    raise ValueError(f"test_mode must be one of {TEST_MODES}, got {test_mode!r}")

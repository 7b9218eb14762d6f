"""Classification input transforms: the paper's training augmentation and test views.

ImageNet (Sec. 3.4): scale augmentation with the shorter side sampled in [256, 480], a 224
crop, horizontal flip, mean subtraction and AlexNet's PCA colour augmentation; test by a
centre crop, ten crops, or the whole image at several scales. CIFAR-10 (Sec. 4.2): 4-pixel
zero padding, a 32x32 crop and a flip. The random ops draw from torch's global generator; the
training dataset seeds it per sample (classification/dataset.py).

The training chain (ClassificationTrainTransform) draws its random parameters from the image's
size alone (``plan``), with torchvision's own ``make_params``, and applies them later
(``apply``): so a loader worker can draw them and the main process apply them on a GPU to a
batch decoded there (INPUT.DECODE_DEVICE, resnet_det.data.device_decode).
"""

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torchvision.transforms.v2 as T
import torchvision.transforms.v2.functional as TF

from ..io import to_format

__all__ = [
    "IMAGENET_PCA_EIGVAL",
    "IMAGENET_PCA_EIGVEC",
    "TEST_MODES",
    "PCALighting",
    "ClassificationTrainTransform",
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

    def draw(self) -> Optional[torch.Tensor]:
        """The component weights of one image (from torch's global generator), or None when
        ``alphastd`` is 0."""
        return None if self.alphastd == 0 else torch.randn(3) * self.alphastd

    def apply(self, img: torch.Tensor, alpha: Optional[torch.Tensor]) -> torch.Tensor:
        """``img`` with the colour shift of the drawn ``alpha`` added (on ``img``'s device)."""
        if alpha is None:
            return img
        if img.shape[-3] != 3:
            raise ValueError(f"PCALighting expects 3 RGB channels, got shape {tuple(img.shape)}")
        return img + self.rgb_shift(alpha).view(3, 1, 1).to(img.device, img.dtype)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.apply(img, self.draw())


class _Dense(torch.nn.Module):
    """The uint8 image as a contiguous [3, H, W] tensor. Decoders leave images channels-last in
    memory, which resizing takes fastest; the float conversion and normalisation that follow
    run several times faster on a contiguous tensor (the per-channel mean and std broadcast
    along contiguous rows), and the crop is the smallest image of the chain to copy."""

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return to_format(img, "RGB")


class ClassificationTrainTransform(torch.nn.Module):
    """The training chain of torchvision v2 transforms (and PCALighting), called on a uint8 RGB
    Tensor[3, H, W] as a ``T.Compose`` of them is, with the same draws from torch's global
    generator, in the same order; or in two steps:

    - ``plan(height, width)``: every random parameter for an image of that size (each
      transform's ``make_params``, on a shape-only "meta" tensor; the flip's coin first, as
      torchvision's random-apply transforms toss it);
    - ``apply(img, plan)``: the chain with those parameters, on ``img``'s device, drawing
      nothing; ``apply_batch`` does it for a batch, running the per-channel arithmetic that
      follows the crop (dtype, PCA lighting, normalisation) once on the stacked crops: the
      same values, a few kernel launches per batch instead of per image on a GPU.

    Args:
        transforms: the chain, in order (``.transforms``, as T.Compose's).
    """

    def __init__(self, transforms: Sequence[torch.nn.Module]):
        super().__init__()
        self.transforms = torch.nn.ModuleList(transforms)

    def plan(self, height: int, width: int) -> List[Any]:
        """The parameters of each op for an image of ``height`` x ``width``: a dict, None for
        a random-apply transform whose coin said no, the alpha for PCALighting."""
        params: List[Any] = []
        for op in self.transforms:
            if isinstance(op, PCALighting):
                params.append(op.draw())
            elif not isinstance(op, T.Transform):
                params.append({})
            elif isinstance(op, T.RandomHorizontalFlip) and torch.rand(1) >= op.p:
                params.append(None)
            else:
                shape = torch.empty(3, height, width, dtype=torch.uint8, device="meta")
                p = op.make_params([shape])
                height, width = _size_after(op, p, shape)
                params.append(p)
        return params

    def apply(self, img: torch.Tensor, plan: Sequence[Any]) -> torch.Tensor:
        """``img`` through the chain with the parameters ``plan`` drew."""
        return self._apply(img, plan, len(self.transforms))

    def _apply(self, img: torch.Tensor, plan: Sequence[Any], end: int) -> torch.Tensor:
        for op, p in zip(self.transforms[:end], plan):
            if isinstance(op, PCALighting):
                img = op.apply(img, p)
            elif not isinstance(op, T.Transform):
                img = op(img)
            elif p is not None:
                img = op.transform(img, p)
        return img

    def apply_batch(self, images: Sequence[torch.Tensor], plans: Sequence[Sequence[Any]]):
        """The float batch [B, 3, h, w] of ``images`` through the chain with their ``plans``
        (the values ``apply`` gives image by image)."""
        split = len(self.transforms)
        while split > 0 and isinstance(self.transforms[split - 1], _BATCHED):
            split -= 1
        batch = torch.stack([self._apply(img, plan, split) for img, plan in zip(images, plans)])
        for i in range(split, len(self.transforms)):
            op = self.transforms[i]
            if isinstance(op, PCALighting):
                alphas = [plan[i] for plan in plans]
                if alphas[0] is not None:
                    shifts = torch.stack([op.rgb_shift(a) for a in alphas]).view(-1, 3, 1, 1)
                    batch = batch + shifts.to(batch.device, batch.dtype)
            else:
                batch = op.transform(batch, {})
        return batch

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        # plan() and apply() in one pass on the image itself (the draws need its size only).
        for op in self.transforms:
            if isinstance(op, PCALighting):
                img = op(img)
            elif not isinstance(op, T.Transform):
                img = op(img)
            elif not (isinstance(op, T.RandomHorizontalFlip) and torch.rand(1) >= op.p):
                img = op.transform(img, op.make_params([img]))
        return img


def _size_after(op: T.Transform, params: Dict[str, Any], shape: torch.Tensor) -> Tuple[int, int]:
    """(height, width) of an image of ``shape`` after ``op`` with ``params``: torchvision's
    own size computation for a resize (its box kernel returns the new canvas), the crop's size,
    the same size for the per-pixel ops; any other op is run on the shape-only tensor."""
    h, w = shape.shape[-2:]
    if isinstance(op, (T.RandomResize, T.Resize)):
        _, size = TF.resize_bounding_boxes(torch.zeros(0, 4), (h, w), params["size"])
        return size
    if isinstance(op, T.RandomCrop):
        return params["height"], params["width"]
    if isinstance(op, (T.RandomHorizontalFlip, T.ToDtype, T.Normalize)):
        return h, w
    return tuple(op.transform(shape, params).shape[-2:])


# Per-channel arithmetic that draws nothing per image (PCALighting's alpha is drawn by plan),
# so a batch can go through it at once.
_BATCHED = (T.ToDtype, T.Normalize, PCALighting)


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
        return ClassificationTrainTransform(ops)
    if test_mode == "center":
        ops = [T.Resize(test_resize, antialias=True)] if test_resize else []
        return T.Compose(ops + [T.CenterCrop(crop_size), _Dense(), normalize])
    if test_mode == "10crop":
        return T.Compose([_TenCrop(test_resize or crop_size, crop_size), normalize])
    if test_mode == "multiscale":
        return _MultiScale(multiscale_sizes, normalize)
    raise ValueError(f"test_mode must be one of {TEST_MODES}, got {test_mode!r}")

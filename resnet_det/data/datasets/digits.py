"""The embedded classification set: scikit-learn's handwritten digits (UCI optdigits test
set: 1797 images of 8x8 pixels, 10 classes), shipped inside the scikit-learn package, so the
pretraining path runs on a fresh machine with no download.

Each 8x8 image (values 0-16) is scaled to 0-255, resized bilinearly to 14x14 and zero-padded
to 16x16 (as MNIST pads its 20x20 digits to 28x28), grey replicated to RGB. The CIFAR networks
of the paper's Sec. 4.2 are fully convolutional up to their global pooling, so they run on it
unchanged; 16x16 (final maps 4x4) rather than CIFAR's 32x32 carries all the information of
the 8x8 originals at a quarter of the computation, which keeps CPU training within minutes.
Fixed split: a permutation seeded with 2015 puts 1500 images in digits_train and 297 in digits_test.
"""

from functools import lru_cache
from typing import Any, Dict, List, Tuple

import numpy as np

from ..skips import check_on_bad_image

__all__ = ["DIGITS_CLASSES", "NUM_TRAIN", "SIZE", "load_digits_split"]

DIGITS_CLASSES = tuple(str(i) for i in range(10))
NUM_TRAIN = 1500
INNER, BORDER = 14, 1  # image side SIZE = INNER + 2 * BORDER
SIZE = INNER + 2 * BORDER
_SPLIT_SEED = 2015


@lru_cache(maxsize=1)
def _images_and_labels() -> Tuple[np.ndarray, np.ndarray]:
    # Here, not at the top: registering the digits names (``import resnet_det.data``) must
    # not import torch, which only building the images needs.
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(d.images.astype(np.float32) * (255.0 / 16.0))[:, None]  # [N, 1, 8, 8]
    x = F.interpolate(x, size=(INNER, INNER), mode="bilinear", align_corners=False)
    x = F.pad(x, (BORDER,) * 4)
    x = x.clamp(0, 255).round().to(torch.uint8).repeat(1, 3, 1, 1).permute(0, 2, 3, 1)
    images = np.ascontiguousarray(x.numpy())
    images.setflags(write=False)
    return images, d.target.astype(np.int64)


def load_digits_split(split: str, *, on_bad_image: str = "stop") -> List[Dict[str, Any]]:
    """digits "train" (1500 images) or "test" (297) as classification dicts.

    Args:
        split: "train" or "test".
        on_bad_image: accepted for the loaders' common interface (in-memory data cannot be bad).

    Returns:
        list of {"image": uint8 [16, 16, 3], "label", "image_id": index in sklearn's order}.
    """
    if split not in ("train", "test"):
        raise ValueError(f"digits split must be 'train' or 'test', got {split!r}")
    check_on_bad_image(on_bad_image)
    images, labels = _images_and_labels()
    order = np.random.RandomState(_SPLIT_SEED).permutation(len(labels))
    idx = order[:NUM_TRAIN] if split == "train" else order[NUM_TRAIN:]
    return [{"image": images[i], "label": int(labels[i]), "image_id": int(i)} for i in idx]

"""The one read_image, datasets_root and bad-image error of both tasks."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from resnet_det.data import io as io_module
from resnet_det.data.io import (
    BadImageError,
    MissingImageError,
    _declared_size,
    _sniff,
    check_on_bad_image,
    conversion_note,
    datasets_root,
    decode_jpegs,
    probe_image,
    read_image,
    read_image_bytes,
)
from resnet_det.utils.errors import DataError, MissingFileError, UserError


def _png(tmp_path, name="img.png"):
    arr = np.zeros((3, 4, 3), np.uint8)
    arr[..., 0], arr[..., 1], arr[..., 2] = 200, 100, 10
    path = tmp_path / name
    Image.fromarray(arr).save(path)
    return str(path)


def test_channel_orders(tmp_path):
    path = _png(tmp_path)
    rgb, bgr = read_image(path, "RGB"), read_image(path)
    assert rgb.dtype == torch.uint8 and rgb.shape == (3, 3, 4)
    assert rgb[:, 0, 0].tolist() == [200, 100, 10] and bgr[:, 0, 0].tolist() == [10, 100, 200]
    with pytest.raises(ValueError, match="YUV"):
        read_image(path, "YUV")


def test_grey_images_become_three_channels(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((5, 6), 77, np.uint8), mode="L").save(path)
    img = read_image(str(path), "RGB")
    assert img.shape == (3, 5, 6) and (img == 77).all()


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high
    arr[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 degrees counter-clockwise for display
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    img = read_image(str(path), "RGB")
    assert img.shape == (3, 40, 20)
    # Counter-clockwise: the stored left half (white) becomes the displayed bottom half.
    assert img[0, 35, 10] > 200 and img[0, 5, 10] < 50


@pytest.mark.parametrize("content", [b"", b"\xff\xd8 not really a jpeg", "truncated"])
def test_unreadable_files_raise_one_error_naming_file_and_id(tmp_path, content):
    path = tmp_path / "bad.jpg"
    if content == "truncated":
        Image.new("RGB", (64, 48), (9, 99, 199)).save(path, quality=95)
        content = path.read_bytes()[:300]
    path.write_bytes(content)
    with pytest.raises(BadImageError, match=r"bad\.jpg \(image id 42\)") as e:
        read_image(str(path), image_id=42)
    assert isinstance(e.value, DataError) and isinstance(e.value, UserError)
    assert (e.value.path, e.value.image_id) == (str(path), 42)
    assert "DATALOADER.ON_BAD_IMAGE" in str(e.value)  # the fix


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.jpg")
    with pytest.raises(MissingImageError, match=r"nope\.jpg.*does not exist") as e:
        read_image(path)
    assert isinstance(e.value, BadImageError) and isinstance(e.value, MissingFileError)
    assert isinstance(e.value, FileNotFoundError) and "image id" not in str(e.value)


def test_error_survives_pickling_and_the_worker_reraise():
    err = BadImageError.at("x.jpg", "truncated", image_id="a/1")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is BadImageError and str(back) == str(err) and back.path == "x.jpg"
    # torch's DataLoader rebuilds a worker's exception as type(message).
    assert str(MissingImageError("worker said so")) == "worker said so"


def test_datasets_root(monkeypatch):
    monkeypatch.delenv("RESNET_DET_DATASETS", raising=False)
    assert datasets_root() == "./datasets"
    monkeypatch.setenv("RESNET_DET_DATASETS", "~/somewhere")
    assert datasets_root() == os.path.join(os.path.expanduser("~"), "somewhere")


def test_check_on_bad_image():
    assert check_on_bad_image("skip") == "skip"
    with pytest.raises(ValueError, match="DATALOADER.ON_BAD_IMAGE.*'ignore'"):
        check_on_bad_image("ignore", "DATALOADER.ON_BAD_IMAGE")


# ----------------------------------------------------------------------------- decoding
# Every image mode against Pillow's picture of the same file (resnet_det.data.io module doc;
# docs/datasets.md "Decoding"). JPEG, PNG and WebP go through TorchCodec, the others through
# Pillow; the pixels must equal Pillow's convert("RGB") exactly, 16-bit samples scaled by
# 255 / 65535 and rounded. JPEG_TOLERANCE is the documented largest difference between
# TorchCodec's libjpeg-turbo and Pillow's on a JPEG: none was measured on any file here.
JPEG_TOLERANCE = 0


def _smooth(h, w, channels=3, seed=0):
    """A photo-like uint8 image (blurry colour blobs plus a little noise)."""
    rng = np.random.default_rng(seed)
    small = (rng.random((h // 8 + 2, w // 8 + 2, channels)) * 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(small.squeeze()).resize((w, h), Image.BICUBIC))
    noise = rng.integers(-6, 7, big.shape)
    return np.clip(big.astype(int) + noise, 0, 255).astype(np.uint8)


def _png_16bit(path, arr, color_type):
    """A 16-bit PNG written by hand (Pillow writes 16-bit grey only): color_type 2 (RGB) or 4
    (grey + alpha), samples big-endian."""
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    h, w = arr.shape[:2]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in arr.reshape(h, w, -1))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _scale16(v):
    return np.round(v.astype(np.float64) * 255 / 65535).astype(np.uint8)


def _grey16(h, w):
    rng = np.random.default_rng(3)
    base = _smooth(h, w, 1).astype(np.uint32) * 257
    return (base + rng.integers(0, 257, (h, w))).clip(0, 65535).astype(np.uint16)


def _write(tmp_path, case):
    """(path, reference RGB array, tolerance) of one test image."""
    rgb = _smooth(37, 53)
    img = Image.fromarray(rgb)
    path = tmp_path / case
    grey16 = _grey16(37, 53)
    saves = {
        "rgb.jpg": lambda: img.save(path, quality=90),
        "rgb444.jpg": lambda: img.save(path, quality=95, subsampling=0),
        "progressive.jpg": lambda: img.save(path, quality=85, progressive=True),
        "grey.jpg": lambda: img.convert("L").save(path, quality=90),
        "cmyk.jpg": lambda: img.convert("CMYK").save(path, quality=90),
        "rgb.png": lambda: img.save(path),
        "grey.png": lambda: img.convert("L").save(path),
        "bilevel.png": lambda: img.convert("1").save(path),
        "palette.png": lambda: img.quantize(40).save(path),
        "palette_transparent.png": lambda: img.quantize(40).save(path, transparency=3),
        "rgba.png": lambda: Image.fromarray(np.dstack([rgb, rgb[..., 1]])).save(path),
        "grey_alpha.png": lambda: img.convert("LA").save(path),
        "lossy.webp": lambda: img.save(path, quality=80),
        "lossless.webp": lambda: img.save(path, lossless=True),
        "rgba.webp": lambda: Image.fromarray(np.dstack([rgb, rgb[..., 0]])).save(
            path, lossless=True
        ),
        "palette.gif": lambda: img.quantize(64).save(path),
        "transparent.gif": lambda: img.quantize(64).save(path, transparency=5),
        "rgb.bmp": lambda: img.save(path),
        "rgb.tif": lambda: img.save(path),
        "cmyk.tif": lambda: img.convert("CMYK").save(path),
        "rgb.ppm": lambda: img.save(path),
    }
    if case in saves:
        saves[case]()
        with Image.open(path) as ref:
            reference = np.asarray(ref.convert("RGB"))
        return path, reference, JPEG_TOLERANCE if case.endswith(".jpg") else 0
    if case == "grey16.png":  # Pillow mode I;16: the all-white image
        Image.fromarray(grey16).save(path)
        return path, np.repeat(_scale16(grey16)[..., None], 3, 2), 0
    if case == "grey16.tif":  # the same through Pillow
        Image.fromarray(grey16).save(path)
        return path, np.repeat(_scale16(grey16)[..., None], 3, 2), 0
    if case == "rgb16.png":
        rgb16 = np.dstack([grey16, grey16[::-1], 65535 - grey16])
        _png_16bit(path, rgb16, 2)
        return path, _scale16(rgb16), 0
    if case == "grey_alpha16.png":
        _png_16bit(path, np.dstack([grey16, grey16[:, ::-1]]), 4)
        return path, np.repeat(_scale16(grey16)[..., None], 3, 2), 0
    raise AssertionError(case)


MODES = [
    "rgb.jpg",
    "rgb444.jpg",
    "progressive.jpg",
    "grey.jpg",
    "cmyk.jpg",
    "rgb.png",
    "grey.png",
    "bilevel.png",
    "palette.png",
    "palette_transparent.png",
    "rgba.png",
    "grey_alpha.png",
    "grey16.png",
    "rgb16.png",
    "grey_alpha16.png",
    "lossy.webp",
    "lossless.webp",
    "rgba.webp",
    "palette.gif",
    "transparent.gif",
    "rgb.bmp",
    "rgb.tif",
    "cmyk.tif",
    "grey16.tif",
    "rgb.ppm",
]


@pytest.mark.parametrize("case", MODES)
def test_every_mode_gives_the_8bit_rgb_picture(tmp_path, case):
    path, reference, tolerance = _write(tmp_path, case)
    rgb = read_image(str(path), "RGB")
    assert rgb.dtype == torch.uint8 and rgb.shape == (3, 37, 53) and rgb.is_contiguous()
    diff = (rgb.permute(1, 2, 0).numpy().astype(int) - reference.astype(int)).__abs__()
    assert diff.max() <= tolerance, f"{case}: max difference {diff.max()}"
    assert torch.equal(read_image(str(path), "BGR"), rgb.flip(0))


def test_16bit_grey_png_is_scaled_not_clipped(tmp_path):
    # Pillow's convert("RGB") clips I;16 at 255: the picture the detector saw was white.
    path, _, _ = _write(tmp_path, "grey16.png")
    with Image.open(path) as img:
        assert img.mode == "I;16" and (np.asarray(img.convert("RGB")) == 255).mean() > 0.95
    img = read_image(str(path), "RGB")
    assert img.min() < 60 and img.max() > 190  # the image's range, not a flat white


def test_jpeg_pixels_equal_pillows_across_encodings(tmp_path):
    """JPEG_TOLERANCE over sizes (odd ones exercise the chroma upsampling at the edges),
    qualities, chroma subsamplings and progressive coding."""
    worst = 0
    for i, (h, w) in enumerate([(31, 45), (480, 640), (601, 401)]):
        arr = _smooth(h, w, seed=i)
        for quality, subsampling, progressive in [(50, 2, False), (75, 1, True), (95, 0, False)]:
            path = tmp_path / f"{i}_{quality}.jpg"
            Image.fromarray(arr).save(
                path, quality=quality, subsampling=subsampling, progressive=progressive
            )
            with Image.open(path) as ref:
                reference = np.asarray(ref.convert("RGB")).astype(int)
            ours = read_image(str(path), "RGB").permute(1, 2, 0).numpy().astype(int)
            worst = max(worst, int(np.abs(ours - reference).max()))
    assert worst <= JPEG_TOLERANCE


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_applied(tmp_path, ext, orientation):
    arr = _smooth(20, 40)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.{ext}"
    kwargs = {"quality": 95} if ext == "jpg" else {"lossless": True} if ext == "webp" else {}
    Image.fromarray(arr).save(path, exif=exif, **kwargs)
    with Image.open(path) as ref:
        reference = np.asarray(ImageOps.exif_transpose(ref).convert("RGB"))
    img = read_image(str(path), "RGB").permute(1, 2, 0).numpy()
    assert img.shape == reference.shape
    assert img.shape[:2] == ((40, 20) if orientation >= 5 else (20, 40))
    np.testing.assert_array_equal(img, reference)
    header = probe_image(read_image_bytes(str(path)), str(path))
    assert (header.height, header.width) == img.shape[:2]


@pytest.mark.parametrize("ext", ["gif", "webp"])
def test_animated_images_give_their_first_frame(tmp_path, ext):
    frames = [Image.fromarray(_smooth(24, 32, seed=s)) for s in range(3)]
    path = tmp_path / f"anim.{ext}"
    kwargs = {"lossless": True} if ext == "webp" else {}
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, **kwargs)
    with Image.open(path) as ref:
        assert ref.n_frames == 3
        reference = np.asarray(ref.convert("RGB"))
    np.testing.assert_array_equal(read_image(str(path), "RGB").permute(1, 2, 0).numpy(), reference)


@pytest.mark.parametrize("mode", ["I", "F"])
def test_pixels_without_an_8bit_scale_are_refused_naming_the_file(tmp_path, mode):
    path = tmp_path / f"deep_{mode}.tif"
    values = np.arange(12, dtype=np.int32 if mode == "I" else np.float32).reshape(3, 4)
    Image.fromarray(values, mode=mode).save(path)
    with pytest.raises(BadImageError, match=rf"deep_{mode}\.tif \(image id 7\).*mode {mode}"):
        read_image(str(path), image_id=7)


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_decompression_bomb_limit_is_pillows(tmp_path, monkeypatch, ext):
    path = tmp_path / f"big.{ext}"
    Image.fromarray(_smooth(30, 40)).save(path)
    data = read_image_bytes(str(path))
    assert _declared_size(memoryview(data.numpy()), _sniff(memoryview(data.numpy()))) == (40, 30)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # refused above 2 x 500 pixels
    with pytest.raises(BadImageError, match=rf"big\.{ext}.*40x30 pixels.*MAX_IMAGE_PIXELS"):
        read_image(str(path))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)
    assert read_image(str(path)).shape == (3, 30, 40)


@pytest.mark.parametrize("ext", ["png", "webp", "gif"])
def test_truncated_files_of_every_decoder_name_the_file(tmp_path, ext):
    path = tmp_path / f"cut.{ext}"
    Image.fromarray(_smooth(64, 64)).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(BadImageError, match=rf"cut\.{ext} \(image id 3\)"):
        read_image(str(path), image_id=3)


def test_missing_torchcodec_is_reported_with_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(io_module, "_TORCHCODEC_ERROR", OSError("libtorchcodec_image.so: nope"))
    path, _, _ = _write(tmp_path, "rgb.png")
    with pytest.raises(ImportError, match="TorchCodec.*libtorchcodec_image.so.*pip install"):
        read_image(str(path))
    path, _, _ = _write(tmp_path, "rgb.bmp")  # Pillow's formats do not need it
    assert read_image(str(path)).shape == (3, 37, 53)


def test_conversion_note():
    assert conversion_note("RGB") is None
    assert "alpha dropped" in conversion_note("RGBA") and "alpha" not in conversion_note("P")
    assert "scaled" in conversion_note("I;16")


def test_decode_jpegs_matches_read_image_and_names_a_bad_file(tmp_path):
    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(_smooth(20 + i, 30, seed=i)).save(path, quality=90)
        paths.append(str(path))
    (tmp_path / "bad.jpg").write_bytes(Path(paths[0]).read_bytes()[:200])
    paths.insert(1, str(tmp_path / "bad.jpg"))
    datas = [read_image_bytes(p) for p in paths]
    out = decode_jpegs(datas, paths, device="cpu", image_ids=[0, 1, 2, 3])
    assert isinstance(out[1], BadImageError) and "bad.jpg (image id 1)" in str(out[1])
    for p, img in zip(paths[:1] + paths[2:], out[:1] + out[2:]):
        assert torch.equal(img, read_image(p, "RGB"))

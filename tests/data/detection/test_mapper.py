import numpy as np
import pytest
import torch
from PIL import Image

from resnet_det.config import ConfigError, get_cfg
from resnet_det.data.detection.mapper import DatasetMapper
from resnet_det.data.io import BadImageError, ImageSizeError, MissingImageError
from resnet_det.data.skips import SkippedImage
from resnet_det.utils.errors import DataError


def _image(tmp_path, w=40, h=20, name="img.png"):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = 200  # red
    arr[..., 2] = 10
    path = tmp_path / name
    Image.fromarray(arr).save(path)
    return str(path)


def _dict(file_name, h=20, w=40):
    return {
        "file_name": file_name,
        "image_id": 17,
        "height": h,
        "width": w,
        "annotations": [
            {"bbox": [4.0, 2.0, 12.0, 10.0], "category_id": 2, "iscrowd": 0},
            {"bbox": [0.0, 0.0, 40.0, 20.0], "category_id": 0, "iscrowd": 1},
            {"bbox": [20.0, 10.0, 40.0, 20.0], "category_id": 1, "iscrowd": 0, "difficult": 1},
        ],
    }


def _mapper(**kw):
    args = dict(
        is_train=True, min_size_train=(40,), max_size_train=1000, flip_prob=0.0, image_format="RGB"
    )
    args.update(kw)
    return DatasetMapper(**args)


def test_train_output_contract(tmp_path):
    d = _dict(_image(tmp_path))
    out = _mapper()(d, seed=0)
    assert set(out) == {"image", "boxes", "labels", "image_id", "height", "width", "file_name"}
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, 40, 80)
    assert out["image"][:, 5, 5].tolist() == [200, 0, 10]
    # Crowd box removed for training; difficult kept; scale 2.
    assert out["boxes"].dtype == torch.float32
    assert out["boxes"].tolist() == [[8.0, 4.0, 24.0, 20.0], [40.0, 20.0, 80.0, 40.0]]
    assert out["labels"].dtype == torch.int64 and out["labels"].tolist() == [2, 1]
    assert (out["image_id"], out["height"], out["width"]) == (17, 20, 40)
    assert out["file_name"] == d["file_name"]
    assert len(d["annotations"]) == 3  # input not modified


def test_bgr_and_test_mode(tmp_path):
    d = _dict(_image(tmp_path))
    out = DatasetMapper(is_train=False, min_size_test=10, max_size_test=1000, image_format="BGR")(d)
    assert out["image"].shape == (3, 10, 20)
    assert out["image"][:, 5, 5].tolist() == [10, 0, 200]
    assert "boxes" not in out and (out["height"], out["width"]) == (20, 40)


def test_flip_and_seed_determinism(tmp_path):
    d = _dict(_image(tmp_path))
    m = _mapper(flip_prob=0.5, min_size_train=(20, 40, 60))
    outs = [m(d, seed=s) for s in range(30)]
    flipped = {o["boxes"][0, 0].item() / (o["image"].shape[-1] / 40) for o in outs}
    assert flipped == {4.0, 40 - 12.0}  # both flip outcomes occur, boxes consistent
    again = m(d, seed=7)
    assert torch.equal(again["image"], outs[7]["image"])
    assert torch.equal(again["boxes"], outs[7]["boxes"])


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide, 20 high
    arr[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rot.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    d = {"file_name": str(path), "image_id": 1, "height": 40, "width": 20, "annotations": []}
    out = DatasetMapper(is_train=False, min_size_test=0, image_format="RGB")(d)
    assert out["image"].shape == (3, 40, 20)
    # The stored left half (white) is the displayed top half after a clockwise rotation.
    assert out["image"][0, 5, 10] > 200 and out["image"][0, 35, 10] < 50


def test_size_mismatch_names_file_and_id(tmp_path):
    d = _dict(_image(tmp_path), h=21)
    with pytest.raises(ImageSizeError, match=r"img\.png \(image id 17\) is 40x20 .* says 40x21"):
        _mapper()(d, seed=0)
    assert isinstance(ImageSizeError("x"), DataError)
    m = _mapper(on_bad_image="skip")
    assert m(d, seed=0) == SkippedImage("size mismatch", d["file_name"], 17)


def test_missing_image_stop_and_skip(tmp_path):
    d = _dict(str(tmp_path / "nope.jpg"))
    with pytest.raises(MissingImageError) as e:
        _mapper()(d, seed=0)
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, BadImageError)
    assert "nope.jpg" in str(e.value) and "image id 17" in str(e.value)
    m = _mapper(on_bad_image="skip")
    assert m(d, seed=0) == m(d, seed=1) == SkippedImage("missing", d["file_name"], 17)
    assert m.num_skipped == 2


def test_corrupt_image_is_a_bad_image(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    d = _dict(str(path))
    with pytest.raises(BadImageError, match=r"broken\.jpg.*image id 17"):
        _mapper()(d, seed=0)
    m = _mapper(on_bad_image="skip")
    assert m(d, seed=0) == SkippedImage("unreadable", str(path), 17) and m.num_skipped == 1


def test_from_config_reads_and_validates(tmp_path):
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TRAIN = (30, 50)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "range"
    cfg.INPUT.MIN_SIZE_TEST = 25
    cfg.INPUT.FORMAT = "RGB"
    cfg.DATALOADER.ON_BAD_IMAGE = "skip"
    train = DatasetMapper.from_config(cfg, is_train=True)
    assert train.on_bad_image == "skip" and train.image_format == "RGB"
    assert train.transforms[0].short_edge_length == (30, 50)
    assert train.transforms[0].sample_style == "range"
    d = _dict(_image(tmp_path))
    assert DatasetMapper.from_config(cfg, is_train=False)(d)["image"].shape == (3, 25, 50)
    cfg.INPUT.MIN_SIZE_TRAIN = (30, 40, 50)
    with pytest.raises(ConfigError, match="INPUT.MIN_SIZE_TRAIN"):
        DatasetMapper.from_config(cfg, is_train=True)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
    cfg.INPUT.FORMAT = "YUV"
    with pytest.raises(ConfigError, match="INPUT.FORMAT"):
        DatasetMapper.from_config(cfg, is_train=True)
    cfg.INPUT.FORMAT = "BGR"
    cfg.DATALOADER.ON_BAD_IMAGE = "ignore"
    with pytest.raises(ConfigError, match="DATALOADER.ON_BAD_IMAGE"):
        DatasetMapper.from_config(cfg, is_train=True)


# ------------------------------------------------------------------------------ masks
def _masked_dict(file_name, h=20, w=40):
    """_dict with masks: a square polygon filling its box, an RLE rectangle filling its box,
    and a crowd region (dropped in training) given as RLE."""
    from pycocotools import mask as mask_util

    d = _dict(file_name, h, w)
    m = np.zeros((h, w), np.uint8)
    m[10:20, 20:40] = 1
    rle = mask_util.encode(np.asfortranarray(m))
    crowd = mask_util.encode(np.asfortranarray(np.ones((h, w), np.uint8)))
    d["annotations"][0]["segmentation"] = [[4.0, 2.0, 12.0, 2.0, 12.0, 10.0, 4.0, 10.0]]
    d["annotations"][1]["segmentation"] = {"size": [h, w], "counts": crowd["counts"].decode()}
    d["annotations"][2]["segmentation"] = {"size": [h, w], "counts": rle["counts"].decode()}
    for i, a in enumerate(d["annotations"]):
        a["id"] = 100 + i
    return d


def _mask_box(mask):
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_masks_contract_one_per_box_at_the_image_size(tmp_path):
    d = _masked_dict(_image(tmp_path))
    out = _mapper(mask_on=True)(d, seed=0)
    assert set(out) == {
        "image",
        "boxes",
        "labels",
        "masks",
        "image_id",
        "height",
        "width",
        "file_name",
    }
    masks = out["masks"]
    assert masks.dtype == torch.uint8 and masks.shape == (2, 40, 80)
    assert set(masks.unique().tolist()) == {0, 1}
    # Same order as boxes (crowd dropped); each mask fills its box (scale 2).
    for mask, box in zip(masks, out["boxes"].tolist()):
        assert _mask_box(mask) == box
        assert mask.sum().item() == (box[2] - box[0]) * (box[3] - box[1])
    assert "masks" not in _mapper()(d, seed=0)
    test = DatasetMapper(is_train=False, min_size_test=20, mask_on=True)(d)
    assert "masks" not in test and "boxes" not in test


def test_mask_on_changes_nothing_else(tmp_path):
    """The masks take no random draw: image, boxes and labels are bit-identical with and
    without mask_on, for every seed (scales and flips vary)."""
    d = _masked_dict(_image(tmp_path))
    plain = _mapper(flip_prob=0.5, min_size_train=(20, 33, 60))
    masked = _mapper(flip_prob=0.5, min_size_train=(20, 33, 60), mask_on=True)
    for seed in range(12):
        a, b = plain(d, seed=seed), masked(d, seed=seed)
        for k in ("image", "boxes", "labels"):
            assert torch.equal(a[k], b[k]), (seed, k)
        assert b["masks"].shape[-2:] == b["image"].shape[-2:]


@pytest.mark.parametrize("seed", range(8))
def test_flipped_and_resized_masks_line_up_with_their_boxes(tmp_path, seed):
    """Polygons (rasterised after the transform) and RLE masks (resized, flipped as pixels)
    cover their transformed box: the mask's bounding box is the box within a pixel, at odd
    scales and with or without a flip."""
    d = _masked_dict(_image(tmp_path))
    d["annotations"][0]["segmentation"] = [[4.0, 2.0, 12.0, 2.0, 8.0, 10.0]]  # a triangle
    out = _mapper(flip_prob=0.5, min_size_train=(23, 37, 51), mask_on=True)(d, seed=seed)
    for mask, box in zip(out["masks"], out["boxes"].tolist()):
        got = _mask_box(mask)
        assert all(abs(g - b) <= 1.0 for g, b in zip(got, box)), (got, box)


def test_missing_or_bad_mask_stops_or_skips(tmp_path):
    d = _masked_dict(_image(tmp_path))
    del d["annotations"][2]["segmentation"]
    with pytest.raises(
        DataError,
        match=r"img\.png \(image id 17\): annotation 102 has no "
        r"'segmentation'.*MODEL.MASK_ON.*ON_BAD_IMAGE skip",
    ):
        _mapper(mask_on=True)(d, seed=0)
    skip = _mapper(mask_on=True, on_bad_image="skip")
    assert skip(d, seed=0) == SkippedImage("missing mask", d["file_name"], 17)
    # Without mask_on the mask is not needed; a crowd region needs none.
    assert "masks" not in _mapper()(d, seed=0)
    d = _masked_dict(_image(tmp_path))
    del d["annotations"][1]["segmentation"]
    assert _mapper(mask_on=True)(d, seed=0)["masks"].shape[0] == 2
    # A custom dataset's unusable mask never reaches pycocotools' decoder.
    d["annotations"][2]["segmentation"] = {"size": [20, 40], "counts": [900]}
    with pytest.raises(DataError, match=r"annotation 102 has an RLE mask whose runs cover 900"):
        _mapper(mask_on=True)(d, seed=0)
    assert skip(d, seed=0) == SkippedImage("bad annotation", d["file_name"], 17)


def test_from_config_reads_mask_on():
    cfg = get_cfg()
    assert DatasetMapper.from_config(cfg, is_train=True).mask_on is False
    cfg.MODEL.MASK_ON = True
    assert DatasetMapper.from_config(cfg, is_train=True).mask_on is True


def test_decode_device_is_read_from_the_config():
    cfg = get_cfg()
    assert DatasetMapper.from_config(cfg, is_train=True).decode_device is None
    cfg.INPUT.DECODE_DEVICE = "cpu"
    assert DatasetMapper.from_config(cfg, is_train=False).decode_device == torch.device("cpu")
    cfg.INPUT.DECODE_DEVICE = "npu:0"
    with pytest.raises(ConfigError, match="INPUT.DECODE_DEVICE"):
        DatasetMapper.from_config(cfg, is_train=True)

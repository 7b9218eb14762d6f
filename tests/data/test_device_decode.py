"""INPUT.DECODE_DEVICE's data path run on the CPU: the workers read bytes and draw the
augmentation, the main process decodes the batch and augments it. On the CPU it must give the
tensors of the workers' decoding exactly (same decoder, same operations, same draws); on a GPU
within nvJPEG's tolerance (test_gpu_decoding_matches_the_cpu, marked gpu)."""

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from resnet_det.config import ConfigError
from resnet_det.data.classification.build import classification_train_loader
from resnet_det.data.classification.transforms import (
    ClassificationTrainTransform,
    build_classification_transform,
)
from resnet_det.data.detection.build import build_test_loader, build_train_loader
from resnet_det.data.detection.mapper import DatasetMapper
from resnet_det.data.device_decode import DeviceDecodingLoader, resolve_decode_device
from resnet_det.data.io import BadImageError, decode_jpegs, read_image, read_image_bytes
from resnet_det.data.skips import SkipCountingLoader

CPU = torch.device("cpu")


def _photo(h, w, seed):
    rng = np.random.default_rng(seed)
    small = (rng.random((h // 8 + 2, w // 8 + 2, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((w, h), Image.BICUBIC)


def _files(folder, n=6):
    """JPEGs of two sizes and orientations (one EXIF-rotated), and files the GPU would not
    take (PNG, CMYK JPEG, grey JPEG), which the workers decode."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        img = _photo(60 + 8 * (i % 3), 80 + 4 * i, i)
        path = folder / f"{i}.jpg"
        if i == 1:
            exif = Image.Exif()
            exif[0x0112] = 6
            img.save(path, quality=90, exif=exif)
        else:
            img.save(path, quality=90)
        paths.append(str(path))
    _photo(70, 90, 10).save(folder / "png.png")
    _photo(70, 90, 11).convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    _photo(70, 90, 12).convert("L").save(folder / "grey.jpg", quality=90)
    return paths + [str(folder / n) for n in ("png.png", "cmyk.jpg", "grey.jpg")]


def _cls_transform():
    return build_classification_transform(
        is_train=True,
        crop_size=48,
        scale_range=(50, 90),
        pca_lighting=0.1,
        pixel_mean=(120.0, 110.0, 100.0),
        pixel_std=(60.0, 55.0, 50.0),
    )


def test_resolve_decode_device(monkeypatch):
    assert resolve_decode_device("") is None
    assert resolve_decode_device("cpu") == CPU
    with pytest.raises(ConfigError, match="INPUT.DECODE_DEVICE.*'tpu'"):
        resolve_decode_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_decode_device("cuda")


@pytest.mark.parametrize("recipe", ["imagenet", "cifar"])
def test_the_train_transform_draws_what_torchvisions_compose_draws(recipe):
    import torchvision.transforms.v2 as T

    if recipe == "imagenet":
        transform, size = _cls_transform(), (70, 95)
    else:  # 4-pixel padding, a 32 crop of a 32x32 image, flip (Sec. 4.2)
        transform = build_classification_transform(is_train=True, crop_size=32, pad=4)
        size = (32, 32)
    assert isinstance(transform, ClassificationTrainTransform)
    reference = T.Compose(list(transform.transforms))
    image = torch.from_numpy(np.asarray(_photo(*size, 0)).copy()).permute(2, 0, 1)
    for seed in range(20):
        torch.manual_seed(seed)
        expected = reference(image)
        torch.manual_seed(seed)
        assert torch.equal(transform(image), expected)
        torch.manual_seed(seed)
        plan = transform.plan(*size)
        assert torch.equal(transform.apply(image, plan), expected)
        assert torch.equal(transform.apply_batch([image], [plan])[0], expected)


@pytest.mark.parametrize("prefetch", [False, True])
def test_classification_batches_decoded_in_the_main_process_are_the_workers(tmp_path, prefetch):
    files = _files(tmp_path / "cls")
    dicts = [{"file_name": f, "image_id": i, "label": i % 3} for i, f in enumerate(files)]
    dicts.append(
        {"image": np.asarray(_photo(64, 64, 99)), "image_id": "mem", "label": 1}
    )  # in memory
    kwargs = dict(transform=_cls_transform(), global_batch_size=4, seed=7, rank=0, world_size=1)
    ours = classification_train_loader(dicts, **kwargs)
    batched = classification_train_loader(dicts, decode_device=CPU, **kwargs)
    assert isinstance(batched, DeviceDecodingLoader)
    batched.prefetch = prefetch
    for a, b in itertools.islice(zip(ours, batched), 8):  # 32 samples: every file, 3 times
        assert a["image_id"] == b["image_id"] and torch.equal(a["label"], b["label"])
        assert b["image"].device == CPU and torch.equal(a["image"], b["image"])
        assert a["skipped"] == b["skipped"] == []


def _det_dicts(files):
    dicts = []
    for i, f in enumerate(files):
        with Image.open(f) as img:
            w, h = img.size
            if img.getexif().get(0x0112) == 6:
                w, h = h, w
        dicts.append(
            {
                "file_name": f,
                "image_id": i,
                "height": h,
                "width": w,
                "annotations": [
                    {"bbox": [2.0 + k, 3.0, 30.0 + 3 * k, 40.0], "category_id": k, "iscrowd": 0}
                    for k in range(3)
                ],
            }
        )
    return dicts


@pytest.mark.parametrize("image_format", ["BGR", "RGB"])
def test_detection_batches_decoded_in_the_main_process_are_the_workers(tmp_path, image_format):
    dicts = _det_dicts(_files(tmp_path / "det"))
    mapper_args = dict(
        is_train=True, min_size_train=(40, 56, 72), max_size_train=120, image_format=image_format
    )
    loader_args = dict(total_batch_size=3, seed=3, rank=0, world_size=1)
    ours = build_train_loader(dicts, mapper=DatasetMapper(**mapper_args), **loader_args)
    mapper = DatasetMapper(decode_device=CPU, **mapper_args)
    batched = build_train_loader(dicts, mapper=mapper, **loader_args)
    assert isinstance(batched, DeviceDecodingLoader)
    flips = set()
    for a, b in itertools.islice(zip(ours, batched), 8):
        assert len(a) == len(b) == 3 and b.skipped == []
        for x, y in zip(a, b):
            assert set(x) == set(y) and x["image_id"] == y["image_id"]
            assert torch.equal(x["image"], y["image"]) and y["image"].is_contiguous()
            assert torch.equal(x["boxes"], y["boxes"]) and torch.equal(x["labels"], y["labels"])
            flips.add(bool(x["boxes"][0, 0] > x["image"].shape[-1] / 2))
    assert flips == {True, False}  # both flipped and unflipped images were compared
    # The test loader: resize only.
    test_args = dict(is_train=False, min_size_test=48, max_size_test=100)
    ref = build_test_loader(dicts, mapper=DatasetMapper(**test_args), batch_size=2)
    dev = build_test_loader(
        dicts, mapper=DatasetMapper(decode_device=CPU, **test_args), batch_size=2
    )
    pairs = list(zip(ref, dev))
    assert len(pairs) == len(ref)
    for a, b in pairs:
        assert [torch.equal(x["image"], y["image"]) for x, y in zip(a, b)] == [True] * len(a)


def _truncated_jpeg(folder):
    """A JPEG whose header reads (the worker sends it on) but whose data ends early."""
    path = folder / "cut.jpg"
    _photo(64, 80, 5).save(path, quality=95)
    path.write_bytes(path.read_bytes()[:700])
    return str(path)


def test_a_file_failing_on_the_device_is_named_or_skipped_and_counted(tmp_path):
    files = _files(tmp_path / "bad", n=3)
    dicts = _det_dicts(files)
    bad = _truncated_jpeg(tmp_path)
    dicts.append(dict(dicts[0], file_name=bad, image_id="cut", height=64, width=80))
    args = dict(total_batch_size=len(dicts), seed=0, rank=0, world_size=1)
    mapper = DatasetMapper(is_train=False, min_size_test=0, decode_device=CPU)
    with pytest.raises(BadImageError, match=r"cut\.jpg \(image id cut\): .*truncated"):
        next(iter(build_train_loader(dicts, mapper=mapper, shuffle=False, **args)))
    mapper = DatasetMapper(is_train=False, min_size_test=0, decode_device=CPU, on_bad_image="skip")
    counting = SkipCountingLoader(build_train_loader(dicts, mapper=mapper, shuffle=False, **args))
    batch = next(iter(counting))
    assert len(batch) == len(dicts) - 1 and "cut" not in [d["image_id"] for d in batch]
    assert [s.file_name for s in batch.skipped] == [bad]
    assert counting.counts().images == {"unreadable": 1}
    # Classification: the same, as a shorter batch.
    cls = [{"file_name": d["file_name"], "image_id": d["image_id"], "label": 0} for d in dicts]
    loader = classification_train_loader(
        cls,
        transform=_cls_transform(),
        global_batch_size=len(cls) * 3,
        seed=0,
        rank=0,
        world_size=1,
        on_bad_image="skip",
        decode_device=CPU,
    )
    batch = next(iter(loader))
    assert "cut" not in batch["image_id"] and len(batch["image"]) == len(batch["label"])
    assert {s.file_name for s in batch["skipped"]} == {bad}


def test_errors_in_the_prefetching_thread_reach_the_consumer():
    def finish(batch, device):
        if batch == 2:
            raise BadImageError("image 2 is bad", path="2.jpg")
        return batch * 10

    loader = DeviceDecodingLoader([0, 1, 2, 3], finish, device=CPU, prefetch=True)
    it = iter(loader)
    assert [next(it), next(it)] == [0, 10]
    with pytest.raises(BadImageError, match="image 2 is bad"):
        next(it)
    assert list(DeviceDecodingLoader([1, 2], lambda b, d: b, device=CPU, prefetch=True)) == [1, 2]


def test_a_device_failing_on_a_good_file_is_not_blamed_on_the_file(tmp_path, monkeypatch):
    from resnet_det.data import io as io_module

    path = str(tmp_path / "ok.jpg")
    _photo(30, 40, 0).save(path, quality=90)
    real = io_module.decode_jpeg

    def device_fails(source, *, mode="RGB", device="cpu"):
        if torch.device(device).type != "cpu":
            raise RuntimeError("nvJPEG says no")
        return real(source, mode=mode, device=device)

    monkeypatch.setattr(io_module, "decode_jpeg", device_fails)
    with pytest.raises(RuntimeError, match=r"ok\.jpg on cuda:0 .*nvJPEG says no.*DECODE_DEVICE"):
        decode_jpegs([read_image_bytes(path)], [path], device="cuda:0")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_decoding_matches_the_cpu(tmp_path):
    """nvJPEG against libjpeg-turbo: the mean difference below 2 levels (the bound
    torchvision's tests hold its GPU decoder to); the largest is printed for
    docs/gpu_results.md."""
    # The colour JPEGs (the files the loaders send to the GPU; _files adds grey and CMYK ones).
    files = _files(tmp_path / "gpu", n=8)[:8]
    datas = [read_image_bytes(f) for f in files]
    gpu = decode_jpegs(datas, files, device="cuda")
    worst = 0
    for f, img in zip(files, gpu):
        assert img.is_cuda
        ref = read_image(f, "RGB").int()
        diff = (img.cpu().int() - ref).abs()
        assert diff.float().mean() < 2
        worst = max(worst, int(diff.max()))
    print(f"nvJPEG vs libjpeg-turbo: largest difference {worst} levels")
    dicts = _det_dicts(files)
    mapper_args = dict(is_train=True, min_size_train=(40, 72), max_size_train=120)
    loader_args = dict(total_batch_size=4, seed=1, rank=0, world_size=1)
    ours = build_train_loader(dicts, mapper=DatasetMapper(**mapper_args), **loader_args)
    mapper = DatasetMapper(decode_device=torch.device("cuda"), **mapper_args)
    batched = build_train_loader(dicts, mapper=mapper, **loader_args)
    for a, b in itertools.islice(zip(ours, batched), 4):
        for x, y in zip(a, b):
            assert y["image"].is_cuda and torch.equal(x["boxes"], y["boxes"])
            assert (y["image"].cpu().float() - x["image"].float()).abs().mean() < 2

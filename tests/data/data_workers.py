"""Functions that spawned processes of the dataset-cache tests run (importable by name)."""

import hashlib
import json
import os

import orjson


def _count_parses():
    """Count the COCO reader's parses in this process (the reader is wrapped)."""
    from resnet_det.data.datasets import coco

    counter = {"n": 0}
    original = coco._read

    def counting(*args, **kwargs):
        counter["n"] += 1
        return original(*args, **kwargs)

    coco._read = counting
    return counter


def _digest(dicts) -> str:
    h = hashlib.sha256()
    for d in dicts:
        h.update(orjson.dumps(d, option=orjson.OPT_SORT_KEYS))
    return h.hexdigest()


def _mapped(path: str) -> bool:
    """Whether this process maps ``path`` (Linux: /proc/self/maps)."""
    with open("/proc/self/maps") as f:
        return any(line.rstrip().endswith(path) for line in f)


def gloo_rank(json_file: str, name: str, out_dir: str) -> None:
    """One rank of a gloo job: the training set of a registered COCO file through the loader
    builders; every rank reports its parses, its records' digest, whether it maps the cache."""
    import torch.distributed as dist

    from resnet_det.data import dataset_cache
    from resnet_det.data.datasets import register_coco_instances
    from resnet_det.data.detection import build_train_loader, get_detection_dataset_dicts

    dataset_cache.MIN_BYTES = 1  # a registered set is cached from MIN_BYTES on: this one too
    counter = _count_parses()
    register_coco_instances(name, {}, json_file, "/img")
    dicts = get_detection_dataset_dicts([name], filter_empty=True, on_bad_image="skip")
    loader = build_train_loader(
        dicts, mapper=lambda d, seed=None: d, total_batch_size=dist.get_world_size(), seed=0
    )
    cache = dicts.paths[0]
    report = {
        "rank": dist.get_rank(),
        "parses": counter["n"],
        "digest": _digest(dicts),
        "num_images": len(dicts),
        "maps_cache": _mapped(cache),
        "dataset_is_shared": loader.dataset._dataset is dicts,
        "cache": cache,
    }
    with open(os.path.join(out_dir, f"rank{dist.get_rank()}.json"), "w") as f:
        json.dump(report, f)

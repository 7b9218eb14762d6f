"""COCO-size annotation rows: reading a COCO-2017-train-sized annotation file into dataset
dicts, and the memory of the ranks of a run that read it.

The file is generated (:func:`write_coco_json`) with COCO 2017 train's size and layout: 118,287
images (COCO's fields: license, file_name, coco_url, height, width, date_captured, flickr_url,
id), 860,001 annotations (segmentation, area, iscrowd, image_id, bbox, category_id, id) of its
80 category ids, about 1% crowd regions as uncompressed RLE, the others one or two polygons of
about 21 points with coordinates to 2 decimals, full-precision areas; about 435 MB.

Rows (each load in a fresh process, the sides taking turns, medians of ``repetitions``):

- "COCO train annotations load": our ``load_coco_json`` (every check, the cache off) against
  detectron2's ``load_coco_json`` (``--clock`` seconds of the call; the other clock in extra).
- "... load, peak RSS": the same processes' peak resident memory (/proc's VmHWM, GB; imports
  included on both sides, their size after the imports in extra).
- "... cached load": our load from the dataset cache (the file hashed, the cache mapped and
  checked) against detectron2's load.
- "... on 4 ranks, peak PSS": four gloo ranks on this machine each read the set, build the
  training loader (one worker each) and take 20 batches; the peak over time of the PSS summed
  over the ranks and their workers (/proc/<pid>/smaps_rollup: a page shared by k processes
  counts 1/k in each, so the sum counts it once), the ranks sharing the cache (none at the
  start: one rank parses, the others wait and map it) against each rank parsing its own
  (RESNET_DET_CACHE=off).

Needs detectron2 for the first three (skipped with a note otherwise), in this environment or in
the one of the interpreter named by ``detectron2_python`` (tools/benchmark.py's
--detectron2-python), and Linux's /proc for the last.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import numpy as np

from .harness import BenchOptions, BenchRow, child_env, skipped_row

__all__ = ["COCO_TRAIN_IMAGES", "COCO_TRAIN_ANNOTATIONS", "write_coco_json", "annotation_rows"]

COCO_TRAIN_IMAGES = 118_287
COCO_TRAIN_ANNOTATIONS = 860_001
# COCO's common image sizes (height, width) and how often they come.
_SIZES = np.array([(480, 640), (640, 480), (427, 640), (640, 427), (375, 500), (612, 612)])
_SIZE_P = np.array([0.5, 0.15, 0.15, 0.05, 0.1, 0.05])
_GB = 1e9


def _category_ids() -> List[int]:
    # Imported here: the module's names (the sizes above) are read where resnet_det.data's
    # dependencies are not installed (tools/gpu_check.sh's machine).
    from resnet_det.data.datasets.builtin import COCO_CATEGORIES

    return [i for i, _ in COCO_CATEGORIES]


def _crowd_rle(x: float, y: float, w: float, h: float, height: int, width: int) -> dict:
    """The box as an uncompressed RLE (column-major runs), as COCO gives crowd regions."""
    x0, x1 = int(x), int(min(width, x + w))
    y0, y1 = int(y), int(min(height, y + h))
    counts = [x0 * height + y0]
    for _ in range(x0, x1):
        counts += [y1 - y0, height - (y1 - y0)]
    counts[-1] = height * width - sum(counts[:-1])
    return {"counts": counts, "size": [height, width]}


def write_coco_json(
    path: str,
    *,
    num_images: int = COCO_TRAIN_IMAGES,
    num_annotations: int = COCO_TRAIN_ANNOTATIONS,
    seed: int = 0,
) -> str:
    """Write a generated instances json of COCO 2017 train's layout (module docstring) to
    ``path`` (streamed: the whole file is never in memory); returns ``path``."""
    import orjson

    rng = np.random.default_rng(seed)
    per_image = rng.poisson(num_annotations / max(1, num_images), num_images)
    diff = num_annotations - int(per_image.sum())
    while diff:  # exactly num_annotations
        i = rng.integers(0, num_images, abs(diff))
        np.add.at(per_image, i, 1 if diff > 0 else -1)
        per_image = np.maximum(per_image, 0)
        diff = num_annotations - int(per_image.sum())
    sizes = _SIZES[rng.choice(len(_SIZES), num_images, p=_SIZE_P)]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(
            b'{"info":{"description":"COCO 2017 Dataset (generated)","version":"1.0",'
            b'"year":2017},"licenses":[{"url":"http://creativecommons.org/licenses/by-nc-sa/'
            b'2.0/","id":1,"name":"Attribution-NonCommercial-ShareAlike License"}],"images":['
        )
        images = [
            {
                "license": 1,
                "file_name": f"{i + 1:012d}.jpg",
                "coco_url": f"http://images.cocodataset.org/train2017/{i + 1:012d}.jpg",
                "height": int(sizes[i][0]),
                "width": int(sizes[i][1]),
                "date_captured": "2013-11-14 11:18:45",
                "flickr_url": f"http://farm4.staticflickr.com/3153/{i + 1}_5f5cc7b7a3_z.jpg",
                "id": i + 1,
            }
            for i in range(num_images)
        ]
        f.write(orjson.dumps(images)[1:-1])
        f.write(b'],"annotations":[')
        image_of = np.repeat(np.arange(num_images), per_image)
        step = 50_000
        for start in range(0, num_annotations, step):
            f.write(b"," if start else b"")
            f.write(
                orjson.dumps(_annotations(rng, image_of[start : start + step], sizes, start))[1:-1]
            )
        f.write(b'],"categories":')
        cats = [{"supercategory": "thing", "id": c, "name": f"class{c}"} for c in _category_ids()]
        f.write(orjson.dumps(cats) + b"}")
    os.replace(tmp, path)
    return path


def _annotations(rng, image_of: np.ndarray, sizes: np.ndarray, first_id: int) -> List[dict]:
    n = len(image_of)
    h, w = sizes[image_of, 0].astype(float), sizes[image_of, 1].astype(float)
    bw, bh = rng.uniform(2, w * 0.9), rng.uniform(2, h * 0.9)
    x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
    crowd = rng.random(n) < 0.01
    polys = 1 + (rng.random(n) < 0.1)
    points = np.maximum(3, rng.poisson(21, int(polys.sum())))
    angles = rng.uniform(0, 2 * np.pi, int(points.sum()))
    owner = np.repeat(np.arange(len(points)), points)
    angles = angles[np.lexsort((angles, owner))]  # increasing within each polygon
    radius = rng.uniform(0.7, 1.0, int(points.sum()))
    cats = rng.choice(_category_ids(), n)
    out, p, v = [], 0, 0
    for k in range(n):
        if crowd[k]:
            seg = _crowd_rle(x[k], y[k], bw[k], bh[k], int(h[k]), int(w[k]))
            area = float(int(bw[k]) * int(bh[k]))
        else:
            seg = []
            for _ in range(polys[k]):
                m = points[p]
                a, r = angles[v : v + m], radius[v : v + m]
                px = np.round(x[k] + bw[k] / 2 + np.cos(a) * r * bw[k] / 2, 2)
                py = np.round(y[k] + bh[k] / 2 + np.sin(a) * r * bh[k] / 2, 2)
                seg.append(np.stack([px, py], 1).ravel().tolist())
                p, v = p + 1, v + m
            area = float(bw[k] * bh[k] * 0.7)
        if crowd[k]:
            p, v = p + polys[k], v + int(points[p : p + polys[k]].sum())
        out.append(
            {
                "segmentation": seg,
                "area": area,
                "iscrowd": int(crowd[k]),
                "image_id": int(image_of[k]) + 1,
                "bbox": [round(float(b), 2) for b in (x[k], y[k], bw[k], bh[k])],
                "category_id": int(cats[k]),
                "id": first_id + k + 1,
            }
        )
    return out


# ---------------------------------------------------------------- loads in fresh processes
# Run by ``python -c`` in a fresh interpreter: detectron2 may live in another environment than
# this one (--detectron2-python), so the child imports nothing of the calling process.
_LOAD_CHILD = """
import gc, json, sys, time
which, json_file, cache = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
if which == "detectron2":
    from detectron2.data.datasets.coco import load_coco_json
    def load():
        return load_coco_json(json_file, "/images")
else:
    from resnet_det.data.datasets.coco import load_coco_json
    def load():
        return load_coco_json(json_file, "/images", cache=cache)
def status(key):
    # /proc's VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child started by
    # a bigger process would report the parent's high-water mark; VmHWM is this process's.
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith(key + ":"))
gc.collect()
imported = status("VmRSS")
wall, cpu = time.perf_counter(), time.process_time()
dicts = load()
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
peak = status("VmHWM")
result = dict(wall=wall, process=cpu, peak=peak, imported=imported, images=len(dicts))
print("RESULT " + json.dumps(result), flush=True)
"""


def _in_child(
    which: str, json_file: str, cache: bool = False, python: Optional[str] = None
) -> Dict[str, float]:
    """One load in a fresh ``python`` (default: this interpreter); the resnet_det imported here
    comes first on the child's path, so that both sides read the same package."""
    env = child_env()
    cmd = [python or sys.executable, "-c", _LOAD_CHILD, which, json_file, "1" if cache else "0"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    results = [ln[7:] for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not results:
        raise RuntimeError(
            f"the {which} load ({cmd[0]}) exited with status {proc.returncode}: "
            f"{proc.stderr.strip()[-2000:]}"
        )
    return json.loads(results[-1])


def has_detectron2(python: Optional[str] = None) -> bool:
    """Whether ``python`` (default: this interpreter) imports detectron2."""
    # A path, not its target: a virtual environment's python links to the base interpreter.
    if python is None:
        return importlib.util.find_spec("detectron2") is not None
    probe = [
        python,
        "-c",
        "import importlib.util as u; print(u.find_spec('detectron2') is not None)",
    ]
    try:
        out = subprocess.run(probe, capture_output=True, text=True, timeout=120)
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == "True"


# ---------------------------------------------------------------- ranks
def _identity(d: dict, seed: Optional[int] = None) -> Dict[str, Any]:
    return {"image_id": d["image_id"], "n": len(d["annotations"])}


def _rank_child(rank: int, world: int, url: str, json_file: str, batches: int, ready) -> None:
    import torch.distributed as dist

    from resnet_det.data.datasets import register_coco_instances
    from resnet_det.data.detection import build_train_loader, get_detection_dataset_dicts

    dist.init_process_group("gloo", init_method=url, rank=rank, world_size=world)
    register_coco_instances("bench_coco_train", {}, json_file, "/images")
    dicts = get_detection_dataset_dicts(["bench_coco_train"])
    loader = build_train_loader(
        dicts, mapper=_identity, total_batch_size=2 * world, seed=0, num_workers=1
    )
    for _, batch in zip(range(batches), loader):
        assert len(batch) == 2
    dist.barrier()
    ready.put(rank)
    time.sleep(1.0)  # the monitor samples the steady state
    dist.barrier()
    dist.destroy_process_group()


def _tree(pid: int) -> List[int]:
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out += _tree(int(child))
    except OSError:
        pass
    return out


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def ranks_peak_pss(json_file: str, *, world: int = 4, batches: int = 20) -> Dict[str, float]:
    """Peak (and steady) PSS summed over ``world`` gloo ranks and their loader workers that
    read ``json_file`` as a registered set (module docstring), in bytes."""
    from resnet_det.engine.launch import find_free_port

    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    url = f"tcp://127.0.0.1:{find_free_port()}"
    procs = [
        ctx.Process(target=_rank_child, args=(r, world, url, json_file, batches, ready))
        for r in range(world)
    ]
    for p in procs:
        p.start()
    peak = steady = 0
    done = 0
    while any(p.is_alive() for p in procs):
        failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
        if failed:  # the others would wait for it in gloo until its timeout
            for p in procs:
                p.terminate()
            raise RuntimeError(f"a rank exited with status {failed[0]}")
        total = sum(_pss(q) for p in procs if p.pid for q in _tree(p.pid))
        peak = max(peak, total)
        while not ready.empty():
            ready.get()
            done += 1
        if done == world:
            steady = max(steady, total)
        time.sleep(0.05)
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a rank exited with status {p.exitcode}")
    return {"peak": peak, "steady": steady}


# ---------------------------------------------------------------- rows
def _median(runs: List[Dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def annotation_rows(
    work_dir: str,
    opts: BenchOptions,
    *,
    num_images: int = COCO_TRAIN_IMAGES,
    num_annotations: int = COCO_TRAIN_ANNOTATIONS,
    ranks: int = 4,
    detectron2_python: Optional[str] = None,
) -> List[BenchRow]:
    """The rows of the module docstring on a generated file under ``work_dir`` (kept there
    and reused when it exists).

    Args:
        work_dir: where the generated json (and its dataset cache) go.
        opts: repetitions and clock.
        num_images, num_annotations: the generated file's size.
        ranks: processes of the memory row.
        detectron2_python: the interpreter that runs detectron2's loads (an environment with
            detectron2; default: this interpreter); ours run in this one.
    """
    from resnet_det.data import dataset_cache

    json_file = os.path.join(work_dir, f"instances_{num_images}_{num_annotations}.json")
    if not os.path.exists(json_file):
        write_coco_json(json_file, num_images=num_images, num_annotations=num_annotations)
    megabytes = os.path.getsize(json_file) / 1e6
    size = f"{num_images} images, {num_annotations} annotations, {megabytes:.0f} MB"
    peer_name = "detectron2 load_coco_json"
    rows: List[BenchRow] = []
    clock, other = opts.clock, ("process" if opts.clock == "wall" else "wall")
    if not has_detectron2(detectron2_python):
        why = f"detectron2 is not installed for {detectron2_python or sys.executable}"
        rows += [
            skipped_row("COCO train annotations load", "s", peer_name, why),
            skipped_row("COCO train annotations load, peak RSS", "GB", peer_name, why),
            skipped_row("COCO train annotations cached load", "s", peer_name, why),
        ]
    else:
        ours: List[Dict[str, float]] = []
        peer: List[Dict[str, float]] = []
        for _ in range(opts.repetitions):
            peer.append(_in_child("detectron2", json_file, python=detectron2_python))
            ours.append(_in_child("ours", json_file))
        # The cached load: the cache written once (not timed), then read.
        cache = dataset_cache.cache_file_for(json_file)
        _in_child("ours", json_file, cache=True)
        cached = [_in_child("ours", json_file, cache=True) for _ in range(opts.repetitions)]
        t_ours, t_peer, t_cached = (_median(r, clock) for r in (ours, peer, cached))
        note = f"{size}; every check; fresh process per load"
        rows.append(
            BenchRow(
                "COCO train annotations load",
                "s",
                t_ours,
                t_peer,
                peer_name,
                t_ours / t_peer,
                note,
                {f"ours_{other}_s": _median(ours, other), f"peer_{other}_s": _median(peer, other)},
            )
        )
        m_ours, m_peer = _median(ours, "peak") / _GB, _median(peer, "peak") / _GB
        rows.append(
            BenchRow(
                "COCO train annotations load, peak RSS",
                "GB",
                m_ours,
                m_peer,
                peer_name,
                m_ours / m_peer,
                "peak RSS (VmHWM) of the loading process, imports included",
                {
                    "ours_after_imports_gb": _median(ours, "imported") / _GB,
                    "peer_after_imports_gb": _median(peer, "imported") / _GB,
                },
            )
        )
        rows.append(
            BenchRow(
                "COCO train annotations cached load",
                "s",
                t_cached,
                t_peer,
                peer_name,
                t_cached / t_peer,
                f"{size}; the json hashed, the cache ({cache}) mapped and its sha256 checked",
                {
                    f"ours_{other}_s": _median(cached, other),
                    "ours_peak_rss_gb": _median(cached, "peak") / _GB,
                },
            )
        )
    if not os.path.exists("/proc/self/smaps_rollup"):
        rows.append(
            skipped_row(f"COCO train set on {ranks} ranks, peak PSS", "GB", "", "needs Linux /proc")
        )
        return rows
    cache = dataset_cache.cache_file_for(json_file)
    if cache and os.path.exists(cache):
        os.remove(cache)  # one rank parses, as in a first run
    shared = ranks_peak_pss(json_file, world=ranks)
    saved = os.environ.get(dataset_cache.CACHE_ENV)
    os.environ[dataset_cache.CACHE_ENV] = "off"
    try:
        own = ranks_peak_pss(json_file, world=ranks)
    finally:
        if saved is None:
            del os.environ[dataset_cache.CACHE_ENV]
        else:
            os.environ[dataset_cache.CACHE_ENV] = saved
    rows.append(
        BenchRow(
            f"COCO train set on {ranks} ranks, peak PSS",
            "GB",
            shared["peak"] / _GB,
            own["peak"] / _GB,
            "each rank parsing its own (RESNET_DET_CACHE=off)",
            shared["peak"] / own["peak"],
            f"summed over {ranks} gloo ranks and their loader workers; the cache absent at start",
            {"ours_steady_gb": shared["steady"] / _GB, "peer_steady_gb": own["steady"] / _GB},
        )
    )
    return rows

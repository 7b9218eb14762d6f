"""Fuzzing the readers of user files: the COCO json, VOC xml, results-file and YAML config
readers. Whatever the input, a reader returns data that keeps its contract or raises the
project's own error type (resnet_det.utils.errors.UserError, ConfigError included) naming the
file: never a raw json / xml / yaml / pycocotools exception, never a hang.

Each reader is fuzzed twice: with structured documents (a valid file whose entries are
mutated: fields deleted, replaced by any json value, entries duplicated; COCO annotations
also get instance masks at the edges of the format) and with byte-level edits of a valid file
(truncation, insertion, deletion, replacement). The masks the COCO reader accepts must
decode with pycocotools at their image's size (its C code trusts its input). CI runs CI_EXAMPLES
inputs per test, derandomized so that CI is stable; the slow soak SOAK_EXAMPLES per test with
a random seed. docs/reliability.md states these counts and a test there holds it to them.
"""

import copy
import json
import math
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resnet_det.config import get_cfg
from resnet_det.data.datasets.coco import load_coco_json, read_coco_api
from resnet_det.data.datasets.voc import load_voc_instances
from resnet_det.data.detection.instance_masks import InstanceMasks
from resnet_det.data.segmentation import check_segmentation
from resnet_det.evaluation.results_file import REQUIRED_KEYS, load_results_file
from resnet_det.utils.errors import UserError

CI_EXAMPLES = 100  # inputs per fuzz test in CI (8 tests: 200 per reader)
SOAK_EXAMPLES = 2000  # inputs per fuzz test in the slow soak
READERS = ("coco_json", "voc_xml", "results_file", "yaml_config")

# Any json value, numbers at the edges included (NaN, inf, ints beyond float range).
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.integers(-3, 300),
    # No subnormals: a run before this one may have set flush-to-zero (default_setup does).
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda c: st.one_of(
        st.lists(c, max_size=5), st.dictionaries(st.text(max_size=6), c, max_size=4)
    ),
    max_leaves=8,
)


_OUTCOMES = []  # "data" or "error", one per read in the current _run


def _run(check, strategy, max_examples):
    """Run ``check`` on ``max_examples`` inputs drawn from ``strategy``; asserts they all ran
    and returns the set of outcomes ("data", "error") the reads had."""
    calls = []
    _OUTCOMES.clear()
    soak = max_examples > CI_EXAMPLES

    @settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=not soak,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(x):
        calls.append(1)
        check(x)

    run()
    assert len(calls) >= max_examples
    return set(_OUTCOMES)


def _expect_data_or_our_error(path, read):
    """``read()``'s data, or None when it raised a UserError naming ``path``; any other
    exception fails the test."""
    try:
        data = read()
    except UserError as e:
        assert str(path) in str(e), f"error does not name {path}: {e}"
        _OUTCOMES.append("error")
        return None
    _OUTCOMES.append("data")
    return data


@st.composite
def _mutated(draw, base, sections):
    """``base`` (a json-like document) with up to 6 mutations of its entries."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(0, 6))):
        section = draw(st.sampled_from(sections + [None]))
        container = doc if section is None else doc.get(section) if isinstance(doc, dict) else None
        if isinstance(container, dict):
            keys = sorted(container) + ["id", "extra"]
            key = draw(st.sampled_from(keys))
            if draw(st.booleans()):
                container.pop(key, None)
            else:
                container[key] = draw(JSON_VALUES)
            continue
        if not isinstance(container, list) or not container:
            if isinstance(doc, dict) and section is not None:
                doc[section] = draw(JSON_VALUES)
            continue
        i = draw(st.integers(0, len(container) - 1))
        op = draw(st.sampled_from(["field", "field", "field", "delete", "entry", "duplicate"]))
        entry = container[i]
        if op == "entry":
            container[i] = draw(JSON_VALUES)
        elif op == "duplicate":
            container.append(copy.deepcopy(entry))
        elif isinstance(entry, dict):
            key = draw(st.sampled_from(sorted(entry) + ["extra"]))
            if op == "delete":
                entry.pop(key, None)
            else:
                entry[key] = draw(
                    st.one_of(JSON_VALUES, st.lists(_SCALARS, min_size=3, max_size=5))
                )
    return doc


@st.composite
def _byte_edits(draw, text: bytes):
    """``text`` with up to 4 byte-level edits."""
    data = bytearray(text)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "insert", "delete", "replace"]))
        pos = draw(st.integers(0, len(data)))
        if op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(
                st.binary(min_size=1, max_size=8)
                | st.sampled_from(
                    [
                        b"{",
                        b"}",
                        b"[",
                        b"]",
                        b",",
                        b'"',
                        b":",
                        b"<",
                        b">",
                        b"&",
                        b"\xff",
                        b"- ",
                        b"\n  ",
                        b"*a",
                        b"&a ",
                        b"!!python/object:os.system",
                        b"NaN",
                    ]
                )
            )
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif pos < len(data):
            data[pos] = draw(st.integers(0, 255))
    return bytes(data)


# ----------------------------------------------------------------------------------- COCO
COCO_BASE = {
    "images": [
        {"id": 1, "file_name": "a.jpg", "height": 40, "width": 60},
        {"id": 2, "file_name": "b.jpg", "height": 50, "width": 30},
    ],
    "categories": [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}],
    "annotations": [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 3,
            "bbox": [5, 5, 20, 10],
            "iscrowd": 0,
            "segmentation": [[5, 5, 25, 5, 25, 15, 5, 15]],
        },
        # A crowd region as compressed RLE (its box's pixels), an object as uncompressed RLE.
        {
            "id": 2,
            "image_id": 2,
            "category_id": 7,
            "bbox": [1, 2, 3, 4],
            "iscrowd": 1,
            "segmentation": {"size": [50, 30], "counts": "d14^1000bX1"},
        },
        {
            "id": 3,
            "image_id": 1,
            "category_id": 7,
            "bbox": [50, 30, 30, 30],
            "iscrowd": 0,
            "segmentation": {"size": [40, 60], "counts": [2030] + [10, 30] * 9 + [10]},
        },
    ],
}


def _check_detection_dicts(dicts, num_classes):
    for d in dicts:
        assert isinstance(d["file_name"], str) and d["height"] > 0 and d["width"] > 0
        for a in d["annotations"]:
            x0, y0, x1, y1 = a["bbox"]
            assert all(math.isfinite(v) for v in a["bbox"])
            assert 0 <= x0 < x1 <= d["width"] and 0 <= y0 < y1 <= d["height"]
            assert 0 <= a["category_id"] < num_classes and a["iscrowd"] in (0, 1)
            if "segmentation" in a:  # a checked mask that pycocotools decodes at its image's size
                assert (
                    check_segmentation(a["segmentation"], d["height"], d["width"], a["iscrowd"])
                    is None
                )
                masks = InstanceMasks([a["segmentation"]], d["height"], d["width"]).to_tensor()
                assert masks.shape == (1, d["height"], d["width"])


def _check_coco_file(tmp, raw: bytes):
    path = os.path.join(tmp, "instances.json")
    with open(path, "wb") as f:
        f.write(raw)
    for policy in ("stop", "skip"):
        dicts = _expect_data_or_our_error(
            path, lambda policy=policy: load_coco_json(path, "/img", on_bad_image=policy)
        )
        if dicts is not None:
            assert dicts, "an empty dataset must raise"
            _check_detection_dicts(dicts, num_classes=10**6)
            assert len({d["image_id"] for d in dicts}) == len(dicts)
    api = _expect_data_or_our_error(path, lambda: read_coco_api(path))
    if api is not None:  # pycocotools can answer queries on what read_coco_api accepted
        api.getAnnIds(imgIds=api.getImgIds())
        for ann in api.loadAnns(api.getAnnIds(imgIds=api.getImgIds())):
            if ann.get("segmentation") is not None:  # and decode its masks
                img = api.loadImgs(ann["image_id"])[0]
                assert api.annToMask(ann).shape == (img["height"], img["width"])


# Masks at the edges of what the reader accepts: polygons of 0-4 points of any numbers, RLE of
# the image's or another size, counts strings of the encoding's characters and others, count
# lists that do or do not add up to the image's pixels; and any json value.
_SEGMENTATIONS = st.one_of(
    st.lists(st.lists(st.one_of(st.integers(-100, 100), _SCALARS), max_size=9), max_size=3),
    st.fixed_dictionaries(
        {
            "size": st.one_of(st.sampled_from([[40, 60], [50, 30]]), JSON_VALUES),
            "counts": st.one_of(
                st.text(st.characters(min_codepoint=40, max_codepoint=115), max_size=12),
                st.lists(st.integers(-5, 2400), max_size=4),
                JSON_VALUES,
            ),
        }
    ),
    JSON_VALUES,
)


@st.composite
def _with_segmentations(draw, docs):
    """A drawn COCO document with up to 2 annotations' "segmentation" replaced."""
    doc = copy.deepcopy(draw(docs))
    anns = doc.get("annotations") if isinstance(doc, dict) else None
    for _ in range(draw(st.integers(0, 2)) if isinstance(anns, list) and anns else 0):
        ann = anns[draw(st.integers(0, len(anns) - 1))]
        if isinstance(ann, dict):
            ann["segmentation"] = draw(_SEGMENTATIONS)
    return doc


def _coco_structured(tmp_path, n):
    return _run(
        lambda doc: _check_coco_file(str(tmp_path), json.dumps(doc, allow_nan=True).encode()),
        _with_segmentations(_mutated(COCO_BASE, ["images", "categories", "annotations"])),
        n,
    )


def _coco_bytes(tmp_path, n):
    return _run(
        lambda raw: _check_coco_file(str(tmp_path), raw),
        _byte_edits(json.dumps(COCO_BASE, indent=1).encode()),
        n,
    )


# ------------------------------------------------------------------------------------ VOC
def _voc_xml(fields):
    objects = "".join(
        f"<object><name>{o['name']}</name><difficult>{o['difficult']}</difficult><bndbox>"
        f"<xmin>{o['xmin']}</xmin><ymin>{o['ymin']}</ymin><xmax>{o['xmax']}</xmax>"
        f"<ymax>{o['ymax']}</ymax></bndbox></object>"
        for o in fields["objects"]
    )
    return (
        f"<annotation><size><width>{fields['width']}</width><height>{fields['height']}"
        f"</height></size>{objects}</annotation>"
    ).encode()


VOC_BASE = {
    "width": "60",
    "height": "40",
    "objects": [
        {"name": "cat", "difficult": "0", "xmin": "5", "ymin": "6", "xmax": "30", "ymax": "20"},
        {"name": "dog", "difficult": "1", "xmin": "1", "ymin": "1", "xmax": "60", "ymax": "40"},
    ],
}
_XML_TEXT = st.one_of(
    st.text(max_size=10),
    st.sampled_from(
        ["", "0", "-1", "1e400", "nan", "inf", "3.5", "61", "&amp;", "<x/>", "cat", "ünï"]
    ),
)


@st.composite
def _voc_trees(draw):
    """(xml bytes per image id, split file lines): mutated fields, objects and ids."""
    xmls = {}
    for img_id in draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3)):
        fields = copy.deepcopy(VOC_BASE)
        for _ in range(draw(st.integers(0, 4))):
            obj = draw(st.sampled_from([None] + fields["objects"]))
            target = fields if obj is None else obj
            key = draw(st.sampled_from(sorted(k for k in target if k != "objects")))
            target[key] = draw(_XML_TEXT)
        if draw(st.booleans()):
            fields["objects"].append(copy.deepcopy(draw(st.sampled_from(fields["objects"]))))
        xml = _voc_xml(fields)
        if draw(st.integers(0, 4)) == 0:
            xml = draw(_byte_edits(xml))
        xmls[img_id] = xml
    split = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=0, max_size=4))
    return xmls, split


def _check_voc_tree(root, xmls, split):
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "Annotations"))
    os.makedirs(os.path.join(root, "ImageSets", "Main"))
    for img_id, xml in xmls.items():
        with open(os.path.join(root, "Annotations", img_id + ".xml"), "wb") as f:
            f.write(xml)
    with open(os.path.join(root, "ImageSets", "Main", "train.txt"), "w") as f:
        f.write("".join(s + "\n" for s in split))
    for policy in ("stop", "skip"):
        dicts = _expect_data_or_our_error(
            root,
            lambda policy=policy: load_voc_instances(
                root, "train", ("cat", "dog"), on_bad_image=policy
            ),
        )
        if dicts is not None:
            assert dicts
            _check_detection_dicts(dicts, num_classes=2)


def _voc_structured(tmp_path, n):
    root = str(tmp_path / "voc")
    return _run(lambda tree: _check_voc_tree(root, *tree), _voc_trees(), n)


def _voc_bytes(tmp_path, n):
    root = str(tmp_path / "voc")
    return _run(
        lambda raw: _check_voc_tree(root, {"a": raw}, ["a"]), _byte_edits(_voc_xml(VOC_BASE)), n
    )


# ---------------------------------------------------------------------------- results file
RESULTS_BASE = [
    {"image_id": 1, "category_id": 3, "bbox": [1.0, 2.0, 10.5, 4.0], "score": 0.9},
    {"image_id": "000005", "category_id": 7, "bbox": [0, 0, 1, 1], "score": 0.1},
]


def _check_results_file(tmp, raw: bytes):
    path = os.path.join(tmp, "results.json")
    with open(path, "wb") as f:
        f.write(raw)
    results = _expect_data_or_our_error(path, lambda: load_results_file(path))
    if results is not None:
        assert isinstance(results, list)
        for r in results:
            assert all(k in r for k in REQUIRED_KEYS)
            assert all(math.isfinite(float(v)) for v in r["bbox"]) and r["bbox"][2] >= 0


def _results_structured(tmp_path, n):
    return _run(
        lambda doc: _check_results_file(str(tmp_path), json.dumps(doc, allow_nan=True).encode()),
        _mutated({"results": RESULTS_BASE}, ["results"]).map(lambda d: d.get("results", d)),
        n,
    )


def _results_bytes(tmp_path, n):
    return _run(
        lambda raw: _check_results_file(str(tmp_path), raw),
        _byte_edits(json.dumps(RESULTS_BASE).encode()),
        n,
    )


# ------------------------------------------------------------------------------ YAML config
YAML_BASE = {
    "MODEL": {"RESNETS": {"DEPTH": 50, "OUT_FEATURES": ["res4"]}, "WEIGHTS": ""},
    "SOLVER": {"BASE_LR": 0.02, "STEPS": [10, 20], "MAX_ITER": 30},
    "DATALOADER": {"ON_BAD_IMAGE": "skip"},
    "INPUT": {"MIN_SIZE_TRAIN": [600]},
}
# What YAML has beyond json: anchors and aliases (a mapping that contains itself), tags (a
# python object that safe_load must refuse), sets, dates, merge keys, a _BASE_ of any kind.
_YAML_SNIPPETS = st.sampled_from(
    [
        "MODEL: &m {RESNETS: *m}\n",
        "a: &a [*a]\n",
        "MODEL: !!python/object/apply:os.system [ls]\n",
        "SOLVER: {STEPS: !!set {1: null}}\n",
        "SOLVER: {BASE_LR: 2020-01-01}\n",
        "x: &b {DEPTH: 50}\nMODEL: {RESNETS: {<<: *b}}\n",
        "_BASE_: 3\n",
        "_BASE_: [null]\n",
        "_BASE_: nowhere.yaml\n",
        "_BASE_: config.yaml\n",
        "_BASE_: {a: 1}\n",
        "--- a\n--- b\n",
        "? [a, b]\n: 1\n",
        "\t\n",
        "%YAML 9.9\n---\n",
        "MODEL: {RESNETS: {DEPTH: 1e400}}\n",
    ]
)


@st.composite
def _yaml_texts(draw):
    if draw(st.integers(0, 3)) == 0:
        return draw(_YAML_SNIPPETS).encode()
    doc = draw(_mutated(YAML_BASE, ["MODEL", "SOLVER", "DATALOADER", "INPUT"]))
    text = yaml.safe_dump(doc, allow_unicode=draw(st.booleans()))
    return (text + draw(st.just("") | _YAML_SNIPPETS)).encode()


def _check_yaml_file(tmp, raw: bytes):
    path = os.path.join(tmp, "config.yaml")
    with open(path, "wb") as f:
        f.write(raw)
    cfg = get_cfg()
    if _expect_data_or_our_error(path, lambda: cfg.merge_from_file(path) or True):
        # A merged config keeps the defaults' types: it dumps and reads back equal.
        again = get_cfg()
        again.merge_from_other_cfg(type(cfg).load_cfg(cfg.dump()))
        assert again == cfg


def _yaml_structured(tmp_path, n):
    return _run(lambda raw: _check_yaml_file(str(tmp_path), raw), _yaml_texts(), n)


def _yaml_bytes(tmp_path, n):
    return _run(
        lambda raw: _check_yaml_file(str(tmp_path), raw),
        _byte_edits(yaml.safe_dump(YAML_BASE).encode()),
        n,
    )


FUZZERS = {
    "coco_json": (_coco_structured, _coco_bytes),
    "voc_xml": (_voc_structured, _voc_bytes),
    "results_file": (_results_structured, _results_bytes),
    "yaml_config": (_yaml_structured, _yaml_bytes),
}


@pytest.mark.parametrize("reader", READERS)
def test_fuzz_structured(reader, tmp_path):
    # Both outcomes occur: the mutations neither always break the file (testing only the
    # parser) nor never do.
    assert FUZZERS[reader][0](tmp_path, CI_EXAMPLES) == {"data", "error"}


@pytest.mark.parametrize("reader", READERS)
def test_fuzz_bytes(reader, tmp_path):
    FUZZERS[reader][1](tmp_path, CI_EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("reader", READERS)
def test_fuzz_soak(reader, tmp_path):
    for fuzz in FUZZERS[reader]:
        fuzz(tmp_path, SOAK_EXAMPLES)


def test_the_valid_bases_read_as_data_and_a_truncated_file_names_its_position(tmp_path):
    path = str(tmp_path / "instances.json")
    with open(path, "w") as f:
        json.dump(COCO_BASE, f)
    assert len(load_coco_json(path, "/img")) == 2
    with open(path, "w") as f:
        f.write(json.dumps(COCO_BASE)[:40])
    with pytest.raises(UserError, match=r"instances\.json is not valid json: .*line 1 column"):
        load_coco_json(path, "/img")

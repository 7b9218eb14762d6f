"""The paper configs (He et al. 2015, Tables 7 and 8) against their recipe, docs/reproduction.md.

The document is the single source: its "paper-configs" table names the configs, their
comparison and backbone; its "shared" table pins each comparison's values and its "backbone"
table each backbone's. A config value that disagrees with its row, a key a paper config changes
from the default without a row, or a difference between the two configs of one comparison
outside the backbone's keys fails here.
"""

import os
import re
from typing import Dict, List

import pytest
import yaml

from resnet_det.config import get_cfg

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "docs", "reproduction.md")

# The keys the two configs of one comparison may differ in: what the backbone itself requires
# (its builder, its depth, the feature map the heads read, the box head, and the weights with
# their input contract), and where the run writes.
ALLOWED_DIFFERENCES = {
    "MODEL.BACKBONE.NAME",
    "MODEL.RESNETS.DEPTH",
    "MODEL.RPN.IN_FEATURES",
    "MODEL.ROI_HEADS.NAME",
    "MODEL.ROI_HEADS.IN_FEATURES",
    "MODEL.ROI_BOX_HEAD.NAME",
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "MODEL.WEIGHTS",
    "MODEL.PIXEL_MEAN",
    "MODEL.PIXEL_STD",
    "INPUT.FORMAT",
    "OUTPUT_DIR",
}
# Keys that say where and how often a run writes, not how it trains.
NOT_RECIPE = {"OUTPUT_DIR", "SOLVER.CHECKPOINT_PERIOD"}
NOT_SET = "—"


def _tables(text: str) -> Dict[str, List[Dict[str, str]]]:
    """{marker: rows} for every markdown table preceded by a <!-- marker --> line; a row is
    {header cell: cell}, with surrounding backticks removed from the cells."""
    tables, lines = {}, text.splitlines()
    for i, line in enumerate(lines):
        m = re.fullmatch(r"<!-- (.+) -->", line.strip())
        if not m:
            continue
        block = []
        for row in lines[i + 1 :]:
            if not row.startswith("|"):
                break
            block.append([c.strip() for c in row.strip().strip("|").split("|")])
        header, rows = block[0], block[2:]
        assert all(len(r) == len(header) for r in rows), f"ragged table after <!-- {m.group(1)} -->"
        tables[m.group(1)] = [
            {h: re.sub(r"^`(.*)`$", r"\1", c) for h, c in zip(header, r)} for r in rows
        ]
    return tables


def _plain(value):
    """Tuples (yacs keeps some defaults as tuples) as lists, for comparison with YAML."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return _plain(node)


def _flatten(node, prefix: str = "") -> Dict[str, object]:
    out = {}
    for k, v in node.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = _plain(v)
    return out


def _load(path: str):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(ROOT, path))
    return cfg


TABLES = _tables(open(DOC, encoding="utf-8").read())
PAPER = TABLES["paper-configs"]
SHARED = TABLES["recipe-table: shared"]
BACKBONE = TABLES["recipe-table: backbone"]
COMPARISONS = sorted({row["comparison"] for row in PAPER})
CONFIGS = [row["config"] for row in PAPER]


def _expected(row: Dict[str, str], column: str):
    cell = row[column]
    return NOT_SET if cell == NOT_SET else yaml.safe_load(cell)


def test_the_document_names_both_backbones_of_each_comparison():
    assert set(CONFIGS) >= {
        "configs/faster_rcnn_R101.yaml",
        "configs/faster_rcnn_VGG16.yaml",
        "configs/voc/faster_rcnn_R101.yaml",
        "configs/voc/faster_rcnn_VGG16.yaml",
        "configs/voc/faster_rcnn_R101_07++12.yaml",
        "configs/voc/faster_rcnn_VGG16_07++12.yaml",
    }
    for comparison in COMPARISONS:
        assert sorted(r["backbone"] for r in PAPER if r["comparison"] == comparison) == [
            "ResNet-101",
            "VGG-16",
        ]
    # Every comparison has a column in the shared table, every backbone one in the other.
    assert set(COMPARISONS) <= set(SHARED[0]) and {"ResNet-101", "VGG-16"} <= set(BACKBONE[0])
    assert not {r["key"] for r in SHARED} & {r["key"] for r in BACKBONE}


@pytest.mark.parametrize("row", PAPER, ids=CONFIGS)
def test_paper_config_matches_the_recipe_table(row):
    cfg, default = _load(row["config"]), get_cfg()
    wrong = []
    for table, column in ((SHARED, row["comparison"]), (BACKBONE, row["backbone"])):
        for entry in table:
            key, want = entry["key"], _expected(entry, column)
            if want == NOT_SET:
                want = _get(default, key)  # "—": left at the default
            got = _get(cfg, key)
            if got != want:
                wrong.append(f"{key}: config {got!r}, docs/reproduction.md {want!r}")
    assert not wrong, f"{row['config']} disagrees with docs/reproduction.md:\n" + "\n".join(wrong)


@pytest.mark.parametrize("row", PAPER, ids=CONFIGS)
def test_paper_config_changes_no_key_the_tables_omit(row):
    listed = {r["key"] for r in SHARED} | {r["key"] for r in BACKBONE} | NOT_RECIPE
    got, default = _flatten(_load(row["config"])), _flatten(get_cfg())
    unlisted = sorted(k for k in got if k not in listed and got[k] != default[k])
    assert not unlisted, (
        f"{row['config']} sets {unlisted} away from the defaults; give each a row "
        "in docs/reproduction.md (value, source, departure)"
    )


@pytest.mark.parametrize("comparison", COMPARISONS)
def test_backbones_of_one_comparison_differ_only_in_backbone_keys(comparison):
    a, b = (_flatten(_load(r["config"])) for r in PAPER if r["comparison"] == comparison)
    differing = {k for k in a if a[k] != b[k]}
    assert differing <= ALLOWED_DIFFERENCES, (
        f"{comparison}: the VGG-16 and ResNet-101 configs also differ in "
        f"{sorted(differing - ALLOWED_DIFFERENCES)}; only the backbone's keys may"
    )


def test_allowed_differences_are_minimal_and_documented():
    used = set()
    for comparison in COMPARISONS:
        a, b = (_flatten(_load(r["config"])) for r in PAPER if r["comparison"] == comparison)
        used |= {k for k in a if a[k] != b[k]}
    # Extra differences fail the test above; here: no allowed key goes unused.
    assert ALLOWED_DIFFERENCES <= used, (
        f"no paper config pair differs in "
        f"{sorted(ALLOWED_DIFFERENCES - used)}: drop them from the list"
    )
    assert ALLOWED_DIFFERENCES - NOT_RECIPE <= {r["key"] for r in BACKBONE}

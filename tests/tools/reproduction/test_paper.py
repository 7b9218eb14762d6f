"""The comparisons tools/reproduce.py runs hold the paper's numbers and configs as
docs/reproduction.md states them (one source for both)."""

import os
import re

import pytest

from reproduction import COMPARISONS, DEMO
from reproduction.paper import repo_path


def _paper_config_rows():
    """{config: "the paper's result" cell} of docs/reproduction.md's paper-configs table."""
    with open(repo_path("docs/reproduction.md")) as f:
        lines = f.read().splitlines()
    start = lines.index("<!-- paper-configs -->") + 1
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
        rows[cells["config"].strip("`")] = cells["the paper's result"]
    return rows


def test_every_paper_config_is_in_a_comparison_with_the_documented_numbers():
    rows = _paper_config_rows()
    covered = {}
    for comparison in COMPARISONS.values():
        for b in comparison.backbones:
            covered[b.detection_config] = b
    assert set(covered) == set(rows)
    for config, cell in rows.items():
        numbers = dict(re.findall(r"(mAP(?:@\S+?)?) (\d+\.\d)", cell))
        assert {k: float(v) for k, v in numbers.items()} == dict(covered[config].paper), config


@pytest.mark.parametrize("comparison", list(COMPARISONS.values()) + [DEMO], ids=lambda c: c.key)
def test_configs_exist_and_the_baseline_comes_first(comparison):
    base, deep = comparison.backbones
    assert (base.name, deep.name) == ("VGG-16", "ResNet-101")
    for b in comparison.backbones:
        assert os.path.isfile(repo_path(b.detection_config)), b.detection_config
        assert os.path.isfile(repo_path(b.pretrain_config)), b.pretrain_config
        assert set(b.paper) == {m.label for m in comparison.metrics}


def test_paper_gains():
    gains = {
        (k, m.label): round(c.paper_gain(m), 1) for k, c in COMPARISONS.items() for m in c.metrics
    }
    assert gains == {
        ("7", "mAP"): 3.2,
        ("voc12", "mAP"): 3.4,
        ("8", "mAP@.5"): 6.9,
        ("8", "mAP@[.5,.95]"): 6.0,
    }

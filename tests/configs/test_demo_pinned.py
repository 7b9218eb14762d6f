"""The demo as measured: README.md's demo numbers hold for exactly one demo config and one
generated data set, recorded in tests/configs/demo_measured.json.

- every training/evaluation value of configs/demo/faster_rcnn_shapes.yaml, resolved through
  its _BASE_ and the defaults, equals the recorded one (a key added to the config system later
  is not part of the record, so adding keys does not fail here; changing one the demo uses does);
- the shapes generator draws the recorded data (shapes_digest: pixels, boxes, classes; extra
  annotation fields such as masks are not part of it);
- README.md's demo section quotes the record's fingerprint and its results table, seed by seed,
  and every seed meets the promise (AP50 >= 80).

When one of them fails after a deliberate change: re-run the three seeds as README.md's demo
section says, then ``python3 tests/configs/test_demo_pinned.py --record`` (rewrites the config
and data part of the record) and update the record's results, README.md's table and fingerprint
and the config's header together.
"""

import hashlib
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEMO = os.path.join(ROOT, "configs", "demo", "faster_rcnn_shapes.yaml")
RECORD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_measured.json")
README = os.path.join(ROOT, "README.md")
# The config sections that decide what the demo trains and how it is scored; the classifier's
# and VGG's keys and OUTPUT_DIR do not.
SECTIONS = ("MODEL.", "INPUT.", "DATASETS.", "DATALOADER.", "SOLVER.", "TEST.", "SEED", "ENGINE")
NOT_DEMO = ("MODEL.CLASSIFIER.", "MODEL.VGG.", "INPUT.CLS.", "TEST.CLS_")
PROMISED_AP50 = 80.0


def _flatten(node, prefix=""):
    out = {}
    for k, v in node.items():
        key = prefix + k
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def demo_config_values():
    """The demo config's resolved values in SECTIONS, as JSON-able {dotted key: value}."""
    from resnet_det.config import get_cfg

    cfg = get_cfg()
    cfg.merge_from_file(DEMO)
    flat = _flatten(cfg)
    values = {
        k: v for k, v in flat.items() if k.startswith(SECTIONS) and not k.startswith(NOT_DEMO)
    }
    # Nested tuples (anchor sizes) as lists, as JSON stores them.
    return json.loads(json.dumps(values))


def fingerprint(record) -> str:
    """12 hex digits of SHA-256 over the record's config values and data digest."""
    blob = json.dumps(
        {"config": record["config"], "shapes_digest": record["shapes_digest"]}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _record():
    with open(RECORD) as f:
        return json.load(f)


def test_demo_config_is_as_measured():
    recorded = _record()["config"]
    live = demo_config_values()
    changed = {
        k: (v, live.get(k, "<missing>"))
        for k, v in recorded.items()
        if live.get(k, "<missing>") != v
    }
    assert not changed, (
        "configs/demo/faster_rcnn_shapes.yaml (or a default it inherits) no longer resolves to "
        "the "
        f"values README.md's demo numbers were measured with: {{key: (measured, now)}} = "
        f"{changed}. "
        f"See this test's docstring for how to re-measure and re-record."
    )


def test_demo_data_is_as_measured():
    from resnet_det.data.datasets.shapes import shapes_digest

    assert shapes_digest() == _record()["shapes_digest"], (
        "the shapes generator no longer draws the data README.md's demo numbers were measured on "
        "(pixels, boxes or classes changed; see this test's docstring)"
    )


def _demo_section(text: str) -> str:
    start = text.index("## What the main job does")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _results_table(section: str):
    """Rows of the table after the <!-- demo-results --> marker: {seed: {column: cell}}."""
    lines = section[section.index("<!-- demo-results -->") :].splitlines()[1:]
    rows = [ln for ln in lines if ln.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    out = {}
    for row in rows[2:]:
        cells = dict(zip(header, (c.strip() for c in row.strip("|").split("|"))))
        out[cells["SEED"]] = cells
    return out


def test_readme_quotes_the_measurement():
    record = _record()
    with open(README) as f:
        section = _demo_section(f.read())
    assert f"`{fingerprint(record)}`" in section, (
        f"README.md's demo section must quote the demo fingerprint `{fingerprint(record)}` of "
        f"tests/configs/demo_measured.json"
    )
    table = _results_table(section)
    results = record["results"]
    assert sorted(table) == sorted(results) == ["0", "1", "2"]
    for seed, measured in results.items():
        row = table[seed]
        for column in ("AP50", "AP", "AP75"):
            assert float(row[column]) == round(measured[column], 1), (seed, column)
        assert measured["AP50"] >= PROMISED_AP50, (
            f"SEED {seed}: AP50 {measured['AP50']} < {PROMISED_AP50}"
        )


def test_record_notices_a_changed_value(monkeypatch):
    """The comparison is live: a demo value changed on the way in is reported by key."""
    from resnet_det.config import CfgNode

    original = CfgNode.merge_from_file

    def merge_then_change(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.SOLVER.BASE_LR = self.SOLVER.BASE_LR * 2

    monkeypatch.setattr(CfgNode, "merge_from_file", merge_then_change)
    try:
        test_demo_config_is_as_measured()
    except AssertionError as e:
        assert "SOLVER.BASE_LR" in str(e)
    else:
        raise AssertionError("a doubled SOLVER.BASE_LR went unnoticed")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(f"usage: python3 {sys.argv[0]} --record   (after re-measuring; see the docstring)")
    sys.path.insert(0, ROOT)
    from resnet_det.data.datasets.shapes import shapes_digest

    record = _record() if os.path.exists(RECORD) else {"results": {}}
    record.update(config=demo_config_values(), shapes_digest=shapes_digest())
    with open(RECORD, "w") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")
    print(
        f"wrote {RECORD}; fingerprint {fingerprint(record)}: update README.md's demo section and "
        f"the record's results from the new measurement"
    )

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from resnet_det.data.datasets.boxes import (
    CLIPPED,
    DEGENERATE,
    KEEP,
    OUTSIDE,
    BoxSanitizer,
    sanitize_boxes,
)
from resnet_det.data.skips import FaultPolicy

_V = st.one_of(
    st.floats(-50, 150, allow_nan=False, allow_subnormal=False),
    st.sampled_from([0.0, -0.0, 100.0, 80.0, float("nan"), 1e-300]),
)


def _reference(box, width, height):
    """The rule as plain Python: dropped (reason) or the clipped box and whether it moved."""
    x0, y0, x1, y1 = box
    if not x1 - x0 > 0 or not y1 - y0 > 0:
        return DEGENERATE, None
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        return OUTSIDE, None
    out = (max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height)))
    return (CLIPPED if out != (x0, y0, x1, y1) else KEEP), out


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.lists(st.tuples(_V, _V, _V, _V), min_size=1, max_size=8))
def test_sanitize_boxes_is_the_rule_box_by_box(boxes):
    clipped, fate = sanitize_boxes(np.array(boxes), 100, 80)
    for box, c, f in zip(boxes, clipped.tolist(), fate.tolist()):
        want_fate, want_box = _reference(box, 100, 80)
        assert f == want_fate
        if want_box is not None:
            assert c == list(want_box)
            # -0.0 stays -0.0 (Python's max returns its first argument on a tie).
            assert [math.copysign(1, v) for v in c] == [math.copysign(1, v) for v in want_box]


def test_box_sanitizer_counts_what_it_drops_and_clips():
    policy = FaultPolicy("f.json", "skip")
    sanitize = BoxSanitizer(policy)
    assert sanitize([10, 10, 5, 20], 100, 80, 1) is None
    assert sanitize([200, 10, 300, 20], 100, 80, 2) is None
    assert sanitize([-5, 10, 50, 90], 100, 80, 3) == (0.0, 10.0, 50.0, 80.0)
    assert sanitize([5, 10, 50, 60], 100, 80, 4) == (5.0, 10.0, 50.0, 60.0)
    assert policy.counts.annotations == {"degenerate box": 1, "outside image": 1}
    assert policy.num_clipped == 1

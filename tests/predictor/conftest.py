"""Fixtures of the predictor tests: a tiny registered dataset and a random demo checkpoint."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import _demo  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(dataset name, image files, checkpoint path, cfg factory) for the module's tests."""
    folder = tmp_path_factory.mktemp("shapes")
    files, json_file = _demo.write_images(str(folder / "images"))
    name = _demo.register(str(folder / "images"), json_file)
    weights = _demo.save_random_checkpoint(str(folder / "model_final.pth"))
    yield name, files, weights, lambda *extra: _demo.demo_cfg(name, weights, *extra)
    _demo.unregister(name)

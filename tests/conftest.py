"""Shared test fixtures (keep this file minimal)."""

import numpy as np
import pytest
import torch


@pytest.fixture
def single_thread():
    """Run a test with one intra-op thread, then restore the setting.

    The tests' tensors are tiny; on a small, shared CPU machine a second spinning OpenMP
    thread makes deep nets (thousands of small ops) tens of times slower, not faster.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _restore_package_logger():
    """Undo what a test's default_setup()/setup_logger() did to the "resnet_det" logger.

    setup_logger stops propagation to the root logger (the console handler prints instead),
    which would hide later tests' records from caplog, and adds handlers writing into that
    test's tmp folder.
    """
    import logging

    logger = logging.getLogger("resnet_det")
    saved = (logger.propagate, logger.level, list(logger.handlers))
    yield
    for h in list(logger.handlers):
        if h not in saved[2]:
            logger.removeHandler(h)
            h.close()
    logger.propagate, logger.level = saved[0], saved[1]


def _random_masks(rng, n, h, w):
    masks = np.zeros((n, h, w), dtype=bool)
    for k in range(n):
        kind = k % 4
        if kind == 0:  # a rectangle
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            masks[k, y0 : y0 + rng.integers(1, h + 1), x0 : x0 + rng.integers(1, w + 1)] = True
        elif kind == 1:  # noise: many short runs
            masks[k] = rng.random((h, w)) < 0.5
        elif kind == 2:  # everything (one run after an empty first one)
            masks[k] = True
        # kind 3: nothing
    return masks


@pytest.fixture
def random_masks():
    """``random_masks(rng, n, h, w)``: n boolean masks [n, h, w] of four kinds in turn (a
    rectangle, noise of many short runs, everything, nothing): the RLE tests' cases."""
    return _random_masks


def _rectangle(y0, y1, x0, x1, h, w):
    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    return m


def _compressed_rle(m):
    from pycocotools import mask as mask_util

    r = mask_util.encode(np.asfortranarray(m))
    return {"size": list(r["size"]), "counts": r["counts"].decode("ascii")}


@pytest.fixture
def rectangle_mask():
    """``rectangle_mask(y0, y1, x0, x1, h, w)``: a uint8 [h, w] mask, 1 on rows y0..y1-1 and
    columns x0..x1-1."""
    return _rectangle


@pytest.fixture
def mask_rle():
    """``mask_rle(m)``: pycocotools' compressed RLE of a uint8 mask, with "counts" a str as
    JSON annotations hold it."""
    return _compressed_rle

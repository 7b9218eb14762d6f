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


@pytest.fixture
def count_calls(monkeypatch):
    """``count_calls(owner, name)``: ``owner.name`` wrapped for the test so that it counts its
    calls; returns the counter, a dict whose "n" is the number of calls so far."""

    def wrap(owner, name):
        counter = {"n": 0}
        original = getattr(owner, name)

        def counting(*args, **kwargs):
            counter["n"] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, counting)
        return counter

    return wrap

"""utils.bulk.collector_paused: the cyclic collector off inside, its state restored after."""

import gc

import pytest

from resnet_det.utils.bulk import collector_paused


def test_collector_paused_inside_and_restored_after_errors_and_nesting():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves it as the outer found it
    assert gc.isenabled()
    with pytest.raises(KeyError):
        with collector_paused():
            raise KeyError("x")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # off before: still off
    finally:
        gc.enable()

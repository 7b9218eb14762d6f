"""Shared test fixtures (keep this file minimal)."""
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

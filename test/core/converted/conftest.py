"""Fixtures of the converted-family tests."""

import pytest
import torch


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Run these small networks on one thread (tiny ops on a busy machine stall otherwise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

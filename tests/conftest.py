"""Test-wide settings: fast mode for every test and every notebook kernel nbval starts."""

import os

import pytest
import torch

os.environ.setdefault("ADVEBM_FAST", "1")  # set before nbval starts kernels, which inherit it


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run faster on one intra-op thread on a busy 2-core machine; restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

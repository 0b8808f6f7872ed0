"""Fixtures shared by the STDP family's tests."""

import pytest


@pytest.fixture(scope='module')
def images(fashion_train):
    """Return 8 real training images."""
    return fashion_train.images[:8]

"""Shared fixtures of the core tests: the Fashion-MNIST directory and small images."""

from pathlib import Path

import pytest

from topspark_ros.core.datasets import DatasetError, find_dataset_dir, load_mnist_family


@pytest.fixture(scope='session')
def fashion_dir() -> Path:
    """Return the Fashion-MNIST directory, or skip when it is not installed."""
    try:
        return find_dataset_dir('fashion-mnist', start=Path(__file__).parent)
    except DatasetError as exc:
        pytest.skip(f'Fashion-MNIST not installed: {exc}')


@pytest.fixture(scope='session')
def fashion_train(fashion_dir):
    """Return the Fashion-MNIST training split."""
    return load_mnist_family(fashion_dir, 'train')


@pytest.fixture(scope='session')
def fashion_test(fashion_dir):
    """Return the Fashion-MNIST test split."""
    return load_mnist_family(fashion_dir, 'test')

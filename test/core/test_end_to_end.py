"""A small real train + eval run on Fashion-MNIST that must beat chance by a wide margin."""

import numpy as np

from topspark_ros.core.data.dataset import split_indices
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig


def test_learns_fashion_mnist_well_above_chance(fashion_train, fashion_test):
    (train_idx,) = split_indices(len(fashion_train), [400], seed=0)
    (test_idx,) = split_indices(len(fashion_test), [500], seed=0)
    model = DiehlCookNetwork(STDPConfig(n_neurons=100, seed=0))
    images = fashion_train.images[train_idx]
    model.learn(images, timesteps=250, seed=1)
    model.assign_labels(images, fashion_train.labels[train_idx], timesteps=250, seed=2)
    result = model.infer(fashion_test.images[test_idx], timesteps=250, seed=3)
    accuracy = float(np.mean(result.predicted == fashion_test.labels[test_idx]))
    # Chance is 10%. Measured with these sample counts: 47-50% after learning (model seeds
    # 0, 1, 2) against 15-18% for the same networks without learning (random weights, same
    # readout). 40% sits far above the untrained networks, so the test fails when learning
    # breaks, and below the learnt ones by a margin for seed-to-seed variation.
    assert accuracy >= 0.40, accuracy

"""
The interface every model family implements (STDP network, converted deep SNN).

``eval``, ``sweep``, timestep profiles, the trade-off strategy, the classifier session and the
nodes use models only through this interface, so they work with either family without
special cases. ``T`` (``timesteps``) is an argument of every call, never model state.
"""

from typing import Mapping, Optional, Protocol

import numpy as np

from topspark_ros.core.energy import OpCounts
from topspark_ros.core.preprocess import FrameSpec


class ModelResult(Protocol):
    """What :meth:`SpikingModel.infer` returns for a batch of ``B`` inputs."""

    scores: Optional[np.ndarray]
    """``float [B, C]`` class scores (None before a readout exists)."""
    predicted: Optional[np.ndarray]
    """``int64 [B]`` predicted classes (None before a readout exists)."""
    timesteps_used: np.ndarray
    """``int64 [B]`` steps simulated per input (< ``T`` after an early exit)."""
    spike_count: np.ndarray
    """``int64 [B]`` spikes of all neurons per input."""

    def energy_ops(self, index: int) -> OpCounts:
        """Return the operation counts of input ``index`` for the energy model."""


class SpikingModel(Protocol):
    """A spiking classifier of ``uint8`` frames ``[B, *input_spec.shape]``."""

    checkpoint_family: str
    n_classes: int
    input_spec: FrameSpec

    def infer(self, images: np.ndarray, *, timesteps: int, params=None,
              early_exit=None) -> ModelResult:
        """Classify a batch for ``timesteps`` steps (learning off)."""

    def learn(self, images: np.ndarray, *, timesteps: int, params=None):
        """Learn from a batch, sample after sample (families without on-line learning raise)."""

    def params_for_values(self, values: Mapping[str, float]):
        """Return the run-time parameters with ``values`` (from a profile) applied."""

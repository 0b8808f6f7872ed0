"""
Fixtures of the TopSpark tests: a hand-made model whose figures are known exactly.

Its inputs are non-negative integers ``x``; at T steps (``gain`` from the parameters, 1 by
default):

.. code-block:: text

    predicted       x % 3 when x < gain * T, else (x + 1) % 3      (labels: x % 3)
    evidence        [x, T] per input
    scores          [3] per input: 2 for the predicted class, x % 2 for the next one (so the
                    predicted class's share is 1 for an even x, 2/3 for an odd one)
    spike_count     T + x
    timesteps_used  T, or min(T, max(min_steps, x)) with early exit
    ops per input   accumulates 2 T (x + 1), neuron_updates T     (totals: ints)

``learn`` counts the inputs it saw (``learnt``) and returns plasticity counts ``T`` per input.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from topspark_ros.core.energy import EnergyModel, EnergyPreset, OpCounts

PRESET = EnergyPreset(name='unit', description='1 pJ per accumulate, 2 pJ per neuron update, '
                      '4 pJ per plasticity update (tests)', source='tests', accumulate_pj=1.0,
                      mac_pj=3.0, neuron_update_pj=2.0, plasticity_update_pj=4.0,
                      includes=('arithmetic',))
ENERGY = EnergyModel(PRESET)


@dataclass(frozen=True)
class Ops:
    """Per-input counts of a batch."""

    accumulates: np.ndarray
    neuron_updates: np.ndarray
    plasticity_updates: np.ndarray

    def totals(self) -> dict:
        """Return the sums over the batch (ints)."""
        return {'accumulates': int(self.accumulates.sum()),
                'neuron_updates': int(self.neuron_updates.sum())}

    def energy_ops(self, index: int) -> OpCounts:
        """Return input ``index``'s counts."""
        return OpCounts(accumulates=float(self.accumulates[index]),
                        neuron_updates=float(self.neuron_updates[index]),
                        plasticity_updates=float(self.plasticity_updates[index]))

    def mean_energy_ops(self) -> OpCounts:
        """Return the mean over the batch."""
        return OpCounts(accumulates=float(self.accumulates.mean()),
                        neuron_updates=float(self.neuron_updates.mean()),
                        plasticity_updates=float(self.plasticity_updates.mean()))


@dataclass(frozen=True)
class Result:
    """What :meth:`FakeModel.infer` returns."""

    evidence: np.ndarray
    predicted: np.ndarray
    spike_count: np.ndarray
    timesteps_used: np.ndarray
    ops: Ops
    scores: np.ndarray

    def energy_ops(self, index: int) -> OpCounts:
        """Return input ``index``'s counts."""
        return self.ops.energy_ops(index)


@dataclass(frozen=True)
class Learnt:
    """What :meth:`FakeModel.learn` returns."""

    ops: Ops


class FakeModel:
    """The model of the module docstring; ``calls`` records every call."""

    checkpoint_family = 'fake'
    learns_online = True

    def __init__(self) -> None:
        """Start with nothing learnt and no call."""
        self.calls = []
        self.learnt = 0
        self.readout = None

    def params_for_values(self, values) -> dict:
        """Return the values themselves as the run-time parameters."""
        return dict(values)

    def ann_ops(self) -> OpCounts:
        """Return 1 000 MACs (the same network as an ANN)."""
        return OpCounts(macs=1000.0)

    def infer(self, inputs, *, timesteps: int, params=None, seed=None, early_exit=None):
        """Classify ``inputs`` (module docstring)."""
        self.calls.append(('infer', [int(v) for v in inputs], timesteps, params, seed,
                           early_exit))
        x = np.asarray(inputs, np.int64)
        t = int(timesteps)
        gain = (params or {}).get('gain', 1.0)
        predicted = np.where(x < gain * t, x % 3, (x + 1) % 3)
        used = np.full(len(x), t, np.int64)
        if early_exit is not None:
            used = np.minimum(t, np.maximum(early_exit.min_steps, x))
        zeros = np.zeros(len(x), np.int64)
        scores = np.zeros((len(x), 3))
        scores[np.arange(len(x)), predicted] = 2.0
        scores[np.arange(len(x)), (predicted + 1) % 3] = x % 2
        return Result(evidence=np.stack([x, np.full(len(x), t)], axis=1),
                      predicted=predicted, spike_count=t + x, timesteps_used=used,
                      ops=Ops(2 * t * (x + 1), np.full(len(x), t), zeros), scores=scores)

    def learn(self, inputs, *, timesteps: int, params=None, seed=None):
        """Count the inputs; return ``T`` plasticity updates per input."""
        self.calls.append(('learn', [int(v) for v in inputs], timesteps, params, seed, None))
        self.learnt += len(inputs)
        n = len(inputs)
        return Learnt(Ops(np.zeros(n, np.int64), np.zeros(n, np.int64),
                          np.full(n, int(timesteps))))


@pytest.fixture
def fake_model() -> FakeModel:
    """Return a fresh :class:`FakeModel` (module docstring)."""
    return FakeModel()


@pytest.fixture
def unit_energy() -> EnergyModel:
    """Return the energy model of the ``unit`` preset: 1 pJ per accumulate, 2 per update."""
    return ENERGY

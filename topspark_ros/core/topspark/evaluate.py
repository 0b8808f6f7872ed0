"""
The one batched-inference loop: a model over many inputs at one T, in batches.

``topspark train`` (labelling and held-out evaluation), ``topspark eval``, the timestep sweep
(:mod:`~topspark_ros.core.topspark.sweep`), the parameter enhancement's measurements and the
benchmarks all run inference through :func:`evaluate`, so batching, seeding and timing are the
same everywhere.

**Seeds.** Batch ``k`` holds inputs ``[k B, (k + 1) B)`` (``B``: ``batch_size``) and runs with
the seed

.. code-block:: text

    seed_by = 'batch'     seed + k            (the sweep and the enhancement)
    seed_by = 'sample'    seed + k B          (the CLI's train and eval, which pass seed + 1)

so a result depends on the batch size, the seed and the rule, never on what ran before.

**Timing.** ``Evaluation.seconds`` is the wall time of the whole loop (every batch, the
progress callback included), for latency per input ``1e3 * seconds / N`` ms.
"""

from dataclasses import dataclass
import time
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from topspark_ros.core.energy import OpCounts
from topspark_ros.core.topspark.early_exit import EarlyExit

SEED_RULES = ('batch', 'sample')
"""How the seed advances from batch to batch (module docstring)."""


@dataclass(frozen=True)
class Evaluation:
    """
    What :func:`evaluate` measured: every batch's result, in input order, and the wall time.

    The properties concatenate the batches' per-input arrays (``N`` inputs in all).

    Attributes
    ----------
    batches
        the model's result of each batch (:class:`~topspark_ros.core.model.InferenceResult`).
    seconds
        wall time of the loop (s).

    """

    batches: Tuple[object, ...]
    seconds: float

    @property
    def evidence(self) -> np.ndarray:
        """
        Return the readout's input ``[N, K]``: excitatory spike counts, or class evidence.

        ``[0, 0]`` when there was no input.
        """
        if not self.batches:
            return np.zeros((0, 0))
        return np.concatenate([r.evidence for r in self.batches])

    @property
    def scores(self) -> np.ndarray:
        """Return the class scores ``float64 [N, C]`` (the model needs a readout)."""
        return np.concatenate([r.scores for r in self.batches])

    @property
    def predicted(self) -> np.ndarray:
        """Return the predicted classes ``int64 [N]`` (the model needs a readout)."""
        return np.concatenate([r.predicted for r in self.batches])

    @property
    def spike_count(self) -> np.ndarray:
        """Return the spikes of all neurons per input, ``int64 [N]``."""
        return np.concatenate([r.spike_count for r in self.batches])

    @property
    def timesteps_used(self) -> np.ndarray:
        """Return the steps simulated per input, ``int64 [N]`` (< T after an early exit)."""
        return np.concatenate([r.timesteps_used for r in self.batches])

    def op_totals(self) -> dict:
        """Return the operation counts summed over every input (``{}`` without input)."""
        totals = [r.ops.totals() for r in self.batches]
        return {k: sum(t[k] for t in totals) for k in totals[0]} if totals else {}

    def mean_energy_ops(self) -> OpCounts:
        """
        Return the energy model's operation counts per input, the mean over every input.

        Summed input by input in input order (so the figure is exactly the same whatever the
        batch size), then divided by ``N`` (zero counts without input).
        """
        total, n = OpCounts(), 0
        for result in self.batches:
            for i in range(len(result.timesteps_used)):
                total = total + result.energy_ops(i)
                n += 1
        return total * (1.0 / max(n, 1))


def evaluate(model, inputs: Sequence, *, timesteps: int, batch_size: int = 256,
             params=None, seed: int = 0, seed_by: str = 'batch',
             early_exit: Optional[EarlyExit] = None,
             progress: Callable[[int], None] = lambda n: None) -> Evaluation:
    """
    Run ``model`` over ``inputs`` at ``timesteps`` in batches; return the :class:`Evaluation`.

    Parameters
    ----------
    model
        a model of any family (learning off: nothing in it changes).
    inputs
        ``[N, ...]`` what the model's ``infer`` takes: frames, or event windows for an event
        model.
    timesteps
        T, steps per input.
    batch_size
        inputs per ``infer`` call (>= 1).
    params
        the model's run-time parameters for every batch (None: its own).
    seed, seed_by
        the seed of every batch (module docstring; ``seed_by`` one of :data:`SEED_RULES`).
    early_exit
        stop each input once its class is decided (None: run all T steps).
    progress
        called with the number of inputs of each batch once it is done.

    """
    if seed_by not in SEED_RULES:
        raise ValueError(f'seed_by must be one of {", ".join(SEED_RULES)}, got {seed_by!r}')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    batches = []
    start = time.perf_counter()
    for k, first in enumerate(range(0, len(inputs), batch_size)):
        batch = inputs[first:first + batch_size]
        batches.append(model.infer(batch, timesteps=timesteps, params=params,
                                   seed=seed + (k if seed_by == 'batch' else first),
                                   early_exit=early_exit))
        progress(len(batch))
    return Evaluation(batches=tuple(batches), seconds=time.perf_counter() - start)

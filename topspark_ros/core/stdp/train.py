"""
On-line STDP training of a Diehl & Cook network: learn, assign labels, evaluate.

:func:`train` is what ``topspark train`` runs for the STDP family, in three stages:

1. **learn** (``'train'``): ``epochs`` passes over the training inputs, presented in chunks of
   :data:`CHUNK` to :meth:`learn` at T (no labels; the network's own input-spike stream). The
   first pass keeps the given order; each later pass presents the same inputs in a new order,
   ``numpy.random.default_rng(seed).permutation`` drawn once per pass.
2. **label** (``'label'``): inference at T on the first ``n_label`` inputs, then each
   excitatory neuron gets the class it responds to most
   (:func:`~topspark_ros.core.stdp.readout.assign_labels`); the readout is set on the model.
3. **evaluate** (``'eval'``, when held-out inputs are given): inference at T, accuracy of the
   readout's vote (``all_activity``).

Inference runs through :func:`~topspark_ros.core.topspark.evaluate.evaluate` in batches of
``batch_size``, the batch starting at input ``i`` seeded ``seed + 1 + i``.
"""

from dataclasses import dataclass
import time
from typing import Callable, Optional

import numpy as np

from topspark_ros.core.stdp.readout import assign_labels
from topspark_ros.core.topspark.evaluate import evaluate

CHUNK = 50
"""Training inputs per :meth:`learn` call (the progress granularity of the learning stage)."""

STAGES = ('train', 'label', 'eval')
"""The stages :func:`train` reports progress for, in order."""


@dataclass(frozen=True)
class TrainResult:
    """
    What :func:`train` did.

    Attributes
    ----------
    learn_seconds
        wall time of the learning stage (s).
    presentations
        inputs presented while learning (``epochs`` times the training inputs).
    accuracy
        fraction of the held-out inputs classified correctly (None: no held-out inputs).
    n_eval
        held-out inputs evaluated.
    eval_seconds
        wall time of the evaluation (s; None: no held-out inputs).

    """

    learn_seconds: float
    presentations: int
    accuracy: Optional[float] = None
    n_eval: int = 0
    eval_seconds: Optional[float] = None


def train(model, inputs, labels: np.ndarray, *, timesteps: int, n_label: int,
          epochs: int = 1, seed: int = 0, batch_size: int = 256, eval_inputs=None,
          eval_labels: Optional[np.ndarray] = None,
          progress: Callable[[str, int, int], None] = lambda stage, n, total: None,
          trained: Callable[[], None] = lambda: None) -> TrainResult:
    """
    Train ``model`` on ``inputs`` at ``timesteps``, label its neurons, evaluate (module doc).

    Parameters
    ----------
    model
        a :class:`~topspark_ros.core.stdp.DiehlCookNetwork` (or an event model wrapping one):
        learns in place; its ``readout`` is set.
    inputs, labels
        ``[N, ...]`` training inputs (frames, or event windows for an event model) and their
        ``[N]`` classes (only the first ``n_label`` are read).
    timesteps
        T, steps per input, in every stage.
    n_label
        inputs (the first ones) the neuron labels are assigned from, ``1 <= n_label <= N``.
    epochs
        passes over ``inputs`` while learning (>= 1).
    seed, batch_size
        the order of the later passes and the input spikes of inference (module doc).
    eval_inputs, eval_labels
        held-out inputs and classes to evaluate on (None: no evaluation).
    progress
        ``progress(stage, n, total)``: ``n`` more inputs of ``stage`` (one of :data:`STAGES`)
        done out of ``total``; called with ``n = 0`` when a stage starts.
    trained
        called once the model is trained and labelled, before the evaluation: the CLI saves
        the checkpoint there, so an evaluation interrupted (or failing) loses no training.

    """
    if not 1 <= n_label <= len(inputs):
        raise ValueError(f'n_label must be in [1, {len(inputs)}], got {n_label}')
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    total = epochs * len(inputs)
    progress('train', 0, total)
    order = np.random.default_rng(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        shown = inputs if epoch == 0 else inputs[order.permutation(len(inputs))]
        for first in range(0, len(shown), CHUNK):
            model.learn(shown[first:first + CHUNK], timesteps=timesteps)
            progress('train', min(CHUNK, len(shown) - first), total)
    learn_seconds = time.perf_counter() - start

    progress('label', 0, n_label)
    counts = evaluate(model, inputs[:n_label], timesteps=timesteps, batch_size=batch_size,
                      seed=seed + 1, seed_by='sample',
                      progress=lambda n: progress('label', n, n_label)).evidence
    model.readout = assign_labels(counts, labels[:n_label], model.n_classes)
    trained()
    if eval_inputs is None:
        return TrainResult(learn_seconds=learn_seconds, presentations=total)
    n_eval = len(eval_inputs)
    progress('eval', 0, n_eval)
    run = evaluate(model, eval_inputs, timesteps=timesteps, batch_size=batch_size,
                   seed=seed + 1, seed_by='sample',
                   progress=lambda n: progress('eval', n, n_eval))
    predicted = model.readout.predict(run.evidence)
    return TrainResult(learn_seconds=learn_seconds, presentations=total,
                       accuracy=float(np.mean(predicted == eval_labels)), n_eval=n_eval,
                       eval_seconds=run.seconds)

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
import json
import time
from typing import Callable, Optional

import numpy as np

from topspark_ros.core.files import written_atomically
from topspark_ros.core.signals import signals_deferred
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
        wall time of the learning stage (s), in this run.
    presentations
        inputs presented while learning in this run (``epochs`` times the training inputs;
        a resumed run: those since it started, so the two give its speed).
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


@dataclass(frozen=True)
class Position:
    """
    How far the learning stage has got: what a resumed run starts from.

    Attributes
    ----------
    epoch
        the pass under way (0 is the first).
    done
        inputs of that pass learnt from (a multiple of :data:`CHUNK`, or all of them).
    order
        the state of the passes' order generator when that pass began (its bit generator's
        ``state``), from which the pass's order is drawn again.

    """

    epoch: int
    done: int
    order: dict


STATE_FORMAT = 1
"""Version of the training-state files :func:`save_training_state` writes."""


def save_training_state(path, network, position: Position, settings: dict) -> None:
    """
    Write ``network``'s learning state at ``position`` to ``path`` (``.npz``), atomically.

    ``network`` is a :class:`~topspark_ros.core.stdp.DiehlCookNetwork` (its
    :meth:`learning_state`); ``settings`` what a resumed run must match (JSON-serialisable).
    No pickles: arrays, and the rest as JSON text.
    """
    meta = {'format': STATE_FORMAT, 'epoch': position.epoch, 'done': position.done,
            'order': position.order, 'settings': settings}
    with written_atomically(path) as temporary:
        with open(temporary, 'wb') as handle:
            np.savez(handle, meta=np.array(json.dumps(meta)), **network.learning_state())


def load_training_state(path) -> tuple:
    """
    Return ``(arrays, position, settings)`` of a file :func:`save_training_state` wrote.

    ``arrays`` go to :meth:`restore_learning_state`. Raises ValueError for a file that is no
    such state (naming it).
    """
    newer = None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(str(arrays.pop('meta')))
        found = meta.get('format')
        if isinstance(found, int) and found > STATE_FORMAT:
            newer = found  # a newer version's: resumable there, never to be removed
        elif found != STATE_FORMAT:
            raise ValueError(f'format {found!r}, not {STATE_FORMAT}')
        position = Position(int(meta['epoch']), int(meta['done']), meta['order'])
    except OSError as exc:  # a good state that cannot be read now (permissions, NFS): kept
        raise OSError(exc.errno, f'cannot read the training state {path}: '
                      f'{exc.strerror or exc}') from None
    except Exception as exc:  # noqa: B902 - a damaged file raises zipfile's, EOFError, ...
        why = 'not an .npz archive' if 'allow_pickle' in str(exc) else \
            f'{type(exc).__name__}: {exc}'
        raise ValueError(f'{path} is not a training state this version reads ({why}): a '
                         'damaged or foreign file; remove it to start again') from None
    if newer is not None:  # it was called damaged, and its removal advised (a review)
        raise ValueError(f'{path} is a training state of a newer topspark_ros (format '
                         f'{newer}, this version reads {STATE_FORMAT}): resume it with that '
                         'version, or move it away to start again here')
    return arrays, position, meta['settings']


def train(model, inputs, labels: np.ndarray, *, timesteps: int, n_label: int,
          epochs: int = 1, seed: int = 0, batch_size: int = 256, eval_inputs=None,
          eval_labels: Optional[np.ndarray] = None,
          progress: Callable[[str, int, int], None] = lambda stage, n, total: None,
          trained: Callable[[], None] = lambda: None, start: Optional[Position] = None,
          save_state: Optional[Callable[[Position], None]] = None,
          state_every_s: float = 600.0) -> TrainResult:
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
    start
        where the learning stage goes on from (a resumed run; the model's learning state
        restored by the caller); None: from the beginning.
    save_state, state_every_s
        ``save_state(position)`` saves the learning state reached (the CLI writes
        :func:`save_training_state`): called every ``state_every_s`` seconds of learning, at
        a chunk's end, and when the learning stage is interrupted (KeyboardInterrupt or the
        CLI's SIGTERM) while learning or labelling, after the chunk under way (the signal
        waits for it), before the interruption goes on. A run resumed at the end of the
        learning stage labels and evaluates.

    """
    if not 1 <= n_label <= len(inputs):
        raise ValueError(f'n_label must be in [1, {len(inputs)}], got {n_label}')
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    total = epochs * len(inputs)
    progress('train', 0, total)
    order = np.random.default_rng(seed)
    if start is None:
        start = Position(0, 0, order.bit_generator.state)
    elif not (0 <= start.epoch < epochs and 0 <= start.done <= len(inputs)):
        raise ValueError(f'cannot resume at pass {start.epoch + 1}, input {start.done}: the '
                         f'training has {epochs} pass(es) of {len(inputs)} inputs')
    if start.epoch or start.done:  # a resumed run's bar starts where the run stopped
        progress('train', start.epoch * len(inputs) + start.done, total)
    order.bit_generator.state = start.order
    began = time.perf_counter()
    saved_at, reached = time.monotonic(), start
    try:
        for epoch in range(start.epoch, epochs):
            drawn_from = order.bit_generator.state
            shown = inputs if epoch == 0 else inputs[order.permutation(len(inputs))]
            for first in range(start.done if epoch == start.epoch else 0, len(shown), CHUNK):
                done = min(first + CHUNK, len(shown))
                with signals_deferred(save_state is not None):  # a chunk learnt in full
                    model.learn(shown[first:done], timesteps=timesteps)
                    reached = Position(epoch, done, drawn_from)
                progress('train', done - first, total)
                if save_state is not None and time.monotonic() - saved_at >= state_every_s:
                    save_state(reached)
                    saved_at = time.monotonic()
        learn_seconds = time.perf_counter() - began
        presented = total - start.epoch * len(inputs) - start.done  # by this run
        progress('label', 0, n_label)
        counts = evaluate(model, inputs[:n_label], timesteps=timesteps, batch_size=batch_size,
                          seed=seed + 1, seed_by='sample',
                          progress=lambda n: progress('label', n, n_label)).evidence
    except KeyboardInterrupt:  # while learning or labelling: what was learnt is kept
        if save_state is not None and reached != start:
            save_state(reached)
        raise
    model.readout = assign_labels(counts, labels[:n_label], model.n_classes)
    trained()
    if eval_inputs is None:
        return TrainResult(learn_seconds=learn_seconds, presentations=presented)
    n_eval = len(eval_inputs)
    progress('eval', 0, n_eval)
    run = evaluate(model, eval_inputs, timesteps=timesteps, batch_size=batch_size,
                   seed=seed + 1, seed_by='sample',
                   progress=lambda n: progress('eval', n, n_eval))
    predicted = model.readout.predict(run.evidence)
    return TrainResult(learn_seconds=learn_seconds, presentations=presented,
                       accuracy=float(np.mean(predicted == eval_labels)), n_eval=n_eval,
                       eval_seconds=run.seconds)

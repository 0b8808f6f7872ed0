"""
Re-simulation check: run an exported NIR graph and compare its predictions with the model's.

The graph is read back from its file (``nir.read``) and run by the package's own readers:
a converted-family graph through :func:`~topspark_ros.core.exchange.nir_import.import_graph`
(the import path: it becomes a converted model again), an STDP graph through
:class:`~topspark_ros.core.exchange.nir_sim.NirSimulator` fed the very Poisson spike trains
the native model gets (same seeds), and once more fed the spike probabilities (rate input:
what a reader without the Poisson encoder would do). Both families are also run as plain NIR
(the simulator without topspark's neuron metadata), to show what a reader that knows only
NIR's semantics gets. What differs per family is a per-family mapping
(:data:`RESIMULATORS`), as the exporters and the importer are by design.
"""

from typing import Optional

import numpy as np


def _batches(n: int, size: int):
    """Yield ``slice`` objects of at most ``size`` over ``range(n)``."""
    for first in range(0, n, size):
        yield slice(first, min(n, first + size))


def _resimulate_converted(model, graph, images: np.ndarray, timesteps: int, *, seed: int,
                          batch_size: int, params=None, progress=lambda n: None) -> tuple:
    """Return ``(reader, native, nir, plain, rate)`` predictions of a converted model."""
    import torch

    from topspark_ros.core.exchange.nir_import import import_graph
    from topspark_ros.core.exchange.nir_sim import NirSimulator

    imported, _, _ = import_graph(graph, device=model.device)
    simulator = NirSimulator(graph, extensions=False, device=model.device)
    native, nir_pred, plain = [], [], []
    for part in _batches(len(images), batch_size):
        batch = images[part]
        native.append(model.infer(batch, timesteps=timesteps, params=params).predicted)
        nir_pred.append(imported.infer(batch, timesteps=timesteps).predicted)
        with torch.no_grad():
            result = simulator.run(model._inputs(batch), timesteps)
        plain.append(result['output'].argmax(1))
        progress(len(batch))
    return 'topspark import (converted family)', native, nir_pred, plain, []


def _resimulate_stdp(model, graph, images: np.ndarray, timesteps: int, *, seed: int,
                     batch_size: int, params=None, progress=lambda n: None) -> tuple:
    """Return ``(reader, native, nir, plain, rate)`` predictions of an STDP model."""
    import torch

    from topspark_ros.core.exchange.nir_sim import NirSimulator
    from topspark_ros.core.model import predicted_classes
    from topspark_ros.core.stdp.encoding import draw_seeds, poisson_events, spike_probabilities

    simulator = NirSimulator(graph, device='cpu')
    bare = NirSimulator(graph, extensions=False, device='cpu')
    p = model.params if params is None else params
    dt = model.config.dt_ms
    rng = np.random.default_rng(seed)
    output = [n for n, node in graph.nodes.items() if type(node).__name__ == 'Output'][0]
    native, nir_pred, plain, rate = [], [], [], []
    for part in _batches(len(images), batch_size):
        batch = images[part]
        events = poisson_events(batch, timesteps, p.input_rate_hz, dt,
                                draw_seeds(rng, len(batch)))
        native.append(model.infer(events, timesteps=timesteps, params=p).predicted)
        dense = torch.as_tensor(events.to_dense(), dtype=torch.float32)
        with torch.no_grad():  # no class where no output answered, as the model says
            nir_pred.append(predicted_classes(np.asarray(
                simulator.run(dense, timesteps, batch=len(batch))[output])))
            plain.append(predicted_classes(np.asarray(
                bare.run(dense, timesteps, batch=len(batch))[output])))
            probs = torch.as_tensor(spike_probabilities(batch, p.input_rate_hz, dt),
                                    dtype=torch.float32)
            rate.append(predicted_classes(np.asarray(simulator.run(probs, timesteps)[output])))
        progress(len(batch))
    return ('topspark NIR simulator (same Poisson trains as the model)', native, nir_pred,
            plain, rate)


RESIMULATORS = {'converted': _resimulate_converted, 'stdp': _resimulate_stdp}
"""How each family's graph is read back and run: a per-family mapping, like the exporters
(:data:`~topspark_ros.core.exchange.nir_export.EXPORTERS`), keyed by ``checkpoint_family``."""


def resimulate(model, graph, images: np.ndarray, labels: np.ndarray, timesteps: int, *,
               seed: int = 0, batch_size: int = 256, params=None,
               progress=lambda n: None) -> dict:
    """
    Return agreement and accuracies of the NIR graph against ``model`` on ``images``.

    ``params``: the run-time parameters the graph was exported with (None: the model's), with
    which the model runs too. ``progress(n)``: called as each batch of ``n`` images is done.

    Keys: ``n``, ``timesteps``, ``reader``, ``agreement`` (share of equal predictions, "no
    class" on both sides included), ``no_class`` (share of the inputs the model gave no class,
    -1: no output spiked), ``agreement_with_a_class`` (the agreement on the inputs the model
    gave a class; None when it gave none: a model at a T too small for its parameters agreed
    100 % with the graph on saying nothing, a review), ``native_accuracy``, ``nir_accuracy``,
    ``plain_nir_agreement`` (and ``..._with_a_class``) and, for the STDP family,
    ``rate_input_agreement`` (and ``..._with_a_class``) / ``rate_input_accuracy``.
    """
    family = model.checkpoint_family
    if family not in RESIMULATORS:
        raise ValueError(f'no NIR re-simulation for the {family!r} family')
    labels = np.asarray(labels)
    out = {'n': int(len(images)), 'timesteps': int(timesteps)}
    out['reader'], native, nir_pred, plain, rate = RESIMULATORS[family](
        model, graph, images, timesteps, seed=seed, batch_size=batch_size, params=params,
        progress=progress)
    native, nir_pred, plain = (np.concatenate(a) for a in (native, nir_pred, plain))
    answered = native >= 0

    def with_a_class(other: np.ndarray) -> Optional[float]:
        return float(np.mean(native[answered] == other[answered])) if answered.any() else None
    out.update(agreement=float(np.mean(native == nir_pred)),
               no_class=float(np.mean(~answered)),
               agreement_with_a_class=with_a_class(nir_pred),
               native_accuracy=float(np.mean(native == labels)),
               nir_accuracy=float(np.mean(nir_pred == labels)),
               plain_nir_agreement=float(np.mean(plain == native)),
               plain_nir_agreement_with_a_class=with_a_class(plain),
               plain_nir_accuracy=float(np.mean(plain == labels)))
    if rate:
        rate = np.concatenate(rate)
        out.update(rate_input_agreement=float(np.mean(rate == native)),
                   rate_input_agreement_with_a_class=with_a_class(rate),
                   rate_input_accuracy=float(np.mean(rate == labels)))
    return out

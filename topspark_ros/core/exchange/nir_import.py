r"""
Import a NIR graph of an IF/LIF network as a model of the converted family.

A feed-forward (convolutional or dense) graph whose neurons are ``IF`` or ``LIF`` (as
snnTorch, Norse, Sinabs and :mod:`~topspark_ros.core.exchange.nir_export` write them)
becomes a :class:`~topspark_ros.core.converted.ConvertedNetwork` of architecture
``'graph'``: every neuron node is a layer, every path of operations into it a synapse
(at most one pool of kernel = stride without padding, a ``Flatten``, at most one ``Conv2d`` /
``Affine`` / ``Linear``, or a ``Scale`` that equals the source's spike amplitude on an
identity path). It then runs in the classifier with adaptive T, sweeps, profiles and the
controller like a trained one. The mapping, per node:

* ``Input``: the model's analog input, the normalised image ``(x / 255 - mean) / std`` held at
  every step; ``mean`` and ``std`` come from topspark's metadata, the caller, or default to
  0 and 1 (the input is then ``x / 255`` in ``[0, 1]``). ``[C, H, W]`` with ``C`` 1 or 3,
  ``[H, W]``, or a flat ``[N]`` with ``N = S^2`` (grey) or ``3 S^2`` (RGB).
* ``IF``: ``v <- v + r I``: ``r`` is folded into the incoming weights; the threshold becomes
  the layer's ``mu`` when it is one value, else it is folded too (``mu = 1``); a layer of
  one threshold whose spikes an identity path carries at 1 (its ``Scale``) is folded too
  (:func:`_per_neuron_layers`). The converted
  family resets by subtraction: NIR's IF resets to ``v_reset``, so this is approximate unless
  the graph's metadata says ``reset: subtract`` (topspark's own exports).
* ``LIF`` (``v_leak = 0``, one ``tau`` per layer): discretised by forward Euler at ``dt``
  (default 1e-4 s, snnTorch's): ``v <- beta v + (r dt / tau) I`` with ``beta = 1 - dt/tau``
  as the layer's leak (:attr:`ConvertedConfig.leak`); exact for snnTorch's ``Leaky``.
* ``I`` before the ``Output``: the output layer (the converted family's accumulator; ``r``
  folded into its weights). An ``Output`` fed by an ``IF``/``LIF`` reads that layer's spike
  counts (an identity output layer); fed by an operation, the sum of its output over the steps.
* A native spike carries the layer's threshold, a NIR spike 1: the amplitude is divided out
  of the next weights; a ``SumPool2d`` is the native average pool with ``k^2`` folded into the
  next weights.

The initial potential is ``f theta`` with ``f`` from topspark's metadata, else 0. Anything
else (``CubaLIF``, ``LI``, ``Delay``, recurrent edges, nested graphs, ``Conv1d``, ...) is
refused with a one-line :class:`NirImportError` naming the node.
"""

import json
import math
import os
import re
from typing import Optional, Sequence

import numpy as np

from topspark_ros.core.exchange.fidelity import APPROXIMATE, FAITHFUL, FidelityReport
from topspark_ros.core.exchange.nir_sim import DEFAULT_DT_S, graph_metadata, NirMetadataError

SPIKING = ('IF', 'LIF')
NEURONS = SPIKING + ('I',)
PATH_OPS = ('SumPool2d', 'AvgPool2d', 'Flatten', 'Conv2d', 'Affine', 'Linear', 'Scale')
SUPPORTED = NEURONS + PATH_OPS + ('Input', 'Output')
DEFAULT_LIF_DT_S = DEFAULT_DT_S
"""Forward-Euler step of LIF nodes (snnTorch's export convention; the simulator's too)."""


class NirImportError(ValueError):
    """A graph the converted family cannot represent; the message names the node."""


def _uniform(values, name: str, what: str, rtol: float = 1e-6) -> float:
    """Return the one value of ``values``; :class:`NirImportError` when they differ."""
    arr = np.asarray(values, np.float64).reshape(-1)
    if arr.size == 0 or not np.allclose(arr, arr[0], rtol=rtol, atol=0.0):
        raise NirImportError(f'node {name!r}: {what} must be one value per layer')
    return float(arr[0])


PARAMETERS = ('weight', 'bias', 'r', 'tau', 'v_threshold', 'v_leak', 'v_reset', 'scale')
"""The numeric parameters of the supported nodes (:func:`_check_finite`)."""


def _check_finite(name: str, node) -> None:
    """
    Refuse (:class:`NirImportError`) a node's parameter that holds NaN or an infinity.

    ``nir.read`` takes them, and the checkpoint written of them was refused by every command
    that loaded it: with ``--overwrite`` a working model was replaced by one that loads
    nowhere (a review).
    """
    for what in PARAMETERS:
        value = getattr(node, what, None)
        if value is None:
            continue
        try:
            finite = np.isfinite(np.asarray(value, np.float64)).all()
        except (TypeError, ValueError):
            raise NirImportError(f'node {name!r}: {what} is not numbers') from None
        if not finite:
            raise NirImportError(f'node {name!r}: {what} holds NaN or infinite values')


def _pair(value) -> list:
    """Return ``value`` (an int or a sequence of one or two) as a list of two ints."""
    arr = np.atleast_1d(np.asarray(value)).astype(int).tolist()
    return [arr[0], arr[0]] if len(arr) == 1 else [arr[0], arr[1]]


def _input_geometry(name: str, shape, events: bool = False) -> tuple:
    """
    Return ``(channels, height, width)`` of an ``Input`` of ``shape``.

    ``events``: the graph's metadata says how events become its input frames (2 channels:
    OFF and ON counts).
    """
    shape = [int(s) for s in np.atleast_1d(np.asarray(shape))]
    if len(shape) == 3:
        channels, height, width = shape
    elif len(shape) == 2:
        channels, (height, width) = 1, shape
    elif len(shape) == 1:
        for channels in (1, 3):
            side = math.isqrt(shape[0] // channels)
            if side * side * channels == shape[0]:
                height = width = side
                break
        else:
            raise NirImportError(f'node {name!r}: a flat input of {shape[0]} values is not a '
                                 'square grey or RGB image')
    else:
        raise NirImportError(f'node {name!r}: input shape {shape} is not an image')
    if channels == 2 and not events:
        raise NirImportError(
            f"node {name!r}: 2 input channels, an event model's (OFF and ON counts): the "
            "graph does not say how events become its input (topspark's metadata "
            'input.encoding, which `topspark export` writes)')
    if channels not in ((2,) if events else (1, 3)):
        raise NirImportError(f'node {name!r}: {channels} input channels (the classifier takes '
                             + ('2 for event frames, as the metadata says)' if events else
                                '1: grey, 3: RGB, or 2: event frames)'))
    return channels, height, width


def _check_nodes(graph) -> None:
    """Refuse (:class:`NirImportError`) a node of a kind not imported, or not finite."""
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind not in SUPPORTED:
            raise NirImportError(f'node {name!r}: {kind} is not supported (the converted '
                                 f'family imports {", ".join(SUPPORTED)})')
        _check_finite(name, node)


def input_channels(graph) -> int:
    """
    Return the channels of ``graph``'s one ``Input`` (:class:`NirImportError` as the import).

    For checks of a caller's per-channel options before the import. The nodes are checked
    first, as the import does: an STDP graph was refused for its input's channels, not for
    its ``Delay`` (a review).
    """
    _check_nodes(graph)
    inputs = [(n, node) for n, node in graph.nodes.items() if type(node).__name__ == 'Input']
    if len(inputs) != 1:
        raise NirImportError(f'the graph has {len(inputs)} Input nodes; one is supported')
    name, node = inputs[0]
    events = (graph_metadata(graph).get('input') or {}).get('encoding') is not None
    return _input_geometry(name, node.input_type['input'], events)[0]


class _Synapse:
    """One path of operations from a source node into a neuron node (being parsed)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pool = 1
        self.pool_gain = 1.0
        self.op = None
        self.op_name = None
        self.scale = None
        self.scale_name = None
        self.notes = []


def _parse_path(graph, target: str, first: str, neurons: set, preds: dict) -> _Synapse:
    """Walk back from ``first`` (a predecessor of ``target``) to a source; return the path."""
    chain = []
    name = first
    while name not in neurons and type(graph.nodes[name]).__name__ != 'Input':
        kind = type(graph.nodes[name]).__name__
        if kind not in PATH_OPS:
            raise NirImportError(f'node {name!r}: {kind} cannot sit between neurons in the '
                                 'converted family')
        if len(preds[name]) != 1:
            raise NirImportError(f'node {name!r}: an operation with {len(preds[name])} inputs '
                                 '(only neuron nodes may sum several inputs)')
        chain.append(name)
        name = preds[name][0]
    syn = _Synapse(name)
    for name in reversed(chain):
        node = graph.nodes[name]
        kind = type(node).__name__
        if kind in ('SumPool2d', 'AvgPool2d'):
            kernel, stride = _pair(node.kernel_size), _pair(node.stride)
            if syn.pool != 1 or syn.op is not None or kernel[0] != kernel[1] \
                    or kernel != stride or any(_pair(node.padding)):
                raise NirImportError(f'node {name!r}: only one square pool with stride = '
                                     'kernel and no padding, before the weights, is supported')
            syn.pool = kernel[0]
            syn.pool_gain = float(kernel[0] ** 2) if kind == 'SumPool2d' else 1.0
            syn.notes.append((name, kind, 'the average pool' + (
                f' with its {kernel[0] ** 2} folded into the next weights'
                if kind == 'SumPool2d' else '')))
        elif kind == 'Flatten':
            if int(node.start_dim) not in (0, 1) and node.start_dim != -3 \
                    or int(node.end_dim) != -1 or syn.op is not None:
                raise NirImportError(f'node {name!r}: only a full flatten before a dense '
                                     'layer is supported')
            syn.notes.append((name, kind, 'implied by the dense layer'))
        elif kind == 'Scale':
            if syn.op is not None or syn.scale is not None:
                raise NirImportError(f'node {name!r}: a Scale is supported only alone on an '
                                     'identity path')
            syn.scale, syn.scale_name = np.asarray(node.scale, np.float64), name
        else:
            if syn.op is not None or syn.scale is not None:
                raise NirImportError(f'node {name!r}: two weight operations in one path')
            syn.op, syn.op_name = node, name
    return syn


def _op_spec(name: str, node) -> dict:
    """Return the layer-spec op of a ``Conv2d`` / ``Affine`` / ``Linear`` node."""
    weight = np.asarray(node.weight)
    if type(node).__name__ != 'Conv2d':
        if weight.ndim != 2:
            raise NirImportError(f'node {name!r}: weight of shape {list(weight.shape)}')
        return {'kind': 'linear', 'in': int(weight.shape[1]), 'out': int(weight.shape[0])}
    if weight.ndim != 4:
        raise NirImportError(f'node {name!r}: Conv2d weight of shape {list(weight.shape)}')
    kernel = [int(k) for k in weight.shape[2:]]
    dilation = _pair(node.dilation)
    padding = node.padding
    if isinstance(padding, (str, bytes)):
        padding = padding.decode() if isinstance(padding, bytes) else padding
        if padding == 'valid':
            padding = [0, 0]
        elif padding == 'same' and all(k % 2 for k in kernel):
            padding = [d * (k - 1) // 2 for d, k in zip(dilation, kernel)]
        else:
            raise NirImportError(f'node {name!r}: padding {padding!r} is not supported')
    groups = int(node.groups)
    return {'kind': 'conv', 'in': int(weight.shape[1]) * groups, 'out': int(weight.shape[0]),
            'kernel': kernel, 'stride': _pair(node.stride), 'padding': _pair(padding),
            'dilation': dilation, 'groups': groups}


def _row_gain(gain: np.ndarray, spec: dict, name: str) -> np.ndarray:
    """Return the per-output-unit (linear) or per-channel (conv) form of a neuron gain."""
    if spec['kind'] == 'linear':
        return gain.reshape(-1)
    per_channel = gain.reshape(gain.shape[0], -1)
    if not np.allclose(per_channel, per_channel[:, :1], rtol=1e-6, atol=0.0):
        raise NirImportError(f'node {name!r}: per-neuron gains or thresholds that vary within '
                             'a channel cannot fold into a convolution')
    return per_channel[:, 0]


def _identity_carried(scale, gain) -> np.ndarray:
    """Return what an identity path of ``scale`` (None: 1) delivers into a target of ``gain``."""
    return (np.ones(1) if scale is None else np.asarray(scale, np.float64)) * (
        1.0 if gain is None else gain)


def _identity_fits(carried: np.ndarray, amplitude: float, pool_gain: float) -> bool:
    """Return whether an identity path delivering ``carried`` takes a spike of ``amplitude``."""
    return bool(np.allclose(carried, amplitude / pool_gain, rtol=1e-5, atol=0.0))


def _uniform_thresholds(th: np.ndarray) -> bool:
    return bool(np.allclose(th, th.reshape(-1)[0], rtol=1e-6, atol=0.0))


MAX_FORM_SEARCH = 12
"""Layers on identity paths whose forms :func:`_per_neuron_layers` tries every way of."""


def _per_neuron_layers(neurons: dict, synapses: dict, input_name: str, feeder: str,
                       integrator) -> set:
    """
    Return the layers to import in the per-neuron form (``mu = 1``, thresholds folded).

    A layer of one threshold becomes ``mu = theta`` and its spikes carry ``theta``; in the
    per-neuron form they carry 1, and its input gain is divided by its thresholds. An
    identity path (a residual shortcut: no weights) cannot scale what it carries, so on
    each one the source's spike amplitude must equal the path's ``Scale`` (times a sum
    pool's area) times the target's gain. ``topspark export`` writes the shortcut's
    ``Scale`` as the source's threshold (both of one threshold); other writers as 1, which
    a source of threshold 2 met only in the per-neuron form (refused before; a review).
    The fewest layers are put in the per-neuron form that meets every identity path (every
    assignment of the layers on such paths tried, up to :data:`MAX_FORM_SEARCH` of them);
    layers of thresholds that vary always are. Where none meets them all, the layers
    of one threshold keep ``mu = theta`` and the import names the path that does not fit.
    """
    import itertools

    forced = {n for n, (_, th, _, _) in neurons.items() if not _uniform_thresholds(th)}
    paths = [(syn.source, target, syn.scale, syn.pool_gain) for target, syns in synapses.items()
             for syn in syns if syn.op is None and (target in neurons or target == feeder)]
    free = sorted({n for s, x, _, _ in paths for n in (s, x) if n in neurons} - forced)
    if not paths or len(free) > MAX_FORM_SEARCH:
        return forced

    def fits(per_neuron: set) -> bool:
        for source, target, scale, pool_gain in paths:
            if source == input_name:
                amplitude = 1.0
            else:
                th = neurons[source][1]
                amplitude = 1.0 if source in per_neuron else float(th.reshape(-1)[0])
            if target in neurons:
                gain = neurons[target][2]
                gain = gain / neurons[target][1] if target in per_neuron else gain
            else:  # the output integrator
                gain = np.asarray(integrator.r, np.float64)
            if not _identity_fits(_identity_carried(scale, gain), amplitude, pool_gain):
                return False
        return True
    for size in range(len(free) + 1):
        for chosen in itertools.combinations(free, size):
            if fits(forced | set(chosen)):
                return forced | set(chosen)
    return forced


def import_graph(graph, *, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, lif_dt_s: Optional[float] = None,
                 device: str = 'cpu'):
    """
    Return ``(model, report, info)``: ``graph`` as a ``ConvertedNetwork`` (see module doc).

    ``mean``/``std``: input normalisation per channel (default: the graph's topspark
    metadata, else 0 and 1). ``lif_dt_s``: the forward-Euler step of LIF nodes (default: the
    metadata's ``dt_s``, which ``topspark export`` writes, else :data:`DEFAULT_LIF_DT_S`, so a
    graph this package exported imports back the same). ``info``: class names and T from the
    metadata, for the
    checkpoint. Raises :class:`NirImportError` (one line, naming the node) on anything the
    converted family cannot represent.
    """
    import torch

    from topspark_ros.core.converted import (ConvertedConfig, ConvertedNetwork,
                                             ConvertedParams, ConvertibleNet, INPUT)
    from topspark_ros.core.events.encode import EventEncoding

    meta = graph_metadata(graph)
    if lif_dt_s is None:
        lif_dt_s = float(meta.get('dt_s') or DEFAULT_LIF_DT_S)
    neuron_meta = meta.get('neurons', {})
    report = FidelityReport()
    nodes = graph.nodes
    _check_nodes(graph)
    inputs = [n for n, node in nodes.items() if type(node).__name__ == 'Input']
    outputs = [n for n, node in nodes.items() if type(node).__name__ == 'Output']
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirImportError(f'the graph has {len(inputs)} Input and {len(outputs)} Output '
                             'nodes; one of each is supported')
    preds = {n: [s for s, d in graph.edges if d == n] for n in nodes}
    succs = {n: [d for s, d in graph.edges if s == n] for n in nodes}
    input_name, output_name = inputs[0], outputs[0]
    encoding = (meta.get('input') or {}).get('encoding')  # (an event model's export)
    channels, height, width = _input_geometry(
        input_name, nodes[input_name].input_type['input'], events=encoding is not None)
    neuron_names = {n for n, node in nodes.items() if type(node).__name__ in NEURONS}
    # Topological order of the neurons (a recurrent edge leaves some unordered).
    order, placed = [], {input_name}
    synapses = {}
    for name in neuron_names:
        if not preds[name]:
            raise NirImportError(f'node {name!r}: a neuron without input')
        synapses[name] = [_parse_path(graph, name, p, neuron_names, preds)
                          for p in preds[name]]
    while len(order) < len(neuron_names):
        ready = sorted(n for n in neuron_names - set(order)
                       if all(s.source in placed for s in synapses[n]))
        if not ready:
            stuck = sorted(neuron_names - set(order))[0]
            raise NirImportError(f'node {stuck!r}: on a recurrent loop (the converted family '
                                 'is feed-forward)')
        order += ready
        placed.update(ready)
    if len(preds[output_name]) != 1:
        raise NirImportError(f'node {output_name!r}: the Output has {len(preds[output_name])} '
                             'inputs (one is supported)')
    feeder = preds[output_name][0]
    integrators = [n for n in order if type(nodes[n]).__name__ == 'I']
    if integrators and integrators != [feeder]:
        raise NirImportError(f'node {integrators[0]!r}: an I node is supported only as the '
                             'output layer, right before the Output')
    hidden = [n for n in order if n != feeder or type(nodes[n]).__name__ != 'I']
    for name in hidden:
        if succs[name] == [] and name != feeder:
            raise NirImportError(f'node {name!r}: a neuron whose output goes nowhere')
    index = {name: i for i, name in enumerate(hidden)}
    index[input_name] = INPUT

    # Per hidden layer: threshold mu, per-neuron gain folded into the incoming weights, leak.
    neurons = {}  # name -> (kind, thresholds, gain r or r dt / tau, leak beta)
    for name in hidden:
        node = nodes[name]
        kind = type(node).__name__
        th = np.asarray(node.v_threshold, np.float64)
        if kind == 'IF':
            gain = np.broadcast_to(np.asarray(node.r, np.float64), th.shape)
            beta = 1.0
        else:
            if not np.allclose(np.asarray(node.v_leak, np.float64), 0.0):
                raise NirImportError(f'node {name!r}: LIF with v_leak != 0 is not representable '
                                     '(the converted family leaks towards 0)')
            tau = _uniform(node.tau, name, 'tau')
            if not tau > lif_dt_s:  # (tau = 0 divided by zero: a traceback; a review)
                raise NirImportError(f'node {name!r}: tau = {tau:g} s is not above the step '
                                     f'dt = {lif_dt_s:g} s (forward Euler)')
            beta = 1.0 - lif_dt_s / tau
            gain = np.broadcast_to(np.asarray(node.r, np.float64) * lif_dt_s / tau, th.shape)
        if np.any(th <= 0):
            raise NirImportError(f'node {name!r}: thresholds must be > 0')
        neurons[name] = (kind, th, gain, beta)
    per_neuron = _per_neuron_layers(neurons, synapses, input_name, feeder,
                                    nodes[feeder] if integrators else None)
    mu, gains, leak, v_init = [], {}, [], []
    for name in hidden:
        node = nodes[name]
        kind, th, gain, beta = neurons[name]
        nm = neuron_meta.get(name, {})
        if name not in per_neuron:
            mu.append(float(th.reshape(-1)[0]))
            gains[name] = gain.copy()
        else:
            mu.append(1.0)
            gains[name] = gain / th
        leak.append(beta)
        # The fraction of the threshold each neuron starts at (per neuron: the per-neuron
        # form's thresholds are 1).
        v_init.append(float(np.mean(np.asarray(nm['v_init'], np.float64) / th))
                      if 'v_init' in nm else 0.0)
        reset_ok = nm.get('reset') == 'subtract'
        v_reset = np.asarray(getattr(node, 'v_reset', 0.0), np.float64)
        reasons = []
        if kind == 'LIF':
            reasons.append(f'leak beta = 1 - dt/tau = {beta:.6g} (forward Euler, dt = '
                           f'{lif_dt_s:g} s), input gain r dt/tau folded into the weights')
        else:
            reasons.append('r folded into the incoming weights')
        status = FAITHFUL
        if not reset_ok:
            status = APPROXIMATE
            reasons.append('NIR resets to v_reset'
                           + (f' (= {float(v_reset.mean()):g})' if v_reset.size else '')
                           + '; imported with reset by subtraction of the threshold')
        if nm.get('fire') != '>=':
            status = APPROXIMATE
            reasons.append('fires at v >= threshold (NIR: v > threshold; differs only on '
                           'equality)')
        report.add(name, kind, status, '; '.join(reasons))
    if integrators:
        gains[feeder] = np.asarray(nodes[feeder].r, np.float64)
        report.add(feeder, 'I', FAITHFUL, 'the output layer accumulates its input (the class '
                   'evidence); r folded into its weights')

    spike_amp = {INPUT: 1.0}
    spike_amp.update({index[n]: mu[index[n]] for n in hidden})
    layers, state, noted = [], {}, set()

    def add_layer(target: str, syns) -> None:
        layer = len(layers)
        specs = []
        gain = gains.get(target)
        for k, syn in enumerate(syns):
            src = index[syn.source]
            amp = spike_amp[src]
            for note in syn.notes:
                if note[0] not in noted:
                    report.add(note[0], note[1], FAITHFUL, note[2])
                    noted.add(note[0])
            if syn.op is None:
                ratio = _identity_carried(syn.scale, gain)
                if not _identity_fits(ratio, amp, syn.pool_gain):
                    where = syn.scale_name or target
                    raise NirImportError(
                        f'node {where!r}: an identity path must carry the source spike '
                        f'amplitude ({amp / syn.pool_gain:g}), got {float(np.mean(ratio)):g}')
                specs.append({'source': src, 'pool': syn.pool, 'op': None})
                if syn.scale_name:
                    report.add(syn.scale_name, 'Scale', FAITHFUL, 'identity shortcut')
                continue
            spec = _op_spec(syn.op_name, syn.op)
            weight = np.asarray(syn.op.weight, np.float64) * syn.pool_gain / amp
            bias = np.asarray(getattr(syn.op, 'bias', np.zeros(weight.shape[0])), np.float64)
            if gain is not None:
                rows = _row_gain(np.asarray(gain), spec, target)
                shape = (-1,) + (1,) * (weight.ndim - 1)
                weight = weight * rows.reshape(shape)
                bias = bias * rows
            specs.append({'source': src, 'pool': syn.pool, 'op': spec})
            state[f'ops.l{layer}_{k}.weight'] = weight
            state[f'ops.l{layer}_{k}.bias'] = np.broadcast_to(bias, (spec['out'],))
            report.add(syn.op_name, type(syn.op).__name__, FAITHFUL,
                       'spike amplitude divided out of the weights' if src != INPUT else '')
        layers.append({'synapses': specs})

    for name in hidden:
        add_layer(name, synapses[name])
    if integrators:
        add_layer(feeder, synapses[feeder])
    elif feeder in index:
        layers.append({'synapses': [{'source': index[feeder], 'pool': 1, 'op': None}]})
        report.add(output_name, 'Output', FAITHFUL, f'reads the spike counts of {feeder!r} '
                   '(times its threshold); the prediction is their argmax')
    else:
        syn = _parse_path(graph, output_name, feeder, neuron_names, preds)
        gains[output_name] = None
        add_layer(output_name, [syn])
        report.add(output_name, 'Output', APPROXIMATE, 'the output current of each step is '
                   'summed over the steps (the evidence); NIR gives it step by step')
    n_classes = int(np.prod(np.asarray(nodes[output_name].output_type['output'])))
    m = meta.get('input', {})
    mean = list(mean if mean is not None else m.get('mean', [0.0] * channels))
    std = list(std if std is not None else m.get('std', [1.0] * channels))
    report.add(input_name, 'Input', FAITHFUL if 'mean' in m else APPROXIMATE,
               f'analog input (x/255 - {mean})/{std} held at every step'
               + ('' if 'mean' in m else '; the graph does not say how its input is '
                  'normalised: check mean/std'))
    if len(set(np.round(v_init, 6))) > 1:
        report.add('<model>', 'initial potential', APPROXIMATE,
                   f'per-layer initial fractions {v_init}: the first is used for all')
    params = ConvertedParams(threshold_scale=1.0, v_init_frac=float(v_init[0] if v_init else 0))
    try:
        config = ConvertedConfig(arch='graph', height=height, width=width, channels=channels,
                                 n_classes=n_classes, mean=mean, std=std, layers=layers,
                                 leak=leak if any(b != 1.0 for b in leak) else ())
        net = ConvertibleNet(config)
    except ValueError as exc:
        raise NirImportError(f'the graph does not map onto the converted family: {exc}') \
            from None
    full = net.state_dict()
    for name, value in state.items():
        if tuple(full[name].shape) != tuple(np.shape(value)):
            raise NirImportError(f'{name}: weight of shape {list(np.shape(value))}, the layer '
                                 f'needs {list(full[name].shape)}')
        full[name] = torch.as_tensor(np.asarray(value, np.float32))
    for i, value in enumerate(mu):
        full[f'thresholds.{i}.mu'] = torch.tensor(float(value))
    net.load_state_dict(full)
    try:  # an event model: its encoding (window bins, polarity, sensor) from the metadata
        events = None if encoding is None else EventEncoding.from_dict(dict(encoding))
        model = ConvertedNetwork(config, params, device=device, net=net, event_encoding=events)
    except (TypeError, ValueError) as exc:
        raise NirImportError(f'node {input_name!r}: the event encoding of the metadata does '
                             f'not fit the graph ({exc})') from None
    info = {'class_names': list(meta.get('class_names') or []),
            'timesteps': meta.get('timesteps'),
            'nir_producer': meta.get('producer', ''),
            'nir_import': report.to_list()}
    # How the model's images were prepared (crop, invert) and read: the classifier and `eval`
    # prepare inputs as they say (lost in the round trip, an imported model ran center and
    # not inverted where the original ran none and inverted; a review).
    for key in ('data', 'data_options'):
        if meta.get(key):
            info[key] = meta[key]
    return model, report, info


def _reason(exc: BaseException) -> str:
    """
    Return why a NIR file could not be read, in a few words.

    HDF5's errors are several lines of C detail ('Unable to synchronously open file (file
    read failed: time = ..., errno = 13, error message = 'Permission denied', ...)').
    """
    text = str(exc)
    said = re.search(r"error message = '([^']*)'", text)
    if said:
        return said.group(1)
    if 'file signature not found' in text:
        return 'not an HDF5 file'
    return text.splitlines()[0] if text else type(exc).__name__


def _unknown_node_type(path) -> Optional[str]:
    """Return which node of the NIR file ``path`` has a type nir does not know, or None."""
    import h5py
    import nir

    known = set(nir.ir.__all__)

    def walk(group, prefix: str) -> Optional[str]:
        for name, node in group.items():
            if not isinstance(node, h5py.Group) or 'type' not in node:
                continue
            kind = node['type'][()]
            kind = kind.decode('utf-8', errors='replace') if isinstance(kind, bytes) else kind
            if not isinstance(kind, str) or kind not in known:
                return f'node {prefix + name!r}: type {kind!r} is not a NIR node type'
            if kind == 'NIRGraph' and 'nodes' in node:
                found = walk(node['nodes'], f'{prefix}{name}.')
                if found:
                    return found
        return None
    try:
        with h5py.File(path, 'r') as f:
            return walk(f['node']['nodes'], '')
    except (OSError, KeyError, TypeError, ValueError):
        return None


def read_graph(path):
    """
    Read a NIR file (``nir.read``); errors become one-line ``ValueError``s.

    Topspark's metadata in it, when there is any, must be of the version this one reads
    (:func:`~topspark_ros.core.exchange.nir_sim.graph_metadata`).
    """
    import nir

    if os.path.isdir(path):
        raise ValueError(f'{path}: a directory, not a NIR file (.nir, HDF5)')
    try:
        graph = nir.read(path)
    except FileNotFoundError:
        raise ValueError(f'{path}: no such file') from None
    except (OSError, KeyError, AssertionError, TypeError, ValueError) as exc:
        unknown = _unknown_node_type(path) if isinstance(exc, AssertionError) else None
        if unknown:  # (nir asserts with no message: "(AssertionError)" said nothing; a review)
            raise ValueError(f'{path}: not a readable NIR graph ({unknown})') from None
        hint = ''
        if str(path).endswith('.json'):  # (a checkpoint given to import; a review)
            hint = ('; a .json is a checkpoint of this package: `topspark export -m '
                    f'{path} -o GRAPH.nir` makes a NIR graph of it')
        raise ValueError(f'{path}: not a readable NIR graph ({_reason(exc)}){hint}') from None
    try:
        graph_metadata(graph)
    except NirMetadataError as exc:
        raise NirMetadataError(f'{path}: {exc}') from None
    return graph


def metadata_json(graph) -> str:
    """Return topspark's metadata of ``graph`` as indented JSON (empty object when none)."""
    return json.dumps(graph_metadata(graph), indent=1, sort_keys=True)

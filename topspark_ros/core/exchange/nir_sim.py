r"""
A small discrete-time simulator of NIR graphs, with its semantics written down.

NIR describes continuous-time dynamics and leaves their discretisation, reset and initial
state to each importer; this simulator fixes them as follows (``dt`` in seconds: the
caller's, else the graph metadata's ``dt_s``, else :data:`DEFAULT_DT_S`, 1e-4 s, snnTorch's and
``topspark import``'s). Per step ``t = 1..T`` every node is evaluated
once, in topological order; a node's input is the sum over its incoming edges of the sources'
outputs at this step, except that a ``Delay`` of ``d`` outputs what entered it
``k = round(d / dt) >= 1`` steps before (zeros at first), so a cycle must pass through a
``Delay`` (one without is refused, naming a node on it). A spike is a value of 1 for one step.

.. code-block:: text

    Affine / Linear   y = W x + b  /  y = W x          Scale   y = s * x
    Conv2d            torch conv2d (stride, padding, dilation, groups)
    SumPool2d         sum over the window           AvgPool2d   mean over the window
    Flatten           flattens start_dim..end_dim (dimensions without the batch)
    IF                v <- v + r I;                 z = [v > v_th]; v <- v_reset where z
    LIF               v <- v + dt/tau (v_leak - v) + r dt/tau I;  z, reset as IF
    I                 v <- v + r I  (output: the state v)
    LI                v <- v + dt/tau (v_leak - v) + r dt/tau I  (output: v)

The initial potential is 0 for IF and I, ``v_leak`` for LIF and LI. With ``extensions``
(default), topspark's per-node metadata (the graph metadata ``topspark`` JSON, key
``neurons``, written by :mod:`topspark_ros.core.exchange.nir_export`) refines a neuron node
with what NIR cannot say: ``reset: 'subtract'`` (``v <- v - v_th`` where ``z``), ``v_init``,
``fire: '>='`` (``z = [v >= v_th]``), ``refractory_steps`` (after a spike, that many steps
without input or spikes, the leak going on) and ``one_spike`` (of several neurons crossing in
one step only the one furthest above threshold fires, the lowest index on ties, the others
keep their potential). Without ``extensions`` the graph runs as plain NIR.

The result per ``Output`` node is its input summed over the steps, except after an ``I`` or
``LI`` node, whose final state is the result; the prediction is the argmax.
"""

import json
import math
from typing import Callable, Optional, Union

import numpy as np

import torch
import torch.nn.functional as functional

NEURONS = ('IF', 'LIF', 'I', 'LI')
OPS = ('Affine', 'Linear', 'Scale', 'Conv2d', 'SumPool2d', 'AvgPool2d', 'Flatten', 'Delay')
DEFAULT_DT_S = 1e-4
"""The step of a graph whose metadata gives none (snnTorch's export convention); the
simulator ran such graphs at 1 s, ``topspark import`` at 1e-4 s (a review: 22 % agreement on
an snnTorch-style LIF graph, whose forward Euler at dt/tau = 1000 diverged)."""


class NirSimulationError(ValueError):
    """A graph this simulator cannot run (an unsupported node, a cycle without a delay)."""


FORMAT = 'topspark-nir'
"""The ``format`` of topspark's metadata in a NIR graph (``topspark export`` writes it)."""
FORMAT_VERSION = 1
"""The metadata version written and read; a graph of another version is refused."""


class NirMetadataError(ValueError):
    """Topspark's metadata in a NIR graph that this version cannot read."""


def graph_metadata(graph) -> dict:
    """
    Return topspark's metadata of ``graph`` (the ``topspark`` JSON string), or ``{}``.

    Raises
    ------
        NirMetadataError: metadata that is not JSON, or of another format or version (a
        newer version's export was read as this version's, silently: a review).

    """
    text = (graph.metadata or {}).get('topspark')
    if isinstance(text, bytes):
        text = text.decode('utf-8', errors='replace')
    if text is None or isinstance(text, str) and not text:
        return {}
    if not isinstance(text, str):  # (a number there was a TypeError's traceback; a review)
        raise NirMetadataError(f'its topspark metadata is not a JSON string (a value of '
                               f'type {type(text).__name__})')
    try:
        meta = json.loads(text)
    except ValueError as exc:
        raise NirMetadataError(f'its topspark metadata is not JSON ({exc})') from None
    if not isinstance(meta, dict):
        raise NirMetadataError('its topspark metadata is not a JSON object')
    found = (meta.get('format'), meta.get('format_version'))
    if found != (None, None) and found != (FORMAT, FORMAT_VERSION):  # a hand-written one: none
        raise NirMetadataError(
            f'its topspark metadata is format {found[0]!r} version {found[1]!r}; this version '
            f'reads {FORMAT!r} version {FORMAT_VERSION} (a newer topspark_ros wrote it? '
            'upgrade to read it)')
    problem = _metadata_type_problem(meta)
    if problem is not None:  # (a hand-written one was a traceback, or read wrong; a review)
        raise NirMetadataError(f'its topspark metadata: {problem}')
    return meta


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _numbers(value) -> bool:
    """Return whether ``value`` is a number or a (nested) list of numbers."""
    if isinstance(value, list):
        return all(_numbers(item) for item in value)
    return _is_number(value)


def _metadata_type_problem(meta: dict):
    """Return what in ``meta`` is not of the type the readers take, or None."""
    if meta.get('dt_s') is not None and not (_is_number(meta['dt_s']) and meta['dt_s'] > 0):
        return f'dt_s must be a positive number or null, not {json.dumps(meta["dt_s"])}'
    steps = meta.get('timesteps')
    if steps is not None and not (isinstance(steps, int) and not isinstance(steps, bool)
                                  and steps >= 1):
        return f'timesteps must be an integer >= 1 or null, not {json.dumps(steps)}'
    names = meta.get('class_names')
    if names is not None and not (isinstance(names, list)
                                  and all(isinstance(name, str) for name in names)):
        return f'class_names must be a list of strings, not {json.dumps(names)}'
    for key in ('input', 'neurons', 'info'):
        if key in meta and not isinstance(meta[key], dict):  # (null too: read as an object)
            return f'{key} must be an object, not {json.dumps(meta[key])}'
    given = meta.get('input') or {}
    if given.get('encoding') is not None and not isinstance(given['encoding'], dict):
        return f'input.encoding must be an object, not {json.dumps(given["encoding"])}'
    for key in ('mean', 'std'):
        if key in given and not (isinstance(given[key], list) and _numbers(given[key])):
            return f'input.{key} must be a list of numbers, not {json.dumps(given[key])}'
    for name, neuron in (meta.get('neurons') or {}).items():
        if not isinstance(neuron, dict):
            return f'neurons.{name} must be an object, not {json.dumps(neuron)}'
        if 'v_init' in neuron and not (_numbers(neuron['v_init'])
                                       and np.size(neuron['v_init']) > 0):
            return (f'neurons.{name}.v_init must be a number or a non-empty list of numbers, '
                    f'not {json.dumps(neuron["v_init"])}')
        if 'refractory_steps' in neuron and not _is_number(neuron['refractory_steps']):
            return (f'neurons.{name}.refractory_steps must be a number, not '
                    f'{json.dumps(neuron["refractory_steps"])}')
    return None


def _pair(value) -> tuple:
    """Return ``value`` (an int or a sequence of one or two) as a pair of ints."""
    arr = np.atleast_1d(np.asarray(value)).astype(int).tolist()
    return (arr[0], arr[0]) if len(arr) == 1 else (arr[0], arr[1])


def evaluation_order(graph) -> list:
    """
    Return the node names in the order of a step (``Delay`` outputs count as known).

    Raises :class:`NirSimulationError` on a cycle that has no ``Delay``.
    """
    nodes = graph.nodes
    deps = {name: set() for name in nodes}
    for src, dst in graph.edges:
        if type(nodes[src]).__name__ != 'Delay':
            deps[dst].add(src)
    order, done = [], set()
    while len(order) < len(nodes):
        ready = [n for n in nodes if n not in done and deps[n] <= done]
        if not ready:
            stuck = sorted(n for n in nodes if n not in done)
            raise NirSimulationError(f'node {stuck[0]!r} is on a cycle without a Delay')
        for name in ready:
            order.append(name)
            done.add(name)
    return order


class NirSimulator:
    """
    Run a NIR graph (``nir.NIRGraph``) in discrete time on a batch (see the module doc).

    Parameters
    ----------
    graph
        the graph (as read by ``nir.read``); nested graphs are not supported.
    extensions
        honour topspark's neuron metadata (reset by subtraction, initial potential, ...).
    device
        torch device of the simulation.
    dt
        the step in seconds (default: the metadata's ``dt_s``, else :data:`DEFAULT_DT_S`, as
        ``topspark import`` reads the graph).

    """

    def __init__(self, graph, *, extensions: bool = True, device: str = 'cpu',
                 dt: Optional[float] = None) -> None:
        """Check every node is supported and fix the evaluation order."""
        self.graph = graph
        self.device = torch.device(device)
        meta = graph_metadata(graph)
        self.dt = float(dt or meta.get('dt_s') or DEFAULT_DT_S)
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f'dt = {self.dt} s: give a step above 0')
        self.neuron_meta = meta.get('neurons', {}) if extensions else {}
        for name, node in graph.nodes.items():
            kind = type(node).__name__
            if kind not in NEURONS + OPS + ('Input', 'Output'):
                raise NirSimulationError(f'node {name!r}: {kind} is not supported by the '
                                         'simulator')
        self.order = evaluation_order(graph)
        self.inputs = {n: [s for s, d in graph.edges if d == n] for n in graph.nodes}
        self._tensors = {}

    def _t(self, name: str, attr: str) -> torch.Tensor:
        """Return ``graph.nodes[name].attr`` as a float32 tensor on the device (cached)."""
        key = (name, attr)
        if key not in self._tensors:
            value = np.asarray(getattr(self.graph.nodes[name], attr), dtype=np.float32)
            self._tensors[key] = torch.as_tensor(value, device=self.device)
        return self._tensors[key]

    def _op(self, name: str, node, x: torch.Tensor) -> torch.Tensor:
        """Apply the stateless node ``name`` to ``x [B, ...]``."""
        kind = type(node).__name__
        if kind == 'Affine':
            return x @ self._t(name, 'weight').T + self._t(name, 'bias')
        if kind == 'Linear':
            return x @ self._t(name, 'weight').T
        if kind == 'Scale':
            return x * self._t(name, 'scale')
        if kind == 'Conv2d':
            padding = node.padding if isinstance(node.padding, str) else _pair(node.padding)
            return functional.conv2d(x, self._t(name, 'weight'), self._t(name, 'bias'),
                                     stride=_pair(node.stride), padding=padding,
                                     dilation=_pair(node.dilation), groups=int(node.groups))
        if kind in ('SumPool2d', 'AvgPool2d'):
            kernel, stride = _pair(node.kernel_size), _pair(node.stride)
            y = functional.avg_pool2d(x, kernel, stride, _pair(node.padding))
            return y * (kernel[0] * kernel[1]) if kind == 'SumPool2d' else y
        if kind == 'Flatten':
            start, end = int(node.start_dim), int(node.end_dim)
            return x.flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
        raise NirSimulationError(f'node {name!r}: {kind} is not an operation')

    def _neuron(self, name: str, node, current: torch.Tensor, state: dict) -> torch.Tensor:
        """Advance neuron node ``name`` by one step with input ``current``; return its output."""
        kind = type(node).__name__
        meta = self.neuron_meta.get(name, {})
        st = state[name]
        r = self._t(name, 'r')
        if kind in ('IF', 'I'):
            leak = st['v']
            v = leak + r * current
        else:
            k = self.dt / self._t(name, 'tau')
            leak = st['v'] + k * (self._t(name, 'v_leak') - st['v'])
            v = leak + r * k * current
        if kind in ('I', 'LI'):
            st['v'] = v
            return v
        if 'refractory' in st:
            refractory = st['refractory'] > 0
            v = torch.where(refractory, leak, v)
        th = self._t(name, 'v_threshold')
        over = v - th
        fire = over >= 0 if meta.get('fire') == '>=' else over > 0
        if 'refractory' in st:
            fire = fire & ~refractory
        if meta.get('one_spike'):
            flat = torch.where(fire, over, torch.full_like(over, -float('inf'))).flatten(1)
            best = flat.argmax(1, keepdim=True)
            one = torch.zeros_like(flat, dtype=torch.bool).scatter_(
                1, best, fire.flatten(1).any(1, keepdim=True))
            fire = one.view_as(fire)
        z = fire.to(v.dtype)
        if meta.get('reset') == 'subtract':
            v = v - z * th
        else:
            v = torch.where(fire, self._t(name, 'v_reset').expand_as(v), v)
        if 'refractory' in st:
            st['refractory'] = torch.where(
                fire, torch.full_like(st['refractory'], int(meta['refractory_steps'])),
                (st['refractory'] - 1).clamp(min=0))
        st['v'] = v
        st['spikes'] = st['spikes'] + z
        return z

    def _initial_state(self, batch: int) -> dict:
        """Return every neuron's and delay's state for ``batch`` samples."""
        state = {}
        for name, node in self.graph.nodes.items():
            kind = type(node).__name__
            if kind == 'Delay':
                steps = np.rint(np.asarray(node.delay, np.float64) / self.dt).astype(int)
                if steps.size == 0 or steps.min() != steps.max() or steps.min() < 1:
                    raise NirSimulationError(f'node {name!r}: delays must be one whole '
                                             f'number >= 1 of steps of {self.dt} s')
                shape = tuple(np.asarray(node.delay).shape)
                state[name] = [torch.zeros((batch,) + shape, device=self.device)
                               for _ in range(int(steps.flat[0]))]
            elif kind in NEURONS:
                shape = tuple(np.asarray(node.r).shape)
                meta = self.neuron_meta.get(name, {})
                if 'v_init' in meta:
                    v0 = torch.as_tensor(np.asarray(meta['v_init'], np.float32),
                                         device=self.device)
                elif kind in ('LIF', 'LI'):
                    v0 = self._t(name, 'v_leak')
                else:
                    v0 = torch.zeros((), device=self.device)
                st = {'v': v0.expand((batch,) + shape).clone(),
                      'spikes': torch.zeros((batch,) + shape, device=self.device)}
                if int(meta.get('refractory_steps', 0)) > 0:
                    st['refractory'] = torch.zeros((batch,) + shape, dtype=torch.int64,
                                                   device=self.device)
                state[name] = st
        return state

    def run(self, inputs: Union[np.ndarray, torch.Tensor, Callable[[int], torch.Tensor]],
            timesteps: int, batch: Optional[int] = None) -> dict:
        """
        Run ``timesteps`` steps; return ``{output node: float64 [B, ...] result}``.

        ``inputs``: ``[B, *shape]`` held at every step, ``[T, B, *shape]`` one frame per
        step (say so by giving ``batch``), or a callable ``t -> [B, *shape]``. One ``Input``
        node only. Also sets :attr:`spike_counts` (``{neuron node: [B, ...]}``).
        """
        graph = self.graph
        input_names = [n for n, node in graph.nodes.items() if type(node).__name__ == 'Input']
        if len(input_names) != 1:
            raise NirSimulationError(f'the graph has {len(input_names)} Input nodes, the '
                                     'simulator takes one')
        if callable(inputs):
            frame = inputs
        else:
            data = torch.as_tensor(np.asarray(inputs, np.float32) if isinstance(
                inputs, np.ndarray) else inputs, device=self.device).float()
            sequence = batch is not None
            frame = (lambda t: data[t]) if sequence else (lambda t: data)
        first = frame(0)
        n = first.shape[0]
        state = self._initial_state(n)
        sums, last = {}, {}
        for t in range(int(timesteps)):
            values = {}
            for name, node in graph.nodes.items():
                if type(node).__name__ == 'Delay':
                    values[name] = state[name][0]
            for name in self.order:
                node = graph.nodes[name]
                kind = type(node).__name__
                if kind == 'Input':
                    values[name] = first if t == 0 else frame(t)
                    continue
                incoming = [values[s] for s in self.inputs[name]]
                x = incoming[0] if len(incoming) == 1 else sum(incoming)
                if kind == 'Delay':
                    state[name].append(x)
                    state[name].pop(0)
                elif kind == 'Output':
                    sums[name] = sums.get(name, 0.0) + x.double()
                    last[name] = x.double()
                elif kind in NEURONS:
                    values[name] = self._neuron(name, node, x, state)
                else:
                    values[name] = self._op(name, node, x)
        results = {}
        for name in sums:
            sources = [type(graph.nodes[s]).__name__ for s in self.inputs[name]]
            integrated = sources and all(k in ('I', 'LI') for k in sources)
            results[name] = (last if integrated else sums)[name].cpu().numpy()
        self.spike_counts = {n: s['spikes'].cpu().numpy() for n, s in state.items()
                             if isinstance(s, dict) and 'spikes' in s}
        return results

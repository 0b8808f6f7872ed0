r"""
Export either model family as a NIR graph (the Neuromorphic Intermediate Representation).

Converted family (:mod:`topspark_ros.core.converted`): ``Input`` (the normalised image
``(x / 255 - mean) / std``, held at every step: analog coding) -> per layer its synapses
(``SumPool2d`` or ``AvgPool2d``, ``Flatten`` before a linear op, ``Conv2d`` / ``Affine``, or
a ``Scale`` for an identity shortcut; several synapses into one layer are several edges,
which NIR sums) -> ``IF`` (a leaky layer, ``v <- beta v + I``: ``LIF`` with ``v_leak`` 0,
``tau = dt / (1 - beta)`` and ``r = tau / dt`` at ``dt_s`` in the metadata) with per-neuron
arrays of the layer's threshold ``theta_l = s mu_l``. A native spike carries ``theta_l``, a
NIR spike 1: the amplitude is folded into the next weights (``W theta_l``), and so is
``1 / k^2`` after a sum pool. The output layer is an integrator ``I`` whose state is the class
evidence; the readout is its argmax. This network has no batch normalisation (nothing to
fold). NIR's IF resets to ``v_reset`` and starts from an unspecified state; the native
neuron resets by subtraction and starts at ``f theta``: both are recorded in the graph
metadata (``neurons``) for readers that can use them
(:mod:`topspark_ros.core.exchange.nir_sim`, :mod:`topspark_ros.core.exchange.nir_import`).

STDP family (:mod:`topspark_ros.core.stdp`, inference: learning frozen): ``Input`` (Poisson
spike trains, one per pixel, drawn outside the graph) -> ``Affine`` (the input weights
``W^T``) -> excitatory ``LIF`` with the learnt adaptive thresholds baked into
``v_threshold = v_thresh + s theta_j`` -> lateral inhibition as a recurrent path through
``Delay`` nodes of one step (``'direct'``: ``Affine`` with ``-w_inh`` off the diagonal back
into the excitatory layer; ``'populations'``: ``Affine`` (``w_exc_inh`` on the diagonal) ->
inhibitory ``LIF`` -> ``Affine`` (``-w_inh`` off the diagonal)) -> the class assignment as a
``Linear`` to class scores (the ``all_activity`` vote: ``1 / |class|`` for the neurons of a
class) -> ``I``. Time constants are given in seconds with ``dt_s`` in the metadata, in the
discrete convention of :mod:`~topspark_ros.core.exchange.nir_sim` (forward Euler, a spike is
1 for one step): ``tau = dt / (1 - exp(-dt / tau_native))`` and ``r = tau / dt`` make one
step of the exported LIF equal the native exact-exponential step and a spike through ``w``
raise ``v`` by ``w`` mV, as in the native model.

Every node and every property of the model that NIR cannot hold is reported in a
:class:`~topspark_ros.core.exchange.fidelity.FidelityReport`, printed by ``topspark export``
and stored in the file (graph metadata ``topspark``, a JSON string).
"""

import io
import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

import topspark_ros
from topspark_ros.core.exchange.fidelity import (APPROXIMATE, FAITHFUL, FidelityReport,
                                                 NOT_REPRESENTABLE)
from topspark_ros.core.exchange.nir_import import DEFAULT_LIF_DT_S
from topspark_ros.core.exchange.nir_sim import FORMAT, FORMAT_VERSION
from topspark_ros.core.files import atomic_write, fsync_dir

POOLS = ('sum', 'avg')
_EVENT_SPIKES = ('event spike trains: a window cut into T bins, bin k at step k; input i spikes '
                 'at step k when an event of bin k lands on its pixel of the region of '
                 'interest, downscaled to the input (polarities as the encoding maps them)')
"""How an event STDP model's input is made (events_to_spike_trains), for the export."""


def _f32(value) -> np.ndarray:
    """Return ``value`` as a float32 numpy array."""
    return np.asarray(value, dtype=np.float32)


def export_converted(model, *, pool: str = 'sum', params=None, info: Optional[dict] = None):
    """
    Return ``(graph, report)``: ``model`` (a ``ConvertedNetwork``) as a ``nir.NIRGraph``.

    ``pool``: ``'sum'`` (``SumPool2d``, ``1 / k^2`` folded into the next weights; read by
    Sinabs and Norse) or ``'avg'`` (``AvgPool2d``; read by snnTorch). ``params``: the
    ``ConvertedParams`` to export (default: the model's). ``info``: the checkpoint's
    ``info`` (class names, the T it was made for), copied into the metadata.
    """
    import nir

    if pool not in POOLS:
        raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')
    params = model.params if params is None else params
    net = model.net
    config = model.config
    wiring = net.wiring
    last = len(wiring) - 1
    theta = (net.mu().detach().cpu().double() * params.threshold_scale).numpy()
    report = FidelityReport()
    nodes = {'input': nir.Input(input_type=np.array(
        [config.channels, config.height, config.width]))}
    edges = []
    neurons = {}
    input_text = (f'the normalised image (x/255 - mean)/std, mean {list(config.mean)}, std '
                  f'{list(config.std)}, shape [C, H, W] = '
                  f'{[config.channels, config.height, config.width]}, held at every step '
                  '(analog coding)')
    if model.event_encoding is not None:
        input_text = ('per-bin event count frames [2, H, W] (OFF, ON) of T bins, bin t at '
                      'step t, scaled by T and normalised (c T - mean)/std')
    report.add('input', 'Input', FAITHFUL, input_text)
    report.add('<model>', 'batch normalisation', FAITHFUL,
               'none in this network (clipped-ReLU CNN without batch norm): nothing to fold')
    pools = {}

    def source_node(source: int) -> str:
        return 'input' if source < 0 else f'layer{source}'

    def source_shape(source: int) -> tuple:
        if source < 0:
            return (config.channels, config.height, config.width)
        return tuple(net.shapes[source])

    for layer, synapses in enumerate(wiring):
        target = 'output_integrator' if layer == last else f'layer{layer}'
        for k, syn in enumerate(synapses):
            src = source_node(syn.source)
            shape = source_shape(syn.source)
            scale = 1.0 if syn.source < 0 else float(theta[syn.source])
            if syn.pool > 1:
                key = (syn.source, syn.pool)
                if key not in pools:
                    name = f'{src}.pool{syn.pool}'
                    size = np.array([syn.pool, syn.pool])
                    cls = nir.SumPool2d if pool == 'sum' else nir.AvgPool2d
                    nodes[name] = cls(kernel_size=size, stride=size, padding=np.array([0, 0]))
                    edges.append((src, name))
                    report.add(name, cls.__name__, FAITHFUL,
                               f'{syn.pool}x{syn.pool}, stride {syn.pool}' + (
                                   f'; the 1/{syn.pool ** 2} of the average is folded into the '
                                   'next weights' if pool == 'sum' else ''))
                    pools[key] = name
                src = pools[key]
                shape = (shape[0], shape[1] // syn.pool, shape[2] // syn.pool)
                if pool == 'sum':
                    scale /= syn.pool ** 2
            op = net.ops[syn.op] if syn.op else None
            folded = (f'spike amplitude theta = {theta[syn.source]:.6g} folded into the weights'
                      if syn.source >= 0 else '')
            if op is None:
                name = f'{target}.shortcut{k}'
                nodes[name] = nir.Scale(scale=np.full(shape, scale, np.float32))
                report.add(name, 'Scale', FAITHFUL, 'identity shortcut' + (
                    f'; {folded}' if folded else ''))
            elif hasattr(op, 'kernel_size'):
                name = f'{target}.{syn.op}'
                nodes[name] = nir.Conv2d(
                    input_shape=tuple(int(s) for s in shape[1:]),
                    weight=_f32(op.weight.detach().cpu().double().numpy() * scale),
                    stride=tuple(op.stride), padding=tuple(op.padding),
                    dilation=tuple(op.dilation), groups=int(op.groups),
                    bias=_f32(op.bias.detach().cpu().numpy()))
                report.add(name, 'Conv2d', FAITHFUL, folded)
            else:
                if len(shape) > 1:
                    flat = f'{target}.flatten{k}'
                    nodes[flat] = nir.Flatten(input_type={'input': np.array(shape)},
                                              start_dim=0, end_dim=-1)
                    edges.append((src, flat))
                    report.add(flat, 'Flatten', FAITHFUL, 'channel-major (C, H, W) order')
                    src = flat
                name = f'{target}.{syn.op}'
                nodes[name] = nir.Affine(
                    weight=_f32(op.weight.detach().cpu().double().numpy() * scale),
                    bias=_f32(op.bias.detach().cpu().numpy()))
                report.add(name, 'Affine', FAITHFUL, folded)
            edges.append((src, name))
            edges.append((name, target))
        if layer == last:
            n = config.n_classes
            nodes[target] = nir.I(r=np.ones(n, np.float32))
            nodes['output'] = nir.Output(output_type=np.array([n]))
            edges.append((target, 'output'))
            report.add(target, 'I', FAITHFUL, 'the output layer accumulates its input; its '
                       'state is the class evidence, the readout its argmax')
            continue
        shape = tuple(net.shapes[layer])
        th = float(theta[layer])
        leak = config.leak[layer] if config.leak else 1.0
        kind = 'IF' if leak == 1.0 else 'LIF'
        if leak == 1.0:
            nodes[target] = nir.IF(r=np.ones(shape, np.float32),
                                   v_threshold=np.full(shape, th, np.float32),
                                   v_reset=np.zeros(shape, np.float32))
        else:  # v <- beta v + I: forward Euler at dt with tau = dt / (1 - beta), r = tau / dt
            dt = DEFAULT_LIF_DT_S  # the importer's default: it imports back the same
            tau = dt / (1.0 - leak)
            nodes[target] = nir.LIF(tau=np.full(shape, tau, np.float32),
                                    r=np.full(shape, 1.0 / (1.0 - leak), np.float32),
                                    v_leak=np.zeros(shape, np.float32),
                                    v_threshold=np.full(shape, th, np.float32),
                                    v_reset=np.zeros(shape, np.float32))
            report.add(target, 'LIF', FAITHFUL,
                       f'leak beta = {leak:g} per step: tau = dt / (1 - beta) = {tau:.6g} s, '
                       f'r = tau / dt, v_leak 0, at dt = {dt:g} s (metadata dt_s; '
                       "forward Euler, snnTorch's convention)")
        neurons[target] = {'reset': 'subtract', 'fire': '>=',
                           'v_init': params.v_init_frac * th}
        # (kind: the node's for an IF, which has no other entry; a LIF's is above, faithful:
        # it was listed twice, and these rules were said of an IF; a review)
        report.add(target, kind if kind == 'IF' else 'reset, start, firing', APPROXIMATE,
                   f'threshold theta = {th:.6g} (s = {params.threshold_scale:g} x mu); native '
                   f'reset by subtraction of theta (NIR {kind}: reset to v_reset = 0); initial '
                   f'potential f theta with f = {params.v_init_frac:g} (NIR: no initial '
                   'state); fires at v >= theta (NIR: v > theta); all three are in the '
                   "metadata 'neurons' for readers that honour them")
    report.add('<model>', 'early exit', NOT_REPRESENTABLE,
               'stopping an input once the evidence margin is reached is a run-time rule '
               'outside the graph')
    meta = {
        'format': FORMAT, 'format_version': FORMAT_VERSION, 'family': 'converted',
        'producer': f'topspark_ros {topspark_ros.__version__}',
        'input': {'kind': 'analog' if model.event_encoding is None else 'event frames',
                  'description': input_text, 'mean': list(config.mean),
                  'std': list(config.std),
                  'shape': [config.channels, config.height, config.width],
                  **({} if model.event_encoding is None
                     else {'encoding': model.event_encoding.to_dict()})},
        'readout': 'argmax of the output integrator state (class evidence)',
        'timesteps': (info or {}).get('timesteps'),
        'dt_s': (DEFAULT_LIF_DT_S if any(type(n).__name__ == 'LIF' for n in nodes.values())
                 else None),
        'params': params.to_dict(), 'pool': pool, 'neurons': neurons,
        'class_names': list((info or {}).get('class_names') or []),
        'fidelity': report.to_list(),
        **_recorded_data(info),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=edges,
                         metadata={'topspark': json.dumps(meta, sort_keys=True)})
    return graph, report


def _euler_tau_s(tau_ms: float, dt_ms: float) -> float:
    """Return the time constant (s) whose forward-Euler step decays as ``exp(-dt / tau)``."""
    return (dt_ms / (1.0 - math.exp(-dt_ms / tau_ms))) * 1e-3


def _lif(nir, n: int, tau_ms: float, dt_ms: float, v_rest: float, v_thresh, v_reset: float):
    """Return a ``nir.LIF`` of ``n`` neurons in the discrete convention of the module doc."""
    tau = _euler_tau_s(tau_ms, dt_ms)
    return nir.LIF(tau=np.full(n, tau, np.float32),
                   r=np.full(n, tau / (dt_ms * 1e-3), np.float32),
                   v_leak=np.full(n, v_rest, np.float32),
                   v_threshold=np.broadcast_to(_f32(v_thresh), (n,)).copy(),
                   v_reset=np.full(n, v_reset, np.float32))


def _recorded_data(info: Optional[dict]) -> dict:
    """
    Return the metadata keys of how the model's data was read and prepared (crop, invert).

    ``data`` and ``data_options`` as ``topspark train`` records them; a model that records
    only ``dataset`` (the shipped ones) gives its ``data`` from it: its import measured
    nothing (``eval``: "measure it on event data") where the model measured its own data.
    """
    from topspark_ros.core.data.sources import recorded_data

    spec, options = recorded_data({'info': dict(info or {})})
    return {**({'data': spec} if spec else {}),
            **({'data_options': options} if options else {})}


_FIRES_AT_EQUALITY = ("fires at v >= v_threshold (NIR's LIF: v > v_threshold; they differ "
                      "only on equality; metadata 'neurons' keeps it)")
"""The report's line on the STDP neurons' firing rule (the converted family says it too)."""


def export_stdp(model, *, params=None, info: Optional[dict] = None):
    """
    Return ``(graph, report)``: ``model`` (a ``DiehlCookNetwork``) as a ``nir.NIRGraph``.

    Inference only: weights and adaptive thresholds frozen. ``params``: the
    ``DynamicsParams`` to export (default: the model's); ``info``: the checkpoint's.
    """
    import nir

    params = model.params if params is None else params
    config = model.config
    n, n_in, dt = config.n_neurons, config.n_inputs, config.dt_ms
    report = FidelityReport()
    nodes = {'input': nir.Input(input_type=np.array([n_in]))}
    edges = [('input', 'input_weights'), ('input_weights', 'exc')]
    p_max = params.input_rate_hz * dt / 1000.0
    events = model.event_encoding
    if events is None:
        report.add('input', 'Input', APPROXIMATE,
                   f'Poisson encoding is not representable: the graph takes the spike trains, '
                   f'drawn outside it with p = min(1, x/255 x {params.input_rate_hz:g} Hz x '
                   f'{dt:g} ms) per step ({p_max:g} at x = 255); feeding the rates p instead '
                   '(expected spikes) is a deterministic approximation')
    else:  # deterministic spikes from events (it was described as Poisson; a review)
        report.add('input', 'Input', FAITHFUL, _EVENT_SPIKES + ' (outside the graph; its '
                   "settings in the metadata's input.encoding)")
    nodes['input_weights'] = nir.Affine(weight=_f32(model.weights.T),
                                        bias=np.zeros(n, np.float32))
    report.add('input_weights', 'Affine', FAITHFUL,
               f'the learnt input weights W^T [{n}, {n_in}] (mV per input spike), frozen')
    theta = np.asarray(model.theta, np.float64) * params.theta_scale
    nodes['exc'] = _lif(nir, n, params.tau_v_ms, dt, params.v_rest_mv,
                        params.v_thresh_mv + theta, params.v_reset_mv)
    refractory = round(params.refractory_ms / dt)
    neurons = {'exc': {'fire': '>=', 'refractory_steps': refractory,
                       'one_spike': bool(config.one_spike)}}
    report.add('exc', 'LIF', FAITHFUL,
               f'{n} excitatory neurons: v_threshold = {params.v_thresh_mv:g} mV + '
               f'{params.theta_scale:g} x the learnt adaptive theta (baked in, learning '
               f'frozen); rest {params.v_rest_mv:g} mV, reset {params.v_reset_mv:g} mV; '
               f'tau {params.tau_v_ms:g} ms as the Euler-equivalent tau of dt_s (see the doc)')
    report.add('exc', 'synapses', FAITHFUL,
               'current-based voltage jumps (as BindsNET), no conductance synapses to '
               'approximate: r = tau/dt makes a spike through w raise v by w mV')
    report.add('exc', 'firing rule', APPROXIMATE, _FIRES_AT_EQUALITY)
    report.add('exc', 'refractory period', NOT_REPRESENTABLE,
               f'{params.refractory_ms:g} ms ({refractory} steps) without input or spikes '
               "after a spike: NIR has no refractoriness (metadata 'neurons' keeps it)")
    if config.one_spike:
        report.add('exc', 'one spike per step', NOT_REPRESENTABLE,
                   'only the neuron furthest above threshold fires in a step: not a NIR '
                   "primitive (metadata 'neurons' keeps it)")
    report.add('exc', 'initial potential', APPROXIMATE,
               f'every sample starts at rest ({params.v_rest_mv:g} mV = v_leak); NIR has no '
               'initial state (importers that start at 0 mV start 65 mV above rest)')
    w_lateral = -params.w_inh_mv * (1.0 - np.eye(n, dtype=np.float32))
    if config.inhibition == 'direct':
        nodes['exc_delay'] = nir.Delay(delay=np.full(n, dt * 1e-3, np.float32))
        nodes['inhibition'] = nir.Affine(weight=_f32(w_lateral), bias=np.zeros(n, np.float32))
        edges += [('exc', 'exc_delay'), ('exc_delay', 'inhibition'), ('inhibition', 'exc')]
        report.add('inhibition', 'Affine', FAITHFUL,
                   f"lateral inhibition 'direct': -{params.w_inh_mv:g} mV to every other "
                   'excitatory neuron, a recurrent edge through a one-step Delay')
    else:
        nodes['exc_delay'] = nir.Delay(delay=np.full(n, dt * 1e-3, np.float32))
        nodes['exc_to_inh'] = nir.Affine(
            weight=_f32(params.w_exc_inh_mv * np.eye(n)), bias=np.zeros(n, np.float32))
        nodes['inh'] = _lif(nir, n, config.inh_tau_v_ms, dt, config.inh_v_rest_mv,
                            config.inh_v_thresh_mv, config.inh_v_reset_mv)
        nodes['inh_delay'] = nir.Delay(delay=np.full(n, dt * 1e-3, np.float32))
        nodes['inhibition'] = nir.Affine(weight=_f32(w_lateral), bias=np.zeros(n, np.float32))
        edges += [('exc', 'exc_delay'), ('exc_delay', 'exc_to_inh'), ('exc_to_inh', 'inh'),
                  ('inh', 'inh_delay'), ('inh_delay', 'inhibition'), ('inhibition', 'exc')]
        inh_refractory = round(config.inh_refractory_ms / dt)
        neurons['inh'] = {'fire': '>=', 'refractory_steps': inh_refractory}
        report.add('exc_to_inh', 'Affine', FAITHFUL,
                   f"lateral inhibition 'populations': excitatory j drives inhibitory j with "
                   f'{params.w_exc_inh_mv:g} mV, one step later (Delay)')
        report.add('inh', 'LIF', FAITHFUL,
                   f'{n} inhibitory neurons: rest {config.inh_v_rest_mv:g}, threshold '
                   f'{config.inh_v_thresh_mv:g}, reset {config.inh_v_reset_mv:g} mV, tau '
                   f'{config.inh_tau_v_ms:g} ms')
        report.add('inh', 'firing rule', APPROXIMATE, _FIRES_AT_EQUALITY)
        report.add('inh', 'refractory period', NOT_REPRESENTABLE,
                   f'{config.inh_refractory_ms:g} ms ({inh_refractory} steps): no NIR '
                   "refractoriness (metadata 'neurons' keeps it)")
        report.add('inhibition', 'Affine', FAITHFUL,
                   f'each inhibitory spike lowers every other excitatory neuron by '
                   f'{params.w_inh_mv:g} mV, one step later (Delay): a recurrent edge')
    for name in [k for k in nodes if k.endswith('_delay')]:
        report.add(name, 'Delay', FAITHFUL, f'one step ({dt:g} ms): the native synaptic delay')
    report.add('<model>', 'learning', NOT_REPRESENTABLE,
               'STDP, the adaptive-threshold increment and its decay are off: the export is '
               'the frozen inference network')
    if model.readout is not None:
        c = config.n_classes
        onehot = (model.readout.assignments[None, :] == np.arange(c)[:, None])
        sizes = onehot.sum(axis=1, keepdims=True)
        weight = np.divide(onehot, sizes, out=np.zeros(onehot.shape), where=sizes > 0)
        nodes['readout'] = nir.Linear(weight=_f32(weight))
        nodes['class_scores'] = nir.I(r=np.ones(c, np.float32))
        nodes['output'] = nir.Output(output_type=np.array([c]))
        edges += [('exc', 'readout'), ('readout', 'class_scores'), ('class_scores', 'output')]
        report.add('readout', 'Linear', FAITHFUL,
                   "the class assignment as the 'all_activity' vote: 1/|class| from every "
                   'neuron assigned to the class (the cosine vote is not linear: not exported)')
        report.add('class_scores', 'I', FAITHFUL,
                   'integrates the votes over the steps; the prediction is the argmax')
    else:
        nodes['output'] = nir.Output(output_type=np.array([n]))
        edges.append(('exc', 'output'))
        report.add('<model>', 'readout', NOT_REPRESENTABLE,
                   'no class assignment yet: the output is the excitatory spike counts')
    meta = {
        'format': FORMAT, 'format_version': FORMAT_VERSION, 'family': 'stdp',
        'producer': f'topspark_ros {topspark_ros.__version__}',
        'input': {'kind': 'poisson', 'rate_hz': params.input_rate_hz, 'dt_ms': dt,
                  'p_max': p_max, 'n_inputs': n_in,
                  'description': 'spike trains: input i spikes in a step with probability '
                                 'min(1, x_i/255 rate_hz dt_ms / 1000)'} if events is None
        else {'kind': 'events', 'n_inputs': n_in, 'description': _EVENT_SPIKES,
              'encoding': events.to_dict()},
        'readout': 'argmax of class_scores (all_activity vote)',
        'timesteps': (info or {}).get('timesteps'), 'dt_s': dt * 1e-3,
        'params': params.to_dict(), 'inhibition': config.inhibition, 'neurons': neurons,
        'class_names': list((info or {}).get('class_names') or []),
        'fidelity': report.to_list(),
        **_recorded_data(info),
    }
    graph = nir.NIRGraph(nodes=nodes, edges=edges,
                         metadata={'topspark': json.dumps(meta, sort_keys=True)})
    return graph, report


EXPORTERS = {
    'converted': export_converted,
    'stdp': lambda model, *, pool, params, info: export_stdp(model, params=params, info=info),
}
"""The exporter of each family, keyed by ``checkpoint_family``, called with ``pool`` (the
converted family's pooling; the STDP network has none), ``params`` and ``info``. Export maps a
family to a graph by design, so this per-family table is where a new family's exporter goes."""


def export_model(model, *, pool: str = 'sum', params=None, info: Optional[dict] = None):
    """Return ``(graph, report)`` for a model of either family (see :data:`EXPORTERS`)."""
    family = model.checkpoint_family
    if family not in EXPORTERS:
        raise ValueError(f'no NIR export for the {family!r} family')
    return EXPORTERS[family](model, pool=pool, params=params, info=info)


def write_nir(graph, path, *, overwrite: bool = False) -> Path:
    """
    Write ``graph`` to ``path`` with ``nir.write``; return the path.

    The HDF5 file is made in memory and its bytes written to a temporary beside ``path``,
    then renamed, so the file appears whole or not at all; an existing ``path`` is replaced
    only with ``overwrite`` (``FileExistsError``). A write that fails (a full disk) raises
    ``OSError`` and leaves nothing: HDF5 writing into the file itself had crashed the process
    there (a segmentation fault after 42 tracebacks, and a 1 MB temporary left; a review).
    """
    import nir

    path = Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    nir.write(buffer, graph)  # h5py writes into a file object as into a file
    atomic_write(directory, f'.{path.name}.', buffer.getvalue(), path, replace=overwrite)
    fsync_dir(directory)
    return path

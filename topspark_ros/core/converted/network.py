r"""
Deep SNNs converted from CNNs with trainable clipping thresholds, for 1 to 8 timesteps.

After Datta & Beerel (seeds/001): conversion fails at ultra-low ``T`` when it assumes the
pre-activations are spread uniformly up to their maximum; instead the CNN is trained with a
clipped activation whose clipping threshold ``mu_l`` (one per layer) is a trained parameter,
so ``mu_l`` settles where the real pre-activation distribution puts it.

ANN (training), per hidden layer ``l`` with pre-activation ``z_l``:

.. code-block:: text

    a_l = clip(z_l, 0, mu_l)          d a_l / d mu_l = 1 where z_l > mu_l, else 0

The SNN has the same weights; every hidden neuron is an integrate-and-fire (IF) neuron with
threshold ``theta_l = s * mu_l`` (``s = threshold_scale``, a run-time parameter: below 1
helps at very small T), initial potential ``v_l(0) = f * theta_l`` (``f = v_init_frac``,
0.5 turns the rate code's flooring into rounding) and soft reset (reset by subtraction). A
spike carries ``theta_l``. Per step ``t = 1..T``, layers in order (no synaptic delay):

.. code-block:: text

    v_l(t) = v_l(t-1) + W_l x_{l-1}(t) + b_l          x_{l-1}(t) = theta_{l-1} s_{l-1}(t)
    s_l(t) = 1 if v_l(t) >= theta_l else 0
    v_l(t) <- v_l(t) - theta_l s_l(t)

so the rate ``theta_l * mean_t s_l(t)`` approaches ``clip(z_l, 0, theta_l)`` as T grows.
The first layer takes the normalised image directly (direct/analog coding): its current
``W_1 x + b_1`` is computed once per input and integrated every step. The output layer does
not spike: it accumulates its input, and the class evidence after ``t`` steps is that sum;
``scores`` are the softmax of the evidence divided by the steps run.

Operation counts per input (for :mod:`topspark_ros.core.energy`): MACs of the analog first
layer (once: the input is constant over the steps), one accumulate per spike per synapse it
reaches (its fan-out, measured from the actual spikes), one neuron update per neuron (hidden
and output) per step. The ANN of the same network costs the MACs of every layer
(:meth:`ConvertedNetwork.ann_ops`).

Event input (a model with an ``event_encoding`` of kind ``'frames'``, ``channels`` 2: OFF and
ON event counts, see :mod:`topspark_ros.core.events.encode`): the ANN learns from the count
frame of a whole window ``c`` (the sum of its bins), normalised as ``(c - mean) / std``. The
SNN takes a window as ``T`` per-bin count frames ``c_1 .. c_T`` and feeds bin ``t`` at step
``t``, scaled by ``T``: the first layer's current at step ``t`` is
``W_1 (T c_t - mean) / std + b_1``, whose mean over the steps is the ANN's first-layer
pre-activation (the same rate-coding argument as above, now with a time-varying input). With
``mean = 0`` (what ``topspark train`` uses for events) an empty pixel sends nothing, and the
first layer is event driven: its cost is counted as accumulates, one per event per synapse
of its fan-out (the factor ``T / std`` folds into the weights), instead of MACs.

Average pooling between layers is linear, so it is part of the synapses of the next layer (a
spike reaches the fan-out of its pooling window). Residual (ResNet) blocks add the shortcut to
the second convolution's input current (an identity shortcut is one accumulate per spike).
"""

from dataclasses import asdict, dataclass, fields, replace
import math
from typing import Optional, Sequence

import numpy as np

from topspark_ros.core.energy import OpCounts
from topspark_ros.core.preprocess import FrameSpec
import torch
from torch import nn
import torch.nn.functional as functional

ARCHITECTURES = ('vgg', 'resnet', 'graph')
INPUT = -1
"""Source index of the (analog) image in a layer's wiring."""
MAX_INPUT_PIXELS = 4096 * 4096
"""Largest input (height x width) a checkpoint may describe (refused before allocating)."""


@dataclass(frozen=True)
class ConvertedParams:
    """
    Run-time parameters of the spiking network (a profile may tune them per T).

    Attributes
    ----------
    threshold_scale
        ``s``: the IF thresholds are ``s * mu_l`` (> 0, dimensionless).
    v_init_frac
        ``f``: initial membrane potential as a fraction of the threshold, in [0, 1].

    """

    threshold_scale: float = 1.0
    v_init_frac: float = 0.5

    def __post_init__(self) -> None:
        """Check ranges; raise ``ValueError`` on an invalid value."""
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise ValueError(f'{f.name} must be a finite number, got {value!r}')
        if not self.threshold_scale > 0:
            raise ValueError(f'threshold_scale must be > 0, got {self.threshold_scale}')
        if not 0.0 <= self.v_init_frac <= 1.0:
            raise ValueError(f'v_init_frac must be in [0, 1], got {self.v_init_frac}')

    def replace(self, **changes) -> 'ConvertedParams':
        """Return a copy with ``changes`` applied (validated)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the parameters as a plain dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> 'ConvertedParams':
        """Build from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f'unknown ConvertedParams fields: {unknown}')
        return cls(**{k: float(v) for k, v in values.items()})


@dataclass(frozen=True)
class ConvertedConfig:
    """
    Structure of a convertible CNN (fixed for a trained model).

    Attributes
    ----------
    arch
        ``'vgg'`` (plain 3x3 convolutions, average pooling, two linear layers),
        ``'resnet'`` (a stem convolution and basic residual blocks) or ``'graph'`` (the
        layers listed in ``layers``: an imported network, see
        :mod:`topspark_ros.core.exchange.nir_import`).
    height, width, channels
        input frame (``channels`` 1: grayscale, 3: RGB, 2: event polarity counts OFF, ON).
    n_classes
        output classes.
    widths
        channels of the convolution stages; an average pool of 2 follows every stage but
        the first (VGG: one convolution per stage; ResNet: one residual block per stage
        after a stem convolution of ``widths[0]`` channels).
    hidden
        units of the hidden linear layer (VGG only; 0: none).
    mean, std
        per-channel normalisation of the ``[0, 1]`` input, ``(x - mean) / std``.
    mu_init
        initial clipping threshold of every layer.
    seed
        seed of the initial weights.
    layers
        ``'graph'`` only (``widths`` and ``hidden`` are then unused): per layer, in order,
        ``{'synapses': [{'source': s, 'pool': p, 'op': op}, ...]}`` with ``s`` the source
        layer (:data:`INPUT` for the image), ``p`` the average-pool factor and ``op`` None
        (identity) or ``{'kind': 'conv', 'in', 'out', 'kernel', 'stride', 'padding',
        'dilation', 'groups'}`` / ``{'kind': 'linear', 'in', 'out'}`` (with a bias).
    leak
        per hidden layer, the factor ``beta_l`` in ``(0, 1]`` the membrane potential is
        multiplied by every step before the input is added (a leaky IF, LIF);
        empty (default): 1 everywhere, the plain IF neuron of the module doc.

    """

    arch: str = 'vgg'
    height: int = 28
    width: int = 28
    channels: int = 1
    n_classes: int = 10
    widths: Sequence[int] = (16, 32, 64)
    hidden: int = 64
    mean: Sequence[float] = (0.2860,)
    std: Sequence[float] = (0.3530,)
    mu_init: float = 2.0
    seed: int = 0
    layers: Sequence[dict] = ()
    leak: Sequence[float] = ()

    def __post_init__(self) -> None:
        """Check values; raise ``ValueError`` on an invalid one."""
        if self.arch not in ARCHITECTURES:
            raise ValueError(f'arch must be one of {ARCHITECTURES}, got {self.arch!r}')
        object.__setattr__(self, 'widths', tuple(int(w) for w in self.widths))
        object.__setattr__(self, 'layers', _check_layers(self.layers, self.arch))
        object.__setattr__(self, 'leak', tuple(float(b) for b in self.leak))
        if any(not 0.0 < b <= 1.0 for b in self.leak):
            raise ValueError(f'leak factors must lie in (0, 1], got {list(self.leak)}')
        object.__setattr__(self, 'mean', tuple(float(m) for m in self.mean))
        object.__setattr__(self, 'std', tuple(float(s) for s in self.std))
        for name in ('height', 'width', 'n_classes'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if self.channels not in (1, 2, 3):
            raise ValueError(f'channels must be 1 (grey), 3 (RGB) or 2 (event polarities), '
                             f'got {self.channels!r}')
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f'widths must be positive channel counts, got {self.widths}')
        if int(self.hidden) < 0:
            raise ValueError(f'hidden must be >= 0, got {self.hidden}')
        if len(self.mean) != self.channels or len(self.std) != self.channels \
                or min(self.std) <= 0:
            raise ValueError('mean and std need one value per channel, std > 0')
        if not self.mu_init > 0:
            raise ValueError(f'mu_init must be > 0, got {self.mu_init}')
        pools = len(self.widths) - 1
        if self.arch == 'graph':
            return
        if self.height % (2 ** pools) or self.width % (2 ** pools):
            raise ValueError(f'{self.height}x{self.width} is not divisible by 2^{pools} '
                             f'(one pool per stage after the first)')
        if self.arch == 'resnet' and self.height != self.width:
            raise ValueError('the ResNet global pool needs a square input, got '
                             f'{self.height}x{self.width}')

    def to_dict(self) -> dict:
        """Return the configuration as a plain (JSON-ready) dict."""
        values = asdict(self)
        for key in ('widths', 'mean', 'std', 'leak', 'layers'):
            values[key] = list(values[key])
        for key in ('layers', 'leak'):
            if not values[key]:
                del values[key]  # checkpoints of the built-in architectures stay as they were
        return values

    @classmethod
    def from_dict(cls, values: dict) -> 'ConvertedConfig':
        """Build from :meth:`to_dict` output; unknown keys raise ``ValueError``."""
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f'unknown ConvertedConfig fields: {unknown}')
        return cls(**values)


def clip_activation(z: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """
    Return ``clip(z, 0, mu)`` with the gradient to the trainable threshold ``mu``.

    ``d/dz = 1`` for ``0 < z < mu``; ``d/dmu = 1`` where ``z >= mu`` (written as
    ``relu(z) - relu(z - mu)``, so autograd gives both).
    """
    return functional.relu(z) - functional.relu(z - mu)


class TrainableClip(nn.Module):
    """Clipped ReLU ``clip(z, 0, mu)`` with one trainable threshold ``mu`` (a layer's)."""

    def __init__(self, mu_init: float = 4.0) -> None:
        """Create the threshold parameter at ``mu_init``."""
        super().__init__()
        self.mu = nn.Parameter(torch.tensor(float(mu_init)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Return ``clip(z, 0, mu)``."""
        return clip_activation(z, self.mu)


class _Spike(torch.autograd.Function):
    """Heaviside of ``u = (v - theta) / theta`` with a triangular surrogate gradient."""

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u >= 0).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        return grad * torch.clamp(1.0 - u.abs(), min=0.0)


@dataclass(frozen=True)
class Synapse:
    """
    One input of a layer: ``op(avg_pool(x_source, pool))`` (flattened first for linear ops).

    Attributes
    ----------
    source
        index of the layer it comes from (:data:`INPUT` for the image).
    op
        key of the weight module in :attr:`ConvertibleNet.ops` (``''``: identity).
    pool
        average-pool factor applied before ``op`` (1: none).

    """

    source: int
    op: str
    pool: int = 1


class ConvertibleNet(nn.Module):
    """
    A CNN as layers with explicit wiring, run as the ANN (:meth:`forward`) or as the SNN.

    Layer ``l``'s input is the sum of its synapses (:class:`Synapse`); every layer but the
    last has a :class:`TrainableClip` (``thresholds[l]``); the last is the linear output.
    """

    def __init__(self, config: ConvertedConfig) -> None:
        """Build the layers of ``config`` with seeded initial weights."""
        super().__init__()
        self.config = config
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(config.seed)
        try:
            self.ops = nn.ModuleDict()
            build = {'vgg': _vgg, 'resnet': _resnet, 'graph': _graph}[config.arch]
            self.wiring = build(self, config)
        finally:
            torch.random.set_rng_state(generator_state)
        self.thresholds = nn.ModuleList(TrainableClip(config.mu_init)
                                        for _ in range(len(self.wiring) - 1))
        self.register_buffer('mean', torch.tensor(config.mean).view(1, -1, 1, 1))
        self.register_buffer('std', torch.tensor(config.std).view(1, -1, 1, 1))
        if config.leak and len(config.leak) != len(self.wiring) - 1:
            raise ValueError(f'{len(config.leak)} leak factors for {len(self.wiring) - 1} '
                             'hidden layers')
        try:
            self.shapes = self._layer_shapes()
        except RuntimeError as exc:  # only a 'graph' wiring can disagree with itself
            raise ValueError(f'the layers do not fit together: {exc}') from None
        if self.shapes[-1] != (config.n_classes,):
            raise ValueError(f'the output layer has shape {list(self.shapes[-1])}, expected '
                             f'[{config.n_classes}] (n_classes)')
        self.fanouts = self._fanout_maps()

    def _conv(self, name: str, c_in: int, c_out: int, kernel: int = 3) -> str:
        self.ops[name] = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2)
        return name

    def _linear(self, name: str, n_in: int, n_out: int) -> str:
        self.ops[name] = nn.Linear(n_in, n_out)
        return name

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """
        Map ``uint8 [B, *input shape]`` to normalised ``float32 [B, C, H, W]``.

        Floating-point input (event count frames) is taken as it is, without the ``/ 255``.
        """
        if images.dtype == torch.uint8:
            x = images.to(torch.float32) / 255.0
        else:
            x = images.to(torch.float32)
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return (x - self.mean) / self.std

    def apply_synapse(self, syn: Synapse, x: torch.Tensor) -> torch.Tensor:
        """Return the current ``op(avg_pool(x, pool))`` that ``x`` sends through ``syn``."""
        if syn.pool > 1:
            x = functional.avg_pool2d(x, syn.pool)
        if not syn.op:
            return x
        op = self.ops[syn.op]
        if isinstance(op, nn.Linear):
            x = x.flatten(1)
        return op(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ANN forward: normalised ``[B, C, H, W]`` -> logits ``[B, n_classes]``."""
        acts = {INPUT: x}
        last = len(self.wiring) - 1
        for layer, synapses in enumerate(self.wiring):
            z = sum(self.apply_synapse(s, acts[s.source]) for s in synapses)
            acts[layer] = z if layer == last else self.thresholds[layer](z)
        return acts[last]

    def mu(self) -> torch.Tensor:
        """Return the clipping thresholds ``[L - 1]`` (hidden layers in order)."""
        return torch.stack([t.mu for t in self.thresholds])

    def _layer_shapes(self) -> list:
        """Return each layer's output shape (without the batch dimension)."""
        c = self.config
        acts = {INPUT: torch.zeros(1, c.channels, c.height, c.width)}
        shapes = []
        with torch.no_grad():
            for layer, synapses in enumerate(self.wiring):
                acts[layer] = sum(self.apply_synapse(s, acts[s.source]) for s in synapses)
                shapes.append(tuple(acts[layer].shape[1:]))
        return shapes

    def _fanout_maps(self) -> list:
        """
        Return per synapse (same nesting as ``wiring``) its fan-out map over the source.

        ``fanout[l][k][c, i, j]``: how many target neurons a unit of the source reaches
        through synapse ``k`` of layer ``l`` (the column of the linear map's non-zeros),
        measured as the gradient of the summed output with all-ones weights and sum pooling.
        """
        c = self.config
        maps = []
        for synapses in self.wiring:
            layer_maps = []
            for syn in synapses:
                shape = ((c.channels, c.height, c.width) if syn.source == INPUT
                         else self.shapes[syn.source])
                x = torch.zeros((1,) + tuple(shape), requires_grad=True)
                y = x
                if syn.pool > 1:
                    y = functional.avg_pool2d(y, syn.pool) * syn.pool ** 2
                if syn.op:
                    op = self.ops[syn.op]
                    if isinstance(op, nn.Linear):
                        y = functional.linear(y.flatten(1), torch.ones_like(op.weight))
                    else:
                        y = functional.conv2d(y, torch.ones_like(op.weight),
                                              stride=op.stride, padding=op.padding,
                                              dilation=op.dilation, groups=op.groups)
                y.sum().backward()
                layer_maps.append(x.grad[0].detach().round())
            maps.append(layer_maps)
        return maps


_EXACT_FLOAT32 = float(2 ** 24)
"""Integers below this add exactly in float32."""


def _masked(x: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Return ``x * mask``, or ``x`` itself when there is no mask (all samples active)."""
    return x if mask is None else x * mask


def _vgg(net: ConvertibleNet, c: ConvertedConfig) -> list:
    """Wire a VGG-style net: 3x3 convs (pool 2 before every stage but the first), linears."""
    wiring = []
    c_in = c.channels
    for stage, width in enumerate(c.widths):
        name = net._conv(f'conv{stage + 1}', c_in, width)
        wiring.append([Synapse(INPUT if stage == 0 else stage - 1, name,
                               1 if stage == 0 else 2)])
        c_in = width
    side = (c.height // 2 ** (len(c.widths) - 1)) * (c.width // 2 ** (len(c.widths) - 1))
    n_flat = c_in * side
    last = len(wiring) - 1
    if c.hidden:
        wiring.append([Synapse(last, net._linear('fc1', n_flat, c.hidden))])
        wiring.append([Synapse(last + 1, net._linear('fc_out', c.hidden, c.n_classes))])
    else:
        wiring.append([Synapse(last, net._linear('fc_out', n_flat, c.n_classes))])
    return wiring


def _check_layers(layers, arch: str) -> tuple:
    """Return ``layers`` (see :class:`ConvertedConfig`) as plain dicts; ``ValueError`` if bad."""
    layers = tuple(layers)
    if (arch == 'graph') != bool(layers):
        raise ValueError("layers are given exactly for arch 'graph'")
    plain = []
    for index, layer in enumerate(layers):
        try:
            synapses = []
            for syn in layer['synapses']:
                source, pool, op = int(syn['source']), int(syn.get('pool', 1)), syn.get('op')
                if not INPUT <= source < index or pool < 1:
                    raise ValueError(f'source {source} or pool {pool} out of range')
                if op is not None:
                    op = dict(op)
                    if op['kind'] == 'conv':
                        op = {'kind': 'conv', 'in': int(op['in']), 'out': int(op['out']),
                              **{k: [int(x) for x in op[k]] for k in
                                 ('kernel', 'stride', 'padding', 'dilation')},
                              'groups': int(op['groups'])}
                    elif op['kind'] == 'linear':
                        op = {'kind': 'linear', 'in': int(op['in']), 'out': int(op['out'])}
                    else:
                        raise ValueError(f'unknown op kind {op["kind"]!r}')
                synapses.append({'source': source, 'pool': pool, 'op': op})
        except (KeyError, TypeError) as exc:
            raise ValueError(f'layer {index}: malformed ({exc!r})') from None
        except ValueError as exc:
            raise ValueError(f'layer {index}: {exc}') from None
        if not synapses:
            raise ValueError(f'layer {index} has no input')
        plain.append({'synapses': synapses})
    return tuple(plain)


def _graph(net: ConvertibleNet, c: ConvertedConfig) -> list:
    """Wire the layers ``c.layers`` lists (an imported graph); ops are named ``l<layer>_<k>``."""
    wiring = []
    for index, layer in enumerate(c.layers):
        synapses = []
        for k, syn in enumerate(layer['synapses']):
            op, name = syn['op'], ''
            if op is not None:
                name = f'l{index}_{k}'
                if op['kind'] == 'conv':
                    net.ops[name] = nn.Conv2d(
                        op['in'], op['out'], tuple(op['kernel']), stride=tuple(op['stride']),
                        padding=tuple(op['padding']), dilation=tuple(op['dilation']),
                        groups=op['groups'])
                else:
                    net.ops[name] = nn.Linear(op['in'], op['out'])
            synapses.append(Synapse(syn['source'], name, syn['pool']))
        wiring.append(synapses)
    return wiring


def _resnet(net: ConvertibleNet, c: ConvertedConfig) -> list:
    """Wire a ResNet-style net: stem conv, one basic block per stage, global pool, linear."""
    wiring = [[Synapse(INPUT, net._conv('stem', c.channels, c.widths[0]))]]
    c_in = c.widths[0]
    for stage, width in enumerate(c.widths):
        pool = 1 if stage == 0 else 2
        block_in = len(wiring) - 1
        wiring.append([Synapse(block_in, net._conv(f'block{stage + 1}a', c_in, width), pool)])
        shortcut = '' if c_in == width else net._conv(f'block{stage + 1}s', c_in, width, 1)
        wiring.append([Synapse(block_in + 1, net._conv(f'block{stage + 1}b', width, width)),
                       Synapse(block_in, shortcut, pool)])
        c_in = width
    side = (c.height // 2 ** (len(c.widths) - 1), c.width // 2 ** (len(c.widths) - 1))
    # Global average pooling is linear too: a pool over the whole (square) final map, then fc.
    wiring.append([Synapse(len(wiring) - 1, net._linear('fc_out', c_in, c.n_classes),
                           side[0])])
    return wiring


@dataclass(frozen=True)
class ConvertedCounts:
    """
    Operation and spike counts per input (``float64 [B]`` each), for the energy model.

    Attributes
    ----------
    spikes
        spikes of all hidden IF neurons.
    macs
        multiply-accumulates of the analog first layer (once per input).
    accumulates
        synaptic accumulates: spikes times the fan-out they reach.
    neuron_updates
        neuron updates (hidden IF neurons and output accumulators, per step run).

    """

    spikes: np.ndarray
    macs: np.ndarray
    accumulates: np.ndarray
    neuron_updates: np.ndarray

    def energy_ops(self, index: int) -> OpCounts:
        """Return input ``index``'s counts as :class:`OpCounts` (no plasticity)."""
        return OpCounts(accumulates=float(self.accumulates[index]),
                        macs=float(self.macs[index]),
                        neuron_updates=float(self.neuron_updates[index]))

    def mean_energy_ops(self) -> OpCounts:
        """Return the mean over inputs of :meth:`energy_ops`."""
        n = len(self.spikes)
        if n == 0:
            return OpCounts()
        return OpCounts(accumulates=float(self.accumulates.mean()),
                        macs=float(self.macs.mean()),
                        neuron_updates=float(self.neuron_updates.mean()))

    def totals(self) -> dict:
        """Return the sums over inputs (``{name: float}``)."""
        return {f.name: float(getattr(self, f.name).sum()) for f in fields(self)}


@dataclass(frozen=True)
class ConvertedResult:
    """
    Outputs of :meth:`ConvertedNetwork.infer` for ``B`` inputs.

    Attributes
    ----------
    evidence
        ``float64 [B, C]`` output layer input summed over the steps run.
    timesteps_used
        ``int64 [B]`` steps run (``T``, or fewer after an early exit).
    ops
        per-input operation counts.
    scores
        ``float64 [B, C]`` softmax of ``evidence / timesteps_used``.
    predicted
        ``int64 [B]`` argmax of the evidence (lowest index on ties).

    """

    evidence: np.ndarray
    timesteps_used: np.ndarray
    ops: ConvertedCounts
    scores: np.ndarray
    predicted: np.ndarray

    @property
    def exc_spike_counts(self) -> np.ndarray:
        """Return the class evidence (the name shared with the STDP result; see readout)."""
        return self.evidence

    @property
    def spike_count(self) -> np.ndarray:
        """``int64 [B]``: spikes of all hidden neurons."""
        return self.ops.spikes.astype(np.int64)

    def energy_ops(self, index: int) -> OpCounts:
        """Return the operation counts of input ``index`` for the energy model."""
        return self.ops.energy_ops(index)


class EvidenceReadout:
    """The readout of a converted network: the class with the largest output evidence."""

    def predict(self, evidence: np.ndarray, vote: str = 'all_activity') -> np.ndarray:
        """Return ``argmax`` of ``evidence [B, C]`` (``vote`` is accepted and ignored)."""
        return np.argmax(np.asarray(evidence), axis=1).astype(np.int64)


class ConvertedNetwork:
    """
    A CNN with trainable clipping thresholds, run as an IF spiking network (see module doc).

    Same model interface as :class:`topspark_ros.core.stdp.DiehlCookNetwork`: ``infer`` with
    ``T`` per call and optional early exit, ``n_classes``, ``input_spec``, checkpoints.

    Parameters
    ----------
    config
        structure (fixed).
    params
        default run-time parameters; any call may pass its own.
    device
        torch device (``'cpu'`` default, ``'cuda'`` when available).
    net
        an existing :class:`ConvertibleNet` (default: a new one from ``config``).
    event_encoding
        for a network of event-camera input: its
        :class:`~topspark_ros.core.events.encode.EventEncoding` (kind ``'frames'``, the
        input size of ``config``, ``config.channels == 2``; saved in the checkpoint); None
        (default) for a network of camera frames.

    """

    checkpoint_family = 'converted'
    learns_online = False
    """Trained offline: :meth:`learn` refuses, sweeps skip the learning-step figures."""

    def __init__(self, config: ConvertedConfig = ConvertedConfig(),
                 params: ConvertedParams = ConvertedParams(), *, device: str = 'cpu',
                 net: Optional[ConvertibleNet] = None, event_encoding=None) -> None:
        """Build (or adopt) the network and move it to ``device``."""
        if (event_encoding is None) != (config.channels != 2) or (
                event_encoding is not None and (
                    event_encoding.kind != 'frames'
                    or (event_encoding.height, event_encoding.width)
                    != (config.height, config.width))):
            raise ValueError('a converted network takes events exactly when it has 2 input '
                             'channels and a frames event encoding of its input size')
        self.event_encoding = event_encoding
        self.config = config
        self.params = params
        self.device = str(device)
        self.net = (net if net is not None else ConvertibleNet(config)).to(self.device)
        self.net.eval()
        self.readout = EvidenceReadout()
        self._fanouts = [[m.to(self.device) for m in maps] for maps in self.net.fanouts]
        self._fanout_sums = [[float(m.sum()) for m in maps] for maps in self.net.fanouts]

    @property
    def n_classes(self) -> int:
        """Return the number of output classes."""
        return self.config.n_classes

    @property
    def input_spec(self) -> FrameSpec:
        """
        Return the input frame the network takes.

        An event network reports its input size with one channel: it takes no camera frames
        (:meth:`infer` refuses them), only polarity frames from
        :func:`topspark_ros.core.events.encode.infer_events`.
        """
        if self.event_encoding is not None:
            return FrameSpec(self.config.height, self.config.width, 1)
        return FrameSpec(self.config.height, self.config.width, self.config.channels)

    def params_for_values(self, values) -> ConvertedParams:
        """Return the model's parameters with ``values`` (name -> number) applied."""
        known = {f.name for f in fields(ConvertedParams)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown converted-network parameters: '
                             f'{", ".join(sorted(unknown))}')
        return self.params.replace(**{k: float(v) for k, v in values.items()})

    def learn(self, images=None, **kwargs):
        """Refuse: converted networks are trained offline (``topspark train``), not on-line."""
        raise RuntimeError('converted networks do not learn on-line (train them offline with '
                           '`topspark train --family converted`)')

    def _event_inputs(self, frames) -> torch.Tensor:
        """
        Check and move event count frames to the device, normalised.

        ``[B, 2, H, W]`` (a window's count frame, the same at every step) or
        ``[B, T, 2, H, W]`` (per-bin frames, bin ``t`` at step ``t``, scaled by ``T``; see the
        module doc) -> ``[B, 2, H, W]`` or ``[B, T, 2, H, W]``.
        """
        frames = np.asarray(frames)
        size = (2, self.config.height, self.config.width)
        if frames.ndim not in (4, 5) or tuple(frames.shape[-3:]) != size \
                or frames.dtype.kind not in 'uif':
            raise ValueError(f'this network takes event count frames [B, 2, H, W] or per-bin '
                             f'frames [B, T, 2, H, W] with (2, H, W) = {list(size)}, got '
                             f'{frames.dtype} {list(frames.shape)} (encode events with '
                             'topspark_ros.core.events.encode)')
        x = torch.from_numpy(np.array(frames, dtype=np.float32, copy=True)).to(self.device)
        if x.dim() == 4:
            return self.net.normalise(x)
        batch, bins = x.shape[:2]
        x = self.net.normalise((x * bins).flatten(0, 1))
        return x.view((batch, bins) + size)

    def _inputs(self, images) -> torch.Tensor:
        """Check and move ``uint8`` images ``[B, *input shape]`` to the device as a tensor."""
        if self.event_encoding is not None:
            return self._event_inputs(images)
        images = np.asarray(images)
        shape = self.input_spec.shape
        if images.ndim == len(shape):
            images = images[None]
        if tuple(images.shape[1:]) != shape and not (
                len(shape) == 2 and images.shape[1:] == (1,) + shape):
            raise ValueError(f'images have shape {list(images.shape[1:])}, the model takes '
                             f'{list(shape)}')
        if images.dtype != np.uint8:
            images = np.round(np.clip(np.asarray(images, np.float64), 0.0, 1.0) * 255.0)
        tensor = torch.from_numpy(np.array(images, dtype=np.uint8, copy=True))
        return self.net.normalise(tensor.to(self.device))

    def ann_logits(self, images) -> np.ndarray:
        """Return the ANN's logits ``float32 [B, C]`` for ``uint8`` images."""
        with torch.no_grad():
            return self.net(self._inputs(images)).cpu().numpy()

    def ann_ops(self) -> OpCounts:
        """Return the ANN's operation counts per input: the MACs of every layer."""
        macs = sum(float(m.sum()) for maps in self.net.fanouts for m in maps)
        return OpCounts(macs=macs)

    def run_snn(self, x: torch.Tensor, timesteps: int, params: ConvertedParams, *,
                early_exit=None, surrogate: bool = False) -> tuple:
        """
        Run the SNN on normalised inputs ``x [B, C, H, W]`` for up to ``timesteps`` steps.

        ``x [B, T, C, H, W]`` (event models, normalised per-bin frames from :meth:`_inputs`)
        feeds frame ``t`` at step ``t``; then ``timesteps`` must equal ``T``.
        Differentiable when ``surrogate`` (training at T). Returns ``(evidence [B, C],
        steps_used int64 [B], spikes, accumulates, neuron_updates)``, tensors on the device
        (counts ``float64 [B]``).
        """
        net = self.net
        wiring = net.wiring
        last = len(wiring) - 1
        batch = x.shape[0]
        theta = net.mu() * params.threshold_scale
        if not surrogate:
            theta = theta.detach()
        sequence = x.dim() == 5
        if sequence and x.shape[1] != int(timesteps):
            raise ValueError(f'{x.shape[1]} per-bin frames for {timesteps} timesteps (encode '
                             'the events into as many bins as timesteps)')
        const = [sum((net.apply_synapse(s, x[:, 0] if sequence else x)
                      for s in syns if s.source == INPUT),
                     torch.zeros((), device=x.device)) for syns in wiring]
        v = [params.v_init_frac * theta[layer] * torch.ones((batch,) + net.shapes[layer],
                                                            device=x.device)
             for layer in range(last)]
        evidence = torch.zeros(batch, self.config.n_classes, device=x.device)
        active = torch.ones(batch, dtype=torch.bool, device=x.device)
        steps = torch.zeros(batch, dtype=torch.int64, device=x.device)
        spikes = torch.zeros(batch, dtype=torch.float64, device=x.device)
        accumulates = torch.zeros(batch, dtype=torch.float64, device=x.device)
        n_neurons = float(sum(math.prod(s) for s in net.shapes))
        leak = self.config.leak or (1.0,) * last
        margin = None if early_exit is None else float(early_exit.margin)
        floor = 0 if early_exit is None else int(early_exit.min_steps)
        # Bookkeeping at the least cost per step, with the same results: without early exit
        # every sample is active at every step, so the activity masks (all ones, x * 1 == x)
        # are left out; for frame input each neuron's spikes are summed over the steps
        # (integers up to T, exact) and reduced once at the end, the accumulates from those
        # sums (spikes times fan-out is linear in the spikes; exact integers in float64).
        # Per-bin event input keeps its per-step float sums (their order decides the last bits).
        masked = margin is not None
        deferred = not sequence
        totals = [torch.zeros((batch,) + net.shapes[layer], device=x.device)
                  for layer in range(last)] if deferred else None
        done = 0
        for t in range(int(timesteps)):
            act = active.to(x.dtype) if masked or not deferred else None
            mask = None
            if sequence:
                x_t = x[:, t]
                if t:
                    const = [sum((net.apply_synapse(s, x_t) for s in syns
                                  if s.source == INPUT), torch.zeros((), device=x.device))
                             for syns in wiring]
                accumulates = accumulates + (
                    self._input_events(x_t, x.shape[1]) * act).to(torch.float64)
            out, sent = {}, {}
            for layer, syns in enumerate(wiring):
                current = const[layer]
                for k, syn in enumerate(syns):
                    if syn.source == INPUT:
                        continue
                    s = out[syn.source]
                    current = current + net.apply_synapse(
                        syn, s * theta[syn.source] if surrogate else sent[syn.source])
                    if not deferred:
                        # Exact in float32: at most 2^24 accumulates per input, layer, step.
                        reached = (s.detach() * self._fanouts[layer][k]).flatten(1).sum(1)
                        accumulates = accumulates + (reached * act).to(torch.float64)
                if layer == last:
                    evidence = evidence + (current * act.view(-1, 1) if masked else current)
                    continue
                if masked:
                    mask = act.view((-1,) + (1,) * (current.dim() - 1))
                v_new = v[layer] + _masked(current, mask)
                if leak[layer] != 1.0:
                    v_new = v_new + _masked((leak[layer] - 1.0) * v[layer], mask)
                th = theta[layer]
                if surrogate:
                    s = _masked(_Spike.apply((v_new - th) / th), mask)
                    v[layer] = v_new - s * th
                else:
                    # Spikes as booleans; theta s (= th where s, else +0.0) made once, for the
                    # reset and for the synapses it feeds.
                    s = v_new >= th
                    if mask is not None:
                        s = s & active.view(mask.shape)
                    sent[layer] = torch.where(s, th, 0.0)
                    v[layer] = v_new - sent[layer]
                out[layer] = s
                if deferred:
                    totals[layer] += s.detach()
                else:
                    spikes = spikes + s.detach().flatten(1).sum(1).to(torch.float64)
            done = t + 1
            if masked:
                steps = steps + active.to(torch.int64)
            if margin is not None and t + 1 >= floor:
                top2 = torch.topk(evidence.detach(), min(2, evidence.shape[1]), dim=1).values
                lead = top2[:, 0] - (top2[:, 1] if top2.shape[1] > 1 else 0.0)
                active = active & ~(lead >= margin)
                if not bool(active.any()):
                    break
        if not masked:
            steps = torch.full((batch,), done, dtype=torch.int64, device=x.device)
        if deferred:
            # Sums of integers: exact in float32 while every partial sum stays below 2^24
            # (bounded by steps x neurons, steps x fan-out), else taken in float64.
            for layer, n in enumerate(totals):
                if done * math.prod(net.shapes[layer]) >= _EXACT_FLOAT32:
                    n = n.to(torch.float64)
                spikes = spikes + n.flatten(1).sum(1).to(torch.float64)
            for layer, syns in enumerate(wiring):
                for k, syn in enumerate(syns):
                    if syn.source != INPUT:
                        n = totals[syn.source]
                        if done * self._fanout_sums[layer][k] >= _EXACT_FLOAT32:
                            n = n.to(torch.float64)
                        reached = (n * self._fanouts[layer][k]).flatten(1).sum(1)
                        accumulates = accumulates + reached.to(torch.float64)
        updates = steps.to(torch.float64) * n_neurons
        return evidence, steps, spikes, accumulates, updates

    def _input_events(self, x_t: torch.Tensor, bins: int) -> torch.Tensor:
        """
        Return ``[B]``: events of one normalised bin frame times their first-layer fan-out.

        The count of a pixel is recovered as ``(x std + mean) / T`` (see :meth:`_inputs`).
        """
        net = self.net
        counts = ((x_t.detach() * net.std + net.mean) / bins).clamp(min=0.0)
        total = torch.zeros(x_t.shape[0], device=x_t.device)
        for maps, syns in zip(self._fanouts, net.wiring):
            for m, s in zip(maps, syns):
                if s.source == INPUT:
                    total = total + (counts * m).flatten(1).sum(1)
        return total

    def infer(self, images: np.ndarray, *, timesteps: int, params=None, seed=None,
              early_exit=None, vote: str = 'all_activity') -> ConvertedResult:
        """
        Classify ``uint8`` images ``[B, *input_spec.shape]`` with the SNN for ``timesteps``.

        ``params``: :class:`ConvertedParams` for this call (default: the model's);
        ``early_exit``: an :class:`topspark_ros.core.topspark.early_exit.EarlyExit` (margin in
        units of the summed output evidence, never before ``min_steps``, never after ``T``).
        ``seed`` and ``vote`` exist for interface compatibility (the SNN is deterministic).
        An event network takes per-bin count frames ``float32 [B, T, 2, H, W]`` (``T`` equal
        to ``timesteps``) or one count frame ``[B, 2, H, W]`` held over the steps (see
        :meth:`_event_inputs`), not camera images.
        """
        if timesteps is None or int(timesteps) < 1:
            raise ValueError(f'timesteps must be a positive int, got {timesteps!r}')
        params = self.params if params is None else params
        x = self._inputs(images)
        with torch.no_grad():
            evidence, steps, spikes, acc, updates = self.run_snn(
                x, int(timesteps), params, early_exit=early_exit)
        first_macs = sum(float(m.sum()) for maps, syns in zip(self.net.fanouts,
                                                              self.net.wiring)
                         for m, s in zip(maps, syns) if s.source == INPUT)
        if x.dim() == 5:
            first_macs = 0.0  # event input: counted as accumulates in run_snn
        evidence = evidence.to(torch.float64).cpu().numpy()
        steps = steps.cpu().numpy().astype(np.int64)
        mean = evidence / np.maximum(steps, 1)[:, None]
        exp = np.exp(mean - mean.max(axis=1, keepdims=True))
        ops = ConvertedCounts(spikes=spikes.cpu().numpy(),
                              macs=np.full(len(steps), first_macs),
                              accumulates=acc.cpu().numpy(),
                              neuron_updates=updates.cpu().numpy())
        return ConvertedResult(evidence=evidence, timesteps_used=steps, ops=ops,
                               scores=exp / exp.sum(axis=1, keepdims=True),
                               predicted=np.argmax(evidence, axis=1).astype(np.int64))

    def checkpoint_payload(self) -> tuple:
        """Return ``(meta, tensors)``: config and params; the state dict as numpy arrays."""
        # safetensors stores 0-d arrays as [1]: thresholds are saved as [1] and reshaped back.
        tensors = {name: np.atleast_1d(value.detach().cpu().numpy())
                   for name, value in self.net.state_dict().items()}
        meta = {'config': self.config.to_dict(), 'params': self.params.to_dict()}
        if self.event_encoding is not None:
            meta['event_encoding'] = self.event_encoding.to_dict()
        return meta, tensors

    @staticmethod
    def checkpoint_shapes(meta: dict) -> dict:
        """
        Return ``{tensor name: shape}`` a checkpoint with model metadata ``meta`` holds.

        The network is built on torch's ``meta`` device: shapes only, nothing allocated.
        Inputs of more than :data:`MAX_INPUT_PIXELS` pixels are refused (``ValueError``).
        """
        config = ConvertedConfig.from_dict(dict(meta['config']))
        if config.height * config.width > MAX_INPUT_PIXELS:
            raise ValueError(f'input {config.height}x{config.width} has more than '
                             f'{MAX_INPUT_PIXELS} pixels')
        with torch.device('meta'):
            net = ConvertibleNet(config)
        # 0-d tensors (thresholds) are stored as [1] (see checkpoint_payload).
        return {name: tuple(value.shape) or (1,) for name, value in net.state_dict().items()}

    @classmethod
    def from_checkpoint(cls, meta: dict, tensors: dict,
                        device: str = 'cpu') -> 'ConvertedNetwork':
        """Rebuild from :meth:`checkpoint_payload` output (``ValueError`` when inconsistent)."""
        config = ConvertedConfig.from_dict(dict(meta['config']))
        params = ConvertedParams.from_dict(dict(meta['params']))
        encoding = None
        if meta.get('event_encoding') is not None:
            from topspark_ros.core.events.encode import EventEncoding
            encoding = EventEncoding.from_dict(dict(meta['event_encoding']))
        net = ConvertibleNet(config)
        expected = net.state_dict()
        if set(expected) != set(tensors):
            raise ValueError(f'tensors {sorted(tensors)} do not match the architecture '
                             f'{sorted(expected)}')
        state = {}
        for name, value in tensors.items():
            shape = tuple(expected[name].shape)
            if tuple(value.shape) != shape and not (shape == () and value.shape == (1,)):
                raise ValueError(f'tensor {name} has shape {list(value.shape)}, expected '
                                 f'{list(shape)}')
            state[name] = torch.from_numpy(np.array(value, dtype=np.float32).reshape(shape))
        net.load_state_dict(state)
        return cls(config, params, device=device, net=net, event_encoding=encoding)

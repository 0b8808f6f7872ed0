r"""
The convertible CNN (the ANN): layers with explicit wiring and trainable clipping thresholds.

After Datta & Beerel (seeds/001): conversion fails at ultra-low ``T`` when it assumes the
pre-activations are spread uniformly up to their maximum; instead the CNN is trained with a
clipped activation whose clipping threshold ``mu_l`` (one per layer) is a trained parameter,
so ``mu_l`` settles where the real pre-activation distribution puts it. Per hidden layer
``l`` with pre-activation ``z_l``:

.. code-block:: text

    a_l = clip(z_l, 0, mu_l)          d a_l / d mu_l = 1 where z_l > mu_l, else 0

The spiking network (:mod:`topspark_ros.core.converted.network`) runs the same layers with
integrate-and-fire neurons of threshold ``s * mu_l``.

A layer's input is the sum of its synapses (:class:`Synapse`), each ``op(avg_pool(x, p))``.
Average pooling is linear, so it is part of the synapses of the next layer (a spike reaches
the fan-out of its pooling window). Residual (ResNet) blocks add the shortcut to the second
convolution's input current (an identity shortcut is one accumulate per spike). The wiring is
built from :class:`~topspark_ros.core.converted.config.ConvertedConfig` by one builder per
architecture (:func:`_vgg`, :func:`_resnet`, :func:`_graph`).

On CUDA the convolutions run in float32 (:func:`float32_convolutions`), not in the TF32 that
cuDNN uses by default on Ampere and newer GPUs: rounded to 10 bits of mantissa, their
currents moved spikes, operation counts and even classes away from the CPU's, on which
profiles are measured (a review of the device paths).
"""

import contextlib
from dataclasses import dataclass
import threading

from topspark_ros.core.converted.config import ConvertedConfig, INPUT
import torch
from torch import nn
import torch.nn.functional as functional


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


_FLOAT32_LOCK = threading.Lock()
_float32_blocks = [0, None]
"""Blocks in :func:`float32_convolutions` now, in every thread, and the flag before the first."""


@contextlib.contextmanager
def float32_convolutions(device):
    """
    Run cuDNN's convolutions in float32, not TF32, on ``device`` while in the block.

    The flag is cuDNN's (``torch.backends.cudnn.allow_tf32``, process-wide): it is cleared
    while any thread is in such a block, and put back as it was once the last leaves (a
    save and restore per block let a model of another thread convolve in TF32 when blocks
    overlapped, and left the flag changed; a review). Nothing changes on another device
    (module doc).
    """
    if torch.device(device).type != 'cuda':
        yield
        return
    with _FLOAT32_LOCK:
        if _float32_blocks[0] == 0:
            _float32_blocks[1] = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = False
        _float32_blocks[0] += 1
    try:
        yield
    finally:
        with _FLOAT32_LOCK:
            _float32_blocks[0] -= 1
            if _float32_blocks[0] == 0:
                torch.backends.cudnn.allow_tf32 = _float32_blocks[1]


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
        torch.default_generator.manual_seed(config.seed)  # (CPU only: a device's stays; a review)
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
        if x.is_cuda:
            with float32_convolutions(x.device):
                return op(x)
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

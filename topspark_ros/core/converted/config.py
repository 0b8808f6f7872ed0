"""
Configuration of a converted network: its structure (fixed once trained) and run-time parameters.

:class:`ConvertedConfig` describes the convertible CNN (:mod:`topspark_ros.core.converted.net`
builds it); :class:`ConvertedParams` the spiking network's run-time parameters
(:mod:`topspark_ros.core.converted.network`), which a timestep profile may tune per ``T``.
Both are saved in checkpoints as plain dicts (:meth:`~ConvertedConfig.to_dict`).
"""

from dataclasses import asdict, dataclass, fields, replace
import math
from typing import Sequence

from topspark_ros.core.fields import from_dict

ARCHITECTURES = ('vgg', 'resnet', 'graph')
INPUT = -1
"""Source index of the (analog) image in a layer's wiring."""


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
        return from_dict(cls, values, convert=float)


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
        return from_dict(cls, values)


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

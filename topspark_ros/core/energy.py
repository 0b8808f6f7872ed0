"""
Energy model: operation counts priced with the per-operation energies of a hardware preset.

An SNN's compute energy for one inference (or one training step) is estimated as

.. code-block:: text

    E_compute = N_acc * e_acc + N_mac * e_mac + N_neu * e_neu + N_pl * e_pl     (J)

    N_acc  synaptic accumulates: one spike arriving at one synapse, one addition (input spikes,
           inhibitory and lateral spikes alike)
    N_mac  multiply-accumulates: graded (analog, direct) input into a layer, e.g. the first
           layer of a CNN converted to an SNN
    N_neu  neuron updates: one per neuron per simulated timestep
    N_pl   plasticity updates: one per synaptic weight changed by STDP while learning
    e_*    per-operation energies of the preset (pJ; 1 pJ = 1e-12 J)

and, when the caller knows both the measured time and the platform's power,

.. code-block:: text

    E_platform = t * P_platform                                                   (J)

which is what the whole computer (CPU, memory, board) draws meanwhile: a different, much larger
figure than ``E_compute``. The presets price arithmetic only: memory traffic (SRAM, DRAM), which
often dominates on conventional hardware, is not in ``E_compute``. Every figure therefore names
its preset; estimates under different presets are not comparable.

Presets (:data:`PRESETS`; sources in each preset's ``source``):

* ``cmos45_fp32``: 45 nm CMOS, 32-bit float (Horowitz, ISSCC 2014).
* ``cmos45_int8``: 45 nm CMOS, 8-bit integer arithmetic (same table).
* ``loihi``: Intel Loihi, 14 nm (Davies et al., IEEE Micro 2018, Table 2).
"""

from dataclasses import dataclass, fields
import math
from numbers import Real
from types import MappingProxyType
from typing import Mapping, Optional, Union

PJ_TO_J = 1e-12
"""Joules per picojoule."""


def _check_count(name: str, value) -> float:
    """Return ``value`` as a float; raise ValueError unless it is a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f'{name} must be a number, got {value!r}')
    value = float(value)
    if not math.isfinite(value) or value < 0.0:
        raise ValueError(f'{name} must be finite and >= 0, got {value!r}')
    return value


@dataclass(frozen=True)
class OpCounts:
    """
    Operation counts of ONE inference or ONE training step (see the module docstring).

    Counts are floats: a mean over samples is usually fractional. All are finite and >= 0
    (ValueError otherwise). ``a + b`` adds counts kind by kind; ``k * a`` scales them (e.g.
    ``total * (1 / n)`` for a mean).

    Attributes
    ----------
    accumulates
        synaptic accumulates (spike arriving at a synapse: one addition).
    macs
        multiply-accumulates (graded input into a layer).
    neuron_updates
        neuron state updates (one per neuron per simulated timestep).
    plasticity_updates
        STDP weight updates (learning only).

    """

    accumulates: float = 0.0
    macs: float = 0.0
    neuron_updates: float = 0.0
    plasticity_updates: float = 0.0

    def __post_init__(self) -> None:
        """Check and normalise every count to a float."""
        for f in fields(self):
            object.__setattr__(self, f.name, _check_count(f.name, getattr(self, f.name)))

    @property
    def total_synaptic_ops(self) -> float:
        """Return synaptic operations of either kind: ``accumulates + macs``."""
        return self.accumulates + self.macs

    def __add__(self, other: 'OpCounts') -> 'OpCounts':
        """Add two counts kind by kind."""
        if not isinstance(other, OpCounts):
            return NotImplemented
        return OpCounts(*(getattr(self, f.name) + getattr(other, f.name)
                          for f in fields(self)))

    def __mul__(self, factor: float) -> 'OpCounts':
        """Scale every count by ``factor`` (a finite number >= 0)."""
        if isinstance(factor, bool) or not isinstance(factor, Real):
            return NotImplemented
        factor = _check_count('factor', factor)
        return OpCounts(*(getattr(self, f.name) * factor for f in fields(self)))

    __rmul__ = __mul__

    def as_dict(self) -> dict:
        """Return ``{kind: count}`` in field order (the keys :meth:`from_mapping` reads)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_mapping(cls, values: Mapping[str, float]) -> 'OpCounts':
        """
        Return counts from ``{kind: count}``; a kind left out counts 0.

        Raises
        ------
        ValueError
            for a key that is not a kind of operation, or an invalid count.

        """
        known = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in values if k not in known)
        if unknown:
            raise ValueError(f'unknown operation kind(s) {unknown}; known: {known}')
        return cls(**dict(values))


@dataclass(frozen=True)
class EnergyPreset:
    """
    Per-operation energies of one hardware target (pJ per operation).

    Attributes
    ----------
    name
        the key in :data:`PRESETS` (e.g. ``'cmos45_fp32'``).
    description
        what is priced and how, including every assumption behind a derived figure.
    source
        full citation(s) of the figures.
    accumulate_pj, mac_pj, neuron_update_pj, plasticity_update_pj
        energy of one operation of each kind of :class:`OpCounts` (pJ).

    """

    name: str
    description: str
    source: str
    accumulate_pj: float
    mac_pj: float
    neuron_update_pj: float
    plasticity_update_pj: float

    def __post_init__(self) -> None:
        """Check the name and that every energy is finite and >= 0."""
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f'preset name must be a non-empty string, got {self.name!r}')
        for key in ('accumulate_pj', 'mac_pj', 'neuron_update_pj', 'plasticity_update_pj'):
            object.__setattr__(self, key, _check_count(key, getattr(self, key)))


# Horowitz, ISSCC 2014, Fig. 1.1.9 (45 nm, 0.9 V), energy per arithmetic operation (pJ).
# Confirmed against secondary citations of the table (e.g. PMC8934428, Table 3: int32 add 0.1,
# int32 mult 3.1, fp32 add 0.9, fp32 mult 3.7); the 8-bit figures (add 0.03, mult 0.2) are the
# same table's integer rows.
_HOROWITZ = ('M. Horowitz, "Computing\'s energy problem (and what we can do about it)", '
             'IEEE International Solid-State Circuits Conference (ISSCC) 2014, Digest of '
             'Technical Papers, pp. 10-14, doi:10.1109/ISSCC.2014.6757323 (45 nm, 0.9 V).')
_FP32_ADD_PJ = 0.9
_FP32_MULT_PJ = 3.7
_INT8_ADD_PJ = 0.03
_INT8_MULT_PJ = 0.2

# Derived operation costs: a LIF neuron update (Diehl & Cook: leaky membrane, adaptive
# threshold) = 1 multiply (membrane leak, v_rest + (v - v_rest) * decay) + 1 add (its offset)
# + 1 add (threshold comparison done as a subtraction); its synaptic input is counted separately
# as accumulates. A trace-based STDP weight update = 1 MAC (w += eta * trace) + 2 adds (clamping
# to [0, w_max] as two comparisons).
_NEURON_MULTS, _NEURON_ADDS = 1, 2
_PLASTICITY_MACS, _PLASTICITY_ADDS = 1, 2


def _cmos45(name: str, bits: str, add_pj: float, mult_pj: float) -> EnergyPreset:
    def pj(value: float) -> float:  # sums of the table's figures, without float noise
        return round(value, 6)

    mac_pj = pj(mult_pj + add_pj)
    return EnergyPreset(
        name=name,
        description=(
            f'45 nm CMOS, {bits} arithmetic only (no memory access). Accumulate = 1 add '
            f'({add_pj:g} pJ); MAC = 1 multiply + 1 add ({mac_pj:g} pJ). Not in the source, '
            f'derived from its per-op figures: neuron update (LIF with adaptive threshold) = '
            f'{_NEURON_MULTS} multiply (leak) + {_NEURON_ADDS} adds (leak offset, threshold '
            f'compare); plasticity update (trace STDP) = {_PLASTICITY_MACS} MAC (w += eta * '
            f'trace) + {_PLASTICITY_ADDS} adds (clamp to [0, w_max]).'),
        source=_HOROWITZ,
        accumulate_pj=add_pj,
        mac_pj=mac_pj,
        neuron_update_pj=pj(_NEURON_MULTS * mult_pj + _NEURON_ADDS * add_pj),
        plasticity_update_pj=pj(_PLASTICITY_MACS * mac_pj + _PLASTICITY_ADDS * add_pj))


# Loihi figures: Davies et al. 2018, Table 2 ("pre-silicon" figures from SDF and SPICE
# simulation, 0.75 V): energy per synaptic spike op (min) 23.6 pJ, per synaptic update
# (pre/post, i.e. one learning-engine weight update) 120 pJ, per neuron update 81 pJ (active) /
# 52 pJ (inactive); within-tile spike 1.7 pJ, tile hop 3.0 (E-W) / 4.0 (N-S) pJ. The primary PDF
# was not readable here: these numbers were confirmed from several independent public sources
# that quote the table row by row (SANA-FE's Loihi architecture file cites the same paper for
# its mesh figures). Loihi 1 has no multiplier on the synaptic path, and the paper publishes no
# MAC figure: a MAC is priced as one synaptic op (assumption).
_LOIHI = EnergyPreset(
    name='loihi',
    description=(
        'Intel Loihi (14 nm), per-operation energies of Table 2 of the source (pre-silicon '
        'simulation, 0.75 V). Accumulate = synaptic spike op (its minimum, 23.6 pJ); neuron '
        'update = active neuron update (81 pJ; 52 pJ when inactive, an upper bound is taken '
        'because counts do not separate them); plasticity update = synaptic update (pre/post, '
        '120 pJ). MAC: no published figure (Loihi 1 spikes are binary), priced as one synaptic '
        'op (assumption). Spike routing (1.7 pJ within a tile, 3-4 pJ per tile hop) is not '
        'counted.'),
    source=('M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip '
            'Learning", IEEE Micro 38(1):82-99, 2018, doi:10.1109/MM.2018.112130359, Table 2.'),
    accumulate_pj=23.6,
    mac_pj=23.6,
    neuron_update_pj=81.0,
    plasticity_update_pj=120.0)

PRESETS: Mapping[str, EnergyPreset] = MappingProxyType({
    'cmos45_fp32': _cmos45('cmos45_fp32', '32-bit floating-point', _FP32_ADD_PJ, _FP32_MULT_PJ),
    'cmos45_int8': _cmos45('cmos45_int8', '8-bit integer', _INT8_ADD_PJ, _INT8_MULT_PJ),
    'loihi': _LOIHI,
})
"""Preset name -> :class:`EnergyPreset` (read-only)."""


def get_preset(name: str) -> EnergyPreset:
    """Return the preset called ``name``; ValueError naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f'unknown energy preset {name!r}; known: '
                         f'{", ".join(sorted(PRESETS))}') from None


_SI_PREFIXES = ((1.0, ''), (1e-3, 'm'), (1e-6, 'u'), (1e-9, 'n'), (1e-12, 'p'), (1e-15, 'f'))


def format_joules(value_j: float) -> str:
    """Return ``value_j`` with an SI prefix and 4 significant digits, e.g. ``'1.234 uJ'``."""
    if value_j == 0.0 or not math.isfinite(value_j):
        return f'{value_j:g} J'
    for scale, prefix in _SI_PREFIXES:
        if abs(value_j) >= scale:
            return f'{value_j / scale:.4g} {prefix}J'
    return f'{value_j / 1e-15:.4g} fJ'


@dataclass(frozen=True)
class EnergyBreakdown:
    """
    One energy estimate, per kind of operation (J), under a named preset.

    Attributes
    ----------
    accumulate_j, mac_j, neuron_update_j, plasticity_update_j
        count x per-operation energy of each kind (J).
    compute_j
        their sum (J).
    platform_j
        measured time x platform power (J); None when either is unknown.
    preset
        name of the preset that priced the operations.

    """

    accumulate_j: float
    mac_j: float
    neuron_update_j: float
    plasticity_update_j: float
    compute_j: float
    platform_j: Optional[float]
    preset: str

    def describe(self) -> str:
        """Return a one-line summary with units and the preset."""
        text = (f'compute {format_joules(self.compute_j)} on {self.preset} '
                f'(accumulates {format_joules(self.accumulate_j)}, '
                f'MACs {format_joules(self.mac_j)}, '
                f'neuron updates {format_joules(self.neuron_update_j)}, '
                f'plasticity {format_joules(self.plasticity_update_j)})')
        if self.platform_j is not None:
            text += f'; platform {format_joules(self.platform_j)} (time x power)'
        return text


class EnergyModel:
    """
    Prices :class:`OpCounts` with a preset (see the module docstring for the equations).

    Parameters
    ----------
    preset
        a name in :data:`PRESETS` or an :class:`EnergyPreset`.
    platform_power_w
        average power of the whole platform while it computes (W), for ``platform_j``;
        None when unknown.

    """

    def __init__(self, preset: Union[str, EnergyPreset],
                 platform_power_w: Optional[float] = None) -> None:
        """Resolve the preset; ValueError for an unknown name or an invalid power."""
        self._preset = preset if isinstance(preset, EnergyPreset) else get_preset(preset)
        self._platform_power_w = (None if platform_power_w is None
                                  else _check_count('platform_power_w', platform_power_w))

    @property
    def preset(self) -> EnergyPreset:
        """Return the preset that prices operations."""
        return self._preset

    @property
    def platform_power_w(self) -> Optional[float]:
        """Return the platform power (W), or None when unknown."""
        return self._platform_power_w

    def __repr__(self) -> str:
        """Return ``EnergyModel('<preset>', platform_power_w=...)``."""
        return (f'EnergyModel({self._preset.name!r}, '
                f'platform_power_w={self._platform_power_w!r})')

    def estimate(self, ops: OpCounts, latency_s: Optional[float] = None) -> EnergyBreakdown:
        """
        Return the energy of ``ops``; ``latency_s`` (s) adds the platform figure.

        ``platform_j = latency_s * platform_power_w`` when both are known, else None.
        """
        if not isinstance(ops, OpCounts):
            raise ValueError(f'ops must be OpCounts, got {type(ops).__name__}')
        p = self._preset
        acc = ops.accumulates * p.accumulate_pj * PJ_TO_J
        mac = ops.macs * p.mac_pj * PJ_TO_J
        neu = ops.neuron_updates * p.neuron_update_pj * PJ_TO_J
        pl = ops.plasticity_updates * p.plasticity_update_pj * PJ_TO_J
        platform = None
        if latency_s is not None:
            latency_s = _check_count('latency_s', latency_s)
            if self._platform_power_w is not None:
                platform = latency_s * self._platform_power_w
        return EnergyBreakdown(accumulate_j=acc, mac_j=mac, neuron_update_j=neu,
                               plasticity_update_j=pl, compute_j=acc + mac + neu + pl,
                               platform_j=platform, preset=p.name)

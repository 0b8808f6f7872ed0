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
figure than ``E_compute``. A measured figure (a power meter of the platform: RAPL, NVML, INA
monitors) comes from :mod:`topspark_ros.core.power`, never from this module.

What a preset prices is named by its ``includes`` (:data:`COST_COMPONENTS`): the arithmetic-only
presets price adds and multiplies, nothing else; the memory-inclusive ones add a weight fetch
per synaptic operation and a state read + write per neuron update (the literature shows memory
traffic, not arithmetic, dominates SNN energy on conventional hardware); the Loihi preset prices
the chip's own per-operation energies, which include its on-core memory. No preset prices spike
routing, static (leakage) power or off-chip DRAM. Every figure therefore names its preset;
estimates under different presets are not comparable.

Presets (:data:`PRESETS`; sources in each preset's ``source``):

* ``cmos45_fp32``: 45 nm CMOS, 32-bit float arithmetic only (Horowitz, ISSCC 2014).
* ``cmos45_int8``: 45 nm CMOS, 8-bit integer arithmetic only (same table).
* ``cmos45_fp32_sram``, ``cmos45_int8_sram``: the same arithmetic plus SRAM accesses priced
  with the same table's per-access energies (weights in a 1 MB array, state in a 32 KB one).
* ``loihi``: Intel Loihi, 14 nm (Davies et al., IEEE Micro 2018, Table 2).

The equivalent ANN (the same network with graded activations, one MAC per weight per input:
``ann_ops()`` of each model family) is priced with the same preset by :func:`compare_with_ann`,
which says whether the SNN pays.
"""

from dataclasses import dataclass, fields
import math
from numbers import Real
from types import MappingProxyType
from typing import Mapping, Optional, Tuple, Union

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


COST_COMPONENTS: Mapping[str, str] = MappingProxyType({
    'arithmetic': 'adds and multiplies of synaptic, neuron and plasticity operations',
    'weight_memory': 'a weight read per synaptic operation, a weight read + write per '
                     'plasticity update',
    'state_memory': 'a neuron-state read + write per neuron update, a trace read per '
                    'plasticity update',
    'spike_routing': 'moving a spike from its neuron to its synapses (network on chip)',
    'static_power': 'leakage and idle power while computing',
})
"""What a preset can price, name -> meaning (:attr:`EnergyPreset.includes` names a subset)."""


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
    includes
        the cost components priced (names in :data:`COST_COMPONENTS`); the others are not.
    runs_anns
        whether an ANN can run on the target (False for a neuromorphic chip without MACs:
        pricing the same network as an ANN there compares with a machine that cannot exist).

    """

    name: str
    description: str
    source: str
    accumulate_pj: float
    mac_pj: float
    neuron_update_pj: float
    plasticity_update_pj: float
    includes: Tuple[str, ...] = ('arithmetic',)
    runs_anns: bool = True

    def __post_init__(self) -> None:
        """Check the name, that every energy is finite and >= 0, and the components."""
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f'preset name must be a non-empty string, got {self.name!r}')
        for key in ('accumulate_pj', 'mac_pj', 'neuron_update_pj', 'plasticity_update_pj'):
            object.__setattr__(self, key, _check_count(key, getattr(self, key)))
        includes = tuple(self.includes) if not isinstance(self.includes, str) else ()
        unknown = [c for c in includes if c not in COST_COMPONENTS]
        if not includes or unknown:
            raise ValueError(f'includes must name cost components of {list(COST_COMPONENTS)}, '
                             f'got {self.includes!r}')
        object.__setattr__(self, 'includes', includes)

    @property
    def excludes(self) -> Tuple[str, ...]:
        """Return the cost components this preset does not price."""
        return tuple(c for c in COST_COMPONENTS if c not in self.includes)

    def coverage(self) -> str:
        """Return what the preset prices, e.g. ``'arithmetic; not: weight_memory, ...'``."""
        return f'{", ".join(self.includes)}; not: {", ".join(self.excludes)}'


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

# The same figure's memory rows: energy per 64-bit access of an SRAM (cache) of 8 KB: 10 pJ,
# 32 KB: 20 pJ, 1 MB: 100 pJ (DRAM: 1.3-2.6 nJ, not used: the weights are taken on chip).
SRAM_64BIT_ACCESS_PJ: Mapping[str, float] = MappingProxyType(
    {'8KB': 10.0, '32KB': 20.0, '1MB': 100.0})
"""Horowitz (ISSCC 2014): energy of one 64-bit SRAM access by array size (pJ)."""
# Assumed arrays. Weights: 1 MB, the table's largest (32 KB holds no shipped model's); one
# holds the converted VGG's (224 000 weights, 0.90 MB fp32 / 0.22 MB int8) and the STDP
# N=400's int8 (784 x 400 = 313 600, 0.31 MB); its fp32 weights, 1.25 MB, are taken as two
# banked 1 MB arrays at the same per-access cost, not as DRAM (a review). State: 32 KB, which
# holds the STDP network's (800 neurons); a converted network's (22 000 neurons, 88 KB fp32)
# is taken as banked 32 KB arrays at the same per-access cost.
_WEIGHT_ARRAY = '1MB'
_STATE_ARRAY = '32KB'

# Derived operation costs: a LIF neuron update (Diehl & Cook: leaky membrane, adaptive
# threshold) = 1 multiply (membrane leak, v_rest + (v - v_rest) * decay) + 1 add (its offset)
# + 1 add (threshold comparison done as a subtraction); its synaptic input is counted separately
# as accumulates. A trace-based STDP weight update = 1 MAC (w += eta * trace) + 2 adds (clamping
# to [0, w_max] as two comparisons).
_NEURON_MULTS, _NEURON_ADDS = 1, 2
_PLASTICITY_MACS, _PLASTICITY_ADDS = 1, 2


def _pj(value: float) -> float:
    """Return a sum of the table's figures without float noise."""
    return round(value, 6)


def _cmos45(name: str, bits: str, add_pj: float, mult_pj: float) -> EnergyPreset:
    mac_pj = _pj(mult_pj + add_pj)
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
        neuron_update_pj=_pj(_NEURON_MULTS * mult_pj + _NEURON_ADDS * add_pj),
        plasticity_update_pj=_pj(_PLASTICITY_MACS * mac_pj + _PLASTICITY_ADDS * add_pj),
        includes=('arithmetic',))


def _with_sram(arithmetic: EnergyPreset, weight_bits: int, state_bits: int) -> EnergyPreset:
    """
    Return ``arithmetic`` plus SRAM accesses (Horowitz's per-64-bit-access energies).

    A word of ``b`` bits costs ``b / 64`` of a 64-bit access (words packed into 64-bit
    accesses: a spike reads a contiguous row of weights). Synaptic op (accumulate or MAC):
    + 1 weight read. Neuron update: + 1 state read + 1 state write. Plasticity update: + 1
    weight read + 1 weight write + 1 trace read (state array).
    """
    weight = SRAM_64BIT_ACCESS_PJ[_WEIGHT_ARRAY] * weight_bits / 64
    state = SRAM_64BIT_ACCESS_PJ[_STATE_ARRAY] * state_bits / 64
    return EnergyPreset(
        name=f'{arithmetic.name}_sram',
        description=(
            f'{arithmetic.name} arithmetic plus on-chip SRAM accesses. Weights '
            f'({weight_bits}-bit) in a {_WEIGHT_ARRAY} array: '
            f'{SRAM_64BIT_ACCESS_PJ[_WEIGHT_ARRAY]:g} pJ per 64-bit access, {weight:g} pJ per '
            f'weight (a {weight_bits}-bit word costs {weight_bits}/64 of an access: words '
            f'packed, as a spike reads a contiguous row of weights); 1 MB is the smallest of '
            f"the table's arrays that holds a shipped model's weights. Neuron state "
            f'({state_bits}-bit membrane potential) in a {_STATE_ARRAY} array: '
            f'{SRAM_64BIT_ACCESS_PJ[_STATE_ARRAY]:g} pJ per 64-bit access, {state:g} pJ per '
            f'word. Accumulate and MAC = arithmetic + 1 weight read; neuron update = arithmetic '
            f'+ 1 state read + 1 state write; plasticity update = arithmetic + 1 weight read + '
            f'1 weight write + 1 trace read. Not priced: input activation reads (reused across '
            f"a layer's outputs), DRAM (weights assumed on chip), spike routing, leakage."),
        source=_HOROWITZ + " Memory: the same figure's SRAM rows, energy per 64-bit access: "
                           '8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ.',
        accumulate_pj=_pj(arithmetic.accumulate_pj + weight),
        mac_pj=_pj(arithmetic.mac_pj + weight),
        neuron_update_pj=_pj(arithmetic.neuron_update_pj + 2 * state),
        plasticity_update_pj=_pj(arithmetic.plasticity_update_pj + 2 * weight + state),
        includes=('arithmetic', 'weight_memory', 'state_memory'))


# Loihi: Davies et al. 2018, Table 2 (pre-silicon figures from SDF and SPICE simulation):
#   energy per synaptic spike op (min)              23.6 pJ
#   energy per synaptic update (pairwise STDP)      120 pJ
#   energy per neuron update (active / inactive)    81 pJ / 52 pJ
#   within-tile spike energy                        1.7 pJ
#   energy per tile hop (E-W / N-S)                 3.0 pJ / 4.0 pJ
# The primary PDF was not readable here: these numbers were confirmed from independent public
# sources that quote the table row by row (SANA-FE's Loihi architecture file cites the same
# paper: 1.7 pJ within tile, 3.0 pJ E-W). Loihi 1 has no multiplier on the synaptic path, and
# the paper publishes no MAC figure: a MAC is priced as one synaptic op (assumption). The
# per-op energies are of a neuromorphic core, so they include its synaptic and neuron-state
# SRAM accesses. Spike routing is not counted (a spike costs 1.7 pJ within a tile, against
# 23.6 pJ for each of the hundreds of synapses it reaches in the shipped models: < 0.1 %).
_LOIHI = EnergyPreset(
    name='loihi',
    description=(
        'Intel Loihi (14 nm), per-operation energies of Table 2 of the source (pre-silicon '
        'SDF and SPICE simulation). Accumulate = energy per synaptic spike op (its minimum, '
        '23.6 pJ); neuron update = energy per neuron update, active (81 pJ; 52 pJ when '
        'inactive: the upper figure is taken because counts do not separate them); plasticity '
        'update = energy per synaptic update (pairwise STDP, 120 pJ). These are per-operation '
        'energies of a neuromorphic core, its synaptic and state memory accesses included. '
        'MAC: no published figure (Loihi 1 spikes are binary), priced as one synaptic op '
        '(assumption). Not priced: spike routing (1.7 pJ per spike within a tile, 3.0 pJ E-W / '
        '4.0 pJ N-S per tile hop; under 0.1 % here, as each spike reaches hundreds of '
        'synapses), static power.'),
    source=('M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip '
            'Learning", IEEE Micro 38(1):82-99, 2018, doi:10.1109/MM.2018.112130359, Table 2.'),
    accumulate_pj=23.6,
    mac_pj=23.6,
    neuron_update_pj=81.0,
    plasticity_update_pj=120.0,
    includes=('arithmetic', 'weight_memory', 'state_memory'),
    runs_anns=False)  # (a review: an "ANN on Loihi" was priced at 23.6 pJ a MAC)

_FP32 = _cmos45('cmos45_fp32', '32-bit floating-point', _FP32_ADD_PJ, _FP32_MULT_PJ)
_INT8 = _cmos45('cmos45_int8', '8-bit integer', _INT8_ADD_PJ, _INT8_MULT_PJ)
PRESETS: Mapping[str, EnergyPreset] = MappingProxyType({
    'cmos45_fp32': _FP32,
    'cmos45_int8': _INT8,
    # 16-bit membrane with 8-bit weights: an 8-bit potential would saturate (assumption).
    'cmos45_fp32_sram': _with_sram(_FP32, weight_bits=32, state_bits=32),
    'cmos45_int8_sram': _with_sram(_INT8, weight_bits=8, state_bits=16),
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
    return _format_si(value_j, 'J')


def format_watts(value_w: float) -> str:
    """Return ``value_w`` with an SI prefix and 4 significant digits, e.g. ``'18.6 uW'``."""
    return _format_si(value_w, 'W')


def _format_si(value: float, unit: str) -> str:
    if value == 0.0 or not math.isfinite(value):
        return f'{value:g} {unit}'
    for scale, prefix in _SI_PREFIXES:
        if abs(value) >= scale:
            return f'{value / scale:.4g} {prefix}{unit}'
    return f'{value / 1e-15:.4g} f{unit}'


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
    includes
        the cost components the preset prices (:attr:`EnergyPreset.includes`).

    """

    accumulate_j: float
    mac_j: float
    neuron_update_j: float
    plasticity_update_j: float
    compute_j: float
    platform_j: Optional[float]
    preset: str
    includes: Tuple[str, ...] = ()

    def describe(self) -> str:
        """Return a one-line summary with units and the preset."""
        text = (f'compute {format_joules(self.compute_j)} on {self.preset} '
                f'[{", ".join(self.includes)}] '
                f'(accumulates {format_joules(self.accumulate_j)}, '
                f'MACs {format_joules(self.mac_j)}, '
                f'neuron updates {format_joules(self.neuron_update_j)}, '
                f'plasticity {format_joules(self.plasticity_update_j)})')
        if self.platform_j is not None:
            text += f'; platform {format_joules(self.platform_j)} (time x power)'
        return text


@dataclass(frozen=True)
class AnnComparison:
    """
    An SNN's energy per inference against the equivalent ANN's, under one preset.

    Attributes
    ----------
    snn_j
        the SNN's compute energy per inference (J).
    ann_j
        the ANN's: its MACs (one per weight per input) priced as MACs of the preset (J).
    preset
        the preset that priced both.

    """

    snn_j: float
    ann_j: float
    preset: str

    @property
    def ratio(self) -> float:
        """Return ``snn_j / ann_j`` (> 1: the SNN costs more; inf when ``ann_j`` is 0)."""
        return self.snn_j / self.ann_j if self.ann_j > 0.0 else math.inf

    @property
    def snn_pays(self) -> bool:
        """Return whether the SNN spends less energy than the ANN."""
        return self.snn_j < self.ann_j

    def describe(self) -> str:
        """Return e.g. ``'SNN 1.2 uJ vs ANN 3.4 uJ on cmos45_fp32: 0.35x, the SNN pays'``."""
        verdict = 'the SNN pays' if self.snn_pays else 'the SNN does not pay'
        return (f'SNN {format_joules(self.snn_j)} vs ANN {format_joules(self.ann_j)} on '
                f'{self.preset}: {self.ratio:.3g}x, {verdict}')


def compare_with_ann(model: 'EnergyModel', snn_ops: OpCounts, ann_ops: OpCounts) -> AnnComparison:
    """
    Price an SNN's counts and its equivalent ANN's (``ann_ops()`` of the model) with ``model``.

    The ANN is the same network with graded activations: every weight is used once per input
    (one MAC each, ``ann_ops()`` of each model family), priced at the preset's MAC energy, so
    a memory-inclusive preset charges the ANN a weight fetch per MAC as it charges the SNN one
    per synaptic operation. ANN activation functions are not priced (a lower bound on the ANN).
    """
    if not model.preset.runs_anns:
        raise ValueError(f'no ANN runs on {model.preset.name}: no ANN comparison under it')
    return AnnComparison(snn_j=model.estimate(snn_ops).compute_j,
                         ann_j=model.estimate(ann_ops).compute_j, preset=model.preset.name)


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
                               platform_j=platform, preset=p.name, includes=p.includes)

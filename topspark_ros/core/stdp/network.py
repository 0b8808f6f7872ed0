r"""
Diehl & Cook (2015) spiking network with online STDP: configuration, parameters, model.

Architecture (as BindsNET's ``DiehlAndCook2015``): ``n_inputs`` Poisson inputs (one per
pixel, see :mod:`topspark_ros.core.stdp.encoding`) fully connected by plastic weights
``W [n_inputs, N]`` in ``[0, w_max]`` to ``N`` excitatory LIF neurons with adaptive thresholds,
and lateral inhibition in one of two forms (``STDPConfig.inhibition``):

* ``'populations'`` (the original, and BindsNET's ``DiehlAndCook2015``): excitatory neuron
  ``j`` drives inhibitory neuron ``j`` with ``w_exc_inh_mv`` (22.5 mV, one to one); each
  inhibitory spike lowers every *other* excitatory neuron by ``w_inh_mv`` (120 mV).
* ``'direct'`` (BindsNET's ``DiehlAndCook2015v2`` form): each excitatory spike lowers every
  other excitatory neuron by ``w_inh_mv`` directly; no inhibitory layer (cheaper, one step
  less delay).

Every synapse except input -> excitatory delivers one step after the spike. Per step ``t``
of ``dt = dt_ms`` (``S_t``: the inputs spiking at ``t``; ``s^e_j(t)``, ``s^i_j(t)`` in {0, 1}):

.. code-block:: text

    I_j(t)   = sum_{i in S_t} W_ij - w_inh * sum_{k != j} s_k(t - 1)
               (s = s^i for 'populations', s^e for 'direct')
    inhibitory ('populations'): u_j <- u_rest + (u_j - u_rest) e^{-dt/10 ms}
               + w_exc_inh s^e_j(t - 1); spike at u_j >= -40 mV, reset -45 mV, 2 ms refractory
    v_j      <- v_rest + (v_j - v_rest) e^{-dt/tau_v} + I_j(t)     (not while refractory)
    theta_j  <- theta_j e^{-dt/tau_theta}                           (learning only)
    crossing : v_j >= v_thresh + s theta_j                          (not while refractory)
    one_spike: of several crossings only the largest v_j - v_thresh - s theta_j (lowest
               index on ties) fires; the others keep their potential (BindsNET keeps one at
               random)
    spike    : v_j <- v_reset; refractory for round(refractory_ms / dt) steps (no input, no
               spike); theta_j += theta_plus (learning only)

``s = theta_scale`` (1 by default) scales the learnt adaptive thresholds where they are compared,
never where they are stored: the kernels see ``s theta`` and an increment ``s theta_plus``, and
the stored ``theta`` is divided back by ``s`` after a learning call (TopSpark's enhancement
lowers it at small T, where the thresholds learnt at a large T are out of reach).

A refractory neuron still leaks. STDP (learning only) uses nearest-spike traces set to 1 on a
spike and decaying as ``x(t) = exp(-(t - t_last) dt / tau)``: the pre trace ``x_i`` (tau_pre
20 ms), post traces ``y1_j`` (20 ms) and ``y2_j`` (40 ms). After this step's spikes have set
the traces:

.. code-block:: text

    pre spike  i at t:  W_ij <- max(0, W_ij - nu_pre * y1_j)                  for all j
    post spike j at t:  W_ij <- clip(W_ij + nu_post * (x_i - x_tar) * F_j, 0, w_max)  for all i
    'dc'   (Diehl & Cook triplet rule): F_j = y2_j just before this spike (0 for a first spike)
    'pair' (BindsNET PostPre):           F_j = 1

Depression is applied before potentiation. After every learning sample each weight column is
normalised to sum ``norm`` (78.4) within ``[0, w_max]`` (:func:`kernels.normalise_columns`; the
numba engine recomputes only the columns STDP wrote, with the same result bit for bit, see
:func:`kernels.normalise_changed_columns`).
Between learning samples the state is either reset to rest (``between_samples='reset'``, the
default and what BindsNET does) or relaxed for ``rest_ms`` of input-free dynamics
(``'rest'``, Diehl & Cook's 150 ms). Inference never learns (weights and theta frozen) and
starts every sample from rest, so batched samples are independent.

The timestep count ``T`` is never stored: every call takes it. Run-time tunable dynamics live
in :class:`DynamicsParams`; pass one to a call to override the model's defaults for that call.
"""

from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
import math
from typing import Optional

import numpy as np

from topspark_ros.core.energy import OpCounts
from topspark_ros.core.preprocess import FrameSpec
from topspark_ros.core.stdp import kernels
from topspark_ros.core.stdp.encoding import draw_seeds, log_no_spike, spike_probabilities
from topspark_ros.core.stdp.encoding import SpikeEvents
from topspark_ros.core.stdp.readout import assign_labels, Readout
from topspark_ros.core.topspark.early_exit import class_votes, EarlyExit

INHIBITION_MODES = ('populations', 'direct')
LEARNING_RULES = ('dc', 'pair')
BETWEEN_SAMPLES = ('reset', 'rest')
ENGINES = ('numba', 'torch')
TRACE_CUTOFF = 40.0
"""Traces are exactly 0 once ``(t - t_last) dt / tau`` exceeds this (``e^-40 ~ 4e-18``)."""


@dataclass(frozen=True)
class DynamicsParams:
    """
    Run-time tunable dynamics (what TopSpark's parameter enhancement re-tunes per T).

    Attributes
    ----------
    v_thresh_mv
        excitatory firing threshold without ``theta`` (mV).
    v_rest_mv
        excitatory resting potential (mV).
    v_reset_mv
        excitatory potential after a spike (mV).
    tau_v_ms
        excitatory membrane time constant (ms).
    refractory_ms
        excitatory refractory period (ms).
    theta_plus_mv
        adaptive-threshold increment per spike while learning (mV).
    theta_scale
        factor on the adaptive thresholds ``theta`` in the firing condition
        ``v >= v_thresh + theta_scale * theta`` (> 0, dimensionless; see the module doc).
    tau_theta_ms
        adaptive-threshold decay time constant while learning (ms).
    input_rate_hz
        input firing rate of a pixel of intensity 255 (Hz).
    w_inh_mv
        lateral inhibition per inhibiting spike (mV).
    w_exc_inh_mv
        excitatory -> inhibitory weight ('populations' only) (mV).
    nu_pre
        depression learning rate (on pre-synaptic spikes).
    nu_post
        potentiation learning rate (on post-synaptic spikes).

    """

    v_thresh_mv: float = -52.0
    v_rest_mv: float = -65.0
    v_reset_mv: float = -60.0
    tau_v_ms: float = 100.0
    refractory_ms: float = 5.0
    theta_plus_mv: float = 0.05
    theta_scale: float = 1.0
    tau_theta_ms: float = 1e7
    input_rate_hz: float = 128.0
    w_inh_mv: float = 120.0
    w_exc_inh_mv: float = 22.5
    nu_pre: float = 1e-4
    nu_post: float = 1e-2

    def __post_init__(self) -> None:
        """Check ranges; raise ``ValueError`` on an invalid value."""
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f'{f.name} must be a finite number, got {value!r}')
        for name in ('tau_v_ms', 'tau_theta_ms', 'theta_scale'):
            if getattr(self, name) <= 0:
                raise ValueError(f'{name} must be > 0')
        for name in ('refractory_ms', 'theta_plus_mv', 'input_rate_hz', 'w_inh_mv',
                     'w_exc_inh_mv', 'nu_pre', 'nu_post'):
            if getattr(self, name) < 0:
                raise ValueError(f'{name} must be >= 0')

    def replace(self, **changes) -> 'DynamicsParams':
        """Return a copy with ``changes`` applied (validated)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Return the parameters as a plain dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> 'DynamicsParams':
        """Build from a dict written by :meth:`to_dict`; unknown keys raise ``ValueError``."""
        return _from_dict(cls, values)


@dataclass(frozen=True)
class STDPConfig:
    """
    Structure of a Diehl & Cook network (fixed for a trained model).

    Attributes
    ----------
    n_inputs
        number of inputs (pixels).
    n_neurons
        excitatory neurons ``N`` (and inhibitory ones in 'populations').
    n_classes
        classes of the readout.
    dt_ms
        simulation step (ms).
    inhibition
        ``'populations'`` or ``'direct'`` (see module docstring).
    learning_rule
        ``'dc'`` (triplet) or ``'pair'`` (PostPre).
    one_spike
        at most one excitatory spike per step.
    between_samples
        ``'reset'`` or ``'rest'`` while learning.
    rest_ms
        input-free time after each learning sample in ``'rest'`` mode (ms).
    w_max
        upper weight bound.
    w_init_max
        initial weights are uniform in ``[0, w_init_max)``, then normalised.
    norm
        target sum of each weight column.
    x_tar
        pre-trace offset of the potentiation.
    tau_pre_ms, tau_post1_ms, tau_post2_ms
        trace time constants (ms).
        inh_v_rest_mv, inh_v_reset_mv, inh_v_thresh_mv, inh_tau_v_ms, inh_refractory_ms:
        inhibitory neurons ('populations').
    seed
        seed of the initial weights and of the model's input-spike stream.

    """

    n_inputs: int = 784
    n_neurons: int = 100
    n_classes: int = 10
    dt_ms: float = 1.0
    inhibition: str = 'populations'
    learning_rule: str = 'dc'
    one_spike: bool = True
    between_samples: str = 'reset'
    rest_ms: float = 150.0
    w_max: float = 1.0
    w_init_max: float = 0.3
    norm: float = 78.4
    x_tar: float = 0.0
    tau_pre_ms: float = 20.0
    tau_post1_ms: float = 20.0
    tau_post2_ms: float = 40.0
    inh_v_rest_mv: float = -60.0
    inh_v_reset_mv: float = -45.0
    inh_v_thresh_mv: float = -40.0
    inh_tau_v_ms: float = 10.0
    inh_refractory_ms: float = 2.0
    seed: int = 0

    def __post_init__(self) -> None:
        """Check values; raise ``ValueError`` on an invalid one."""
        for name in ('n_inputs', 'n_neurons', 'n_classes'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        for name, allowed in (('inhibition', INHIBITION_MODES),
                              ('learning_rule', LEARNING_RULES),
                              ('between_samples', BETWEEN_SAMPLES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f'{name} must be one of {allowed}, got {getattr(self, name)!r}')
        for name in ('dt_ms', 'w_max', 'norm', 'tau_pre_ms', 'tau_post1_ms', 'tau_post2_ms',
                     'inh_tau_v_ms'):
            if not getattr(self, name) > 0:
                raise ValueError(f'{name} must be > 0')
        for name in ('rest_ms', 'w_init_max', 'inh_refractory_ms'):
            if not getattr(self, name) >= 0:
                raise ValueError(f'{name} must be >= 0')

    def to_dict(self) -> dict:
        """Return the configuration as a plain dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> 'STDPConfig':
        """Build from a dict written by :meth:`to_dict`; unknown keys raise ``ValueError``."""
        return _from_dict(cls, values)


def _from_dict(cls, values: dict):
    """Build dataclass ``cls`` from ``values``, refusing unknown keys."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f'unknown {cls.__name__} fields: {unknown}')
    return cls(**values)


@dataclass(frozen=True)
class EngineCounts:
    """
    Operation and spike counts per sample (``int64 [B]`` each), for the energy model.

    Attributes
    ----------
    input_spikes
        input spikes.
    exc_spikes
        excitatory spikes.
    inh_spikes
        inhibitory spikes ('populations').
    syn_ops_input
        synaptic accumulates of input spikes (``input_spikes * N``).
    syn_ops_inhibition
        synaptic accumulates of lateral inhibition (exc -> inh one per
        excitatory spike plus ``N - 1`` per inhibitory spike; 'direct': ``N - 1`` per
        excitatory spike).
    neuron_updates
        neuron state updates (``N`` per step and layer).
    plasticity_updates
        weight updates STDP applies: per input spike, one per excitatory
        neuron with a non-zero post trace ``y1`` (depression; the others would change by 0);
        per excitatory spike, the column of ``n_inputs`` weights (potentiation; none for a
        first spike under 'dc', whose factor ``y2`` is 0). 0 in inference.

    """

    input_spikes: np.ndarray
    exc_spikes: np.ndarray
    inh_spikes: np.ndarray
    syn_ops_input: np.ndarray
    syn_ops_inhibition: np.ndarray
    neuron_updates: np.ndarray
    plasticity_updates: np.ndarray

    @classmethod
    def from_matrix(cls, ops: np.ndarray) -> 'EngineCounts':
        """Build from the kernels' ``int64 [B, kernels.N_OPS]`` matrix."""
        return cls(*np.array(np.asarray(ops).T, dtype=np.int64, order='C'))

    def energy_ops(self, index: int) -> OpCounts:
        """
        Return sample ``index``'s counts as the energy model's operation kinds.

        Accumulates are the input and inhibition synaptic operations; there are no MACs
        (the input is spikes); neuron and plasticity updates map one to one.
        """
        return OpCounts(accumulates=float(self.syn_ops_input[index]
                                          + self.syn_ops_inhibition[index]),
                        neuron_updates=float(self.neuron_updates[index]),
                        plasticity_updates=float(self.plasticity_updates[index]))

    def mean_energy_ops(self) -> OpCounts:
        """Return the mean over samples of :meth:`energy_ops`."""
        n = len(self.input_spikes)
        total = OpCounts()
        for i in range(n):
            total = total + self.energy_ops(i)
        return total * (1.0 / max(n, 1))

    def totals(self) -> dict:
        """Return the sums over samples as a dict of ints."""
        return {f.name: int(getattr(self, f.name).sum()) for f in fields(self)}


@dataclass(frozen=True)
class LearnResult:
    """
    What a learning call did.

    Attributes
    ----------
    exc_spike_counts
        ``int64 [B, N]`` excitatory spikes per sample during its ``T`` steps.
    ops
        per-sample operation counts (rest periods included).
    timesteps
        ``T`` of the call.

    """

    exc_spike_counts: np.ndarray
    ops: EngineCounts
    timesteps: int


@dataclass(frozen=True)
class InferenceResult:
    """
    Outputs of an inference call.

    Attributes
    ----------
    exc_spike_counts
        ``int64 [B, N]`` excitatory spike counts.
    timesteps_used
        ``int64 [B]`` steps simulated per sample (``T``, or fewer after an
        early exit).
    ops
        per-sample operation counts.
    scores
        ``float64 [B, C]`` class scores of the readout vote, or ``None`` before labels
        are assigned.
    predicted
        ``int64 [B]`` predicted classes, or ``None`` before labels are assigned.

    """

    exc_spike_counts: np.ndarray
    timesteps_used: np.ndarray
    ops: EngineCounts
    scores: Optional[np.ndarray] = None
    predicted: Optional[np.ndarray] = None

    @property
    def spike_count(self) -> np.ndarray:
        """``int64 [B]``: spikes of the network's neurons (excitatory and inhibitory)."""
        return self.ops.exc_spikes + self.ops.inh_spikes

    def energy_ops(self, index: int) -> OpCounts:
        """Return the operation counts of sample ``index`` for the energy model."""
        return self.ops.energy_ops(index)


@dataclass(frozen=True)
class SimulationConstants:
    """
    Scalars of one call in the kernels' form (see :mod:`topspark_ros.core.stdp.kernels`).

    Attributes
    ----------
    par
        ``float64 [kernels.N_PAR]``.
    ipar
        ``int64 [kernels.N_IPAR]``.
    norm
        target column sum.
    tab_pre, tab_post1, tab_post2
        ``float64`` trace tables ``exp(-k dt / tau)``.

    """

    par: np.ndarray
    ipar: np.ndarray
    norm: float
    tab_pre: np.ndarray = field(repr=False)
    tab_post1: np.ndarray = field(repr=False)
    tab_post2: np.ndarray = field(repr=False)


def trace_table(tau_ms: float, dt_ms: float) -> np.ndarray:
    """Return ``exp(-k dt / tau)`` for ``k = 0 .. ceil(TRACE_CUTOFF tau / dt)``, float64."""
    length = int(math.ceil(TRACE_CUTOFF * tau_ms / dt_ms)) + 1
    return np.exp(-np.arange(length, dtype=np.float64) * (dt_ms / tau_ms))


def simulation_constants(config: STDPConfig, params: DynamicsParams) -> SimulationConstants:
    """Translate a configuration and dynamics parameters into kernel constants."""
    dt = config.dt_ms
    par = np.zeros(kernels.N_PAR, np.float64)
    par[kernels.P_V_REST] = params.v_rest_mv
    par[kernels.P_V_RESET] = params.v_reset_mv
    par[kernels.P_V_THRESH] = params.v_thresh_mv
    par[kernels.P_DECAY_V] = math.exp(-dt / params.tau_v_ms)
    par[kernels.P_THETA_PLUS] = params.theta_plus_mv * params.theta_scale
    par[kernels.P_DECAY_THETA] = math.exp(-dt / params.tau_theta_ms)
    par[kernels.P_W_INH] = params.w_inh_mv
    par[kernels.P_W_EXC_INH] = params.w_exc_inh_mv
    par[kernels.P_NU_PRE] = params.nu_pre
    par[kernels.P_NU_POST] = params.nu_post
    par[kernels.P_X_TAR] = config.x_tar
    par[kernels.P_W_MAX] = config.w_max
    par[kernels.P_INH_REST] = config.inh_v_rest_mv
    par[kernels.P_INH_RESET] = config.inh_v_reset_mv
    par[kernels.P_INH_THRESH] = config.inh_v_thresh_mv
    par[kernels.P_INH_DECAY] = math.exp(-dt / config.inh_tau_v_ms)
    ipar = np.zeros(kernels.N_IPAR, np.int64)
    ipar[kernels.I_REFRAC] = round(params.refractory_ms / dt)
    ipar[kernels.I_INH_REFRAC] = round(config.inh_refractory_ms / dt)
    ipar[kernels.I_POPULATIONS] = config.inhibition == 'populations'
    ipar[kernels.I_TRIPLET] = config.learning_rule == 'dc'
    ipar[kernels.I_ONE_SPIKE] = config.one_spike
    ipar[kernels.I_REST_STEPS] = (round(config.rest_ms / dt)
                                  if config.between_samples == 'rest' else 0)
    return SimulationConstants(par=par, ipar=ipar, norm=float(config.norm),
                               tab_pre=trace_table(config.tau_pre_ms, dt),
                               tab_post1=trace_table(config.tau_post1_ms, dt),
                               tab_post2=trace_table(config.tau_post2_ms, dt))


@dataclass(frozen=True)
class PoissonInput:
    """
    Rate-coded input the engines draw themselves: ``log(1 - p)`` per input and a seed.

    Attributes
    ----------
    log_q
        ``float64 [B, n_inputs]`` (see :func:`encoding.log_no_spike`).
    seeds
        ``uint64 [B]`` SplitMix64 seeds.

    """

    log_q: np.ndarray
    seeds: np.ndarray

    @property
    def batch_size(self) -> int:
        """Return the number of samples."""
        return int(self.log_q.shape[0])


# Empty kernel arguments (no events, no early exit), made once: never written.
_NO_PIXELS = np.zeros(0, np.int32)
_NO_ROWS = np.zeros((0, 1), np.int64)
_NO_CLASS = np.zeros(0, np.int64)
_NO_WEIGHT = np.zeros(0, np.float64)


class NumbaEngine:
    """The event-driven CPU engine: owns the weights, theta and the learning state."""

    def __init__(self, weights: np.ndarray, theta: np.ndarray) -> None:
        """Copy ``weights [n_inputs, N]`` (float32) and ``theta [N]`` (float64)."""
        self.w = np.array(weights, dtype=np.float32, order='C')
        self.th = np.array(theta, dtype=np.float64)
        self._state = None
        # Column normalisation of the columns STDP wrote only (kernels.normalise_changed_columns):
        # marks, and the sums and maxima of the unmarked columns. All marked at first.
        n = self.w.shape[1]
        self._norm_state = (np.ones(n, np.bool_), np.zeros(n), np.zeros(n))

    def weights(self) -> np.ndarray:
        """Return a copy of the weights, ``float32 [n_inputs, N]``."""
        return self.w.copy()

    def theta(self) -> np.ndarray:
        """Return a copy of the adaptive thresholds, ``float64 [N]`` (mV)."""
        return self.th.copy()

    def reset_state(self) -> None:
        """Forget the dynamic state carried between learning samples ('rest' mode)."""
        self._state = None

    def _inputs(self, source, timesteps: int):
        """Return the kernel input arguments ``(log_q, seeds, pixels, row_ptr)``."""
        n_in = self.w.shape[0]
        if isinstance(source, PoissonInput):
            return source.log_q, source.seeds, _NO_PIXELS, _NO_ROWS
        return (np.zeros((0, n_in), np.float64), np.zeros(0, np.uint64), source.pixels,
                source.row_ptr)

    def learn(self, source, timesteps: int, const: SimulationConstants):
        """Learn from the samples of ``source`` in order; return ``(counts, ops)``."""
        n_in, n = self.w.shape
        if self._state is None:
            self._state = [np.empty(n), np.empty(n), np.empty(n, np.int64),
                           np.empty(n, np.int64), np.empty(n_in, np.int64),
                           np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64)]
            kernels.reset_state(*self._state, const.par)
        counts = np.zeros((source.batch_size, n), np.int64)
        ops = np.zeros((source.batch_size, kernels.N_OPS), np.int64)
        kernels.learn_batch(self.w, self.th, *self._state, *self._inputs(source, timesteps),
                            timesteps, const.par, const.ipar, const.norm, const.tab_pre,
                            const.tab_post1, const.tab_post2, counts, ops, *self._norm_state)
        return counts, ops

    def infer(self, source, timesteps: int, const: SimulationConstants, exit_rule=None):
        """
        Run the samples of ``source`` independently, learning off.

        ``exit_rule``: ``(exit_class, exit_weight, margin, min_steps)`` or None. Returns
        ``(counts, ops, steps_used)``.
        """
        n = self.w.shape[1]
        counts = np.zeros((source.batch_size, n), np.int64)
        ops = np.zeros((source.batch_size, kernels.N_OPS), np.int64)
        steps_used = np.zeros(source.batch_size, np.int64)
        if exit_rule is None:
            exit_rule = (_NO_CLASS, _NO_WEIGHT, 0.0, 0)
        exit_class, exit_weight, margin, min_steps = exit_rule
        # One sample (a camera stream) runs in this thread: a parallel region costs more.
        kernel = kernels.infer_serial if source.batch_size < 2 else kernels.infer_batch
        kernel(self.w, self.th, *self._inputs(source, timesteps), timesteps, const.par,
               const.ipar, const.tab_pre, const.tab_post1, const.tab_post2, counts, ops,
               np.asarray(exit_class, np.int64), np.asarray(exit_weight, np.float64),
               float(margin), int(min_steps), steps_used)
        return counts, ops, steps_used


def _raw_seeds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return ``draw_seeds(rng, n)``: the same values, drawn directly when ``rng`` is PCG64."""
    if type(rng.bit_generator) is np.random.PCG64:
        return rng.bit_generator.random_raw(n)
    return draw_seeds(rng, n)


def initial_weights(config: STDPConfig) -> np.ndarray:
    """Return normalised random initial weights ``float32 [n_inputs, N]`` from ``config.seed``."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(2)[0])
    w = rng.uniform(0.0, config.w_init_max, (config.n_inputs, config.n_neurons))
    w = np.ascontiguousarray(w, dtype=np.float32)
    kernels.normalise_columns(w, float(config.norm), float(config.w_max))
    return w


class DiehlCookNetwork:
    """
    A Diehl & Cook (2015) network: per-sample online STDP learning, batched inference.

    Parameters
    ----------
    config
        structure (fixed).
    params
        default run-time dynamics; any call may pass its own.
    device
        ``'cpu'`` (default) or a torch device such as ``'cuda'``; anything but
        ``'cpu'`` uses the torch engine.
    engine
        ``'numba'`` (CPU default, event driven) or ``'torch'`` (dense reference, any
        device); default from ``device``.
    weights
        ``[n_inputs, N]`` initial weights (default: random, normalised).
    theta
        ``[N]`` initial adaptive thresholds in mV (default: zeros).
    readout
        label assignment (default: none; see :meth:`assign_labels`).
    event_encoding
        how the model's input spikes come from events, for a model trained on events
        (:class:`~topspark_ros.core.events.encode.EventEncoding` of kind
        ``'spike_trains'``, its ``n_inputs`` equal to ``config.n_inputs``; saved in the
        checkpoint); None (default) for a model of frames.

    """

    checkpoint_family = 'stdp'

    def __init__(self, config: STDPConfig = STDPConfig(),
                 params: DynamicsParams = DynamicsParams(),
                 *, device: str = 'cpu', engine: Optional[str] = None,
                 weights: Optional[np.ndarray] = None, theta: Optional[np.ndarray] = None,
                 readout: Optional[Readout] = None, event_encoding=None) -> None:
        """Build the model and its engine."""
        if event_encoding is not None:
            if event_encoding.kind != 'spike_trains' or \
                    event_encoding.n_inputs != config.n_inputs:
                raise ValueError(f'the event encoding ({event_encoding.kind}, '
                                 f'{event_encoding.n_inputs} inputs) does not fit a network of '
                                 f'{config.n_inputs} spike-train inputs')
        self.event_encoding = event_encoding
        self.config = config
        self.params = params
        self.device = str(device)
        if engine is None:
            engine = 'numba' if self.device == 'cpu' else 'torch'
        if engine not in ENGINES:
            raise ValueError(f'engine must be one of {ENGINES}, got {engine!r}')
        if engine == 'numba' and self.device != 'cpu':
            raise ValueError(f"the numba engine runs on 'cpu' only, not {self.device!r}")
        self.engine_name = engine
        shape = (config.n_inputs, config.n_neurons)
        w = initial_weights(config) if weights is None else np.asarray(weights, np.float32)
        th = np.zeros(config.n_neurons) if theta is None else np.asarray(theta, np.float64)
        if w.shape != shape:
            raise ValueError(f'weights must have shape {shape}, got {w.shape}')
        if th.shape != (config.n_neurons,):
            raise ValueError(f'theta must have shape ({config.n_neurons},), got {th.shape}')
        if readout is not None and (readout.class_rates.shape
                                    != (config.n_neurons, config.n_classes)):
            raise ValueError(f'readout must be for {config.n_neurons} neurons and '
                             f'{config.n_classes} classes')
        self.readout = readout
        if engine == 'numba':
            self._engine = NumbaEngine(w, th)
        else:
            from topspark_ros.core.stdp.torch_engine import TorchEngine
            self._engine = TorchEngine(w, th, self.device)
        self._rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(2)[1])
        # Per-call setup that depends only on the dynamics, made once (it cost tens of us a
        # call): kernel constants per DynamicsParams, log(1 - p) of the 256 uint8 intensities
        # per input rate.
        self._constants_cache = {}
        self._log_q_tables = {}
        self._seed_cache = {}

    _CACHE_SIZE = 32
    """Entries a model keeps per cache (dynamics, input rates); one more empties it."""

    def _constants(self, params: DynamicsParams) -> SimulationConstants:
        """Return :func:`simulation_constants` for ``params`` (cached; never modify it)."""
        const = self._constants_cache.get(params)
        if const is None:
            if len(self._constants_cache) >= self._CACHE_SIZE:
                self._constants_cache.clear()
            const = simulation_constants(self.config, params)
            self._constants_cache[params] = const
        return const

    def _log_no_spike(self, images, rate_hz: float) -> np.ndarray:
        """
        Return ``log(1 - p)`` of ``images`` (see :func:`encoding.log_no_spike`).

        For ``uint8`` images by look-up in a table of the 256 intensities, computed by the
        same functions: the same values, without a logarithm per pixel.
        """
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim < 2:
            return log_no_spike(spike_probabilities(images, rate_hz, self.config.dt_ms))
        table = self._log_q_tables.get(rate_hz)
        if table is None:
            if len(self._log_q_tables) >= self._CACHE_SIZE:
                self._log_q_tables.clear()
            levels = np.arange(256, dtype=np.uint8)[None, :]
            table = log_no_spike(spike_probabilities(levels, rate_hz, self.config.dt_ms))[0]
            self._log_q_tables[rate_hz] = table
        return table[images.reshape(images.shape[0], -1)]

    @property
    def weights(self) -> np.ndarray:
        """Return a copy of the input weights, ``float32 [n_inputs, N]``."""
        return self._engine.weights()

    @property
    def theta(self) -> np.ndarray:
        """Return a copy of the adaptive thresholds, ``float64 [N]`` (mV)."""
        return self._engine.theta()

    def reset_state(self) -> None:
        """Reset this model's dynamic state (potentials, traces) to rest; weights stay."""
        self._engine.reset_state()

    @contextmanager
    def _scaled_theta(self, scale: float, learning: bool):
        """
        Give the engine ``scale * theta`` for one call (see the module doc's ``theta_scale``).

        After a learning call the engine's (changed) thresholds are divided back by ``scale``;
        after inference the stored array is put back untouched.
        """
        if scale == 1.0:
            yield
            return
        engine = self._engine
        stored = engine.th
        engine.th = stored * scale
        try:
            yield
        finally:
            engine.th = engine.th / scale if learning else stored

    def _source(self, images, spikes, timesteps, params: DynamicsParams, seed):
        """Return ``(source, T)`` for a call from images or explicit spike events."""
        if (images is None) == (spikes is None):
            raise ValueError('give exactly one of images and spikes')
        if spikes is not None:
            if not isinstance(spikes, SpikeEvents):
                raise TypeError('spikes must be SpikeEvents (see SpikeEvents.from_dense)')
            if spikes.n_inputs != self.config.n_inputs:
                raise ValueError(f'spikes have {spikes.n_inputs} inputs, the model '
                                 f'{self.config.n_inputs}')
            if timesteps is not None and timesteps != spikes.timesteps:
                raise ValueError(f'timesteps={timesteps} but the spikes have '
                                 f'{spikes.timesteps} steps')
            return spikes, spikes.timesteps
        if timesteps is None or int(timesteps) < 1:
            raise ValueError(f'timesteps must be a positive int, got {timesteps!r}')
        log_q = self._log_no_spike(images, params.input_rate_hz)
        if log_q.shape[1] != self.config.n_inputs:
            raise ValueError(f'images have {log_q.shape[1]} pixels, the model '
                             f'{self.config.n_inputs} inputs')
        return PoissonInput(log_q, self._seeds(seed, log_q.shape[0])), int(timesteps)

    def _seeds(self, seed, n: int) -> np.ndarray:
        """
        Return ``n`` SplitMix64 seeds as :func:`encoding.draw_seeds` draws them, faster.

        From the model's stream (``seed`` None) or ``np.random.default_rng(seed)``. For
        full-range uint64, ``Generator.integers`` returns the bit generator's raw 64-bit
        outputs (numpy's ``random_bounded_uint64_fill``), so those are drawn directly (20 us
        less per call). The seeds of an int ``seed`` are kept (a sweep repeats its seeds at
        every T): seeding a generator costs another 35 us.
        """
        if seed is None:
            return _raw_seeds(self._rng, n)
        if not isinstance(seed, (int, np.integer)):
            return _raw_seeds(np.random.default_rng(seed), n)
        key = (int(seed), n)
        seeds = self._seed_cache.get(key)
        if seeds is None:
            if len(self._seed_cache) >= 4 * self._CACHE_SIZE:
                self._seed_cache.clear()
            seeds = _raw_seeds(np.random.default_rng(seed), n)
            self._seed_cache[key] = seeds
        return seeds.copy()

    def learn(self, images: Optional[np.ndarray] = None, *, spikes: Optional[SpikeEvents] = None,
              timesteps: Optional[int] = None, params: Optional[DynamicsParams] = None,
              seed: Optional[int] = None) -> LearnResult:
        """
        Learn online from samples one after the other (labels are not needed).

        Parameters
        ----------
        images
            ``[B, 28, 28]`` (or ``[B, n_inputs]``) uint8 or float in [0, 1]; Poisson
            coded at ``params.input_rate_hz``.
        spikes
            explicit input events instead of images.
        timesteps
            ``T``, steps per sample (required with images).
        params
            dynamics for this call (default: the model's).
        seed
            seed for the input spikes of this call (default: the model's stream).

        """
        params = self.params if params is None else params
        source, steps = self._source(images, spikes, timesteps, params, seed)
        const = self._constants(params)
        with self._scaled_theta(params.theta_scale, learning=True):
            counts, ops = self._engine.learn(source, steps, const)
        return LearnResult(exc_spike_counts=counts, ops=EngineCounts.from_matrix(ops),
                           timesteps=steps)

    def infer(self, images: Optional[np.ndarray] = None, *, spikes: Optional[SpikeEvents] = None,
              timesteps: Optional[int] = None, params: Optional[DynamicsParams] = None,
              seed: Optional[int] = None, vote: str = 'all_activity',
              early_exit: Optional[EarlyExit] = None) -> InferenceResult:
        """
        Classify a batch with learning off (nothing in the model changes).

        Arguments as in :meth:`learn`; ``vote`` picks the readout (see :class:`Readout`);
        ``early_exit`` stops each sample once its class is decided (needs the readout, see
        :mod:`topspark_ros.core.topspark.early_exit`).
        """
        params = self.params if params is None else params
        source, steps = self._source(images, spikes, timesteps, params, seed)
        exit_rule = None
        if early_exit is not None:
            if self.readout is None:
                raise ValueError('early exit needs assigned labels (assign_labels first)')
            exit_rule = class_votes(self.readout.assignments, self.config.n_classes) + (
                early_exit.margin, early_exit.min_steps)
        with self._scaled_theta(params.theta_scale, learning=False):
            counts, ops, used = self._engine.infer(
                source, steps, self._constants(params), exit_rule)
        scores = predicted = None
        if self.readout is not None:
            scores = self.readout.scores(counts, vote)
            predicted = np.argmax(scores, axis=1).astype(np.int64)
        return InferenceResult(exc_spike_counts=counts, timesteps_used=used,
                               ops=EngineCounts.from_matrix(ops), scores=scores,
                               predicted=predicted)

    @property
    def n_classes(self) -> int:
        """Return the number of classes of the readout."""
        return self.config.n_classes

    def ann_ops(self) -> OpCounts:
        """
        Return the operation counts per input of the same network as an ANN.

        The dense input layer as a matrix-vector product (``n_inputs * N`` MACs) plus the
        readout (each neuron's activation weighted into its assigned class: ``N`` MACs).
        Lateral inhibition becomes the readout's arg-max, which is not counted.
        """
        n = self.config.n_neurons
        return OpCounts(macs=float(self.config.n_inputs * n + n))

    @property
    def input_spec(self) -> FrameSpec:
        """
        Return the input frame: a grayscale square of ``n_inputs`` pixels (28 x 28).

        For an event model, the model input size of its event encoding (one channel).
        """
        if self.event_encoding is not None:
            return FrameSpec(self.event_encoding.height, self.event_encoding.width, 1)
        side = math.isqrt(self.config.n_inputs)
        if side * side != self.config.n_inputs:
            raise ValueError(f'{self.config.n_inputs} inputs are not a square image')
        return FrameSpec(side, side, 1)

    def params_for_values(self, values) -> DynamicsParams:
        """Return the model's dynamics with ``values`` (name -> number) applied."""
        known = {f.name for f in fields(DynamicsParams)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f'unknown dynamics parameters: {", ".join(sorted(unknown))}')
        return self.params.replace(**{k: float(v) for k, v in values.items()})

    def assign_labels(self, images: Optional[np.ndarray], labels: np.ndarray, *,
                      spikes: Optional[SpikeEvents] = None, timesteps: Optional[int] = None,
                      params: Optional[DynamicsParams] = None,
                      seed: Optional[int] = None) -> Readout:
        """Set (and return) the readout from labelled samples, running inference on them."""
        result = self.infer(images, spikes=spikes, timesteps=timesteps, params=params, seed=seed)
        self.readout = assign_labels(result.exc_spike_counts, labels, self.config.n_classes)
        return self.readout

    def checkpoint_payload(self) -> tuple:
        """
        Return ``(meta, tensors)`` for :func:`topspark_ros.core.checkpoint.save_checkpoint`.

        ``meta`` holds the config and default params (and ``event_encoding`` for a model
        trained on events); ``tensors`` the numpy arrays ``weights``, ``theta`` and, when
        labels are assigned, ``class_rates`` and ``assignments``.
        """
        tensors = {'weights': self.weights, 'theta': self.theta}
        if self.readout is not None:
            tensors['class_rates'] = np.asarray(self.readout.class_rates, np.float64)
            tensors['assignments'] = np.asarray(self.readout.assignments, np.int64)
        meta = {'config': self.config.to_dict(), 'params': self.params.to_dict()}
        if self.event_encoding is not None:
            meta['event_encoding'] = self.event_encoding.to_dict()
        return meta, tensors

    @staticmethod
    def checkpoint_shapes(meta: dict) -> dict:
        """Return ``{tensor name: shape}`` a checkpoint with model metadata ``meta`` holds."""
        config = STDPConfig.from_dict(dict(meta['config']))
        n = config.n_neurons
        return {'weights': (config.n_inputs, n), 'theta': (n,),
                'class_rates': (n, config.n_classes), 'assignments': (n,)}

    @classmethod
    def from_checkpoint(cls, meta: dict, tensors: dict, device: str = 'cpu',
                        engine: Optional[str] = None) -> 'DiehlCookNetwork':
        """
        Rebuild a model from :meth:`checkpoint_payload` output (``ValueError`` if bad).

        Class assignments must lie in ``[-1, n_classes)`` (-1: a neuron that never fired).
        """
        config = STDPConfig.from_dict(dict(meta['config']))
        params = DynamicsParams.from_dict(dict(meta['params']))
        encoding = None
        if meta.get('event_encoding') is not None:
            from topspark_ros.core.events.encode import EventEncoding
            encoding = EventEncoding.from_dict(dict(meta['event_encoding']))
        missing = {'weights', 'theta'} - set(tensors)
        if missing:
            raise ValueError(f'missing tensors: {sorted(missing)}')
        readout = None
        if 'class_rates' in tensors or 'assignments' in tensors:
            rates = np.asarray(tensors.get('class_rates'))
            assignments = np.asarray(tensors.get('assignments'))
            if rates.shape != (config.n_neurons, config.n_classes) or \
                    assignments.shape != (config.n_neurons,):
                raise ValueError(f'readout tensors have shapes {rates.shape} and '
                                 f'{assignments.shape}, expected '
                                 f'({config.n_neurons}, {config.n_classes}) and '
                                 f'({config.n_neurons},)')
            if assignments.size and not (-1 <= assignments.min()
                                         and assignments.max() < config.n_classes):
                raise ValueError(f'class assignments must lie in [-1, {config.n_classes}), '
                                 f'got {assignments.min()}..{assignments.max()}')
            readout = Readout(class_rates=rates.astype(np.float64),
                              assignments=assignments.astype(np.int64))
        return cls(config, params, device=device, engine=engine, weights=tensors['weights'],
                   theta=tensors['theta'], readout=readout, event_encoding=encoding)

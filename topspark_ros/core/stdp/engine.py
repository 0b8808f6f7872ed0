"""
The event-driven numba engine of the Diehl & Cook network and the kernels' call constants.

:func:`simulation_constants` translates a configuration and dynamics into the constants the
kernels (:mod:`topspark_ros.core.stdp.kernels`) take; :class:`NumbaEngine` owns a model's
weights, adaptive thresholds and learning state and runs the kernels on them.
"""

from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
import math
from typing import Optional

import numpy as np

from topspark_ros.core.stdp import kernels
from topspark_ros.core.stdp.config import DynamicsParams, STDPConfig
from topspark_ros.core.stdp.kernels import SimulationConstants
from topspark_ros.core.stdp.normalise import ColumnStats
from topspark_ros.core.stdp.readout import class_scores
from topspark_ros.core.stdp.rng import gap_scales

TRACE_CUTOFF = 40.0
"""Traces are exactly 0 once ``(t - t_last) dt / tau`` exceeds this (``e^-40 ~ 4e-18``)."""


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
                               tab_post2=trace_table(config.tau_post2_ms, dt),
                               theta_scale=float(params.theta_scale))


@dataclass(frozen=True)
class PoissonInput:
    """
    Rate-coded input the engines draw themselves: ``log(1 - p)`` per input and a seed.

    ``log(1 - p)`` is given either as ``log_q`` or, for uint8 images, as their ``levels``
    and a ``table`` of the 256 values (the numba kernels look it up per sample: cheaper than
    a float64 array of the batch made in numpy).

    Attributes
    ----------
    log_q
        ``float64 [B, n_inputs]`` (see :func:`encoding.log_no_spike`), or None.
    seeds
        ``uint64 [B]`` SplitMix64 seeds.
    levels
        ``uint8 [B, n_inputs]`` (C-contiguous) when ``log_q`` is None.
    table
        ``float64 [256]``, ``log(1 - p)`` of each level, with ``levels``.

    """

    log_q: Optional[np.ndarray]
    seeds: np.ndarray
    levels: Optional[np.ndarray] = None
    table: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        """Check that exactly one form of ``log(1 - p)`` is given, levels as the kernels take."""
        if (self.log_q is None) == (self.levels is None) or \
                (self.levels is None) != (self.table is None):
            raise ValueError('give log_q, or levels with their table')
        if self.levels is not None:
            levels, table = self.levels, self.table
            if levels.dtype != np.uint8 or levels.ndim != 2 or \
                    not levels.flags.c_contiguous:
                raise ValueError('levels must be a C-contiguous uint8 [B, n_inputs] array')
            if table.dtype != np.float64 or table.shape != (256,):
                raise ValueError('the table of levels must be float64 [256]')

    @property
    def batch_size(self) -> int:
        """Return the number of samples."""
        return int((self.log_q if self.log_q is not None else self.levels).shape[0])

    def log_q_rows(self) -> np.ndarray:
        """Return ``log(1 - p)`` as ``float64 [B, n_inputs]`` (looked up for ``levels``)."""
        return self.log_q if self.log_q is not None else self.table[self.levels]


class Engine:
    """
    The interface of the network's engines, and what they share.

    An engine owns a model's weights ``w`` and adaptive thresholds ``th`` (in its own array
    type) and the state carried between learning samples. Subclasses (:class:`NumbaEngine`,
    :class:`~topspark_ros.core.stdp.torch_engine.TorchEngine`) implement the methods below
    that raise ``NotImplementedError``. ``source`` is a :class:`PoissonInput` or
    :class:`~topspark_ros.core.inputs.SpikeEvents` of ``B`` samples and ``timesteps``
    their ``T``; ``counts`` are ``int64 [B, N]`` excitatory spike counts and ``ops``
    ``int64 [B, kernels.N_OPS]`` operation counts.
    """

    def weights(self) -> np.ndarray:
        """Return a copy of the weights, ``float32 [n_inputs, N]``."""
        raise NotImplementedError

    def theta(self) -> np.ndarray:
        """Return a copy of the adaptive thresholds, ``float64 [N]`` (mV)."""
        raise NotImplementedError

    def reset_state(self) -> None:
        """Forget the dynamic state carried between learning samples ('rest' mode)."""
        raise NotImplementedError

    def dynamic_state(self) -> dict:
        """
        Return copies of the state carried between learning samples, ``{name: array}``.

        Empty before the first learning call. :meth:`restore` takes it back (this engine's
        own shapes; another engine's state is refused).
        """
        raise NotImplementedError

    def restore(self, weights: np.ndarray, theta: np.ndarray, dynamic: dict) -> None:
        """Set the weights, thresholds and :meth:`dynamic_state` (empty: none) saved before."""
        raise NotImplementedError

    def learn(self, source, timesteps: int, const: SimulationConstants) -> tuple:
        """Learn from the samples of ``source`` in order; return ``(counts, ops)``."""
        raise NotImplementedError

    def learn_frame(self, levels: np.ndarray, seeds: np.ndarray, table: np.ndarray,
                    timesteps: int, const: SimulationConstants) -> tuple:
        """
        :meth:`learn` of one uint8 frame: a robot learning on line from its camera.

        Arguments as in :meth:`infer_frame`. The same results as :meth:`learn`; an engine may
        skip the general path's objects (the numba engine does).
        """
        return self.learn(PoissonInput(None, seeds, levels, table), timesteps, const)

    def infer(self, source, timesteps: int, const: SimulationConstants,
              exit_rule: Optional[kernels.ExitRule] = None, vote: Optional[tuple] = None
              ) -> tuple:
        """
        Run the samples of ``source`` independently, learning off.

        With ``exit_rule`` each sample stops once its class is decided (see
        :func:`kernels.simulate`). With ``vote``, a readout's
        :attr:`~topspark_ros.core.stdp.readout.Readout.vote_tables`, the samples' class
        scores are returned too. Returns ``(counts, ops, steps_used int64 [B], scores)``,
        ``scores`` ``float64 [B, C]`` or None without ``vote``.
        """
        raise NotImplementedError

    def infer_frame(self, levels: np.ndarray, seeds: np.ndarray, table: np.ndarray,
                    timesteps: int, const: SimulationConstants,
                    vote: Optional[tuple] = None) -> tuple:
        """
        :meth:`infer` of one uint8 frame, no early exit: a camera stream's call.

        ``levels`` ``uint8 [1, n_inputs]`` (C-contiguous), ``seeds`` ``uint64 [1]`` and
        ``table`` as in :class:`PoissonInput`, which the caller has checked. The same results
        as :meth:`infer`; an engine may skip the general path's objects (the numba engine
        does: they are a fifth of the call at small ``T``).
        """
        return self.infer(PoissonInput(None, seeds, levels, table), timesteps, const, None,
                          vote)

    @staticmethod
    def vote_scores(counts: np.ndarray, vote: Optional[tuple]) -> Optional[np.ndarray]:
        """Return the ``all_activity`` scores of ``counts`` for ``vote`` (None without)."""
        if vote is None:
            return None
        scores = np.empty((counts.shape[0], vote[1].shape[0]))
        class_scores(counts, *vote, scores)
        return scores

    def scaled_theta(self, scale: float, learning: bool):
        """
        Hold ``scale * theta`` in ``th`` for one call (a context manager).

        See ``theta_scale`` in :class:`~topspark_ros.core.stdp.config.DynamicsParams`: the
        thresholds are scaled where they are compared, never where they are stored. After a
        learning call the (changed) thresholds are divided back by ``scale``; after
        inference the stored array is put back untouched. At scale 1 (most calls) a shared
        no-op context: a generator's context manager cost 1 us of a 20 us learning call.
        """
        return _UNSCALED if scale == 1.0 else self._scaled_theta(scale, learning)

    @contextmanager
    def _scaled_theta(self, scale: float, learning: bool):
        stored = self.th
        self.th = stored * scale
        try:
            yield
        finally:
            self.th = self.th / scale if learning else stored


_UNSCALED = nullcontext()
"""What :meth:`Engine.scaled_theta` returns at scale 1 (stateless: shared by every call)."""

# Empty kernel arguments (no events), made once: never written.
_NO_LOG_Q = np.zeros((0, 0), np.float64)
_NO_SEEDS = np.zeros(0, np.uint64)
_NO_PIXELS = np.zeros(0, np.int32)
_NO_ROWS = np.zeros((0, 1), np.int64)
_NO_LEVELS = np.zeros((0, 0), np.uint8)
_NO_TABLE = np.zeros(0, np.float64)
_NO_VOTE = (np.zeros(0, np.int64), np.zeros(0, np.float64))


def _restored(saved: np.ndarray, like, name: str) -> np.ndarray:
    """Return ``saved`` with ``like``'s shape and dtype (ValueError for another shape)."""
    saved = np.asarray(saved)
    if tuple(saved.shape) != tuple(like.shape):
        raise ValueError(f'a saved {name} of shape {tuple(saved.shape)} does not fit this '
                         f"model's {tuple(like.shape)}")
    return saved.astype(like.dtype if isinstance(like, np.ndarray) else saved.dtype,
                        copy=False)


class _CompiledKernel:
    """
    A numba kernel called through the compiled code of its first call's argument types.

    numba's dispatcher types every argument of every call before it picks the compiled code:
    about 30 ns an argument, 0.4 us of the 20 arguments of a one-frame call (5 % of it at
    ``T`` = 1). The compiled code's own entry point unboxes the arguments as the types it was
    compiled for and checks no more than an array's item size: an array of another dtype of
    the same size is read as the wrong one, a float passed for an integer is truncated, and an
    array with more dimensions than compiled for overwrites memory. So a caller must pass
    arguments of the same types at every call (dtypes, numbers of dimensions, layouts); only
    the write flag of an array the kernel only reads may differ, which changes no code. The
    first call goes through the dispatcher (compiling the kernel, or loading it from numba's
    cache) and keeps the entry point of the types it was given. Without the JIT
    (``NUMBA_DISABLE_JIT=1``) the kernel is a Python function, called as it is.
    """

    def __init__(self, kernel) -> None:
        self._kernel = kernel
        self.call = self._first_call
        """Run the kernel (it returns nothing: it writes its outputs)."""

    def _first_call(self, *args) -> None:
        self._kernel(*args)
        overloads = getattr(self._kernel, 'overloads', None)
        if overloads is None:  # not compiled (NUMBA_DISABLE_JIT)
            self.call = self._kernel
            return
        signature = tuple(self._kernel.typeof_pyval(a) for a in args)
        self.call = overloads[signature].entry_point


_FRAME_KERNEL = _CompiledKernel(kernels.infer_frame)
"""The one-frame kernel, called with the types :meth:`NumbaEngine.infer_frame` gives it."""


class NumbaEngine(Engine):
    """
    The event-driven CPU engine (:mod:`topspark_ros.core.stdp.kernels`).

    Besides the weights and thresholds it owns the :class:`~.kernels.EngineState` carried
    between learning samples ('rest' mode) and the
    :class:`~topspark_ros.core.stdp.normalise.ColumnStats` of the weight columns.
    """

    def __init__(self, weights: np.ndarray, theta: np.ndarray) -> None:
        """Copy ``weights [n_inputs, N]`` (float32) and ``theta [N]`` (float64)."""
        self.w = np.array(weights, dtype=np.float32, order='C')
        self.th = np.array(theta, dtype=np.float64)
        self._state = None
        # Column normalisation of the columns STDP wrote only (all marked at first).
        self._columns = ColumnStats.all_changed(self.w.shape[1])
        self._scales = (None, None)  # (table, its gap scales) of the last frame

    @property
    def state(self) -> Optional[kernels.EngineState]:
        """Return the state the next learning sample starts from (None: at rest)."""
        return self._state

    def weights(self) -> np.ndarray:
        """Return a copy of the weights, ``float32 [n_inputs, N]``."""
        return self.w.copy()

    def theta(self) -> np.ndarray:
        """Return a copy of the adaptive thresholds, ``float64 [N]`` (mV)."""
        return self.th.copy()

    def reset_state(self) -> None:
        """Forget the dynamic state: the next learning call starts from rest (its own)."""
        self._state = None

    def dynamic_state(self) -> dict:
        """Return copies of the :class:`kernels.EngineState` learning carries (see there)."""
        if self._state is None:
            return {}
        return {name: value.copy() for name, value in self._state._asdict().items()}

    def restore(self, weights: np.ndarray, theta: np.ndarray, dynamic: dict) -> None:
        """Set what :meth:`weights`, :meth:`theta` and :meth:`dynamic_state` returned."""
        w, th = _restored(weights, self.w, 'weights'), _restored(theta, self.th, 'theta')
        state = None
        if dynamic:
            fields = kernels.EngineState._fields
            if set(dynamic) != set(fields):
                raise ValueError(f'a learning state of {sorted(dynamic)}, not the numba '
                                 f"engine's {sorted(fields)}")
            like = kernels.empty_state(*self.w.shape)
            state = kernels.EngineState(*(_restored(dynamic[name], getattr(like, name), name)
                                          for name in fields))
        self.w[...] = w  # everything checked: now changed
        self.th = th.copy()
        self._state = state
        self._columns = ColumnStats.all_changed(self.w.shape[1])  # a cache: recomputed

    @staticmethod
    def _inputs(source) -> kernels.BatchInput:
        """Return the kernels' input of ``source``."""
        if isinstance(source, PoissonInput):
            if source.levels is not None:
                return kernels.BatchInput(_NO_LOG_Q, source.seeds, _NO_PIXELS, _NO_ROWS,
                                          source.levels, source.table)
            return kernels.BatchInput(source.log_q, source.seeds, _NO_PIXELS, _NO_ROWS,
                                      _NO_LEVELS, _NO_TABLE)
        return kernels.BatchInput(_NO_LOG_Q, _NO_SEEDS, source.pixels, source.row_ptr,
                                  _NO_LEVELS, _NO_TABLE)

    def learn(self, source, timesteps: int, const: SimulationConstants) -> tuple:
        """Learn from the samples of ``source`` in order; return ``(counts, ops)``."""
        n = self.w.shape[1]
        counts = np.zeros((source.batch_size, n), np.int64)
        ops = np.zeros((source.batch_size, kernels.N_OPS), np.int64)
        state = self._learning_state(const)
        with self.scaled_theta(const.theta_scale, learning=True):
            kernels.learn_batch(self.w, self.th, state, self._inputs(source), timesteps,
                                const, self._columns, counts, ops)
        return counts, ops

    def learn_frame(self, levels: np.ndarray, seeds: np.ndarray, table: np.ndarray,
                    timesteps: int, const: SimulationConstants) -> tuple:
        """Learn from one uint8 frame (see :meth:`Engine.learn_frame`); ``(counts, ops)``."""
        counts = np.zeros((1, self.w.shape[1]), np.int64)
        ops = np.zeros((1, kernels.N_OPS), np.int64)
        state = self._learning_state(const)
        with self.scaled_theta(const.theta_scale, learning=True):
            kernels.learn_frame(self.w, self.th, *state, levels, table, seeds, timesteps,
                                *const, *self._columns, counts, ops)
        return counts, ops

    def _learning_state(self, const: SimulationConstants) -> kernels.EngineState:
        """Return the state the next learning sample starts from (made at rest at first)."""
        if self._state is None:
            self._state = kernels.empty_state(*self.w.shape)
            kernels.reset_state(self._state, const.par)
        return self._state

    def infer(self, source, timesteps: int, const: SimulationConstants,
              exit_rule: Optional[kernels.ExitRule] = None, vote: Optional[tuple] = None
              ) -> tuple:
        """
        Run the samples of ``source`` independently, learning off (see :meth:`Engine.infer`).

        One sample runs in this thread (:func:`kernels.infer_serial`, scores included), a
        batch in parallel (:func:`kernels.infer_batch`).
        """
        batch = source.batch_size
        exit_rule = kernels.NO_EXIT if exit_rule is None else exit_rule
        inputs = self._inputs(source)
        if batch < 2:
            return self._infer_serial(inputs, batch, timesteps, const, exit_rule, vote)
        counts = np.zeros((batch, self.w.shape[1]), np.int64)
        ops = np.zeros((batch, kernels.N_OPS), np.int64)
        steps_used = np.zeros(batch, np.int64)
        kernels.infer_batch(self.w, self._theta_compared(const), inputs, timesteps, const,
                            exit_rule, counts, ops, steps_used)
        return counts, ops, steps_used, self.vote_scores(counts, vote)

    def infer_frame(self, levels: np.ndarray, seeds: np.ndarray, table: np.ndarray,
                    timesteps: int, const: SimulationConstants,
                    vote: Optional[tuple] = None) -> tuple:
        """
        Run one uint8 frame in this thread (see :meth:`Engine.infer_frame`).

        The kernel is called through its compiled code (:class:`_CompiledKernel`): every
        argument has the same type at every call (the caller checked ``levels``; this engine
        and the network make the rest).
        """
        counts, ops, steps_used, bins, divisors, scores = self._serial_outputs(1, vote)
        last_table, scales = self._scales  # one read: another thread may replace the pair
        if table is not last_table:  # the network keeps a table per input rate
            scales = gap_scales(table)
            self._scales = (table, scales)
        _FRAME_KERNEL.call(self.w, self._theta_compared(const), levels, table, scales, seeds,
                           timesteps, *const, counts, ops, steps_used, bins, divisors, scores)
        return counts, ops, steps_used, None if vote is None else scores

    def _serial_outputs(self, batch: int, vote: Optional[tuple]) -> tuple:
        """
        Return what the serial kernels write for ``batch`` samples and read for the vote.

        ``(counts, ops, steps_used, bins, divisors, scores)``: zeroed counters, the vote's
        tables (empty without one) and its ``scores`` (0 rows without one).
        """
        bins, divisors = _NO_VOTE if vote is None else vote
        return (np.zeros((batch, self.w.shape[1]), np.int64),
                np.zeros((batch, kernels.N_OPS), np.int64), np.zeros(batch, np.int64),
                bins, divisors, np.empty((0 if vote is None else batch, divisors.shape[0])))

    def _theta_compared(self, const: SimulationConstants) -> np.ndarray:
        """Return the thresholds as inference compares them (see :meth:`scaled_theta`)."""
        # Scaled where compared; inference leaves the stored array alone.
        return self.th if const.theta_scale == 1.0 else self.th * const.theta_scale

    def _infer_serial(self, inputs: tuple, batch: int, timesteps: int,
                      const: SimulationConstants, exit_rule: kernels.ExitRule,
                      vote: Optional[tuple]) -> tuple:
        """Up to one sample (a camera stream): one call in this thread, the vote included."""
        counts, ops, steps_used, bins, divisors, scores = self._serial_outputs(batch, vote)
        kernels.infer_serial(self.w, self._theta_compared(const), *inputs, timesteps, *const,
                             *exit_rule, counts, ops, steps_used, bins, divisors, scores)
        return counts, ops, steps_used, None if vote is None else scores

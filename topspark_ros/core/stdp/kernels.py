"""
Event-driven numba kernels of the Diehl & Cook (2015) network (the CPU engine).

The dynamics are defined in :mod:`topspark_ros.core.stdp`; this module is their fast, sparse
implementation. Per step it touches only what spikes touch:

* input current: the weight rows of the input pixels that spiked (CSR event lists), added
  in float32, eight rows per pass (:func:`_input_current`). This is the one place where the
  engine rounds differently from the float64 definition: about 1e-7 relative to the current,
  below 1e-4 mV on the membrane over a sample. Everything else is float64 as defined;
* membrane update: one branch-free pass over the neurons that vectorises
  (:func:`_integrate`); refractoriness is kept as the step at which it ends;
* depression: one weight row per input spike, restricted to the excitatory neurons whose
  post-synaptic trace is non-zero (the "active" list);
* potentiation: one weight column per excitatory spike (none for a first spike under the
  'dc' rule, whose factor is 0);
* plasticity count (``OP_PLASTICITY``): the weights these two updates write, i.e. input spikes
  times active neurons plus ``n_inputs`` per potentiating spike;
* traces: never decayed step by step. Every trace here is a nearest-spike trace (set to 1 on a
  spike), so its value is ``table[t - t_last]`` with ``table[k] = exp(-k dt / tau)``, looked up
  from the step of the last spike. Ages past the table (``exp(-40)`` and beyond) read as 0.

Poisson input spikes are drawn in the kernels from a seed per sample
(:func:`.rng.poisson_sample`); after every learning sample the weight columns are normalised
(:mod:`.normalise`).

The kernels take a few typed arguments: the weights ``w`` and thresholds ``theta`` they
update, a sample's :class:`EngineState`, the input (:class:`BatchInput`, or one sample's
events), the call's constants (:class:`SimulationConstants`:
scalar parameters in two vectors, ``par`` float64 and ``ipar`` int64, indexed by the ``P_*``
and ``I_*`` constants, which keeps one compiled signature per kernel, and the trace tables),
an :class:`ExitRule` and the output counters (``counts``, ``ops``). Inside numba these
tuples cost nothing; a call from Python pays about 1 us of type dispatch per NamedTuple
argument (numba 0.68), a few us per batch whatever its size. The kernel of one sample,
:func:`infer_serial`, therefore takes them flattened.

numba caches each kernel compiled with the code of the :mod:`.rng`, :mod:`.normalise` and
:mod:`.readout` functions it calls, but checks only this file for changes: after editing one
of those, delete this package's ``__pycache__`` (or touch this file) before measuring or
testing.

Fixed per-sample cost (issue 16): the ziggurat tables are made once (:data:`.rng.ZIGGURAT`);
no array is rebound inside a per-input loop (numba then reference-counts on every pass); one
sample runs without a parallel region (:func:`infer_serial`); after a learning sample only the
columns STDP wrote are normalised (:func:`.normalise.normalise_changed_columns`, O(n_inputs)
per column).
"""

from typing import NamedTuple

import numba
import numpy as np

from topspark_ros.core.stdp.normalise import ColumnStats, normalise_changed_columns
from topspark_ros.core.stdp.readout import class_scores
from topspark_ros.core.stdp.rng import first_gaps, first_gaps_of_levels, gap_scales
from topspark_ros.core.stdp.rng import poisson_draw, ZIGGURAT

# Indices into the float64 parameter vector ``par``.
P_V_REST = 0
P_V_RESET = 1
P_V_THRESH = 2
P_DECAY_V = 3
P_THETA_PLUS = 4
P_DECAY_THETA = 5
P_W_INH = 6
P_W_EXC_INH = 7
P_NU_PRE = 8
P_NU_POST = 9
P_X_TAR = 10
P_W_MAX = 11
P_INH_REST = 12
P_INH_RESET = 13
P_INH_THRESH = 14
P_INH_DECAY = 15
N_PAR = 16

# Indices into the int64 parameter vector ``ipar``.
I_REFRAC = 0
I_INH_REFRAC = 1
I_POPULATIONS = 2
I_TRIPLET = 3
I_ONE_SPIKE = 4
I_REST_STEPS = 5
N_IPAR = 6

# Columns of the per-sample operation-count matrix ``ops [B, N_OPS]``.
OP_INPUT_SPIKES = 0
OP_EXC_SPIKES = 1
OP_INH_SPIKES = 2
OP_SYN_INPUT = 3
OP_SYN_INHIBITION = 4
OP_NEURON_UPDATES = 5
OP_PLASTICITY = 6
N_OPS = 7

NEVER = -(1 << 40)

EXIT_TOLERANCE = 1e-9
"""
Early exit: a lead within this of the margin counts as reaching it.

The evidence is a float sum of the neurons' weights, in spike order here and in matrix order
in the torch engine: a lead of exactly the margin came out 1e-16 below it in one of them, and
the engines stopped a sample at different steps (a property test's example).
"""
"""``t_last`` of a neuron that has not spiked (its traces read 0)."""


class SimulationConstants(NamedTuple):
    """
    The constants of one call in the kernels' form (:func:`.engine.simulation_constants`).

    Attributes
    ----------
    par
        ``float64 [N_PAR]``, indexed by ``P_*``.
    ipar
        ``int64 [N_IPAR]``, indexed by ``I_*``.
    norm
        target column sum.
    tab_pre, tab_post1, tab_post2
        ``float64`` trace tables ``exp(-k dt / tau)`` (:func:`.engine.trace_table`).
    theta_scale
        factor the engine scales the adaptive thresholds by for the call
        (``DynamicsParams.theta_scale``; ``par[P_THETA_PLUS]`` is already scaled).

    """

    par: np.ndarray
    ipar: np.ndarray
    norm: float
    tab_pre: np.ndarray
    tab_post1: np.ndarray
    tab_post2: np.ndarray
    theta_scale: float


class EngineState(NamedTuple):
    """
    Dynamic state of one sample in the numba engine (what 'rest' mode carries between samples).

    At rest (:func:`reset_state`): potentials at their resting values (``v_rest_mv``,
    ``inh_v_rest_mv``), nothing refractory, no traces (``last_pre``, ``last_post`` at
    :data:`NEVER`), no spike in the previous step. Inference resets only the dynamics
    (:func:`reset_dynamics`): its traces hold whatever was in memory, so an inference state
    must never be learnt from.

    Attributes
    ----------
    v
        ``float64 [N]`` excitatory membrane potentials (mV).
    v_inh
        ``float64 [N]`` inhibitory membrane potentials (mV; 'populations' only).
    refr
        ``int64 [N]`` steps of excitatory refractoriness left.
    refr_inh
        ``int64 [N]`` steps of inhibitory refractoriness left.
    last_pre
        ``int64 [n_inputs]`` step of each input's last spike, relative to step 0 of the next
        call (so <= -1), or :data:`NEVER` when its trace has decayed past the trace tables.
    last_post
        ``int64 [N]`` the same for the excitatory neurons.
    prev_exc
        ``int64 [N]`` 1 where an excitatory neuron spiked in the last step, else 0.
    prev_inh
        ``int64 [N]`` 1 where an inhibitory neuron spiked in the last step, else 0.

    """

    v: np.ndarray
    v_inh: np.ndarray
    refr: np.ndarray
    refr_inh: np.ndarray
    last_pre: np.ndarray
    last_post: np.ndarray
    prev_exc: np.ndarray
    prev_inh: np.ndarray


class BatchInput(NamedTuple):
    """
    Input spikes of a batch of ``B`` samples: Poisson trains to draw, or given events.

    Attributes
    ----------
    log_q
        ``float64 [B, n_inputs]``, ``log(1 - p)`` per input (see
        :func:`~topspark_ros.core.stdp.rng.poisson_sample`); 0 rows for given events.
    seeds
        ``uint64 [B]`` SplitMix64 seeds of the Poisson trains (empty for given events).
    pixels
        ``int32 [E]`` given events (empty for Poisson input).
    row_ptr
        ``int64 [B, T + 1]`` offsets into ``pixels`` of the events of each sample and step
        (as :class:`~topspark_ros.core.inputs.SpikeEvents`; 0 rows for Poisson input).
    levels
        ``uint8 [B, n_inputs]``: Poisson input given as the levels of uint8 images, whose
        ``log(1 - p)`` is ``table[level]`` (looked up per sample in the kernels, instead of a
        float64 ``log_q`` made in numpy); 0 rows otherwise.
    table
        ``float64 [256]``, ``log(1 - p)`` per level (empty without ``levels``).

    """

    log_q: np.ndarray
    seeds: np.ndarray
    pixels: np.ndarray
    row_ptr: np.ndarray
    levels: np.ndarray
    table: np.ndarray


@numba.njit(cache=True, nogil=True)
def _first_gaps_of(log_q, levels, table, scales, b, active, work):
    """
    Prepare sample ``b``'s trains (:func:`.rng.poisson_draw`), from ``log_q`` or levels.

    ``scales``: :func:`.rng.gap_scales` of ``table`` (with levels). Returns the number of
    inputs that spike at all.
    """
    if levels.shape[0] > 0:
        return first_gaps_of_levels(levels[b], table, scales, active, work)
    return first_gaps(log_q[b], active, work)


class ExitRule(NamedTuple):
    """
    Early exit of inference (see :mod:`topspark_ros.core.topspark.early_exit`).

    Attributes
    ----------
    neuron_class
        ``int64 [N]`` class each excitatory neuron's spikes are evidence for (-1: none);
        empty: no early exit.
    evidence
        ``float64 [N]`` evidence one spike of the neuron adds to its class.
    margin
        lead of the best class over the second that stops a sample.
    min_steps
        steps before which no sample stops.

    """

    neuron_class: np.ndarray
    evidence: np.ndarray
    margin: float
    min_steps: int


NO_EXIT = ExitRule(np.zeros(0, np.int64), np.zeros(0, np.float64), 0.0, 0)
"""The :class:`ExitRule` of no early exit (its arrays are empty and never written)."""


@numba.njit(cache=True, nogil=True)
def _trace(table, age):
    """Return a nearest-spike trace ``table[age]`` (0 past the table)."""
    if age < table.shape[0]:
        return table[age]
    return 0.0


@numba.njit(cache=True, nogil=True)
def empty_state(n_inputs, n_neurons):
    """Return an :class:`EngineState` for ``n_inputs`` inputs and ``n_neurons`` neurons, unset."""
    # Three allocations, not eight (about 50 ns each, a fixed cost of every sample).
    floats = np.empty((2, n_neurons), np.float64)
    ints = np.empty((5, n_neurons), np.int64)
    return EngineState(floats[0], floats[1], ints[0], ints[1], np.empty(n_inputs, np.int64),
                       ints[2], ints[3], ints[4])


@numba.njit(cache=True, nogil=True)
def reset_state(state, par):
    """Put one sample's :class:`EngineState` at rest (see there) for the parameters ``par``."""
    reset_dynamics(state, par)
    state.last_pre[:] = NEVER
    state.last_post[:] = NEVER


@numba.njit(cache=True, nogil=True)
def reset_dynamics(state, par):
    """
    :func:`reset_state` but the STDP traces, which :func:`simulate` without learning ignores.

    What inference resets before each sample: the traces' ``n_inputs + N`` stores saved
    (inference neither reads nor keeps them, and its state is thrown away after the sample).
    """
    state.v[:] = par[P_V_REST]
    state.v_inh[:] = par[P_INH_REST]
    state.refr[:] = 0
    state.refr_inh[:] = 0
    state.prev_exc[:] = 0
    state.prev_inh[:] = 0


@numba.njit(cache=True, nogil=True)
def _input_current(w, pixels, start, stop, current):
    """
    Set ``current [N]`` (float32) to the sum of the rows ``w[pixels[start:stop]]``.

    The rows are added in float32, eight (then four, then one) at a time as a pairwise tree
    into the running sum, so each pass over ``current`` carries up to eight rows (AVX2
    vectorises the pass 8-wide). The order is fixed, so the result is deterministic.
    """
    n = current.shape[0]
    current[:] = 0.0
    e = start
    while e + 8 <= stop:
        r0 = w[pixels[e]]
        r1 = w[pixels[e + 1]]
        r2 = w[pixels[e + 2]]
        r3 = w[pixels[e + 3]]
        r4 = w[pixels[e + 4]]
        r5 = w[pixels[e + 5]]
        r6 = w[pixels[e + 6]]
        r7 = w[pixels[e + 7]]
        for j in range(n):
            current[j] += (((r0[j] + r1[j]) + (r2[j] + r3[j]))
                           + ((r4[j] + r5[j]) + (r6[j] + r7[j])))
        e += 8
    if e + 4 <= stop:
        r0 = w[pixels[e]]
        r1 = w[pixels[e + 1]]
        r2 = w[pixels[e + 2]]
        r3 = w[pixels[e + 3]]
        for j in range(n):
            current[j] += (r0[j] + r1[j]) + (r2[j] + r3[j])
        e += 4
    while e < stop:
        r0 = w[pixels[e]]
        for j in range(n):
            current[j] += r0[j]
        e += 1


@numba.njit(cache=True, nogil=True)
def _integrate(v, end, current, theta, t, v_rest, decay_v, v_thresh, inh_all):
    """
    Leak every excitatory neuron and integrate ``current - inh_all`` unless refractory.

    ``v_j <- v_rest + (v_j - v_rest) decay_v (+ current_j - inh_all if end_j <= t)``. Return
    the number of non-refractory neurons at or over threshold ``v_thresh + theta_j``. Written
    without conditional loads or stores so that it vectorises (masked loads and stores are
    slow on some CPUs): a refractory neuron adds 0, which is exact.
    """
    n_over = 0
    for j in range(v.shape[0]):
        free = end[j] <= t
        drive = np.float64(current[j]) - inh_all
        vj = v_rest + (v[j] - v_rest) * decay_v + (drive if free else 0.0)
        v[j] = vj
        n_over += (vj >= v_thresh + theta[j]) & free
    return n_over


@numba.njit(cache=True, nogil=True)
def simulate(w, theta, state, pixels, row_ptr, learning, const, exit_rule, counts, ops):
    """
    Advance one sample by ``n_steps`` steps (see :mod:`topspark_ros.core.stdp` for equations).

    ``w`` is ``float32 [n_inputs, N]`` and ``theta`` ``float64 [N]`` (mV); ``state`` is this
    sample's :class:`EngineState`; ``pixels`` and ``row_ptr [n_steps + 1]`` give the input
    events of each step; ``const`` is the call's
    :class:`SimulationConstants`; ``counts [N]`` and
    ``ops [N_OPS]`` are accumulated. With ``learning`` the weights and ``theta`` change.
    Spike times in ``last_pre``/``last_post`` are relative to step 0 of this call and are
    shifted by the steps simulated before returning; without ``learning`` the traces are
    neither read nor written (inference starts each sample from :func:`reset_dynamics` and
    drops its state after it: about 0.5 us of a sample's fixed cost at N=400).

    Early exit (:class:`ExitRule`, when ``neuron_class`` is not empty): every excitatory spike
    of neuron ``j`` adds ``evidence[j]`` to the evidence of class ``neuron_class[j]`` (-1:
    none); after step ``t`` (``t + 1 >= min_steps``) the sample stops once the best class
    leads the second by at least ``margin``. Returns the number of steps simulated.
    """
    v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh = state
    par = const.par
    ipar = const.ipar
    tab_pre = const.tab_pre
    tab_post1 = const.tab_post1
    tab_post2 = const.tab_post2
    exit_class, exit_weight, exit_margin, exit_min_steps = exit_rule
    n_steps = row_ptr.shape[0] - 1
    n_in, n = w.shape
    v_rest = par[P_V_REST]
    v_reset = par[P_V_RESET]
    v_thresh = par[P_V_THRESH]
    decay_v = par[P_DECAY_V]
    theta_plus = par[P_THETA_PLUS]
    decay_theta = par[P_DECAY_THETA]
    w_inh = par[P_W_INH]
    w_exc_inh = par[P_W_EXC_INH]
    nu_pre = par[P_NU_PRE]
    nu_post = par[P_NU_POST]
    x_tar = par[P_X_TAR]
    w_max = par[P_W_MAX]
    inh_rest = par[P_INH_REST]
    inh_reset = par[P_INH_RESET]
    inh_thresh = par[P_INH_THRESH]
    inh_decay = par[P_INH_DECAY]
    refrac = ipar[I_REFRAC]
    inh_refrac = ipar[I_INH_REFRAC]
    populations = ipar[I_POPULATIONS] != 0
    triplet = ipar[I_TRIPLET] != 0
    one_spike = ipar[I_ONE_SPIKE] != 0
    len_post1 = tab_post1.shape[0]

    early_exit = exit_class.shape[0] > 0
    n_cls = 0
    for j in range(exit_class.shape[0]):
        if exit_class[j] + 1 > n_cls:
            n_cls = exit_class[j] + 1
    evidence = np.zeros(max(n_cls, 1), np.float64)
    steps_done = n_steps
    # Scratch in a few allocations (each costs about 50 ns, a fixed cost of every sample).
    current = np.empty(n, np.float32)
    floats = np.empty((2, n), np.float64)
    saved = floats[0]
    post2_before = floats[1]
    ints = np.empty((7, n), np.int64)
    # Refractory while t < end[j] (steps of this call); refr is the count of steps left.
    end = ints[0]
    for j in range(n):
        end[j] = refr[j]
    spikes = ints[1]
    # Neurons whose post trace y1 may be non-zero: listed while its age at the current step is
    # at most the table's length (the list is trimmed to ages below it before depression).
    # One invariant at every step, so a neuron that spikes is appended only when it is not
    # listed (its age is past the table), never twice.
    active = ints[2]
    n_active = 0
    for j in range(n if learning else 0):
        if -last_post[j] <= len_post1:
            active[n_active] = j
            n_active += 1
    # Spike lists of the previous step and the inhibitory neurons away from rest.
    exc_prev = ints[3]
    inh_prev = ints[4]
    inh_new = ints[5]
    inh_busy = ints[6]
    inh_listed = np.zeros(n, np.bool_)
    k_exc = 0
    k_inh = 0
    n_busy = 0
    for j in range(n):
        if prev_exc[j]:
            exc_prev[k_exc] = j
            k_exc += 1
        if prev_inh[j]:
            inh_prev[k_inh] = j
            k_inh += 1
        if v_inh[j] != inh_rest or refr_inh[j] > 0:
            inh_busy[n_busy] = j
            inh_listed[j] = True
            n_busy += 1

    for t in range(n_steps):
        # 1. Input current: rows of the input pixels that spiked at t.
        start = row_ptr[t]
        stop = row_ptr[t + 1]
        _input_current(w, pixels, start, stop, current)
        n_pre = stop - start

        # 2. Inhibitory layer, driven by the previous step's excitatory spikes. A neuron at
        # rest without input stays exactly at rest, so only the busy ones are updated.
        n_inh_new = 0
        if populations:
            for s in range(k_exc):
                j = exc_prev[s]
                if not inh_listed[j]:
                    inh_listed[j] = True
                    inh_busy[n_busy] = j
                    n_busy += 1
            kept = 0
            for a in range(n_busy):
                j = inh_busy[a]
                vi = inh_rest + (v_inh[j] - inh_rest) * inh_decay
                if refr_inh[j] > 0:
                    refr_inh[j] -= 1
                else:
                    vi += w_exc_inh * prev_exc[j]
                    if vi >= inh_thresh:
                        vi = inh_reset
                        refr_inh[j] = inh_refrac
                        inh_new[n_inh_new] = j
                        n_inh_new += 1
                v_inh[j] = vi
                if vi != inh_rest or refr_inh[j] > 0:
                    inh_busy[kept] = j
                    kept += 1
                else:
                    inh_listed[j] = False
            n_busy = kept
            ops[OP_INH_SPIKES] += n_inh_new
            ops[OP_SYN_INHIBITION] += k_exc + k_inh * (n - 1)
            ops[OP_NEURON_UPDATES] += n
            source_list = inh_prev
            k_source = k_inh
        else:
            ops[OP_SYN_INHIBITION] += k_exc * (n - 1)
            source_list = exc_prev
            k_source = k_exc

        # 3. Excitatory neurons: leak, integrate input and inhibition, threshold.
        if learning:
            for j in range(n):
                theta[j] *= decay_theta
        # Leak and integrate (input and lateral inhibition w_inh * (k_source - s_j)) all
        # neurons as if none were a source, then redo the (few) sources exactly.
        inh_all = w_inh * k_source
        for s in range(k_source):
            saved[s] = v[source_list[s]]
        n_over = _integrate(v, end, current, theta, t, v_rest, decay_v, v_thresh, inh_all)
        inh_self = w_inh * (k_source - 1)
        for s in range(k_source):
            j = source_list[s]
            vj = v_rest + (saved[s] - v_rest) * decay_v
            if end[j] <= t:
                vj += np.float64(current[j]) - inh_self
            v[j] = vj
        n_cross = 0
        best = -1
        best_over = 0.0
        if n_over > 0 or k_source > 0:
            for j in range(n):
                if end[j] <= t:
                    over = v[j] - (v_thresh + theta[j])
                    if over >= 0.0:
                        spikes[n_cross] = j
                        n_cross += 1
                        if best < 0 or over > best_over:
                            best = j
                            best_over = over
        if one_spike and n_cross > 1:
            spikes[0] = best
            n_cross = 1

        # Swap in this step's spikes as the "previous" ones of the next step.
        for s in range(k_exc):
            prev_exc[exc_prev[s]] = 0
        for s in range(n_cross):
            j = spikes[s]
            v[j] = v_reset
            end[j] = t + 1 + refrac
            prev_exc[j] = 1
            exc_prev[s] = j
            counts[j] += 1
            if learning:
                theta[j] += theta_plus
        k_exc = n_cross
        if populations:
            for s in range(k_inh):
                prev_inh[inh_prev[s]] = 0
            for s in range(n_inh_new):
                prev_inh[inh_new[s]] = 1
                inh_prev[s] = inh_new[s]
            k_inh = n_inh_new
        ops[OP_INPUT_SPIKES] += n_pre
        ops[OP_EXC_SPIKES] += n_cross
        ops[OP_SYN_INPUT] += n_pre * n
        ops[OP_NEURON_UPDATES] += n
        if early_exit:
            for s in range(n_cross):
                c = exit_class[spikes[s]]
                if c >= 0:
                    evidence[c] += exit_weight[spikes[s]]
            if t + 1 >= exit_min_steps and n_cls > 1:
                first = -1.0
                second = -1.0
                for c in range(n_cls):
                    if evidence[c] > first:
                        second = first
                        first = evidence[c]
                    elif evidence[c] > second:
                        second = evidence[c]
                if first - second >= exit_margin - EXIT_TOLERANCE and first > 0.0:
                    steps_done = t + 1
                    break
        if not learning:
            continue

        # 4. STDP on the input weights (traces include this step's spikes).
        for e in range(start, stop):
            last_pre[pixels[e]] = t
        for s in range(n_cross):
            j = spikes[s]
            age = t - last_post[j]
            post2_before[j] = _trace(tab_post2, age)
            if age > len_post1:  # not listed (see the invariant above)
                active[n_active] = j
                n_active += 1
            last_post[j] = t
        kept = 0
        for a in range(n_active):
            j = active[a]
            if t - last_post[j] < len_post1:
                active[kept] = j
                kept += 1
        n_active = kept
        for e in range(start, stop):
            row = pixels[e]
            for a in range(n_active):
                j = active[a]
                wn = np.float64(w[row, j]) - nu_pre * tab_post1[t - last_post[j]]
                w[row, j] = wn if wn > 0.0 else 0.0
        # Weight updates applied: depression, a weight per input spike and neuron with a
        # non-zero post trace (the others would change by 0); potentiation, the column of
        # n_in weights per excitatory spike whose factor is non-zero ('dc': not a first spike).
        ops[OP_PLASTICITY] += n_pre * n_active
        for s in range(n_cross):
            j = spikes[s]
            factor = post2_before[j] if triplet else 1.0
            if factor == 0.0:
                continue
            ops[OP_PLASTICITY] += n_in
            for i in range(n_in):
                x_pre = _trace(tab_pre, t - last_pre[i])
                wn = np.float64(w[i, j]) + nu_post * (x_pre - x_tar) * factor
                if wn < 0.0:
                    wn = 0.0
                elif wn > w_max:
                    wn = w_max
                w[i, j] = wn

    if learning:
        horizon = max(tab_pre.shape[0], len_post1, tab_post2.shape[0])
        for i in range(n_in):
            last_pre[i] = (last_pre[i] - steps_done if steps_done - last_pre[i] < horizon
                           else NEVER)
        for j in range(n):
            last_post[j] = (last_post[j] - steps_done if steps_done - last_post[j] < horizon
                            else NEVER)
    for j in range(n):
        refr[j] = max(end[j] - steps_done, 0)
    return steps_done


@numba.njit(cache=True, nogil=True)
def _mark_traced(last_post, changed):
    """Mark the columns of neurons with a post trace (STDP may write them) in ``changed``."""
    for j in range(last_post.shape[0]):
        if last_post[j] != NEVER:
            changed[j] = True


@numba.njit(cache=True, nogil=True)
def _mark_spiked(counts, changed):
    """Mark the columns of neurons that spiked (``counts [N] > 0``) in ``changed``."""
    for j in range(counts.shape[0]):
        if counts[j] > 0:
            changed[j] = True


@numba.njit(cache=True, nogil=True)
def learn_batch(w, theta, state, inputs, timesteps, const, columns, counts, ops):
    """
    Learn from samples one after the other (online STDP), updating ``w`` and ``theta``.

    ``inputs`` (:class:`BatchInput`) is either Poisson (``log_q [B, n_inputs]``, or
    ``levels`` and ``table``, and ``seeds [B]``) or given events (``log_q`` and ``levels``
    with 0 rows; ``pixels``, ``row_ptr [B, T + 1]``), ``T = timesteps``. Before each sample
    ``state`` is reset when ``ipar[I_REST_STEPS] == 0``; after each sample the columns are
    normalised, then ``ipar[I_REST_STEPS]`` input-free steps are run (rest mode).
    ``counts [B, N]`` and ``ops [B, N_OPS]`` receive per-sample totals of the presentation.

    Only the columns STDP wrote are normalised (``columns``, a
    :class:`~topspark_ros.core.stdp.normalise.ColumnStats` kept by the caller from call to
    call; see :func:`~topspark_ros.core.stdp.normalise.normalise_changed_columns`): those of
    neurons with a post trace at the start of a presentation and of neurons that spiked in it
    (depression writes the first, potentiation the second). The result is the same, bit for
    bit, as normalising every column.
    """
    log_q, seeds, pixels, row_ptr, levels, table = inputs
    par = const.par
    n_samples = counts.shape[0]
    generate = log_q.shape[0] > 0 or levels.shape[0] > 0
    scales = gap_scales(table)
    rest_steps = const.ipar[I_REST_STEPS]
    active = np.empty(w.shape[0], np.int64)
    work = np.empty((2, w.shape[0]), np.float64)
    scratch = np.empty(4096, np.int32)
    events = np.empty((2, 4096), np.int32)
    sample_ptr = np.empty(timesteps + 1, np.int64)
    rest_ptr = np.zeros(rest_steps + 1, np.int64)
    rest_counts = np.zeros(w.shape[1], np.int64)
    no_exit = NO_EXIT
    zig = ZIGGURAT
    for b in range(n_samples):
        if rest_steps == 0:
            reset_state(state, par)
        _mark_traced(state.last_post, columns.changed)
        if generate:
            m = _first_gaps_of(log_q, levels, table, scales, b, active, work)
            scratch, events, _ = poisson_draw(m, timesteps, seeds[b], sample_ptr, scratch,
                                              events, active, work, zig)
            simulate(w, theta, state, scratch, sample_ptr, True, const, no_exit, counts[b],
                     ops[b])
        else:
            simulate(w, theta, state, pixels, row_ptr[b], True, const, no_exit, counts[b],
                     ops[b])
        _mark_spiked(counts[b], columns.changed)
        normalise_changed_columns(w, const.norm, par[P_W_MAX], columns)
        if rest_steps > 0:
            _mark_traced(state.last_post, columns.changed)
            rest_counts[:] = 0
            simulate(w, theta, state, scratch, rest_ptr, True, const, no_exit, rest_counts,
                     ops[b])
            _mark_spiked(rest_counts, columns.changed)


@numba.njit(cache=True, nogil=True)
def learn_frame(w, theta, v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh,
                levels, table, seeds, timesteps, par, ipar, norm, tab_pre, tab_post1, tab_post2,
                theta_scale, changed, sums, peaks, counts, ops):
    """
    Run :func:`learn_batch` on one uint8 frame, with the same results.

    The frame is ``levels [1, n_inputs]`` with its ``table`` and ``seeds [1]``. The tuples of
    :func:`learn_batch` (:class:`EngineState`, the constants, :class:`.normalise.ColumnStats`)
    come field by field and are rebuilt here, the other input forms made empty: numba types a
    tuple argument in Python at every call (about 1 us each), an array in C. A robot learning
    on line from its camera calls this once a frame.
    """
    state = EngineState(v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh)
    inputs = BatchInput(np.empty((0, 0), np.float64), seeds, np.empty(0, np.int32),
                        np.empty((0, 1), np.int64), levels, table)
    const = SimulationConstants(par, ipar, norm, tab_pre, tab_post1, tab_post2, theta_scale)
    learn_batch(w, theta, state, inputs, timesteps, const, ColumnStats(changed, sums, peaks),
                counts, ops)


_INFER_CHUNKS = 64
"""Chunks of :func:`infer_batch`: enough to balance the threads, few enough to amortise."""


@numba.njit(cache=True, nogil=True)
def _infer_range(w, theta, inputs, scales, timesteps, const, exit_rule, counts, ops, steps_used,
                 zig, first, stop):
    """
    Run samples ``first .. stop - 1`` of :func:`infer_batch` one after the other.

    ``scales``: :func:`.rng.gap_scales` of the input's table.
    """
    log_q, seeds, pixels, row_ptr, levels, table = inputs
    n_in, n = w.shape
    generate = log_q.shape[0] > 0 or levels.shape[0] > 0
    state = empty_state(n_in, n)
    active = np.empty(n_in, np.int64)
    work = np.empty((2, n_in), np.float64)
    scratch = np.empty(4096, np.int32)
    events = np.empty((2, 4096), np.int32)
    sample_ptr = np.empty(timesteps + 1, np.int64)
    for b in range(first, stop):
        reset_dynamics(state, const.par)
        if generate:
            m = _first_gaps_of(log_q, levels, table, scales, b, active, work)
            scratch, events, _ = poisson_draw(m, timesteps, seeds[b], sample_ptr, scratch,
                                              events, active, work, zig)
            steps_used[b] = simulate(w, theta, state, scratch, sample_ptr, False, const,
                                     exit_rule, counts[b], ops[b])
        else:
            steps_used[b] = simulate(w, theta, state, pixels, row_ptr[b], False, const,
                                     exit_rule, counts[b], ops[b])


@numba.njit(parallel=True, cache=True, nogil=True)
def infer_batch(w, theta, inputs, timesteps, const, exit_rule, counts, ops, steps_used):
    """
    Run samples independently (learning off), in parallel; each starts from rest.

    Inputs and counters as in :func:`learn_batch`; early exit as in :func:`simulate`
    (``steps_used [B]`` receives the steps of each sample). The samples are split into up to
    ``_INFER_CHUNKS`` contiguous chunks (:func:`_infer_range`, each with its own scratch) that
    the threads share. Nothing shared is written, so the result does not depend on the number
    of threads.
    """
    n_samples = counts.shape[0]
    n_chunks = min(n_samples, _INFER_CHUNKS)
    zig = ZIGGURAT
    scales = gap_scales(inputs.table)
    for c in numba.prange(n_chunks):
        _infer_range(w, theta, inputs, scales, timesteps, const, exit_rule, counts, ops,
                     steps_used, zig, c * n_samples // n_chunks,
                     (c + 1) * n_samples // n_chunks)


@numba.njit(cache=True, nogil=True)
def infer_serial(w, theta, log_q, seeds, pixels, row_ptr, levels, table, timesteps, par, ipar,
                 norm, tab_pre, tab_post1, tab_post2, theta_scale, neuron_class, evidence,
                 margin, min_steps, counts, ops, steps_used, bins, divisors, scores):
    """
    :func:`infer_batch` in the calling thread, with the same results, and the class scores.

    For a single sample (a camera stream): no parallel region is started, which costs tens
    of microseconds at batch 1 and far more when another process holds a core. The three
    tuples of :func:`infer_batch` (:class:`BatchInput`, the constants, :class:`ExitRule`)
    come flattened, field by field, and are rebuilt here: numba types a tuple argument in
    Python on every call (about 1 us each), a plain array or scalar in C. With a readout's
    ``bins`` and ``divisors`` (:attr:`.readout.Readout.vote_tables`), ``scores [B, C]``
    receives the samples' ``all_activity`` scores (:func:`.readout.class_scores`); give 0
    rows for none.
    """
    inputs = BatchInput(log_q, seeds, pixels, row_ptr, levels, table)
    const = SimulationConstants(par, ipar, norm, tab_pre, tab_post1, tab_post2, theta_scale)
    exit_rule = ExitRule(neuron_class, evidence, margin, min_steps)
    _infer_range(w, theta, inputs, gap_scales(table), timesteps, const, exit_rule, counts, ops,
                 steps_used, ZIGGURAT, 0, counts.shape[0])
    if scores.shape[0] > 0:
        class_scores(counts, bins, divisors, scores)


@numba.njit(cache=True, nogil=True)
def infer_frame(w, theta, levels, table, scales, seeds, timesteps, par, ipar, norm, tab_pre,
                tab_post1, tab_post2, theta_scale, counts, ops, steps_used, bins, divisors,
                scores):
    """
    Run :func:`infer_serial` for one uint8 frame, no early exit, with the same results.

    The frame is ``levels [1, n_inputs]`` with its ``table``, the table's
    :func:`.rng.gap_scales` (kept by the caller: 256 divisions a call less) and ``seeds
    [1]``. The eleven arguments of the other input forms and of the exit rule are left out,
    made empty here instead: numba's dispatch costs about 50 ns an argument, about 0.6 us of
    a one-frame call.
    """
    inputs = BatchInput(np.empty((0, 0), np.float64), seeds, np.empty(0, np.int32),
                        np.empty((0, 1), np.int64), levels, table)
    const = SimulationConstants(par, ipar, norm, tab_pre, tab_post1, tab_post2, theta_scale)
    exit_rule = ExitRule(np.empty(0, np.int64), np.empty(0, np.float64), 0.0, 0)
    _infer_range(w, theta, inputs, scales, timesteps, const, exit_rule, counts, ops, steps_used,
                 ZIGGURAT, 0, counts.shape[0])
    if scores.shape[0] > 0:
        class_scores(counts, bins, divisors, scores)

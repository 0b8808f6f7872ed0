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

Poisson input spikes are drawn per pixel by geometric inter-spike gaps ``floor(E / lambda)``
with ``E`` ~ Exp(1) from a ziggurat and ``lambda = -log(1 - p)``, which is exactly a
Bernoulli(p) process per step, so the random-number cost is proportional to the number of
spikes, not to ``n_inputs * T``, and takes no logarithm on the fast path. The generator is
SplitMix64 seeded per sample, so results do not depend on the number of threads.

Scalar parameters travel in two vectors (``par`` float64, ``ipar`` int64) indexed by the
``P_*`` and ``I_*`` constants, which keeps one compiled signature per kernel.

Fixed per-sample cost (issue 16): the ziggurat tables are made once (:data:`ZIGGURAT`); no
array is rebound inside a per-input loop (numba then reference-counts on every pass); one
sample runs without a parallel region (:func:`infer_serial`); after a learning sample only the
columns STDP wrote are normalised (:func:`normalise_changed_columns`, O(n_inputs) per column).
"""

import numba
import numpy as np

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
"""``t_last`` of a neuron that has not spiked (its traces read 0)."""

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S3 = np.uint64(3)
_S8 = np.uint64(8)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_ONE = np.uint64(1)
_LOW8 = np.uint64(0xFF)
_TWO_POW_M53 = 1.0 / 9007199254740992.0

_JIT = {'cache': True, 'nogil': True}


_ZIG_R = 7.69711747013104972
"""Right edge of the base layer of the Exp(1) ziggurat (Marsaglia & Tsang 2000)."""
_ZIG_AREA = 3.949659822581572e-3
"""Area of each of its 256 layers."""


@numba.njit(**_JIT)
def ziggurat_tables():
    """
    Return the 256-layer ziggurat of Exp(1) (Marsaglia & Tsang 2000) as ``float64 [3, 256]``.

    The tables of numpy's ``standard_exponential`` in the 53-bit form: layer ``i`` has right
    edge ``x_i`` (``x_255 = r``); row 0 holds ``k_i = floor(x_{i-1} / x_i 2^53)`` (an
    integer below ``2^53``, so exact as a float), the abscissas under which a point of layer
    ``i`` lies inside the layer below, and thus under the density; row 1 ``x_i / 2^53``;
    row 2 ``exp(-x_i)``. Layer 0 is the base strip including the tail beyond ``r``.
    """
    m = 2.0 ** 53
    zig = np.zeros((3, 256), np.float64)
    x = _ZIG_R
    q = _ZIG_AREA / np.exp(-x)
    zig[0, 0] = np.floor(x / q * m)
    zig[1, 0] = q / m
    zig[1, 255] = x / m
    zig[2, 0] = 1.0
    zig[2, 255] = np.exp(-x)
    last = x
    for i in range(254, 0, -1):
        x = -np.log(_ZIG_AREA / x + np.exp(-x))
        zig[0, i + 1] = np.floor(x / last * m)
        last = x
        zig[1, i] = x / m
        zig[2, i] = np.exp(-x)
    return zig


ZIGGURAT = ziggurat_tables()
"""The tables of :func:`ziggurat_tables`, made once (6 us a call); the kernels freeze them in."""


@numba.njit(**_JIT)
def _next_u64(state):
    """Advance the SplitMix64 state; return ``(state, 64 random bits)``."""
    state = state + _GOLDEN
    z = (state ^ (state >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return state, z ^ (z >> _S31)


@numba.njit(**_JIT)
def _uniform(state):
    """Return ``(state, u)`` with ``u`` a float64 in (0, 1] (53 random bits)."""
    state, z = _next_u64(state)
    return state, np.float64((z >> _S11) + _ONE) * _TWO_POW_M53


@numba.njit(**_JIT)
def _exponential(state, zig):
    """
    Return ``(state, x)`` with ``x`` an Exp(1) variate by the ziggurat method.

    ``zig`` is :func:`ziggurat_tables`. One 64-bit draw picks a layer (8 bits) and a 53-bit
    abscissa; about 98.9 % of draws are accepted at once, the rest take the exact wedge or
    tail test (one ``exp`` or ``log``), so the result is exactly Exp(1) in distribution. The
    state is passed by value (not in an array) so that it stays in a register.
    """
    while True:
        state, bits = _next_u64(state)
        bits = bits >> _S3
        layer = bits & _LOW8
        r = np.float64(bits >> _S8)
        x = r * zig[1, layer]
        if r < zig[0, layer]:
            return state, x
        state, u = _uniform(state)
        if layer == 0:
            return state, _ZIG_R - np.log(u)
        if (zig[2, layer - 1] - zig[2, layer]) * u + zig[2, layer] < np.exp(-x):
            return state, x


@numba.njit(**_JIT)
def _draw_trains(log_q, first, timesteps, state, n, times, row_ptr, ends, zig):
    """
    Draw the spike times of inputs ``first, first + 1, ...`` for :func:`poisson_sample`.

    Stops before an input that spikes at all (``log_q != 0``) when ``times`` has no room left
    for ``timesteps`` more events. Returns ``(next input, state, n)``.
    """
    n_in = log_q.shape[0]
    room = times.shape[0]
    i = first
    while i < n_in:
        lq = log_q[i]
        if lq != 0.0:
            if room < n + timesteps:
                return i, state, n
            scale = -1.0 / lq
            state, e = _exponential(state, zig)
            t = np.floor(e * scale)
            while t < timesteps:
                ti = int(t)
                times[n] = ti
                n += 1
                row_ptr[ti + 1] += 1
                state, e = _exponential(state, zig)
                t += 1.0 + np.floor(e * scale)
        ends[i] = n
        i += 1
    return i, state, n


@numba.njit(**_JIT)
def poisson_sample(log_q, timesteps, seed, row_ptr, pixels, times, ends, zig):
    """
    Draw one sample's Bernoulli spike trains as time-sorted events.

    Input ``i`` spikes at the steps ``g_1, g_1 + 1 + g_2, ...`` with gaps
    ``g = floor(E / lambda_i)``, ``E`` ~ Exp(1) and ``lambda_i = -log(1 - p_i)``: then
    ``P(g >= k) = (1 - p_i)^k``, so the gaps are geometric and the train is exactly a
    Bernoulli(``p_i``) process per step. Inputs are drawn one after the other from one
    SplitMix64 stream, then the events are bucketed by step (counting sort).

    Parameters
    ----------
    log_q
        ``float64 [n_inputs]``, ``log(1 - p_i)`` with ``p_i`` the spike probability per
        step of input ``i``; 0 means silent, ``-inf`` means a spike every step.
    timesteps
        number of steps ``T``.
    seed
        SplitMix64 seed (uint64) of this sample.
    row_ptr
        ``int64 [T + 1]`` output: events of step ``t`` are
        ``pixels[row_ptr[t]:row_ptr[t + 1]]``, inputs ascending within a step.
    pixels, times
        ``int32`` scratch for the events (grown when too small).
    ends
        ``int64 [n_inputs]`` scratch.
    zig
        :func:`ziggurat_tables`.

    Returns
    -------
        ``(pixels, times, n_events)``; ``pixels`` and ``times`` may be new, larger arrays.

    """
    state = np.uint64(seed)
    n_in = log_q.shape[0]
    for t in range(timesteps + 1):
        row_ptr[t] = 0
    n = 0
    i = 0
    while True:
        # The scratch is grown out here, between inputs: an array rebound inside the loop over
        # the inputs would cost reference counting on every input (11 us a sample at T=1).
        i, state, n = _draw_trains(log_q, i, timesteps, state, n, times, row_ptr, ends, zig)
        if i == n_in:
            break
        grown = np.empty(2 * (n + timesteps), np.int32)
        grown[:n] = times[:n]
        times = grown
    if pixels.shape[0] < n:
        pixels = np.empty(n + n // 4 + 1024, np.int32)
    for t in range(timesteps):
        row_ptr[t + 1] += row_ptr[t]
    k = 0
    for i in range(n_in):
        while k < ends[i]:
            ti = times[k]
            pixels[row_ptr[ti]] = i
            row_ptr[ti] += 1
            k += 1
    for t in range(timesteps, 0, -1):
        row_ptr[t] = row_ptr[t - 1]
    row_ptr[0] = 0
    return pixels, times, n


@numba.njit(**_JIT)
def poisson_batch(log_q, timesteps, seeds):
    """
    Draw the events of a batch with :func:`poisson_sample`, one seed per sample.

    Returns
    -------
        ``(pixels int32 [E], row_ptr int64 [B, T + 1])`` with absolute offsets into ``pixels``.

    """
    n_samples = log_q.shape[0]
    row_ptr = np.zeros((n_samples, timesteps + 1), np.int64)
    ends = np.empty(log_q.shape[1], np.int64)
    out = np.empty(1024, np.int32)
    scratch = np.empty(1024, np.int32)
    times = np.empty(1024, np.int32)
    zig = ZIGGURAT
    total = 0
    for b in range(n_samples):
        scratch, times, n = poisson_sample(log_q[b], timesteps, seeds[b], row_ptr[b], scratch,
                                           times, ends, zig)
        if total + n > out.shape[0]:
            grown = np.empty(2 * (total + n), np.int32)
            grown[:total] = out[:total]
            out = grown
        out[total:total + n] = scratch[:n]
        for t in range(timesteps + 1):
            row_ptr[b, t] += total
        total += n
    return out[:total].copy(), row_ptr


@numba.njit(**_JIT)
def _trace(table, age):
    """Return a nearest-spike trace ``table[age]`` (0 past the table)."""
    if age < table.shape[0]:
        return table[age]
    return 0.0


@numba.njit(**_JIT)
def reset_state(v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh, par):
    """Put one sample's dynamic state at rest: potentials at rest, no refractoriness, no traces."""
    v[:] = par[P_V_REST]
    v_inh[:] = par[P_INH_REST]
    refr[:] = 0
    refr_inh[:] = 0
    last_pre[:] = NEVER
    last_post[:] = NEVER
    prev_exc[:] = 0
    prev_inh[:] = 0


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
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


@numba.njit(**_JIT)
def simulate(w, theta, v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh,
             pixels, row_ptr, n_steps, learning, par, ipar, tab_pre, tab_post1, tab_post2,
             counts, ops, exit_class, exit_weight, exit_margin, exit_min_steps):
    """
    Advance one sample by ``n_steps`` steps (see :mod:`topspark_ros.core.stdp` for equations).

    ``w`` is ``float32 [n_inputs, N]``; the state arrays are this sample's; ``pixels`` and
    ``row_ptr [n_steps + 1]`` give the input events of each step; ``counts [N]`` and
    ``ops [N_OPS]`` are accumulated. With ``learning`` the weights and ``theta`` change.
    Spike times in ``last_pre``/``last_post`` are relative to step 0 of this call and are
    shifted by the steps simulated before returning.

    Early exit (when ``exit_class`` is not empty): every excitatory spike of neuron ``j`` adds
    ``exit_weight[j]`` to the evidence of class ``exit_class[j]`` (-1: none); after step ``t``
    (``t + 1 >= exit_min_steps``) the sample stops once the best class leads the second by
    at least ``exit_margin``. Returns the number of steps simulated.
    """
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
    current = np.empty(n, np.float32)
    saved = np.empty(n, np.float64)
    # Refractory while t < end[j] (steps of this call); refr is the count of steps left.
    end = np.empty(n, np.int64)
    for j in range(n):
        end[j] = refr[j]
    spikes = np.empty(n, np.int64)
    post2_before = np.empty(n, np.float64)
    active = np.empty(n, np.int64)
    n_active = 0
    for j in range(n):
        if -last_post[j] < len_post1:
            active[n_active] = j
            n_active += 1
    # Spike lists of the previous step and the inhibitory neurons away from rest.
    exc_prev = np.empty(n, np.int64)
    inh_prev = np.empty(n, np.int64)
    inh_new = np.empty(n, np.int64)
    inh_busy = np.empty(n, np.int64)
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
                if first - second >= exit_margin and first > 0.0:
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
            if age >= len_post1:
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

    horizon = max(tab_pre.shape[0], len_post1, tab_post2.shape[0])
    for i in range(n_in):
        last_pre[i] = last_pre[i] - steps_done if steps_done - last_pre[i] < horizon else NEVER
    for j in range(n):
        last_post[j] = (last_post[j] - steps_done if steps_done - last_post[j] < horizon
                        else NEVER)
        refr[j] = max(end[j] - steps_done, 0)
    return steps_done


@numba.njit(**_JIT)
def _column_sums_peaks(w, sums, peaks):
    """
    Add the column sums (float64, row by row in order) and maxima of ``w`` into ``sums, peaks``.

    Four rows per pass over the columns, each added in row order, so the sums are rounded
    exactly as a plain row-by-row loop (and torch's ``cumsum``) round them, with a quarter of
    the loads and stores of ``sums`` and ``peaks``.
    """
    n_in, n = w.shape
    i = 0
    while i + 4 <= n_in:
        r0 = w[i]
        r1 = w[i + 1]
        r2 = w[i + 2]
        r3 = w[i + 3]
        for j in range(n):
            x0 = np.float64(r0[j])
            x1 = np.float64(r1[j])
            x2 = np.float64(r2[j])
            x3 = np.float64(r3[j])
            sums[j] = (((sums[j] + x0) + x1) + x2) + x3
            p = peaks[j]
            p = x0 if x0 > p else p
            p = x1 if x1 > p else p
            p = x2 if x2 > p else p
            peaks[j] = x3 if x3 > p else p
        i += 4
    while i < n_in:
        r0 = w[i]
        for j in range(n):
            x0 = np.float64(r0[j])
            sums[j] += x0
            p = peaks[j]
            peaks[j] = x0 if x0 > p else p
        i += 1


@numba.njit(**_JIT)
def normalise_columns(w, norm, w_max):
    """
    Scale each column of ``w [n_inputs, N]`` in place to sum ``norm`` within ``[0, w_max]``.

    Column ``j`` becomes ``min(s_j * w_ij, w_max)`` with the scale ``s_j`` chosen so that the
    column sums to ``norm`` (water filling: weights that would pass ``w_max`` are capped and
    the rest rescaled until none passes). An all-zero column becomes uniform. Sums are float64.
    """
    n_in, n = w.shape
    sums = np.zeros(n, np.float64)
    peaks = np.zeros(n, np.float64)
    _column_sums_peaks(w, sums, peaks)
    scale = np.ones(n, np.float64)
    for j in range(n):
        if sums[j] > 0.0 and peaks[j] * (norm / sums[j]) <= w_max:
            scale[j] = norm / sums[j]
        else:
            _water_fill(w, j, norm, w_max)
    for i in range(n_in):
        for j in range(n):
            w[i, j] = np.float64(w[i, j]) * scale[j]


@numba.njit(**_JIT)
def _water_fill(w, j, norm, w_max):
    """Rescale column ``j`` to sum ``norm`` with weights capped at ``w_max`` (see caller)."""
    n_in = w.shape[0]
    capped = np.zeros(n_in, np.bool_)
    n_capped = 0
    while True:
        free_sum = 0.0
        for i in range(n_in):
            if not capped[i]:
                free_sum += np.float64(w[i, j])
        budget = norm - n_capped * w_max
        if free_sum <= 0.0 or budget <= 0.0:
            n_free = n_in - n_capped
            fill = min(max(budget, 0.0) / n_free, w_max) if n_free > 0 else 0.0
            for i in range(n_in):
                if not capped[i]:
                    w[i, j] = fill
            break
        scale = budget / free_sum
        changed = False
        for i in range(n_in):
            if not capped[i] and np.float64(w[i, j]) * scale >= w_max:
                capped[i] = True
                n_capped += 1
                changed = True
        if not changed:
            for i in range(n_in):
                if not capped[i]:
                    w[i, j] = np.float64(w[i, j]) * scale
            break
    for i in range(n_in):
        if capped[i]:
            w[i, j] = w_max


IDENTITY_SCALE = 2.0 ** -26
"""A column scale within this of 1 leaves every float32 weight as it is (a quarter ulp)."""


@numba.njit(**_JIT)
def normalise_changed_columns(w, norm, w_max, changed, sums, peaks):
    """
    Do what :func:`normalise_columns` does, bit for bit, in O(n_inputs) per column it changes.

    ``changed [N]`` (bool) marks the columns written since this function last normalised
    them (all of them the first time); ``sums, peaks [N]`` (float64) hold the sum (in row
    order) and the maximum of every other column, as :func:`normalise_columns` computes
    them. Such an unchanged column is skipped when its scale ``s = norm / sum`` takes the
    plain branch (``peak s <= w_max``) and ``|s - 1| <= IDENTITY_SCALE`` (2^-26): then
    ``w s`` is within a quarter ulp of ``w`` and rounds back to ``w`` in float32, so
    :func:`normalise_columns` would leave the column as it is. Every other column is
    normalised as there (same sums, same scale or water filling, same rounding), its new sum
    and maximum stored and its mark cleared. After a sample that moved few columns this costs
    O(N + n_inputs k) for k changed columns instead of O(n_inputs N).
    """
    n_in, n = w.shape
    todo = np.empty(n, np.int64)
    k = 0
    for j in range(n):
        if not changed[j]:
            s = sums[j]
            if s > 0.0 and peaks[j] * (norm / s) <= w_max \
                    and abs(norm / s - 1.0) <= IDENTITY_SCALE:
                continue
        todo[k] = j
        k += 1
    if k == 0:
        return
    col_sums = np.zeros(k, np.float64)
    col_peaks = np.zeros(k, np.float64)
    for i in range(n_in):
        row = w[i]
        for c in range(k):
            x = np.float64(row[todo[c]])
            col_sums[c] += x
            col_peaks[c] = x if x > col_peaks[c] else col_peaks[c]
    scale = np.ones(k, np.float64)
    for c in range(k):
        if col_sums[c] > 0.0 and col_peaks[c] * (norm / col_sums[c]) <= w_max:
            scale[c] = norm / col_sums[c]
        else:
            _water_fill(w, todo[c], norm, w_max)
    col_sums[:] = 0.0
    col_peaks[:] = 0.0
    for i in range(n_in):
        row = w[i]
        for c in range(k):
            j = todo[c]
            row[j] = np.float64(row[j]) * scale[c]
            x = np.float64(row[j])
            col_sums[c] += x
            col_peaks[c] = x if x > col_peaks[c] else col_peaks[c]
    for c in range(k):
        j = todo[c]
        sums[j] = col_sums[c]
        peaks[j] = col_peaks[c]
        changed[j] = False


@numba.njit(**_JIT)
def _mark_traced(last_post, changed):
    """Mark the columns of neurons with a post trace (STDP may write them) in ``changed``."""
    for j in range(last_post.shape[0]):
        if last_post[j] != NEVER:
            changed[j] = True


@numba.njit(**_JIT)
def _mark_spiked(counts, changed):
    """Mark the columns of neurons that spiked (``counts [N] > 0``) in ``changed``."""
    for j in range(counts.shape[0]):
        if counts[j] > 0:
            changed[j] = True


@numba.njit(**_JIT)
def learn_batch(w, theta, v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh,
                log_q, seeds, pixels, row_ptr, timesteps, par, ipar, norm, tab_pre, tab_post1,
                tab_post2, counts, ops, changed=None, sums=None, peaks=None):
    """
    Learn from samples one after the other (online STDP), updating ``w`` and ``theta``.

    Input is either Poisson (``log_q [B, n_inputs]`` and ``seeds [B]``; then ``pixels`` is
    unused) or given events (``log_q`` with 0 rows; ``pixels``, ``row_ptr [B, T + 1]``). Before
    each sample the state is reset when ``ipar[I_REST_STEPS] == 0``; after each sample the
    columns are normalised, then ``ipar[I_REST_STEPS]`` input-free steps are run (rest mode).
    ``counts [B, N]`` and ``ops [B, N_OPS]`` receive per-sample totals of the presentation.

    With ``changed, sums, peaks`` (see :func:`normalise_changed_columns`, kept by the caller
    from call to call) only the columns STDP wrote are normalised: those of neurons with a
    post trace at the start of a presentation and of neurons that spiked in it (depression
    writes the first, potentiation the second). The result is the same bit for bit.
    """
    n_samples = counts.shape[0]
    generate = log_q.shape[0] > 0
    rest_steps = ipar[I_REST_STEPS]
    ends = np.empty(w.shape[0], np.int64)
    scratch = np.empty(4096, np.int32)
    times = np.empty(4096, np.int32)
    sample_ptr = np.empty(timesteps + 1, np.int64)
    rest_ptr = np.zeros(rest_steps + 1, np.int64)
    rest_counts = np.zeros(w.shape[1], np.int64)
    no_class = np.zeros(0, np.int64)
    no_weight = np.zeros(0, np.float64)
    zig = ZIGGURAT
    for b in range(n_samples):
        if rest_steps == 0:
            reset_state(v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh, par)
        if changed is not None:
            _mark_traced(last_post, changed)
        if generate:
            scratch, times, _ = poisson_sample(log_q[b], timesteps, seeds[b], sample_ptr,
                                               scratch, times, ends, zig)
            simulate(w, theta, v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc,
                     prev_inh, scratch, sample_ptr, timesteps, True, par, ipar, tab_pre,
                     tab_post1, tab_post2, counts[b], ops[b], no_class, no_weight, 0.0, 0)
        else:
            simulate(w, theta, v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc,
                     prev_inh, pixels, row_ptr[b], timesteps, True, par, ipar, tab_pre,
                     tab_post1, tab_post2, counts[b], ops[b], no_class, no_weight, 0.0, 0)
        if changed is None:
            normalise_columns(w, norm, par[P_W_MAX])
        else:
            _mark_spiked(counts[b], changed)
            normalise_changed_columns(w, norm, par[P_W_MAX], changed, sums, peaks)
        if rest_steps > 0:
            if changed is not None:
                _mark_traced(last_post, changed)
                rest_counts[:] = 0
            simulate(w, theta, v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc,
                     prev_inh, scratch, rest_ptr, rest_steps, True, par, ipar, tab_pre,
                     tab_post1, tab_post2, rest_counts, ops[b], no_class, no_weight, 0.0, 0)
            if changed is not None:
                _mark_spiked(rest_counts, changed)


_INFER_CHUNKS = 64
"""Chunks of :func:`infer_batch`: enough to balance the threads, few enough to amortise."""


@numba.njit(**_JIT)
def _infer_range(w, theta, log_q, seeds, pixels, row_ptr, timesteps, par, ipar, tab_pre,
                 tab_post1, tab_post2, counts, ops, exit_class, exit_weight, exit_margin,
                 exit_min_steps, steps_used, zig, first, stop):
    """Run samples ``first .. stop - 1`` of :func:`infer_batch` one after the other."""
    n_in, n = w.shape
    generate = log_q.shape[0] > 0
    v = np.empty(n, np.float64)
    v_inh = np.empty(n, np.float64)
    refr = np.empty(n, np.int64)
    refr_inh = np.empty(n, np.int64)
    last_pre = np.empty(n_in, np.int64)
    last_post = np.empty(n, np.int64)
    prev_exc = np.empty(n, np.int64)
    prev_inh = np.empty(n, np.int64)
    ends = np.empty(n_in, np.int64)
    scratch = np.empty(4096, np.int32)
    times = np.empty(4096, np.int32)
    sample_ptr = np.empty(timesteps + 1, np.int64)
    for b in range(first, stop):
        reset_state(v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh, par)
        if generate:
            scratch, times, _ = poisson_sample(log_q[b], timesteps, seeds[b], sample_ptr,
                                               scratch, times, ends, zig)
            steps_used[b] = simulate(
                w, theta, v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh,
                scratch, sample_ptr, timesteps, False, par, ipar, tab_pre, tab_post1,
                tab_post2, counts[b], ops[b], exit_class, exit_weight, exit_margin,
                exit_min_steps)
        else:
            steps_used[b] = simulate(
                w, theta, v, v_inh, refr, refr_inh, last_pre, last_post, prev_exc, prev_inh,
                pixels, row_ptr[b], timesteps, False, par, ipar, tab_pre, tab_post1, tab_post2,
                counts[b], ops[b], exit_class, exit_weight, exit_margin, exit_min_steps)


@numba.njit(parallel=True, **_JIT)
def infer_batch(w, theta, log_q, seeds, pixels, row_ptr, timesteps, par, ipar, tab_pre,
                tab_post1, tab_post2, counts, ops, exit_class, exit_weight, exit_margin,
                exit_min_steps, steps_used):
    """
    Run samples independently (learning off), in parallel; each starts from rest.

    Inputs as in :func:`learn_batch`; early exit as in :func:`simulate` (``steps_used [B]``
    receives the steps of each sample). The samples are split into up to ``_INFER_CHUNKS``
    contiguous chunks (:func:`_infer_range`, each with its own scratch) that the threads
    share. Nothing shared is written, so the result does not depend on the number of threads.
    """
    n_samples = counts.shape[0]
    n_chunks = min(n_samples, _INFER_CHUNKS)
    zig = ZIGGURAT
    for c in numba.prange(n_chunks):
        _infer_range(w, theta, log_q, seeds, pixels, row_ptr, timesteps, par, ipar, tab_pre,
                     tab_post1, tab_post2, counts, ops, exit_class, exit_weight, exit_margin,
                     exit_min_steps, steps_used, zig, c * n_samples // n_chunks,
                     (c + 1) * n_samples // n_chunks)


@numba.njit(**_JIT)
def infer_serial(w, theta, log_q, seeds, pixels, row_ptr, timesteps, par, ipar, tab_pre,
                 tab_post1, tab_post2, counts, ops, exit_class, exit_weight, exit_margin,
                 exit_min_steps, steps_used):
    """
    :func:`infer_batch` in the calling thread, with the same results.

    For a single sample (or one thread): no parallel region is started, which costs tens of
    microseconds at batch 1 and far more when another process holds a core.
    """
    _infer_range(w, theta, log_q, seeds, pixels, row_ptr, timesteps, par, ipar, tab_pre,
                 tab_post1, tab_post2, counts, ops, exit_class, exit_weight, exit_margin,
                 exit_min_steps, steps_used, ZIGGURAT, 0, counts.shape[0])

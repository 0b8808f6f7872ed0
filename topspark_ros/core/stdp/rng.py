"""
Random numbers of the numba engine: SplitMix64, Exp(1) by a ziggurat, Poisson spike trains.

Poisson input spikes are drawn per pixel by geometric inter-spike gaps ``floor(E / lambda)``
with ``E`` ~ Exp(1) from a ziggurat and ``lambda = -log(1 - p)``, which is exactly a
Bernoulli(p) process per step, so the random-number cost is proportional to the number of
spikes, not to ``n_inputs * T``, and takes no logarithm on the fast path. The gaps are drawn
in rounds across the inputs (the next gap of every input whose train goes on), so that where
a train ends costs a select, not a mispredicted branch. The generator is SplitMix64 seeded
per sample, so results do not depend on the number of threads. The ziggurat tables are made
once (:data:`ZIGGURAT`).
"""

import numba
import numpy as np

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


_ZIG_R = 7.69711747013104972
"""Right edge of the base layer of the Exp(1) ziggurat (Marsaglia & Tsang 2000)."""
_ZIG_AREA = 3.949659822581572e-3
"""Area of each of its 256 layers."""


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
def _next_u64(state):
    """Advance the SplitMix64 state; return ``(state, 64 random bits)``."""
    state = state + _GOLDEN
    z = (state ^ (state >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return state, z ^ (z >> _S31)


@numba.njit(cache=True, nogil=True)
def _uniform(state):
    """Return ``(state, u)`` with ``u`` a float64 in (0, 1] (53 random bits)."""
    state, z = _next_u64(state)
    return state, np.float64((z >> _S11) + _ONE) * _TWO_POW_M53


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
def first_gaps(log_q, active, work):
    """
    Prepare the inputs that spike at all (``log_q != 0``) for :func:`poisson_sample`.

    Writes their indices to ``active`` and, per active input ``j``, the time of its last
    spike (-1: none yet) to ``work[0, j]`` and the scale ``-1 / log_q`` of its gaps to
    ``work[1, j]``; returns how many there are. Silent inputs are written and not counted (no
    branch on them).
    """
    m = 0
    for i in range(log_q.shape[0]):
        lq = log_q[i]
        lit = lq != 0.0
        active[m] = i
        work[0, m] = -1.0
        work[1, m] = -1.0 / lq if lit else 0.0
        m += np.int64(lit)
    return m


@numba.njit(cache=True, nogil=True)
def gap_scales(table):
    """
    Return ``-1 / table`` (0 where ``table`` is 0): the gap scales of 256 levels' ``log_q``.

    For :func:`first_gaps_of_levels`: made once per call, it saves each sample a division
    per input (about 1 us of a sample's fixed cost at 784 inputs). The values are the ones
    :func:`first_gaps` computes.
    """
    scales = np.empty(table.shape[0], np.float64)
    for level in range(table.shape[0]):
        lq = table[level]
        scales[level] = -1.0 / lq if lq != 0.0 else 0.0
    return scales


@numba.njit(cache=True, nogil=True)
def first_gaps_of_levels(levels, table, scales, active, work):
    """
    Do :func:`first_gaps` for ``log_q = table[levels]`` without making that row.

    ``levels`` is one sample's ``uint8 [n_inputs]``, ``scales`` :func:`gap_scales` of
    ``table``. The same result as :func:`first_gaps` of the row, with a lookup per input in
    place of a division.
    """
    m = 0
    for i in range(levels.shape[0]):
        level = levels[i]
        active[m] = i
        work[0, m] = -1.0
        work[1, m] = scales[level]
        m += np.int64(table[level] != 0.0)
    return m


@numba.njit(cache=True, nogil=True)
def _draw_round(timesteps, state, n, m, active, work, events, zig):
    """
    Draw the next spike of each of the ``m`` active inputs, for :func:`poisson_sample`.

    Input ``active[j]`` spikes next at ``work[0, j] + 1 + floor(E * work[1, j])``; a spike
    before ``timesteps`` is appended to ``events`` (row 0 its step, row 1 the input) from
    column ``n``, which needs room for ``m`` more. The inputs that spiked stay active, moved
    to the front. Appending and keeping are selects, not branches: whether an input's train
    ends here is random, so a branch on it would be mispredicted about once per input.
    Returns ``(state, n, number still active)``.
    """
    end = np.float64(timesteps)
    k = 0
    for j in range(m):
        state, e = _exponential(state, zig)
        t = work[0, j] + 1.0 + np.floor(e * work[1, j])
        spikes = np.int64(t < end)
        events[0, n] = np.int32(min(t, end))
        events[1, n] = active[j]
        n += spikes
        active[k] = active[j]
        work[0, k] = t
        work[1, k] = work[1, j]
        k += spikes
    return state, n, k


@numba.njit(cache=True, nogil=True)
def poisson_sample(log_q, timesteps, seed, row_ptr, pixels, events, active, work, zig):
    """
    Draw one sample's Bernoulli spike trains as time-sorted events.

    Input ``i`` spikes at the steps ``g_1, g_1 + 1 + g_2, ...`` with gaps
    ``g = floor(E / lambda_i)``, ``E`` ~ Exp(1) and ``lambda_i = -log(1 - p_i)``: then
    ``P(g >= k) = (1 - p_i)^k``, so the gaps are geometric and the train is exactly a
    Bernoulli(``p_i``) process per step. The gaps are drawn in rounds from one SplitMix64
    stream: round ``r`` draws the ``r``-th gap of every input whose train is still running,
    inputs ascending (:func:`_draw_round`). Which input a draw goes to depends on earlier
    draws only, so every gap is a fresh Exp(1) variate and the trains are independent. Then
    the events are bucketed by step (counting sort).

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
        ``pixels[row_ptr[t]:row_ptr[t + 1]]`` (each input at most once per step; within a
        step in the order they were drawn, not by input).
    pixels
        ``int32`` output (grown when too small).
    events
        ``int32 [2, k]`` scratch (grown when too small).
    active
        ``int64 [n_inputs]`` scratch.
    work
        ``float64 [2, n_inputs]`` scratch.
    zig
        :func:`ziggurat_tables`.

    Returns
    -------
        ``(pixels, events, n_events)``; ``pixels`` and ``events`` may be new, larger arrays.

    """
    return poisson_draw(first_gaps(log_q, active, work), timesteps, seed, row_ptr, pixels,
                        events, active, work, zig)


@numba.njit(cache=True, nogil=True)
def poisson_draw(m, timesteps, seed, row_ptr, pixels, events, active, work, zig):
    """
    Draw the trains of :func:`poisson_sample` from its ``m`` active inputs.

    ``active`` and ``work`` as :func:`first_gaps` (or :func:`first_gaps_of_levels`) left
    them; the other arguments and the result as in :func:`poisson_sample`.
    """
    state = np.uint64(seed)
    n = 0
    while m > 0:
        # Grown here, between rounds: an array rebound inside the loop over the inputs
        # would cost reference counting on every input.
        if events.shape[1] < n + m:
            grown = np.empty((2, 2 * (n + m)), np.int32)
            grown[:, :n] = events[:, :n]
            events = grown
        state, n, m = _draw_round(timesteps, state, n, m, active, work, events, zig)
    if pixels.shape[0] < n:
        pixels = np.empty(n + n // 4 + 1024, np.int32)
    for t in range(timesteps + 1):
        row_ptr[t] = 0
    for k in range(n):
        row_ptr[events[0, k] + 1] += 1
    for t in range(timesteps):
        row_ptr[t + 1] += row_ptr[t]
    for k in range(n):
        t = events[0, k]
        pixels[row_ptr[t]] = events[1, k]
        row_ptr[t] += 1
    for t in range(timesteps, 0, -1):
        row_ptr[t] = row_ptr[t - 1]
    row_ptr[0] = 0
    return pixels, events, n


@numba.njit(cache=True, nogil=True)
def poisson_batch(log_q, timesteps, seeds):
    """
    Draw the events of a batch with :func:`poisson_sample`, one seed per sample.

    Returns
    -------
        ``(pixels int32 [E], row_ptr int64 [B, T + 1])`` with absolute offsets into ``pixels``.

    """
    n_samples, n_in = log_q.shape
    row_ptr = np.zeros((n_samples, timesteps + 1), np.int64)
    active = np.empty(n_in, np.int64)
    work = np.empty((2, n_in), np.float64)
    out = np.empty(1024, np.int32)
    scratch = np.empty(1024, np.int32)
    events = np.empty((2, 1024), np.int32)
    zig = ZIGGURAT
    total = 0
    for b in range(n_samples):
        scratch, events, n = poisson_sample(log_q[b], timesteps, seeds[b], row_ptr[b], scratch,
                                            events, active, work, zig)
        if total + n > out.shape[0]:
            grown = np.empty(2 * (total + n), np.int32)
            grown[:total] = out[:total]
            out = grown
        out[total:total + n] = scratch[:n]
        for t in range(timesteps + 1):
            row_ptr[b, t] += total
        total += n
    return out[:total].copy(), row_ptr

"""
Normalisation of the weight columns of the numba engine (after every learning sample).

Each column of ``W [n_inputs, N]`` is scaled to sum ``norm`` within ``[0, w_max]``
(:func:`normalise_columns`, water filling where a weight would pass ``w_max``). After a
learning sample only the columns STDP wrote need it (:func:`normalise_changed_columns`,
O(n_inputs) per column, the same result bit for bit). Sums are float64, in row order.
"""

from typing import NamedTuple

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
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


@numba.njit(cache=True, nogil=True)
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


class ColumnStats(NamedTuple):
    """
    What :func:`normalise_changed_columns` keeps of the columns of ``W [n_inputs, N]``.

    Attributes
    ----------
    changed
        ``bool [N]`` columns written since they were last normalised (all at first).
    sums
        ``float64 [N]`` sum (in row order) of every unmarked column.
    peaks
        ``float64 [N]`` maximum of every unmarked column.

    """

    changed: np.ndarray
    sums: np.ndarray
    peaks: np.ndarray

    @classmethod
    def all_changed(cls, n_neurons: int) -> 'ColumnStats':
        """Return the stats of ``n_neurons`` columns, all marked (none normalised yet)."""
        return cls(np.ones(n_neurons, np.bool_), np.zeros(n_neurons), np.zeros(n_neurons))


@numba.njit(cache=True, nogil=True)
def normalise_changed_columns(w, norm, w_max, columns):
    """
    Do what :func:`normalise_columns` does, bit for bit, in O(n_inputs) per column it changes.

    ``columns`` (:class:`ColumnStats`) marks the columns written since this function last
    normalised them (``changed``, all of them the first time) and holds the sum (in row
    order) and the maximum of every other column (``sums``, ``peaks``), as
    :func:`normalise_columns` computes them. Such an unchanged column is skipped when its
    scale ``s = norm / sum`` takes the plain branch (``peak s <= w_max``) and
    ``|s - 1| <= IDENTITY_SCALE`` (2^-26): then ``w s`` is within a quarter ulp of ``w`` and
    rounds back to ``w`` in float32, so :func:`normalise_columns` would leave the column as it
    is. Every other column is normalised as there (same sums, same scale or water filling,
    same rounding), its new sum and maximum stored and its mark cleared. After a sample that
    moved few columns this costs O(N + n_inputs k) for k changed columns instead of
    O(n_inputs N).
    """
    changed, sums, peaks = columns
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

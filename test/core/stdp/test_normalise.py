"""Tests of the weight-column normalisation of the numba engine."""

import numpy as np
import pytest

from topspark_ros.core.stdp.normalise import ColumnStats, normalise_changed_columns
from topspark_ros.core.stdp.normalise import normalise_columns


def test_water_filling_caps_a_dominant_weight_and_rescales_the_rest():
    col = np.full((784, 1), 0.01, np.float32)
    col[0, 0] = 50.0
    normalise_columns(col, 78.4, 1.0)
    assert col[0, 0] == 1.0 and col.sum(dtype=np.float64) == pytest.approx(78.4, rel=1e-6)
    zero = np.zeros((10, 1), np.float32)
    normalise_columns(zero, 5.0, 1.0)
    assert np.all(zero == np.float32(0.5))   # an all-zero column becomes uniform


def _normalise_both(w, norm, w_max, columns):
    """Return (normalise_columns(w), normalise_changed_columns(w, columns)) on copies."""
    full, changed = w.copy(), w.copy()
    normalise_columns(full, norm, w_max)
    normalise_changed_columns(changed, norm, w_max, columns)
    return full, changed


def test_normalising_only_the_written_columns_gives_the_same_weights_bit_for_bit():
    # Issue 16: after a sample only the columns STDP wrote are normalised (O(n_in) each);
    # every other column must come out exactly as a full normalise_columns pass leaves it.
    rng = np.random.default_rng(0)
    n_in, n = 784, 24
    w = rng.uniform(0.0, 0.3, (n_in, n)).astype(np.float32)
    w[0, 1] = 60.0  # water filling
    w[:, 2] = 0.0  # an all-zero column becomes uniform
    columns = ColumnStats.all_changed(n)
    full, changed = _normalise_both(w, 78.4, 1.0, columns)
    assert np.array_equal(full, changed) and not columns.changed.any()
    w = full
    for _ in range(30):
        # STDP-like edits of a few columns, marked; some unmarked columns are left as they are.
        cols = rng.choice(n, size=3, replace=False)
        rows = rng.choice(n_in, size=40, replace=False)
        w[np.ix_(rows, cols)] = np.clip(
            w[np.ix_(rows, cols)] + rng.normal(0.0, 0.05, (40, 3)), 0.0, 1.0).astype(np.float32)
        columns.changed[cols] = True
        full, changed = _normalise_both(w, 78.4, 1.0, columns)
        assert np.array_equal(full, changed)
        w = full
    # Nothing marked but another target sum: every column has to be rescaled, none skipped.
    full, changed = _normalise_both(w, 70.0, 1.0, columns)
    assert np.array_equal(full, changed) and not np.array_equal(full, w)
    # Nothing marked, same target: the columns are fixed points, nothing changes.
    full, changed = _normalise_both(changed, 70.0, 1.0, columns)
    assert np.array_equal(full, changed)

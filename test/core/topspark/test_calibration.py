"""Tests of calibrated scores (core/topspark/calibration.py): hand-computed bins and scores."""

import numpy as np
import pytest

from topspark_ros.core.topspark.calibration import (calibrated, check_bins, confidence_bins,
                                                    CONFIDENCE_LOWS, evidence_shares)


def test_shares_clip_negative_nan_and_infinite_evidence():
    shares = evidence_shares([[1.0, 3.0, -2.0, np.nan], [0.0, 0.0, 0.0, 0.0],
                              [np.inf, 1.0, 1.0, 2.0]])
    assert shares.tolist() == [[0.25, 0.75, 0.0, 0.0], [0.0] * 4, [0.0, 0.25, 0.25, 0.5]]
    assert evidence_shares(np.array([2.0, 2.0], np.float32)).tolist() == [0.5, 0.5]


def test_bins_count_each_result_by_its_class_share():
    scores = np.array([[4.0, 0.0, 0.0],    # class 0, share 1.0, right
                       [0.0, 3.0, 1.0],    # class 1, 0.75, right
                       [0.0, 3.0, 1.0],    # class 1, 0.75, wrong
                       [1.0, 1.0, 0.0],    # class 0 (the first of equal ones), 0.5, wrong
                       [0.0, 0.0, 0.0],    # no evidence: no class, in no bin
                       [0.0, 0.0, 9.5]])   # class 2, 1.0, wrong
    predicted = np.array([0, 1, 1, 0, -1, 2])
    labels = np.array([0, 1, 2, 1, 0, 0])
    bins = confidence_bins(scores, predicted, labels)
    assert bins == ((0.0, 0, 0), (0.5, 1, 0), (0.6, 0, 0), (0.7, 2, 1), (0.8, 0, 0),
                    (0.9, 0, 0), (0.95, 0, 0), (1.0, 2, 1))
    assert [row[0] for row in bins] == list(CONFIDENCE_LOWS)
    assert confidence_bins(scores, predicted, labels, lows=(0.0, 0.9)) == (
        (0.0, 3, 1), (0.9, 2, 1))
    assert confidence_bins(np.zeros((0, 3)), [], [])[0] == (0.0, 0, 0)
    with pytest.raises(ValueError, match='scores must be'):
        confidence_bins(scores, predicted[:3], labels[:3])
    with pytest.raises(ValueError, match='bin edges'):
        confidence_bins(scores, predicted, labels, lows=(0.1, 0.5))


def test_a_bin_of_few_results_leans_on_the_overall_accuracy():
    bins = ((0.0, 1, 0), (0.5, 100, 60), (1.0, 899, 800))
    overall = 860 / 1000
    assert calibrated(bins, 1.0) == pytest.approx((800 + 2 * overall) / 901)
    assert calibrated(bins, 0.999) == pytest.approx((60 + 2 * overall) / 102)
    assert calibrated(bins, 0.5) == calibrated(bins, 0.7)
    assert calibrated(bins, 0.1) == pytest.approx((0 + 2 * overall) / 3)  # one wrong: not 0
    assert calibrated(bins, 0.0) is None and calibrated(bins, 1.5) is None
    assert calibrated(((0.0, 0, 0), (1.0, 0, 0)), 1.0) is None  # nothing measured


@pytest.mark.parametrize('bins,problem', [
    ([], 'must be a list of rows'),
    ('0 1 1', 'must be a list of rows'),
    ([[0.0, 1]], 'row 0 must be'),
    ([[0.0, 1.5, 1]], 'row 0: n must be an integer'),
    ([[0.0, True, 1]], 'row 0: n must be an integer'),
    ([[0.0, 2, -1]], 'row 0: correct must be an integer >= 0'),
    ([[1.2, 2, 1]], 'row 0: low must be a number in'),
    ([[0.0, 2, 3]], r'row 0: correct \(3\) is more than n \(2\)'),
    ([[0.0, 2, 1], [0.0, 2, 1]], 'row 1: low must rise'),
    ([[0.2, 2, 1]], 'the first row must start at 0'),
    ([[0.0, 8, 1], [0.5, 3, 1]], 'the rows count 11 inputs, more than the 10 measured'),
])
def test_bad_bins_say_what_is_wrong(bins, problem):
    with pytest.raises(ValueError, match=problem):
        check_bins(bins, 10)


def test_good_bins_come_back_as_typed_rows():
    assert check_bins([[0, 4, 2], [0.5, np.int64(3), 3]], 10) == ((0.0, 4, 2), (0.5, 3, 3))

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


def test_scores_rise_with_confidence_and_empty_bins_take_the_one_below():
    """
    Bins whose accuracy falls as confidence rises are pooled (isotonic), weighted by results.

    0.7 (15 of 50 right) falls below 0.6 (30 of 50): the two are pooled; 0.9 (9 of 10) is
    above 1.0 (640 of 790): pooled too. 0.8 holds nothing: it scores as 0.7 below it.
    """
    bins = ((0.0, 0, 0), (0.5, 100, 40), (0.6, 50, 30), (0.7, 50, 15), (0.8, 0, 0),
            (0.9, 10, 9), (1.0, 790, 640))
    a = 734 / 1000

    def smoothed(n, correct):
        return (correct + 2 * a) / (n + 2), n + 2

    (s5, _), (s6, w6), (s7, w7) = smoothed(100, 40), smoothed(50, 30), smoothed(50, 15)
    (s9, w9), (s10, w10) = smoothed(10, 9), smoothed(790, 640)
    middle = (s6 * w6 + s7 * w7) / (w6 + w7)
    top = (s9 * w9 + s10 * w10) / (w9 + w10)
    assert s6 > s7 and s9 > s10 and s5 < middle < top  # what the pooling is for
    assert calibrated(bins, 0.3) == pytest.approx(s5)  # below the first bin with results
    assert calibrated(bins, 0.55) == pytest.approx(s5)
    for confidence in (0.6, 0.65, 0.75, 0.85):
        assert calibrated(bins, confidence) == pytest.approx(middle)
    assert calibrated(bins, 0.95) == calibrated(bins, 1.0) == pytest.approx(top)
    scores = [calibrated(bins, c) for c in np.linspace(0.01, 1.0, 100)]
    assert scores == sorted(scores)
    # A converted model's bins: nothing at exactly 1.0; such a result scores as 0.95's.
    converted = ((0.0, 197, 65), (0.5, 137, 69), (0.95, 1050, 1016), (1.0, 0, 0))
    assert calibrated(converted, 1.0) == calibrated(converted, 0.97) > 0.96


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

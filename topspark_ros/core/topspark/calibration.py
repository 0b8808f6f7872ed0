"""
Calibrated scores: how often a result of a given confidence was right, measured per T.

A classifier's ``confidence`` is the winning class's share of the evidence (output spikes, or
a converted network's class scores clipped at 0): with few steps few neurons fire, so most
inputs have evidence for one class only and a share of exactly 1.0, right or wrong (with the
shipped model and profile 78 % of the test images, of which 80 to 84 % right, at T=8 and 64).
A consumer that acts on "score > 0.9" needs the probability of being right instead.

``topspark sweep`` measures it (labelled data only): at each T, the inputs are put in bins by
their confidence and each bin keeps how many there were and how many of them were right, in
the profile entry's ``confidence_bins`` (:func:`confidence_bins`). The classifier then scores
a result by the accuracy of its bin (:func:`calibrated`): histogram binning, made monotone
in confidence by pooling adjacent bins (isotonic), with the bins' counts kept so that a bin
of few inputs leans on the T's overall accuracy and on its neighbours instead of on its own
handful.

Bins are rows ``[low, n, correct]``: the inputs whose confidence is at least ``low`` and below
the next row's ``low`` (the last row: up to 1 included). Inputs without evidence (no output
spike: no class) are in no bin; their result carries no class to score.
"""

import functools
from typing import Optional, Sequence, Tuple

import numpy as np

CONFIDENCE_LOWS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
"""Lower edges of the bins :func:`confidence_bins` makes; the last holds exactly 1.0."""

PRIOR_WEIGHT = 2.0
"""Inputs' worth of the T's overall accuracy mixed into each bin's (:func:`calibrated`)."""

Bins = Tuple[Tuple[float, int, int], ...]


def evidence_shares(scores) -> np.ndarray:
    """
    Return each class's share of the evidence, ``float64 [..., C]``, rows summing to 1 or 0.

    Scores are clipped at 0 (NaN and +inf as 0); a row without evidence is all 0. The share of
    the best class is the result's ``confidence`` (as ``vision_msgs`` carries it).
    """
    evidence = np.clip(np.nan_to_num(np.asarray(scores, np.float64), nan=0.0, posinf=0.0),
                       0.0, None)
    total = evidence.sum(axis=-1, keepdims=True)
    return np.divide(evidence, total, out=np.zeros_like(evidence), where=total > 0.0)


def confidence_bins(scores, predicted, labels, lows: Sequence[float] = CONFIDENCE_LOWS) -> Bins:
    """
    Return the bins ``((low, n, correct), ...)`` of results with ``scores`` ``[N, C]``.

    A result's class is ``predicted`` (the model's: its best score, -1 without evidence), its
    confidence that class's share of the evidence (:func:`evidence_shares`); it is right when
    the class equals its label. Results without a class or without evidence are left out, so
    the bins' ``correct`` add up to the results counted right.
    """
    shares = evidence_shares(scores)
    predicted, labels = np.asarray(predicted, np.int64), np.asarray(labels)
    if shares.ndim != 2 or not len(shares) == len(predicted) == len(labels):
        raise ValueError(f'scores must be [N, C] for N={len(labels)} predictions and labels, '
                         f'got {shares.shape} and {len(predicted)} predictions')
    lows = np.asarray(lows, np.float64)
    if lows.size == 0 or lows[0] != 0.0 or np.any(np.diff(lows) <= 0.0) or lows[-1] > 1.0:
        raise ValueError(f'bin edges must rise from 0 to at most 1, got {lows.tolist()}')
    classed = (predicted >= 0) & (predicted < shares.shape[1])
    confidence = np.zeros(len(predicted))
    rows = np.flatnonzero(classed)
    confidence[rows] = shares[rows, predicted[rows]]
    some = classed & (confidence > 0.0)
    right = some & (predicted == labels)
    which = np.searchsorted(lows, confidence, side='right') - 1
    n = np.bincount(which[some], minlength=len(lows))
    correct = np.bincount(which[right], minlength=len(lows))
    return tuple((float(low), int(k), int(c)) for low, k, c in zip(lows, n, correct))


@functools.lru_cache(maxsize=256)
def score_map(bins: Bins) -> Tuple[Tuple[float, float], ...]:
    """
    Return ``((low, score), ...)``: the calibrated score of each bin that holds results.

    Each bin's accuracy with :data:`PRIOR_WEIGHT` results of the overall accuracy (of every
    bin) mixed in, ``(correct + w a) / (n + w)``, then made non-decreasing in confidence by
    pooling adjacent bins that are not (pool adjacent violators, weighted by ``n + w``): a
    more confident result never scores below a less confident one, and a bin of a handful of
    results is pooled with its neighbours instead of speaking alone. Empty bins have no row.
    """
    rows = [(low, n, correct) for low, n, correct in bins if n > 0]
    if not rows:
        return ()
    overall = sum(row[2] for row in rows) / sum(row[1] for row in rows)
    blocks: list = []  # [score, weight, first row, last row]
    for i, (_, n, correct) in enumerate(rows):
        blocks.append([(correct + PRIOR_WEIGHT * overall) / (n + PRIOR_WEIGHT),
                       n + PRIOR_WEIGHT, i, i])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            score, weight, _, last = blocks.pop()
            before, weight_before, first, _ = blocks.pop()
            blocks.append([(before * weight_before + score * weight) / (weight_before + weight),
                           weight_before + weight, first, last])
    return tuple((rows[i][0], score) for score, _, first, last in blocks
                 for i in range(first, last + 1))


def calibrated(bins: Bins, confidence: float) -> Optional[float]:
    """
    Return the probability that a result of ``confidence`` is right, from ``bins``.

    The score of its bin (:func:`score_map`); a confidence in a bin that holds no result takes
    that of the nearest bin below that does (above, when none below does). None when the bins
    hold no result or ``confidence`` is not in (0, 1].
    """
    if not 0.0 < confidence <= 1.0:
        return None
    table = score_map(tuple(bins))
    if not table:
        return None
    score = table[0][1]
    for low, value in table:
        if low > confidence:
            break
        score = value
    return score


def check_bins(bins, n_samples: int, right: Optional[int] = None) -> Bins:
    """
    Return ``bins`` as a tuple of ``(float, int, int)`` rows, or raise ValueError saying why.

    Rows ``[low, n, correct]``: ``low`` rising from 0 to at most 1, ``0 <= correct <= n``,
    the counts summing to at most ``n_samples`` and, given ``right`` (the results counted
    right in the same run), the ``correct`` summing to it: bins of another run than the
    accuracy beside them are refused.
    """
    if isinstance(bins, (str, bytes)) or not hasattr(bins, '__len__') or not len(bins):
        raise ValueError(f'must be a list of rows [low, n, correct], got {bins!r}')
    rows = []
    for i, row in enumerate(bins):
        if isinstance(row, (str, bytes)) or not hasattr(row, '__len__') or len(row) != 3:
            raise ValueError(f'row {i} must be [low, n, correct], got {row!r}')
        low, n, correct = row
        if isinstance(low, bool) or not isinstance(low, (int, float)) or not 0.0 <= low <= 1.0:
            raise ValueError(f'row {i}: low must be a number in [0, 1], got {low!r}')
        for name, value in (('n', n), ('correct', correct)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                    or value < 0:
                raise ValueError(f'row {i}: {name} must be an integer >= 0, got {value!r}')
        if correct > n:
            raise ValueError(f'row {i}: correct ({correct}) is more than n ({n})')
        if rows and not low > rows[-1][0]:
            raise ValueError(f'row {i}: low must rise, got {low!r} after {rows[-1][0]!r}')
        rows.append((float(low), int(n), int(correct)))
    if rows[0][0] != 0.0:
        raise ValueError(f'the first row must start at 0, got {rows[0][0]!r}')
    if sum(row[1] for row in rows) > n_samples:
        raise ValueError(f'the rows count {sum(row[1] for row in rows)} inputs, more than the '
                         f'{n_samples} measured')
    if right is not None and sum(row[2] for row in rows) != right:
        raise ValueError(f'the rows count {sum(row[2] for row in rows)} results right, the '
                         f'accuracy says {right} of {n_samples}: not the same run')
    return tuple(rows)

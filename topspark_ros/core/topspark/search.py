"""
Candidate proposals of the parameter enhancement's searches: Optuna's TPE, or seeded random.

A search at one T proposes candidates (knob name -> value) over a few knobs
(:class:`~topspark_ros.core.topspark.knobs.Knob`); the caller
(:func:`~topspark_ros.core.topspark.enhance.search_inference`, ``search_learning``) scores them
and says how good each was. Both samplers first propose the model's own values (``{}``) and
the given ``first`` candidates (the sensitivity analysis's one-at-a-time best), then:

- ``'tpe'`` (default): Optuna's Tree-structured Parzen Estimator over the knobs' factors
  (log-uniform on each knob's ``search`` range, multivariate), told every score, so later
  candidates follow the scores of earlier ones. It is asked ``batch`` trials at a time and
  told their scores in the order asked (Optuna's constant liar keeps a batch's trials apart),
  so the outcome depends on ``batch`` and the seed, not on where the batch was measured. The
  first ``n_startup`` trials (:func:`tpe_startup_trials`, the ``first`` candidates included)
  are random.
- ``'random'``: factors drawn log-uniformly from each knob's range by ``numpy`` PCG64, all at
  once (the draws do not depend on scores): the search the enhancement had before TPE, value
  for value for the same seed words.

Values are rounded as :meth:`Knob.value` rounds them; a proposal equal to one already
proposed is not measured twice (TPE is told the earlier score). Every random choice is seeded
by *seed words* (:func:`seed_words`): the search seed, T, the stage, and a fingerprint of the
validation data (:func:`data_key`), so the same seed proposes different candidates on another
data set (TPE: also through the scores).
"""

import hashlib
import math
from typing import Any, Mapping, Optional, Sequence

# numpy and optuna are imported where they are used: the CLI imports this module for its
# option choices, and `topspark --help` stays fast.

SAMPLERS = ('tpe', 'random')
"""Names of the samplers (``topspark enhance --sampler``)."""
DEFAULT_SAMPLER = 'tpe'
DEFAULT_TRIAL_BATCH = 4
"""TPE trials asked at once (and measured in parallel with ``--ray``)."""


def data_key(*arrays: Any) -> int:
    """
    Return a 32-bit fingerprint of numpy ``arrays`` (dtype, shape, bytes): images, labels.

    An event data set's object array of windows by the windows' values
    (:func:`~topspark_ros.core.topspark.trials.update_digest`).
    """
    from topspark_ros.core.topspark.trials import update_digest

    digest = hashlib.sha256()
    for array in arrays:
        update_digest(digest, array)
    return int(digest.hexdigest()[:8], 16)


def seed_words(seed: int, timesteps: int, stage: int, key: Optional[int]) -> list:
    """
    Return the seed words of one search: ``[seed, T]`` (+ ``[1]`` for the learning stage).

    With a data fingerprint ``key`` (:func:`data_key`): ``[seed, T, stage, key]``. Without
    one, the words are those the random search always used (``stage`` 0: inference, 1:
    learning), so ``key`` None reproduces its values exactly.
    """
    if key is None:
        return [int(seed), int(timesteps)] + ([1] if stage else [])
    return [int(seed), int(timesteps), int(stage), int(key)]


def tpe_startup_trials(budget: int) -> int:
    """Return the random trials TPE starts with: a quarter of the budget, at least 3."""
    return max(3, int(budget) // 4)


def _key(values: Mapping[str, float]) -> tuple:
    return tuple(sorted(values.items()))


def draw_candidates(knobs: Sequence, params, budget: int, rng: Any,
                    first: Sequence[Mapping[str, float]]) -> list:
    """
    Return up to ``budget`` distinct candidates: ``{}``, ``first``, then random factors.

    ``rng``: a ``numpy.random.Generator``; each random candidate draws one factor per knob,
    log-uniformly in the knob's ``search`` range, at most ``50 * budget`` draws.
    """
    out, seen = [], set()

    def add(values):
        key = _key(values)
        if key not in seen and len(out) < budget:
            seen.add(key)
            out.append(dict(values))

    add({})
    for values in first:
        add(values)
    tries = 0
    while len(out) < budget and tries < 50 * budget:
        tries += 1
        values = {}
        for knob in knobs:
            low, high = knob.search
            factor = math.exp(rng.uniform(math.log(low), math.log(high)))
            values[knob.name] = knob.value(params, factor)
        add({k: v for k, v in values.items() if v != getattr(params, k)})
    return out


def factors_of(knobs: Sequence, params, values: Mapping[str, float]) -> Optional[dict]:
    """
    Return the factor of every knob that gives ``values`` (1: a knob ``values`` leaves out).

    None when ``values`` names a parameter that is not one of ``knobs`` or a factor falls out
    of its knob's search range (TPE is then not told that candidate, only measures it).
    """
    names = {k.name for k in knobs}
    if set(values) - names:
        return None
    out = {}
    for knob in knobs:
        own = getattr(params, knob.name)
        if knob.name not in values:
            out[knob.name] = 1.0
            continue
        base = knob.base(params)
        if own == base:
            return None
        factor = (values[knob.name] - base) / (own - base)
        low, high = knob.search
        if not low <= factor <= high:
            return None
        out[knob.name] = float(factor)
    return out


class RandomProposer:
    """Seeded random candidates (module doc), all proposed in one batch."""

    def __init__(self, knobs: Sequence, params, budget: int,
                 first: Sequence[Mapping[str, float]], words: Sequence[int]) -> None:
        """Draw the candidates with ``numpy.random.default_rng(words)``."""
        import numpy as np

        self._candidates = draw_candidates(knobs, params, int(budget),
                                           np.random.default_rng(list(words)), first)
        self.planned = len(self._candidates)
        self._asked = False

    def ask(self) -> list:
        """Return every candidate the first time, then ``[]``."""
        if self._asked:
            return []
        self._asked = True
        return [dict(v) for v in self._candidates]

    def tell(self, objectives: Sequence[float]) -> None:
        """Ignore the scores (random draws do not depend on them)."""


class TPEProposer:
    """
    Candidates from Optuna's TPE sampler, ``batch`` at a time (module doc).

    Objectives are maximised. ``planned`` is the budget (an upper bound: TPE stops early when
    it keeps proposing values already measured, after ``50 * budget`` proposals).
    """

    def __init__(self, knobs: Sequence, params, budget: int,
                 first: Sequence[Mapping[str, float]], words: Sequence[int],
                 batch: int = DEFAULT_TRIAL_BATCH) -> None:
        """Make a seeded in-memory study over the knobs' factors."""
        import numpy as np
        import optuna
        from optuna.distributions import FloatDistribution

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self._knobs, self._params = tuple(knobs), params
        self.planned = max(int(budget), 1)
        self._batch = max(int(batch), 1)
        self._distributions = {k.name: FloatDistribution(k.search[0], k.search[1], log=True)
                               for k in self._knobs}
        seed = int(np.random.SeedSequence(list(words)).generate_state(1)[0])
        self._study = optuna.create_study(
            direction='maximize',
            sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                               constant_liar=True,
                                               n_startup_trials=tpe_startup_trials(budget)))
        self._first = []
        seen = set()
        for values in [{}] + [dict(v) for v in first]:
            if _key(values) not in seen and len(self._first) < self.planned:
                seen.add(_key(values))
                self._first.append(values)
        self._scores = {}  # candidate key -> objective, of everything measured
        self._proposed = 0
        self._tries = 0
        self._pending = None  # (fresh candidates, [(trial or None, key)]) of the last ask

    def _values(self, factors: Mapping[str, float]) -> dict:
        values = {k.name: k.value(self._params, factors[k.name]) for k in self._knobs}
        return {k: v for k, v in values.items() if v != getattr(self._params, k)}

    def ask(self) -> list:
        """Return the next batch of new candidates (``[]``: the budget is spent)."""
        if self._pending is not None:
            raise RuntimeError('tell() the scores of the last batch first')
        if self._first:
            fresh, self._first = self._first, []
            self._pending = (fresh, [(None, _key(v)) for v in fresh])
            self._proposed += len(fresh)
            return [dict(v) for v in fresh]
        want = min(self._batch, self.planned - self._proposed)
        fresh, asked, keys = [], [], set()
        while len(fresh) < want and self._tries < 50 * self.planned:
            self._tries += 1
            trial = self._study.ask(self._distributions)
            values = self._values(trial.params)
            key = _key(values)
            if key in self._scores:  # measured before: tell its score at once
                self._study.tell(trial, self._scores[key])
                continue
            asked.append((trial, key))
            if key not in keys:
                keys.add(key)
                fresh.append(values)
        if not asked:
            return []
        self._pending = (fresh, asked)
        self._proposed += len(fresh)
        return [dict(v) for v in fresh]

    def tell(self, objectives: Sequence[float]) -> None:
        """Tell the objectives of the last batch, in the order :meth:`ask` returned it."""
        fresh, asked = self._pending
        self._pending = None
        if len(objectives) != len(fresh):
            raise ValueError(f'{len(objectives)} objectives for {len(fresh)} candidates')
        for values, objective in zip(fresh, objectives):
            self._scores[_key(values)] = float(objective)
        for trial, key in asked:
            if trial is not None:
                self._study.tell(trial, self._scores[key])
                continue
            values = dict(key)
            factors = factors_of(self._knobs, self._params, values)
            if factors is not None:
                self._study.add_trial(self._optuna.trial.create_trial(
                    params=factors, distributions=self._distributions,
                    value=self._scores[key]))


def make_proposer(sampler: str, knobs: Sequence, params, budget: int,
                  first: Sequence[Mapping[str, float]], words: Sequence[int],
                  batch: int = DEFAULT_TRIAL_BATCH):
    """Return the proposer of ``sampler`` (one of :data:`SAMPLERS`)."""
    if sampler == 'random':
        return RandomProposer(knobs, params, budget, first, words)
    if sampler == 'tpe':
        return TPEProposer(knobs, params, budget, first, words, batch=batch)
    raise ValueError(f'unknown sampler {sampler!r} (choose from {", ".join(SAMPLERS)})')

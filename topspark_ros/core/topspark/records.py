"""
The enhancement in the timestep profile: the record of how values were found, and their use.

``topspark enhance`` turns an :class:`~topspark_ros.core.topspark.enhance.Enhancement` into a
record (:func:`describe`: the command, the data, the search settings, the sensitivity ranking
and, per T, the values with the validation figures before and after) and writes the values
into the profile's entries (:func:`apply_to_profile`). The classifier session applies them at
their T in inference and on-line learning, ``topspark sweep --params-from`` measures them on
the test split, and ``topspark train --params-from PROFILE -T T`` trains a new model at T with
them over the own parameters of the profile's model (:func:`params_for_profile`).
"""

from dataclasses import replace
import os
from typing import Mapping, Optional, Union

from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.topspark.enhance import Enhancement, Score
from topspark_ros.core.topspark.profile import resolve_model_path, TimestepProfile


def _pair(prefix: str, before: Optional[Score], after: Optional[Score]) -> dict:
    """Return ``{prefix_accuracy_before: ..., ..._after: ...}`` for accuracy, energy, spikes."""
    out = {}
    for name in ('accuracy', 'energy_j', 'spikes'):
        out[f'{prefix}_{name}_before'] = None if before is None else getattr(before, name)
        out[f'{prefix}_{name}_after'] = None if after is None else getattr(after, name)
    return out


_SAMPLER_TEXT = {'tpe': 'search with Optuna TPE (candidates proposed from the scores of the '
                        'earlier ones, in batches of trial_batch)',
                 'random': 'random search'}


FIRST_OF_PERMUTATION = ('the first n_samples of split_indices(len(train), [n_samples, '
                        'scoring_runs.confirm_samples], seed)')
"""How the validation images are drawn unless :func:`describe` is told otherwise."""


def describe(result: Enhancement, *, command: str, dataset: str, created: str,
             selection: Optional[str] = None) -> dict:
    """
    Return the record of ``result`` that goes into the profile (plain data).

    ``selection``: how the validation images were drawn, where not the first of the
    enhancement's permutation (images the model did not learn from).

    It says what was enhanced and how: the command, the data, the search settings, the
    sensitivity ranking and, per T, the values, the knobs searched and the validation figures
    before (the model's own values) and after. ``measured_with_params`` is False: the profile
    entries' measurements were made before; ``topspark sweep --params-from`` re-measures them
    with the values and sets it True.
    """
    s = result.settings
    sampler = s.get('sampler', 'random')
    learning = s.get('learn_budget', 0) > 0
    per_t = []
    for item in sorted(result.timesteps, key=lambda i: i.timesteps):
        row = {'timesteps': item.timesteps,
               'params': None if item.params is None else dict(item.params),
               'searched': list(item.inference.knobs),
               'candidates': item.inference.candidates}
        row.update(_pair('val', item.inference.before, item.inference.after))
        if item.learning is not None:
            row['train_searched'] = list(item.learning.knobs)
            row['train_candidates'] = item.learning.candidates
            row.update(_pair('train', item.learning_own, item.learning.after))
            row['train_accuracy_inference_values_only'] = item.learning.before.accuracy
        if item.kept_held:
            row['kept'] = ('the values the profile held: the values found learn worse than '
                           'the own ones (train_accuracy_after < train_accuracy_before), the '
                           'held ones not (train_accuracy_held)')
            row['train_accuracy_held'] = item.learning_held.accuracy
        elif item.learns_worse:
            row['kept'] = ("the model's own values: the values found learn worse than the "
                           'own ones (train_accuracy_after < train_accuracy_before)'
                           + ('' if item.learning_held is None else ', and so do the values '
                              'the profile held (train_accuracy_held)'))
            if item.learning_held is not None:
                row['train_accuracy_held'] = item.learning_held.accuracy
        per_t.append(row)
    return {
        'command': command,
        'created': created,
        'method': ('topspark_ros.core.topspark.enhance: one-at-a-time sensitivity analysis of the '
                   f'knobs, then per T a seeded successive-halving {_SAMPLER_TEXT[sampler]} '
                   'over the inference knobs with the largest gains and a search of the '
                   'learning knobs by scoring runs (training at T from scratch)'),
        'sampler': sampler,
        'trial_batch': s.get('trial_batch'),
        'objective': (f'accuracy - {s["energy_penalty"]:g} * energy / energy with the '
                      f"model's own values ({s['energy_preset']}), subject to accuracy >= "
                      "the model's own on the validation set (else params: null)"),
        'validation': {'dataset': dataset, 'split': 'train', 'n_samples': s['n_val'],
                       'seed': s['seed'], 'data_key': s.get('data_key'),
                       'selection': (selection or FIRST_OF_PERMUTATION) + (
                           '; the test split is not used; data_key (a fingerprint of these '
                           'images and labels) seeds the search with seed')},
        'scoring_runs': ({'neurons': s['learn_neurons'], 'samples': s['learn_samples'],
                          'confirm_samples': s['confirm_samples'],
                          'confirm_top': s['confirm_top'],
                          'selection': 'the next confirm_samples of the same permutation (short '
                                       'runs: their first samples); a fresh network learns '
                                       'them at T, is labelled from them at T and measured on '
                                       'the validation set at T; train_* figures are of '
                                       'confirmation runs when confirm_top > 0'}
                         if learning else None),
        'budget': s['budget'], 'learn_budget': s['learn_budget'], 'top_k': s['top_k'],
        'energy_penalty': s['energy_penalty'], 'energy_preset': s['energy_preset'],
        'seed': s['seed'],
        'ranking': [{'knob': knob, 'stage': stage, 'mean_spread': spread, 'mean_gain': gain}
                    for knob, stage, spread, gain in result.sensitivity.ranking()],
        'timesteps': per_t,
        'measured_with_params': False,
    }


def apply_to_profile(profile, result: Enhancement, record: Mapping):
    """
    Return ``profile`` with the values of ``result`` as the ``params`` of its T entries.

    Entries of T that were not enhanced keep their params; every measurement is kept as it is,
    but the results by confidence (``confidence_bins``, ``early_exit_confidence_bins``) of a T
    whose values change are dropped:
    the classifier would score its results at the new values by those of the old ones (until
    ``topspark sweep`` measures them again it publishes the plain shares).
    ``record`` (see :func:`describe`) becomes the profile's ``enhancement``, with the rows of an
    earlier record for the T whose params are kept (each with its run's ``command`` and
    ``seed``: a second run on other T described only itself). A T of ``result`` that the
    profile lacks is a ``ValueError`` (run ``topspark sweep`` for it first).
    """
    missing = sorted({i.timesteps for i in result.timesteps} - set(profile.timesteps))
    if missing:
        raise ValueError(f'the profile has no entry for T={missing} (profiled: '
                         f'{profile.timesteps}); run `topspark sweep` with them first')
    done = {i.timesteps for i in result.timesteps}
    entries = tuple(_with_params(e, result.params_for(e.timesteps)) if e.timesteps in done
                    else e for e in profile.entries)
    earlier = profile.enhancement or {}
    kept = [{**row, 'command': row.get('command', earlier.get('command')),
             'seed': row.get('seed', earlier.get('seed'))}
            for row in earlier.get('timesteps') or ()
            if isinstance(row, Mapping) and row.get('timesteps') not in done
            and profile.params_for(row.get('timesteps')) is not None]
    record = dict(record)
    record['timesteps'] = sorted(list(record.get('timesteps', ())) + kept,
                                 key=lambda row: row['timesteps'])
    return replace(profile, entries=entries, enhancement=record)


def _with_params(entry, params):
    """Return ``entry`` with ``params``; its results by confidence only when they are its own."""
    if params == entry.params:
        return entry
    return replace(entry, params=params, confidence_bins=None, early_exit_confidence_bins=None)


def params_for_profile(profile: TimestepProfile, profile_path: Union[str, os.PathLike],
                       timesteps: int):
    """
    Return the run-time parameters ``profile`` gives for ``timesteps``, or None.

    The values it enhanced for exactly ``timesteps`` (:meth:`TimestepProfile.params_for`)
    apply over the own parameters of the model it describes, loaded from its ``model_path``
    (relative to the folder of ``profile_path``, the file it was read from). None when the
    entry of ``timesteps`` has no values, or T was not profiled.
    """
    values = profile.params_for(timesteps)
    if values is None:
        return None
    model, _ = load_checkpoint(resolve_model_path(profile, profile_path))
    return model.params_for_values(values)

"""Tests of the enhancement's records in profiles (core/topspark/records.py), on made results."""

import dataclasses

import pytest

from topspark_ros.core.checkpoint import save_checkpoint
from topspark_ros.core.energy import OpCounts
from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig
from topspark_ros.core.stdp.knobs import stdp_knobs
from topspark_ros.core.topspark.enhance import (Enhancement, Score, SearchResult, Sensitivity,
                                                SensitivityPoint, TimestepEnhancement)
from topspark_ros.core.topspark.profile import ProfileEntry, save_profile, TimestepProfile
from topspark_ros.core.topspark.records import apply_to_profile, describe, params_for_profile

KNOBS = {k.name: k for k in stdp_knobs(1.0)}
OWN = Score(accuracy=0.5, energy_j=1e-6, spikes=10.0, n_samples=200)
BETTER = Score(accuracy=0.7, energy_j=1.2e-6, spikes=12.0, n_samples=200)
SETTINGS = {'budget': 4, 'learn_budget': 0, 'top_k': 2, 'energy_penalty': 0.02,
            'learn_neurons': 0, 'learn_samples': 0, 'confirm_samples': 0, 'confirm_top': 0,
            'n_val': 200, 'seed': 5, 'energy_preset': 'cmos45_fp32', 'sampler': 'random',
            'trial_batch': None, 'data_key': 1234}


def _result(params=(('theta_scale', 0.5),)) -> Enhancement:
    """Return a made enhancement of T=16 (one knob, own value and one factor measured)."""
    points = (SensitivityPoint(16, 'theta_scale', 'inference', 0.5, 0.5, BETTER),
              SensitivityPoint(16, 'theta_scale', 'inference', 1.0, 1.0, OWN))
    sensitivity = Sensitivity(grid=(16,), knobs=(KNOBS['theta_scale'],), points=points)
    values = dict(params)
    item = TimestepEnhancement(timesteps=16, params=values or None, inference=SearchResult(
        values=values, knobs=('theta_scale',), candidates=4, before=OWN, after=BETTER))
    return Enhancement(sensitivity=sensitivity, timesteps=(item,), settings=SETTINGS)


def _profile(grid=(16, 32)) -> TimestepProfile:
    entries = tuple(ProfileEntry(timesteps=t, accuracy=0.5, accuracy_ci95=(0.4, 0.6),
                                 n_samples=100, latency_ms=1.0, spikes=5.0, energy_j=1e-6,
                                 ops=OpCounts(accumulates=10.0)) for t in grid)
    return TimestepProfile(model_path='m.json', model_sha256='0' * 64, model_family='stdp',
                           dataset='fashion-mnist', split='test', n_samples=100,
                           machine='test', energy_preset='cmos45_fp32',
                           created='2026-11-23T10:00:00+00:00', package_version='0.1.0',
                           entries=entries)


def test_describe_records_values_figures_and_settings():
    record = describe(_result(), command='topspark enhance -m m.json', dataset='fashion-mnist',
                      created='2026-11-23T10:00:00+00:00')
    assert record['timesteps'] == [{
        'timesteps': 16, 'params': {'theta_scale': 0.5}, 'searched': ['theta_scale'],
        'candidates': 4, 'val_accuracy_before': 0.5, 'val_accuracy_after': 0.7,
        'val_energy_j_before': 1e-6, 'val_energy_j_after': 1.2e-6, 'val_spikes_before': 10.0,
        'val_spikes_after': 12.0}]
    (rank,) = record['ranking']
    assert (rank['knob'], rank['stage']) == ('theta_scale', 'inference')
    assert rank['mean_spread'] == pytest.approx(0.2) and rank['mean_gain'] == pytest.approx(0.2)
    assert record['sampler'] == 'random' and 'random search' in record['method']
    assert record['objective'].startswith('accuracy - 0.02 * energy')
    assert record['validation'] == {
        'dataset': 'fashion-mnist', 'split': 'train', 'n_samples': 200, 'seed': 5,
        'data_key': 1234, 'selection': record['validation']['selection']}
    assert record['scoring_runs'] is None and record['measured_with_params'] is False
    assert (record['command'], record['created']) == ('topspark enhance -m m.json',
                                                      '2026-11-23T10:00:00+00:00')


def test_apply_sets_the_params_of_the_enhanced_t_only():
    profile, result = _profile(), _result()
    record = describe(result, command='x', dataset='d', created='now')
    enhanced = apply_to_profile(profile, result, record)
    assert enhanced.params_for(16) == {'theta_scale': 0.5} and enhanced.params_for(32) is None
    for before, after in zip(profile.entries, enhanced.entries):  # measurements kept
        assert dataclasses.replace(after, params=before.params) == before
    assert enhanced.enhancement == record
    kept = apply_to_profile(enhanced, _result(params=()), record)  # the own values won
    assert kept.params_for(16) is None
    with pytest.raises(ValueError, match='no entry for T'):
        apply_to_profile(_profile(grid=(32,)), result, record)


def test_a_second_run_on_other_t_keeps_the_first_runs_rows():
    """The record described only the second run: T=32's values lost their origin."""
    first = describe(_result(), command='enhance --grid 16 --seed 5', dataset='d', created='1')
    once = apply_to_profile(_profile(), _result(), first)
    at_32 = _result()
    at_32 = dataclasses.replace(at_32, timesteps=(dataclasses.replace(
        at_32.timesteps[0], timesteps=32, params={'theta_scale': 0.25}),),
        settings={**SETTINGS, 'seed': 9})
    second = describe(at_32, command='enhance --grid 32 --seed 9', dataset='d', created='2')
    twice = apply_to_profile(once, at_32, second)
    assert twice.params_for(16) == {'theta_scale': 0.5}
    assert twice.params_for(32) == {'theta_scale': 0.25}
    rows = twice.enhancement['timesteps']
    assert [r['timesteps'] for r in rows] == [16, 32]
    assert (rows[0]['command'], rows[0]['seed']) == ('enhance --grid 16 --seed 5', 5)
    assert 'command' not in rows[1] and twice.enhancement['command'].endswith('--seed 9')
    # T=16 enhanced again, by the own values this time: no row of the first run is left.
    own = _result(params=())
    again = apply_to_profile(twice, own, describe(own, command='c', dataset='d', created='3'))
    assert [r['timesteps'] for r in again.enhancement['timesteps']] == [16, 32]
    assert again.enhancement['timesteps'][0]['params'] is None


def test_params_for_profile_applies_over_the_profiles_model(tmp_path):
    own = DynamicsParams(v_thresh_mv=-50.0)
    model = DiehlCookNetwork(STDPConfig(n_neurons=4, seed=0), own)
    save_checkpoint(tmp_path / 'm.json', model)
    profile = apply_to_profile(_profile(), _result(), {'command': 'x'})
    path = save_profile(profile, tmp_path / 'm.profile.yaml')
    params = params_for_profile(profile, path, 16)
    assert params == own.replace(theta_scale=0.5)  # the model's own, not the standard ones
    assert params_for_profile(profile, path, 32) is None
    assert params_for_profile(profile, path, 8) is None

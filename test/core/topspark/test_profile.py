"""Tests of timestep profiles: round trips, strict schema errors, atomic saving, Wilson CI."""

import copy
import dataclasses
import os

import pytest
from topspark_ros.core.energy import OpCounts
from topspark_ros.core.topspark import profile as profile_module
from topspark_ros.core.topspark.profile import (default_profile_path, load_profile,
                                                profile_from_dict, profile_to_dict, ProfileEntry,
                                                ProfileError, save_profile, SCHEMA_VERSION,
                                                TimestepProfile, wilson_interval)
import yaml

MODELS = __import__('pathlib').Path(__file__).resolve().parents[3] / 'models'

SHA = '0123456789abcdef' * 4


def _entry(t: int, acc: float, **extra) -> ProfileEntry:
    n = 1000
    low, high = wilson_interval(round(acc * n), n)
    values = {'timesteps': t, 'accuracy': round(acc * n) / n, 'accuracy_ci95': (low, high),
              'n_samples': n, 'latency_ms': 0.013 * t, 'spikes': 3.3 * t,
              'energy_j': 1.7e-8 * t,
              'ops': OpCounts(accumulates=1234.5 * t, macs=0.0, neuron_updates=410.0 * t)}
    values.update(extra)
    return ProfileEntry(**values)


def _profile(**extra) -> TimestepProfile:
    entries = (
        _entry(350, 0.826),
        _entry(32, 0.71, params={'v_threshold_mv': -52.5, 'theta_plus_mv': 0.1}),
        _entry(100, 0.811, train_latency_ms=2.25, train_ops=OpCounts(1e6, 0, 4e4, 3.1e4),
               train_energy_j=1.23456789e-6, early_exit_accuracy=0.8,
               early_exit_mean_timesteps=61.25,
               params={'v_threshold_mv': -53.0, 'rate_hz': 63.75}),
    )
    values = {'model_path': 'stdp_fmnist_n400.json', 'model_sha256': SHA,
              'model_family': 'stdp', 'dataset': 'fashion-mnist', 'split': 'test',
              'n_samples': 1000, 'machine': 'x86_64, 2 CPUs, torch cpu',
              'energy_preset': 'cmos45_fp32', 'created': '2026-11-23T10:00:00+00:00',
              'package_version': '0.1.0', 'entries': entries}
    values.update(extra)
    return TimestepProfile(**values)


def test_a_checkpoint_given_as_a_profile_says_so(tmp_path):
    """It read 'family: unknown key (allowed: schema_version, ...)' (a CLI review)."""
    from topspark_ros.core.topspark.profile import ProfileError
    models = __import__('pathlib').Path(__file__).resolve().parents[3] / 'models'
    with pytest.raises(ProfileError, match='this is a checkpoint, not a timestep profile'):
        load_profile(models / 'stdp_fmnist_n400.json')


def test_wilson_interval_against_hand_values():
    low, high = wilson_interval(80, 100)
    assert low == pytest.approx(0.7112, abs=1e-4) and high == pytest.approx(0.8666, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == 1.0
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    with pytest.raises(ValueError):
        wilson_interval(3, 0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_profile_accessors():
    p = _profile()
    assert p.timesteps == [32, 100, 350]
    assert p.baseline.timesteps == 350 and p.preset == 'cmos45_fp32'
    assert p.entry(100).early_exit_mean_timesteps == 61.25
    with pytest.raises(KeyError):
        p.entry(64)
    assert p.params_for(32) == {'v_threshold_mv': -52.5, 'theta_plus_mv': 0.1}
    assert p.params_for(350) is None and p.params_for(33) is None
    p.params_for(32)['v_threshold_mv'] = 0.0  # a copy: the profile does not change
    assert p.params_for(32)['v_threshold_mv'] == -52.5


def test_a_profile_priced_under_another_preset_is_what_a_sweep_under_it_writes():
    """The controller kept a profile's energies against a monitor priced otherwise."""
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark.strategy import TimestepSelector
    p = _profile()
    assert p.priced('cmos45_fp32') is p
    loihi = EnergyModel('loihi')
    q = p.priced('loihi')
    assert q.energy_preset == 'loihi'
    assert [e.energy_j for e in q.entries] == [loihi.estimate(e.ops).compute_j
                                               for e in p.entries]
    assert q.entry(100).train_energy_j == loihi.estimate(p.entry(100).train_ops).compute_j
    assert q.entry(100).train_energy_j != p.entry(100).train_energy_j
    assert q.entry(32).train_energy_j is None  # no counts, no energy
    for before, after in zip(p.entries, q.entries):  # nothing else changes
        assert dataclasses.replace(after, energy_j=before.energy_j,
                                   train_energy_j=before.train_energy_j) == before
    assert dataclasses.replace(q, energy_preset=p.energy_preset, entries=p.entries) == p
    with pytest.raises(ValueError, match='unknown'):
        p.priced('tpu_v9')
    selector = TimestepSelector(p)
    assert selector.price_under('loihi') and selector.profile == q
    assert not selector.price_under('loihi')
    with pytest.raises(ValueError):
        selector.price_under('tpu_v9')
    assert selector.profile == q


def test_round_trip_is_exact(tmp_path):
    p = _profile()
    path = save_profile(p, tmp_path / 'm.profile.yaml')
    loaded = load_profile(path)
    assert loaded == p
    assert loaded.entry(100).train_energy_j == 1.23456789e-6
    text = path.read_text()
    assert text.startswith('# TopSpark timestep profile') and 'schema_version: 2' in text
    assert yaml.safe_load(text)['entries'][0]['timesteps'] == 32  # written in ascending T
    assert os.listdir(tmp_path) == ['m.profile.yaml']
    assert profile_from_dict(profile_to_dict(p)) == p


def test_a_profile_cut_short_is_refused_wherever_it_was_cut(tmp_path):
    """
    A copy cut short that is still valid YAML loaded with the entries it kept (a review).

    Every cut of a written profile at a line boundary is refused, saying so; the profiles
    written before the end line load as before. The shipped ones have it (a copy of one cut
    short loaded, and docs/file-formats.md said they end with it; a review of the docs).
    """
    path = save_profile(_profile(), tmp_path / 'm.profile.yaml')
    lines = path.read_text().splitlines(keepends=True)
    assert lines[-1] == '# end of the TopSpark timestep profile\n'
    cut = tmp_path / 'cut.profile.yaml'
    for n in range(1, len(lines)):
        cut.write_text(''.join(lines[:n]))
        with pytest.raises(ProfileError) as refused:
            load_profile(cut)
        if n > len(lines) // 2:  # (a cut near the top is no valid profile in any case)
            assert 'cut short' in str(refused.value) and str(cut) in str(refused.value)
    cut.write_text(''.join(lines) + '\n\n')  # blank lines after the end: whole
    assert load_profile(cut) == _profile()
    cut.write_text(''.join(lines) + '# my note, added by hand\n')
    assert load_profile(cut) == _profile()
    for line_end in ('\r\n', '\r'):  # saved on Windows, or on an old Mac
        cut.write_bytes(''.join(lines).replace('\n', line_end).encode())
        assert load_profile(cut) == _profile()
    cut.write_bytes(('\ufeff' + ''.join(lines[:-3])).encode())  # a BOM (Notepad), cut short
    with pytest.raises(ProfileError, match='cut short'):
        load_profile(cut)
    older = ''.join(lines[:-1]).replace(', with an end line', '', 1)
    cut.write_text(older)  # as written before 2026-12-07
    assert load_profile(cut) == _profile()
    for shipped in sorted(MODELS.glob('*.profile.yaml')):
        lines = shipped.read_text().splitlines(keepends=True)
        assert lines[-1] == '# end of the TopSpark timestep profile\n', shipped
        cut.write_text(''.join(lines[:-4]))
        with pytest.raises(ProfileError, match='cut short'):
            load_profile(cut)
        assert load_profile(shipped).entries


def test_a_version_1_profile_is_read(tmp_path):
    """The shipped profiles, and those of earlier versions, are schema 1: still read."""
    data = profile_to_dict(_profile())
    data['schema_version'] = 1
    assert profile_from_dict(data) == _profile()
    assert load_profile(MODELS / 'stdp_fmnist_n400.profile.yaml').timesteps


def test_the_measurement_record_round_trips_as_plain_data(tmp_path):
    """How a sweep measured the entries (command, seed, batch): kept, plain data only."""
    p = dataclasses.replace(_profile(), measurement={'command': 'topspark sweep -m m.json',
                                                     'seed': 3, 'batch_size': 64})
    assert load_profile(save_profile(p, tmp_path / 'm.yaml')).measurement == p.measurement
    with pytest.raises(ProfileError, match='measurement'):
        dataclasses.replace(_profile(), measurement=['seed', 3])


def test_optional_keys_may_be_left_out(tmp_path):
    data = profile_to_dict(_profile())
    for key in ('train_latency_ms', 'train_ops', 'train_energy_j', 'params',
                'early_exit_accuracy', 'early_exit_mean_timesteps'):
        del data['entries'][0][key]
    assert profile_from_dict(data).entry(32).params is None


def test_default_profile_path():
    assert str(default_profile_path('models/m.json')) == 'models/m.profile.yaml'


def _broken(mutate):
    data = copy.deepcopy(profile_to_dict(_profile()))
    mutate(data)
    return data


SCHEMA_ERRORS = [
    ('missing top key', lambda d: d.pop('dataset'), r'dataset: missing'),
    ('unknown top key', lambda d: d.update(extra=1), r'extra: unknown key'),
    ('wrong version', lambda d: d.update(schema_version=5), r'schema_version: 5 is not'),
    ('bins in version 2', lambda d: d['entries'][0].update(confidence_bins=[[0.0, 5, 2]]),
     r'entries\[0\]\.confidence_bins: needs schema_version 3, the file says 2'),
    ('bins not rows', lambda d: d.update(schema_version=3) or d['entries'][0].update(
        confidence_bins=[[0.0, 5]]), r'entries\[0\]\.confidence_bins: row 0 must be'),
    ('bins more right than n', lambda d: d.update(schema_version=3) or d['entries'][0].update(
        confidence_bins=[[0.0, 5, 2], [0.5, 3, 4]]),
     r'entries\[0\]\.confidence_bins: row 1: correct \(4\) is more than n \(3\)'),
    ('bins not rising', lambda d: d.update(schema_version=3) or d['entries'][0].update(
        confidence_bins=[[0.0, 5, 2], [0.0, 3, 1]]),
     r'entries\[0\]\.confidence_bins: row 1: low must rise'),
    ('bins from 0.5', lambda d: d.update(schema_version=3) or d['entries'][0].update(
        confidence_bins=[[0.5, 5, 2]]),
     r'entries\[0\]\.confidence_bins: the first row must start at 0'),
    ('bins over n_samples', lambda d: d.update(schema_version=3) or d['entries'][0].update(
        confidence_bins=[[0.0, 600, 2], [0.5, 600, 3]]),
     r'entries\[0\]\.confidence_bins: the rows count 1200 inputs, more than the 1000'),
    ('bad sha', lambda d: d.update(model_sha256='abc'), r'model_sha256: must be 64'),
    ('unknown preset', lambda d: d.update(energy_preset='tpu'), r'energy_preset: unknown'),
    ('bad date', lambda d: d.update(created='yesterday'), r'created: must be an ISO'),
    ('entries not list', lambda d: d.update(entries={}), r'entries: must be a list'),
    ('no entries', lambda d: d.update(entries=[]), r'entries: a profile needs'),
    ('missing entry key', lambda d: d['entries'][1].pop('latency_ms'),
     r'entries\[1\]\.latency_ms: missing'),
    ('unknown entry key', lambda d: d['entries'][2].update(color=1),
     r'entries\[2\]\.color: unknown key'),
    ('accuracy > 1', lambda d: d['entries'][2].update(accuracy=1.5),
     r'entries\[2\]\.accuracy: must be finite and in \[0, 1\]'),
    ('accuracy as text', lambda d: d['entries'][0].update(accuracy='0.8'),
     r'entries\[0\]\.accuracy: must be a number, got str'),
    ('bool is no number', lambda d: d['entries'][0].update(spikes=True),
     r'entries\[0\]\.spikes: must be a number'),
    ('T < 1', lambda d: d['entries'][0].update(timesteps=0), r'entries\[0\]\.timesteps: must'),
    ('T not integer', lambda d: d['entries'][0].update(timesteps=32.0),
     r'entries\[0\]\.timesteps: must be an integer'),
    ('duplicate T', lambda d: d['entries'][2].update(timesteps=32),
     r'entries\[2\]\.timesteps: duplicate T=32'),
    ('negative latency', lambda d: d['entries'][1].update(latency_ms=-1.0),
     r'entries\[1\]\.latency_ms: must be finite and >= 0'),
    ('negative count', lambda d: d['entries'][1]['ops'].update(macs=-3),
     r'entries\[1\]\.ops\.macs: must be finite and >= 0'),
    ('missing count', lambda d: d['entries'][1]['ops'].pop('macs'),
     r'entries\[1\]\.ops\.macs: missing'),
    ('ci excludes accuracy', lambda d: d['entries'][0].update(accuracy_ci95=[0.9, 0.95]),
     r'entries\[0\]\.accuracy_ci95: .* must contain'),
    ('params not numbers', lambda d: d['entries'][0].update(params={'a': 'x'}),
     r'entries\[0\]\.params\.a: must be a number'),
    ('early exit above T', lambda d: d['entries'][1].update(early_exit_mean_timesteps=101.0),
     r'entries\[1\]\.early_exit_mean_timesteps: must be finite and in \[1, 100\]'),
    ('nan energy', lambda d: d['entries'][1].update(energy_j=float('nan')),
     r'entries\[1\]\.energy_j: must be finite'),
]


@pytest.mark.parametrize('mutate,pattern', [c[1:] for c in SCHEMA_ERRORS],
                         ids=[c[0] for c in SCHEMA_ERRORS])
def test_schema_errors_name_file_and_key(tmp_path, mutate, pattern):
    path = tmp_path / 'bad.yaml'
    path.write_text(yaml.safe_dump(_broken(mutate), sort_keys=False))
    with pytest.raises(ProfileError, match=pattern) as info:
        load_profile(path)
    assert str(info.value).startswith(f'{path}: ')
    assert isinstance(info.value, ValueError)


def test_not_yaml_or_not_a_mapping(tmp_path):
    path = tmp_path / 'bad.yaml'
    path.write_text('entries: [unclosed\n')
    with pytest.raises(ProfileError, match='not valid YAML'):
        load_profile(path)
    path.write_text('- 1\n- 2\n')
    with pytest.raises(ProfileError, match='must be a mapping'):
        load_profile(path)
    path.write_text('!!python/object/apply:os.system ["true"]\n')
    with pytest.raises(ProfileError, match='not valid YAML'):  # safe_load only
        load_profile(path)
    with pytest.raises(OSError):
        load_profile(tmp_path / 'absent.yaml')


def test_confidence_bins_round_trip_as_version_3_and_without_them_version_2(tmp_path):
    """Bins are written (schema 3) only when measured; a profile without them stays version 2."""
    plain = tmp_path / 'plain.profile.yaml'
    save_profile(_profile(), plain)
    text = plain.read_text()
    assert 'schema_version: 2' in text and 'confidence_bins' not in text  # older readers read it
    assert '(schema 2,' in text.splitlines()[0]
    bins = ((0.0, 10, 3), (0.5, 20, 12), (1.0, 700, 695))  # 710 right: the accuracy's
    entries = tuple(dataclasses.replace(e, confidence_bins=bins) if e.timesteps == 32 else e
                    for e in _profile().entries)
    binned = tmp_path / 'binned.profile.yaml'
    save_profile(_profile(entries=entries), binned)
    text = binned.read_text()
    assert 'schema_version: 3' in text and '(schema 3,' in text.splitlines()[0]
    back = load_profile(binned)
    assert back == _profile(entries=entries)
    assert back.entry(32).confidence_bins == bins and back.entry(100).confidence_bins is None
    # the bin of each confidence, with 2 inputs' worth of the overall accuracy (710 / 730)
    overall = 710 / 730
    assert back.entry(32).calibrated(1.0) == pytest.approx((695 + 2 * overall) / 702)
    assert back.entry(32).calibrated(0.7) == pytest.approx((12 + 2 * overall) / 22)
    assert back.entry(32).calibrated(0.2) == pytest.approx((3 + 2 * overall) / 12)
    assert back.entry(32).calibrated(0.0) is None
    assert back.entry(100).calibrated(1.0) is None
    with pytest.raises(ProfileError, match='confidence_bins: the rows count 575 results right, '
                       'the accuracy says 710 of 1000: not the same run'):  # another run's
        dataclasses.replace(back.entry(32), confidence_bins=((0.0, 30, 15), (1.0, 700, 560)))


def test_the_early_exit_rule_and_its_bins_round_trip_as_version_4(tmp_path):
    """
    The rule of an entry's early-exit figures and that rule's results by confidence.

    Written (schema 4) only where recorded; a version 3 file holding them is refused (its
    readers would have refused the keys), as are bins without the rule, half a rule, a rule
    without early-exit figures and bins of another run.
    """
    bins = ((0.0, 10, 3), (0.5, 20, 12), (1.0, 700, 695))  # 710 right
    exits = ((0.0, 300, 100), (0.9, 700, 600))  # 700 right: early_exit_accuracy 0.7
    entries = tuple(dataclasses.replace(
        e, confidence_bins=bins, early_exit_accuracy=0.7, early_exit_mean_timesteps=9.5,
        early_exit_margin=3, early_exit_min_steps=8, early_exit_confidence_bins=exits)
        if e.timesteps == 32 else e for e in _profile().entries)
    path = save_profile(_profile(entries=entries), tmp_path / 'p.profile.yaml')
    text = path.read_text()
    assert 'schema_version: 4' in text and '(schema 4,' in text.splitlines()[0]
    back = load_profile(path)
    assert back == _profile(entries=entries)
    entry = back.entry(32)
    assert entry.early_exit_rule() == (3.0, 8) and back.entry(100).early_exit_rule() is None
    assert entry.calibrated(0.95, early_exit=True) == pytest.approx((600 + 2 * 0.7) / 702)
    assert entry.calibrated(0.95) != entry.calibrated(0.95, early_exit=True)
    assert back.entry(100).calibrated(0.95, early_exit=True) is None
    # A rule alone (a label-free sweep) is version 4 too; nothing of it: version 3 as before.
    ruled = tuple(dataclasses.replace(e, early_exit_confidence_bins=None) for e in entries)
    assert 'schema_version: 4' in save_profile(_profile(entries=ruled), path).read_text()
    assert load_profile(path).entry(32).early_exit_confidence_bins is None
    text = text.replace('schema_version: 4', 'schema_version: 3')
    path.write_text(text)
    with pytest.raises(ProfileError, match=r'entries\[0\]\.early_exit_margin: needs '
                       'schema_version 4, the file says 3'):
        load_profile(path)
    entry = _profile(entries=entries).entry(32)
    for change, pattern in (
            ({'early_exit_margin': None, 'early_exit_min_steps': None},
             '^early_exit_confidence_bins: needs the early-exit rule'),
            ({'early_exit_min_steps': None}, '^early_exit_min_steps: needs early_exit_margin '
                                             'and early_exit_min_steps together'),
            ({'early_exit_accuracy': None, 'early_exit_mean_timesteps': None,
              'early_exit_confidence_bins': None},
             '^early_exit_margin: an early-exit rule without early_exit_accuracy'),
            ({'early_exit_margin': 0.0}, '^early_exit_margin: must be > 0'),
            ({'early_exit_min_steps': 0}, '^early_exit_min_steps: '),
            ({'early_exit_accuracy': 0.71},
             '^early_exit_confidence_bins: the rows count 700 results right, the accuracy '
             'says 710 of 1000')):
        with pytest.raises(ProfileError, match=pattern):
            dataclasses.replace(entry, **change)


def test_constructor_validates_too():
    with pytest.raises(ProfileError, match='^accuracy: '):
        _entry(10, 0.5, accuracy=-0.1, accuracy_ci95=(0.0, 1.0))
    with pytest.raises(ProfileError, match='duplicate'):
        _profile(entries=(_entry(10, 0.5), _entry(10, 0.6)))
    assert SCHEMA_VERSION == 4


def test_atomic_save_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path / 'm.profile.yaml'
    save_profile(_profile(), path)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', fail)
    with pytest.raises(OSError, match='disk full'):
        save_profile(_profile(dataset='mnist'), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['m.profile.yaml']  # no temporary file left behind
    monkeypatch.undo()
    save_profile(_profile(dataset='mnist'), path)
    assert load_profile(path).dataset == 'mnist'
    assert profile_module.load_profile is load_profile


def test_label_free_sweep_measures_agreement_and_bounds_the_accuracy_drop(fashion_test):
    """Without labels, accuracy is agreement with full T: 1 at the reference, a drop bound."""
    import numpy as np

    from topspark_ros.core.checkpoint import load_checkpoint
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark.sweep import sweep

    model, meta = load_checkpoint(MODELS / 'stdp_fmnist_n400.json')
    images, labels = fashion_test.images[:300], fashion_test.labels[:300].astype(np.int64)
    common = {'model_path': 'm.json', 'model_sha256': meta['tensors']['sha256'], 'dataset': 'd',
              'split': 'test', 'energy_model': EnergyModel('cmos45_fp32'), 'batch_size': 64,
              'seed': 5}
    free = sweep(model, images, None, [100, 16], **common)
    labelled = sweep(model, images, labels, [100, 16], **common)
    assert free.agreement_based and free.reference_timesteps == 100
    assert not labelled.agreement_based and labelled.reference_timesteps is None
    assert free.entry(100).accuracy == 1.0  # the reference agrees with itself
    drop = labelled.entry(100).accuracy - labelled.entry(16).accuracy
    assert abs(drop) <= 1.0 - free.entry(16).accuracy + 1e-12  # the documented bound
    assert free.entry(16).accuracy < 1.0
    assert free.entry(16).energy_j == labelled.entry(16).energy_j  # same runs, same seeds


def test_agreement_profiles_round_trip(tmp_path):
    """reference_timesteps survives save and load; older profiles (without it) still load."""
    shipped = load_profile(MODELS / 'stdp_fmnist_n400.profile.yaml')
    assert shipped.reference_timesteps is None and not shipped.agreement_based
    marked = type(shipped)(**{**shipped.__dict__, 'reference_timesteps': 350})
    path = save_profile(marked, tmp_path / 'p.yaml')
    assert 'reference_timesteps: 350' in path.read_text()
    assert load_profile(path).reference_timesteps == 350


def test_the_ann_macs_round_trip_and_are_checked(tmp_path):
    """The model's ANN MACs (for the energy monitor) are optional, saved and checked."""
    assert _profile().ann_macs is None
    path = save_profile(_profile(ann_macs=1867456), tmp_path / 'p.yaml')
    assert 'ann_macs: 1867456.0' in path.read_text()
    assert load_profile(path).ann_macs == 1867456.0
    for bad in (-1.0, 'many', float('nan')):
        with pytest.raises(ProfileError, match='ann_macs'):
            _profile(ann_macs=bad)


@pytest.mark.parametrize('n', [1, 7, 300, 1000, 10000])
def test_wilson_interval_contains_0_and_100_percent(n):
    """At 0/n and n/n the interval holds p itself (300/300 once gave high = 1 - 1e-16)."""
    assert wilson_interval(n, n)[1] == 1.0 and wilson_interval(0, n)[0] == 0.0
    low, high = wilson_interval(n, n)
    assert low < 1.0 <= high

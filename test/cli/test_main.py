"""Tests of the ``topspark`` command line (in-process, through ``main``)."""

import json
import pathlib
import shutil

import pytest

import topspark_ros
from topspark_ros.cli.main import main

MODELS = pathlib.Path(__file__).resolve().parents[2] / 'models'


def test_train_then_eval_json(tmp_path, fashion_dir, capsys):
    out = tmp_path / 'model.json'
    code = main(['train', '--data-dir', str(fashion_dir), '--n-train', '300', '--n-label', '200',
                 '--n-eval', '200', '--neurons', '50', '--timesteps', '150', '--output',
                 str(out), '--json', '--quiet'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    trained = json.loads(captured.out.strip().splitlines()[-1])
    assert trained['n_samples'] == 300 and trained['n_label'] == 200
    assert trained['n_eval'] == 200 and trained['timesteps'] == 150
    assert trained['accuracy'] > 0.2 and trained['latency_ms_per_sample'] > 0
    assert out.exists()

    code = main(['eval', '--data-dir', str(fashion_dir), '--model', str(out), '--n-eval', '100',
                 '--timesteps', '100', '--json', '--quiet', '--batch-size', '32'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    for key in ('accuracy', 'n_samples', 'timesteps', 'latency_ms_per_sample',
                'throughput_samples_per_s'):
        assert key in result
    assert result['n_samples'] == 100 and result['timesteps'] == 100
    assert result['trained_timesteps'] == 150 and result['ops_total']['input_spikes'] > 0
    assert result['ops_per_sample']['input_spikes'] == result['ops_total']['input_spikes'] / 100
    # Without -T, the T the model was made for (a converted model made for T=2 ran at 350).
    code = main(['eval', '--data-dir', str(fashion_dir), '--model', str(out), '--n-eval', '10',
                 '--json', '--quiet'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])['timesteps'] == 150


@pytest.mark.parametrize('argv, message', [
    (['eval', '--model', '/nonexistent/model.json'], 'not found'),
    (['train', '--data-dir', '/nonexistent', '--output', '/tmp/x.json'], 'does not exist'),
    (['train', '--output', 'x', '--neurons', '0'], 'must be >= 1'),
    (['train'], 'required'),
    (['fly'], 'invalid choice'),
    (['train', '--output', 'x', '--seed', '-1'], 'must be >= 0'),  # (numpy's words, late)
])
def test_errors_are_one_line(argv, message, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('topspark: error: ') and message in lines[0]


def test_bad_checkpoint_is_an_error(tmp_path, fashion_dir, capsys):
    bad = tmp_path / 'bad.json'
    bad.write_text('not json')
    assert main(['eval', '--data-dir', str(fashion_dir), '--model', str(bad)]) == 1
    assert capsys.readouterr().err.startswith('topspark: error: ')


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(['--version'])
    assert info.value.code == 0
    assert topspark_ros.__version__ in capsys.readouterr().out


MODELS = __import__('pathlib').Path(__file__).resolve().parents[2] / 'models'


def _run(argv, capsys):
    """Run ``topspark`` in-process; return ``(exit code, last JSON line or None, stderr)``."""
    code = main(argv + ['--json', '--quiet'])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 and lines else None), captured.err


def _swept(tmp_path, fashion_dir, capsys, *options) -> tuple:
    """Sweep the shipped STDP model at T=32,16 on 120 test images; ``options`` added."""
    from topspark_ros.core.topspark.profile import load_profile

    model = str(MODELS / 'stdp_fmnist_n400.json')
    out = tmp_path / 'p.profile.yaml'
    data = ['--data-dir', str(fashion_dir), '--n-eval', '120']
    code, _, err = _run(['sweep', '-m', model, *data, '--grid', '32,16', '--n-train-steps', '0',
                         *options, '-o', str(out), '--plot', ''], capsys)
    assert code == 0, err
    return model, out, data, load_profile(out)


def test_eval_applies_a_profiles_enhanced_parameters(fashion_dir, capsys):
    """`eval --params-from` runs with the values the profile enhanced for T (issue 13)."""
    from topspark_ros.core.topspark.profile import load_profile

    model = str(MODELS / 'stdp_fmnist_n400.json')
    profile = str(MODELS / 'stdp_fmnist_n400.profile.yaml')
    base = ['eval', '--data-dir', str(fashion_dir), '-m', model, '--n-eval', '64', '-T', '32']
    code, own, err = _run(base, capsys)
    assert code == 0, err
    code, enhanced, err = _run(base + ['--params-from', profile], capsys)
    assert code == 0, err
    assert enhanced['enhanced_params'] == load_profile(profile).params_for(32)
    assert own['enhanced_params'] is None
    # The enhanced values (a higher input rate among them) change the simulation itself.
    assert enhanced['ops_total']['input_spikes'] != own['ops_total']['input_spikes']
    code, _, err = _run(base[:-1] + ['33', '--params-from', profile], capsys)
    assert code == 2 and 'no entry for T=33' in err


def test_eval_prices_its_operation_counts_under_the_preset_given(fashion_dir, capsys):
    """`eval` printed operation counts and no energy; sweep and the nodes price them."""
    from topspark_ros.core.energy import EnergyModel, OpCounts

    base = ['eval', '--data-dir', str(fashion_dir), '-m', str(MODELS / 'stdp_fmnist_n400.json'),
            '--n-eval', '32', '-T', '16']
    energies = {}
    for preset in ('cmos45_fp32', 'loihi'):
        code, result, err = _run(base + ['--preset', preset], capsys)
        assert code == 0, err
        per_sample = result['ops_per_sample']
        ops = OpCounts(accumulates=per_sample['syn_ops_input'] + per_sample['syn_ops_inhibition'],
                       neuron_updates=per_sample['neuron_updates'])
        assert result['energy_per_sample_j'] == \
            pytest.approx(EnergyModel(preset).estimate(ops).compute_j)
        assert result['energy_preset'] == preset
        energies[preset] = result['energy_per_sample_j']
    assert energies['loihi'] != energies['cmos45_fp32']
    code, _, err = _run(base + ['--preset', 'tpu'], capsys)
    assert code == 1 and "unknown energy preset 'tpu'" in err


def _small_model(tmp_path, fashion_dir, capsys, *extra) -> dict:
    out = tmp_path / 'small.json'
    code, result, err = _run(['train', '--data-dir', str(fashion_dir), '--n-train', '100',
                              '--neurons', '20', '-T', '30', '-o', str(out), *extra], capsys)
    assert code == 0, err
    return result


def test_stdp_training_makes_several_passes(tmp_path, fashion_dir, capsys):
    """`--epochs` is honoured by the STDP family: more passes, other weights (issue 13)."""
    from topspark_ros.core.checkpoint import load_checkpoint

    one = _small_model(tmp_path / 'a', fashion_dir, capsys)
    two = _small_model(tmp_path / 'b', fashion_dir, capsys, '--epochs', '2')
    assert (one['epochs'], two['epochs']) == (1, 2)
    first, meta = load_checkpoint(one['checkpoint'])
    second, meta2 = load_checkpoint(two['checkpoint'])
    assert meta2['info']['epochs'] == 2
    assert meta['tensors']['sha256'] != meta2['tensors']['sha256']


def test_n_train_beyond_the_split_uses_the_split(tmp_path, fashion_dir, capsys):
    """--n-train above the images left after --n-eval uses them all, with a note."""
    out = tmp_path / 'm.json'
    # 59 990 of the 60 000 training images are held out for evaluation: 10 remain.
    code, result, err = _run(['train', '--data-dir', str(fashion_dir), '--n-train', '50',
                              '--n-eval', '59990', '--eval-split', 'train', '--neurons', '5',
                              '-T', '2', '-o', str(out), '--batch-size', '4096'], capsys)
    assert code == 0, err
    assert result['n_samples'] == 10 and 'exceeds the 10 training images' in err
    assert '--n-train 50 exceeds' in err
    # Not given: the note says the default asked for more (it read as an option given).
    code, result, err = _run(['train', '--data-dir', str(fashion_dir), '--n-eval', '59990',
                              '--eval-split', 'train', '--neurons', '5', '-T', '2', '-o',
                              str(out), '--overwrite', '--batch-size', '4096'], capsys)
    assert code == 0 and '--n-train 1000 (the default) exceeds' in err, err


def test_sweep_names_the_data_it_read_and_never_destroys_a_profile(
        tmp_path, fashion_dir, capsys):
    """--data-dir is recorded as such; an existing profile is kept unless --overwrite."""
    from topspark_ros.core.topspark.profile import load_profile, save_profile

    model = _small_model(tmp_path, fashion_dir, capsys)['checkpoint']
    sweep = ['sweep', '-m', model, '--data-dir', str(fashion_dir), '--grid', '30,10',
             '--n-eval', '40', '--n-train-steps', '0', '--plot', '']
    code, result, err = _run(sweep, capsys)
    assert code == 0, err
    profile_path = result['profile']
    profile = load_profile(profile_path)
    assert profile.dataset == str(fashion_dir)

    # Give the profile enhanced parameters at T=10, as `topspark enhance` would.
    entries = [e if e.timesteps != 10 else type(e)(**{**e.__dict__, 'params': {
        'theta_scale': 0.5}}) for e in profile.entries]
    save_profile(type(profile)(**{**profile.__dict__, 'entries': entries}), profile_path)
    before = open(profile_path).read()
    code, _, err = _run(sweep, capsys)
    assert code == 2 and '--overwrite' in err
    assert open(profile_path).read() == before
    code, _, err = _run(sweep + ['--overwrite'], capsys)
    assert code == 0, err
    assert 'keeping the enhanced parameters' in err
    assert load_profile(profile_path).params_for(10) == {'theta_scale': 0.5}
    # A grid without T=10 dropped what enhance found there, with a note only (a CLI review).
    before = open(profile_path).read()
    narrower = [a if a != '30,10' else '30' for a in sweep]
    code, _, err = _run(narrower + ['--overwrite'], capsys)
    assert code == 2 and 'holds enhanced parameters at T=[10], which --grid leaves out' in err
    assert '--grid 30,10' in err and open(profile_path).read() == before
    elsewhere = str(tmp_path / 'other.yaml')  # the parameters stay where they are: a note
    code, _, err = _run(narrower + ['--params-from', profile_path, '-o', elsewhere], capsys)
    assert code == 0 and 'left out of the new profile' in err, err


def test_a_profile_without_results_by_confidence_gets_them_and_keeps_the_rest(
        tmp_path, fashion_dir, capsys):
    """
    `sweep --confidence-only` adds each T's bins to a profile, measured as its sweep measured.

    The same bins the sweep itself keeps, every other figure as it was; refused on other data
    (the accuracy does not come out as the profile's), with sweep-only options, for another
    model's or a label-free profile, and without a profile.
    """
    import dataclasses

    from topspark_ros.core.topspark.profile import load_profile, save_profile

    model, out, data, swept = _swept(tmp_path, fashion_dir, capsys, '--early-exit-margin', '0')
    assert all(e.confidence_bins is not None for e in swept.entries)
    older = dataclasses.replace(swept, entries=tuple(
        dataclasses.replace(e, confidence_bins=None) for e in swept.entries))
    save_profile(older, out)  # as an earlier version wrote it
    assert 'schema_version: 2' in out.read_text()
    only = ['sweep', '-m', model, '--confidence-only', '-o', str(out)]
    code, result, err = _run(only + data, capsys)
    assert code == 0, err
    assert load_profile(out) == swept  # the bins the sweep kept, nothing else changed
    assert [row['timesteps'] for row in result['confidence']] == [16, 32]
    assert result['confidence'][1]['score_at_share_1'] == swept.entry(32).calibrated(1.0)
    save_profile(older, out)
    before = out.read_bytes()
    code, _, err = _run(only + data + ['--seed', '1'], capsys)  # other images and spikes
    assert code == 2 and 'no T came out as the profile measured it' in err
    assert 'not the run it measured' in err and out.read_bytes() == before
    # Values enhanced at T=16 after the sweep: not the run measured; T=32 gets its bins.
    enhanced = dataclasses.replace(older, entries=tuple(
        dataclasses.replace(e, params={'theta_scale': 0.5}) if e.timesteps == 16 else e
        for e in older.entries))
    save_profile(enhanced, out)
    code, result, err = _run(only + data, capsys)
    assert code == 0, err
    assert 'warning: no bins added: T=16:' in err
    assert load_profile(out).entry(16).confidence_bins is None
    assert load_profile(out).entry(32).confidence_bins == swept.entry(32).confidence_bins
    # A profile replaced while its results were measured (a sweep --overwrite of other data)
    # takes none of them: they are of the profile read at the start.
    from topspark_ros.core.topspark import sweep as sweep_module
    measure = sweep_module.measure_confidence_bins
    other = dataclasses.replace(older, dataset='my-robot-images')

    def replaced_meanwhile(*args, **kwargs):
        save_profile(other, out)
        return measure(*args, **kwargs)

    save_profile(older, out)
    sweep_module.measure_confidence_bins = replaced_meanwhile
    try:
        code, _, err = _run(only + data, capsys)
    finally:
        sweep_module.measure_confidence_bins = measure
    assert code == 2 and 'was replaced while its results were measured' in err
    assert load_profile(out) == other
    code, _, err = _run(only + ['--data-dir', str(fashion_dir), '--n-eval', '100'], capsys)
    assert code == 2 and 'measured on 120 labelled samples' in err
    code, _, err = _run(only + data + ['--grid', '8', '--overwrite'], capsys)
    assert code == 2 and 'leave out --grid, --overwrite' in err
    code, _, err = _run(only + data + ['--preset', 'loihi'], capsys)  # ignored: a review
    assert code == 2 and 'leave out --preset' in err
    code, _, err = _run(['sweep', '-m', str(MODELS / 'converted_fmnist_vgg.json'),
                         '--confidence-only', '-o', str(out), *data], capsys)
    assert code == 2 and 'describes another model' in err
    save_profile(dataclasses.replace(older, reference_timesteps=32), out)
    code, _, err = _run(only + data, capsys)
    assert code == 2 and 'label-free' in err
    code, _, err = _run(['sweep', '-m', model, '--confidence-only', '-o',
                         str(tmp_path / 'absent.yaml'), *data], capsys)
    assert code == 2 and 'no profile at' in err


def test_early_exit_results_by_confidence_are_swept_and_added_with_their_rule(
        tmp_path, fashion_dir, capsys):
    """
    A labelled sweep keeps the early-exit rule and its results by confidence at each T.

    `--confidence-only` adds them to a profile that has the early-exit figures but not the
    rule (an earlier version's), with the rule of its arguments, where that rule gives the
    figures; another rule adds none and says so (the full-T bins are added either way).
    """
    import dataclasses

    from topspark_ros.core.topspark.profile import load_profile, save_profile

    model, out, data, swept = _swept(tmp_path, fashion_dir, capsys, '--early-exit-min-steps',
                                     '4')
    assert 'schema_version: 4' in out.read_text()
    for e in swept.entries:
        assert e.early_exit_rule() == (3.0, 4)
        assert 0 < sum(row[1] for row in e.early_exit_confidence_bins) <= 120  # classed ones
        assert sum(row[2] for row in e.early_exit_confidence_bins) == round(
            e.early_exit_accuracy * 120)
    older = dataclasses.replace(swept, entries=tuple(dataclasses.replace(
        e, confidence_bins=None, early_exit_margin=None, early_exit_min_steps=None,
        early_exit_confidence_bins=None) for e in swept.entries))
    save_profile(older, out)
    assert 'schema_version: 2' in out.read_text()
    only = ['sweep', '-m', model, '--confidence-only', '-o', str(out), *data]
    code, result, err = _run(only + ['--early-exit-margin', '2', '--early-exit-min-steps', '4'],
                             capsys)
    assert code == 0, err
    assert err.count('warning: no early-exit bins added') == 2 and 'margin 2, from step 4' in err
    added = load_profile(out)
    assert all(e.confidence_bins == swept.entry(e.timesteps).confidence_bins
               and e.early_exit_rule() is None for e in added.entries)
    save_profile(older, out)
    code, result, err = _run(only + ['--early-exit-min-steps', '4'], capsys)
    assert code == 0, err
    assert load_profile(out) == swept  # what the sweep kept, nothing else changed
    assert result['confidence'][0]['early_exit_rule'] == [3.0, 4]


def test_threads_are_chosen_not_inherited(fashion_dir, capsys):
    """Torch runs with --threads (default 1, measured), not one thread per core (issue 13)."""
    import torch

    from topspark_ros.core.threads import DEFAULT_TORCH_THREADS, set_torch_threads

    previous = set_torch_threads(2)
    try:
        model = str(MODELS / 'converted_fmnist_vgg.json')
        base = ['eval', '--data-dir', str(fashion_dir), '-m', model, '--n-eval', '8', '-T', '2']
        assert _run(base, capsys)[0] == 0
        assert torch.get_num_threads() == DEFAULT_TORCH_THREADS == 1
        assert _run(base + ['--threads', '2'], capsys)[0] == 0
        assert torch.get_num_threads() == 2
        # 100 000 ended in a segmentation fault (a CLI review); inf trained, then could not
        # save; a negative margin skipped early exit without a word.
        for option, value, said in (('--threads', '100000', 'must be <= 256'),
                                    ('--dt-ms', 'inf', 'must be finite and > 0'),
                                    ('--early-exit-margin', '-1', 'must be finite and >= 0')):
            command = ['sweep' if option == '--early-exit-margin' else 'train'] + (
                ['-m', model] if option == '--early-exit-margin' else [])
            assert main(command + [option, value]) == 2
            assert said in capsys.readouterr().err
        assert torch.get_num_threads() == 2
        with pytest.raises(ValueError):
            set_torch_threads(0)
    finally:
        set_torch_threads(previous)


def test_sweep_says_when_its_baseline_is_above_the_models_t_and_less_accurate(tmp_path,
                                                                              capsys):
    """The event model runs at T=4; swept to 16 its drops were counted from 85.9 %, silently."""
    code, result, err = _run(['sweep', '-m', str(MODELS / 'converted_nmnist_synth_vgg.json'),
                              '--grid', '16,4', '--n-eval', '400', '--n-train-steps', '0',
                              '-o', str(tmp_path / 'p.yaml')], capsys)
    assert code == 0, err
    four, sixteen = (e['accuracy'] for e in result['entries'])
    assert sixteen < four
    assert 'is above the T the model runs at (T=4) and less accurate there' in err


def test_a_sweep_on_the_training_split_says_so(tmp_path, fashion_dir, capsys):
    """--split train measured on the images the model learnt from, without a word."""
    code, _, err = _run(['sweep', '-m', str(MODELS / 'stdp_fmnist_n400.json'), '--data-dir',
                         str(fashion_dir), '--split', 'train', '--grid', '16', '--n-eval', '20',
                         '--n-train-steps', '0', '-o', str(tmp_path / 'p.yaml')], capsys)
    assert code == 0, err
    assert '--split train measures on the images the model learnt from' in err


def test_label_free_sweep_writes_a_profile_the_controller_uses(tmp_path, fashion_dir, capsys):
    """`sweep --label-free`: agreement-based profile, and the trade-off strategy picks from it."""
    from topspark_ros.core.topspark.profile import load_profile
    from topspark_ros.core.topspark.strategy import choose_timestep, Constraints, Mode

    out = tmp_path / 'free.yaml'
    code, result, err = _run(['sweep', '-m', str(MODELS / 'stdp_fmnist_n400.json'),
                              '--data-dir', str(fashion_dir), '--grid', '150,64,16',
                              '--n-eval', '200', '--n-train-steps', '0', '--label-free',
                              '-o', str(out), '--plot', str(tmp_path / 'free.png')], capsys)
    assert code == 0, err
    assert result['reference_timesteps'] == 150 and result['accuracy'] == 1.0
    # Its baseline is T=150, not the model's 350: said (a review found it silent).
    assert 'is below the T the model runs at (T=350)' in err
    profile = load_profile(out)
    assert profile.agreement_based and (tmp_path / 'free.png').stat().st_size > 0
    # What measuring it again takes: the seed (its images and spikes), recorded (a review).
    assert profile.measurement['seed'] == result['seed'] == 0
    assert profile.measurement['batch_size'] == 256 and profile.measurement['timing_s'] == 0.5
    assert 'sweep -m' in profile.measurement['command']
    # Printed for people: agreements, not accuracies (the table said "accuracy"; a review).
    from topspark_ros.cli.main import _print_human
    _print_human(result)
    shown = capsys.readouterr().out.splitlines()
    header = next(row.split() for row in shown if row.split()[:1] == ['T'])
    assert header == ['T', 'agreement', 'latency', 'ms', 'energy', 'uJ', 'train', 'uJ', 'exit',
                      'agr', 'exit', 'steps']
    assert 'agreement with T=150: 1' in shown and not any('accuracy' in r for r in shown)
    choice = choose_timestep(profile, Constraints(max_accuracy_drop=0.5), Mode('energy_saver'))
    assert choice.timesteps in (16, 64)
    code, _, err = _run(['sweep', '-m', str(MODELS / 'stdp_fmnist_n400.json'),
                         '--data-dir', str(fashion_dir), '--reference-timesteps', '64',
                         '-o', str(tmp_path / 'x.yaml')], capsys)
    assert code == 2 and '--label-free' in err


@pytest.mark.parametrize('signame', ['SIGTERM', 'SIGHUP'])
def test_sigterm_unwinds_a_command_and_its_temporary_output_goes(tmp_path, monkeypatch, capsys,
                                                                 signame):
    """
    SIGTERM (timeout, systemd, docker stop) ended the process where it stood; SIGHUP too.

    An `events convert` so killed left its hidden temporary output (110 to 303 MB) in the
    output folder, where Ctrl-C removed it (a user review). It unwinds as Ctrl-C does now, and
    so it does on SIGHUP (an SSH session to the robot dropped: a recovery left a full copy of
    the recording; a review).
    """
    import os
    import signal
    import time

    from topspark_ros.cli import events
    from topspark_ros.core.files import written_atomically

    def killed_midway(args):
        with written_atomically(tmp_path / 'out.npz') as tmp:
            tmp.write_bytes(b'half of it')
            os.kill(os.getpid(), getattr(signal, signame))
            time.sleep(5.0)
        return {}

    monkeypatch.setattr(events, 'run', killed_midway)
    signum = getattr(signal, signame)
    # (a suite run under nohup inherits SIGHUP ignored, which the command keeps: see below)
    inherited = signal.signal(signum, signal.SIG_DFL)
    try:
        before = signal.getsignal(signum)
        code = main(['events', 'info', 'x.raw'])
        after = signal.getsignal(signum)
    finally:
        signal.signal(signum, inherited)
    assert code == 128 + signum
    assert 'terminated' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no temporary, no output
    assert after is before  # the caller's handler back


def test_a_command_under_nohup_keeps_running_when_hung_up(tmp_path, monkeypatch, capsys):
    """``nohup topspark ...`` ignores SIGHUP; the SIGHUP handling made it end anyway (a review)."""
    import os
    import signal

    from topspark_ros.cli import events

    def hung_up(args):
        os.kill(os.getpid(), signal.SIGHUP)
        return {'command': 'events', 'went_on': True}

    monkeypatch.setattr(events, 'run', hung_up)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        assert main(['events', 'info', 'x.raw', '--json']) == 0
        assert '"went_on": true' in capsys.readouterr().out
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


def test_an_interrupted_training_resumes_to_the_same_model(tmp_path, fashion_dir, monkeypatch,
                                                           capsys):
    """
    `train` killed while learning (SIGTERM: timeout, systemd) goes on with --resume.

    A long training lost everything to a Ctrl-C or a kill before its end. The learning state
    is now saved when the run is interrupted (after the chunk under way) and every
    --state-every-min; `--resume` goes on from it to the model an uninterrupted run makes,
    refuses another run's state, and the state is removed once the checkpoint is saved.
    """
    import os
    import signal

    from topspark_ros.core.checkpoint import read_metadata
    from topspark_ros.core.stdp import DiehlCookNetwork

    base = ['train', '--data-dir', str(fashion_dir), '--n-train', '300', '--n-label', '100',
            '--neurons', '20', '-T', '30', '--epochs', '2']
    code, whole, err = _run(base + ['-o', str(tmp_path / 'whole.json')], capsys)
    assert code == 0, err
    learn, calls = DiehlCookNetwork.learn, []

    def killed_at_the_eighth_chunk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 8:  # in the second pass
            os.kill(os.getpid(), signal.SIGTERM)
        return learn(self, *args, **kwargs)

    monkeypatch.setattr(DiehlCookNetwork, 'learn', killed_at_the_eighth_chunk)
    out, state = tmp_path / 'part.json', tmp_path / 'part.training.npz'
    code, _, err = _run(base + ['-o', str(out)], capsys)
    assert code == 128 + signal.SIGTERM and 'terminated' in err
    assert f'saved in {state}: run the same command with --resume' in err
    assert state.is_file() and not out.exists()
    monkeypatch.setattr(DiehlCookNetwork, 'learn', learn)

    code, _, err = _run(base + ['-o', str(out)], capsys)
    assert code == 2 and 'add --resume to go on from it' in err
    code, _, err = _run(base + ['-o', str(out), '--resume', '--neurons', '21'], capsys)
    assert code == 2 and 'other settings (config differ: config.n_neurons 21 (was 20))' in err
    code, _, err = _run(base + ['-o', str(out), '--resume', '--n-train', '299'], capsys)
    assert code == 2 and 'differ' in err
    code, resumed, err = _run(base + ['-o', str(out), '--resume'], capsys)
    assert code == 0, err
    assert 'resuming at pass 2, input 100' in err and resumed['resumed_at'] == {
        'epoch': 2, 'input': 100}
    assert not state.exists()
    assert read_metadata(out)[0]['tensors']['sha256'] == \
        read_metadata(whole['checkpoint'])[0]['tensors']['sha256']
    code, _, err = _run(base + ['-o', str(tmp_path / 'new.json'), '--resume'], capsys)
    assert code == 2 and '--resume: no training state at' in err


@pytest.mark.parametrize('argv, message', [
    # an empty --grid or --ray ran the default grid, in-process; -T was ignored (a review)
    (['sweep', '--grid', ''], '--grid: timestep counts'),
    (['enhance', '--grid', ''], '--grid: timestep'),
    (['sweep', '--ray', ''], 'expected auto or HOST:PORT'),
    (['enhance', '--ray', ' '], 'expected auto or'),
    (['enhance', '-T', '5000'], 'topspark enhance measures the T of --grid (--grid 5000'),
    (['sweep', '-T', '32'], 'measures the T of --grid'),
])
def test_options_that_would_run_something_else_are_refused(argv, message, tmp_path, capsys):
    """A copy of the shipped model: a regression must not enhance the shipped profile."""
    for path in MODELS.glob('stdp_fmnist_n400.*'):
        shutil.copy(path, tmp_path)
    model = str(tmp_path / 'stdp_fmnist_n400.json')
    code = main([argv[0], '-m', model, *argv[1:], '--quiet'])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_a_params_from_profile_that_cannot_be_read_is_one_line(tmp_path, capsys):
    """A missing one said '[Errno 2] ...' (exit 1), a broken one three lines and a caret."""
    broken = tmp_path / 'broken.yaml'
    broken.write_text('entries: [\n  {timesteps: 8,\n')
    for profile, code_wanted, said in ((tmp_path / 'none.yaml', 2, 'cannot read'),
                                       (broken, 1, 'not valid YAML')):
        code = main(['eval', '-m', str(MODELS / 'stdp_fmnist_n400.json'), '--params-from',
                     str(profile), '-T', '8', '--n-eval', '5', '--quiet'])
        err = capsys.readouterr().err
        assert code == code_wanted and len(err.strip().splitlines()) == 1 and said in err, err
        assert '(line ' in err or profile != broken

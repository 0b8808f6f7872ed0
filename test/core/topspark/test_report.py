"""Tests of the reproduction report's selection logic (benchmarks/report_topspark.py)."""

import importlib.util
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

_SCRIPT = Path(__file__).resolve().parents[3] / 'benchmarks' / 'report_topspark.py'


@pytest.fixture(scope='module')
def report():
    """Import the report script as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location('report_topspark', _SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ACC = {350: 0.750, 150: 0.752, 100: 0.745, 64: 0.735, 32: 0.729, 16: 0.70, 8: 0.10}


def test_pick_timesteps_takes_the_smallest_t_within_tolerance(report):
    assert report.pick_timesteps(ACC, 350, 2.0) == 64      # 73.5 % >= 73.0 %, 72.9 % is not
    assert report.pick_timesteps(ACC, 350, 2.1) == 32      # 72.9 % >= 72.9 %
    assert report.pick_timesteps(ACC, 350, 0.0) == 150     # more accurate than the baseline
    assert report.pick_timesteps(ACC, 350, 100.0) == 8


def test_pick_timesteps_loss_of_exactly_the_tolerance_qualifies(report):
    assert report.pick_timesteps({350: 0.75, 32: 0.73}, 350, 2.0) == 32
    assert report.pick_timesteps({350: 0.75, 32: 0.7299}, 350, 2.0) == 350


def test_pick_timesteps_is_not_fooled_by_a_dip_in_the_middle(report):
    # Not monotone: T=64 fails, T=32 passes; the smallest qualifying T wins.
    assert report.pick_timesteps({350: 0.75, 64: 0.70, 32: 0.74}, 350, 2.0) == 32


def test_pick_timesteps_bad_input(report):
    with pytest.raises(report.ReportError, match='baseline T=350'):
        report.pick_timesteps({64: 0.7}, 350, 2.0)
    with pytest.raises(report.ReportError, match='>= 0'):
        report.pick_timesteps(ACC, 350, -1.0)
    assert issubclass(report.ReportError, ValueError)


def test_candidates_within_are_ascending_from_the_chosen_t(report):
    assert report.candidates_within(ACC, 350, 2.0) == [64, 100, 150, 350]
    assert report.candidates_within({350: 0.75, 64: 0.70, 32: 0.74}, 350, 2.0) == [32, 350]


def test_next_training_step_walks_up_until_a_model_passes(report):
    cands = [32, 64, 350]
    assert report.next_training_step(cands, {}, 0.75, 2.0) == ('train', 32)
    assert report.next_training_step(cands, {32: 0.70}, 0.75, 2.0) == ('train', 64)
    assert report.next_training_step(cands, {32: 0.70, 64: 0.74}, 0.75, 2.0) == ('pass', 64)
    assert report.next_training_step(cands, {32: 0.731}, 0.75, 2.0) == ('pass', 32)
    assert report.next_training_step(cands, {32: 0.1, 64: 0.1, 350: 0.1}, 0.75, 2.0) == (
        'none', None)
    with pytest.raises(report.ReportError):
        report.next_training_step(cands, {}, 0.75, -0.5)


def test_saving_is_full_over_reduced_and_refuses_bad_figures(report):
    assert report.saving(350.0, 32.0) == pytest.approx(10.9375)
    assert report.saving(5.18e-6, 0.553e-6) == pytest.approx(9.367, rel=1e-3)
    for bad in (0.0, -1.0, None, math.nan, math.inf):
        with pytest.raises(report.ReportError, match='positive'):
            report.saving(1.0, bad)
        with pytest.raises(report.ReportError, match='positive'):
            report.saving(bad, 1.0)


def test_pick_early_exit_takes_fewest_steps_within_tolerance(report):
    entries = [
        {'timesteps': 350, 'early_exit_accuracy': 0.752, 'early_exit_mean_timesteps': 83.0},
        {'timesteps': 100, 'early_exit_accuracy': 0.748, 'early_exit_mean_timesteps': 59.0},
        {'timesteps': 32, 'early_exit_accuracy': 0.739, 'early_exit_mean_timesteps': 26.0},
        {'timesteps': 16, 'early_exit_accuracy': 0.70, 'early_exit_mean_timesteps': 14.0},
        {'timesteps': 8, 'early_exit_accuracy': None, 'early_exit_mean_timesteps': None},
    ]
    best = report.pick_early_exit(entries, 0.75, 350, 1.0)
    assert best['timesteps'] == 100 and best['mean_steps'] == 59.0
    assert best['steps_saving'] == pytest.approx(350 / 59.0)
    assert best['loss_pp'] == pytest.approx(0.2)
    assert report.pick_early_exit(entries, 0.75, 350, 1.2)['timesteps'] == 32
    assert report.pick_early_exit(entries, 0.80, 350, 1.0) is None


def test_average_skips_missing_values(report):
    rows = [{'x': 2.0}, {'x': None}, {'x': 4.0}, {}]
    assert report.average(rows, 'x') == 3.0
    assert report.average([{'x': None}], 'x') is None


def test_n_train_caps_apply_to_large_networks_only(report):
    opts = SimpleNamespace(n_train=60000, n_train_cap='900:30000,1600:10000')
    assert report.n_train_for(opts, 100) == 60000
    assert report.n_train_for(opts, 900) == 30000
    assert report.n_train_for(opts, 1600) == 10000


def _row(latency, energy, training, early):
    return {'latency': latency, 'inference_energy': energy, 'training_energy': training,
            'early_exit_saving': early}


def test_verdict_compares_averages_with_the_paper_and_the_goal(report):
    lines = report.verdict([_row(4.0, 3.0, 3.0, 7.0), _row(4.0, 3.4, 4.2, 4.0)])
    assert lines[0].startswith('latency: average 4.00x') and lines[0].endswith('beaten')
    assert 'NOT' not in lines[0]
    assert lines[1].endswith('NOT beaten')            # 3.2x < 3.3x
    assert lines[2].endswith('beaten') and 'NOT' not in lines[2]  # 3.6x > 3.5x
    assert 'average 5.50x' in lines[3] and '-> NOT met on average' in lines[3]
    assert lines[3].endswith('reached in 1 of 2 configurations')
    assert '-> met on average' in report.verdict([_row(1, 1, None, 6.0)])[3]
    assert 'NOT' in report.verdict([_row(1, 1, None, 6.0)])[2]


def test_write_docs_replaces_only_between_the_markers(report, tmp_path):
    path = tmp_path / 'results.md'
    path.write_text(f'head\n{report.MARK_BEGIN}\nold\n{report.MARK_END}\ntail\n')
    assert report.write_docs(str(path), 'new table')
    assert path.read_text() == (f'head\n{report.MARK_BEGIN}\nnew table\n{report.MARK_END}'
                                '\ntail\n')
    other = tmp_path / 'other.md'
    other.write_text('no markers\n')
    assert not report.write_docs(str(other), 'x')
    assert other.read_text() == 'no markers\n'
    assert not report.write_docs(str(tmp_path / 'missing.md'), 'x')


class _FakeRunner:
    """Stands in for Runner: canned CLI results, records the training runs asked for."""

    def __init__(self, trained_accuracy):
        self.trained_accuracy = trained_accuracy
        self.calls = []

    def topspark(self, name, argv, label, prepare=None, extra_key=()):
        self.calls.append(argv)
        load = {'load_before': [1.0], 'load_after': [1.0], 'wall_s': 1.0}
        if argv[0] == 'train':
            t = int(argv[argv.index('--timesteps') + 1])
            acc = 0.75 if t == 350 else self.trained_accuracy[t]
            return {'accuracy': acc, 'train_seconds': 1.0, **load}, f'/x/train{t}'
        if argv[0] == 'enhance':
            return dict(load), '/x/enh'
        enhanced = '--params-from' in argv
        entries = []
        for t, acc in ACC.items():
            entries.append({'timesteps': t, 'accuracy': acc if enhanced else acc - 0.05,
                            'latency_ms': 0.002 * t + 0.05, 'energy_j': 1e-8 * t,
                            'train_energy_j': 1e-7 * t + 1e-7,
                            'early_exit_accuracy': acc, 'early_exit_mean_timesteps': t * 0.6,
                            'params': {'v_thresh_mv': -60.0} if t < 100 else None})
        return {'entries': entries, **load}, '/x/sweep'


def test_run_config_wires_the_steps_together(report):
    opts = SimpleNamespace(grid='350,150,100,64,32,16,8', enhance_grid='32,16', n_train=1000,
                           n_train_cap='', n_eval=100, batch_size=64, n_train_steps=5,
                           early_exit_margin=3.0, budget=2, learn_budget=0, n_val=50,
                           learn_samples=20, confirm_samples=0, tolerance_pp=2.0,
                           exit_tolerance_pp=1.0)
    runner = _FakeRunner({64: 0.71, 100: 0.745})   # the T=64 model misses, T=100 passes
    row = report.run_config(runner, opts, 100, 'pair', 0)
    assert row['timesteps'] == 64 and row['accuracy'] == 0.735
    assert row['latency'] == pytest.approx((0.002 * 350 + 0.05) / (0.002 * 64 + 0.05))
    assert row['inference_energy'] == pytest.approx(350 / 64)
    assert row['train_timesteps'] == 100 and row['train_accuracy'] == 0.745
    assert row['training_energy'] == pytest.approx(351 / 101)
    assert row['early_exit']['timesteps'] == 100       # 74.5 % >= 74.0 %, 73.5 % is not
    trained_t = [int(a[a.index('--timesteps') + 1]) for a in runner.calls if a[0] == 'train']
    assert trained_t == [350, 64, 100]
    reduced = [a for a in runner.calls if a[0] == 'train' and '--params-from' in a]
    assert all(a[a.index('--params-from') + 1] == '/x/enh/profile.yaml' for a in reduced)
    assert all(a[a.index('--learning-rule') + 1] == 'pair' for a in reduced)


def test_trained_cell_names_the_runs_that_missed(report):
    row = {'train_timesteps': 64, 'full_timesteps': 350,
           'trained': {'16': {'accuracy': 0.7248}, '64': {'accuracy': 0.7508}}}
    assert report.trained_cell(row) == '64 (missed: 16: 72.48%)'
    row = {'train_timesteps': 350, 'full_timesteps': 350,
           'trained': {'32': {'accuracy': 0.6054}}}
    assert report.trained_cell(row).startswith('350 (the baseline: no reduced-T model')
    assert report.trained_cell(row).endswith('(missed: 32: 60.54%)')

"""Tests of the plots (core/plotting.py): each draws a PNG, matplotlib only when drawing."""

import subprocess
import sys

from topspark_ros.core.energy import OpCounts
from topspark_ros.core.plotting import plot_profile, plot_run, plot_sensitivity
from topspark_ros.core.stdp.knobs import stdp_knobs
from topspark_ros.core.topspark.enhance import Score, Sensitivity, SensitivityPoint
from topspark_ros.core.topspark.profile import ProfileEntry, TimestepProfile
from topspark_ros.core.topspark.scoreboard import Sample, Scoreboard

PNG = b'\x89PNG\r\n\x1a\n'


def _profile() -> TimestepProfile:
    entries = tuple(ProfileEntry(timesteps=t, accuracy=a, accuracy_ci95=(a - 0.01, a + 0.01),
                                 n_samples=100, latency_ms=0.01 * t, spikes=5.0 * t,
                                 energy_j=1e-8 * t, ops=OpCounts(accumulates=10.0 * t),
                                 train_latency_ms=0.02 * t, train_energy_j=5e-8 * t,
                                 early_exit_accuracy=a, early_exit_mean_timesteps=0.8 * t)
                    for t, a in ((8, 0.5), (32, 0.7), (128, 0.75)))
    return TimestepProfile(model_path='m.json', model_sha256='0' * 64, model_family='stdp',
                           dataset='fashion-mnist', split='test', n_samples=100,
                           machine='test', energy_preset='cmos45_fp32',
                           created='2026-11-23T10:00:00+00:00', package_version='0.1.0',
                           entries=entries)


def _sensitivity() -> Sensitivity:
    knob = stdp_knobs(1.0)[0]
    points = tuple(SensitivityPoint(t, knob.name, knob.stage, f, f,
                                    Score(0.5 + 0.1 * f, 1e-6 * f, 10.0, 100))
                   for t in (16, 8) for f in sorted(set(knob.factors) | {1.0}))
    return Sensitivity(grid=(16, 8), knobs=(knob,), points=points)


def test_each_plot_writes_a_png(tmp_path):
    plot_profile(_profile(), tmp_path / 'profile.png')
    plot_sensitivity(_sensitivity(), tmp_path / 'sensitivity.png', 'title')
    board = Scoreboard()
    for i in range(30):
        board.add(Sample(time_s=0.1 * i, correct=i % 3 != 0, timesteps=32 - i,
                         latency_ms=1.0, energy_j=1e-6))
        board.add_battery(0.1 * i, 1.0 - 0.01 * i)
    plot_run(board, tmp_path / 'run.png')
    early = Scoreboard()  # early exit: the steps used beside T
    for i in range(30):
        early.add(Sample(time_s=0.1 * i, correct=True, timesteps=10 + i, latency_ms=1.0,
                         energy_j=1e-6, budget=64))
    plot_run(early, tmp_path / 'early.png')
    for name in ('profile', 'sensitivity', 'run', 'early'):
        assert (tmp_path / f'{name}.png').read_bytes().startswith(PNG)


def test_importing_the_module_imports_no_matplotlib():
    code = ('import sys\n'
            'import topspark_ros.core.plotting\n'
            "assert 'matplotlib' not in sys.modules\n"
            "assert 'topspark_ros.core.topspark.enhance' not in sys.modules\n")
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)

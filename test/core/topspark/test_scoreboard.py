"""Tests of the run scoreboard (core/topspark/scoreboard.py): exact summaries of small runs."""

import math

import pytest

from topspark_ros.core.topspark.scoreboard import Sample, Scoreboard


def _board() -> Scoreboard:
    board = Scoreboard(baseline_energy_j=4e-6, frames_dropped=2)
    board.add(Sample(time_s=0.5, correct=True, timesteps=32, latency_ms=1.0, energy_j=2e-6))
    board.add(Sample(time_s=1.0, correct=False, timesteps=16, latency_ms=3.0, energy_j=1e-6))
    board.add(Sample(time_s=1.5, correct=None, timesteps=16, latency_ms=2.0, energy_j=1e-6))
    board.add(Sample(time_s=2.0, correct=True, timesteps=8, latency_ms=4.0, energy_j=0.5e-6))
    board.add_battery(0.0, 0.9)
    board.add_battery(2.5, 0.85)
    return board


def test_summary_of_a_small_run():
    s = _board().summary()
    assert (s.classifications, s.scored, s.frames_dropped) == (4, 3, 2)
    assert s.accuracy == pytest.approx(2 / 3)        # None (unscored) left out
    assert s.mean_timesteps == 18.0 and s.final_timesteps == 8
    assert s.latency_p50_ms == 2.5                    # numpy's linear interpolation
    assert s.latency_p99_ms == pytest.approx(3.97)
    assert s.energy_per_inference_j == pytest.approx(1.125e-6)
    assert s.baseline_energy_per_inference_j == 4e-6
    assert s.energy_saving == pytest.approx(1 - 1.125 / 4)
    assert (s.battery_start, s.battery_end) == (0.9, 0.85)
    assert s.duration_s == 2.5                        # the last battery reading came last


def test_summary_lines_name_the_preset():
    lines = _board().summary().lines('cmos45_fp32')
    assert lines[0] == 'classifications     4 in 2.5 s (2 frames dropped)'
    assert lines[1] == 'accuracy            66.7% of 3 scored'
    assert lines[2] == 'timesteps T         mean 18.0, final 8'
    assert lines[3] == 'latency             p50 2.50 ms, p99 3.97 ms'
    assert lines[4] == ('energy/inference    1.125 uJ (cmos45_fp32): 71.9% less than at the '
                        'largest profiled T (4.000 uJ)')
    assert lines[5] == 'battery             90.0% -> 85.0%'


def test_an_empty_board_and_an_unknown_baseline():
    s = Scoreboard().summary()
    assert (s.classifications, s.scored, s.accuracy, s.final_timesteps) == (0, 0, 0.0, 0)
    assert s.energy_per_inference_j == 0.0 and s.energy_saving == 0.0
    assert s.latency_p50_ms == 0.0 and s.duration_s == 0.0
    assert math.isnan(s.battery_start) and math.isnan(s.battery_end)
    assert s.lines('loihi')[4].endswith('baseline unknown')


def test_with_early_exit_t_is_the_budget_and_the_steps_used_are_beside_it():
    """The demo showed the steps used as T ('mean 87.2' while T was 350; a review)."""
    board = Scoreboard()
    for k, used in enumerate((80, 100, 350, 90)):
        board.add(Sample(time_s=float(k), correct=True, timesteps=used, latency_ms=1.0,
                         energy_j=1e-6, budget=350))
    summary = board.summary()
    assert (summary.mean_timesteps, summary.final_timesteps) == (350.0, 350)
    assert (summary.mean_steps_used, summary.final_steps_used) == (155.0, 90)
    assert 'mean 350.0, final 350; steps used mean 155.0, final 90 (early exit)' in \
        summary.lines('cmos45_fp32')[2]
    whole = Scoreboard()
    whole.add(Sample(time_s=0.0, correct=True, timesteps=64, latency_ms=1.0, energy_j=1e-6))
    assert whole.summary().lines('cmos45_fp32')[2] == 'timesteps T         mean 64.0, final 64'

"""The energy monitor's windows, smoothed for the controller (core.energy_windows)."""

import itertools
import pathlib

import pytest

from topspark_ros.core.energy_windows import EnergyWindows, WINDOWS
from topspark_ros.core.topspark.profile import load_profile
from topspark_ros.core.topspark.strategy import (Constraints, LiveSignals, Mode,
                                                 profiled_energy_j, TimestepSelector)

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROFILE = ROOT / 'models' / 'stdp_fmnist_n400.profile.yaml'


def test_windows_average_their_ratios_weighted_by_inferences_at_the_latest_t() -> None:
    """Ratios to the profile, weighted by inferences, given back at the latest window's T."""
    profiled = {16.0: 2e-6, 32.0: 4e-6}.__getitem__
    windows = EnergyWindows()
    energy, power = windows.add(10, 1.6e-6, 1.6e-5, 16.0, profiled)  # ratio 0.8
    assert (energy, power) == (pytest.approx(1.6e-6), pytest.approx(1.6e-5))
    energy, power = windows.add(30, 2.4e-6, 2.4e-5, 32.0, profiled)  # ratio 0.6
    ratio = (10 * 0.8 + 30 * 0.6) / 40
    assert energy == pytest.approx(ratio * 4e-6) and power == pytest.approx(ratio * 4e-5)
    for _ in range(WINDOWS):  # the oldest windows leave
        energy, _ = windows.add(10, 4e-6, 4e-5, 32.0, profiled)
    assert energy == pytest.approx(4e-6) and len(windows) == WINDOWS
    windows.clear()
    assert windows.add(10, None, 2e-5, 16.0, profiled) == (None, pytest.approx(2e-5))
    assert windows.add(10, 1e-6, 1e-5, 16.0, lambda t: 0.0) == (1e-6, 1e-5)  # not kept
    assert len(windows) == 1


def test_a_budget_near_the_measured_energy_no_longer_flips_t_every_window() -> None:
    """
    The review's case: loihi, 10 uJ, windows scattering 0.7 / 0.8 of the profile's energy.

    Each window given as it came, T went 16 -> 32 -> 16 -> 32 at every window; smoothed, T
    settles, and the T it settles at is within the budget on average.
    """
    profile = load_profile(PROFILE).priced('loihi')
    selector = TimestepSelector(profile, Constraints(max_accuracy_drop=0.02, max_energy_j=10e-6),
                                Mode.BALANCED)
    windows = EnergyWindows()
    t = selector.update(LiveSignals(rate_hz=10.0)).timesteps
    picks, measured = [], []
    for ratio in itertools.islice(itertools.cycle([0.70, 0.80]), 30):
        energy_j = ratio * profiled_energy_j(profile, t)
        measured.append((t, energy_j))
        energy, power = windows.add(10, energy_j, 10 * energy_j, float(t),
                                    lambda x: profiled_energy_j(profile, x))
        t = selector.update(LiveSignals(
            rate_hz=10.0, measured_latency_ms=0.8, measured_timesteps=t, measured_energy_j=energy,
            measured_power_w=power, power_timesteps=float(t))).timesteps
        picks.append(t)
    switches = sum(a != b for a, b in zip(picks, picks[1:]))
    assert switches <= 2, picks
    last = [e for at, e in measured[-10:] if at == picks[-1]]
    assert sum(last) / len(last) <= 10e-6


def test_a_window_whose_ratio_overflows_is_refused_and_not_kept() -> None:
    """Kept, its inf made every smoothed figure after it inf, refused downstream (a review)."""
    windows = EnergyWindows()
    tiny = {8.0: 1e-300}.__getitem__
    with pytest.raises(ValueError, match='too large for the profile'):
        windows.add(10, None, 1e10, 8.0, tiny)
    assert windows.add(10, None, 1e-5, 8.0, tiny) == (None, pytest.approx(1e-5))

"""The README's main job, `topspark demo`, in a short form: it runs and its summary is right."""

import pathlib
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros

# A battery small enough to run down within the short run, so the controller must step T down.
FAST_DRAIN = """
/**/battery_simulator:
  ros__parameters:
    capacity_j: 0.0002
    initial_fraction: 0.4
/**/image_player:
  ros__parameters:
    rate_hz: 20.0
/**/timestep_controller:
  ros__parameters:
    heartbeat_period_s: 0.5
"""


def test_short_demo_runs_and_reports(tmp_path) -> None:
    """A 15 s demo: classifications scored, T steps down as the battery falls, plot written."""
    demo_params = pathlib.Path(__file__).resolve().parent.parent / 'config' / 'demo.yaml'
    override = tmp_path / 'fast.yaml'
    override.write_text(FAST_DRAIN)
    plot = tmp_path / 'demo.png'
    result = subprocess.run(
        [sys.executable, '-m', 'topspark_ros', 'demo', '--duration-s', '15', '--quiet',
         '--plot', str(plot), '--params-file', str(demo_params), '--params-file',
         str(override)],
        capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    n = int(re.search(r'classifications\s+(\d+) in', out).group(1))
    accuracy = float(re.search(r'accuracy\s+([\d.]+)% of (\d+) scored', out).group(1)) / 100
    mean_t, final_t = map(int, map(float, re.search(
        r'timesteps T\s+mean ([\d.]+), final (\d+)', out).groups()))
    start, end = map(float, re.search(r'battery\s+([\d.]+)% -> ([\d.]+)%', out).groups())
    assert n >= 50, out
    assert accuracy > 0.5, f'accuracy {accuracy} is not far above chance (0.1):\n{out}'
    assert end < start, out
    assert final_t < mean_t or final_t <= 32, f'T did not step down:\n{out}'
    assert re.search(r'latency\s+p50 [\d.]+ ms, p99 [\d.]+ ms', out)
    assert re.search(r'energy/inference\s+[\d.]+ uJ \(cmos45_fp32\): [\d.]+% less than at full T',
                     out), out
    assert plot.exists() and plot.stat().st_size > 10_000

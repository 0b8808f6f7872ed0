"""`doctor`, the installation check (today's main job): passes here, and says why when not."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros


def _doctor(env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, '-m', 'topspark_ros.nodes.doctor', '--timeout-s', '15'],
                          capture_output=True, text=True, timeout=120, env=env)


def test_doctor_passes_with_real_round_trips() -> None:
    """Every check passes, including a DDS round trip of each message through a child process."""
    result = _doctor()
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in ('Classification', 'TimestepCommand', 'EnergyEstimate'):
        assert any(line.startswith('[  ok] round trip ' + name) for line in lines), lines
    assert 'rmw_fastrtps_cpp' in result.stdout
    assert lines[-1] == 'All checks passed.'


def test_doctor_reports_a_broken_middleware() -> None:
    """An RMW implementation that does not exist fails the rclpy check, with exit code 1."""
    env = dict(os.environ, RMW_IMPLEMENTATION='rmw_does_not_exist_cpp')
    result = _doctor(env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert '[FAIL] rclpy' in result.stdout
    assert 'Skipping the DDS round trip' in result.stdout
    assert '] round trip' not in result.stdout


@pytest.mark.parametrize('module, fails', [('numba', True), ('vision_msgs', False),
                                           ('event_camera_msgs', False)])
def test_doctor_checks_what_the_pipeline_needs(tmp_path, module, fails) -> None:
    """
    A missing numba passed every check, then bringup failed (a review).

    A missing message package that only a feature needs (publish_vision_msgs, event input)
    is a warning that names the feature, and the round trip still runs.
    """
    (tmp_path / module).mkdir()
    (tmp_path / module / '__init__.py').write_text(f'raise ImportError("no {module} here")\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    result = _doctor(env)
    assert result.returncode == int(fails), result.stdout + result.stderr
    assert f'no {module} here' in result.stdout
    if fails:
        assert f'[FAIL] {module}' in result.stdout
    else:
        assert f'[warn] {module}' in result.stdout and 'needed by' in result.stdout
        assert result.stdout.splitlines()[-1] == 'All checks passed.'

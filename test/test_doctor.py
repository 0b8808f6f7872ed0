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


@pytest.mark.parametrize('module', ['numba', 'vision_msgs'])
def test_doctor_fails_where_the_pipeline_could_not_start(tmp_path, module) -> None:
    """A missing numba or vision_msgs passed every check, then bringup failed (a review)."""
    (tmp_path / module).mkdir()
    (tmp_path / module / '__init__.py').write_text(f'raise ImportError("no {module} here")\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tmp_path)] + [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p]))
    result = _doctor(env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f'[FAIL] {module}' in result.stdout and f'no {module} here' in result.stdout

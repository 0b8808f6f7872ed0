"""The node processes' own options: --help, a mistyped option, bringup's --executor."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize('module', ['classifier', 'timestep_controller', 'energy_monitor'])
def test_help_prints_and_a_mistyped_option_is_an_error(module) -> None:
    """--help ran the node (for good); --autostrat started it silently, unconfigured."""
    command = [sys.executable, '-m', f'topspark_ros.nodes.{module}']
    shown = subprocess.run(command + ['--help'], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and '--autostart' in shown.stdout and '--executor' in \
        shown.stdout
    wrong = subprocess.run(command + ['--autostrat', '--ros-args', '-p', 'x:=1'],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and 'unrecognized arguments: --autostrat' in wrong.stderr


def test_bringup_takes_the_executor(monkeypatch) -> None:
    from topspark_ros.nodes import bringup, runner

    seen = {}
    monkeypatch.setattr(runner, 'run_nodes', lambda factories, **kw: seen.update(kw) or 0)
    assert bringup.bringup(['--executor', 'single', '-p', 'x:=1']) == 0
    assert seen['executor'] == 'single' and '--executor' not in seen['args']
    assert seen['args'][-2:] == ['-p', 'x:=1']

"""The report script (benchmarks/report_topspark.py) survives a killed step and a killed driver."""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

_SCRIPT = Path(__file__).resolve().parents[3] / 'benchmarks' / 'report_topspark.py'


def _children(pid: int) -> list:
    try:
        text = Path(f'/proc/{pid}/task/{pid}/children').read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _catches(pid: int, signum: int) -> bool:
    """Return whether process ``pid`` has a handler of ``signum`` (its SigCgt mask)."""
    try:
        status = Path(f'/proc/{pid}/status').read_text()
    except OSError:
        return False
    mask = next(int(line.split()[1], 16) for line in status.splitlines()
                if line.startswith('SigCgt:'))
    return bool(mask >> (signum - 1) & 1)


def _state(pid: int):
    """Return the state letter of process ``pid`` (R, S, T, Z, ...), None when it is gone."""
    try:
        return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _runs_the_step(pid: int) -> bool:
    """Return whether process ``pid`` runs the step's command (its exec done)."""
    try:
        return b'topspark_ros.cli' in Path(f'/proc/{pid}/cmdline').read_bytes()
    except OSError:
        return False


def _stopped_catching(pid: int, signum: int) -> bool:
    """
    Stop ``pid`` if it has a handler of ``signum`` now (it goes on with SIGCONT), and say so.

    Stopped while it is looked at: a step that ended between the look and the signal (a second
    after its handler came, under the load of a parallel test run) got it as a dead process.
    And only once it runs the step's command: forked, before its exec, it has the driver's
    handler, and a signal then is lost in the fork's own Python callbacks (seen once).
    """
    try:
        os.kill(pid, signal.SIGSTOP)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + 5.0  # (a signal is delivered when the process next runs)
    while _state(pid) not in ('T', 'Z', None) and time.monotonic() < deadline:
        time.sleep(0.001)
    if _runs_the_step(pid) and _catches(pid, signum):
        return True
    os.kill(pid, signal.SIGCONT)
    return False


def _wait_for(condition, proc, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if proc.poll() is not None:
            pytest.fail(f'the report ended (exit {proc.returncode}) before {what}')
        time.sleep(0.05)
    pytest.fail(f'timed out waiting for {what}')


def _steps(work: Path, name: str) -> list:
    return sorted(d for d in (work / 'steps').glob(f'{name}-*') if d.is_dir())  # no .lock


@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason='needs Linux /proc')
def test_report_resumes_after_a_killed_step_and_a_killed_driver(tmp_path, fashion_dir):
    work = tmp_path / 'work'
    argv = [sys.executable, str(_SCRIPT), '--data', f'idx:{fashion_dir}', '--sizes', '12',
            '--rules', 'dc', '--seeds', '0', '--n-train', '150', '--n-eval', '100',
            '--grid', '64,16', '--enhance-grid', '16', '--budget', '2', '--learn-budget', '0',
            '--n-val', '200', '--learn-samples', '20', '--confirm-samples', '0',
            '--n-train-steps', '2', '--tolerance-pp', '100', '--work-dir', str(work),
            '--plot', str(tmp_path / 'report.png'), '--docs', '']
    log = tmp_path / 'first.log'
    with open(log, 'w') as err:
        driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err)
    try:
        # A stopped worker: SIGTERM to the first step's process once it handles SIGTERM (it
        # unwinds, exit 143: taken for a failure, the report stopped; a review), then SIGKILL
        # to its second run (the OOM killer). The driver runs the step again each time.
        (child,) = _wait_for(lambda: _children(driver.pid), driver, 60, 'the first step')
        _wait_for(lambda: _stopped_catching(child, signal.SIGTERM), driver, 60,
                  'its SIGTERM handler')
        os.kill(child, signal.SIGTERM)  # (delivered as it goes on)
        os.kill(child, signal.SIGCONT)
        (again,) = _wait_for(lambda: [c for c in _children(driver.pid) if c != child], driver,
                             60, 'the step run again')
        os.kill(again, signal.SIGKILL)
        # A killed driver: SIGKILL it once the plain sweep has written its profile (the step
        # is not finished: its result is written when its process has exited).
        _wait_for(lambda: [d for d in _steps(work, 'sweep') if (d / 'profile.yaml').exists()],
                  driver, 120, "the plain sweep's profile")
        driver.kill()
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    first = log.read_text()
    assert 'killed (signal 15); running it again (1 of 2)' in first, first
    assert 'killed (signal 9); running it again (2 of 2)' in first, first
    assert driver.returncode == -signal.SIGKILL
    (train,) = _steps(work, 'train')
    done = train / 'result.json'
    assert done.exists() and not (work / 'report.json').exists()
    stamp = done.stat().st_mtime_ns
    again = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert 'train baseline T=64 on 150 images: cached' in again.stderr
    assert done.stat().st_mtime_ns == stamp  # the finished step was not run again
    report = json.loads((work / 'report.json').read_text())
    (row,) = report['rows']
    assert row['neurons'] == 12 and row['full_timesteps'] == 64
    assert all((d / 'result.json').exists() for d in (work / 'steps').iterdir() if d.is_dir())
    assert row['n_train'] == 150 and row['n_eval'] == 100  # the images the steps used
    # Progress: one line per step, with the elapsed time.
    assert again.stderr.count('[report ') >= 4

"""The test suite's own set-up (test/conftest.py): a run leaves nothing behind."""

import os
from pathlib import Path
import subprocess
import sys

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_a_run_removes_its_data_set_cache(tmp_path):
    """Each run made a data-set cache folder in the temporary folder and left it (7.5 MB)."""
    test = 'test/core/test_files.py'
    run = subprocess.run(
        [sys.executable, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', test, '-x'],
        cwd=REPO_ROOT, env={**os.environ, 'TMPDIR': str(tmp_path)}, capture_output=True,
        text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert 'passed' in run.stdout
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith('topspark-test-data-cache-')]
    assert left == []


def test_each_worker_of_a_run_has_a_ros_domain_of_its_own():
    """Two pytest-xdist workers on one domain would hear each other's nodes and topics."""
    worker = os.environ.get('PYTEST_XDIST_WORKER')
    count = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if worker is None or count < 2:
        pytest.skip('not run by pytest-xdist workers (make test runs it so)')
    domain = int(os.environ['ROS_DOMAIN_ID'])
    assert 1 <= domain <= 100
    assert (domain - 1) % count == int(worker.removeprefix('gw'))

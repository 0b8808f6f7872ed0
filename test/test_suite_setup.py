"""The test suite's own set-up (test/conftest.py): a run leaves nothing behind."""

import os
from pathlib import Path
import subprocess
import sys

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

"""The README's Python example runs as written, without ROS (a user review: no usage example)."""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_python_example_runs_and_prints_a_prediction() -> None:
    text = (ROOT / 'README.md').read_text()
    block = re.search(r'<!-- python-example [^>]*-->\n```python\n(.*?)```', text, re.S)
    assert block, 'the README has no python-example block'
    run = subprocess.run([sys.executable, '-c', block.group(1)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    timesteps, class_id, *rest = run.stdout.split()
    assert int(timesteps) in (8, 16, 32, 64, 100, 150, 250, 350)
    assert -1 <= int(class_id) < 10 and rest[-1] == 'ms'
    assert 'rclpy' not in run.stderr

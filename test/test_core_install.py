"""
`pip install .` without any ROS: the core library and the `topspark` command work alone.

Runs in the ROS-free environment made by ``dev/env.sh core`` from requirements/core.lock:
pip builds and installs this repository into a fresh target directory, then a child
interpreter imports every core module and runs the command line.
"""

import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE_VENV = subprocess.run([str(ROOT / 'dev' / 'env.sh'), 'core', '--path'], capture_output=True,
                           text=True, check=True).stdout.strip()
CORE_PYTHON = pathlib.Path(CORE_VENV) / 'bin' / 'python'

IMPORT_EVERY_CORE_MODULE = """
import importlib, pkgutil, sys
import topspark_ros, topspark_ros.core
assert topspark_ros.__file__.startswith(sys.argv[1]), topspark_ros.__file__
names = [m.name for m in pkgutil.walk_packages(topspark_ros.core.__path__, 'topspark_ros.core.')]
for name in names:
    importlib.import_module(name)
import topspark_ros.cli.main
leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('rclpy', 'rosidl_runtime_py'))
assert not leaked, leaked
try:
    import rclpy
except ImportError:
    pass
else:
    raise AssertionError('this environment was meant to have no ROS')
print(len(names))
"""


@pytest.fixture(scope='module')
def installed(tmp_path_factory) -> pathlib.Path:
    """Install this repository with pip into a fresh directory; return that directory."""
    if not CORE_PYTHON.exists():
        pytest.skip('no ROS-free environment: run through `make test` (it creates it)')
    target = tmp_path_factory.mktemp('pip-target')
    env = {k: v for k, v in os.environ.items() if not k.startswith(('PYTHON', 'AMENT', 'COLCON'))}
    result = subprocess.run(
        [str(CORE_PYTHON), '-m', 'pip', 'install', '--quiet', '--no-deps',
         '--no-build-isolation', '--target', str(target), str(ROOT)],
        capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    return target


def _run(installed: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(('PYTHON', 'AMENT', 'COLCON', 'LD_LIBRARY_PATH', '_ROS'))}
    env['PYTHONPATH'] = str(installed)
    # cwd: not the source tree, which `python -c` would put first on sys.path.
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=300,
                          cwd=installed)


def test_pip_installed_package_has_no_messages_and_no_nodes_needed(installed) -> None:
    """The wheel holds the Python package (core included) and nothing ROS-generated."""
    package = installed / 'topspark_ros'
    assert (package / '__init__.py').exists()
    assert (package / 'core' / '__init__.py').exists()
    assert not (package / 'msg').exists()


def test_every_core_module_imports_without_ros(installed) -> None:
    """Every module of topspark_ros.core imports in an environment where rclpy does not exist."""
    result = _run(installed, str(CORE_PYTHON), '-c', IMPORT_EVERY_CORE_MODULE, str(installed))
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 1


def test_command_line_tool_runs(installed) -> None:
    """The `topspark` console script pip installed answers --version and --help."""
    topspark = installed / 'bin' / 'topspark'
    assert topspark.exists()
    import topspark_ros
    result = _run(installed, str(topspark), '--version')
    assert result.returncode == 0, result.stderr
    assert topspark_ros.__version__ in result.stdout
    result = _run(installed, str(topspark), '--help')
    assert result.returncode == 0 and 'usage' in result.stdout.lower(), result.stderr

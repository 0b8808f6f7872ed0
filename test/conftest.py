"""
Test-suite set-up shared by every test: an isolated ROS 2 environment per test run.

Each run gets its own ``ROS_DOMAIN_ID`` (so parallel or leftover processes on this machine do
not cross-talk), discovery limited to this host, and the Fast DDS profile with quick initial
announcements. Child processes inherit all of it through ``os.environ``.
"""

import contextlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# Shared helpers of the tests (test/support/event_arrays.py, ...) import by module name.
sys.path.insert(0, str(REPO_ROOT / 'test' / 'support'))


def _domain_id() -> int:
    """
    Return this test process's ROS domain: 1..100, another for each pytest-xdist worker.

    1..100: valid Fast DDS domains with room for many participants each (ports stay < 65536).
    Worker k of n takes a domain of residue k modulo n (by its process id otherwise), so the
    workers of one run never share one; another run on the machine may, by chance.
    """
    worker = os.environ.get('PYTEST_XDIST_WORKER', '')  # gw0, gw1, ...
    count = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if not worker.startswith('gw') or not 1 < count <= 100:
        return 1 + os.getpid() % 100
    return 1 + (os.getpid() % (100 // count)) * count + int(worker[2:]) % count


os.environ['ROS_DOMAIN_ID'] = str(_domain_id())
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
# Preprocessed data-set inputs (core/data/cache.py) go to a folder of this run, not ~/.cache
# (removed when the run ends: each run left up to 7.5 MB in /tmp).
_DATA_CACHE = os.environ['TOPSPARK_DATA_CACHE'] = tempfile.mkdtemp(
    prefix='topspark-test-data-cache-')
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
# Fast DDS 2.x (Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE, 3.x (Kilted) FASTDDS_...: set both.
for _variable in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'):
    os.environ[_variable] = str(REPO_ROOT / 'config' / 'fastdds_fast_discovery.xml')


def _ros_available() -> bool:
    try:
        import rclpy  # noqa: F401
        import topspark_ros.msg  # noqa: F401
    except ImportError:
        return False
    return True


ROS_AVAILABLE = _ros_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``ros`` with a clear reason when rclpy or our messages are missing."""
    if ROS_AVAILABLE:
        return
    skip = pytest.mark.skip(
        reason='rclpy or topspark_ros.msg not importable: run through `make test`')
    for item in items:
        if 'ros' in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers this suite uses."""
    config.addinivalue_line('markers', 'ros: needs rclpy and the built messages')


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove this run's data-set cache (its child processes have ended by now)."""
    shutil.rmtree(_DATA_CACHE, ignore_errors=True)


@pytest.fixture(scope='session')
def python_executable() -> str:
    """Return the interpreter running the tests (children run with the same environment)."""
    return sys.executable


@pytest.fixture
def ros():
    """
    Yield ``(context, executor, spin_until)`` for a fresh rclpy context (in-process node tests).

    On teardown every node leaves the DDS graph at once (lifecycle services included), so a
    later test's ``wait_for_service`` cannot find a node of this one.
    """
    import rclpy

    from topspark_ros.nodes.runner import make_executor
    context = rclpy.Context()
    rclpy.init(context=context)
    # The nodes' own multi-threaded executor (rclpy's spins between a task handed to its pool
    # and its start: a test publishing 560 messages one at a time took minutes).
    executor = make_executor('multi', threads=4, context=context)
    from ros_graph import leave_graph, spinner
    yield context, executor, spinner(executor)
    leave_graph(executor, context)


@pytest.fixture(autouse=True)
def _no_participant_kept_by_garbage():
    """
    After each test, collect the garbage that keeps a DDS participant alive, if any.

    A node left to the garbage collector (one a test did not destroy, a test's own context)
    kept its participant until a collection at any later moment, in another test; one such
    destruction hung a CI run in Fast DDS (see test/support/ros_graph.py). Tests with the
    ``ros`` fixture also fail if a participant is still held then.
    """
    yield
    from ros_graph import collect_participant_garbage
    collect_participant_garbage()


@pytest.fixture(autouse=True)
def _own_ros_home(tmp_path_factory, monkeypatch) -> None:
    """
    Give each test a ``ROS_HOME`` of its own (not ``~/.ros``).

    Learnt weights saved by default go there, with the lock a classifier learning on line
    holds: a node another test left behind held the default path's lock.
    """
    monkeypatch.setenv('ROS_HOME', str(tmp_path_factory.mktemp('ros_home')))


@pytest.fixture(scope='session')
def fashion_dir() -> pathlib.Path:
    """Return the Fashion-MNIST directory, or skip when it is not installed."""
    from topspark_ros.core.data.dataset import DatasetError
    from topspark_ros.core.data.idx import find_dataset_dir

    try:
        return find_dataset_dir('fashion-mnist', start=REPO_ROOT / 'test')
    except DatasetError as exc:
        pytest.skip(f'Fashion-MNIST not installed: {exc}')


@pytest.fixture(scope='session')
def fashion_train(fashion_dir):
    """Return the Fashion-MNIST training split."""
    from topspark_ros.core.data.idx import load_mnist_family

    return load_mnist_family(fashion_dir, 'train')


@pytest.fixture(scope='session')
def fashion_test(fashion_dir):
    """Return the Fashion-MNIST test split."""
    from topspark_ros.core.data.idx import load_mnist_family

    return load_mnist_family(fashion_dir, 'test')


@contextlib.contextmanager
def _node_process(module: str, *args: str):
    """Run ``python -m topspark_ros.nodes.<module> args...``; SIGTERM it, check it exits 0."""
    import processes  # test/support, on the path once this module is imported
    proc = subprocess.Popen([sys.executable, '-m', f'topspark_ros.nodes.{module}', *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        out = processes.stop(proc)
        assert proc.returncode == 0, f'{module} exited with {proc.returncode}:\n{out}'


@pytest.fixture
def node_process():
    """Return a context manager ``(module, *args)`` that runs one node process."""
    return _node_process

"""Tests of the fan-out (core/topspark/fanout.py): in-process, on a local Ray cluster, no Ray."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from topspark_ros.cli.main import main
from topspark_ros.core.checkpoint import save_checkpoint
from topspark_ros.core.data.dataset import split_indices
from topspark_ros.core.data.idx import FASHION_MNIST_CLASSES
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.topspark.fanout import (check_reachable, executor_for, InProcess,
                                               RAY_MISSING, RayExecutor)
from topspark_ros.core.topspark.profile import load_profile
import yaml

# One Ray cluster at a time on this machine: pytest-xdist runs these tests in one worker, in
# order (two workers' clusters at once failed to connect to their GCS).
pytestmark = pytest.mark.xdist_group('ray')


def test_in_process_keeps_the_order_and_counts_progress():
    calls = []
    executor = executor_for(None)
    assert isinstance(executor, InProcess) and isinstance(executor_for(''), InProcess)
    assert executor.run(round, [3.14, 1.26, 2.71], progress=calls.append,
                        shared={'ndigits': 1}) == [3.1, 1.3, 2.7]
    assert calls == [1, 1, 1]


def test_ray_asked_for_but_missing_is_one_clear_error(monkeypatch, tmp_path, small_model,
                                                      fashion_dir, capsys):
    monkeypatch.setitem(sys.modules, 'ray', None)  # `import ray` raises ImportError
    with pytest.raises(RuntimeError, match='not installed'):
        executor_for('auto')
    assert main(['sweep', '-m', str(small_model), '--grid', '8', '--n-eval', '20',
                 '--data-dir', str(fashion_dir), '-o', str(tmp_path / 'p.yaml'),
                 '--ray', 'auto', '--quiet']) == 1
    err = capsys.readouterr().err
    assert err == f'topspark: error: {RAY_MISSING}\n' and not (tmp_path / 'p.yaml').exists()


def test_ray_is_not_imported_without_the_option():
    code = ('import sys\n'
            'from topspark_ros.core.topspark import enhance, fanout, search, sweep\n'
            'from topspark_ros import cli\n'
            'fanout.executor_for(None).run(print, [])\n'
            "assert 'ray' not in sys.modules, 'ray imported'\n"
            "assert 'optuna' not in sys.modules, 'optuna imported'\n")
    subprocess.run([sys.executable, '-c', code], check=True, timeout=120)


@pytest.fixture(scope='module')
def ray_cluster(tmp_path_factory):
    """
    Start a local 2-CPU Ray cluster on loopback for this module; shut it down after.

    Started from a folder of its own: ``ray.init`` puts the driver's working directory first
    on its workers' ``sys.path``, and from the repository's root the workers imported
    ``topspark_ros`` from the source tree, not from the install this process imports, and
    compiled every numba kernel again for that path (about 40 s of this module on a clean
    clone).
    """
    from topspark_ros.core.topspark.fanout import _working_directory
    ray = pytest.importorskip('ray')
    with _working_directory(tmp_path_factory.mktemp('ray')):  # as RayExecutor connects
        context = ray.init(num_cpus=2, include_dashboard=False, configure_logging=False,
                           object_store_memory=200 * 2 ** 20, _node_ip_address='127.0.0.1')
    yield context.address_info['address']
    ray.shutdown()


@pytest.fixture(scope='module')
def small_model(tmp_path_factory, fashion_train):
    """Return the checkpoint path of a 20-neuron model (300 images at T=64)."""
    (train,) = split_indices(len(fashion_train), [300], 11)
    model = DiehlCookNetwork(STDPConfig(n_neurons=20, seed=0))
    model.learn(fashion_train.images[train], timesteps=64)
    model.assign_labels(fashion_train.images[train], fashion_train.labels[train], timesteps=64,
                        seed=1)
    path = tmp_path_factory.mktemp('fanout') / 'm.json'
    save_checkpoint(path, model, info={'class_names': list(FASHION_MNIST_CLASSES)})
    return path


def _run(capsys, argv):
    code = main(argv + ['--json', '--quiet'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


def _without(record, *keys):
    return {k: v for k, v in record.items() if k not in keys}


def test_enhance_and_sweep_are_the_same_on_ray(ray_cluster, small_model, fashion_dir, capsys):
    folder = small_model.parent
    data = ['--data-dir', str(fashion_dir), '--seed', '4']
    sweep = ['sweep', '-m', str(small_model), '--grid', '16,8', '--n-eval', '150',
             '--n-train-steps', '5', '--plot', ''] + data
    plain = _run(capsys, sweep + ['-o', str(folder / 'here.yaml')])
    remote = _run(capsys, sweep + ['-o', str(folder / 'ray.yaml'), '--ray', ray_cluster])
    for a, b in zip(plain['entries'], remote['entries']):
        assert _without(a, 'latency_ms') == _without(b, 'latency_ms')
    enhance = ['enhance', '-m', str(small_model), '--grid', '8', '--budget', '5',
               '--learn-budget', '2', '--learn-samples', '30', '--learn-neurons', '6',
               '--confirm-samples', '60', '--n-val', '120', '--top-k', '2',
               '--trial-batch', '2', '--plot', ''] + data
    here = _run(capsys, enhance + ['-o', str(folder / 'here.yaml')])
    there = _run(capsys, enhance + ['-o', str(folder / 'ray.yaml'), '--ray', ray_cluster])
    assert (here['executor'], there['executor']) == ('in-process', 'ray')
    assert here['sampler'] == 'tpe'
    a, b = (load_profile(folder / name) for name in ('here.yaml', 'ray.yaml'))
    assert a.enhancement['command'] != b.enhancement['command']  # --ray is recorded
    assert _without(a.enhancement, 'command', 'created') == _without(
        b.enhancement, 'command', 'created')
    assert a.params_for(8) == b.params_for(8)
    assert here['sensitivity'] == there['sensitivity']
    assert any(row['train_candidates'] for row in a.enhancement['timesteps'])
    # The whole files agree but for the records' commands, creation time and latencies.
    texts = [yaml.safe_load((folder / name).read_text()) for name in ('here.yaml', 'ray.yaml')]
    for text in texts:
        text.pop('created')
        text['measurement'].pop('command')
        text['enhancement'].pop('command')
        text['enhancement'].pop('created')
        for entry in text['entries']:
            entry.pop('latency_ms')
            entry.pop('train_latency_ms', None)
    assert texts[0] == texts[1]


def test_ray_workers_import_the_installed_package_not_the_drivers_folder(
        ray_cluster, small_model, fashion_dir, tmp_path):
    """
    A ``topspark_ros`` folder where the command runs (a source checkout) is not the workers'.

    ``ray.init`` puts the driver's working directory first on its workers' ``sys.path``: run
    from the repository's root, they imported its source tree, not the install the driver
    ran (and compiled every numba kernel again for that path).
    """
    here = tmp_path / 'checkout'
    (here / 'topspark_ros').mkdir(parents=True)
    (here / 'topspark_ros' / '__init__.py').write_text(
        "raise ImportError('the topspark_ros of the folder the command ran in')\n")
    env = dict(os.environ, PYTHONSAFEPATH='1')  # (the driver itself: not from its folder)
    sweep = [sys.executable, '-m', 'topspark_ros.cli', 'sweep', '-m', str(small_model),
             '--grid', '8', '--n-eval', '20', '--data-dir', str(fashion_dir), '--plot', '',
             '--n-train-steps', '0', '--quiet', '--ray', ray_cluster,
             '-o', str(tmp_path / 'p.yaml')]
    run = subprocess.run(sweep, cwd=here, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / 'p.yaml').exists()


def test_ray_executor_reuses_a_running_cluster(ray_cluster):
    executor = RayExecutor(ray_cluster, threads=1)
    calls = []
    assert executor.run(round, [0.12, 1.27, 2.5, 3.51, 4.0], progress=calls.append,
                        shared={'ndigits': 1}) == [0.1, 1.3, 2.5, 3.5, 4.0]
    assert sum(calls) == 5
    executor.close()  # not its cluster: it stays up
    import ray
    assert ray.is_initialized()


def test_progress_lines_of_ray_tasks_reach_the_drivers_stderr_in_order(ray_cluster, capsys):
    """
    An item's progress lines (fanout.say) come to the driver before its result is counted.

    They were printed in the worker and left to Ray's forwarding of its output, which lost
    or delayed some: the report's step lines under --ray.
    """
    def task(item, *, count):
        from topspark_ros.core.topspark.fanout import say
        for k in range(count):
            say(f'item {item} line {k}')
        return item * 10

    executor = RayExecutor(ray_cluster, threads=1)
    printed, finished = [], []

    def progress(n):
        printed.append(capsys.readouterr().err)
        finished.append(n)
        lines = ''.join(printed).splitlines()
        assert len([x for x in lines if x.startswith('item ')]) >= 3 * sum(finished)

    try:
        assert executor.run(task, [0, 1, 2, 3], progress=progress,
                            shared={'count': 3}) == [0, 10, 20, 30]
    finally:
        executor.close()
    lines = (''.join(printed) + capsys.readouterr().err).splitlines()
    for item in range(4):
        assert [x for x in lines if x.startswith(f'item {item} ')] == [
            f'item {item} line {k}' for k in range(3)]
    assert sum(finished) == 4


def test_progress_lines_in_process_are_printed_at_once(capsys):
    from topspark_ros.core.topspark.fanout import say

    def task(item):
        say(f'item {item}')
        assert capsys.readouterr().err == f'item {item}\n'
        return item

    assert InProcess().run(task, [1, 2]) == [1, 2]


def test_an_address_where_no_cluster_answers_is_an_error_at_once(small_model, fashion_dir,
                                                                 tmp_path):
    """ray.init waited for minutes on a wrong port, with Ray's warnings only (a review)."""
    import socket

    with socket.socket() as free:  # a port nothing listens on once it is closed
        free.bind(('127.0.0.1', 0))
        port = free.getsockname()[1]
    with pytest.raises(ConnectionError, match=f'no Ray cluster answers at 127.0.0.1:{port}'):
        check_reachable(f'127.0.0.1:{port}')
    check_reachable('auto')  # not an address to check: Ray's to find
    if socket.has_ipv6:  # an IPv6 head node, in brackets (where loopback has IPv6)
        with socket.socket(socket.AF_INET6) as listening:
            try:
                listening.bind(('::1', 0))
            except OSError:
                listening.close()
            else:
                listening.listen()  # reached (the brackets read), and it is no Ray head node
                with pytest.raises(ConnectionError, match='not as a Ray head node'):
                    check_reachable(f'[::1]:{listening.getsockname()[1]}', timeout_s=1.0)
    # The command, in a process of its own (this module's cluster is initialised here).
    done = subprocess.run(
        [sys.executable, '-m', 'topspark_ros.cli', 'sweep', '-m', str(small_model), '--grid',
         '8', '--n-eval', '10', '--data-dir', str(fashion_dir), '-o', str(tmp_path / 'p.yaml'),
         '--ray', f'127.0.0.1:{port}', '--quiet'], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and 'no Ray cluster answers' in done.stderr, done.stderr


def test_results_on_ray_are_kept_as_each_task_returns(ray_cluster, tmp_path):
    """Kept only when the whole map returned: Ctrl-C in the sensitivity analysis kept none."""
    from topspark_ros.core.topspark.trials import Remembering, TrialStore

    def _slow_square(item, **shared):  # (nested: Ray's workers take it by value)
        import time
        time.sleep(0.2 * item)  # (results come back one after the other)
        return {'value': item * item}
    store = TrialStore(tmp_path / 's.sqlite', {'model': 'a'})
    executor = Remembering(RayExecutor(ray_cluster, threads=1), store, dict, dict)
    seen = []

    def progress(n):  # a Ctrl-C once two results are in
        seen.append(n)
        if sum(seen) >= 2:
            raise KeyboardInterrupt

    try:
        with pytest.raises(KeyboardInterrupt):
            executor.run(_slow_square, [0, 1, 8, 9], progress=progress)
        assert store.count() >= 2
        again = Remembering(RayExecutor(ray_cluster, threads=1), store, dict, dict)
        assert again.run(_slow_square, [0, 1, 2]) == [{'value': 0}, {'value': 1}, {'value': 4}]
        assert again.reused >= 2
    finally:
        executor.close()
        store.close()


def test_connecting_to_ray_keeps_the_commands_sigterm_handler(ray_cluster, tmp_path):
    """
    ``ray.init`` replaced the handler SIGTERM unwinds a command with (a review).

    Under ``--ray`` a command stopped by ``timeout``, systemd or a scheduler printed Ray's
    crash dump and exited 1, not "measurements kept ... the same command resumes", 143. A
    process that connects as the commands do, then is sent SIGTERM.
    """
    script = textwrap.dedent(f"""
        import os, signal, sys
        from topspark_ros.core.topspark.fanout import RayExecutor

        def unwind(signum, frame):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, unwind)
        executor = RayExecutor({ray_cluster!r}, threads=1)
        assert signal.getsignal(signal.SIGTERM) is unwind, signal.getsignal(signal.SIGTERM)
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.pause()
        except KeyboardInterrupt:
            print('unwound', flush=True)
        executor.close()
    """)
    run = subprocess.run([sys.executable, '-c', script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env=dict(os.environ, PYTHONSAFEPATH='1'))
    assert run.returncode == 0 and run.stdout.strip() == 'unwound', run.stderr[-3000:]
    assert 'SIGTERM received' not in run.stderr


def test_a_failed_ray_task_raises_its_own_error_and_a_crash_is_one_line(ray_cluster):
    """
    Ray's wrapper (the worker's traceback, colour codes) reached the user as a traceback.

    So did ``WorkerCrashedError``, workers killed more often than Ray retries (a review).
    """
    def refuse(item, **shared):  # (nested: Ray's workers take it by value)
        raise ValueError(f'no data set at /nowhere/{item}')

    import ray.exceptions
    executor = RayExecutor(ray_cluster, threads=1)
    try:
        with pytest.raises(ValueError, match=r'^no data set at /nowhere/3$'):
            executor.run(refuse, [3])
        real = executor._ray
        # A crash as Ray reports it after its retries (killing workers 4 times took 18 s).
        crashed = type('Ray', (), {'exceptions': ray.exceptions, 'get': staticmethod(
            lambda ref: (_ for _ in ()).throw(ray.exceptions.WorkerCrashedError()))})
        executor._ray = crashed
        try:
            with pytest.raises(RuntimeError,
                               match='^a Ray task failed: WorkerCrashedError: The worker died'):
                executor._get(None)
        finally:
            executor._ray = real
    finally:
        executor.close()


def test_sigterm_a_library_made_ctrl_c_of_still_ends_as_terminated(monkeypatch, capsys):
    """
    Ray's wait turns the KeyboardInterrupt our SIGTERM handler raises into a plain one.

    A sweep or enhance under ``--ray`` stopped by SIGTERM said 'interrupted', exit 130, not
    'terminated', 143 (a review).
    """
    import signal

    cli_main = sys.modules['topspark_ros.cli.main']

    class Waiting:  # a command waiting in a library that catches KeyboardInterrupt
        @staticmethod
        def run(args):
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                signal.pause()
            except KeyboardInterrupt:
                raise KeyboardInterrupt from None  # (what Ray's wait raises)
    monkeypatch.setitem(cli_main.COMMANDS, 'eval', Waiting)
    assert main(['eval', '-m', 'x.json']) == 128 + signal.SIGTERM
    assert capsys.readouterr().err.strip() == 'topspark: terminated'

    # The next command, in the same process, given Ctrl-C before it runs: interrupted.

    def interrupt(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli_main.common, 'check_device', interrupt)
    assert main(['eval', '-m', 'x.json']) == 130

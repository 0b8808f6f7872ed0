"""
A Ray cluster as the README starts it (``ray start --head``), and addresses that are no cluster.

Its own module: the cluster is stopped with ``ray stop``, which would stop the in-process
cluster of ``test_fanout.py`` too.
"""

import http.server
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from topspark_ros.core.checkpoint import save_checkpoint
from topspark_ros.core.data.dataset import split_indices
from topspark_ros.core.data.idx import FASHION_MNIST_CLASSES
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.topspark.fanout import check_reachable
from topspark_ros.core.topspark.profile import load_profile

# One Ray cluster at a time on this machine: pytest-xdist runs these tests in one worker, in
# order (two workers' clusters at once failed to connect to their GCS).
pytestmark = pytest.mark.xdist_group('ray')


def test_a_port_that_answers_but_is_no_ray_head_node_is_refused_at_once() -> None:
    """ray.init waited on an HTTP server's port for minutes (a review of the DSE at scale)."""
    server = http.server.HTTPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        start = time.monotonic()
        with pytest.raises(ConnectionError, match='answers, but not as a Ray head node'):
            check_reachable(f'127.0.0.1:{server.server_address[1]}')
        assert time.monotonic() - start < 10.0
    finally:
        server.shutdown()
        server.server_close()
    silent = socket.socket()  # accepts, never answers
    silent.bind(('127.0.0.1', 0))
    silent.listen()
    try:
        with pytest.raises(ConnectionError, match='not as a Ray head node'):
            check_reachable(f'127.0.0.1:{silent.getsockname()[1]}', timeout_s=1.0)
    finally:
        silent.close()


def _ray_logs(temp: str, lines: int = 40) -> str:
    """Return the ends of the raylet's and the GCS's logs, to say why a cluster failed."""
    out = []
    for log in sorted(Path(temp).glob('session_2*/logs/*')):  # not session_latest, a link
        if log.name.startswith(('raylet', 'gcs_server')) and log.is_file():
            tail = log.read_text(errors='replace').splitlines()[-lines:]
            out.append(f'--- {log.name}\n' + '\n'.join(tail))
    return '\n'.join(out)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(shutil.which('ray') is None, reason='no ray command (the ROS environment)')
def test_a_cluster_that_ray_start_started_is_used_by_its_address(tmp_path, fashion_train,
                                                                 fashion_dir) -> None:
    """
    ``ray start --head`` then ``--ray HOST:PORT``, as the README says: it failed (Ray 2.60).

    ``ray start`` turns token authentication on and writes the token beside the user's home;
    a driver without ``RAY_AUTH_MODE=token`` tried for 20 s and said no cluster answered.
    """
    (train,) = split_indices(len(fashion_train), [200], 11)
    model = DiehlCookNetwork(STDPConfig(n_neurons=10, seed=0))
    model.learn(fashion_train.images[train], timesteps=32)
    model.assign_labels(fashion_train.images[train], fashion_train.labels[train],
                        timesteps=32, seed=1)
    path = tmp_path / 'm.json'
    save_checkpoint(path, model, info={'class_names': list(FASHION_MNIST_CLASSES)})
    port = _free_port()
    temp = tempfile.mkdtemp(prefix='ray', dir='/tmp')  # Ray's socket paths must be short
    env = {k: v for k, v in os.environ.items() if not k.startswith('RAY_')}
    # Every process runs from tmp_path: Ray puts a driver's working directory first on its
    # workers' sys.path, and the repository's root holds the source tree (test_fanout.py).
    subprocess.run(['ray', 'start', '--head', f'--port={port}', '--num-cpus=1',
                    '--include-dashboard=false', f'--temp-dir={temp}',
                    '--node-ip-address=127.0.0.1'], env=env, check=True, timeout=180,
                   cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sweep = [sys.executable, '-m', 'topspark_ros.cli', 'sweep', '-m', str(path), '--grid',
                 '16,8', '--n-eval', '30', '--data-dir', str(fashion_dir), '--plot', '',
                 '--n-train-steps', '0', '--quiet']
        on_ray = subprocess.run(sweep + ['-o', str(tmp_path / 'ray.yaml'), '--ray',
                                         f'127.0.0.1:{port}'], env=env, timeout=300,
                                capture_output=True, text=True, cwd=tmp_path)
        if on_ray.returncode != 0:  # the cluster's logs go with it at ray stop
            pytest.fail(f'{on_ray.stderr[-2000:]}\n{_ray_logs(temp)}')
    finally:
        subprocess.run(['ray', 'stop', '--force'], env=env, timeout=120,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(temp, ignore_errors=True)
    here = subprocess.run(sweep + ['-o', str(tmp_path / 'here.yaml')], env=env, timeout=300,
                          capture_output=True, text=True, cwd=tmp_path)
    assert here.returncode == 0, here.stderr[-2000:]
    accuracies = [[e.accuracy for e in load_profile(tmp_path / name).entries]
                  for name in ('ray.yaml', 'here.yaml')]
    assert accuracies[0] == accuracies[1]

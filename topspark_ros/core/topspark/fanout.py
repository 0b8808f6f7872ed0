"""
Fan-out of independent work items: in this process (the default), or on a Ray cluster.

Sweeps, enhancement trials and the report's configurations are lists of independent items
(a T to measure, a candidate parameter set to score, a (network size, rule, seed) to run). An
*executor* runs one function on every item of such a list and returns the results **in the
order of the list**, whichever way they ran, so a caller that decides from the results in
that order (the enhancement's searches, which ask Optuna for a batch of trials and tell it the
scores in the order asked) decides the same for the same seeds in this process and on a
cluster.

- :class:`InProcess`: one item after the other, here (what every command does without
  ``--ray``).
- :class:`RayExecutor`: every item a Ray task (one CPU each) on the cluster ``--ray`` names:
  ``auto`` (the cluster ``ray start`` runs on this machine, or else a new local one with all
  cores) or an address (``HOST:PORT`` of a head node, or ``ray://HOST:10001``). Objects shared
  by all items (the model, the images) go into Ray's object store once per map. Every node
  needs the same ``topspark_ros`` installed (``pip install .[ray]``). A task whose worker died
  is retried by Ray (up to 3 times), so a killed worker costs that item's time, not the run.

Progress lines an item prints with :func:`say` reach the driver's stderr whichever way it
ran: here, printed; in a Ray task, sent to the driver, which prints them while it waits for
the tasks (Ray's forwarding of a worker's output is not relied on: lines came late, out of
order or not at all).

Ray is optional (the ``ray`` extra of the core install): it is imported only by
:func:`executor_for` with an address, and its absence is one clear error then.

The workers import ``topspark_ros`` as installed, not from the folder the command runs in:
``ray.init`` puts the driver's working directory first on its workers' ``sys.path``, and from
a source checkout (the repository's root) they imported its tree, which may hold other code
than the install the driver runs, and compiled every numba kernel again for its path.
:class:`RayExecutor` connects from an empty folder of its own instead.
"""

import contextlib
import os
import shutil
import socket
import sys
import tempfile
from typing import Any, Callable, List, Mapping, Optional, Sequence

Progress = Callable[[int], None]

_SEND: Optional[Callable[[str], None]] = None
"""Where :func:`say` sends a line in a Ray task (None: print it here)."""


def say(line: str) -> None:
    """
    Print a progress ``line`` on the driver's stderr, from an item run by any executor.

    In this process the line is printed at once; in a Ray task it goes to the driver, which
    prints it the next time it looks (within :data:`POLL_S`), before the task's result is
    counted. A line that cannot be sent (the driver gone) is printed where the task runs.
    """
    send = _SEND
    if send is not None:
        try:
            send(line)
            return
        except Exception:  # noqa: BLE001 (Ray's errors vary by version; the line is kept)
            pass
    print(line, file=sys.stderr, flush=True)


RAY_MISSING = ('--ray needs Ray, which is not installed: pip install "ray>=2.9" (or the extra: '
               'pip install "topspark_ros[ray]"), or leave --ray out to run in this process')
"""The one-line error when Ray is asked for and missing."""
RAY_HELP = ('run the independent measurements on a Ray cluster: auto (the cluster `ray start` '
            'runs on this machine, or else a new local one) or HOST:PORT of its head node; '
            'the results are the same as without it, which runs everything in this process '
            '(Ray is an optional extra: pip install "topspark_ros[ray]")')
"""The help of the ``--ray`` options."""


class InProcess:
    """Run every item here, in order (the default executor)."""

    name = 'in-process'

    def run(self, fn: Callable, items: Sequence, *, progress: Progress = lambda n: None,
            shared: Optional[Mapping[str, Any]] = None,
            on_result: Callable[[int, Any], None] = lambda index, result: None) -> list:
        """
        Return ``[fn(item, **shared) for item in items]``; ``progress(1)`` after each.

        ``on_result(index, result)`` is called with each result as it is made.
        """
        out = []
        for index, item in enumerate(items):
            out.append(fn(item, **dict(shared or {})))
            on_result(index, out[-1])
            progress(1)
        return out

    def close(self) -> None:
        """Do nothing (nothing to release)."""


def import_ray():
    """Return the ``ray`` module; RuntimeError with :data:`RAY_MISSING` when not installed."""
    try:
        import ray
    except ImportError:
        raise RuntimeError(RAY_MISSING) from None
    return ray


def _call(fn: Callable, item, threads: int, shared: Mapping[str, Any], lines=None):
    """
    Run one item on a Ray worker with the driver's torch thread count.

    ``shared`` is deep-copied first: Ray hands out numpy arrays of its object store read-only
    (zero-copy), and a model's simulation state is written while it runs. ``lines``: the
    driver's :class:`_Lines` actor, where :func:`say` sends the item's progress lines.
    """
    import copy

    from topspark_ros.core.threads import set_torch_threads

    global _SEND
    set_torch_threads(threads)
    previous = _SEND
    if lines is not None:
        import ray

        _SEND = lambda line: ray.get(lines.put.remote(line))  # noqa: E731 (kept in order)
    try:
        return fn(item, **copy.deepcopy(dict(shared)))
    finally:
        _SEND = previous


class _Lines:
    """A Ray actor holding the progress lines tasks sent until the driver takes them."""

    def __init__(self) -> None:
        """Start with no line."""
        self._lines: List[str] = []

    def put(self, line: str) -> None:
        """Keep ``line``."""
        self._lines.append(line)

    def take(self) -> List[str]:
        """Return the lines kept, oldest first, and forget them."""
        lines, self._lines = self._lines, []
        return lines


POLL_S = 0.25
"""How often the driver looks for progress lines while Ray tasks run (s)."""


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """
    Refuse a ``HOST:PORT`` (or ``ray://HOST:PORT``) where nothing accepts a connection.

    ``ray.init`` waits for such a cluster for minutes, printing only its own warnings (a
    review waited 6.5 minutes on a wrong port): a ``ConnectionError`` here says it at once.
    An address of another form is left to Ray.
    """
    host, sep, port = address.split('://', 1)[-1].rpartition(':')
    if not sep or not port.isdigit():
        return
    host = host.strip('[]')  # [::1]:6379, an IPv6 head node
    try:
        with socket.create_connection((host or 'localhost', int(port)),
                                      timeout=timeout_s) as connection:
            grpc = (address.startswith('ray://') or _tls()
                    or _answers_http2(connection, timeout_s))
    except OSError as exc:
        raise ConnectionError(f'no Ray cluster answers at {address} ({exc.strerror or exc}); '
                              "start one with 'ray start --head' or use --ray auto") from None
    if not grpc:  # ray.init waited on it for minutes (a review: an HTTP server's port)
        raise ConnectionError(f'{address} answers, but not as a Ray head node (its port '
                              "speaks no gRPC): give the head node's address, as 'ray start "
                              "--head' printed it, or use --ray auto")


def _tls() -> bool:
    """Return whether Ray talks TLS here (``RAY_USE_TLS``): no plain HTTP/2 to probe with."""
    return os.environ.get('RAY_USE_TLS', '0').lower() not in ('', '0', 'false')


HTTP2_PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n' + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""An HTTP/2 client's first bytes, an empty SETTINGS frame included (RFC 9113, 3.4)."""


def _answers_http2(connection: socket.socket, timeout_s: float) -> bool:
    """
    Return whether the server at ``connection`` answers HTTP/2 (gRPC: a Ray head node).

    A Ray head node's GCS is a gRPC server: it answers an HTTP/2 preface with a SETTINGS
    frame (type 4, the frame header's fourth byte); an HTTP/1 server answers text, another
    server nothing or something else.
    """
    connection.settimeout(timeout_s)
    connection.sendall(HTTP2_PREFACE)
    head = b''
    try:
        while len(head) < 9:
            chunk = connection.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    except OSError:  # no answer in time, or reset
        return False
    return len(head) == 9 and head[3] == 4


RAY_TOKEN_HINT = ('a cluster that ray start (Ray 2.59 and later) started wants its token: '
                  'RAY_AUTH_MODE=token, and the token in ~/.ray/auth_token (where ray start '
                  'wrote it on the head node), RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH')
"""What to do when Ray refuses a driver without the cluster's token."""


def use_ray_token() -> None:
    """
    Set ``RAY_AUTH_MODE=token`` (not set yet) when a Ray token is at hand, before Ray loads.

    ``ray start`` turns token authentication on (Ray 2.59 and later) and writes the token to
    ``~/.ray/auth_token``; a driver without the mode set connected for 20 s and failed ('no
    Ray cluster'), on the cluster the README's commands start (a review). Ray reads the mode
    when it is imported: it must be set before.
    """
    if os.environ.get('RAY_AUTH_MODE') or 'ray' in sys.modules:
        return  # (loaded: it read the mode; set now, only the processes it starts would)
    if os.environ.get('RAY_AUTH_TOKEN') or os.environ.get('RAY_AUTH_TOKEN_PATH') \
            or os.path.exists(os.path.join(os.path.expanduser('~'), '.ray', 'auth_token')):
        os.environ['RAY_AUTH_MODE'] = 'token'


class RayExecutor:
    """
    Run every item as a Ray task on the cluster at ``address`` (module doc).

    ``threads``: torch intra-op threads of each task (default: the driver's). Results come back
    in item order; ``progress(1)`` is called as each task finishes (in any order).
    """

    name = 'ray'

    def __init__(self, address: str = 'auto', threads: Optional[int] = None) -> None:
        """Connect to (or, for ``auto`` without a running cluster, start) a Ray cluster."""
        use_ray_token()
        os.environ.setdefault('RAY_COLOR_PREFIX', '0')  # workers' lines in a log: no escapes
        ray = import_ray()
        self._ray = ray
        self._owns = False
        self._folder = None  # the empty folder this driver connected from (module doc)
        if not ray.is_initialized():
            options = {'include_dashboard': False, 'log_to_driver': True,
                       'configure_logging': False}
            if address != 'auto':
                check_reachable(address)
            self._folder = tempfile.mkdtemp(prefix='topspark-ray-')
            try:
                with _working_directory(self._folder), _signal_handlers_kept():
                    self._init(ray, address, options)
            except BaseException:
                shutil.rmtree(self._folder, ignore_errors=True)
                raise
            self._owns = True
        if threads is None:
            import torch
            threads = torch.get_num_threads()
        self.threads = int(threads)
        self.address = address
        self._remote = ray.remote(max_retries=3)(_call)
        self._lines = None  # the _Lines actor, made by the first run that needs it

    @staticmethod
    def _init(ray, address: str, options: dict) -> None:
        """Connect to the cluster at ``address`` (``auto``: or start a local one)."""
        if address == 'auto':
            try:
                ray.init(address='auto', **options)
            except ConnectionError:
                ray.init(**options)
            return
        try:
            ray.init(address=address, **options)
        except ConnectionError as exc:  # (the token hint alone blamed a token for another
            # server answering there; a review)
            raise ConnectionError(
                f'{exc} (something answers at {address}: if it is a Ray head node, '
                f'{RAY_TOKEN_HINT}; else give the address of one)') from None

    def run(self, fn: Callable, items: Sequence, *, progress: Progress = lambda n: None,
            shared: Optional[Mapping[str, Any]] = None,
            on_result: Callable[[int, Any], None] = lambda index, result: None) -> list:
        """
        Return ``[fn(item, **shared) for item in items]``, each item a Ray task.

        ``on_result(index, result)`` is called with each result as its task returns (in the
        order they finish), so that a caller keeps them before the map returns.
        """
        if not items:
            return []
        ray = self._ray
        if self._lines is None:  # (num_cpus=0: it takes no task's place on a full cluster)
            self._lines = ray.remote(num_cpus=0)(_Lines).remote()
        shared_ref = ray.put(dict(shared or {}))
        refs = [self._remote.remote(fn, item, self.threads, shared_ref, self._lines)
                for item in items]
        waiting, index_of = list(refs), {ref: i for i, ref in enumerate(refs)}
        while waiting:
            done, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=POLL_S)
            self._print_lines()  # a task's lines were sent before it returned: first
            for ref in done:
                on_result(index_of[ref], self._get(ref))
            if done:
                progress(len(done))
        return [self._get(ref) for ref in refs]

    def _get(self, ref):
        """
        Return a task's result; raise its own error, or a RuntimeError naming Ray's, in a line.

        Ray raised its own wrapper, the worker's traceback and colour codes in its text (a
        step that failed), or ``WorkerCrashedError`` (workers killed more often than Ray
        retries): each reached the user as a traceback (a review).
        """
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.RayTaskError as exc:
            cause = getattr(exc, 'cause', None)
            if isinstance(cause, Exception):
                raise cause from None
            raise RuntimeError(f'a Ray task failed: {_first_line(exc)}') from None
        except exceptions.RayError as exc:
            raise RuntimeError(f'a Ray task failed: {type(exc).__name__}: {_first_line(exc)} '
                               '(a worker killed, out of memory?)') from None

    def _print_lines(self) -> None:
        """Print on this process's stderr the progress lines tasks have sent since the last."""
        for line in self._ray.get(self._lines.take.remote()):
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        """Disconnect from the cluster (and stop it when this executor started it)."""
        if self._lines is not None and self._ray.is_initialized():
            self._ray.kill(self._lines)
        self._lines = None
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _first_line(exc: BaseException) -> str:
    """Return the first line of ``exc``'s text, terminal colour codes taken out."""
    import re

    text = re.sub(r'\x1b\[[0-9;]*m', '', str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def _working_directory(folder: str):
    """Run the block with ``folder`` as this process's working directory."""
    here = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(here)


@contextlib.contextmanager
def _signal_handlers_kept():
    """
    Put back the SIGTERM, SIGHUP and SIGINT handlers the block (``ray.init``) replaced.

    ``ray.init`` sets its own SIGTERM handler (``sys.exit``) and its core worker a C one that
    prints a crash dump: a command stopped by ``timeout``, systemd or a cluster's scheduler
    under ``--ray`` printed that dump and exited 1, instead of saying what it kept and that
    the same command resumes, exit 143, as without ``--ray`` (a review). Handlers are the
    main thread's: from another thread nothing is changed.
    """
    import signal
    import threading

    from topspark_ros.core.signals import put_back

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    names = ('SIGTERM', 'SIGHUP', 'SIGINT')
    saved = {getattr(signal, n): signal.getsignal(getattr(signal, n))
             for n in names if hasattr(signal, n)}
    try:
        yield
    finally:
        put_back(saved)  # (one set outside Python, None here, cannot be put back)


def executor_for(address: Optional[str], threads: Optional[int] = None):
    """Return :class:`InProcess` for no address (None or ''), else a :class:`RayExecutor`."""
    if not address:
        return InProcess()
    return RayExecutor(address, threads=threads)

"""
Lifecycle robustness of the node processes.

Refused transitions, input subscriptions that exist only while active, fatal errors through
the ROS logger, callbacks that raise, and the race between a transition that destroys entities
and the executor building its wait set. Most tests run the nodes as real processes (the
defects are about the process: it must keep running); the others run real rclpy in-process.
"""

import contextlib
import pathlib
import re
import signal
import subprocess
import sys
import threading
import time

import processes
import pytest

pytestmark = pytest.mark.ros
HERE = pathlib.Path(__file__).resolve().parent
MODEL = HERE.parent / 'models' / 'stdp_fmnist_n400.json'
PROFILE = HERE.parent / 'models' / 'stdp_fmnist_n400.profile.yaml'
CLASSIFIER_ARGS = ['--ros-args', '-p', f'model_path:={MODEL}', '-p', "profile_path:=''",
                   '-p', 'crop:=none']
# Transition ids (lifecycle_msgs/Transition): 0 create, 1 configure, 2 cleanup, 3 activate,
# 4 deactivate, 5/6/7 shutdown from unconfigured/inactive/active, 8 destroy; 99: none at all.
NOT_ALLOWED = {
    'unconfigured': ([0, 2, 3, 4, 6, 7, 8, 99],
                     ['activate', 'deactivate', 'cleanup', 'create', 'destroy', 'no_such']),
    'inactive': ([0, 1, 4, 5, 7, 8, 99], ['configure', 'deactivate', 'create']),
    'active': ([0, 1, 2, 3, 5, 6, 8, 99], ['configure', 'activate', 'cleanup']),
    'finalized': ([0, 1, 2, 3, 4, 5, 6, 7, 8, 99],
                  ['configure', 'activate', 'deactivate', 'cleanup', 'shutdown']),
}
NEXT = {'unconfigured': 1, 'inactive': 3, 'active': 7}  # configure, activate, shutdown


@contextlib.contextmanager
def running(*argv: str, env=None):
    """Run ``python argv...`` (output collected); SIGTERM it afterwards; it must exit with 0."""
    proc = subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    failed = False
    try:
        yield proc
    except BaseException:
        failed = True
        raise
    finally:
        proc.output = processes.stop(proc, timeout_s=30.0)
        if failed:
            print(proc.output)  # what the process said, in the report of the failure
    assert proc.returncode == 0, f'{argv} exited with {proc.returncode}:\n{proc.output}'


@pytest.fixture
def probe():
    """Yield ``ask(proc, node, service_type, name, request)``: a service call from this process."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    context = rclpy.Context()
    rclpy.init(context=context)
    node = Node('lifecycle_probe', context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    clients = {}

    def ask(proc, service_type, name: str, request, timeout_s: float = 30.0):
        """Return the answer of ``name``; fail at once if ``proc`` died meanwhile."""
        client = clients.get(name)
        if client is None:
            client = clients[name] = node.create_client(service_type, name)
            end = time.monotonic() + timeout_s
            while not client.service_is_ready():
                assert proc.poll() is None, 'the process died (its output is below)'
                assert time.monotonic() < end, f'{name} never appeared'
                executor.spin_once(timeout_sec=0.05)
            # service_is_ready sees the request route only; give the response route (the
            # server's writer to this client's reader) a moment to match as well.
            settle = time.monotonic() + 0.5
            while time.monotonic() < settle:
                executor.spin_once(timeout_sec=0.05)
        # A state query is idempotent: one lost on a loaded machine is asked again.
        tries = 3 if service_type.__name__ == 'GetState' else 1
        for attempt in range(tries):
            future = client.call_async(request)
            end = time.monotonic() + timeout_s / tries
            while not future.done() and time.monotonic() < end:
                assert proc.poll() is None, \
                    f'{name} {request}: the process died (its output is below)'
                executor.spin_once(timeout_sec=0.05)
            if future.done():
                return future.result()
            client.remove_pending_request(future)
        raise AssertionError(f'no answer from {name} to {request}')
    ask.node, ask.executor = node, executor
    yield ask
    node.destroy_node()
    rclpy.shutdown(context=context)


def _change(label_or_id):
    from lifecycle_msgs.srv import ChangeState
    request = ChangeState.Request()
    if isinstance(label_or_id, str):
        request.transition.label = label_or_id
    else:
        request.transition.id = label_or_id
    return request


def _state(ask, proc, node_name: str) -> str:
    from lifecycle_msgs.srv import GetState
    return ask(proc, GetState, f'/{node_name}/get_state', GetState.Request()).current_state.label


def _refuse_everything_not_allowed(ask, proc, node_name: str, state: str) -> None:
    from lifecycle_msgs.srv import ChangeState
    ids, labels = NOT_ALLOWED[state]
    for transition in ids + labels:
        answer = ask(proc, ChangeState, f'/{node_name}/change_state', _change(transition))
        assert not answer.success, f'{transition!r} accepted in state {state}'
        assert _state(ask, proc, node_name) == state, f'{transition!r} changed the state'


@pytest.mark.parametrize('module, args', [
    ('classifier', CLASSIFIER_ARGS),
    ('timestep_controller', ['--ros-args', '-p', f'profile_path:={PROFILE}']),
], ids=['classifier', 'timestep_controller'])
def test_transitions_the_state_does_not_allow_are_refused_and_the_process_lives(
        probe, module, args) -> None:
    """In each state every other transition (by id and by label) is refused; then valid ones."""
    from lifecycle_msgs.srv import ChangeState
    with running('-m', f'topspark_ros.nodes.{module}', *args) as proc:
        state = _state(probe, proc, module)
        for expected in ('unconfigured', 'inactive', 'active', 'finalized'):
            assert state == expected
            _refuse_everything_not_allowed(probe, proc, module, state)
            if state in NEXT:
                answer = probe(proc, ChangeState, f'/{module}/change_state',
                               _change(NEXT[state]))
                assert answer.success, f'transition {NEXT[state]} from {state} failed'
            state = _state(probe, proc, module)
        assert proc.poll() is None
    assert re.search(rf'\[WARN\] \[[\d.]+\] \[{module}\]: transition refused: id 3 is not a '
                     r"transition of state 'unconfigured' \(allowed: configure \(1\), "
                     r'shutdown \(5\)\)', proc.output), proc.output


def test_a_refused_transition_in_bringup_ends_no_node(probe) -> None:
    """`topspark bringup`: activate-by-id sent to the active controller; all three nodes live."""
    from lifecycle_msgs.srv import ChangeState
    with running('-m', 'topspark_ros', 'bringup') as proc:
        for name in ('classifier', 'timestep_controller'):
            end = time.monotonic() + 60.0
            while _state(probe, proc, name) != 'active':
                assert time.monotonic() < end, f'{name} never became active'
                time.sleep(0.2)
        for transition in (3, 1, 'configure', 99):
            answer = probe(proc, ChangeState, '/timestep_controller/change_state',
                           _change(transition))
            assert not answer.success
        assert not probe(proc, ChangeState, '/classifier/change_state', _change(3)).success
        assert _state(probe, proc, 'timestep_controller') == 'active'
        assert _state(probe, proc, 'classifier') == 'active'
        assert 'energy_monitor' in probe.node.get_node_names()
        assert proc.poll() is None


def test_deactivate_destroys_the_frame_subscription_and_activate_recreates_it(ros) -> None:
    """The classifier subscribes 'image' only while active."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    context, executor, spin_until = ros
    node = ClassifierNode(context=context, parameter_overrides=[
        Parameter('model_path', value=str(MODEL)), Parameter('profile_path', value=''),
        Parameter('crop', value='none')])
    executor.add_node(node)
    watcher = Node('watcher', context=context)
    executor.add_node(watcher)

    def subscribed() -> bool:
        return any(info.node_name == 'classifier'
                   for info in watcher.get_subscriptions_info_by_topic('/image'))

    def settled(expected: bool) -> bool:  # the graph takes a moment to follow
        return spin_until(lambda: subscribed() == expected, timeout_s=5.0) \
            and not spin_until(lambda: subscribed() != expected, timeout_s=0.3)

    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert settled(False), 'a configured (inactive) classifier subscribes image'
    for _ in range(2):
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert settled(True), 'an active classifier does not subscribe image'
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        assert settled(False), 'an inactive classifier still subscribes image'
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert settled(False)


def test_a_destroyed_lifecycle_node_leaves_the_graph_at_once(ros) -> None:
    """
    ``destroy_node()`` of a lifecycle node takes its services and the node out of the graph.

    rclpy's left the state machine, whose services hold the node: ``~/get_state`` stayed in
    the graph, and the process's DDS participant alive, until the node object was
    garbage-collected. A test run hung in Fast DDS when such a participant went later, while
    another participant of the process announced its endpoints (test/support/ros_graph.py).
    """
    from rclpy.node import Node

    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    context, executor, spin_until = ros
    watcher = Node('watcher', context=context)
    executor.add_node(watcher)
    node = TimestepControllerNode(context=context)

    def graph() -> tuple:
        return ('timestep_controller' in watcher.get_node_names(),
                '/timestep_controller/get_state' in dict(watcher.get_service_names_and_types()))

    try:
        assert spin_until(lambda: graph() == (True, True), 5.0)
    finally:
        node.destroy_node()  # (the test keeps the object: not garbage)
    assert spin_until(lambda: graph() == (False, False), 5.0), graph()


def test_a_transition_that_outlives_destroy_node_gets_an_error_not_a_crash(ros) -> None:
    """
    A transition still running when its node is destroyed fails at its next step.

    The runner destroys the nodes after waiting 5 s at most for the callbacks in progress; a
    configure through ``~/change_state`` that took longer then went on with a state machine
    ``destroy_node`` had freed (a review of the change above): its next step failed with
    rcl's error, and reading the state (``/diagnostics``, ``~/get_state``) crashed the
    process (segmentation fault). Both now raise ``InvalidHandle``.
    """
    from lifecycle_msgs.msg import State
    from rclpy.exceptions import InvalidHandle
    from rclpy.lifecycle import TransitionCallbackReturn

    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    context, _, _ = ros
    node = TimestepControllerNode(context=context)
    entered, release, outcome = threading.Event(), threading.Event(), []

    def slow_configure(state):
        entered.set()
        release.wait(10.0)
        return TransitionCallbackReturn.SUCCESS
    node._callbacks[State.TRANSITION_STATE_CONFIGURING] = slow_configure  # (rclpy's table)

    def configure() -> None:
        try:
            outcome.append(node.trigger_configure())
        except BaseException as exc:  # noqa: B902 - what the transition's thread gets
            outcome.append(exc)
    thread = threading.Thread(target=configure)
    thread.start()
    try:
        assert entered.wait(10.0), 'configure did not start'
    finally:
        node.destroy_node()
        release.set()
        thread.join(10.0)
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidHandle), outcome
    with pytest.raises(InvalidHandle):
        node._state_machine.current_state


def _ros_log(output: str, level: str, logger: str, text: str) -> bool:
    """Return whether ``output`` has a line of rcutils' console format with ``text``."""
    pattern = rf'^\[{level}\] \[\d+\.\d+\] \[{re.escape(logger)}\]: .*{re.escape(text)}'
    return re.search(pattern, output, re.MULTILINE) is not None


def test_fatal_errors_go_through_the_ros_logger(tmp_path) -> None:
    """A failed autostart and a node that cannot be created: FATAL in the console and log file."""
    import os
    env = dict(os.environ, ROS_LOG_DIR=str(tmp_path))
    failed = subprocess.run(
        [sys.executable, '-m', 'topspark_ros.nodes.classifier', '--autostart', '--ros-args',
         '-p', f'model_path:={tmp_path / "gone.json"}'],
        capture_output=True, text=True, timeout=120, env=env)
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert _ros_log(output, 'FATAL', 'classifier', 'autostart: configure failed'), output
    assert _ros_log(output, 'ERROR', 'classifier', 'gone.json'), output
    assert not re.search(r'^error:', output, re.MULTILINE), output
    broken = subprocess.run(
        [sys.executable, '-m', 'topspark_ros.nodes.classifier', '--ros-args',
         '-p', 'default_timesteps:=0'], capture_output=True, text=True, timeout=120, env=env)
    output = broken.stdout + broken.stderr
    assert broken.returncode == 1, output
    assert _ros_log(output, 'FATAL', 'topspark_ros', 'cannot start:'), output
    assert 'default_timesteps' in output and 'Traceback' not in output, output
    logs = ''.join(p.read_text() for p in tmp_path.rglob('*.log'))
    assert 'autostart: configure failed' in logs and 'cannot start:' in logs, logs


def test_a_callback_that_raises_does_not_end_the_process(probe) -> None:
    """A service callback raising: logged with its node's name and traceback; spinning goes on."""
    from std_srvs.srv import Trigger
    script = str(HERE / 'support' / 'raising_node.py')
    with running(script) as proc:
        assert probe(proc, Trigger, '/raiser/ping', Trigger.Request()).success
        client = probe.node.create_client(Trigger, '/raiser/raise')
        assert client.wait_for_service(timeout_sec=20.0)
        for _ in range(3):
            client.call_async(Trigger.Request())  # never answered: the callback raises
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            probe.executor.spin_once(timeout_sec=0.05)
        assert probe(proc, Trigger, '/raiser/ping', Trigger.Request()).success
        assert proc.poll() is None
    assert _ros_log(proc.output, 'ERROR', 'raiser', 'a callback raised ZeroDivisionError: '
                    'integer division or modulo by zero'), proc.output
    assert 'in _on_raise' in proc.output  # the traceback
    assert proc.output.count('a callback raised') == 1, 'repeats are not throttled'


def _wait_set_trap(callback_group):
    """
    Return a waitable whose ``action`` runs once while the executor builds its wait set.

    The action (set later) runs in the executor's thread after it entered every waitable and
    before it adds them: a stand-in for the timing of a transition in a worker thread, which
    lands there about once in a hundred cycles.
    """
    from rclpy.waitable import NumberOfEntities, Waitable

    class Trap(Waitable):
        action = None

        def get_num_entities(self):
            return NumberOfEntities()

        def add_to_wait_set(self, wait_set):
            action, self.action = self.action, None
            if action is not None:
                action()

        def is_ready(self, wait_set):
            return False

        def take_data(self):
            return None

        async def execute(self, taken_data):
            return None
    return Trap(callback_group)


def test_stopping_the_executor_lets_the_callbacks_in_its_pool_finish_first(capfd) -> None:
    """
    Four slow timer callbacks, two running in the executor's pool and two queued, as it stops.

    rclpy's ``Executor.shutdown`` returned at once: with their node destroyed right after, the
    running callbacks failed half-way on their destroyed publisher, the queued ones did not
    run at all, and rclpy printed their unretrieved exceptions when the process exited.
    """
    import gc

    import rclpy
    from rclpy.callback_groups import ReentrantCallbackGroup
    from rclpy.node import Node
    from std_msgs.msg import String

    from topspark_ros.nodes.runner import make_executor, stop_executor
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = make_executor('multi', threads=2, context=context)
    node = Node('slow_timers', context=context)
    publisher = node.create_publisher(String, 'slow_timers_out', 10)
    group = ReentrantCallbackGroup()
    started, finished = set(), []

    def slow(k: int) -> None:
        if k in started:
            return
        started.add(k)
        time.sleep(0.3)
        publisher.publish(String(data=f'timer {k}, after a while'))
        finished.append(k)

    for k in range(4):
        node.create_timer(0.01, lambda k=k: slow(k), callback_group=group)
    executor.add_node(node)
    try:
        end = time.monotonic() + 10.0
        while len(started) < 2 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        for _ in range(10):  # the other two timers' callbacks are handed to the pool
            executor.spin_once(timeout_sec=0.01)
        assert len(started) >= 2  # both threads busy (the executor waits for one to begin)
        assert stop_executor(executor, timeout_s=5.0)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    assert sorted(finished) == [0, 1, 2, 3]
    del executor
    gc.collect()
    err = capfd.readouterr().err
    assert 'never retrieved' not in err and 'a callback raised' not in err, err


@pytest.mark.parametrize('kind', ['multi', 'single'])
def test_a_subscription_destroyed_while_the_wait_set_is_built_is_survived(kind) -> None:
    """rclpy#1142: cleanup destroys subscriptions while the executor builds its wait set."""
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.runner import make_executor, stop_executor
    from topspark_ros.nodes.timestep_controller import TimestepControllerNode
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = make_executor(kind, context=context)
    try:
        node = TimestepControllerNode(context=context, parameter_overrides=[
            Parameter('profile_path', value=str(PROFILE))])
        trap = _wait_set_trap(node.default_callback_group)
        node.add_waitable(trap)  # before the subscriptions' event handlers
        executor.add_node(node)
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        results = []
        trap.action = lambda: results.append(node.trigger_cleanup())
        for _ in range(5):
            executor.spin_once(timeout_sec=0.05)
        assert results == [TransitionCallbackReturn.SUCCESS]
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    finally:
        nodes = executor.get_nodes()
        stop_executor(executor)
        for each in nodes:  # leave the DDS graph now: its latched T must not reach later tests
            each._state_machine.destroy_when_not_in_use()
            each.destroy_node()
        rclpy.shutdown(context=context)


def test_many_configure_cleanup_cycles_through_the_services_while_frames_arrive(probe) -> None:
    """40 configure/cleanup and 10 full cycles over DDS while a 200 Hz camera publishes."""
    from lifecycle_msgs.srv import ChangeState
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    import numpy as np

    from topspark_ros.conversions.image import array_to_image
    frame = array_to_image(np.zeros((28, 28), np.uint8), 'mono8')
    images = probe.node.create_publisher(Image, 'image', qos_profile_sensor_data)
    stop = threading.Event()

    def camera() -> None:
        while not stop.is_set():
            images.publish(frame)
            time.sleep(0.005)
    with running('-m', 'topspark_ros.nodes.classifier', *CLASSIFIER_ARGS) as proc:
        thread = threading.Thread(target=camera, daemon=True)
        thread.start()
        try:
            for cycle in [(1, 2)] * 40 + [(1, 3, 4, 2)] * 10:
                for transition in cycle:
                    answer = probe(proc, ChangeState, '/classifier/change_state',
                                   _change(transition))
                    assert answer.success, f'transition {transition} failed in state ' \
                        f"{_state(probe, proc, 'classifier')!r}"
        finally:
            stop.set()
            thread.join()
        assert proc.poll() is None
    assert 'Destroyable' not in proc.output and 'a callback raised' not in proc.output, \
        proc.output


def test_bringup_applies_a_partial_params_file_over_the_shipped_config(probe, tmp_path) -> None:
    """A params file with one changed value leaves the nodes configured and applies the value."""
    from rcl_interfaces.srv import GetParameters
    partial = tmp_path / 'mine.yaml'
    partial.write_text('timestep_controller:\n  ros__parameters:\n    mode: energy_saver\n')
    with running('-m', 'topspark_ros', 'bringup', '--params-file', str(partial)) as proc:
        for name in ('classifier', 'timestep_controller'):
            end = time.monotonic() + 60.0
            while _state(probe, proc, name) != 'active':
                assert time.monotonic() < end, f'{name} never became active:\n{proc.output}'
                time.sleep(0.2)
        answer = probe(proc, GetParameters, '/timestep_controller/get_parameters',
                       GetParameters.Request(names=['mode', 'profile_path']))
        mode, profile = (v.string_value for v in answer.values)
        assert mode == 'energy_saver' and profile.endswith('.profile.yaml')


@contextlib.contextmanager
def _script(code: str):
    """
    Run ``code`` with Python (its output piped, as text); kill it if it still runs after.

    SIGHUP at its default in it: a suite run under nohup passes it on ignored, and a node
    keeps an ignored SIGHUP so.
    """
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _run_script(code: str, until: str) -> str:
    """Run ``code`` with Python; return its output once it printed ``until`` and exited."""
    with _script(code) as proc:
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError(f'still running after 60 s:\n{proc.communicate()[0]}')
    assert until in out and proc.returncode == 0, out
    return out


def test_a_stop_signal_during_a_finalizer_still_stops_the_process() -> None:
    """
    SIGTERM during a ``__del__`` stops the process once the finalizer returns.

    Raised where the main thread was, the KeyboardInterrupt was lost inside a finalizer
    (Python prints it as ignored and goes on): a classifier process (rclpy's logger has a
    ``__del__``) ran on after SIGTERM until it was killed. Here the main thread spends nearly
    all its time in a finalizer when the signal comes; the finalizer is not cut short and the
    runner's loop stops after it.
    """
    code = '\n'.join([
        'import time',
        'import rclpy',
        'from rclpy.executors import SingleThreadedExecutor',
        'from topspark_ros.nodes import runner',
        'runner.init(["slow_finalizer"])',
        'node = rclpy.create_node("slow_finalizer")',
        'executor = SingleThreadedExecutor()',
        'executor.add_node(node)',
        'class Slow:',
        '    def __del__(self):',
        '        print("finalizing", flush=True)',
        '        time.sleep(1.0)',
        'node.create_timer(0.01, lambda: Slow() and None)',
        'try:',
        '    runner.spin(executor, [node])',
        'except KeyboardInterrupt:',
        '    pass',
        'print("stopped", flush=True)',
    ])
    with _script(code) as proc:
        assert proc.stdout.readline().strip() == 'finalizing'
        time.sleep(0.3)  # inside the finalizer's sleep
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert 'Exception ignored' not in out and 'KeyboardInterrupt' not in out, out
    assert out.rstrip().endswith('stopped') and proc.returncode == 0


@pytest.mark.parametrize('kind', ['single', 'multi', 'events'])
def test_a_stop_signal_lets_the_callback_in_progress_finish(kind) -> None:
    """
    A callback that is running when SIGINT comes is not cut in two; the process then stops.

    Raised where the main thread was, the KeyboardInterrupt broke off a callback of the
    single-threaded executors half-way, and in the multi-threaded one rclpy's hand-over of a
    callback to the pool (a thread started but not registered: the interpreter waited for it
    at exit, for ever; CI).
    """
    code = '\n'.join([
        'import os, signal',
        'import rclpy',
        'from topspark_ros.nodes import runner',
        'runner.init(["stopping"])',
        'node = rclpy.create_node("stopping")',
        f'executor = runner.make_executor({kind!r})',
        'executor.add_node(node)',
        'def tick():',
        '    os.kill(os.getpid(), signal.SIGINT)',
        '    print("callback finished", flush=True)',
        'node.create_timer(0.05, tick)',
        'try:',
        '    runner.spin(executor, [node])',
        'except KeyboardInterrupt:',
        '    print("stopped", flush=True)',
        'runner.stop_executor(executor)',
        'node.destroy_node()',
        'rclpy.try_shutdown()',
    ])
    out = _run_script(code, 'stopped')
    assert 'callback finished' in out, out
    if kind != 'multi':  # (in the main thread: spin returns after it; in the pool, alongside)
        assert out.index('callback finished') < out.index('stopped'), out


def test_launchs_sigterm_after_its_sigint_lets_the_shutdown_finish() -> None:
    """
    ``ros2 launch`` sends SIGTERM 5 s after its SIGINT: a save still under way then finishes.

    The SIGTERM ended the process at once (exit 143), what was learnt on line lost with it (a
    review). A person's second Ctrl-C still ends it at once (test_node_args).
    """
    code = '\n'.join([
        'import time',
        'from rclpy.lifecycle import TransitionCallbackReturn',
        'from topspark_ros.nodes import runner',
        'from topspark_ros.nodes.lifecycle import LifecycleNode',
        'class Node(LifecycleNode):',
        '    def on_activate(self, state):',
        '        print("active", flush=True)',
        '        return TransitionCallbackReturn.SUCCESS',
        '    def on_shutdown(self, state):',
        '        print("saving", flush=True)',
        '        time.sleep(runner.REPEAT_IGNORED_S + 1.0)',
        '        print("saved", flush=True)',
        '        return TransitionCallbackReturn.SUCCESS',
        'status = runner.run_nodes([lambda _: Node("learning")], ["stopping"], autostart=True)',
        'print("exit", status, flush=True)',
    ])
    with _script(code) as proc:
        assert proc.stdout.readline().strip() == 'active'
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == 'saving'
        time.sleep(2.5)  # past REPEAT_IGNORED_S, the save under way
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert 'saved' in out and 'exit 0' in out and proc.returncode == 0, out
    assert 'SIGTERM while stopping: ignored' in out, out


@pytest.mark.parametrize('during', ['configure', 'activate'])
def test_a_stop_signal_during_bring_up_still_runs_the_shutdown_transition(during) -> None:
    """
    SIGINT while a node comes up (a launch stopped at once): its transition ends, then shutdown.

    Raised inside the activate transition, the KeyboardInterrupt left the lifecycle state
    machine in ``activating``: the shutdown transition, which saves learnt weights and breaks
    nav2's bond, could not run (the bond tests' controller stopped as it came up). A node
    stopped while it configures is not activated, nor is the next node brought up.
    """
    code = '\n'.join([
        'import os, signal',
        'from rclpy.lifecycle import TransitionCallbackReturn',
        'from topspark_ros.nodes import runner',
        'from topspark_ros.nodes.lifecycle import LifecycleNode',
        'class Node(LifecycleNode):',
        f'    def on_{during}(self, state):',
        '        if self.get_name() == "first":',
        '            os.kill(os.getpid(), signal.SIGINT)',
        f'        print(self.get_name(), "{during}d", flush=True)',
        '        return TransitionCallbackReturn.SUCCESS',
        '    def on_shutdown(self, state):',
        '        print(self.get_name(), "shut down from", state.label, flush=True)',
        '        return TransitionCallbackReturn.SUCCESS',
        'status = runner.run_nodes([lambda _: Node("first"), lambda _: Node("second")],',
        '                          ["stopping"], autostart=True)',
        'print("exit", status, flush=True)',
    ])
    out = _run_script(code, 'exit 0')
    state = {'configure': 'inactive', 'activate': 'active'}[during]
    assert f'first {during}d' in out and f'first shut down from {state}' in out, out
    assert 'second' not in out.replace('second shut down from unconfigured', ''), out


def test_a_stop_signal_that_waits_for_a_long_step_says_so_once() -> None:
    """
    Ctrl-C during a long start-up step printed nothing until the step ended (stop 38's note).

    Noted, a stop waits for the step under way; after a second it says so, once. A stop taken
    at once (an idle node) says nothing of it.
    """
    code = '\n'.join([
        'import os, signal, time',
        'from rclpy.lifecycle import TransitionCallbackReturn',
        'from topspark_ros.nodes import runner',
        'from topspark_ros.nodes.lifecycle import LifecycleNode',
        'class Node(LifecycleNode):',
        '    def on_configure(self, state):',
        '        os.kill(os.getpid(), signal.SIGINT)',
        '        time.sleep(2.5)',
        '        print("configured", flush=True)',
        '        return TransitionCallbackReturn.SUCCESS',
        'status = runner.run_nodes([lambda _: Node("slow")], ["stopping"], autostart=True)',
        'print("exit", status, flush=True)',
    ])
    out = _run_script(code, 'exit 0')
    note = 'stopping: the step under way ends first'
    assert out.count(note) == 1 and out.index(note) < out.index('configured'), out
    quick = code.replace('time.sleep(2.5)', 'pass')
    out = _run_script(quick, 'exit 0')
    assert note not in out, out


def _main_thread_wakes(pid: int) -> int:
    """Return how often the main thread of ``pid`` has gone to sleep and woken (Linux)."""
    with open(f'/proc/{pid}/task/{pid}/status') as status:
        for line in status:
            if line.startswith('voluntary_ctxt_switches'):
                return int(line.split()[1])
    raise AssertionError('no voluntary_ctxt_switches')


@pytest.mark.parametrize('kind', ['single', 'multi', 'events'])
def test_an_idle_node_does_not_wake_to_look_for_signals_and_still_stops_on_them(
        probe, kind) -> None:
    """
    An idle node process sleeps until something happens, and SIGTERM or SIGINT still stop it.

    Its main thread woke 4 times a second only to let Python run a signal handler: about 80 %
    of an idle node's CPU, whatever its periods (a review of the nodes' footprint); on the
    events executor, which cannot wait on a guard condition, it still did.
    """
    with running('-m', 'topspark_ros.nodes.classifier', '--executor', kind, *CLASSIFIER_ARGS,
                 '-p', 'diagnostics_period_s:=3600.0') as proc:
        end = time.monotonic() + 60.0
        while _state(probe, proc, 'classifier') != 'unconfigured':
            assert time.monotonic() < end, proc.output
            time.sleep(0.2)
        time.sleep(1.0)  # the service calls' work done
        before = _main_thread_wakes(proc.pid)
        time.sleep(2.0)  # (it woke 8 times in 2 s)
        woke = _main_thread_wakes(proc.pid) - before
        assert woke <= 2, f'the main thread woke {woke} times in 2 s of idling'
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM if kind == 'single' else signal.SIGINT)
        proc.wait(timeout=20)
        assert time.monotonic() - start < 5.0


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=['SIGINT', 'SIGTERM', 'SIGHUP'])
def test_a_stop_signal_ends_spin_on_the_events_executor_at_once(signum) -> None:
    """
    SIGINT, SIGTERM and SIGHUP end ``runner.spin`` on the events executor within milliseconds.

    A hang-up (a terminal closed, an ssh session dropped) killed the process: what it had
    learnt on line since its last save was lost, its bond not broken (a review).

    Nothing wakes an idle node there but the signal: it polled 4 times a second for it, and
    its wait is :data:`~topspark_ros.nodes.runner.IDLE_WAKE_S` (30 s) without the wake-up.
    """
    code = '\n'.join([
        'import rclpy',
        'from topspark_ros.nodes import runner',
        'runner.init(["idle"])',
        'node = rclpy.create_node("idle")',
        'executor = runner.make_executor("events")',
        'executor.add_node(node)',
        'print("spinning", flush=True)',
        'try:',
        '    runner.spin(executor, [node])',
        'except KeyboardInterrupt:',
        '    print("stopped", flush=True)',
        'runner.stop_executor(executor)',
        'node.destroy_node()',
        'rclpy.try_shutdown()',
    ])
    with _script(code) as proc:
        assert proc.stdout.readline().strip() == 'spinning'
        time.sleep(0.5)  # in its wait
        before = _main_thread_wakes(proc.pid)
        time.sleep(2.0)
        woke = _main_thread_wakes(proc.pid) - before
        start = time.monotonic()
        proc.send_signal(signum)
        line = proc.stdout.readline().strip()
        took = time.monotonic() - start
        out, _ = proc.communicate(timeout=20)
    assert line == 'stopped', out
    assert took < 1.0, f'spin ended {took:.2f} s after the signal'
    assert woke <= 2, f'the main thread woke {woke} times in 2 s of idling'
    assert proc.returncode == 0, out

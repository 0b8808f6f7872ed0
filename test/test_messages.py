"""
The custom messages: documented field by field, and unchanged by a DDS round trip.

The round trip publishes each message type with every field set to a distinctive value, lets a
relay in a separate process (``support/relay.py``) send it back, and compares field by field.
Values are generated from the message's own field list, so a field added later is covered
automatically (or the test says which type it cannot fill yet).
"""

import array
import pathlib
import re
import signal
import subprocess
import time
import warnings

import pytest

MSG_DIR = pathlib.Path(__file__).resolve().parent.parent / 'msg'
MSG_NAMES = ('Classification', 'EnergyEstimate', 'TimestepCommand')


@pytest.mark.parametrize('name', MSG_NAMES)
def test_every_field_is_documented(name: str) -> None:
    """Each field line in a .msg file is directly preceded by a comment line."""
    lines = (MSG_DIR / f'{name}.msg').read_text().splitlines()
    assert lines[0].startswith('#'), 'the file starts with a description of the message'
    fields = 0
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith('#'):
            fields += 1
            assert lines[i - 1].startswith('#'), f'{name}.msg: no comment above {line!r}'
    assert fields >= 5


def _value_for(msg_type_name: str, field: str, index: int):
    """Return a distinctive, exactly representable value of a rosidl field type."""
    from builtin_interfaces.msg import Time
    from std_msgs.msg import Header
    scalars = {
        'boolean': True,
        'int32': -2_000_000_000 - index,
        'uint32': 4_000_000_000 + index,
        'uint64': 2**63 + 12345 + index,
        'float': 0.15625 + index,  # a power-of-two fraction: exact in float32
        'double': 1.0 / 3.0 + index,
        'string': f'{field}-ünïcødé-✓',
    }
    if msg_type_name in scalars:
        return scalars[msg_type_name]
    if msg_type_name == 'sequence<float>':
        return array.array('f', [0.5, -0.25, 1e-3, 3.0e8, float(index)])
    if msg_type_name == 'std_msgs/Header':
        return Header(stamp=Time(sec=1_700_000_000 + index, nanosec=123_456_789),
                      frame_id=f'camera_optical_{index}')
    raise AssertionError(f'no test value for field type {msg_type_name!r} ({field}): '
                         'extend _value_for')


def _filled(msg_class):
    msg = msg_class()
    for index, (field, type_name) in enumerate(msg.get_fields_and_field_types().items()):
        setattr(msg, field, _value_for(type_name, field, index))
    return msg


@pytest.fixture(scope='module')
def relay(python_executable, tmp_path_factory):
    """
    Start the relay in its own process; stop it (SIGTERM) after the module's tests.

    Its stderr goes to a file, not a pipe nobody reads while the tests run: a relay that
    logged more than a pipe holds would block in a write and never exit. If it does not exit
    in 20 s after SIGTERM (seen in a few full runs while it used rclpy's signal handlers; it
    has its own now), it writes its threads' stacks there (SIGUSR1, ``faulthandler``), is
    killed, and the run gets a warning with them: the relay is plain rclpy, a test's helper,
    not the package's code, and the round trips it served have passed by then.
    """
    script = pathlib.Path(__file__).resolve().parent / 'support' / 'relay.py'
    log = tmp_path_factory.mktemp('relay') / 'stderr.log'
    with open(log, 'w') as err:
        proc = subprocess.Popen([python_executable, str(script)], stdout=subprocess.PIPE,
                                stderr=err, text=True)
    line = proc.stdout.readline()
    if line.strip() != 'ready':
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f'relay did not start: {line}{out}{log.read_text()}')
    yield proc
    proc.terminate()
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        proc.kill()
        proc.wait()
        warnings.warn(f'the relay did not exit in 20 s after SIGTERM and was killed; its '
                      f'stderr (stacks):\n{log.read_text()[-6000:]}')
        return
    assert code == 0, log.read_text()


@pytest.fixture(scope='module')
def node():
    """Create an rclpy node in the test process, on its own context."""
    import rclpy
    from rclpy.node import Node
    context = rclpy.Context()
    rclpy.init(context=context)
    test_node = Node('topspark_test_roundtrip', context=context)
    yield test_node
    test_node.destroy_node()
    rclpy.shutdown(context=context)


@pytest.mark.ros
@pytest.mark.parametrize('name', MSG_NAMES)
def test_round_trip_between_processes(name: str, relay, node) -> None:
    """A fully populated message comes back from the relay process identical, field by field."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    import topspark_ros.msg
    msg_class = getattr(topspark_ros.msg, name)
    sent = _filled(msg_class)
    received = []
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    pub = node.create_publisher(msg_class, f'in/{name}', qos)
    sub = node.create_subscription(msg_class, f'out/{name}', received.append, qos)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + 20.0
        # Messages published before discovery completes are lost (volatile durability), so
        # publish until the first one comes back.
        while not received and time.monotonic() < deadline:
            pub.publish(sent)
            executor.spin_once(timeout_sec=0.1)
        assert received, f'no {name} came back from the relay within 20 s'
    finally:
        executor.remove_node(node)
        node.destroy_publisher(pub)
        node.destroy_subscription(sub)
    assert relay.poll() is None, 'the relay process died'

    back = received[0]
    assert type(back) is msg_class
    fields = sent.get_fields_and_field_types()
    assert len(fields) >= 5
    for field in fields:
        want, got = getattr(sent, field), getattr(back, field)
        if isinstance(want, array.array):
            assert got.typecode == want.typecode and list(got) == list(want), field
        else:
            assert got == want, f'{name}.{field}: sent {want!r}, got {got!r}'
    assert back == sent


def test_message_definitions_use_units() -> None:
    """Quantities with units say the unit in the field name (ROS convention)."""
    unit_words = re.compile(r'(latency|energy|power)')
    for name in MSG_NAMES:
        for line in (MSG_DIR / f'{name}.msg').read_text().splitlines():
            if line.startswith('#') or not line.strip():
                continue
            field = line.split()[1]
            if unit_words.search(field) and not field.endswith(('_ms', '_j', '_w', '_preset')):
                pytest.fail(f'{name}.{field}: a latency/energy/power field ends in _ms, _j '
                            'or _w')

"""
The launch file, checked without `launch` installed (it is not installable here).

``launch`` and ``launch_ros`` are collaborators we do not own: a recording stand-in of each
(every class records its constructor arguments) lets the real ``generate_launch_description``
run, and the test checks what it asks a real launch system to do: arguments described,
executables that exist, parameters and remappings passed, lifecycle nodes configured and
activated.
"""

import importlib.util
import pathlib
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAUNCH_FILE = ROOT / 'launch' / 'topspark.launch.py'


class Recorded:
    """Stand-in for any launch class: keeps its arguments."""

    def __init__(self, *args, **kwargs) -> None:
        """Record the call."""
        self.args, self.kwargs = args, kwargs


def _module(name: str, **attrs) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    return module


@pytest.fixture
def description(monkeypatch):
    """Return the launch description built against recording stand-ins."""
    def cls(name):
        return type(name, (Recorded,), {})
    stand_ins = {
        'launch': _module('launch', LaunchDescription=cls('LaunchDescription')),
        'launch.actions': _module('launch.actions', DeclareLaunchArgument=cls('Declare'),
                                  EmitEvent=cls('EmitEvent'),
                                  RegisterEventHandler=cls('RegisterEventHandler')),
        'launch.events': _module('launch.events', matches_action=lambda node: ('match', node)),
        'launch.substitutions': _module('launch.substitutions',
                                        LaunchConfiguration=cls('LaunchConfiguration'),
                                        PathJoinSubstitution=cls('PathJoinSubstitution')),
        'launch_ros': _module('launch_ros'),
        'launch_ros.actions': _module('launch_ros.actions', LifecycleNode=cls('LifecycleNode'),
                                      Node=cls('Node')),
        'launch_ros.event_handlers': _module('launch_ros.event_handlers',
                                             OnStateTransition=cls('OnStateTransition')),
        'launch_ros.events': _module('launch_ros.events'),
        'launch_ros.events.lifecycle': _module('launch_ros.events.lifecycle',
                                               ChangeState=cls('ChangeState')),
        'launch_ros.substitutions': _module('launch_ros.substitutions',
                                            FindPackageShare=cls('FindPackageShare')),
    }
    for name, module in stand_ins.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location('topspark_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def _of(description, kind: str) -> list:
    return [e for e in description.args[0] if type(e).__name__ == kind]


def test_every_argument_is_described(description) -> None:
    """params_file, namespace, image_topic and log_level are declared with descriptions."""
    declared = {a.args[0]: a.kwargs for a in _of(description, 'Declare')}
    assert set(declared) == {'params_file', 'namespace', 'image_topic', 'events_topic',
                             'log_level'}
    for name, kwargs in declared.items():
        assert len(kwargs.get('description', '')) > 20, name
        assert 'default_value' in kwargs, name
    default = declared['params_file']['default_value']
    assert default.args[0][1:] == ['config', 'topspark.yaml']


def test_nodes_run_installed_executables_with_the_params_file(description) -> None:
    """Three nodes, executables present in scripts/, params file passed, image remapped."""
    nodes = _of(description, 'LifecycleNode') + _of(description, 'Node')
    assert sorted(n.kwargs['name'] for n in nodes) == [
        'classifier', 'energy_monitor', 'timestep_controller']
    for node in nodes:
        assert node.kwargs['package'] == 'topspark_ros'
        assert (ROOT / 'scripts' / node.kwargs['executable']).exists()
        assert node.kwargs['executable'] == node.kwargs['name']
        assert len(node.kwargs['parameters']) == 1
        assert node.kwargs['parameters'][0].args == ('params_file',)
    classifier = next(n for n in nodes if n.kwargs['name'] == 'classifier')
    remaps = {name: target.args for name, target in classifier.kwargs['remappings']}
    assert remaps == {'image': ('image_topic',), 'events': ('events_topic',)}


def test_lifecycle_nodes_are_configured_then_activated(description) -> None:
    """Each lifecycle node gets a configure event and an activate-on-inactive handler."""
    from lifecycle_msgs.msg import Transition
    lifecycle = _of(description, 'LifecycleNode')
    assert len(lifecycle) == 2
    emits = _of(description, 'EmitEvent')
    handlers = _of(description, 'RegisterEventHandler')
    for node in lifecycle:
        configure = [e for e in emits if e.kwargs['event'].kwargs['lifecycle_node_matcher']
                     == ('match', node)]
        assert [e.kwargs['event'].kwargs['transition_id'] for e in configure] == [
            Transition.TRANSITION_CONFIGURE]
        (handler,) = [h for h in handlers if h.args[0].kwargs['target_lifecycle_node'] is node]
        on_state = handler.args[0].kwargs
        assert on_state['goal_state'] == 'inactive'
        (activate,) = on_state['entities']
        assert activate.kwargs['event'].kwargs['transition_id'] == \
            Transition.TRANSITION_ACTIVATE

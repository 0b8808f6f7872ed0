"""
The launch file, checked without `launch` installed (it is not installable here).

``launch`` and ``launch_ros`` are collaborators we do not own: a recording stand-in of each
(every class records its constructor arguments) lets the real ``generate_launch_description``
run, and the test checks what it asks a real launch system to do: arguments described,
executables that exist, parameters and remappings passed, lifecycle nodes configured and
activated (each lifecycle process by itself, ``--autostart``). The stand-ins take the names and
keywords of the Jazzy APIs (ros2/launch and ros2/launch_ros, jazzy branch), and
``respawn`` / ``respawn_delay`` of ``launch_ros.actions.Node`` (passed to ``ExecuteProcess``).
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
        'launch.conditions': _module('launch.conditions', IfCondition=cls('IfCondition'),
                                     UnlessCondition=cls('UnlessCondition')),
        'launch.event_handlers': _module('launch.event_handlers',
                                         OnProcessStart=cls('OnProcessStart')),
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


def _is_configuration(value, name: str) -> bool:
    """Return whether ``value`` is ``LaunchConfiguration(name)``."""
    return type(value).__name__ == 'LaunchConfiguration' and value.args == (name,)


def _nodes(description) -> dict:
    return {n.kwargs['name']: n
            for n in _of(description, 'LifecycleNode') + _of(description, 'Node')}


ARGUMENTS = {'params_file', 'namespace', 'image_topic', 'events_topic', 'battery_topic',
             'log_level', 'use_sim_time', 'use_respawn', 'autostart', 'classifier_executor',
             'control_executor'}


def test_every_argument_is_described(description) -> None:
    """Every launch argument is declared with a default and a description."""
    declared = {a.args[0]: a.kwargs for a in _of(description, 'Declare')}
    assert set(declared) == ARGUMENTS
    for name, kwargs in declared.items():
        assert len(kwargs.get('description', '')) > 20, name
        assert 'default_value' in kwargs, name
    default = declared['params_file']['default_value']
    assert default.args[0][1:] == ['config', 'topspark.yaml']
    assert {name: declared[name]['default_value'] for name in (
        'use_sim_time', 'use_respawn', 'autostart', 'battery_topic')} == {
        'use_sim_time': 'false', 'use_respawn': 'false', 'autostart': 'true',
        'battery_topic': 'battery'}


def test_readme_names_every_launch_argument() -> None:
    """The README's robot section names each launch argument."""
    readme = (ROOT / 'README.md').read_text()
    robot = readme[readme.index('## On a robot'):]
    robot = robot[:robot.index('\n## ', 1)]
    assert not [name for name in sorted(ARGUMENTS) if f'`{name}`' not in robot]


def test_nodes_run_installed_executables(description) -> None:
    """Three nodes of this package, executables present in scripts/, logging level passed."""
    nodes = _nodes(description)
    assert sorted(nodes) == ['classifier', 'energy_monitor', 'timestep_controller']
    for node in nodes.values():
        assert node.kwargs['package'] == 'topspark_ros'
        assert (ROOT / 'scripts' / node.kwargs['executable']).exists()
        assert node.kwargs['executable'] == node.kwargs['name']
        assert _is_configuration(node.kwargs['namespace'], 'namespace')
        assert _is_configuration(node.kwargs['arguments'][-1], 'log_level')


def test_params_file_goes_on_top_of_the_shipped_config(description) -> None:
    """Parameters: shipped config/topspark.yaml, then params_file, then use_sim_time."""
    assert (ROOT / 'config' / 'topspark.yaml').exists()
    for node in _nodes(description).values():
        shipped, user, overrides = node.kwargs['parameters']
        assert type(shipped).__name__ == 'PathJoinSubstitution'
        package, *path = shipped.args[0]
        assert package.args == ('topspark_ros',) and path == ['config', 'topspark.yaml']
        assert _is_configuration(user, 'params_file')
        assert list(overrides) == ['use_sim_time']
        assert _is_configuration(overrides['use_sim_time'], 'use_sim_time')


def test_respawn_follows_use_respawn(description) -> None:
    """Every node respawns when use_respawn is true, after a delay."""
    for node in _nodes(description).values():
        assert _is_configuration(node.kwargs['respawn'], 'use_respawn')
        assert isinstance(node.kwargs['respawn_delay'], float)
        assert node.kwargs['respawn_delay'] > 0


def test_topic_remappings(description) -> None:
    """The classifier's image/events and the controller's battery follow the arguments."""
    def remaps(node):
        return {name: target.args for name, target in node.kwargs.get('remappings', [])}
    nodes = _nodes(description)
    assert remaps(nodes['classifier']) == {'image': ('image_topic',),
                                           'events': ('events_topic',)}
    assert remaps(nodes['timestep_controller']) == {'battery': ('battery_topic',)}
    assert remaps(nodes['energy_monitor']) == {}


def test_lifecycle_nodes_bring_themselves_up_with_autostart(description) -> None:
    """
    Each lifecycle process is given ``--autostart <autostart>``; no launch event asks.

    Launch events left a respawned node unconfigured after a SIGKILL (a review: the dead
    process's lifecycle service was still in discovery and took the configure request).
    """
    assert _of(description, 'EmitEvent') == [] == _of(description, 'RegisterEventHandler')
    nodes = _nodes(description)
    for name in ('classifier', 'timestep_controller'):
        _, _, flag, value, *rest = nodes[name].kwargs['arguments']
        assert flag == '--autostart' and _is_configuration(value, 'autostart')
        assert rest[0] == '--ros-args'
    assert '--autostart' not in nodes['energy_monitor'].kwargs['arguments']


def test_each_process_runs_the_executor_its_argument_names(description) -> None:
    """
    The controller and the monitor run on the single-threaded executor by default.

    On the multi-threaded one (the only one before) each took 8 to 15 % of a core at 30
    results a second, more than the classifier (a user review); they could not be changed.
    """
    from topspark_ros.nodes.runner import parse_process_args
    nodes = _nodes(description)
    for name, argument in (('classifier', 'classifier_executor'),
                           ('timestep_controller', 'control_executor'),
                           ('energy_monitor', 'control_executor')):
        flag, value, *_ = nodes[name].kwargs['arguments']
        assert flag == '--executor' and _is_configuration(value, argument)
    declared = {a.args[0]: a.kwargs['default_value'] for a in _of(description, 'Declare')}
    assert (declared['classifier_executor'], declared['control_executor']) == ('multi', 'single')
    assert parse_process_args(['n', '--executor', 'single', '--autostart', 'true', '--ros-args']
                              ).executor == 'single'


def test_the_processes_read_the_autostart_value_the_launch_passes() -> None:
    from topspark_ros.nodes.runner import parse_process_args
    for argv, expected in ((['n'], False), (['n', '--autostart'], True),
                           (['n', '--autostart', 'true'], True),
                           (['n', '--autostart', 'False'], False),
                           (['n', '--autostart', '1'], True), (['n', '--autostart', '0'], False),
                           (['n', '--autostart', 'false', '--ros-args', '--log-level', 'info'],
                            False),
                           (['n', '--autostart', '--ros-args', '-p', 'x:=1'], True)):
        assert parse_process_args(argv).autostart is expected, argv
    with pytest.raises(SystemExit):
        parse_process_args(['n', '--autostart', 'maybe'])

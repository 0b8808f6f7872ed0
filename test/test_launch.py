"""
The launch file, checked without `launch` installed (it is not installable here).

``launch`` and ``launch_ros`` are collaborators we do not own: a recording stand-in of each
(every class records its constructor arguments) lets the real ``generate_launch_description``
run, and the test checks what it asks a real launch system to do: arguments described,
executables that exist, parameters and remappings passed, lifecycle nodes configured and
activated. The stand-ins take the names and keywords of the Jazzy APIs (ros2/launch and
ros2/launch_ros, jazzy branch): ``launch.conditions.IfCondition``,
``launch.event_handlers.OnProcessStart(target_action=, on_start=)``,
``launch_ros.event_handlers.OnStateTransition(target_lifecycle_node=, start_state=,
goal_state=, entities=, handle_once=)`` (``handle_once`` goes to ``launch.EventHandler``), and
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
             'log_level', 'use_sim_time', 'use_respawn', 'autostart'}


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


def _autostart_handler(description, node):
    """Return the OnProcessStart handler registered for ``node`` and its registration."""
    (registration,) = [r for r in _of(description, 'RegisterEventHandler')
                       if type(r.args[0]).__name__ == 'OnProcessStart'
                       and r.args[0].kwargs['target_action'] is node]
    return registration.args[0], registration


def _transition(entity) -> int:
    """Return the transition id an EmitEvent(ChangeState) entity requests."""
    assert type(entity).__name__ == 'EmitEvent'
    return entity.kwargs['event'].kwargs['transition_id']


def test_autostart_gates_configure_on_process_start(description) -> None:
    """Each lifecycle node is configured when its process starts, only with autostart."""
    from lifecycle_msgs.msg import Transition
    lifecycle = _of(description, 'LifecycleNode')
    assert len(lifecycle) == 2
    # Nothing configures or activates a node outside the autostart handlers.
    assert _of(description, 'EmitEvent') == []
    for node in lifecycle:
        handler, registration = _autostart_handler(description, node)
        condition = registration.kwargs['condition']
        assert type(condition).__name__ == 'IfCondition'
        assert _is_configuration(condition.args[0], 'autostart')
        register_activation, configure = handler.kwargs['on_start']
        assert type(register_activation).__name__ == 'RegisterEventHandler'
        assert _transition(configure) == Transition.TRANSITION_CONFIGURE
        assert configure.kwargs['event'].kwargs['lifecycle_node_matcher'] == ('match', node)
    entities = description.args[0]
    last_handler = max(i for i, e in enumerate(entities)
                       if type(e).__name__ == 'RegisterEventHandler')
    first_node = min(i for i, e in enumerate(entities) if type(e).__name__.endswith('Node'))
    assert last_handler < first_node, 'handlers must be registered before processes start'


# The TransitionEvent (start state, goal state) labels a real lifecycle node publishes, in order.
CONFIGURE = [('unconfigured', 'configuring'), ('configuring', 'inactive')]
ACTIVATE = [('inactive', 'activating'), ('activating', 'active')]
DEACTIVATE = [('active', 'deactivating'), ('deactivating', 'inactive')]
CLEANUP = [('inactive', 'cleaningup'), ('cleaningup', 'unconfigured')]


def _matches(on_state_transition, node, start_state: str, goal_state: str) -> bool:
    """Match the way launch_ros's OnStateTransition does (jazzy: None matches anything)."""
    wanted = on_state_transition.kwargs
    return (wanted.get('target_lifecycle_node') in (None, node)
            and wanted.get('transition') is None
            and wanted.get('start_state') in (None, start_state)
            and wanted.get('goal_state') in (None, goal_state))


def test_activation_only_after_the_first_configure(description) -> None:
    """Activate after the first configure only: a later deactivate or re-configure stays."""
    from lifecycle_msgs.msg import Transition
    for node in _of(description, 'LifecycleNode'):
        handler, _ = _autostart_handler(description, node)
        register_activation, _ = handler.kwargs['on_start']
        on_state = register_activation.args[0]
        assert type(on_state).__name__ == 'OnStateTransition'
        assert on_state.kwargs['target_lifecycle_node'] is node
        assert on_state.kwargs['start_state'] == 'configuring'
        assert on_state.kwargs['goal_state'] == 'inactive'
        assert on_state.kwargs.get('handle_once') is True
        (activate,) = on_state.kwargs['entities']
        assert _transition(activate) == Transition.TRANSITION_ACTIVATE
        assert activate.kwargs['event'].kwargs['lifecycle_node_matcher'] == ('match', node)
        # Replay a node's life: configure (then the handler activates), deactivate by hand,
        # activate and deactivate again, cleanup, configure again.
        registered, fired = True, []
        life = CONFIGURE + ACTIVATE + DEACTIVATE + ACTIVATE + DEACTIVATE + CLEANUP + CONFIGURE
        for step, (start, goal) in enumerate(life):
            if registered and _matches(on_state, node, start, goal):
                fired.append(step)
                registered = not on_state.kwargs.get('handle_once', False)
        assert fired == [1], f'activation requested after transitions {fired} of {life}'

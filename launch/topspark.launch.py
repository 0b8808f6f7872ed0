"""
Launch the topspark_ros pipeline: classifier, timestep controller, energy monitor.

    ros2 launch topspark_ros topspark.launch.py image_topic:=/camera/image_raw \
        battery_topic:=/battery_state
    ros2 launch topspark_ros topspark.launch.py events_topic:=/event_camera/events \
        params_file:=my_event_params.yaml   # with classifier.input_mode: events

Parameters of each node, later ones winning: the shipped ``config/topspark.yaml``, then
``params_file`` (so it needs to hold only the values you change), then ``use_sim_time``.

With ``autostart:=true`` (the default) each lifecycle node is configured when its process
starts and activated once that first configure succeeds (the transition from 'configuring' to
'inactive'), through launch events: no external lifecycle manager needed. Later transitions
requested through the nodes' lifecycle services (deactivate, cleanup, configure) are left as
they are. With ``use_respawn:=true`` a node process that dies is started again after
``RESPAWN_DELAY_S`` and, with autostart, configured and activated again.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.conditions import IfCondition
from launch.event_handlers import OnProcessStart
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition

# Wait before a dead node process is started again (use_respawn), as nav2_bringup does.
RESPAWN_DELAY_S = 2.0


def _change_state(node: LifecycleNode, transition_id: int) -> EmitEvent:
    """Return the action that asks lifecycle node ``node`` for one transition."""
    return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                       transition_id=transition_id))


def _autostart(node: LifecycleNode, autostart: LaunchConfiguration) -> RegisterEventHandler:
    """
    Configure ``node`` whenever its process starts; activate it after that first configure.

    The activation handler is registered anew at each process start and handles one event
    only: its first configure success (start state 'configuring', goal state 'inactive'). A
    deactivate (start state 'deactivating') or a later cleanup and configure never re-activate
    the node.
    """
    activate_after_first_configure = RegisterEventHandler(OnStateTransition(
        target_lifecycle_node=node, start_state='configuring', goal_state='inactive',
        entities=[_change_state(node, Transition.TRANSITION_ACTIVATE)], handle_once=True))
    return RegisterEventHandler(
        OnProcessStart(target_action=node, on_start=[
            activate_after_first_configure,
            _change_state(node, Transition.TRANSITION_CONFIGURE)]),
        condition=IfCondition(autostart))


def generate_launch_description() -> LaunchDescription:
    """Return the launch description (arguments, nodes, lifecycle events)."""
    namespace = LaunchConfiguration('namespace')
    params_file = LaunchConfiguration('params_file')
    image_topic = LaunchConfiguration('image_topic')
    events_topic = LaunchConfiguration('events_topic')
    battery_topic = LaunchConfiguration('battery_topic')
    log_level = LaunchConfiguration('log_level')
    use_sim_time = LaunchConfiguration('use_sim_time')
    use_respawn = LaunchConfiguration('use_respawn')
    autostart = LaunchConfiguration('autostart')
    shipped_params = PathJoinSubstitution(
        [FindPackageShare('topspark_ros'), 'config', 'topspark.yaml'])
    arguments = [
        DeclareLaunchArgument(
            'params_file', default_value=shipped_params,
            description='Parameter YAML with one key per node (classifier, '
                        'timestep_controller, energy_monitor), applied on top of the shipped '
                        'config/topspark.yaml: it needs to hold only the values you change.'),
        DeclareLaunchArgument(
            'namespace', default_value='',
            description='Namespace of the three nodes and their relative topics.'),
        DeclareLaunchArgument(
            'image_topic', default_value='image',
            description='Camera topic (sensor_msgs/Image) the classifier subscribes to '
                        '(input_mode frames).'),
        DeclareLaunchArgument(
            'events_topic', default_value='events',
            description='Event-camera topic (event_camera_msgs/EventPacket) the classifier '
                        'subscribes to (input_mode events, set in the params file).'),
        DeclareLaunchArgument(
            'battery_topic', default_value='battery',
            description='Battery topic (sensor_msgs/BatteryState) the timestep controller '
                        "reads: the controller's 'battery' remapped to it."),
        DeclareLaunchArgument(
            'log_level', default_value='info',
            description='Log level of the nodes: debug, info, warn, error or fatal.'),
        DeclareLaunchArgument(
            'use_sim_time', default_value='false',
            description='Use the /clock topic (simulation, bag replay with --clock) as every '
                        "node's time source: true or false."),
        DeclareLaunchArgument(
            'use_respawn', default_value='false',
            description=f'Start a node process again {RESPAWN_DELAY_S:g} s after it dies '
                        '(and, with autostart, configure and activate it again): true or '
                        'false.'),
        DeclareLaunchArgument(
            'autostart', default_value='true',
            description='Configure and activate the lifecycle nodes (classifier, '
                        'timestep_controller) once started; false: they stay unconfigured '
                        'until a lifecycle manager or `ros2 lifecycle set` moves them.'),
    ]
    common = {'package': 'topspark_ros', 'namespace': namespace,
              'parameters': [shipped_params, params_file, {'use_sim_time': use_sim_time}],
              'arguments': ['--ros-args', '--log-level', log_level], 'output': 'screen',
              'respawn': use_respawn, 'respawn_delay': RESPAWN_DELAY_S}
    classifier = LifecycleNode(executable='classifier', name='classifier',
                               remappings=[('image', image_topic), ('events', events_topic)],
                               **common)
    controller = LifecycleNode(executable='timestep_controller', name='timestep_controller',
                               remappings=[('battery', battery_topic)], **common)
    monitor = Node(executable='energy_monitor', name='energy_monitor', **common)
    # Handlers first, so they are registered before any process can start.
    autostart_events = [_autostart(node, autostart) for node in (classifier, controller)]
    return LaunchDescription(arguments + autostart_events + [classifier, controller, monitor])

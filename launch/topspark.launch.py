"""
Launch the topspark_ros pipeline: classifier, timestep controller, energy monitor.

    ros2 launch topspark_ros topspark.launch.py image_topic:=/camera/image_raw \
        battery_topic:=/battery_state
    ros2 launch topspark_ros topspark.launch.py events_topic:=/event_camera/events \
        params_file:=my_event_params.yaml   # with classifier.input_mode: events

Parameters of each node, later ones winning: the shipped ``config/topspark.yaml``, then
``params_file`` (so it needs to hold only the values you change), then ``use_sim_time``.

With ``autostart:=true`` (the default) each lifecycle node configures and activates itself
when its process starts (the executables' ``--autostart true``): no external lifecycle manager
needed. Later transitions requested through the nodes' lifecycle services (deactivate,
cleanup, configure) are left as they are. A configure or activate that fails ends the process
(status 1, the reason logged). With ``use_respawn:=true`` a node process that dies is started
again after ``RESPAWN_DELAY_S`` and, with autostart, brings itself up again. (Launch events
asking for the transitions did not: after a SIGKILL the dead process's lifecycle service was
still in discovery, the configure request went to it, and the respawned node stayed
unconfigured.)
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

# Wait before a dead node process is started again (use_respawn), as nav2_bringup does.
RESPAWN_DELAY_S = 2.0


def generate_launch_description() -> LaunchDescription:
    """Return the launch description (arguments and nodes)."""
    namespace = LaunchConfiguration('namespace')
    params_file = LaunchConfiguration('params_file')
    image_topic = LaunchConfiguration('image_topic')
    events_topic = LaunchConfiguration('events_topic')
    battery_topic = LaunchConfiguration('battery_topic')
    log_level = LaunchConfiguration('log_level')
    use_sim_time = LaunchConfiguration('use_sim_time')
    use_respawn = LaunchConfiguration('use_respawn')
    autostart = LaunchConfiguration('autostart')
    classifier_executor = LaunchConfiguration('classifier_executor')
    control_executor = LaunchConfiguration('control_executor')
    shipped_params = PathJoinSubstitution(
        [FindPackageShare('topspark_ros'), 'config', 'topspark.yaml'])
    arguments = [
        DeclareLaunchArgument(
            'params_file', default_value=shipped_params,
            description='Parameter YAML with one key per node (/**/classifier, '
                        '/**/timestep_controller, /**/energy_monitor: a key without /**/ '
                        'reaches a node only without a namespace), applied on top of the '
                        'shipped config/topspark.yaml: it needs to hold only the values you '
                        'change.'),
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
                        "node's time source: true or false. Applied after params_file: a "
                        'use_sim_time in that file is overridden by this argument.'),
        DeclareLaunchArgument(
            'use_respawn', default_value='false',
            description=f'Start a node process again {RESPAWN_DELAY_S:g} s after it dies '
                        '(and, with autostart, configure and activate it again): true or '
                        'false.'),
        DeclareLaunchArgument(
            'autostart', default_value='true',
            description='Configure and activate the lifecycle nodes (classifier, '
                        'timestep_controller) once started, each by itself (a failure ends '
                        'its process): true or false (they stay unconfigured until a '
                        'lifecycle manager or `ros2 lifecycle set` moves them).'),
        DeclareLaunchArgument(
            'classifier_executor', default_value='multi',
            description="The classifier process's executor: multi, single or events (its "
                        'input is read in threads of its own on every one).'),
        DeclareLaunchArgument(
            'control_executor', default_value='single',
            description="The timestep controller's and the energy monitor's executor: "
                        'single (the default: at 30 results a second the monitor took 4.3 % '
                        'of a core on it, 5.2 % on multi, 1.9 % on events), multi or '
                        'events.'),
    ]
    common = {'package': 'topspark_ros', 'namespace': namespace,
              'parameters': [shipped_params, params_file, {'use_sim_time': use_sim_time}],
              'arguments': ['--ros-args', '--log-level', log_level], 'output': 'screen',
              'respawn': use_respawn, 'respawn_delay': RESPAWN_DELAY_S}
    lifecycle = {**common, 'arguments': ['--autostart', autostart] + common['arguments']}
    classifier = LifecycleNode(executable='classifier', name='classifier',
                               remappings=[('image', image_topic), ('events', events_topic)],
                               **_with_executor(lifecycle, classifier_executor))
    controller = LifecycleNode(executable='timestep_controller', name='timestep_controller',
                               remappings=[('battery', battery_topic)],
                               **_with_executor(lifecycle, control_executor))
    monitor = Node(executable='energy_monitor', name='energy_monitor',
                   **_with_executor(common, control_executor))
    return LaunchDescription(arguments + [classifier, controller, monitor])


def _with_executor(node: dict, executor) -> dict:
    """Return the node's launch options with ``--executor executor`` before its ROS args."""
    return {**node, 'arguments': ['--executor', executor] + node['arguments']}

"""
Launch the topspark_ros pipeline: classifier, timestep controller, energy monitor.

    ros2 launch topspark_ros topspark.launch.py image_topic:=/camera/image_raw
    ros2 launch topspark_ros topspark.launch.py events_topic:=/event_camera/events \
        params_file:=my_event_params.yaml   # with classifier.input_mode: events

The two lifecycle nodes are configured at start-up and activated as soon as they reach
'inactive', through launch events (no external lifecycle manager needed). Parameters come from
one YAML file with one key per node (``config/topspark.yaml`` by default).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from launch_ros.substitutions import FindPackageShare
from lifecycle_msgs.msg import Transition


def generate_launch_description() -> LaunchDescription:
    """Return the launch description (arguments, nodes, lifecycle events)."""
    namespace = LaunchConfiguration('namespace')
    params_file = LaunchConfiguration('params_file')
    image_topic = LaunchConfiguration('image_topic')
    events_topic = LaunchConfiguration('events_topic')
    log_level = LaunchConfiguration('log_level')
    arguments = [
        DeclareLaunchArgument(
            'params_file',
            default_value=PathJoinSubstitution(
                [FindPackageShare('topspark_ros'), 'config', 'topspark.yaml']),
            description='Parameter YAML with one key per node (classifier, '
                        'timestep_controller, energy_monitor).'),
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
            'log_level', default_value='info',
            description='Log level of the nodes: debug, info, warn, error or fatal.'),
    ]
    common = {'package': 'topspark_ros', 'namespace': namespace, 'parameters': [params_file],
              'arguments': ['--ros-args', '--log-level', log_level], 'output': 'screen'}
    classifier = LifecycleNode(executable='classifier', name='classifier',
                               remappings=[('image', image_topic), ('events', events_topic)],
                               **common)
    controller = LifecycleNode(executable='timestep_controller', name='timestep_controller',
                               **common)
    monitor = Node(executable='energy_monitor', name='energy_monitor', **common)

    lifecycle_events = []
    for node in (classifier, controller):
        lifecycle_events += [
            RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=node, goal_state='inactive',
                entities=[EmitEvent(event=ChangeState(
                    lifecycle_node_matcher=matches_action(node),
                    transition_id=Transition.TRANSITION_ACTIVATE))])),
            EmitEvent(event=ChangeState(
                lifecycle_node_matcher=matches_action(node),
                transition_id=Transition.TRANSITION_CONFIGURE)),
        ]
    return LaunchDescription(arguments + [classifier, controller, monitor] + lifecycle_events)

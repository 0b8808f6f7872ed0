"""
Standard messages out: vision_msgs/Classification, the latched LabelInfo and VisionInfo.

The vision_msgs package here is the stand-in of test/interfaces/vision_msgs (built by
dev/build.sh); its types must be the upstream ones (same type hashes), which the first test
checks. The classifier publishes both messages in process and across processes.
"""

import io
import math
import pathlib
import subprocess
import sys
import time

import numpy as np
import processes
import pytest

pytestmark = pytest.mark.ros
ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / 'models' / 'stdp_fmnist_n400.json'
FASHION = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker',
           'Bag', 'Ankle boot')
# RIHS01 type hashes of upstream ros-perception/vision_msgs (branch ros2, 4.1.1, the Jazzy
# release; commit e77fa2d97d69abaaa546592892d2d5d16cec9977): its five .msg files, unchanged,
# generated with this environment's rosidl (which gives std_msgs/msg/String the hash a real
# Jazzy install records in bags, RIHS01_df668c74...). Comments do not enter the hash; field
# names, types, order and nested types do.
UPSTREAM_HASHES = {
    'Classification': 'RIHS01_f74db28d0eaef3afb78f48bf2161cd709a1383a0309d3454383b25be11345143',
    'ObjectHypothesis':
        'RIHS01_51da43cec11c01957a64d1e05a24acd18aae7745ec30b74348ad5f6d634f7f90',
    'LabelInfo': 'RIHS01_3d37df4015cdf660cc851c51897f2acd957e1ca6205ba0a99aebffb9406b0783',
    'VisionClass': 'RIHS01_1e4a11f0fed50b5623cb8ff26ca0e37952a48a9c074d16f804b44e9164c2037a',
    'VisionInfo': 'RIHS01_95d3116a17484ad91c9a2686e1d54890bbfc3ff6c6a2de137738c4950d45d284',
}
STRING_HASH = 'RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18'


def _label_info_qos():
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def _ours(node, topic: str) -> list:
    """
    Return the publishers of ``topic`` that ``node`` holds.

    Its own list, not the DDS graph: another test's classifier process (same node name) may
    still be leaving the graph.
    """
    return [p for p in node.publishers if p.topic_name.rsplit('/', 1)[-1] == topic]


def test_stand_in_types_have_the_upstream_type_hashes(ros) -> None:
    """The hashes the middleware announces for our vision_msgs are upstream's (and String's)."""
    import vision_msgs.msg
    from rclpy.node import Node
    from std_msgs.msg import String
    context, _, _ = ros
    node = Node('hashes', context=context)
    try:
        types = dict(UPSTREAM_HASHES, String=STRING_HASH)
        for name in types:
            msg_type = String if name == 'String' else getattr(vision_msgs.msg, name)
            node.create_publisher(msg_type, f'hash_{name}', 1)
        announced = {name: str(node.get_publishers_info_by_topic(f'hash_{name}')[0]
                               .topic_type_hash) for name in types}
        assert announced == types
    finally:
        node.destroy_node()


def _classifier(context, executor, **overrides):
    from rclpy.parameter import Parameter

    from topspark_ros.nodes.classifier import ClassifierNode
    params = {'model_path': str(MODEL), 'default_timesteps': 16, 'crop': 'none',
              'profile_path': '', **overrides}
    node = ClassifierNode(context=context, parameter_overrides=[
        Parameter(k, value=v) for k, v in params.items()])
    executor.add_node(node)
    return node


def _fashion(index: int) -> np.ndarray:
    from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
    return load_mnist_family(find_dataset_dir(), 'test').images[index]


def test_classifier_publishes_vision_classification_and_latched_label_info(ros) -> None:
    """
    Each result also as vision_msgs/Classification; LabelInfo reaches a late subscriber.

    So does VisionInfo: the model and what the scores are, where the class map is, and a
    version that the next configure raises.
    """
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Classification as VisionClassification, LabelInfo, VisionInfo

    from topspark_ros.conversions.image import array_to_image
    from topspark_ros.msg import Classification
    context, executor, spin_until = ros
    node = _classifier(context, executor, default_timesteps=64)
    probe = Node('probe', context=context)
    executor.add_node(probe)
    images = probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    ours, standard, infos = [], [], []
    probe.create_subscription(Classification, 'classification', ours.append, 10)
    probe.create_subscription(VisionClassification, 'vision_classification', standard.append,
                              10)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    sent = array_to_image(_fashion(0), 'mono8')
    sent.header.frame_id = 'camera_optical_frame'
    sent.header.stamp.sec = 42

    def publish() -> None:  # every frame its own stamp, to pair the two results
        sent.header.stamp.nanosec += 1
        images.publish(sent)

    def pair() -> tuple:  # a result with evidence (not every frame makes output spikes)
        by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in ours}
        for vision in standard:
            key = (vision.header.stamp.sec, vision.header.stamp.nanosec)
            if vision.results and key in by_stamp:
                return by_stamp[key], vision
        return ()

    assert spin_until(lambda: publish() or pair())
    result, vision = pair()
    assert vision.header == result.header
    assert vision.header.frame_id == 'camera_optical_frame' and vision.header.stamp.sec == 42
    by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in ours}
    for other in standard:  # no output spike (class -1): no hypothesis; else some
        key = (other.header.stamp.sec, other.header.stamp.nanosec)
        if key in by_stamp:
            assert bool(other.results) == (by_stamp[key].class_id >= 0)
    scores = [h.score for h in vision.results]
    assert vision.results and all(0.0 < s <= 1.0 for s in scores)
    assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0)
    assert {h.class_id for h in vision.results} <= {str(i) for i in range(len(FASHION))}
    assert FASHION[int(vision.results[0].class_id)] == result.class_name
    assert vision.results[0].score == pytest.approx(result.confidence, rel=1e-6)
    # a subscriber that joins later still gets the class map (transient local, reliable)
    probe.create_subscription(LabelInfo, 'label_info', infos.append, _label_info_qos())
    assert spin_until(lambda: bool(infos), timeout_s=10.0), 'no latched LabelInfo'
    assert [(c.class_id, c.class_name) for c in infos[0].class_map] == list(enumerate(FASHION))
    assert infos[0].threshold == 0.0
    for topic in ('label_info', 'vision_info'):
        info = node.get_publishers_info_by_topic(topic)[0].qos_profile
        assert info.durability.name == 'TRANSIENT_LOCAL' and info.reliability.name == 'RELIABLE'
    about = []
    probe.create_subscription(VisionInfo, 'vision_info', about.append, _label_info_qos())
    assert spin_until(lambda: bool(about), timeout_s=10.0), 'no latched VisionInfo'
    sha = result.model_sha256
    assert len(sha) == 64
    assert about[-1].method == (f'topspark_ros SNN classifier, model {MODEL.name} (sha256 '
                                f'{sha[:12]}); score: share of the evidence: no profile')
    assert about[-1].database_location == '/label_info'
    assert about[-1].database_version == 1
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    for topic in ('label_info', 'vision_classification', 'vision_info'):  # gone at cleanup
        assert not _ours(node, topic), topic
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS  # another class map
    assert spin_until(lambda: about[-1].database_version == 2, timeout_s=10.0)
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS


def test_with_a_calibrated_profile_the_best_score_is_its_probability(ros, tmp_path,
                                                                     monkeypatch) -> None:
    """
    A profile that measured the results by confidence at T: vision_msgs scores are calibrated.

    The best class's score is the accuracy of the results of its confidence at that T (the
    shipped profile's bins); ``Classification.confidence`` stays the share of the evidence.
    With early exit on, by the profile's bins of that rule's results; with another rule than
    the profile measured, the scores are shares again. VisionInfo says which, each time.
    """
    import dataclasses

    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Classification as VisionClassification, VisionInfo

    from topspark_ros.conversions.image import array_to_image
    from topspark_ros.core.topspark.profile import load_profile, save_profile
    from topspark_ros.msg import Classification
    shipped = load_profile(MODEL.with_name('stdp_fmnist_n400.profile.yaml'))
    profile = dataclasses.replace(shipped, model_path=str(MODEL))  # bins at every T
    path = save_profile(profile, tmp_path / 'calibrated.profile.yaml')
    context, executor, spin_until = ros
    node = _classifier(context, executor, default_timesteps=64, profile_path=str(path))
    probe = Node('probe', context=context)
    executor.add_node(probe)
    images = probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    ours, standard, about = [], [], []
    probe.create_subscription(Classification, 'classification', ours.append, 10)
    probe.create_subscription(VisionClassification, 'vision_classification', standard.append,
                              10)
    probe.create_subscription(VisionInfo, 'vision_info', about.append, _label_info_qos())
    logger, said = node.get_logger(), []  # what the node logs at INFO, kept too

    class Logger:
        def __getattr__(self, name):
            return getattr(logger, name)

        def info(self, message, **kwargs):
            said.append(message)
            return logger.info(message, **kwargs)
    monkeypatch.setattr(node, 'get_logger', Logger)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    frames = [array_to_image(_fashion(i), 'mono8') for i in range(6)]
    for k, frame in enumerate(frames):
        frame.header.stamp.sec = k

    def changes() -> list:  # the score's meaning, logged at configure and on every change
        return [m.split(': ', 1)[1] for m in said if m.startswith('vision_msgs scores')]

    def described() -> list:  # the same, as VisionInfo says it
        return [m.method.split('; score: ', 1)[1] for m in about]

    def keyed(messages) -> dict:  # (stamp, how many of that stamp came before): the frames
        # cycle, and by its stamp alone a result was paired with another pass's result of the
        # frame (other spikes, another class: CI)
        seen, out = {}, {}
        for m in messages:
            k = seen[m.header.stamp.sec] = seen.get(m.header.stamp.sec, -1) + 1
            out[(m.header.stamp.sec, k)] = m
        return out

    def paired() -> list:
        by_key, vision = keyed(ours), keyed(standard)
        return [(by_key[key], v) for key, v in vision.items()
                if v.results and key in by_key and by_key[key].class_id >= 0]

    sent = iter(frames * 20)
    assert spin_until(lambda: len(paired()) >= 3 or images.publish(next(sent)))
    entry = profile.entry(64)
    for result, vision in paired():
        assert result.timestep_budget == 64
        share = result.confidence  # (float32 here: either side of a bin's edge)
        assert vision.results[0].score in (pytest.approx(entry.calibrated(share)),
                                           pytest.approx(entry.calibrated(share * (1 - 1e-6))))
        assert vision.results[0].score != pytest.approx(result.confidence)
        assert result.score == pytest.approx(vision.results[0].score)  # ours says it too
        scores = [h.score for h in vision.results]
        assert scores == sorted(scores, reverse=True) and sum(scores) <= 1.0 + 1e-6
    assert node._pipeline.score_kind(64) == 'calibrated (T=64)'
    assert changes() == ['calibrated (T=64)']  # said at configure, not again
    assert described() == ['calibrated (T=64)']
    # Early exit on, with the rule the profile measured (margin 3, the STDP floor of 8): the
    # early-exit results' bins score them.
    from rclpy.parameter import Parameter
    assert entry.early_exit_rule() == (3.0, 8)
    assert node.set_parameters([Parameter('early_exit', value=True)])[0].successful
    assert node._pipeline.score_kind(64) == 'calibrated (T=64, early exit)'

    def fresh() -> None:
        spin_until(lambda: False, timeout_s=1.0)  # the results of frames sent before arrive
        ours.clear()
        standard.clear()
        assert spin_until(lambda: len(paired()) >= 2 or images.publish(next(sent)))
    fresh()
    for result, vision in paired():
        share = result.confidence
        assert vision.results[0].score in (
            pytest.approx(entry.calibrated(share, early_exit=True)),
            pytest.approx(entry.calibrated(share * (1 - 1e-6), early_exit=True)))
        assert result.score == pytest.approx(vision.results[0].score)
    assert changes()[1:] == ['calibrated (T=64, early exit)']  # calibrated both: logged once
    assert spin_until(lambda: len(about) == 2, timeout_s=5.0)
    assert described() == changes()
    # Another margin than the profile measured: shares again, and said so.
    assert node.set_parameters([Parameter('early_exit_margin', value=2.0)])[0].successful
    assert node._pipeline.score_kind(64).startswith(
        'share of the evidence: early exit with margin 2 from step 8; the profile measured '
        'margin 3 from step 8')
    fresh()
    for result, vision in paired():
        assert vision.results[0].score == pytest.approx(result.confidence, rel=1e-6)
        assert math.isnan(result.score)  # not known
    assert len(changes()) == 3 and changes()[2].startswith('share of the evidence: early exit')
    assert spin_until(lambda: len(about) == 3, timeout_s=5.0)
    assert described() == changes()
    assert {m.database_version for m in about} == {1}  # the same classes all along
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS


def test_vision_results_are_built_only_while_subscribed(ros, monkeypatch) -> None:
    """No vision_msgs subscriber: no vision_msgs result is built; one joins: they come."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Classification as VisionClassification

    from topspark_ros.conversions.image import array_to_image
    from topspark_ros.msg import Classification
    import topspark_ros.nodes.classifier as classifier_module
    built = []
    original = classifier_module.prediction_to_vision_msg
    monkeypatch.setattr(classifier_module, 'prediction_to_vision_msg',
                        lambda *args: built.append(1) or original(*args))
    context, executor, spin_until = ros
    node = _classifier(context, executor)
    probe = Node('probe', context=context)
    executor.add_node(probe)
    images = probe.create_publisher(Image, 'image', qos_profile_sensor_data)
    ours, standard = [], []
    probe.create_subscription(Classification, 'classification', ours.append, 10)
    assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
    sent = array_to_image(_fashion(1), 'mono8')
    assert spin_until(lambda: images.publish(sent) or len(ours) >= 3)
    assert not built
    probe.create_subscription(VisionClassification, 'vision_classification', standard.append,
                              10)
    assert spin_until(lambda: images.publish(sent) or bool(standard))
    assert built
    assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS


def test_without_vision_msgs_configure_says_why_unless_switched_off(ros, monkeypatch) -> None:
    """vision_msgs missing: configure fails naming the package; publish_vision_msgs false runs."""
    from lifecycle_msgs.msg import State
    from rclpy.lifecycle import TransitionCallbackReturn
    context, executor, _ = ros
    monkeypatch.setitem(sys.modules, 'vision_msgs', None)
    monkeypatch.setitem(sys.modules, 'vision_msgs.msg', None)
    node = _classifier(context, executor)
    assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
    assert node._state_machine.current_state[0] == State.PRIMARY_STATE_UNCONFIGURED
    error = node._pipeline.last_error
    assert 'vision-msgs' in error and 'publish_vision_msgs' in error
    quiet = _classifier(context, executor, publish_vision_msgs=False)
    assert quiet.trigger_configure() == TransitionCallbackReturn.SUCCESS
    assert not _ours(quiet, 'label_info')
    assert quiet.trigger_activate() == TransitionCallbackReturn.SUCCESS
    quiet._on_image(_raw(_fashion(1)))
    assert quiet._pipeline.counts['processed'] == 1 and quiet._pipeline.counts['errors'] == 0


def _raw(array: np.ndarray):
    from topspark_ros.conversions.image import array_to_image
    return array_to_image(array, 'mono8')


def _png(array: np.ndarray, stamp_sec: int):
    from PIL import Image as PilImage
    from sensor_msgs.msg import CompressedImage
    buffer = io.BytesIO()
    PilImage.fromarray(array).save(buffer, format='PNG')
    msg = CompressedImage(format='mono8; png compressed mono8', data=buffer.getvalue())
    msg.header.stamp.sec, msg.header.frame_id = stamp_sec, 'camera'
    return msg


def test_compressed_images_and_standard_messages_across_processes(ros, tmp_path) -> None:
    """
    A classifier process on image/compressed: PNG frames in, both messages out over DDS.

    This process publishes the compressed frames, then subscribes label_info only after the
    first results: the latched LabelInfo still arrives.
    """
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CompressedImage
    from vision_msgs.msg import Classification as VisionClassification, LabelInfo
    context, executor, spin_until = ros
    probe = Node('probe', context=context)
    executor.add_node(probe)
    images = probe.create_publisher(CompressedImage, 'image/compressed', qos_profile_sensor_data)
    standard, infos = [], []
    probe.create_subscription(VisionClassification, 'vision_classification', standard.append,
                              10)
    frames = [_png(_fashion(i), 100 + i) for i in range(5)]
    log = tmp_path / 'classifier.log'
    with open(log, 'w') as out:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'topspark_ros.nodes.classifier', '--autostart', '--ros-args',
             '-p', f'model_path:={MODEL}', '-p', "profile_path:=''", '-p', 'crop:=none',
             '-p', 'default_timesteps:=16', '-p', 'image_transport:=compressed'],
            stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        def publish() -> None:
            images.publish(frames[int(time.monotonic() * 20) % len(frames)])
        assert spin_until(lambda: publish() or len(standard) >= 2, timeout_s=60.0), \
            f'no vision_msgs/Classification from the process:\n{log.read_text()}'
        probe.create_subscription(LabelInfo, 'label_info', infos.append, _label_info_qos())
        assert spin_until(lambda: bool(infos), timeout_s=20.0), 'no latched LabelInfo'
    finally:
        processes.stop(proc)
    assert proc.returncode == 0, log.read_text()
    assert all(m.header.frame_id == 'camera' and 100 <= m.header.stamp.sec < 105
               for m in standard)
    assert {h.class_id for m in standard for h in m.results} <= {str(i) for i in range(10)}
    assert [c.class_name for c in infos[0].class_map] == list(FASHION)

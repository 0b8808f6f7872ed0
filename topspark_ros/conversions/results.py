"""
Core results -> messages: topspark_ros's own and the standard vision_msgs.

topspark_ros: Classification, TimestepCommand, EnergyEstimate. vision_msgs: Classification and
LabelInfo, for existing consumers.

vision_msgs is imported on first use (:func:`vision_msgs_types`): the package works without
it where nothing asks for the standard messages.
"""

from typing import Sequence

import numpy as np

# vision_msgs/VisionClass.class_id is a uint16 whose largest value means "UNLABELED".
MAX_VISION_CLASSES = 65535


def prediction_to_msg(prediction, header, frames_dropped: int = 0, msg_type=None):
    """
    Return a ``Classification`` for a :class:`~topspark_ros.core.session.Prediction`.

    ``header`` (stamp, frame_id) is copied from the input the prediction came from;
    ``frames_dropped`` is the classifier's running count.
    """
    if msg_type is None:
        from topspark_ros.msg import Classification as msg_type
    ops = prediction.ops
    msg = msg_type()
    msg.header = header
    msg.class_id = int(prediction.class_id)
    msg.class_name = prediction.class_name
    msg.confidence = float(prediction.confidence)
    msg.scores = np.asarray(prediction.scores, np.float32).tolist()
    msg.timesteps_used = int(prediction.timesteps_used)
    msg.timestep_budget = int(prediction.timestep_budget)
    msg.early_exit = bool(prediction.early_exit)
    msg.spike_count = int(prediction.spike_count)
    msg.accumulates = _count(ops.accumulates)
    msg.macs = _count(ops.macs)
    msg.neuron_updates = _count(ops.neuron_updates)
    msg.plasticity_updates = _count(ops.plasticity_updates)
    msg.synaptic_ops = msg.accumulates + msg.macs
    msg.latency_ms = float(prediction.latency_ms)
    msg.energy_j = float(prediction.energy_j)
    msg.energy_preset = prediction.energy_preset
    msg.frames_dropped = int(frames_dropped)
    return msg


def energy_report_to_msg(report, msg_type=None):
    """Return an ``EnergyEstimate`` for a :class:`~.core.topspark.meter.MeterReport`."""
    if msg_type is None:
        from topspark_ros.msg import EnergyEstimate as msg_type
    msg = msg_type()
    msg.energy_preset = report.preset
    msg.energy_per_inference_j = float(report.energy_per_inference_j)
    msg.average_power_w = float(report.average_power_w)
    msg.cumulative_energy_j = float(report.cumulative_energy_j)
    msg.inference_count = int(report.inference_count)
    msg.mean_timesteps = float(report.mean_timesteps)
    msg.accumulates = float(report.mean_ops.accumulates)
    msg.macs = float(report.mean_ops.macs)
    msg.neuron_updates = float(report.mean_ops.neuron_updates)
    msg.plasticity_updates = float(report.mean_ops.plasticity_updates)
    msg.baseline_energy_per_inference_j = float(report.baseline_energy_per_inference_j)
    msg.saving_vs_baseline = float(report.saving_vs_baseline)
    msg.preset_includes = ', '.join(report.includes)
    msg.memory_preset = report.memory_preset
    msg.memory_energy_per_inference_j = float(report.memory_energy_per_inference_j)
    msg.ann_macs = float(report.ann_macs)
    msg.ann_energy_per_inference_j = float(report.ann_energy_per_inference_j)
    msg.ann_memory_energy_per_inference_j = float(report.ann_memory_energy_per_inference_j)
    if report.measured is not None:
        msg.measured_source = report.measured.source
        msg.measured_energy_j = float(report.measured.energy_j)
        msg.measured_average_power_w = float(report.measured.average_power_w)
        msg.measured_energy_per_inference_j = float(report.measured_energy_per_inference_j)
    return msg


def _count(value: float) -> int:
    return int(round(float(value)))


def choice_to_msg(choice, energy_preset: str, msg_type=None):
    """Return a ``TimestepCommand`` for a :class:`~topspark_ros.core.topspark.strategy.Choice`."""
    if msg_type is None:
        from topspark_ros.msg import TimestepCommand as msg_type
    msg = msg_type()
    msg.timesteps = int(choice.timesteps)
    msg.mode = choice.mode.value
    msg.expected_accuracy = float(choice.expected_accuracy)
    msg.expected_latency_ms = float(choice.expected_latency_ms)
    msg.expected_energy_j = float(choice.expected_energy_j)
    msg.energy_preset = energy_preset
    msg.constraints_violated = not choice.feasible
    msg.reason = choice.reason
    return msg


def vision_msgs_types(needed_for: str = 'publishing vision_msgs results'):
    """
    Return the ``vision_msgs.msg`` module (imported on first use).

    Raises ImportError saying what ``needed_for`` needs and how to install the package (or,
    for the classifier, how to run without it) when it is missing.
    """
    try:
        import vision_msgs.msg
    except ImportError as exc:
        raise ImportError(
            f'{needed_for} needs the vision_msgs message package, which is not importable '
            f'({exc}): install it (apt: ros-$ROS_DISTRO-vision-msgs, or build '
            'github.com/ros-perception/vision_msgs in your workspace) and source the '
            'workspace, or set the classifier parameter publish_vision_msgs to false') from None
    return vision_msgs.msg


def class_labels(class_names: Sequence[str], n_classes: int) -> list:
    """
    Return one label per class: its name, or its index as a string where it has none.

    These are the ``class_id`` strings of :func:`prediction_to_vision_msg` and the names in
    :func:`label_info_msg`. ``class_names``: empty, or one per class (ValueError otherwise).
    """
    if class_names and len(class_names) != n_classes:
        raise ValueError(f'{len(class_names)} class names for {n_classes} classes')
    return [str(name) if class_names and name else str(index)
            for index, name in enumerate(class_names or [''] * n_classes)]


def prediction_to_vision_msg(prediction, header, labels: Sequence[str], vision=None):
    """
    Return a ``vision_msgs/Classification`` for a :class:`~topspark_ros.core.session.Prediction`.

    ``header`` is copied from the input. One ``ObjectHypothesis`` per class with evidence,
    best first (ties in class order): ``class_id`` is the class's label (``labels``, see
    :func:`class_labels`), ``score`` its share of the evidence, ``s_i / sum_j s_j`` over the
    class scores clipped at 0 (NaN as 0), in [0, 1] and summing to 1, so the first score is
    the prediction's ``confidence``. Classes without evidence are left out (vision_msgs lists
    only nonzero probabilities): an input with no output spike gives no hypothesis.
    ``vision``: the ``vision_msgs.msg`` module (default: :func:`vision_msgs_types`).
    """
    vision = vision or vision_msgs_types()
    evidence = np.clip(np.nan_to_num(np.asarray(prediction.scores, np.float64), nan=0.0,
                                     posinf=0.0), 0.0, None)
    total = float(evidence.sum())
    msg = vision.Classification()
    msg.header = header
    if total > 0.0:
        shares = evidence / total
        order = np.argsort(-shares, kind='stable')
        msg.results = [vision.ObjectHypothesis(class_id=labels[i], score=float(shares[i]))
                       for i in order if shares[i] > 0.0]
    return msg


def label_info_msg(labels: Sequence[str], header, threshold: float = 0.0, vision=None):
    """
    Return a ``vision_msgs/LabelInfo``: class ``i`` (``uint16``) -> ``labels[i]``.

    ``threshold``: the confidence threshold of the pipeline (0: every result is published).
    ValueError beyond 65535 classes (the largest ``uint16`` is the "UNLABELED" class).
    """
    if len(labels) > MAX_VISION_CLASSES:
        raise ValueError(f'LabelInfo holds at most {MAX_VISION_CLASSES} classes (uint16 ids, '
                         f'65535 is UNLABELED), got {len(labels)}')
    vision = vision or vision_msgs_types()
    msg = vision.LabelInfo()
    msg.header = header
    msg.class_map = [vision.VisionClass(class_id=i, class_name=str(label))
                     for i, label in enumerate(labels)]
    msg.threshold = float(threshold)
    return msg

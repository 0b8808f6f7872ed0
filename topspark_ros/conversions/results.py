"""
Core results -> messages: topspark_ros's own and the standard vision_msgs.

topspark_ros: Classification, TimestepCommand, EnergyEstimate. vision_msgs: Classification,
LabelInfo and VisionInfo, for existing consumers.

vision_msgs is imported on first use (:func:`vision_msgs_types`): the package works without
it where nothing asks for the standard messages.
"""

import math
import struct
from typing import Optional, Sequence

import numpy as np

from topspark_ros.conversions.cdr import cdr_header, CdrHeader, header_msg
from topspark_ros.core.energy import OpCounts
from topspark_ros.core.topspark.calibration import evidence_shares

# vision_msgs/VisionClass.class_id is a uint16 whose largest value means "UNLABELED".
MAX_VISION_CLASSES = 65535


def prediction_to_msg(prediction, header, frames_dropped: int = 0, msg_type=None, *,
                      source: str = '', model_sha256: str = '', base_model_sha256: str = ''):
    """
    Return a ``Classification`` for a :class:`~topspark_ros.core.session.Prediction`.

    ``header`` (stamp, frame_id) is copied from the input the prediction came from;
    ``frames_dropped`` is the classifier's running count; ``source`` the classifier node's
    fully qualified name, ``model_sha256`` and ``base_model_sha256`` its model's identity
    (:meth:`~topspark_ros.core.session.ClassifierSession.identity`). An installed message
    without those fields (an older version) gets the others.
    """
    if msg_type is None:
        from topspark_ros.msg import Classification as msg_type
    ops = prediction.ops
    msg = msg_type()
    msg.header = header
    msg.class_id = int(prediction.class_id)
    msg.class_name = prediction.class_name
    msg.confidence = float(prediction.confidence)
    if hasattr(msg, 'score'):  # (an older message has none)
        msg.score = _score(prediction)
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
    for name, value in (('source', source), ('model_sha256', model_sha256),
                        ('base_model_sha256', base_model_sha256),
                        ('learnt', bool(getattr(prediction, 'learnt', False))),
                        ('learning_ms', float(getattr(prediction, 'learning_ms', 0.0)))):
        if hasattr(msg, name):  # the fallback for an older message: those it has
            setattr(msg, name, value)
    return msg


def prediction_to_cdr(prediction, header, frames_dropped: int = 0, *, source: str = '',
                      model_sha256: str = '', base_model_sha256: str = '') -> bytes:
    """
    Return :func:`prediction_to_msg`'s ``Classification`` serialized (CDR), built directly.

    What a publisher sends for it (``Publisher.publish`` takes the bytes), made without the
    Python message and its conversion to C: at 30 frames/s that saved the classifier about
    0.1 ms of CPU a frame (docs/benchmarks-ros.md). ``header``: a ``std_msgs/Header`` or a
    :class:`~topspark_ros.conversions.cdr.CdrHeader`. Plain little-endian CDR as ROS 2's
    middlewares write it (each field aligned to its size, up to 8 bytes, from after the
    4-byte encapsulation header; padding zeroed); the classifier checks it against rclpy's own
    serialization before using it (:func:`prediction_cdr_matches`).
    """
    sec, nanosec, frame_id = cdr_header(header)
    ops = prediction.ops
    accumulates, macs = _count(ops.accumulates), _count(ops.macs)
    scores = np.asarray(prediction.scores, '<f4').reshape(-1)
    out = bytearray(_CDR_LE)
    out += _TIME.pack(sec, nanosec)
    _put_string(out, frame_id)
    _align(out, 4)
    out += _INT32.pack(int(prediction.class_id))
    _put_string(out, prediction.class_name)
    _align(out, 4)
    out += _TWO_FLOATS_AND_LENGTH.pack(float(prediction.confidence), _score(prediction),
                                       scores.shape[0])
    out += scores.tobytes()
    out += _BUDGET.pack(int(prediction.timesteps_used), int(prediction.timestep_budget),
                        bool(prediction.early_exit))
    _align(out, 8)
    out += _COUNTS.pack(int(prediction.spike_count), accumulates + macs, accumulates, macs,
                        _count(ops.neuron_updates), _count(ops.plasticity_updates),
                        float(prediction.latency_ms))
    _align(out, 8)
    out += _FLOAT64.pack(float(prediction.energy_j))
    _put_string(out, prediction.energy_preset)
    _align(out, 8)
    out += _UINT64.pack(int(frames_dropped))
    _put_string(out, source)
    _put_string(out, model_sha256)
    _put_string(out, base_model_sha256)
    out += _BOOL.pack(bool(getattr(prediction, 'learnt', False)))
    _align(out, 4)
    out += _FLOAT32.pack(float(getattr(prediction, 'learning_ms', 0.0)))
    return bytes(out)


def _score(prediction) -> float:
    """Return a prediction's ``Classification.score``: its calibrated score, NaN for none."""
    calibrated = getattr(prediction, 'calibrated_score', None)
    return math.nan if calibrated is None else float(calibrated)


def prediction_cdr_matches(msg_type=None) -> bool:
    """
    Return whether :func:`prediction_to_cdr` serializes the installed ``Classification``.

    Read back by rclpy, its bytes must give what rclpy's own serialization of
    :func:`prediction_to_msg`'s message gives, and be as long (the padding bytes aside, which
    rclpy leaves as they were in memory), for a prediction with text and scores of awkward
    lengths. False for another version of the message (or any error): publish messages then.
    """
    from types import SimpleNamespace

    from rclpy.serialization import deserialize_message, serialize_message
    if msg_type is None:
        from topspark_ros.msg import Classification as msg_type
    ops = SimpleNamespace(accumulates=3.0, macs=2**40, neuron_updates=5.4,
                          plasticity_updates=0.0)
    prediction = SimpleNamespace(
        class_id=-3, class_name='ab\u00e9', confidence=0.25, calibrated_score=0.625,
        scores=[0.5, -1.0, 3.25],
        timesteps_used=7, timestep_budget=2**32 - 1, early_exit=True, spike_count=2**63,
        ops=ops, latency_ms=1.5, energy_j=2.5e-6, energy_preset='cmos', learnt=True,
        learning_ms=2.75)
    header = CdrHeader(-2, 999_999_999, 'cam')
    who = {'source': '/robot/cl\u00e4ssifier', 'model_sha256': 'ab' * 32,
           'base_model_sha256': 'cd' * 31 + 'e'}
    try:
        data = prediction_to_cdr(prediction, header, 11, **who)
        msg = prediction_to_msg(prediction, header_msg(header), 11, msg_type, **who)
        expected = serialize_message(msg)
        return deserialize_message(data, msg_type) == deserialize_message(expected, msg_type) \
            and len(data) == len(expected)
    except Exception:  # another message, or something we cannot tell: use messages
        return False


_CDR_LE = b'\x00\x01\x00\x00'  # encapsulation: plain CDR, little endian
_TIME = struct.Struct('<iI')
_INT32 = struct.Struct('<i')
_UINT32 = struct.Struct('<I')
_TWO_FLOATS_AND_LENGTH = struct.Struct('<ffI')
_BUDGET = struct.Struct('<II?')
_COUNTS = struct.Struct('<QQQQQQf')
_FLOAT64 = struct.Struct('<d')
_UINT64 = struct.Struct('<Q')
_BOOL = struct.Struct('<?')
_FLOAT32 = struct.Struct('<f')


def _align(out: bytearray, size: int) -> None:
    """Pad ``out`` with zeros to a multiple of ``size`` (counted after the encapsulation)."""
    out += bytes(-(len(out) - 4) % size)


def _put_string(out: bytearray, text: str) -> None:
    """
    Append a CDR string: its length with the terminating zero, the UTF-8 bytes, a zero.

    A text with a NUL character ends there, as rclpy's serialization (C strings) ends it.
    """
    data = text.split('\x00', 1)[0].encode()
    _align(out, 4)
    out += _UINT32.pack(len(data) + 1)
    out += data
    out += b'\x00'


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
    msg.window_inferences = int(report.window_inferences)
    msg.window_s = float(report.window_s)
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
    msg.platform_power_w = float(report.platform_power_w)
    msg.platform_energy_per_inference_j = float(report.platform_energy_per_inference_j)
    return msg


MAX_PLAUSIBLE_COUNT = 2 ** 53
"""Largest operation or frame count a received message may carry: beyond, no float holds it
exactly, and no inference does 9e15 operations (one such message made an energy monitor's
total 2.6e9 J for good; a user review)."""


MAX_PLAUSIBLE_VALUE = 1e12
"""Largest latency (ms), energy (J), power (W), length (s) or mean T a received message may
carry: a terawatt, 30 years. A finite power of 1e305 W overflowed the controller's ratio to
the profile into inf, which then refused the next four good windows (a review)."""


def _problem(msg, floats: Sequence[str], counts: Sequence[str]) -> Optional[str]:
    """Return why fields of ``msg`` cannot be taken: non-finite, negative or huge values."""
    for name in floats:
        value = float(getattr(msg, name))
        if not math.isfinite(value) or value < 0.0:
            return f'{name} = {value}'
        if value > MAX_PLAUSIBLE_VALUE:
            return f'{name} = {value:g} (above {MAX_PLAUSIBLE_VALUE:g})'
    for name in counts:
        value = int(getattr(msg, name))
        if value > MAX_PLAUSIBLE_COUNT:
            return f'{name} = {value} (above 2^53)'
    return None


def classification_ops(msg) -> OpCounts:
    """Return the operation counts a ``Classification`` carries, to price them."""
    return OpCounts(accumulates=float(msg.accumulates), macs=float(msg.macs),
                    neuron_updates=float(msg.neuron_updates),
                    plasticity_updates=float(msg.plasticity_updates))


def classification_problem(msg) -> Optional[str]:
    """
    Return why a received ``Classification`` cannot be used, or None.

    Its latency and energy must be finite, not negative and at most
    :data:`MAX_PLAUSIBLE_VALUE`, its operation and frame counts at most
    :data:`MAX_PLAUSIBLE_COUNT` (a stray or corrupted publisher's values stayed in a
    controller's latency history and an energy monitor's totals; a user review).
    """
    return _problem(msg, ('latency_ms', 'energy_j', 'learning_ms'),
                    ('spike_count', 'synaptic_ops', 'accumulates', 'macs', 'neuron_updates',
                     'plasticity_updates', 'frames_dropped'))


def energy_problem(msg) -> Optional[str]:
    """Return why a received ``EnergyEstimate`` cannot be used, or None (as above)."""
    return _problem(msg, ('energy_per_inference_j', 'average_power_w', 'cumulative_energy_j',
                          'window_s', 'mean_timesteps', 'platform_energy_per_inference_j'),
                    ('inference_count', 'window_inferences'))


def _count(value: float) -> int:
    return int(round(float(value)))


def choice_to_msg(choice, energy_preset: str, msg_type=None, model_sha256: str = ''):
    """
    Return a ``TimestepCommand`` for a :class:`~topspark_ros.core.topspark.strategy.Choice`.

    ``model_sha256``: of the model the choosing profile describes ('': any).
    """
    if msg_type is None:
        from topspark_ros.msg import TimestepCommand as msg_type
    msg = msg_type()
    msg.timesteps = int(choice.timesteps)
    msg.mode = choice.mode.value
    msg.expected_accuracy = float(choice.expected_accuracy)
    msg.expected_latency_ms = float(choice.expected_latency_ms)
    msg.expected_energy_j = float(choice.expected_energy_j)
    msg.energy_preset = energy_preset
    msg.model_sha256 = model_sha256
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

    These are the names :func:`label_info_msg` maps the class indices to. ``class_names``:
    empty, or one per class (ValueError otherwise).
    """
    if class_names and len(class_names) != n_classes:
        raise ValueError(f'{len(class_names)} class names for {n_classes} classes')
    return [str(name) if class_names and name else str(index)
            for index, name in enumerate(class_names or [''] * n_classes)]


def prediction_to_vision_msg(prediction, header, vision=None):
    """
    Return a ``vision_msgs/Classification`` for a :class:`~topspark_ros.core.session.Prediction`.

    ``header`` is copied from the input. One ``ObjectHypothesis`` per class with evidence, best
    first (ties in class order): ``class_id`` is the class's index as a string, the id a
    consumer looks up in the ``LabelInfo`` of :func:`label_info_msg` (vision_msgs' rule; the
    class name there made that lookup fail). ``score``:

    - with a ``calibrated_score`` (a profile that measured the results by confidence at this
      T), the best class's is that probability of being right; the others keep their
      proportions to one another, scaled so that they stay below it and all sum to at most 1;
    - else each class's share of the evidence, ``s_i / sum_j s_j`` over the class scores
      clipped at 0 (NaN as 0), in [0, 1] and summing to 1, so the first score is the
      prediction's ``confidence``.

    Classes without evidence, or scored 0 below the best, are left out (vision_msgs lists
    only nonzero probabilities): an input with no output spike gives no hypothesis, nor does
    a frame of one value everywhere (``uniform``: a lens cap, a blinded camera; its share of
    the evidence, often 1, is no probability, and the profile's bins do not describe it).
    ``vision``: the ``vision_msgs.msg`` module (default: :func:`vision_msgs_types`).
    """
    vision = vision or vision_msgs_types()
    shares = evidence_shares(prediction.scores)
    msg = vision.Classification()
    msg.header = header
    if shares.size and shares.max() > 0.0 and not getattr(prediction, 'uniform', False):
        order = np.argsort(-shares, kind='stable')
        scores = shares
        calibrated = getattr(prediction, 'calibrated_score', None)
        if calibrated is not None:
            best = float(shares[order[0]])
            rest = 1.0 - best
            scale = min((1.0 - calibrated) / rest if rest > 0.0 else 0.0, calibrated / best)
            scores = shares * scale
            scores[order[0]] = calibrated
        msg.results = [vision.ObjectHypothesis(class_id=str(i), score=float(scores[i]))
                       for i in order if shares[i] > 0.0
                       and (scores[i] > 0.0 or i == order[0])]
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


def vision_info_msg(method: str, database_location: str, database_version: int, header,
                    vision=None):
    """
    Return a ``vision_msgs/VisionInfo``: what the pipeline is and where its classes are named.

    ``method``: the pipeline and what its scores are, in words; ``database_location``: where
    class ids are mapped to names (the classifier's ``label_info`` topic);
    ``database_version``: incremented each time another class map is in use (an ``int32``,
    ValueError outside it).
    """
    if not -2 ** 31 <= database_version < 2 ** 31:
        raise ValueError(f'database_version {database_version} is no int32')
    vision = vision or vision_msgs_types()
    msg = vision.VisionInfo()
    msg.header = header
    msg.method = str(method)
    msg.database_location = str(database_location)
    msg.database_version = int(database_version)
    return msg

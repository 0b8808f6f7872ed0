"""Core results -> topspark_ros messages (Classification, TimestepCommand, EnergyEstimate)."""

import numpy as np


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
    """Return an ``EnergyEstimate`` for a :class:`~topspark_ros.core.meter.MeterReport`."""
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
    return msg


def _count(value: float) -> int:
    return int(round(float(value)))


def choice_to_msg(choice, energy_preset: str, msg_type=None):
    """Return a ``TimestepCommand`` for a :class:`~topspark_ros.core.strategy.Choice`."""
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

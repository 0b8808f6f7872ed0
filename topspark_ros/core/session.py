"""
A classification session: one loaded model, the frame path into it, energy accounting.

Everything the classifier node does for a frame happens here, without ROS: preprocess the frame
(:mod:`topspark_ros.core.preprocess`), run the model for the commanded timestep count ``T``
with the parameters enhanced for that ``T`` (from the timestep profile, when one is given),
and turn the result into a :class:`Prediction` with its operation counts and estimated
energy. With on-line learning, the same frame path feeds unsupervised STDP.
"""

from dataclasses import dataclass
import os
import time
from typing import Optional, Sequence

import numpy as np

from topspark_ros.core.checkpoint import load_checkpoint, save_checkpoint
from topspark_ros.core.energy import EnergyModel
from topspark_ros.core.preprocess import Preprocessor


@dataclass(frozen=True)
class Prediction:
    """
    The outcome of classifying one frame.

    Attributes
    ----------
    class_id
        predicted class index, or -1 when the network gave no evidence (no spike).
    class_name
        its name ('' when unknown).
    confidence
        the predicted class's share of the scores, in [0, 1].
    scores
        ``float32 [C]`` class scores.
    timesteps_used, timestep_budget
        steps simulated, and the ``T`` the frame was given.
    early_exit
        True when it stopped before ``T``.
    spike_count
        spikes of all the network's neurons.
    ops
        operation counts of this inference (:class:`topspark_ros.core.energy.OpCounts`).
    latency_ms
        wall-clock time of preprocessing plus inference (ms).
    energy_j
        estimated compute energy (J) under ``energy_preset``.
    energy_preset
        the hardware preset of ``energy_j``.

    """

    class_id: int
    class_name: str
    confidence: float
    scores: np.ndarray
    timesteps_used: int
    timestep_budget: int
    early_exit: bool
    spike_count: int
    ops: object
    latency_ms: float
    energy_j: float
    energy_preset: str


class ClassifierSession:
    """
    A model ready to classify frames (and, optionally, learn from them).

    Parameters
    ----------
    model
        a loaded model (either family), see :func:`load_checkpoint`.
    class_names
        one name per class (default: none, predictions carry ids only).
    crop, invert
        how frames are fitted to the model input (see
        :class:`topspark_ros.core.preprocess.Preprocessor`).
    energy_model
        per-operation energies (default: the ``cmos45_fp32`` preset).
    profile
        a timestep profile whose per-``T`` enhanced parameters are applied.

    """

    def __init__(self, model, *, class_names: Sequence[str] = (),
                 crop: str = 'center', invert: bool = False,
                 energy_model: Optional[EnergyModel] = None, profile=None) -> None:
        """Wrap ``model``; nothing is computed until a frame arrives."""
        self.model = model
        n_classes = model.n_classes
        if class_names and len(class_names) != n_classes:
            raise ValueError(f'{len(class_names)} class names for a model of {n_classes} '
                             'classes')
        self.class_names = tuple(class_names)
        self.preprocessor = Preprocessor(model.input_spec, crop=crop, invert=invert)
        self.energy_model = energy_model or EnergyModel('cmos45_fp32')
        self.profile = profile

    @classmethod
    def from_checkpoint(cls, path: str, *, device: str = 'cpu', class_names: Sequence[str] = (),
                        **kwargs) -> 'ClassifierSession':
        """Load ``path`` on ``device``; class names default to the checkpoint's."""
        model, meta = load_checkpoint(path, device=device)
        names = tuple(class_names) or tuple(meta.get('info', {}).get('class_names', ()))
        return cls(model, class_names=names, **kwargs)

    def warm_up(self) -> None:
        """Run one blank frame through the model (compiles kernels before real frames come)."""
        self.model.infer(np.zeros((1,) + self.model.input_spec.shape, np.uint8), timesteps=2)

    def params_for(self, timesteps: int):
        """Return the enhanced parameters for ``timesteps`` (None: the model's own)."""
        if self.profile is None:
            return None
        values = self.profile.params_for(timesteps)
        return None if values is None else self.model.params_for_values(values)

    def classify(self, frame: np.ndarray, layout: str, timesteps: int, *,
                 early_exit=None) -> Prediction:
        """Classify one camera frame for ``timesteps`` steps (``early_exit``: optional rule)."""
        if timesteps < 1:
            raise ValueError(f'timesteps must be >= 1, got {timesteps}')
        start = time.perf_counter()
        x = self.preprocessor(frame, layout)[None]
        result = self.model.infer(x, timesteps=timesteps, params=self.params_for(timesteps),
                                  early_exit=early_exit)
        latency_ms = (time.perf_counter() - start) * 1e3
        scores = np.asarray(result.scores[0], np.float32)
        total = float(scores.sum())
        if total > 0.0:
            class_id = int(np.argmax(scores))
            confidence = float(scores[class_id]) / total
        else:
            class_id, confidence = -1, 0.0
        ops = result.energy_ops(0)
        used = int(result.timesteps_used[0])
        return Prediction(
            class_id=class_id,
            class_name=self.class_names[class_id] if 0 <= class_id < len(self.class_names)
            else '',
            confidence=confidence, scores=scores, timesteps_used=used,
            timestep_budget=int(timesteps), early_exit=used < timesteps,
            spike_count=int(result.spike_count[0]), ops=ops, latency_ms=latency_ms,
            energy_j=self.energy_model.estimate(ops).compute_j,
            energy_preset=self.energy_model.preset.name)

    def learn(self, frame: np.ndarray, layout: str, timesteps: int) -> None:
        """Adapt the model to one unlabelled frame with on-line STDP at ``timesteps``."""
        x = self.preprocessor(frame, layout)[None]
        self.model.learn(x, timesteps=timesteps, params=self.params_for(timesteps))

    def save(self, path: str, info: Optional[dict] = None) -> str:
        """Save the (learnt) model atomically to ``path``; return the metadata path."""
        info = dict(info or {})
        info.setdefault('class_names', list(self.class_names))
        return str(save_checkpoint(os.fspath(path), self.model, info=info))

"""
The interface every model family implements (STDP network, converted deep SNN).

``eval``, ``sweep``, the parameter enhancement, timestep profiles, the trade-off strategy, the
classifier session, the event encoders and the exporters use models only through this
interface, so they work with either family without special cases; nothing outside a family's
package branches on its name. A new family implements :class:`SpikingModel` and passes
``test/core/test_model_conformance.py``.

**T.** ``timesteps`` is an argument of every call, never model state, and always explicit: an
input that carries its own step count (spike events, per-bin event frames) is refused when it
differs (:func:`check_timesteps`, the one validation of ``T``). There is no upper bound here:
the classifier node caps ``T`` by its ``max_timesteps`` parameter.

**Inputs** (:mod:`topspark_ros.core.inputs`): frames,
:class:`~topspark_ros.core.inputs.SpikeEvents` or :class:`~topspark_ros.core.inputs.EventFrames`,
one batch of ``B`` per call; a model lists the kinds it takes in ``input_kinds`` and raises
``TypeError`` naming them for any other.

**Result**: one type for both families, :class:`InferenceResult` (the :class:`ModelResult`
protocol).
"""

from dataclasses import dataclass
from numbers import Integral
from typing import Any, Mapping, Optional, Protocol, runtime_checkable, Tuple, TYPE_CHECKING

import numpy as np

from topspark_ros.core.energy import OpCounts
from topspark_ros.core.fields import without_init
from topspark_ros.core.inputs import EventFrames, Inputs, SpikeEvents
from topspark_ros.core.preprocess import FrameSpec
from topspark_ros.core.topspark.knobs import Knob

if TYPE_CHECKING:  # pragma: no cover - annotations only (events.encode imports this module)
    from topspark_ros.core.events.encode import EventEncoding

KIND_NAMES = {np.ndarray: 'frames (numpy uint8 [B, *input_spec.shape])',
              SpikeEvents: 'SpikeEvents', EventFrames: 'EventFrames'}
"""How errors name each input kind."""


def check_timesteps(timesteps, inputs: Optional[Inputs] = None) -> int:
    """
    Return ``timesteps`` as an int after checking it: THE validation of ``T``.

    ``T`` must be a positive integer (``bool`` is not one). With ``inputs`` that carry their
    own step count (:class:`SpikeEvents` of ``T + 1`` row offsets, per-bin
    :class:`EventFrames`), that count must equal ``T``. Raises ``ValueError`` otherwise.
    """
    integral = type(timesteps) is int or (isinstance(timesteps, Integral)
                                          and not isinstance(timesteps, bool))
    if not integral or timesteps < 1:
        raise ValueError(f'timesteps must be a positive int, got {timesteps!r}')
    steps = int(timesteps)
    if isinstance(inputs, np.ndarray) or inputs is None:  # frames: no step count of their own
        return steps
    if isinstance(inputs, SpikeEvents) and inputs.timesteps != steps:
        raise ValueError(f'timesteps={steps} but the spikes have {inputs.timesteps} steps')
    if isinstance(inputs, EventFrames) and inputs.timesteps not in (None, steps):
        raise ValueError(f'{inputs.timesteps} per-bin frames for {steps} timesteps (encode the '
                         'events into as many bins as timesteps)')
    return steps


def check_input_kind(inputs, kinds: Tuple[type, ...]) -> None:
    """Raise ``TypeError`` naming ``kinds`` when ``inputs`` is none of them."""
    if not isinstance(inputs, kinds):
        names = ', '.join(KIND_NAMES.get(k, k.__name__) for k in kinds)
        raise TypeError(f'this model takes {names}; got {type(inputs).__name__}')


@runtime_checkable
class OperationCounts(Protocol):
    """A family's per-input operation and spike counts (the ``ops`` of a result)."""

    @property
    def spikes(self) -> np.ndarray:
        """``[B]`` spikes of all the network's neurons per input."""

    def energy_ops(self, index: int) -> OpCounts:
        """Return input ``index``'s counts as the energy model's operation kinds."""

    def mean_energy_ops(self) -> OpCounts:
        """Return the mean over the inputs of :meth:`energy_ops`."""

    def totals(self) -> dict:
        """Return every count summed over the inputs (``{name: number}``)."""


def check_device(device) -> str:
    """
    Return ``device`` as text; a ValueError, naming it, for one a model cannot run on here.

    'cpu' (the numba engine) and any torch device that exists and holds data: an unknown
    name, CUDA without a CUDA torch or device, and 'meta' (no data) are refused before a model
    is built on them (they failed as torch internals, 'meta' only at the first frame; a user
    review of the core as a library). The CPU by another name ('cpu:0') is 'cpu' (it took the
    torch engine, 4 to 90 times slower); a CUDA index the machine does not have and 'mps'
    (whose tensors have no float64, which both families compute in), as an XPU without
    float64, are refused too (a review of the device paths).
    """
    text = str(device)
    if text == 'cpu':
        return text
    import torch
    try:
        kind = torch.device(text).type
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f'device {text!r}: not a torch device ({exc})') from None
    if kind == 'meta':
        raise ValueError(f"device {text!r} holds no data; use 'cpu'")
    if kind == 'cpu':  # 'cpu:0', 'CPU' spelled otherwise: the CPU, so the numba engine
        return 'cpu'
    if kind == 'cuda' and not torch.cuda.is_available():
        built = 'this torch is built without CUDA' if torch.version.cuda is None else \
            'no CUDA device is visible'
        raise ValueError(f"device {text!r}: {built}; use 'cpu'")
    index = torch.device(text).index
    if kind == 'cuda' and index is not None and index >= torch.cuda.device_count():
        raise ValueError(f'device {text!r}: this machine has {torch.cuda.device_count()} '
                         f"CUDA device(s), numbered from 0; use 'cuda:0' or 'cpu'")
    if kind == 'mps':  # both families compute in float64, which MPS does not have
        raise ValueError(f'device {text!r}: the models compute in float64, which MPS does '
                         "not support; use 'cpu'")
    backend = getattr(torch, kind, None)  # xpu, ...: their own availability test
    available = getattr(backend, 'is_available', None)
    if kind not in ('cpu', 'cuda') and (available is None or not available()):
        raise ValueError(f"device {text!r}: not available with this torch here; use 'cpu'")
    properties = getattr(backend, 'get_device_properties', None)
    if kind == 'xpu' and properties is not None and \
            not getattr(properties(index or 0), 'has_fp64', True):  # (Intel Arc; a review)
        raise ValueError(f'device {text!r}: the models compute in float64, which this GPU '
                         "does not support; use 'cpu'")
    return text


def unit_intensities(images: np.ndarray) -> np.ndarray:
    """
    Return ``images`` as intensities in [0, 1] (``float64``), as both families read them.

    ``uint8`` images are divided by 255; float images must be finite and in [0, 1]; any other
    type (``uint16``, ``int64``: their range is not known) and NaN or infinity are a
    ValueError. (The converted family took float 0..255 frames clipped to a near-binary
    image, NaN as 0, and the STDP family let NaN through its range check: wrong classes
    without an error; a user review.)
    """
    if images.dtype == np.uint8:
        return images.astype(np.float64) / 255.0
    if images.dtype.kind != 'f':
        raise ValueError(f'images must be uint8 (0..255) or float in [0, 1], got {images.dtype}')
    intensity = images.astype(np.float64)
    if intensity.size and not (np.isfinite(intensity).all() and intensity.min() >= 0.0
                               and intensity.max() <= 1.0):
        raise ValueError('float images must be finite and lie in [0, 1] (uint8 images in '
                         '0..255)')
    return intensity


NO_CLASS = -1
"""The prediction of an input without evidence (no output spike), as the classifier reports it."""


def predicted_classes(scores: np.ndarray) -> np.ndarray:
    """
    Return each row's class of highest score (``int64 [B]``), :data:`NO_CLASS` where none is > 0.

    An input no neuron answered has all scores 0: its arg-max, class 0, was counted right for
    every input of class 0 by the sweeps and evaluations, while the classifier reports it as
    no class (at T=8 a plain model's profile read 10 % where the robot got 0; a user review).
    """
    if scores.shape[0] == 1:  # a camera's frame: about 0.15 us more than the arg-max alone
        predicted = scores.argmax(axis=1)  # intp: int64 on the 64-bit targets
        if not scores.item(predicted.item()) > 0:
            predicted[0] = NO_CLASS
        return predicted
    predicted = scores.argmax(axis=1).astype(np.int64, copy=False)
    silent = ~(scores[np.arange(len(predicted)), predicted] > 0)
    if silent.any():
        predicted = predicted.copy()
        predicted[silent] = NO_CLASS
    return predicted


@dataclass(frozen=True)
class InferenceResult:
    """
    What :meth:`SpikingModel.infer` returns for a batch of ``B`` inputs (both families).

    Attributes
    ----------
    evidence
        ``[B, K]``, what the readout reads: STDP, ``int64`` excitatory spike counts per
        neuron (``K = N``); converted, ``float64`` output-layer input summed over the steps
        run, per class (``K = C``).
    timesteps_used
        ``int64 [B]`` steps simulated per input (``T``, or fewer after an early exit).
    ops
        the family's per-input counts (:class:`OperationCounts`).
    scores
        ``float64 [B, C]`` class scores of the readout (None before a readout exists).
    predicted
        ``int64 [B]`` predicted classes, :data:`NO_CLASS` for an input without evidence
        (None before a readout exists; :func:`predicted_classes`).

    """

    evidence: np.ndarray
    timesteps_used: np.ndarray
    ops: OperationCounts
    scores: Optional[np.ndarray] = None
    predicted: Optional[np.ndarray] = None

    @classmethod
    def from_fields(cls, evidence: np.ndarray, timesteps_used: np.ndarray,
                    ops: OperationCounts, scores: Optional[np.ndarray],
                    predicted: Optional[np.ndarray]) -> 'InferenceResult':
        """
        Return the same result as the constructor, without the frozen dataclass's ``__init__``.

        (:func:`~topspark_ros.core.fields.without_init`: 0.3 us less of a one-frame call of 8
        to 10 us at small ``T``, a camera stream's).
        """
        return without_init(cls, evidence=evidence, timesteps_used=timesteps_used, ops=ops,
                            scores=scores, predicted=predicted)

    @property
    def spike_count(self) -> np.ndarray:
        """``int64 [B]``: spikes of all the network's neurons per input."""
        return np.asarray(self.ops.spikes).astype(np.int64)

    def energy_ops(self, index: int) -> OpCounts:
        """Return the operation counts of input ``index`` for the energy model."""
        return self.ops.energy_ops(index)


@runtime_checkable
class ModelResult(Protocol):
    """What :meth:`SpikingModel.infer` returns (:class:`InferenceResult` is the one type)."""

    evidence: np.ndarray
    timesteps_used: np.ndarray
    ops: OperationCounts
    scores: Optional[np.ndarray]
    predicted: Optional[np.ndarray]

    @property
    def spike_count(self) -> np.ndarray:
        """``int64 [B]`` spikes of all neurons per input."""

    def energy_ops(self, index: int) -> OpCounts:
        """Return the operation counts of input ``index`` for the energy model."""


@runtime_checkable
class ClassReadout(Protocol):
    """How a model turns evidence into classes."""

    def predict(self, evidence: np.ndarray, vote: str = 'all_activity') -> np.ndarray:
        """
        Return the classes ``int64 [B]`` of ``evidence [B, K]``.

        ``vote``: the voting scheme, for a readout that has several (the STDP readout's
        ``VOTES``; ``infer``'s scores use the default); a readout with one ignores it.
        """


@runtime_checkable
class SpikingModel(Protocol):
    """
    A spiking classifier of one batch of typed inputs at an explicit ``T`` per call.

    Attributes
    ----------
    checkpoint_family
        the family's name in checkpoints (``'stdp'``, ``'converted'``).
    n_classes
        classes ``C``.
    input_spec
        the frame the model takes (an event model: its input size, one channel).
    input_kinds
        the input types ``infer``/``learn`` take (``numpy.ndarray`` for frames,
        :class:`SpikeEvents`, :class:`EventFrames`).
    learns_online
        whether :meth:`learn` learns (on the robot); False: it raises. A family that learns
        on line also gives ``untrained(n_neurons=, seed=, params=)``, a new network of its
        structure (the scoring runs of :mod:`topspark_ros.core.topspark.enhance`).
    knobs
        the family's enhancement knobs (:class:`~topspark_ros.core.topspark.knobs.Knob`):
        fields of ``params`` with factors and search ranges; learning knobs only when it
        learns on line.
    params
        the default run-time parameters (a frozen dataclass; any call may pass its own).
    readout
        the :class:`ClassReadout` (None before labels are assigned).
    event_encoding
        how events were encoded in training (an
        :class:`~topspark_ros.core.events.encode.EventEncoding`), None for a frame model.

    """

    checkpoint_family: str
    n_classes: int
    input_spec: FrameSpec
    input_kinds: Tuple[type, ...]
    learns_online: bool
    knobs: Tuple[Knob, ...]
    params: Any
    readout: Optional[ClassReadout]
    event_encoding: Optional['EventEncoding']

    def infer(self, inputs: Inputs, *, timesteps: int, params=None, early_exit=None,
              seed: Optional[int] = None) -> InferenceResult:
        """
        Classify a batch for ``timesteps`` steps, learning off (nothing in the model changes).

        ``params``: run-time parameters for this call (None: the model's); ``early_exit``: an
        :class:`~topspark_ros.core.topspark.early_exit.EarlyExit` (never more than ``T``
        steps); ``seed``: the input encoding's random numbers, an int or each input's own
        (:class:`~topspark_ros.core.inputs.SampleSeeds`; deterministic families ignore it).
        """

    def learn(self, inputs: Inputs, *, timesteps: int, params=None,
              seed: Optional[int] = None):
        """Learn from a batch, input after input (``learns_online`` False: raises)."""

    def params_for_values(self, values: Mapping[str, float]):
        """Return ``params`` with ``values`` (name -> number, e.g. from a profile) applied."""

    def ann_ops(self) -> OpCounts:
        """Return the operation counts per input of the same network as an ANN."""

    def default_event_encoding(self) -> 'EventEncoding':
        """
        Return the encoding events are given to this model in.

        The model's own ``event_encoding``, or a family's untrained default; raises
        :class:`~topspark_ros.core.events.encode.EventModelError` when the model takes no
        events.
        """

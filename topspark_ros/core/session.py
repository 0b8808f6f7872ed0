"""
A classification session: one loaded model, the frame path into it, energy accounting.

What the classifier node does with the model for a frame happens here, without ROS (its
counters, commanded ``T`` and saves: :mod:`topspark_ros.core.pipeline`): preprocess the frame
(:mod:`topspark_ros.core.preprocess`), run the model for the commanded timestep count ``T``
with the parameters enhanced for that ``T`` (from the timestep profile, when one is given;
resolved once per ``T``), and turn the result into a :class:`Prediction` with its operation
counts and estimated energy. With on-line learning, the same frame path feeds unsupervised
STDP: :meth:`learn` returns the learning's operation counts and :meth:`charge_learning` adds
them (and their energy) to the frame's prediction.

Event windows (arrays of :data:`~topspark_ros.core.events.EVENT_DTYPE`, cut from a stream by
the windowers of :mod:`topspark_ros.core.events.windows`, by the event stream of
:mod:`topspark_ros.core.events.stream` in the classifier) take the same way through
:meth:`ClassifierSession.classify_events`: they are encoded the way the model was trained on
events (:func:`~topspark_ros.core.events.encode.infer_events`) and give the same predictions.
"""

import copy
import dataclasses
from dataclasses import dataclass
import os
import time
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from topspark_ros.core.checkpoint import load_checkpoint, save_checkpoint
from topspark_ros.core.energy import EnergyModel, OpCounts
from topspark_ros.core.inputs import SampleSeeds
from topspark_ros.core.model import check_timesteps
from topspark_ros.core.preprocess import Preprocessor
from topspark_ros.core.topspark.calibration import evidence_shares

GREY_FOR_COLOUR = ('grey frames for a model trained on colour images (each frame copied to '
                   'its three channels: inputs unlike any it was trained or profiled on)')
"""What :attr:`ClassifierSession.frame_note` says of a mono frame for an RGB model."""


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
        operation counts of this inference (:class:`topspark_ros.core.energy.OpCounts`), plus
        learning from the same input when charged (:meth:`ClassifierSession.charge_learning`).
    latency_ms
        wall-clock time of the frame's decoding (where the caller times it), preprocessing
        and inference (ms).
    energy_j
        estimated compute energy (J) under ``energy_preset``.
    energy_preset
        the hardware preset of ``energy_j``.
    calibrated_score
        the probability that ``class_id`` is right, from the results of the same confidence
        the profile's sweep measured at this ``T``
        (:meth:`~topspark_ros.core.topspark.profile.ProfileEntry.calibrated`); None when that
        is not known: no class, or :meth:`ClassifierSession.calibration_gap` says why.
    learnt
        True when ``ops`` include learning from the same input (charged).
    learning_ms
        wall-clock time of that learning (ms; 0 when not learnt), not in ``latency_ms``.
    uniform
        True for a frame of one value everywhere (a lens cap, a camera blinded by light):
        unlike any the profile was measured on, it has no ``calibrated_score``.

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
    calibrated_score: Optional[float] = None
    learnt: bool = False
    learning_ms: float = 0.0
    uniform: bool = False


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
        a timestep profile whose per-``T`` enhanced parameters are applied (resolved once per
        ``T``, see :meth:`params_for`).

    """

    def __init__(self, model, *, class_names: Sequence[str] = (),
                 crop: str = 'center', invert: bool = False,
                 energy_model: Optional[Union[EnergyModel, str]] = None,
                 profile=None) -> None:
        """Wrap ``model`` (``energy_model``: or a preset's name); nothing is computed yet."""
        self._model = model
        n_classes = model.n_classes
        if class_names and len(class_names) != n_classes:
            raise ValueError(f'{len(class_names)} class names for a model of {n_classes} '
                             'classes')
        self.class_names = tuple(class_names)
        self.preprocessor = Preprocessor(model.input_spec, crop=crop, invert=invert)
        # A preset's name, as the node's energy_preset parameter gives it, is taken too (it
        # failed at the first frame with an AttributeError; a user review).
        self.energy_model = EnergyModel(energy_model) if isinstance(energy_model, str) \
            else energy_model or EnergyModel('cmos45_fp32')
        self.profile = profile
        self.checkpoint_info: dict = {}
        """The loaded checkpoint's ``info`` (:meth:`from_checkpoint`; kept in what it saves)."""
        self.base_model_sha256: Optional[str] = None
        """SHA-256 of the model learning started from (a trained checkpoint's own)."""
        self.notes: List[str] = []
        """What loading found worth a warning (:meth:`from_checkpoint`)."""
        self.source_sha256: Optional[str] = None
        """SHA-256 of the checkpoint the model was loaded from (:meth:`from_checkpoint`)."""
        self._saved: set = set()  # SHA-256 of the checkpoints this session wrote
        self._learnt = False  # the weights changed here: the profile no longer measured them
        self.calibration_off: Optional[str] = None
        """Why no result gets a calibrated score, whatever the profile holds (None: nothing):
        its inputs are prepared unlike the data the profile was measured on (set by whoever
        prepares them: the classifier's pipeline)."""
        self.frame_note: Optional[str] = None
        """How the last frame was unlike the model's training images, or None: grey frames
        for a model trained on colour images (each copied to the three channels, which no
        training image had; its scores then get no calibration). Set by every frame."""

    @classmethod
    def from_checkpoint(cls, path: str, *, device: str = 'cpu', class_names: Sequence[str] = (),
                        **kwargs) -> 'ClassifierSession':
        """
        Load ``path`` on ``device``; class names default to the checkpoint's.

        A ``profile`` given must describe this checkpoint (its ``model_sha256``), or the model
        it learnt on line from (``base_model_sha256``, which :meth:`save` records): the
        enhanced parameters of another model's profile were applied without a word (a user
        review).
        """
        model, meta = load_checkpoint(path, device=device)
        profile = kwargs.get('profile')
        sha = meta['tensors']['sha256']
        info = dict(meta.get('info') or {})
        # Weights learnt on line by a version that recorded no base: their base is not known
        # (taken as themselves, a save recorded them as their own base, and their base's
        # profile was refused from then on; a review).
        base = info.get('base_model_sha256') or (None if _unknown_base(info) else sha)
        note = None
        if profile is not None:
            fits, note = profile_fits(profile.model_sha256, meta, path)
            if not fits:
                raise ValueError(f'the profile describes another model (SHA-256 '
                                 f'{profile.model_sha256[:16]}..., {path} has {sha[:16]}...): '
                                 'sweep this model and give its own profile, or none (the '
                                 "classifier's profile_path: '')")
            # The model whose profile it runs with is the base its saves record: weights
            # learnt from B with their own swept profile, saved over their model_path,
            # recorded B and no longer fitted that profile at the next start (a review).
            if profile.model_sha256 == sha and base != sha and 'online_frames' in info:
                info = rebased_info(info, base)  # (its base known or not: a review)
            base = profile.model_sha256
        names = tuple(class_names) or tuple(info.get('class_names', ()))
        session = cls(model, class_names=names, **kwargs)
        session.checkpoint_info, session.base_model_sha256 = info, base
        session.notes, session.source_sha256 = [note] if note else [], sha
        return session

    @property
    def saved_sha256(self) -> tuple:
        """Return the SHA-256 of the checkpoints this session wrote (it may replace them)."""
        return tuple(self._saved)

    def identity(self) -> Tuple[str, str]:
        """
        Return ``(model_sha256, base_model_sha256)`` as results name the model.

        The checkpoint it was loaded from, and the model it learnt from when that is another
        ('' else); ``('', '')`` when not known (weights learnt by a version that recorded no
        base, given without a profile), which listeners take without checking. A profile
        describes the model when it names either (:func:`profile_fits`).
        """
        source, base = self.source_sha256, self.base_model_sha256
        if source is None or base is None:
            return '', ''
        return source, ('' if base == source else base)

    def warm_up(self, learning: bool = False) -> None:
        """
        Run one blank frame through the model (compiles kernels before real frames come).

        With ``learning`` (on-line learning on), a copy of the model also learns it, so that
        the first real frame's learning does not compile or load the learning kernel (seconds
        the first time, while the frames that arrive meanwhile are dropped).
        """
        blank = np.zeros((1,) + self.model.input_spec.shape, np.uint8)
        # A seed of its own: the model's stream of seeds is left as it was (drawing from it
        # shifted every later frame's draws: 36 of 300 predictions changed; a user review).
        self.model.infer(blank, timesteps=2, seed=0)
        if learning:
            copy.deepcopy(self.model).learn(blank, timesteps=2)

    @property
    def model(self):
        """Return the loaded model, the session's for its life (another: another session)."""
        return self._model

    @property
    def profile(self):
        """Return the timestep profile whose enhanced parameters apply (None: none)."""
        return self._profile

    @profile.setter
    def profile(self, profile) -> None:
        self._profile = profile
        self._params = {}  # T -> enhanced parameters, resolved again from the new profile
        self._bins = {}  # T -> the profile's entry at T, or None

    def calibration_gap(self, timesteps: int, *, early_exit=None,
                        events: bool = False) -> Optional[str]:
        """
        Return why results at ``timesteps`` get no calibrated score, or None when they get one.

        ``early_exit``: the early-exit rule on (an
        :class:`~topspark_ros.core.topspark.early_exit.EarlyExit`; None or False: off);
        ``events``: the inputs are event windows. A calibrated score needs a profile that
        measured the results by confidence at exactly that T with labels, the weights it
        measured (none learnt on line since), inputs of the kind (frames or events) and
        preparation it measured (:attr:`calibration_off`) and, with early exit on, that rule's
        results by confidence (the profile's early-exit bins, measured with the same margin
        and floor).
        """
        profile = self._profile
        if profile is None:
            return 'no profile'
        if self.calibration_off is not None:
            return self.calibration_off
        if self.frame_note is not None and not events:
            return self.frame_note
        if profile.agreement_based:
            return 'a label-free profile (its bins would count agreement, not right answers)'
        if self._learnt or (self.source_sha256 is not None
                            and self.source_sha256 != profile.model_sha256):
            return 'weights learnt on line since the profile was measured'
        if events != (self.model.event_encoding is not None):
            return ('a model trained on frames classifying events' if events
                    else 'an event model classifying frames')
        timesteps = int(timesteps)
        if timesteps not in self._bins:
            self._bins[timesteps] = next(
                (e for e in profile.entries if e.timesteps == timesteps), None)
        entry = self._bins[timesteps]
        if entry is None:
            return f'T={timesteps} is not in the profile'
        if early_exit:
            return _early_exit_gap(entry, early_exit)
        if entry.confidence_bins is None:
            return (f'the profile has no results by confidence at T={timesteps} (`topspark '
                    'sweep --confidence-only` adds them)')
        return None

    def _calibrated(self, scores: np.ndarray, timesteps: int, early_exit,
                    events: bool) -> Optional[float]:
        """
        Return the calibrated score of a result with ``scores`` at ``timesteps``, or None.

        ``early_exit``: the rule the result ran with (None: none).
        """
        if self.calibration_gap(timesteps, early_exit=early_exit, events=events) is not None:
            return None
        shares = evidence_shares(scores)  # the model's float64 scores: the sweep's bins
        return self._bins[int(timesteps)].calibrated(float(shares.max()),
                                                     early_exit=bool(early_exit))

    def params_for(self, timesteps: int):
        """
        Return the enhanced parameters for ``timesteps`` (None: the model's own).

        Resolved from the profile once per ``T`` and kept until the profile changes, so an
        input pays a dictionary look-up for them.
        """
        timesteps = int(timesteps)
        if timesteps not in self._params:
            values = None if self._profile is None else self._profile.params_for(timesteps)
            self._params[timesteps] = None if values is None \
                else self.model.params_for_values(values)
        return self._params[timesteps]

    def classify(self, frame: np.ndarray, layout: str, timesteps: int, *,
                 early_exit=None, since: Optional[float] = None,
                 seed: Optional[SampleSeeds] = None) -> Prediction:
        """
        Classify one camera frame for ``timesteps`` steps (``early_exit``: optional rule).

        ``since``: the ``time.perf_counter()`` at which the frame's work began (its decoding
        from a message), counted in ``latency_ms``; default: now. ``seed``: the frame's own
        seed of the input encoding (:meth:`SampleSeeds.of_stamp
        <topspark_ros.core.inputs.SampleSeeds.of_stamp>`); default: the model's stream, so
        the result depends on how many inputs the model drew before.
        """
        check_timesteps(timesteps)
        _check_rule(early_exit)
        start = time.perf_counter() if since is None else since
        x = self._prepare(frame, layout)[None]
        result = self.model.infer(x, timesteps=timesteps, params=self.params_for(timesteps),
                                  early_exit=early_exit, seed=seed)
        latency_ms = (time.perf_counter() - start) * 1e3
        return self._prediction(result, 0, timesteps, latency_ms, early_exit,
                                uniform=bool(x.min() == x.max()))

    def classify_frames(self, frames: Sequence[np.ndarray], layout: str, timesteps: int, *,
                        early_exit=None, batch_size: int = 256) -> List[Prediction]:
        """
        Classify camera frames of one ``layout`` as batches; return one prediction per frame.

        What :meth:`classify` gives for each frame, run ``batch_size`` at a time through the
        model (a loop of :meth:`classify` over a folder paid the per-call cost every frame);
        each prediction's ``latency_ms`` is its batch's wall-clock time (preparing plus
        inference) divided by the frames in it.
        """
        check_timesteps(timesteps)
        _check_rule(early_exit)
        if isinstance(frames, np.ndarray) and (
                frames.ndim == (2 if layout == 'mono' else 3)
                or (layout == 'mono' and frames.ndim == 3 and frames.shape[-1] == 1)):
            raise ValueError('frames must be a sequence of frames (one frame: classify(), or '
                             f'[frame]); got one {layout} frame of shape {frames.shape}')
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f'batch_size must be an integer >= 1, got {batch_size!r}')
        if not isinstance(frames, (np.ndarray, list, tuple)):
            frames = list(frames)  # a generator, a map of decoded files
        predictions, params = [], self.params_for(timesteps)
        for first in range(0, len(frames), int(batch_size)):
            start = time.perf_counter()
            part = frames[first:first + int(batch_size)]
            x = np.stack([self._prepare(frame, layout) for frame in part])
            result = self.model.infer(x, timesteps=timesteps, params=params,
                                      early_exit=early_exit)
            latency_ms = (time.perf_counter() - start) * 1e3 / len(part)
            flat = x.reshape(len(part), -1)
            uniform = flat.min(axis=1) == flat.max(axis=1)
            predictions += [self._prediction(result, i, timesteps, latency_ms, early_exit,
                                             uniform=bool(uniform[i]))
                            for i in range(len(part))]
        return predictions

    def _prepare(self, frame: np.ndarray, layout: str) -> np.ndarray:
        """Return the model input of ``frame`` (:attr:`preprocessor`); set :attr:`frame_note`."""
        self.frame_note = GREY_FOR_COLOUR if layout == 'mono' \
            and self.preprocessor.spec.channels == 3 else None
        return self.preprocessor(frame, layout)

    def check_events(self) -> None:
        """
        Raise a ValueError saying why the model cannot classify events, if it cannot.

        Models trained on events, and frames-trained STDP networks (an untrained but defined
        use, see ``model.default_event_encoding()``) can; a frames-trained converted network
        cannot (:class:`~topspark_ros.core.events.encode.EventModelError`).
        """
        self.model.default_event_encoding()

    def classify_events(self, windows: Sequence[np.ndarray], sensor_size: Tuple[int, int],
                        timesteps: int, *, roi: Optional[tuple] = None,
                        early_exit=None) -> List[Prediction]:
        """
        Classify event windows for ``timesteps`` steps each; return one prediction per window.

        Parameters
        ----------
        windows
            one :data:`~topspark_ros.core.events.EVENT_DTYPE` array per input (``t`` in
            microseconds); each is cut into ``timesteps`` time bins, one per step.
        sensor_size
            ``(width, height)`` of the sensor the events come from (pixels).
        timesteps
            ``T`` (>= 1); the enhanced parameters of the profile for ``T`` apply.
        roi
            ``(x0, y0, w, h)`` region of the sensor (pixels) mapped onto the model input
            (None: the model's training region, else the centred crop).
        early_exit
            optional early-exit rule, as for frames.

        The windows run as one batch; each prediction's ``latency_ms`` is the batch's
        wall-clock time (encoding plus inference) divided by the number of windows.

        """
        check_timesteps(timesteps)
        _check_rule(early_exit)
        from topspark_ros.core.events.encode import infer_events
        windows = _window_list(windows)
        start = time.perf_counter()
        result = infer_events(self.model, windows, sensor_size=tuple(sensor_size),
                              timesteps=int(timesteps), roi=roi,
                              params=self.params_for(timesteps), early_exit=early_exit)
        latency_ms = (time.perf_counter() - start) * 1e3 / max(len(windows), 1)
        return [self._prediction(result, i, timesteps, latency_ms, early_exit, events=True)
                for i in range(len(windows))]

    def learn_events(self, windows: Sequence[np.ndarray], sensor_size: Tuple[int, int],
                     timesteps: int, *, roi: Optional[tuple] = None) -> List[OpCounts]:
        """
        Adapt the model to unlabelled event windows with on-line STDP at ``timesteps``.

        Returns the operation counts of learning each window (see :meth:`learn`).
        """
        check_timesteps(timesteps)
        from topspark_ros.core.events.encode import EventModel
        windows = _window_list(windows)
        self._learnt = self._learnt or bool(windows)
        result = EventModel(self.model, tuple(sensor_size), roi=roi).learn(
            windows, timesteps=int(timesteps), params=self.params_for(timesteps))
        return [result.ops.energy_ops(i) for i in range(len(windows))]

    def warm_up_events(self, sensor_size: Tuple[int, int], learning: bool = False) -> None:
        """
        Run one small synthetic event window through the decoders and the model.

        Compiles (or loads from numba's cache) the kernels of every packet decoder, of the
        region of interest and of the model, so that the first packets of a stream are not
        held up (a subscriber's queue would overflow meanwhile). Each decoder also reads the
        packet without its first word: evt3 then meets events whose row or time it does not
        know, as on joining a running camera or after a lost packet, which only its exact
        kernel handles. Compiling that
        kernel at the first such packet took 1.4 s here, holding the reader (and the GIL)
        while a driver's 1 ms packets overflowed the subscription's queue; numba's cache
        saves it only where it can write, so read-only installs paid it at every start.
        With ``learning``, a copy of the model also learns the window (see :meth:`warm_up`).
        """
        from topspark_ros.core.events import empty_events
        from topspark_ros.core.events.codecs import make_decoder, make_encoder, SUPPORTED_ENCODINGS
        from topspark_ros.core.events.stream import events_in_region
        width, height = (int(v) for v in sensor_size)
        window = empty_events(16)
        window['x'] = np.arange(16) % max(width, 1)
        window['y'] = (np.arange(16) * 7) % max(height, 1)
        window['p'] = np.arange(16) % 2
        window['t'] = np.arange(16) * 100
        for encoding in SUPPORTED_ENCODINGS:
            packet = make_encoder(encoding, width, height).encode(window)
            # read-only (bytes) and writable (a message's array) buffers compile apart
            for data in (packet.data, bytearray(packet.data)):
                decoder = make_decoder(encoding, width, height)
                decoder.decode(data, seq=0, time_base=packet.time_base)
                decoder.reset()
                decoder.decode(data[decoder.word_bytes:], seq=0, time_base=packet.time_base)
        events_in_region(window, (0, 0, 1, 1))  # (an event stream's region of interest)
        self.classify_events([window], (width, height), 2)
        if learning:
            from topspark_ros.core.events.encode import EventModel
            EventModel(copy.deepcopy(self.model), (width, height)).learn([window], timesteps=2)

    def _prediction(self, result, index: int, timesteps: int, latency_ms: float,
                    early_exit, events: bool = False, uniform: bool = False) -> Prediction:
        """
        Return the :class:`Prediction` of row ``index`` of a result.

        ``early_exit``: the rule it ran with; ``events``: an event window's; ``uniform``: a
        frame of one value everywhere (a lens cap, a camera blinded by light), unlike any
        the profile was measured on: no calibrated score (a review: an all-white frame was
        given 0.99 by the converted model, 0.83 by the STDP one).
        """
        scores = np.asarray(result.scores[index], np.float32)
        total = float(scores.sum())
        if total > 0.0:
            class_id = int(np.argmax(scores))
            confidence = float(scores[class_id]) / total
        else:
            class_id, confidence = -1, 0.0
        ops = result.energy_ops(index)
        used = int(result.timesteps_used[index])
        return Prediction(
            class_id=class_id,
            class_name=self.class_names[class_id] if 0 <= class_id < len(self.class_names)
            else '',
            confidence=confidence, scores=scores, timesteps_used=used,
            timestep_budget=int(timesteps), early_exit=used < timesteps,
            spike_count=int(result.spike_count[index]), ops=ops, latency_ms=latency_ms,
            energy_j=self.energy_model.estimate(ops).compute_j,
            energy_preset=self.energy_model.preset.name,
            calibrated_score=None if class_id < 0 or uniform else self._calibrated(
                result.scores[index], timesteps, early_exit, events), uniform=uniform)

    def learn(self, frame: np.ndarray, layout: str, timesteps: int, *,
              seed: Optional[SampleSeeds] = None) -> OpCounts:
        """
        Adapt the model to one unlabelled frame with on-line STDP at ``timesteps``.

        Returns the operation counts of the learning presentation: its own simulation (input
        and inhibition accumulates, neuron updates) and the weight updates STDP applied
        (``plasticity_updates``, see :class:`~topspark_ros.core.stdp.EngineCounts`).
        ``seed``: as for :meth:`classify`.
        """
        x = self._prepare(frame, layout)[None]
        self._learnt = True
        result = self.model.learn(x, timesteps=timesteps, params=self.params_for(timesteps),
                                  seed=seed)
        return result.ops.energy_ops(0)

    def charge_learning(self, prediction: Prediction, learn_ops: OpCounts,
                        learning_ms: float = 0.0) -> Prediction:
        """
        Return ``prediction`` with the cost of learning from the same input added.

        Its ``ops`` become inference + learning counts and ``energy_j`` their price under
        the session's preset, so a published result accounts for on-line training too;
        ``learnt`` is set (a learning that changed no weight counts no plasticity update);
        ``learning_ms``: the learning's wall-clock time (ms).
        """
        ops = prediction.ops + learn_ops
        return dataclasses.replace(prediction, ops=ops, learnt=True,
                                   learning_ms=float(learning_ms),
                                   energy_j=self.energy_model.estimate(ops).compute_j)

    def save(self, path: str, info: Optional[dict] = None) -> str:
        """
        Save the (learnt) model atomically to ``path``; return the metadata path.

        The loaded checkpoint's ``info`` is kept (data set, T, class names), updated with
        ``info``, and ``base_model_sha256`` records the model learning started from. Weights
        that learnt (``online_frames`` above 0) keep their base's measured figures under
        ``base_info`` only (:func:`learnt_info`). A
        checkpoint at ``path`` learnt from another model (or of another family) is not
        replaced (ValueError): a reloaded or another model saved over learnt weights. One
        learnt from the same model by an earlier run is moved aside
        (:func:`keep_earlier_learning`).
        """
        info = {**self.checkpoint_info, **dict(info or {})}
        info.setdefault('class_names', list(self.class_names))
        if int(info.get('online_frames') or 0) > 0:
            info = learnt_info(info)
        if self.base_model_sha256:
            info['base_model_sha256'] = self.base_model_sha256
        if self.source_sha256 is not None:  # loaded from a checkpoint: an earlier run's
            # learning of this base is moved aside, not replaced (keep_earlier_learning)
            keep_earlier_learning(path, self.base_model_sha256, self.source_sha256,
                                  self.saved_sha256)
        written = save_checkpoint(os.fspath(path), self.model, info=info)
        from topspark_ros.core.checkpoint import read_metadata
        # Its own saves it may replace (learnt weights of an unknown base refused every save
        # after the first, the file now being another than the one loaded; a review).
        self._saved.add(read_metadata(written)[0]['tensors']['sha256'])
        return str(written)


def rebased_info(info: dict, earlier_base: Optional[str]) -> dict:
    """
    Return the ``info`` of learnt weights that become the base of the learning that follows.

    Learnt weights run with a profile swept of them record themselves as the base of what they
    learn next: their ``online_frames`` then count from them, and what they were learnt from
    (its SHA-256, '' where not known, the inputs learnt, its ``base_info``) goes first into
    ``earlier_bases``.
    Their saves recorded the new base beside the count and figures of the first (12 inputs
    "since" a base that had learnt 9 of them, its accuracy the first base's; a review).
    """
    info = dict(info)
    earlier = {'base_model_sha256': earlier_base or '',  # ('': not known, an older version's)
               'online_frames': int(info.get('online_frames') or 0)}
    if 'base_info' in info:
        earlier['base_info'] = info.pop('base_info')
    info['earlier_bases'] = [earlier, *list(info.get('earlier_bases') or [])]
    info['online_frames'] = 0
    return info


BASE_FIGURES = ('accuracy', 'n_eval', 'eval_split', 'command')
"""A checkpoint's ``info`` keys that describe how it was made and measured, not learnt weights."""


def learnt_info(info: dict) -> dict:
    """
    Return a checkpoint's ``info`` for weights learnt on line from it.

    Its :data:`BASE_FIGURES` move under ``base_info``: weights learnt on line were saved with
    the base's ``accuracy`` and the ``command`` that trained the base, as if measured of them
    (a review). Saved again, they keep the ``base_info`` of their first save.
    """
    info = dict(info)
    moved = {key: info.pop(key) for key in BASE_FIGURES if key in info}
    if moved:
        info['base_info'] = {**moved, **dict(info.get('base_info') or {})}
    return info


def profile_fits(profile_sha256: str, meta: dict, path) -> Tuple[bool, Optional[str]]:
    """
    Return whether a profile of the model ``profile_sha256`` fits a checkpoint, and a note.

    ``meta``: the checkpoint's metadata. A profile fits its own model and the checkpoints
    learnt on line from it (``base_model_sha256``). A checkpoint learnt on line by a version
    that recorded no base (``online_frames`` without ``base_model_sha256``, before 3bfcb50)
    cannot be checked: the profile is taken as given, as it was then, with a note saying so
    (it was refused, and the robot's classifier failed to configure after an upgrade; a
    review).
    """
    info = meta.get('info') or {}
    if profile_sha256 in (meta['tensors']['sha256'], info.get('base_model_sha256')):
        return True, None
    if _unknown_base(info):
        return True, (f'{path} was learnt on line by an earlier version, which recorded no '
                      'base model: the profile cannot be checked against it and is taken as '
                      "its base model's (saved learning records it)")
    return False, None


def _unknown_base(info: dict) -> bool:
    """Return whether a checkpoint's ``info`` is of weights learnt on line from an unknown base."""
    return 'online_frames' in info and not info.get('base_model_sha256')


def keep_earlier_learning(path, base: Optional[str], source: Optional[str] = None,
                          saved: tuple = (), *, move: bool = True) -> Optional[str]:
    """
    Keep learning of this base saved by an earlier run at ``path``; return a note, or None.

    A run learning into ``path`` replaced what an earlier run of the same base had learnt
    there at its first save: a restart of the robot, a cleanup and configure, a second
    classifier after the first, all lost the learning before them without a word (a review).
    Checkpoints the model was loaded from or saved (``source`` and ``saved``, their SHA-256)
    and ones that hold no learning (no ``online_frames``) are left to be replaced (a trained
    model is not: :func:`check_same_base`); learning of another model,
    or of an unknown one, raises ValueError (:func:`check_same_base`), so that configure
    says so rather than the first save. With ``move`` the earlier learning is renamed
    ``<name>.earlier-<16 hex of its tensors>.json`` beside it (its tensor file stays, named by
    it; never over a file there: the same learning kept already is left as it is); without,
    only the note says what the first save will do.
    """
    from topspark_ros.core.checkpoint import metadata_path, read_metadata

    check_same_base(path, base, source, saved)
    own = (source, *saved)
    target = metadata_path(os.fspath(path))
    if not os.path.lexists(target):
        return None
    meta, _ = read_metadata(target)
    frames = int((meta.get('info') or {}).get('online_frames', 0) or 0)
    if meta['tensors']['sha256'] in own or frames <= 0:
        return None
    kept = target.with_name(f"{target.stem}.earlier-{meta['tensors']['sha256'][:16]}.json")
    if move:
        try:  # a link never replaces a file (a rename would, racing another move)
            os.link(target, kept)
        except FileExistsError:  # the same learning kept already (its name is its tensors')
            pass
        os.unlink(target)
    when = 'kept' if move else "to be kept at this run's first save"
    return (f'{target} holds {frames} inputs learnt on line from this model by an earlier run: '
            f'{when} as {kept} (this run saves its own learning at {target}; to go on from '
            f'those inputs instead, give {kept} as both model_path and save_path)')


def check_same_base(path, base: Optional[str], source: Optional[str] = None,
                    saved: tuple = ()) -> None:
    """
    Refuse (ValueError) to replace a checkpoint at ``path`` learnt from another model.

    A trained model (no ``online_frames``: not learnt on line) is never replaced, the one the
    model was loaded from included, but for the checkpoints it saved itself (``saved``, their
    SHA-256). ``base``: the model this one learnt from (None: not known, nothing is replaced
    but its own); ``source``: the SHA-256 of the checkpoint the model was loaded from, which
    it replaces when learnt on line, as it does those it saved.
    """
    from topspark_ros.core.checkpoint import CheckpointError, metadata_path, read_metadata

    target = metadata_path(os.fspath(path))
    if not os.path.lexists(target):
        return
    try:  # the metadata only: this runs at every periodic save
        meta, _ = read_metadata(target)
    except CheckpointError as exc:
        raise ValueError(f'{target} exists and is not a readable checkpoint ({exc}); not '
                         'replacing it: give another save_path') from None
    info = meta.get('info') or {}
    if meta['tensors']['sha256'] in saved:  # (a session's second save over its first; a
        return  # review of the rule below)
    if 'online_frames' not in info:  # (model_path and save_path both the trained model: its
        # first save replaced it and deleted its tensors, no backup; a review)
        raise ValueError(f'{target} is a trained model, not weights learnt on line: learning '
                         'does not replace it. Give save_path another file (left empty: '
                         '$ROS_HOME/topspark_ros/<model>_online.json), and that file as '
                         'model_path and save_path to go on learning from it next time')
    if meta['tensors']['sha256'] == source:  # loaded from this model
        return
    if _unknown_base(info):
        raise ValueError(f'{target} holds weights learnt on line by an earlier version, which '
                         'recorded no base model; not replacing them: to go on learning from '
                         'them give that file as model_path, else another save_path')
    if base is None:
        raise ValueError(f'{target} exists, and the model in hand was learnt from a model '
                         'that is not known; not replacing it: give another save_path')
    there = info.get('base_model_sha256') or meta['tensors']['sha256']
    if there != base:
        raise ValueError(f'{target} holds weights learnt from another model ({there[:16]}..., '
                         f'this one learnt from {base[:16]}...); not replacing it: give '
                         'another save_path')


def _window_list(windows) -> list:
    """
    Return ``windows`` (a sequence of event arrays) as a list; refuse one bare window.

    An ``EVENT_DTYPE`` array is one window, and ``list()`` of it made one window of every
    event: 3 000 inferences, every one 'no class' (a user review).
    """
    if isinstance(windows, np.ndarray) and windows.dtype.names is not None:
        raise ValueError('windows must be a sequence of event arrays; one window: pass '
                         '[window]')
    return list(windows)


def _early_exit_gap(entry, early_exit) -> Optional[str]:
    """Return why results of the rule ``early_exit`` at ``entry``'s T get no calibrated score."""
    t = entry.timesteps
    if entry.early_exit_confidence_bins is None:
        return (f'early exit on, and the profile has no results of early exit by confidence at '
                f'T={t} (`topspark sweep --confidence-only` adds them)')
    margin, floor = entry.early_exit_rule()
    if not hasattr(early_exit, 'margin'):
        return 'early exit on, with a rule not known here'
    if (float(early_exit.margin), int(early_exit.min_steps)) != (margin, floor):
        return (f'early exit with margin {float(early_exit.margin):g} from step '
                f'{int(early_exit.min_steps)}; the profile measured margin {margin:g} from step '
                f'{floor} (early_exit_margin, early_exit_min_steps)')
    return None


def _check_rule(early_exit) -> None:
    """Refuse an ``early_exit`` that is no rule (True failed deep in the network; a review)."""
    if early_exit is not None and not hasattr(early_exit, 'margin'):
        raise ValueError('early_exit must be an EarlyExit rule (topspark_ros.core.topspark.'
                         f'early_exit.EarlyExit) or None, got {early_exit!r}')

r"""
From event windows to spiking-model input: region of interest, downscale, encoders.

The windows come from the windowers of :mod:`topspark_ros.core.events.windows` (live streams)
or from an event data set (one window per sample).

Geometry (:class:`EventGeometry`)
    An event at sensor pixel ``(x, y)`` is kept when it lies in the region of interest
    ``roi = (x0, y0, w, h)`` (sensor pixels; default: the largest centred window of the model
    input's aspect ratio, the whole sensor for a square sensor and model) and lands in model
    pixel ``(x', y')`` by integer nearest-bin downscaling (exact, no rounding drift):

    .. code-block:: text

        x' = (x - x0) * W // w        y' = (y - y0) * H // h

    for a model input of ``H x W`` pixels. A 34 x 34 N-MNIST sensor maps to 28 x 28 this way
    (some model pixels gather two sensor columns, most one); a 640 x 480 camera is cropped to
    its centred 480 x 480 square first.

Time bins
    A window is split into ``T`` equal bins over its own span: with ``t0`` the first and
    ``t1`` the last event time of the window, event ``t`` is in bin
    ``(t - t0) * T // (t1 - t0 + 1)`` (so ``T`` bins of ``(t1 - t0 + 1) / T`` us each; every
    bin index lies in ``[0, T)``). Training samples and live windows are binned the same way,
    so a model sees the same input at a given ``T`` whatever the absolute times are.

Spike trains for the STDP network (:func:`events_to_spike_trains`)
    Bin ``k`` of a window is step ``k``; input ``i`` spikes at step ``k`` when at least one
    event of the bin lands on it (each input at most once per step, as
    :class:`~topspark_ros.core.inputs.SpikeEvents` requires). Polarity mapping
    (``polarity``):

    * ``'merge'`` (default; what the shipped event STDP model uses): both polarities drive the
      same input, ``i = y' W + x'``; ``H W`` inputs (784 for 28 x 28), the same input layer as
      the frame models, and the Diehl & Cook weight normalisation (column sum 78.4 over 784
      inputs) keeps its meaning;
    * ``'split'``: OFF events drive inputs ``[0, H W)`` and ON events ``[H W, 2 H W)``,
      ``i = p H W + y' W + x'``; ``2 H W`` inputs;
    * ``'on'`` / ``'off'``: only that polarity, ``H W`` inputs.

Per-bin frames for the converted network (:func:`events_to_frames`)
    ``float32 [B, T, 2, H, W]`` (the model input wraps them:
    :class:`~topspark_ros.core.inputs.EventFrames`): the number of events of each polarity
    (channel 0 = OFF, channel 1 = ON, i.e. indexed by ``p``) that land on each model pixel in
    each bin. The converted network (:mod:`topspark_ros.core.converted`) takes bin ``k`` at step
    ``k``; its ANN is trained on the sum over the bins (``T = 1``).

Models (:func:`infer_events`, :func:`model_takes_events`)
    A model trained on events carries an :class:`EventEncoding` (saved in its checkpoint:
    input kind, the sensor size it was trained on, region of interest, model input size,
    polarity mapping). :func:`infer_events` encodes live windows the way
    ``model.default_event_encoding()`` says: exactly as in training for an event model; the
    family decides for a frames-trained one (a frames-trained STDP model takes ``'merge'``
    spike trains at its input size, a documented but untrained use; a frames-trained converted
    network, analog grey or RGB input, refuses events with :class:`EventModelError`).
"""

from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from topspark_ros.core.events import as_events, empty_events, EVENT_DTYPE, EventEncodingError
from topspark_ros.core.fields import from_dict
from topspark_ros.core.inputs import EventFrames, SpikeEvents
from topspark_ros.core.model import check_timesteps

POLARITY_MAPPINGS = ('merge', 'split', 'on', 'off')
"""How the two polarities map to STDP inputs (see the module docstring)."""

INPUT_KINDS = ('spike_trains', 'frames')
"""What an event model takes: STDP spike trains or converted-network per-bin frames."""


class EventModelError(ValueError):
    """A model that cannot take events (a frames-trained converted network)."""


# ------------------------------------------------------------------------------ geometry


def _pair(value, name: str) -> Tuple[int, int]:
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise EventEncodingError(f'{name} must be two integers, got {value!r}') from None
    if a < 1 or b < 1:
        raise EventEncodingError(f'{name} must be positive, got {value!r}')
    return a, b


def centred_roi(sensor_size: Tuple[int, int], input_size: Tuple[int, int]) -> tuple:
    """
    Return the largest centred ``(x0, y0, w, h)`` on the sensor with the input's aspect ratio.

    ``sensor_size`` is ``(width, height)``, ``input_size`` ``(height, width)`` (a model's).
    """
    sensor_w, sensor_h = _pair(sensor_size, 'sensor_size')
    in_h, in_w = _pair(input_size, 'input size')
    aspect = in_w / in_h
    if sensor_w / sensor_h > aspect:
        w = max(1, round(sensor_h * aspect))
        return ((sensor_w - w) // 2, 0, w, sensor_h)
    h = max(1, round(sensor_w / aspect))
    return (0, (sensor_h - h) // 2, sensor_w, h)


@dataclass(frozen=True)
class EventGeometry:
    """
    Where sensor events land on the model input (region of interest and downscale).

    Attributes
    ----------
    sensor_width, sensor_height
        sensor size in pixels.
    height, width
        model input size in pixels.
    roi
        ``(x0, y0, w, h)`` on the sensor (pixels) or None: the centred crop of
        :func:`centred_roi`.

    """

    sensor_width: int
    sensor_height: int
    height: int = 28
    width: int = 28
    roi: Optional[Tuple[int, int, int, int]] = None

    def __post_init__(self) -> None:
        """Check sizes and the region; raise :class:`EventEncodingError` when invalid."""
        _pair((self.sensor_width, self.sensor_height), 'sensor_size')
        _pair((self.height, self.width), 'input size')
        roi = self.roi
        if roi is None:
            roi = centred_roi((self.sensor_width, self.sensor_height), (self.height, self.width))
        try:
            x0, y0, w, h = (int(v) for v in roi)
        except (TypeError, ValueError):
            raise EventEncodingError(f'roi must be (x0, y0, width, height), got {roi!r}') \
                from None
        if x0 < 0 or y0 < 0 or w < 1 or h < 1 or x0 + w > self.sensor_width \
                or y0 + h > self.sensor_height:
            raise EventEncodingError(
                f'roi {(x0, y0, w, h)} does not fit the {self.sensor_width}x'
                f'{self.sensor_height} sensor (x0, y0 >= 0; x0 + width <= sensor width; '
                'y0 + height <= sensor height)')
        object.__setattr__(self, 'roi', (x0, y0, w, h))

    def locate(self, events: np.ndarray) -> tuple:
        """
        Return ``(keep bool [E], x' int64 [E_kept], y' int64 [E_kept])`` for ``events``.

        Events outside the region of interest (or outside the sensor) are not kept.
        """
        x0, y0, w, h = self.roi
        x = events['x'].astype(np.int64) - x0
        y = events['y'].astype(np.int64) - y0
        keep = (x >= 0) & (x < w) & (y >= 0) & (y < h)
        return keep, x[keep] * self.width // w, y[keep] * self.height // h


# ---------------------------------------------------------------------------- encodings


@dataclass(frozen=True)
class EventEncoding:
    """
    How a model's events were encoded in training (saved in its checkpoint).

    Attributes
    ----------
    kind
        ``'spike_trains'`` (STDP network) or ``'frames'`` (converted network).
    sensor_width, sensor_height
        the sensor size the training data had (pixels).
    height, width
        model input size (pixels).
    polarity
        polarity mapping of spike trains (:data:`POLARITY_MAPPINGS`); frames always
        have two channels (OFF, ON) and record ``'channels'``.
    roi
        region of interest used in training, ``(x0, y0, w, h)`` on the training sensor
        (None: the centred crop).

    """

    kind: str
    sensor_width: int
    sensor_height: int
    height: int = 28
    width: int = 28
    polarity: str = 'merge'
    roi: Optional[Tuple[int, int, int, int]] = None

    def __post_init__(self) -> None:
        """Check values; raise :class:`EventEncodingError` when invalid."""
        if self.kind not in INPUT_KINDS:
            raise EventEncodingError(f'kind must be one of {INPUT_KINDS}, got {self.kind!r}')
        allowed = ('channels',) if self.kind == 'frames' else POLARITY_MAPPINGS
        if self.polarity not in allowed:
            raise EventEncodingError(f'polarity of {self.kind} must be one of {allowed}, '
                                     f'got {self.polarity!r}')
        if self.roi is not None:
            object.__setattr__(self, 'roi', tuple(int(v) for v in self.roi))
        self.geometry()

    def geometry(self, sensor_size: Optional[Tuple[int, int]] = None,
                 roi=None) -> EventGeometry:
        """
        Return the geometry for a live sensor of ``sensor_size = (width, height)``.

        ``roi`` overrides the training region; without one, the training region is kept
        when the sensor is the training sensor, else the centred crop of the live sensor.
        """
        if sensor_size is None:
            sensor_size = (self.sensor_width, self.sensor_height)
        sensor_w, sensor_h = _pair(sensor_size, 'sensor_size')
        if roi is None and (sensor_w, sensor_h) == (self.sensor_width, self.sensor_height):
            roi = self.roi
        return EventGeometry(sensor_w, sensor_h, self.height, self.width, roi)

    @property
    def n_inputs(self) -> int:
        """Return the number of STDP inputs (spike trains) or frame values per bin."""
        if self.kind == 'frames' or self.polarity == 'split':
            return 2 * self.height * self.width
        return self.height * self.width

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        values = asdict(self)
        values['roi'] = None if self.roi is None else list(self.roi)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> 'EventEncoding':
        """Build from :meth:`to_dict` output; unknown keys raise :class:`EventEncodingError`."""
        return from_dict(cls, values, error=EventEncodingError)


def _batch_arrays(windows: Sequence[np.ndarray]) -> tuple:
    """Return ``(events, sample int64 [E])`` of a batch of windows, concatenated."""
    if isinstance(windows, np.ndarray) and windows.dtype == EVENT_DTYPE:
        raise EventEncodingError('give a sequence of windows (one event array per sample), '
                                 'not one event array; wrap a single window in a list')
    arrays = [as_events(w, f'window {i}') for i, w in enumerate(windows)]
    if not arrays:
        return empty_events(0), np.zeros(0, np.int64)
    lengths = np.array([len(a) for a in arrays], np.int64)
    return (np.concatenate(arrays),
            np.repeat(np.arange(len(arrays), dtype=np.int64), lengths))


def time_bins(events: np.ndarray, sample: np.ndarray, n_samples: int,
              timesteps: int) -> np.ndarray:
    """
    Return the bin ``int64 [E]`` of every event: ``(t - t0) * T // (t1 - t0 + 1)`` per sample.

    ``t0`` / ``t1`` are the first / last event time of each sample (see the module doc).
    """
    if len(events) == 0:
        return np.zeros(0, np.int64)
    t = events['t'].astype(np.int64)
    t0 = np.full(n_samples, np.iinfo(np.int64).max)
    t1 = np.full(n_samples, np.iinfo(np.int64).min)
    np.minimum.at(t0, sample, t)
    np.maximum.at(t1, sample, t)
    rel = t - t0[sample]
    span = (t1 - t0 + 1)[sample]
    # (rel * T) // span without overflow for long windows: rel < span, so split the product.
    q, r = np.divmod(rel, span)
    return q * timesteps + (r * timesteps) // span


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """Return the sorted distinct values (a sort; numpy's hash-based unique is slower here)."""
    values = np.sort(values)
    if values.size < 2:
        return values
    return values[np.concatenate([[True], values[1:] != values[:-1]])]


def events_to_spike_trains(windows: Sequence[np.ndarray], *, sensor_size: Tuple[int, int],
                           timesteps: int, input_size: Tuple[int, int] = (28, 28),
                           roi=None, polarity: str = 'merge') -> SpikeEvents:
    """
    Encode a batch of windows as STDP input spike trains of ``timesteps`` steps.

    Parameters
    ----------
    windows
        one event array (:data:`EVENT_DTYPE`) per sample; an empty window gives no spikes.
    sensor_size
        ``(width, height)`` of the sensor in pixels.
    timesteps
        ``T``: bins per window, one per step.
    input_size
        ``(height, width)`` of the model input.
    roi
        ``(x0, y0, w, h)`` on the sensor (default: centred crop).
    polarity
        ``'merge'``, ``'split'``, ``'on'`` or ``'off'`` (see the module docstring).

    Returns
    -------
        :class:`SpikeEvents` with ``B = len(windows)``, ``T = timesteps`` and ``H W`` inputs
        (``2 H W`` for ``'split'``), each input at most once per step.

    """
    steps = check_timesteps(timesteps)
    if polarity not in POLARITY_MAPPINGS:
        raise EventEncodingError(f'polarity must be one of {POLARITY_MAPPINGS}, '
                                 f'got {polarity!r}')
    height, width = _pair(input_size, 'input_size')
    geometry = EventGeometry(*_pair(sensor_size, 'sensor_size'), height, width, roi)
    events, sample = _batch_arrays(windows)
    n_samples = len(windows)
    n_pixels = height * width
    n_inputs = 2 * n_pixels if polarity == 'split' else n_pixels
    if polarity in ('on', 'off'):
        chosen = events['p'] == (1 if polarity == 'on' else 0)
        events, sample = events[chosen], sample[chosen]
    keep, x, y = geometry.locate(events)
    # Bins over the whole window (events outside the region still define its span).
    bins = time_bins(events, sample, n_samples, steps)[keep]
    sample = sample[keep]
    pixel = y * width + x
    if polarity == 'split':
        pixel = pixel + (events['p'][keep].astype(np.int64) != 0) * n_pixels
    row = sample * steps + bins
    keys = _sorted_unique(row * n_inputs + pixel)
    rows = keys // n_inputs
    per_row = np.bincount(rows, minlength=n_samples * steps)
    flat_ptr = np.concatenate([[0], np.cumsum(per_row)]).astype(np.int64)
    row_ptr = np.empty((n_samples, steps + 1), np.int64)
    for b in range(n_samples):
        row_ptr[b] = flat_ptr[b * steps:(b + 1) * steps + 1]
    return SpikeEvents(pixels=(keys % n_inputs).astype(np.int32), row_ptr=row_ptr,
                       n_inputs=n_inputs)


def events_to_frames(windows: Sequence[np.ndarray], *, sensor_size: Tuple[int, int],
                     timesteps: int, input_size: Tuple[int, int] = (28, 28),
                     roi=None) -> np.ndarray:
    """
    Encode a batch of windows as per-bin polarity count frames ``float32 [B, T, 2, H, W]``.

    ``frames[b, k, p, y', x']`` is the number of events of polarity ``p`` (0 = OFF, 1 = ON)
    of window ``b`` in bin ``k`` landing on model pixel ``(x', y')``; arguments as in
    :func:`events_to_spike_trains`. ``frames.sum(axis=1)`` is the window's count frame.
    """
    steps = check_timesteps(timesteps)
    height, width = _pair(input_size, 'input_size')
    geometry = EventGeometry(*_pair(sensor_size, 'sensor_size'), height, width, roi)
    events, sample = _batch_arrays(windows)
    n_samples = len(windows)
    keep, x, y = geometry.locate(events)
    bins = time_bins(events, sample, n_samples, steps)[keep]
    p = (events['p'][keep] != 0).astype(np.int64)
    flat = (((sample[keep] * steps + bins) * 2 + p) * height + y) * width + x
    counts = np.bincount(flat, minlength=n_samples * steps * 2 * height * width)
    return counts.astype(np.float32).reshape(n_samples, steps, 2, height, width)


# -------------------------------------------------------------------------------- models


def model_takes_events(model) -> bool:
    """Return True when ``model`` was trained on events (it carries an event encoding)."""
    return model.event_encoding is not None


def encode_for_model(model, windows: Sequence[np.ndarray], *, sensor_size: Tuple[int, int],
                     timesteps: int, roi=None):
    """
    Encode ``windows`` the way ``model`` takes events (``model.default_event_encoding()``).

    Returns :class:`~topspark_ros.core.inputs.SpikeEvents` for spike-train models,
    :class:`~topspark_ros.core.inputs.EventFrames` (per-bin, ``T`` bins) for frame models; a
    model that takes no events raises :class:`EventModelError`.
    """
    encoding = model.default_event_encoding()
    geometry = encoding.geometry(sensor_size, roi)
    size = (encoding.height, encoding.width)
    if encoding.kind == 'frames':
        return EventFrames(events_to_frames(windows, sensor_size=sensor_size,
                                            timesteps=timesteps, input_size=size,
                                            roi=geometry.roi))
    return events_to_spike_trains(windows, sensor_size=sensor_size, timesteps=timesteps,
                                  input_size=size, roi=geometry.roi,
                                  polarity=encoding.polarity)


def infer_events(model, windows: Sequence[np.ndarray], *, sensor_size: Tuple[int, int],
                 timesteps: int, roi=None, params=None, early_exit=None):
    """
    Classify event windows with ``model``: encode them as in training, then ``model.infer``.

    Parameters
    ----------
    model
        a model of any family (:mod:`topspark_ros.core.model`); its
        ``default_event_encoding()`` says how it takes events (its checkpoint's encoding; a
        frames-trained STDP network takes ``'merge'`` spike trains, a frames-trained
        converted network raises :class:`EventModelError`).
    windows
        one event array (:data:`~topspark_ros.core.events.EVENT_DTYPE`) per input.
    sensor_size
        ``(width, height)`` of the live sensor (pixels), as in the EventPacket.
    timesteps
        ``T``: the windows are cut into ``T`` time bins, one per step.
    roi
        ``(x0, y0, w, h)`` region on the live sensor (default: the training region on the
        training sensor, else the centred crop).
    params, early_exit
        passed to ``model.infer``.

    Returns
    -------
        The model's :class:`~topspark_ros.core.model.InferenceResult`, one row per window.

    """
    if len(windows) == 0:
        raise EventEncodingError('no windows to classify')
    encoded = encode_for_model(model, windows, sensor_size=sensor_size, timesteps=timesteps,
                               roi=roi)
    return model.infer(encoded, timesteps=timesteps, params=params, early_exit=early_exit)


class EventModel:
    """
    A model seen through its event encoding: ``infer`` / ``learn`` take batches of windows.

    What ``topspark train/eval/sweep`` and :func:`topspark_ros.core.topspark.sweep.sweep` use for
    event data sets: the "images" are an object array of event windows. Everything else
    (``readout``, ``params``, ``params_for_values``, checkpoint) is the wrapped model's.

    Parameters
    ----------
    model
        the wrapped model.
    sensor_size
        ``(width, height)`` of the data's sensor.
    roi
        region on that sensor (default: see :meth:`EventEncoding.geometry`).

    """

    def __init__(self, model, sensor_size: Tuple[int, int], roi=None) -> None:
        """Wrap ``model`` (it must take events: ``model.default_event_encoding()``)."""
        model.default_event_encoding()
        self.model = model
        self.sensor_size = _pair(sensor_size, 'sensor_size')
        self.roi = roi

    def __getattr__(self, name):
        """Delegate everything else to the wrapped model."""
        if name == 'model':
            raise AttributeError(name)
        return getattr(self.model, name)

    @property
    def readout(self):
        """Return the wrapped model's readout."""
        return self.model.readout

    @readout.setter
    def readout(self, value) -> None:
        self.model.readout = value

    def encode(self, windows: Sequence[np.ndarray], timesteps: int):
        """Return the wrapped model's input for ``windows`` at ``timesteps``."""
        return encode_for_model(self.model, list(windows), sensor_size=self.sensor_size,
                                timesteps=timesteps, roi=self.roi)

    def infer(self, windows: Sequence[np.ndarray], *, timesteps: int, params=None,
              early_exit=None, seed=None):
        """Classify ``windows`` (see :func:`infer_events`); ``seed`` passes on."""
        return self.model.infer(self.encode(windows, timesteps), timesteps=timesteps,
                                params=params, early_exit=early_exit, seed=seed)

    def learn(self, windows: Sequence[np.ndarray], *, timesteps: int, params=None, seed=None):
        """Learn from ``windows`` one after the other (models that learn on-line)."""
        return self.model.learn(self.encode(windows, timesteps), timesteps=timesteps,
                                params=params, seed=seed)


@dataclass(frozen=True)
class EventSamples:
    """
    A labelled event data set as the CLI and the sweep use it: one window per sample.

    Attributes
    ----------
    images
        object array ``[n]`` of event arrays (the name the frame data sets use, so the
        same indexing code serves both).
    labels
        ``uint8 [n]`` class indices.
    class_names
        class names.
    sensor_size
        ``(width, height)`` of the sensor (pixels).
    source
        where the data came from (a directory), for the record.

    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple
    sensor_size: Tuple[int, int]
    source: str = ''

    def __len__(self) -> int:
        """Return the number of samples."""
        return len(self.labels)

    @classmethod
    def from_dataset(cls, dataset, source: str = '') -> 'EventSamples':
        """
        Build from an event data set (:mod:`topspark_ros.core.data.synthetic_events`).

        It needs ``.events``, ``.offsets``, ``.labels``, ``.width``, ``.height`` and
        ``.class_names``.
        """
        offsets = np.asarray(dataset.offsets, np.int64)
        events = dataset.events
        windows = np.empty(len(offsets) - 1, dtype=object)
        for i in range(len(windows)):
            windows[i] = events[offsets[i]:offsets[i + 1]]
        return cls(images=windows, labels=np.asarray(dataset.labels),
                   class_names=tuple(dataset.class_names),
                   sensor_size=(int(dataset.width), int(dataset.height)), source=str(source))

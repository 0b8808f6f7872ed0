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

import numba
import numpy as np

from topspark_ros.core.events import as_events, EVENT_DTYPE, EventEncodingError
from topspark_ros.core.events.codecs.base import JIT
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


def _windows(windows: Sequence[np.ndarray]) -> list:
    """Return the windows of a batch as event arrays (checked; see :func:`as_events`)."""
    if isinstance(windows, np.ndarray) and windows.dtype == EVENT_DTYPE:
        raise EventEncodingError('give a sequence of windows (one event array per sample), '
                                 'not one event array; wrap a single window in a list')
    return [as_events(w, f'window {i}') for i, w in enumerate(windows)]


# The kernels below take one window's fields (strided views of the event array) and make one
# pass over its events; numpy's version made about ten, with int64 temporaries of every
# field, and sorted all the events of a window (1.8 s for a 6-million-event window).
# ``want`` selects events by polarity: -1 all, 0 OFF only, 1 ON only (the 'off' / 'on'
# mappings); the other events take no part, not even in the window's time span.


@numba.njit(**JIT)
def _span(p, t, want) -> tuple:
    """Return ``(t0, t1 - t0 + 1, n)`` of the selected events (``n`` 0: none selected)."""
    t0 = np.int64(0)
    t1 = np.int64(0)
    n = 0
    for i in range(t.size):
        if want >= 0 and p[i] != want:
            continue
        ti = np.int64(t[i])
        if n == 0 or ti < t0:
            t0 = ti
        if n == 0 or ti > t1:
            t1 = ti
        n += 1
    return t0, t1 - t0 + 1, n


@numba.njit(**JIT)
def _bin_starts(span, steps):
    """
    Return ``int64 [T + 1]``: bin ``k`` holds ``starts[k] <= t - t0 < starts[k + 1]``.

    ``(t - t0) * T // span >= k`` exactly when ``t - t0 >= ceil(k span / T)``; a bin is empty
    when the window spans fewer than ``T`` microseconds.
    """
    starts = np.empty(steps + 1, np.int64)
    for k in range(steps + 1):
        starts[k] = (k * span + steps - 1) // steps
    return starts


@numba.njit(**JIT)
def _bin(rel, starts, k):
    """
    Return the bin of ``rel = t - t0``, starting from the previous event's bin ``k``.

    Events mostly come in time order, so the bin is usually ``k`` or the next non-empty one;
    a binary search handles the rest (out-of-order events).
    """
    if rel >= starts[k] and rel < starts[k + 1]:
        return k
    if k + 2 < starts.size and rel >= starts[k + 1] and rel < starts[k + 2]:
        return k + 1
    return np.searchsorted(starts, rel, 'right') - 1


def _pixel_maps(geometry: EventGeometry) -> tuple:
    """
    Return ``(x_map, y_map)``: the model column / row of each sensor column / row, -1 outside.

    Sensor coordinates past the end of a map are outside the region too.
    """
    x0, y0, w, h = geometry.roi
    x_map = np.full(x0 + w, -1, np.int64)
    x_map[x0:] = np.arange(w, dtype=np.int64) * geometry.width // w
    y_map = np.full(y0 + h, -1, np.int64)
    y_map[y0:] = np.arange(h, dtype=np.int64) * geometry.height // h
    return x_map, y_map


@numba.njit(**JIT)
def _model_pixel(x, y, x_map, y_map) -> tuple:
    """Return the model ``(column, row)`` of sensor pixel ``(x, y)``; ``(-1, -1)`` outside."""
    if x >= x_map.size or y >= y_map.size:
        return -1, -1
    column = x_map[x]
    row = y_map[y]
    if column < 0 or row < 0:
        return -1, -1
    return column, row


@numba.njit(**JIT)
def _window_bins(p, t, steps, out) -> None:
    """Write the bin of every event of one window into ``out`` (see :func:`time_bins`)."""
    t0, span, n = _span(p, t, -1)
    starts = _bin_starts(span, steps)
    k = 0
    for i in range(t.size):
        k = _bin(np.int64(t[i]) - t0, starts, k)
        out[i] = k


@numba.njit(**JIT)
def _count_frames(x, y, p, t, x_map, y_map, steps, out) -> None:
    """Add one window's events to ``out float32 [T, 2, H, W]`` (see :func:`events_to_frames`)."""
    t0, span, n = _span(p, t, -1)
    starts = _bin_starts(span, steps)
    k = 0
    for i in range(t.size):
        column, row = _model_pixel(x[i], y[i], x_map, y_map)
        if row < 0:
            continue
        k = _bin(np.int64(t[i]) - t0, starts, k)
        out[k, 1 if p[i] != 0 else 0, row, column] += np.float32(1.0)


@numba.njit(**JIT)
def _spike_keys(x, y, p, t, want, split, x_map, y_map, width, steps, n_inputs):
    """
    Return the sorted distinct ``bin * n_inputs + input`` of one window's spikes.

    ``split``: OFF events drive inputs ``[0, H W)``, ON events ``[H W, 2 H W)``.
    """
    t0, span, n = _span(p, t, want)
    starts = _bin_starts(span, steps)
    k = 0
    n_pixels = n_inputs // 2 if split else n_inputs
    seen = np.zeros(steps * n_inputs, np.bool_)
    keys = np.empty(min(n, steps * n_inputs), np.int64)
    found = 0
    for i in range(t.size):
        if want >= 0 and p[i] != want:
            continue
        column, row = _model_pixel(x[i], y[i], x_map, y_map)
        if row < 0:
            continue
        pixel = row * width + column
        if split and p[i] != 0:
            pixel += n_pixels
        k = _bin(np.int64(t[i]) - t0, starts, k)
        key = k * n_inputs + pixel
        if not seen[key]:
            seen[key] = True
            keys[found] = key
            found += 1
    if found * 8 > seen.size:
        # Dense: read the marks in order (cheaper than sorting the keys).
        return np.flatnonzero(seen)
    keys = keys[:found]
    keys.sort()
    return keys


@numba.njit(**JIT)
def _rows_of_keys(keys, n_inputs, start, row_ptr, pixels) -> None:
    """
    Write one window's sorted spike keys (:func:`_spike_keys`) as :class:`SpikeEvents` rows.

    ``row_ptr [T + 1]`` receives its step offsets from ``start``, ``pixels[start:]`` its
    input indices (ascending within a step, as the keys are).
    """
    steps = row_ptr.size - 1
    row_ptr[0] = start
    k = 0
    for step in range(steps):
        end = (step + 1) * n_inputs
        while k < keys.size and keys[k] < end:
            pixels[start + k] = keys[k] - step * n_inputs
            k += 1
        row_ptr[step + 1] = start + k


def time_bins(events: np.ndarray, timesteps: int) -> np.ndarray:
    """
    Return the bin ``int64 [E]`` of every event of one window: ``(t - t0) * T // (t1 - t0 + 1)``.

    ``t0`` / ``t1`` are the first / last event time of the window (see the module doc).
    """
    events = as_events(events)
    out = np.empty(len(events), np.int64)
    if len(events):
        _window_bins(events['p'], events['t'], check_timesteps(timesteps), out)
    return out


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
    arrays = _windows(windows)
    n_inputs = (2 if polarity == 'split' else 1) * height * width
    want = {'on': 1, 'off': 0}.get(polarity, -1)
    x_map, y_map = _pixel_maps(geometry)
    keys = [_spike_keys(events['x'], events['y'], events['p'], events['t'], want,
                        polarity == 'split', x_map, y_map, width, steps, n_inputs)
            for events in arrays]
    row_ptr = np.empty((len(arrays), steps + 1), np.int64)
    pixels = np.empty(sum(k.size for k in keys), np.int32)
    start = 0
    for b, window_keys in enumerate(keys):
        _rows_of_keys(window_keys, n_inputs, start, row_ptr[b], pixels)
        start += window_keys.size
    # Valid by construction (distinct sorted keys of inputs < n_inputs): the checks would
    # cost as much as all the rest of the encoding.
    return SpikeEvents.unchecked(pixels, row_ptr, n_inputs)


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
    arrays = _windows(windows)
    x_map, y_map = _pixel_maps(geometry)
    # Counted in float32 (exact to 2^24 events a pixel and bin): counted in int64 and then
    # converted, a window at a large T took three times the memory (3.5 GB at T=1e5, a
    # user review).
    counts = np.zeros((len(arrays), steps, 2, height, width), np.float32)
    for b, events in enumerate(arrays):
        _count_frames(events['x'], events['y'], events['p'], events['t'], x_map, y_map, steps,
                      counts[b])
    return counts


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

    def assign_labels(self, windows: Sequence[np.ndarray], labels: np.ndarray, *,
                      timesteps: int, params=None, seed=None):
        """Assign the wrapped model's labels from labelled ``windows``."""
        return self.model.assign_labels(self.encode(windows, timesteps), labels,
                                        timesteps=timesteps, params=params, seed=seed)

    def untrained(self, **settings) -> 'EventModel':
        """Return a new untrained model of the wrapped model's structure, taking these events."""
        return EventModel(self.model.untrained(**settings), self.sensor_size, self.roi)


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

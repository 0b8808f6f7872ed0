"""
A DVS (dynamic vision sensor) emulator: intensity frames over time -> events.

Pixel model (the usual one of ESIM / v2e, simplified):

* every pixel remembers a reference log intensity ``ref`` (natural log of
  ``intensity + log_eps``), set from the first frame;
* between two frames the log intensity ``l(t)`` of a pixel is interpolated linearly in time,
  so one frame interval can hold several events of a pixel, each at its own interpolated time;
* an ON event fires when ``l(t) - ref >= C_on``, an OFF event when ``ref - l(t) >= C_off``;
  the pixel then resets: ``ref = l(t_event)`` (exactly one threshold away when the event
  fires at the crossing), so a large change gives one event per threshold it crosses;
* after an event the pixel is refractory for ``refractory_us``: a crossing in that time
  fires when the period ends if ``l`` is still past the level (a real pixel is held in
  reset), and the reset then forgets the excess, so fast large changes give fewer events;
* ``C_on`` and ``C_off`` vary from pixel to pixel (fixed-pattern mismatch): each is the
  nominal threshold times ``1 + threshold_sigma * N(0, 1)`` (clipped to at least 10 % of the
  nominal value), drawn once per emulator from its seed;
* background activity (leak and shot noise) is modelled as independent Poisson events at
  ``noise_rate_hz`` per pixel, ON with probability ``noise_on_fraction``, at uniform random
  times; they do not touch the pixel state.

Everything is vectorised numpy over all pixels (and over a batch of sequences: the leading
dimensions of the frames), and seeded, so results are reproducible bit for bit.
"""

from dataclasses import asdict, dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from topspark_ros.core.events import EVENT_DTYPE


@dataclass(frozen=True)
class DVSParams:
    """
    Parameters of the emulated sensor.

    Attributes
    ----------
    threshold_on, threshold_off
        nominal contrast thresholds ``C_on``, ``C_off`` in natural-log intensity units
        (0.4 = a 49 % brightness change).
    threshold_sigma
        relative standard deviation of the per-pixel threshold mismatch (0 = none).
    refractory_us
        per-pixel refractory period in microseconds (0 = none).
    noise_rate_hz
        background-activity rate per pixel in events per second (0 = none).
    noise_on_fraction
        fraction of the noise events that are ON.
    log_eps
        added to the intensity before the log, in the frames' intensity units (keeps the
        log finite at black; intensities are expected in 0..1).

    """

    threshold_on: float = 0.4
    threshold_off: float = 0.4
    threshold_sigma: float = 0.03
    refractory_us: float = 500.0
    noise_rate_hz: float = 0.1
    noise_on_fraction: float = 0.5
    log_eps: float = 1e-3

    def __post_init__(self) -> None:
        """Check the ranges."""
        if not (self.threshold_on > 0 and self.threshold_off > 0):
            raise ValueError(f'contrast thresholds must be > 0, got on={self.threshold_on}, '
                             f'off={self.threshold_off}')
        checks = {'threshold_sigma': self.threshold_sigma,
                  'refractory_us': self.refractory_us, 'noise_rate_hz': self.noise_rate_hz}
        for name, value in checks.items():
            if not 0 <= value < float('inf'):
                raise ValueError(f'{name} must be finite and >= 0, got {value}')
        if not 0 <= self.noise_on_fraction <= 1:
            raise ValueError(f'noise_on_fraction must be in [0, 1], got '
                             f'{self.noise_on_fraction}')
        if not self.log_eps > 0:
            raise ValueError(f'log_eps must be > 0, got {self.log_eps}')

    def to_dict(self) -> dict:
        """Return the parameters as a plain dict (for metadata)."""
        return asdict(self)


def _events(x, y, p, t) -> np.ndarray:
    """Return an EVENT_DTYPE array from columns."""
    out = np.empty(len(t), dtype=EVENT_DTYPE)
    out['x'] = x
    out['y'] = y
    out['p'] = p
    out['t'] = t
    return out


def background_noise(batch: int, height: int, width: int, t_start_us: float,
                     t_end_us: float, rate_hz: float, on_fraction: float,
                     rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """
    Draw background-activity events: Poisson per pixel, uniform times in ``[start, end)``.

    Returns
    -------
        ``(sample, events)``: the batch index of each event (``int64``) and the events
        (:data:`~topspark_ros.core.events.EVENT_DTYPE`, ``t`` in whole microseconds), in no
        particular order.

    """
    duration_s = max(t_end_us - t_start_us, 0.0) * 1e-6
    n = int(rng.poisson(rate_hz * duration_s * batch * height * width)) if rate_hz else 0
    pixel = rng.integers(0, batch * height * width, size=n)
    t = np.floor(rng.uniform(t_start_us, t_end_us, size=n)).astype(np.int64)
    p = (rng.random(n) < on_fraction).astype(np.uint8)
    sample, rest = np.divmod(pixel, height * width)
    y, x = np.divmod(rest, width)
    return sample, _events(x, y, p, t)


class DVSEmulator:
    """
    A stateful DVS emulator for one sensor (optionally a batch of independent sequences).

    Parameters
    ----------
    height, width
        sensor size in pixels.
    params
        the sensor parameters (default :class:`DVSParams`).
    seed
        seed of the threshold mismatch map and of the noise.
    batch
        number of independent sequences emulated together (same sensor, same mismatch map);
        frames then have shape ``[batch, height, width]``.

    Feed frames in time order with :meth:`step`; the first call only sets the reference.

    """

    def __init__(self, height: int, width: int, params: Optional[DVSParams] = None,
                 seed: int = 0, batch: int = 1) -> None:
        """Create the emulator; draw the per-pixel thresholds from ``seed``."""
        if height < 1 or width < 1 or batch < 1:
            raise ValueError(f'sensor size and batch must be >= 1, got {height} x {width}, '
                             f'batch {batch}')
        self.height, self.width, self.batch = int(height), int(width), int(batch)
        self.params = params if params is not None else DVSParams()
        self.rng = np.random.default_rng(seed)
        p = self.params
        shape = (self.height, self.width)
        mismatch = self.rng.standard_normal((2, *shape)) * p.threshold_sigma
        c_on = p.threshold_on * np.maximum(1.0 + mismatch[0], 0.1)
        c_off = p.threshold_off * np.maximum(1.0 + mismatch[1], 0.1)
        #: per-pixel ON / OFF thresholds ``[height, width]`` (log units)
        self.threshold_on = c_on
        self.threshold_off = c_off
        n = self.batch * self.height * self.width
        self._c_on = np.broadcast_to(c_on, (self.batch, *shape)).reshape(n).astype(np.float32)
        self._c_off = np.broadcast_to(c_off, (self.batch, *shape)).reshape(n).astype(
            np.float32)
        self._c_min = np.minimum(self._c_on, self._c_off)
        self._pending = np.zeros(0, np.int64)
        self._ref: Optional[np.ndarray] = None
        self._log: Optional[np.ndarray] = None
        self._last = np.full(n, -np.inf)
        self._t: Optional[float] = None

    @property
    def time_us(self) -> Optional[float]:
        """Time of the last frame in microseconds (``None`` before the first)."""
        return self._t

    def _log_frame(self, frame) -> np.ndarray:
        """Return the flat log intensity of ``frame`` (float32)."""
        frame = np.asarray(frame, dtype=np.float32)
        expected = (self.height, self.width) if self.batch == 1 else (
            self.batch, self.height, self.width)
        if frame.shape not in (expected, (self.batch, self.height, self.width)):
            raise ValueError(f'frame shape {frame.shape}, expected {expected}')
        eps = np.float32(self.params.log_eps)
        out = frame.reshape(-1) + eps
        # min() is NaN when any value is NaN, so this also refuses NaN (and +inf below).
        low, high = out.min(), out.max()
        if not (low >= eps and high < np.inf):
            raise ValueError('frames must hold finite intensities >= 0')
        return np.log(out, out=out)

    def reset(self, frame, t_us: float) -> None:
        """Set the reference of every pixel from ``frame`` at ``t_us``; forget the past."""
        self._log = self._log_frame(frame)
        self._ref = self._log.copy()
        self._last[:] = -np.inf
        self._pending = np.zeros(0, np.int64)
        self._t = float(t_us)

    def step(self, frame, t_us: float, *, noise: bool = True,
             sort: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """
        Advance to ``frame`` at ``t_us`` and return the events of the interval since the last.

        Parameters
        ----------
        frame
            intensities (0..1) ``[height, width]`` or ``[batch, height, width]``.
        t_us
            its time in microseconds, after the previous frame's.
        noise
            add background activity drawn from the emulator's generator.
        sort
            order the events by time (off: in an unspecified but reproducible order, for
            callers that sort everything at the end).

        Returns
        -------
            ``(sample, events)``: the batch index of each event (``int64``) and the events
            (:data:`~topspark_ros.core.events.EVENT_DTYPE`, ``t`` in whole microseconds,
            rounded down), ordered by time (stable: ties keep a reproducible order). The first
            call returns no events.

        """
        t_us = float(t_us)
        if self._t is None:
            self.reset(frame, t_us)
            return np.zeros(0, np.int64), np.zeros(0, EVENT_DTYPE)
        if not t_us > self._t:
            raise ValueError(f'frame time {t_us} us is not after the previous {self._t} us')
        t0, dt = self._t, t_us - self._t
        l0, l1 = self._log, self._log_frame(frame)
        pixel, times, pol = self._crossings(l0, l1, t0, dt)
        self._log, self._t = l1, t_us
        hw = self.height * self.width
        sample, rest = np.divmod(pixel, hw)
        y, x = np.divmod(rest, self.width)
        stamps = np.floor(times).astype(np.int64)
        if noise and self.params.noise_rate_hz > 0:
            n_sample, n_events = background_noise(
                self.batch, self.height, self.width, t0, t_us, self.params.noise_rate_hz,
                self.params.noise_on_fraction, self.rng)
            sample = np.concatenate([sample, n_sample])
            x = np.concatenate([x, n_events['x']])
            y = np.concatenate([y, n_events['y']])
            pol = np.concatenate([pol, n_events['p']])
            stamps = np.concatenate([stamps, n_events['t']])
        if not sort:
            return sample, _events(x, y, pol, stamps)
        order = np.argsort(stamps, kind='stable')
        return sample[order], _events(x[order], y[order], pol[order], stamps[order])

    def _crossings(self, l0: np.ndarray, l1: np.ndarray, t0: float,
                   dt: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (pixel, time_us, polarity) of the threshold events in one interval."""
        ref = self._ref
        c_on, c_off = self._c_on, self._c_off
        t1 = t0 + dt
        refractory = self.params.refractory_us
        # Candidates: pixels whose new value is a threshold away from the reference, plus
        # those that may still be held by their refractory period (only they can start the
        # interval a threshold away: any other pixel would have fired before t0).
        distance = l1 - ref
        np.abs(distance, out=distance)
        mask = distance >= self._c_min
        mask[self._pending] = True
        idx = candidates = np.flatnonzero(mask)
        if not idx.size:
            self._pending = idx
            return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint8)
        a = l0[idx].astype(np.float64)
        slope = (l1[idx].astype(np.float64) - a) / dt
        con = c_on[idx].astype(np.float64)
        coff = c_off[idx].astype(np.float64)
        r = ref[idx].astype(np.float64)
        last = self._last[idx]
        out_pixel, out_t, out_p = [], [], []
        # Bound on the events a pixel can fire in one interval (guards against float loops).
        gap = np.maximum(np.abs(a - r), np.abs(l1[idx] - r))
        span = float(np.max(np.abs(slope))) * dt + float(gap.max())
        max_rounds = int(span / min(float(c_on.min()), float(c_off.min()))) + 3
        with np.errstate(divide='ignore', invalid='ignore'):
            for _ in range(max_rounds):
                ready = np.maximum(last + refractory, t0)
                up, down = slope > 0, slope < 0
                # ON: the times where l(t) >= level_on form [start_on, end_on].
                level_on = r + con
                cross_on = t0 + (level_on - a) / slope
                start_on = np.where(up, np.maximum(cross_on, t0), t0)
                end_on = np.where(down, cross_on, t1)
                valid_on = np.where(up, a + slope * dt >= level_on, a >= level_on)
                fire_on = np.maximum(start_on, ready)
                ok_on = valid_on & (fire_on <= end_on)
                # OFF: the times where l(t) <= level_off form [start_off, end_off].
                level_off = r - coff
                cross_off = t0 + (level_off - a) / slope
                start_off = np.where(down, np.maximum(cross_off, t0), t0)
                end_off = np.where(up, cross_off, t1)
                valid_off = np.where(down, a + slope * dt <= level_off, a <= level_off)
                fire_off = np.maximum(start_off, ready)
                ok_off = valid_off & (fire_off <= end_off)
                fired = ok_on | ok_off
                if not fired.any():
                    break
                is_on = ok_on & (~ok_off | (fire_on <= fire_off))
                te = np.where(is_on, fire_on, fire_off)
                at_crossing = np.where(is_on, fire_on == start_on, fire_off == start_off)
                at_crossing &= np.where(is_on, up, down)
                level = np.where(is_on, level_on, level_off)
                new_ref = np.where(at_crossing, level, a + slope * (te - t0))
                out_pixel.append(idx[fired])
                out_t.append(te[fired])
                out_p.append(is_on[fired].astype(np.uint8))
                r = np.where(fired, new_ref, r)
                last = np.where(fired, te, last)
                keep = fired
                self._last[idx[fired]] = te[fired]
                ref[idx[fired]] = new_ref[fired]
                idx, a, slope, con, coff, r, last = (
                    idx[keep], a[keep], slope[keep], con[keep], coff[keep], r[keep],
                    last[keep])
        # Pixels whose log intensity changed without an event keep their reference.
        self._pending = candidates[self._last[candidates] + refractory > t1]
        if out_pixel:
            return (np.concatenate(out_pixel), np.concatenate(out_t),
                    np.concatenate(out_p))
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint8)


def emulate(frames: np.ndarray, times_us: Sequence[float], params: Optional[DVSParams] = None,
            seed: int = 0) -> np.ndarray:
    """
    Emulate a DVS watching ``frames`` (``[F, height, width]``, intensities 0..1) at ``times_us``.

    The first frame sets the reference; events follow from the changes after it (see the
    module docstring). Returns the events (:data:`~topspark_ros.core.events.EVENT_DTYPE`)
    ordered by time, ``t`` in microseconds on the clock of ``times_us``.
    """
    frames = np.asarray(frames)
    times = np.asarray(times_us, dtype=np.float64)
    if frames.ndim != 3 or times.shape != (frames.shape[0],):
        raise ValueError(f'need frames [F, H, W] and F times, got {frames.shape} and '
                         f'{times.shape}')
    emulator = DVSEmulator(frames.shape[1], frames.shape[2], params, seed)
    chunks = [emulator.step(frame, t)[1] for frame, t in zip(frames, times)]
    return np.concatenate(chunks) if chunks else np.zeros(0, EVENT_DTYPE)

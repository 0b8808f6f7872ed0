"""
Measured energy: the platform's own power meters, where it has them.

Three kinds of meter, each read through a thin seam that tests replace (a fake sysfs tree
under ``root``, a fake NVML module):

* ``rapl``: Linux powercap, Intel RAPL (also AMD's, same interface):
  ``<root>/class/powercap/intel-rapl:<N>/energy_uj``, a counter in microjoules that wraps at
  ``max_energy_range_uj``. By default the top-level ``package-*`` zones are summed (CPU
  packages; ``psys``, the whole platform where present, would count them twice);
  ``channel`` picks one zone by name (``psys``, ``package-0``, ``dram``, ...). Since Linux 5.10
  ``energy_uj`` is readable by root only (CVE-2020-8694); a permission error says so.
* ``nvml``: NVIDIA GPUs through NVML (PyPI ``nvidia-ml-py``, module ``pynvml``, imported on
  first use): ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the driver loaded;
  Volta and newer), else ``nvmlDeviceGetPowerUsage`` (milliwatts) integrated over time.
  ``channel``: the GPU index (default ``0``).
* ``hwmon``: the INA power monitors of Jetson boards and others (``<root>/class/hwmon/*/name``
  ``ina3221``, ``ina219``, ``ina226``, ...): ``power<k>_input`` (microwatts) where the driver
  has it, else ``in<k>_input`` (mV) x ``curr<k>_input`` (mA). ``channel`` picks the rail by
  label (``in<k>_label``, e.g. ``VDD_IN``); by default the board's input rail (a label ending
  in ``_IN``: ``VDD_IN``, ``POM_5V_IN``), else the sum of all rails. The ina3221's channels
  are 1 to 3: its ``curr4_input`` is their summed current, and ``in4_input`` channel 1's
  shunt voltage (uV), not a rail (the kernel's Documentation/hwmon/ina3221.rst).

Power meters are sampled (:meth:`EnergyCounter.sample`) and integrated with the trapezoid rule:

.. code-block:: text

    E += (P_prev + P_now) / 2 * (t_now - t_prev)                         (J)

Energy counters are differenced, a counter that went down having wrapped once:

.. code-block:: text

    dE = c_now - c_prev                        if c_now >= c_prev
         c_now + (c_max - c_prev)              otherwise                 (counter units)

Every figure is what the whole metered domain (CPU packages, GPU, board rail) spent, with
everything else running on it: not the network alone. A source that is missing or cannot be
read raises :class:`PowerSourceError` with the reason; nothing here raises anything else for a
missing or unreadable file.
"""

from dataclasses import dataclass
import glob
import math
import os
import time
from typing import Callable, List, Optional, Tuple

SOURCES = ('model', 'rapl', 'nvml', 'hwmon', 'auto')
"""Values of the energy monitor's ``energy_source`` (``model``: no measurement)."""
AUTO_ORDER = ('rapl', 'nvml', 'hwmon')
"""The order ``auto`` tries the meters in."""
INA_PREFIX = 'ina'
"""hwmon devices whose ``name`` starts with this are INA power monitors."""


class PowerSourceError(RuntimeError):
    """A power meter is missing or cannot be read; the message says why."""


@dataclass(frozen=True)
class Reading:
    """
    One reading of a meter: an energy counter (J, cumulative) or a power (W).

    Exactly one of ``energy_j`` and ``power_w`` is set.
    """

    energy_j: Optional[float] = None
    power_w: Optional[float] = None


class PowerSource:
    """
    A meter: :meth:`read` returns a :class:`Reading`; ``name`` says what it measures.

    ``wrap_j``: for an energy counter, the value it wraps at (J), or None when it does not.
    """

    name = ''
    wrap_j: Optional[float] = None

    def read(self) -> Reading:
        """Return a reading; raise :class:`PowerSourceError` when it cannot be read."""
        raise NotImplementedError


def _read_number(path: str) -> float:
    """Return the number in a sysfs file; PowerSourceError naming the file and the reason."""
    try:
        with open(path, encoding='ascii') as f:
            text = f.read().strip()
    except PermissionError:
        raise PowerSourceError(f'{path}: permission denied') from None
    except OSError as exc:
        raise PowerSourceError(f'{path}: {exc.strerror or exc}') from None
    try:
        value = float(text)
    except ValueError:
        raise PowerSourceError(f'{path}: not a number: {text[:40]!r}') from None
    if not math.isfinite(value):  # 'nan', 'inf' parse; a meter never reads them
        raise PowerSourceError(f'{path}: not a finite number: {text[:40]!r}')
    return value


def _read_text(path: str) -> str:
    try:
        with open(path, encoding='ascii', errors='replace') as f:
            return f.read().strip()
    except OSError:
        return ''


class RaplSource(PowerSource):
    """Linux powercap RAPL zones (an energy counter in microjoules, summed over zones)."""

    def __init__(self, root: str = '/sys', channel: str = '') -> None:
        """Find the zones; PowerSourceError when there are none or they cannot be read."""
        base = os.path.join(root, 'class', 'powercap')
        zones = sorted(glob.glob(os.path.join(base, 'intel-rapl:*')))
        named = [(d, _read_text(os.path.join(d, 'name'))) for d in zones]
        if channel:  # any zone, sub-zones (core, uncore, dram) included
            chosen = [d for d, name in named if name == channel]
        else:  # top-level zones (intel-rapl:N) of the CPU packages
            chosen = [d for d, name in named
                      if name.startswith('package') and os.path.basename(d).count(':') == 1]
        if not chosen:
            have = ', '.join(sorted({n for _, n in named if n})) or 'none'
            what = f'zone {channel!r}' if channel else 'package zones'
            raise PowerSourceError(f'rapl: no {what} under {base} (zones found: {have})')
        self.name = 'rapl:' + '+'.join(name for d, name in named if d in chosen)
        self._files = [os.path.join(d, 'energy_uj') for d in chosen]
        self._last: Optional[List[float]] = None
        self._total_uj = 0.0
        try:
            self._ranges = [_read_number(os.path.join(d, 'max_energy_range_uj'))
                            for d in chosen]
            self.read()
        except PowerSourceError as exc:
            if 'permission denied' in str(exc):
                raise PowerSourceError(
                    f'rapl: {exc} (energy_uj is readable by root only since Linux 5.10, '
                    'CVE-2020-8694: run as root or grant read access to the file)') from None
            raise PowerSourceError(f'rapl: {exc}') from None

    def read(self) -> Reading:
        """Return the energy since the source opened (J), every zone's wraps unrolled."""
        now = [_read_number(f) for f in self._files]
        if self._last is not None:
            for value, last, wrap in zip(now, self._last, self._ranges):
                self._total_uj += counter_delta(last, value, wrap)
        self._last = now
        return Reading(energy_j=self._total_uj * 1e-6)


def counter_delta(last: float, now: float, wrap: Optional[float]) -> float:
    """Return the increase of a counter from ``last`` to ``now`` that wraps at ``wrap``."""
    if now >= last or not wrap:
        return now - last
    return now + (wrap - last)


class NvmlSource(PowerSource):
    """An NVIDIA GPU through NVML: total energy (mJ) where supported, else power (mW)."""

    def __init__(self, channel: str = '', nvml=None) -> None:
        """Open GPU ``channel`` (index, default 0); PowerSourceError when NVML cannot."""
        if nvml is None:
            try:
                import pynvml as nvml
            except ImportError as exc:
                raise PowerSourceError(f'nvml: the pynvml module is not installed ({exc}); '
                                       'pip install nvidia-ml-py') from None
        self._nvml = nvml
        try:
            index = int(channel or 0)
        except ValueError:
            raise PowerSourceError(f'nvml: channel must be a GPU index, got {channel!r}') \
                from None
        try:
            nvml.nvmlInit()
            self._handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:  # NVMLError and its many subclasses: no driver, no GPU
            raise PowerSourceError(f'nvml: GPU {index} not available: {exc}') from None
        self._energy = True
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except Exception:  # not supported before Volta: integrate the power instead
            self._energy = False
            self.read()
        self.name = f'nvml:gpu{index}:' + ('energy' if self._energy else 'power')

    def read(self) -> Reading:
        """Return the GPU's energy counter (J) or its power (W)."""
        try:
            if self._energy:
                return Reading(energy_j=self._nvml.nvmlDeviceGetTotalEnergyConsumption(
                    self._handle) * 1e-3)
            return Reading(power_w=self._nvml.nvmlDeviceGetPowerUsage(self._handle) * 1e-3)
        except Exception as exc:
            raise PowerSourceError(f'nvml: read failed: {exc}') from None


class HwmonSource(PowerSource):
    """INA power monitors under hwmon (power in microwatts, or millivolts x milliamperes)."""

    def __init__(self, root: str = '/sys', channel: str = '') -> None:
        """Find the INA rails; PowerSourceError when there is none (or not ``channel``)."""
        base = os.path.join(root, 'class', 'hwmon')
        rails = []  # (label, reader)
        for device in sorted(glob.glob(os.path.join(base, 'hwmon*'))):
            chip = _read_text(os.path.join(device, 'name'))
            if chip.startswith(INA_PREFIX):
                rails += _ina_rails(device, chip)
        if not rails:
            raise PowerSourceError(f'hwmon: no INA power monitor under {base} (a device whose '
                                   f'name starts with {INA_PREFIX!r}, e.g. ina3221, ina219)')
        labels = [label for label, _ in rails]
        if channel:
            chosen = [r for r in rails if r[0] == channel]
            if not chosen:
                raise PowerSourceError(f'hwmon: no rail labelled {channel!r} (have: '
                                       f'{", ".join(labels)})')
        else:
            inputs = [r for r in rails if r[0].upper().endswith('_IN')]
            chosen = inputs[:1] or rails
        self._readers = [reader for _, reader in chosen]
        self.name = 'hwmon:' + '+'.join(label for label, _ in chosen)
        self.read()

    def read(self) -> Reading:
        """Return the power of the chosen rails (W)."""
        return Reading(power_w=sum(reader() for reader in self._readers) * 1e-6)


def _ina_rails(device: str, chip: str) -> List[Tuple[str, Callable[[], float]]]:
    """Return ``(label, microwatts reader)`` per rail of one INA hwmon device."""
    def label(kind: str, k: str) -> str:
        return (_read_text(os.path.join(device, f'{kind}{k}_label'))
                or _read_text(os.path.join(device, f'in{k}_label'))
                or f'{chip}:{os.path.basename(device)}:{k}')

    def power(path: str) -> Callable[[], float]:
        return lambda: _read_number(path)

    def volts_amps(volts: str, amps: str) -> Callable[[], float]:
        return lambda: _read_number(volts) * _read_number(amps)  # mV x mA = uW

    powers = sorted(glob.glob(os.path.join(device, 'power*_input')))
    if powers:
        return [(label('power', _index(p, 'power')), power(p)) for p in powers]
    rails = []
    for amps in sorted(glob.glob(os.path.join(device, 'curr*_input'))):
        k = _index(amps, 'curr')
        if chip == 'ina3221' and k not in ('1', '2', '3'):  # curr4: the sum; in4: a shunt's
            continue  # uV (a review: a 27 W rail of it on a board drawing 9 W, summed in)
        volts = os.path.join(device, f'in{k}_input')
        if os.path.exists(volts):
            rails.append((label('curr', k), volts_amps(volts, amps)))
    return rails


def _index(path: str, kind: str) -> str:
    """Return ``'3'`` for ``.../curr3_input`` and kind ``'curr'``."""
    return os.path.basename(path)[len(kind):-len('_input')]


def open_source(kind: str, *, root: str = '/sys', channel: str = '',
                nvml=None) -> Optional[PowerSource]:
    """
    Return the meter ``kind`` names (one of :data:`SOURCES`); None for ``'model'``.

    ``'auto'`` tries :data:`AUTO_ORDER` and returns the first that opens. ``root``: where
    sysfs is mounted; ``channel``: see the module docstring (ignored by ``auto``); ``nvml``:
    the NVML module (default: ``pynvml``, imported on first use). Raises PowerSourceError with
    the reason (every meter's, for ``auto``) when none can be read, ValueError for an unknown
    kind.
    """
    if kind not in SOURCES:
        raise ValueError(f'energy source must be one of {SOURCES}, got {kind!r}')
    if kind == 'model':
        return None
    makers = {'rapl': lambda c: RaplSource(root, c), 'nvml': lambda c: NvmlSource(c, nvml),
              'hwmon': lambda c: HwmonSource(root, c)}
    if kind != 'auto':
        return makers[kind](channel)
    reasons = []
    for name in AUTO_ORDER:
        try:
            return makers[name]('')
        except PowerSourceError as exc:
            reasons.append(str(exc))
    raise PowerSourceError('no power meter found: ' + '; '.join(reasons))


class EnergyCounter:
    """
    Integrates a :class:`PowerSource` into energy per window (see the module docstring).

    Parameters
    ----------
    source
        the meter.
    clock
        seconds, monotonic (default :func:`time.monotonic`): measured figures are of the real
        machine now, so they are timed on the wall clock even under simulated time.

    """

    def __init__(self, source: PowerSource, clock: Callable[[], float] = time.monotonic) -> None:
        """Take the first reading (PowerSourceError if it cannot be read)."""
        self.source = source
        self._clock = clock
        self._window_j = 0.0
        self.total_j = 0.0
        self._last_t = clock()
        self._window_start = self._last_t
        self._last = source.read()

    def sample(self) -> None:
        """Read the meter once and add the energy since the last reading."""
        now_t = self._clock()
        reading = self.source.read()
        if reading.energy_j is not None:
            delta = counter_delta(self._last.energy_j, reading.energy_j, self.source.wrap_j)
        else:
            delta = 0.5 * (self._last.power_w + reading.power_w) * max(now_t - self._last_t, 0.0)
        self._window_j += delta
        self.total_j += delta
        self._last, self._last_t = reading, now_t

    def window(self) -> Tuple[float, float]:
        """Sample, then return and restart the window: ``(energy J, average power W)``."""
        self.sample()
        energy, seconds = self._window_j, self._last_t - self._window_start
        self._window_j, self._window_start = 0.0, self._last_t
        return energy, (energy / seconds if seconds > 0.0 else 0.0)

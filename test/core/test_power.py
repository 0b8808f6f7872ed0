"""Measured power sources against fake sysfs trees and a fake NVML (what the platform offers)."""

import os

import pytest

from topspark_ros.core import power
from topspark_ros.core.power import (counter_delta, EnergyCounter, HwmonSource, NvmlSource,
                                     open_source, PowerSourceError, RaplSource)


def _write(root, path: str, value) -> None:
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'w') as f:
        f.write(f'{value}\n')


def _rapl(root, zones: dict, wrap: int = 262143328850) -> None:
    """``zones``: {'intel-rapl:0': ('package-0', energy_uj), ...}."""
    for zone, (name, energy) in zones.items():
        _write(root, f'class/powercap/{zone}/name', name)
        _write(root, f'class/powercap/{zone}/energy_uj', energy)
        _write(root, f'class/powercap/{zone}/max_energy_range_uj', wrap)


class Clock:
    """A settable monotonic clock (s)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rapl_sums_the_package_zones_and_unrolls_a_wrap(tmp_path):
    root = str(tmp_path)
    _rapl(root, {'intel-rapl:0': ('package-0', 1_000_000), 'intel-rapl:0:0': ('core', 5),
                 'intel-rapl:1': ('package-1', 2_000_000), 'intel-rapl:2': ('psys', 9)},
          wrap=10_000_000)
    source = RaplSource(root)
    assert source.name == 'rapl:package-0+package-1'  # psys and sub-zones not double counted
    clock = Clock()
    counter = EnergyCounter(source, clock)
    _write(root, 'class/powercap/intel-rapl:0/energy_uj', 1_500_000)   # +0.5 J
    _write(root, 'class/powercap/intel-rapl:1/energy_uj', 500_000)     # wrapped: +8.5 J
    clock.now += 2.0
    energy, power = counter.window()
    assert energy == pytest.approx(0.5 + 8.5)
    assert power == pytest.approx(9.0 / 2.0)
    _write(root, 'class/powercap/intel-rapl:0/energy_uj', 2_500_000)   # +1 J
    clock.now += 1.0
    assert counter.window() == pytest.approx((1.0, 1.0))
    assert counter.total_j == pytest.approx(10.0)


def test_rapl_picks_a_zone_by_name(tmp_path):
    root = str(tmp_path)
    _rapl(root, {'intel-rapl:0': ('package-0', 1), 'intel-rapl:0:2': ('dram', 2),
                 'intel-rapl:1': ('psys', 3)})
    assert RaplSource(root, 'psys').name == 'rapl:psys'
    assert RaplSource(root, 'dram').name == 'rapl:dram'
    with pytest.raises(PowerSourceError, match="no zone 'gpu'.*dram, package-0, psys"):
        RaplSource(root, 'gpu')


def test_counter_delta():
    assert counter_delta(10.0, 15.0, 100.0) == 5.0
    assert counter_delta(90.0, 5.0, 100.0) == 15.0
    assert counter_delta(90.0, 5.0, None) == -85.0


def test_missing_or_unreadable_rapl_says_why(tmp_path, monkeypatch):
    with pytest.raises(PowerSourceError, match='rapl: no package zones under .*powercap'):
        RaplSource(str(tmp_path))
    root = str(tmp_path)
    _rapl(root, {'intel-rapl:0': ('package-0', 'garbage')})
    with pytest.raises(PowerSourceError, match='not a number'):
        RaplSource(root)
    for odd in ('nan', 'inf'):  # float() takes them; published, they were nan J and inf J
        _rapl(root, {'intel-rapl:0': ('package-0', odd)})
        with pytest.raises(PowerSourceError, match='not a finite number'):
            RaplSource(root)
    _rapl(root, {'intel-rapl:0': ('package-0', 7)})
    # Root reads every file, so the kernel's refusal is stood in for by open() raising it.
    real_open = open

    def refusing_open(path, *args, **kwargs):
        if str(path).endswith('energy_uj'):
            raise PermissionError(13, 'Permission denied', path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(power, 'open', refusing_open, raising=False)
    with pytest.raises(PowerSourceError, match='permission denied.*root only.*CVE-2020-8694'):
        RaplSource(root)


def _ina3221(root, hwmon: str, rails: dict) -> None:
    """Jetson-style ina3221: ``rails`` {k: (label, mV, mA)}; no power files."""
    _write(root, f'class/hwmon/{hwmon}/name', 'ina3221')
    for k, (label, millivolts, milliamps) in rails.items():
        _write(root, f'class/hwmon/{hwmon}/in{k}_label', label)
        _write(root, f'class/hwmon/{hwmon}/in{k}_input', millivolts)
        _write(root, f'class/hwmon/{hwmon}/curr{k}_input', milliamps)


def test_hwmon_ina3221_reads_the_board_input_rail(tmp_path):
    root = str(tmp_path)
    _write(root, 'class/hwmon/hwmon0/name', 'cpu_thermal')  # not a power monitor
    _ina3221(root, 'hwmon1', {1: ('VDD_IN', 5000, 1200), 2: ('VDD_CPU_GPU_CV', 5000, 400),
                              3: ('VDD_SOC', 5000, 300)})
    source = HwmonSource(root)
    assert source.name == 'hwmon:VDD_IN'
    assert source.read().power_w == pytest.approx(5.0 * 1.2)
    assert HwmonSource(root, 'VDD_SOC').read().power_w == pytest.approx(1.5)
    with pytest.raises(PowerSourceError, match="no rail labelled 'GPU'.*VDD_IN"):
        HwmonSource(root, 'GPU')


def test_hwmon_ina3221_summation_channel_is_not_a_rail(tmp_path):
    """
    The mainline ina3221's curr4_input is the channels' summed current, in4_input a shunt's uV.

    They were paired as a fourth rail: unlabelled channels summed to 27 W on a board drawing
    9 W (a review, after the kernel's Documentation/hwmon/ina3221.rst).
    """
    root = str(tmp_path)
    _ina3221(root, 'hwmon0', {1: ('CPU', 5000, 1000), 2: ('GPU', 5000, 500),
                              3: ('SOC', 5000, 300)})
    for k, milliamps in ((1, 1000), (2, 500), (3, 300)):  # shunt voltages, 10 mOhm shunts
        _write(root, f'class/hwmon/hwmon0/in{k + 3}_input', milliamps * 10)
    _write(root, 'class/hwmon/hwmon0/in7_input', 18_000)
    _write(root, 'class/hwmon/hwmon0/curr4_input', 1_800)
    source = HwmonSource(root)
    assert source.name == 'hwmon:CPU+GPU+SOC'
    assert source.read().power_w == pytest.approx(5.0 * 1.8)


def test_hwmon_sums_unlabelled_rails_and_reads_power_files(tmp_path):
    root = str(tmp_path)
    _write(root, 'class/hwmon/hwmon3/name', 'ina219')
    _write(root, 'class/hwmon/hwmon3/power1_input', 2_500_000)  # uW
    _write(root, 'class/hwmon/hwmon3/in1_input', 1)             # ignored: power is given
    _ina3221(root, 'hwmon4', {1: ('5V_A', 5000, 100), 2: ('5V_B', 5000, 300)})
    source = HwmonSource(root)
    assert source.read().power_w == pytest.approx(2.5 + 0.5 + 1.5)
    clock = Clock()
    counter = EnergyCounter(source, clock)
    _write(root, 'class/hwmon/hwmon3/power1_input', 4_500_000)
    clock.now += 2.0
    energy, power = counter.window()  # trapezoid: (4.5 W + 6.5 W) / 2 x 2 s
    assert energy == pytest.approx(11.0) and power == pytest.approx(5.5)


def test_hwmon_without_ina_says_why(tmp_path):
    _write(str(tmp_path), 'class/hwmon/hwmon0/name', 'nvme')
    with pytest.raises(PowerSourceError, match='no INA power monitor'):
        HwmonSource(str(tmp_path))


class FakeNvml:
    """Stand-in for the pynvml module (a collaborator we do not own)."""

    class NVMLError(Exception):
        pass

    def __init__(self, energy_mj=None, power_mw=30_000, gpus=1, init_error=None):
        self.energy_mj = energy_mj
        self.power_mw = power_mw
        self.gpus = gpus
        self.init_error = init_error

    def nvmlInit(self):
        if self.init_error:
            raise self.NVMLError(self.init_error)

    def nvmlDeviceGetHandleByIndex(self, index):
        if index >= self.gpus:
            raise self.NVMLError('Invalid Argument')
        return ('gpu', index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if self.energy_mj is None:
            raise self.NVMLError('Not Supported')
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle):
        return self.power_mw


def test_nvml_energy_counter(tmp_path):
    nvml = FakeNvml(energy_mj=1_000_000)
    source = NvmlSource('', nvml)
    assert source.name == 'nvml:gpu0:energy'
    clock = Clock()
    counter = EnergyCounter(source, clock)
    nvml.energy_mj += 2_500
    clock.now += 0.5
    assert counter.window() == pytest.approx((2.5, 5.0))


def test_nvml_integrates_power_where_energy_is_not_supported():
    nvml = FakeNvml(energy_mj=None, power_mw=60_000, gpus=2)
    source = NvmlSource('1', nvml)
    assert source.name == 'nvml:gpu1:power'
    clock = Clock()
    counter = EnergyCounter(source, clock)
    nvml.power_mw = 80_000
    clock.now += 1.0
    assert counter.window() == pytest.approx((70.0, 70.0))


def test_nvml_failures_say_why():
    with pytest.raises(PowerSourceError, match='GPU 0 not available: Driver Not Loaded'):
        NvmlSource('', FakeNvml(init_error='Driver Not Loaded'))
    with pytest.raises(PowerSourceError, match='GPU 3 not available'):
        NvmlSource('3', FakeNvml())
    with pytest.raises(PowerSourceError, match='GPU index'):
        NvmlSource('cuda', FakeNvml())


def test_open_source_model_auto_and_errors(tmp_path):
    root = str(tmp_path)
    assert open_source('model', root=root) is None
    with pytest.raises(ValueError, match='energy source must be one of'):
        open_source('battery', root=root)
    # auto with nothing: every meter's reason in one message.
    with pytest.raises(PowerSourceError) as info:
        open_source('auto', root=root, nvml=FakeNvml(init_error='no driver'))
    assert 'rapl:' in str(info.value) and 'nvml:' in str(info.value) \
        and 'hwmon:' in str(info.value)
    # auto: RAPL first, then NVML, then hwmon.
    _ina3221(root, 'hwmon0', {1: ('VDD_IN', 5000, 1000)})
    assert open_source('auto', root=root, nvml=FakeNvml(init_error='x')).name == 'hwmon:VDD_IN'
    assert open_source('auto', root=root, nvml=FakeNvml(energy_mj=0)).name.startswith('nvml')
    _rapl(root, {'intel-rapl:0': ('package-0', 1)})
    assert open_source('auto', root=root, nvml=FakeNvml(energy_mj=0)).name == 'rapl:package-0'
    assert open_source('hwmon', root=root, channel='VDD_IN').name == 'hwmon:VDD_IN'


def test_nvml_without_pynvml_says_how_to_install(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, 'pynvml', None)  # import pynvml -> ImportError
    with pytest.raises(PowerSourceError, match='pip install nvidia-ml-py'):
        open_source('nvml')


def test_a_meter_that_stops_reading_raises_power_source_error(tmp_path):
    root = str(tmp_path)
    _rapl(root, {'intel-rapl:0': ('package-0', 1)})
    counter = EnergyCounter(RaplSource(root), Clock())
    os.remove(os.path.join(root, 'class/powercap/intel-rapl:0/energy_uj'))
    with pytest.raises(PowerSourceError, match='energy_uj'):
        counter.window()

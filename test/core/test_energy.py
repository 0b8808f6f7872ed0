"""Tests of the energy model: operation counts, presets and estimates against hand arithmetic."""

import math

import pytest

from topspark_ros.core.energy import (EnergyBreakdown, EnergyModel, EnergyPreset, format_joules,
                                      get_preset, OpCounts, PRESETS)


def test_fp32_estimate_matches_hand_calculation():
    b = EnergyModel('cmos45_fp32').estimate(OpCounts(accumulates=1000, macs=10))
    assert b.accumulate_j == pytest.approx(1000 * 0.9e-12, rel=1e-12)
    assert b.mac_j == pytest.approx(10 * 4.6e-12, rel=1e-12)
    assert b.neuron_update_j == 0.0 and b.plasticity_update_j == 0.0
    assert b.compute_j == pytest.approx(1000 * 0.9e-12 + 10 * 4.6e-12, rel=1e-12)
    assert b.platform_j is None and b.preset == 'cmos45_fp32'


def test_every_kind_is_priced_with_its_own_energy():
    ops = OpCounts(accumulates=3, macs=5, neuron_updates=7, plasticity_updates=11)
    for name, preset in PRESETS.items():
        b = EnergyModel(name).estimate(ops)
        expected = (3 * preset.accumulate_pj + 5 * preset.mac_pj + 7 * preset.neuron_update_pj
                    + 11 * preset.plasticity_update_pj) * 1e-12
        assert b.compute_j == pytest.approx(expected, rel=1e-12)
        assert b.compute_j == pytest.approx(
            b.accumulate_j + b.mac_j + b.neuron_update_j + b.plasticity_update_j, rel=1e-12)
        assert b.preset == name


def test_preset_figures_follow_their_sources():
    fp32, int8, loihi = PRESETS['cmos45_fp32'], PRESETS['cmos45_int8'], PRESETS['loihi']
    # Horowitz 2014 (45 nm): fp32 add 0.9, mult 3.7; int8 add 0.03, mult 0.2 (pJ).
    assert (fp32.accumulate_pj, fp32.mac_pj) == (0.9, 4.6)
    assert (int8.accumulate_pj, int8.mac_pj) == (0.03, 0.23)
    # Derived: neuron update = 1 mult + 2 adds; plasticity update = 1 MAC + 2 adds.
    assert fp32.neuron_update_pj == 5.5 and fp32.plasticity_update_pj == 6.4
    assert int8.neuron_update_pj == 0.26 and int8.plasticity_update_pj == 0.29
    # Davies et al. 2018, Table 2.
    assert (loihi.accumulate_pj, loihi.neuron_update_pj, loihi.plasticity_update_pj) == \
        (23.6, 81.0, 120.0)
    for preset in PRESETS.values():
        assert preset.source and preset.description
    assert 'Horowitz' in fp32.source and 'Davies' in loihi.source
    assert 'derived' in fp32.description and 'assumption' in loihi.description


def test_presets_are_read_only():
    with pytest.raises(TypeError):
        PRESETS['mine'] = PRESETS['loihi']
    with pytest.raises(AttributeError):
        PRESETS['loihi'].accumulate_pj = 1.0


def test_platform_energy_is_time_times_power():
    ops = OpCounts(accumulates=1.0)
    model = EnergyModel('loihi', platform_power_w=2.5)
    assert model.estimate(ops, latency_s=0.004).platform_j == pytest.approx(0.01)
    assert model.estimate(ops).platform_j is None
    assert EnergyModel('loihi').estimate(ops, latency_s=0.004).platform_j is None


def test_custom_preset_object_is_accepted():
    preset = EnergyPreset('mine', 'test', 'none', 1.0, 2.0, 3.0, 4.0)
    b = EnergyModel(preset).estimate(OpCounts(1, 1, 1, 1))
    assert b.compute_j == pytest.approx(10e-12) and b.preset == 'mine'


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match='unknown energy preset .*cmos45_fp32.*loihi'):
        EnergyModel('tpu')
    with pytest.raises(ValueError, match='known'):
        get_preset('tpu')


@pytest.mark.parametrize('bad', [-1.0, math.nan, math.inf, '3', True])
def test_invalid_numbers_are_refused(bad):
    with pytest.raises(ValueError):
        OpCounts(accumulates=bad)
    with pytest.raises(ValueError):
        EnergyModel('cmos45_fp32', platform_power_w=bad)
    with pytest.raises(ValueError):
        EnergyModel('cmos45_fp32', platform_power_w=1.0).estimate(OpCounts(), latency_s=bad)
    with pytest.raises(ValueError):
        EnergyPreset('x', 'd', 's', bad, 0.0, 0.0, 0.0)


def test_opcounts_arithmetic():
    a = OpCounts(accumulates=1, macs=2, neuron_updates=3, plasticity_updates=4)
    b = OpCounts(accumulates=10, macs=20, neuron_updates=30, plasticity_updates=40)
    assert a + b == OpCounts(11, 22, 33, 44)
    assert a * 2 == 2 * a == OpCounts(2, 4, 6, 8)
    assert (a + b) * 0.5 == OpCounts(5.5, 11, 16.5, 22)
    assert OpCounts() + a == a
    assert a.total_synaptic_ops == 3.0
    assert isinstance(a.accumulates, float)
    with pytest.raises(ValueError):
        a * -1.0
    with pytest.raises(TypeError):
        a + 1.0


def test_opcounts_mapping_round_trip():
    a = OpCounts(1.5, 2, 3, 4)
    assert a.as_dict() == {'accumulates': 1.5, 'macs': 2.0, 'neuron_updates': 3.0,
                           'plasticity_updates': 4.0}
    assert OpCounts.from_mapping(a.as_dict()) == a
    assert OpCounts.from_mapping({'macs': 5}) == OpCounts(macs=5)
    with pytest.raises(ValueError, match='unknown operation kind'):
        OpCounts.from_mapping({'spikes': 1})


def test_describe_names_units_and_preset():
    b = EnergyModel('cmos45_fp32', platform_power_w=5.0).estimate(
        OpCounts(accumulates=1000, macs=10), latency_s=0.002)
    text = b.describe()
    assert '\n' not in text
    assert 'compute 946 pJ on cmos45_fp32' in text and 'platform 10 mJ' in text
    assert isinstance(b, EnergyBreakdown)


def test_format_joules():
    assert format_joules(1.234e-6) == '1.234 uJ'
    assert format_joules(0.0) == '0 J'
    assert format_joules(2.0) == '2 J'
    assert format_joules(5e-18) == '0.005 fJ'

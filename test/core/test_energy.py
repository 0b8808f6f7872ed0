"""Tests of the energy model: operation counts, presets and estimates against hand arithmetic."""

import math

import pytest

from topspark_ros.core.energy import (compare_with_ann, COST_COMPONENTS, EnergyBreakdown,
                                      EnergyModel, EnergyPreset, format_joules, get_preset,
                                      OpCounts, PRESETS, SRAM_64BIT_ACCESS_PJ)


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
    # Davies et al. 2018, Table 2: synaptic spike op (min) 23.6, neuron update (active) 81,
    # synaptic update (pairwise STDP) 120 pJ; spike routing 1.7 (tile) / 3.0, 4.0 (hops) named.
    assert (loihi.accumulate_pj, loihi.neuron_update_pj, loihi.plasticity_update_pj) == \
        (23.6, 81.0, 120.0)
    for text in ('23.6 pJ', '81 pJ', '52 pJ', 'pairwise STDP, 120 pJ', '1.7 pJ', '3.0 pJ E-W',
                 '4.0 pJ N-S'):
        assert text in loihi.description, text
    assert 'Table 2' in loihi.source and 'doi:10.1109/MM.2018.112130359' in loihi.source
    for preset in PRESETS.values():
        assert preset.source and preset.description
    assert 'Horowitz' in fp32.source and 'Davies' in loihi.source
    assert 'derived' in fp32.description and 'assumption' in loihi.description


def test_presets_name_what_they_count():
    for preset in PRESETS.values():
        assert preset.includes and set(preset.includes) <= set(COST_COMPONENTS)
        assert set(preset.includes) | set(preset.excludes) == set(COST_COMPONENTS)
        assert 'spike_routing' in preset.excludes and 'static_power' in preset.excludes
    assert PRESETS['cmos45_fp32'].includes == ('arithmetic',)
    assert PRESETS['cmos45_int8'].includes == ('arithmetic',)
    for name in ('cmos45_fp32_sram', 'cmos45_int8_sram', 'loihi'):
        assert {'weight_memory', 'state_memory'} <= set(PRESETS[name].includes), name
    assert PRESETS['cmos45_fp32'].coverage().startswith('arithmetic; not: weight_memory')
    b = EnergyModel('cmos45_fp32_sram').estimate(OpCounts(accumulates=1))
    assert b.includes == ('arithmetic', 'weight_memory', 'state_memory')
    assert '[arithmetic, weight_memory, state_memory]' in b.describe()
    with pytest.raises(ValueError, match='cost components'):
        EnergyPreset('x', 'd', 's', 0.0, 0.0, 0.0, 0.0, includes=('dram',))
    with pytest.raises(ValueError, match='cost components'):
        EnergyPreset('x', 'd', 's', 0.0, 0.0, 0.0, 0.0, includes=())


def test_memory_inclusive_presets_add_horowitz_sram_accesses():
    # Horowitz 2014, per 64-bit access: 8 KB 10 pJ, 32 KB 20 pJ, 1 MB 100 pJ. Weights in 1 MB
    # (a b-bit weight costs b/64 of an access), state in 32 KB.
    assert dict(SRAM_64BIT_ACCESS_PJ) == {'8KB': 10.0, '32KB': 20.0, '1MB': 100.0}
    fp32, int8 = PRESETS['cmos45_fp32'], PRESETS['cmos45_int8']
    fp32_mem, int8_mem = PRESETS['cmos45_fp32_sram'], PRESETS['cmos45_int8_sram']
    weight32, state32 = 100.0 * 32 / 64, 20.0 * 32 / 64      # 50 pJ, 10 pJ
    weight8, state16 = 100.0 * 8 / 64, 20.0 * 16 / 64        # 12.5 pJ, 5 pJ
    assert fp32_mem.accumulate_pj == pytest.approx(fp32.accumulate_pj + weight32)
    assert fp32_mem.mac_pj == pytest.approx(fp32.mac_pj + weight32)
    assert fp32_mem.neuron_update_pj == pytest.approx(fp32.neuron_update_pj + 2 * state32)
    assert fp32_mem.plasticity_update_pj == pytest.approx(
        fp32.plasticity_update_pj + 2 * weight32 + state32)
    assert int8_mem.accumulate_pj == pytest.approx(int8.accumulate_pj + weight8)
    assert int8_mem.neuron_update_pj == pytest.approx(int8.neuron_update_pj + 2 * state16)
    for text in ('1MB array', '32KB array', '100 pJ per 64-bit access'):
        assert text in fp32_mem.description, text
    assert 'Horowitz' in fp32_mem.source and '1 MB 100 pJ' in fp32_mem.source


def test_ann_comparison_says_when_the_snn_does_not_pay():
    # A dense layer of 784 x 400 as an ANN: 313 600 MACs. An SNN that delivers 100 input spikes
    # to 400 neurons over T steps: 40 000 accumulates + 400 T neuron updates.
    ann = OpCounts(macs=784 * 400)
    cheap = OpCounts(accumulates=40_000, neuron_updates=400 * 8)
    costly = OpCounts(accumulates=40_000 * 40, neuron_updates=400 * 350)
    arithmetic = compare_with_ann(EnergyModel('cmos45_fp32'), cheap, ann)
    assert arithmetic.snn_pays and arithmetic.ratio < 1.0
    assert arithmetic.ann_j == pytest.approx(784 * 400 * 4.6e-12)
    assert 'the SNN pays' in arithmetic.describe() and 'cmos45_fp32' in arithmetic.describe()
    slow = compare_with_ann(EnergyModel('cmos45_fp32_sram'), costly, ann)
    assert not slow.snn_pays and slow.ratio > 1.0
    assert 'the SNN does not pay' in slow.describe()
    assert compare_with_ann(EnergyModel('cmos45_int8'), cheap, OpCounts()).ratio == math.inf
    # No ANN runs on Loihi (no MACs): an "ANN on Loihi" was priced at 23.6 pJ a MAC (a review).
    with pytest.raises(ValueError, match='no ANN runs on loihi'):
        compare_with_ann(EnergyModel('loihi'), cheap, ann)
    assert [name for name, preset in PRESETS.items() if not preset.runs_anns] == ['loihi']


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
    assert preset.includes == ('arithmetic',)


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


def test_meter_reports_memory_ann_and_measured_figures():
    from topspark_ros.core.topspark.meter import EnergyMeter, Measured
    ops = OpCounts(accumulates=1000, neuron_updates=100, plasticity_updates=10)
    meter = EnergyMeter(EnergyModel('cmos45_fp32'), start_s=0.0,
                        memory_model=EnergyModel('cmos45_fp32_sram'),
                        ann_ops=OpCounts(macs=5000))
    meter.add(ops, 8)
    meter.add(ops * 3, 8)
    report = meter.report(2.0, Measured('rapl:package-0', energy_j=3.0, average_power_w=1.5))
    mean = ops * 2
    assert report.includes == ('arithmetic',)
    assert report.energy_per_inference_j == pytest.approx(
        EnergyModel('cmos45_fp32').estimate(mean).compute_j)
    assert report.memory_preset == 'cmos45_fp32_sram'
    assert report.memory_energy_per_inference_j == pytest.approx(
        EnergyModel('cmos45_fp32_sram').estimate(mean).compute_j)
    assert report.ann_macs == 5000.0
    assert report.ann_energy_per_inference_j == pytest.approx(5000 * 4.6e-12)
    assert report.ann_memory_energy_per_inference_j == pytest.approx(5000 * 54.6e-12)
    assert report.measured.source == 'rapl:package-0'
    assert report.measured_energy_per_inference_j == pytest.approx(1.5)
    empty = meter.report(3.0)  # no inference, no meter: zeros, never a division by zero
    assert empty.memory_energy_per_inference_j == 0.0 and empty.measured is None
    assert empty.measured_energy_per_inference_j == 0.0
    plain = EnergyMeter(EnergyModel('loihi')).report(1.0)
    assert plain.memory_preset == '' and plain.ann_energy_per_inference_j == 0.0


def test_the_platforms_energy_is_its_power_times_the_latencies_known():
    """EnergyModel(platform_power_w=) was reachable from no node: no figure priced the board."""
    from topspark_ros.core.topspark.meter import EnergyMeter
    ops = OpCounts(accumulates=1000, neuron_updates=100)
    meter = EnergyMeter(EnergyModel('cmos45_fp32', platform_power_w=6.0))
    meter.add(ops, 8, 0.002)
    meter.add(ops, 8, 0.004)
    meter.add(ops, 8)  # a latency not known: not in the mean
    report = meter.report(1.0)
    assert report.platform_power_w == 6.0
    assert report.platform_energy_per_inference_j == pytest.approx(6.0 * 0.003)
    assert report.platform_energy_per_inference_j > 1e3 * report.energy_per_inference_j
    without = EnergyMeter(EnergyModel('cmos45_fp32'))
    without.add(ops, 8, 0.002)
    assert (without.report(1.0).platform_power_w,
            without.report(2.0).platform_energy_per_inference_j) == (0.0, 0.0)


def test_stdp_network_ann_ops_are_its_dense_layer_and_readout():
    from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
    net = DiehlCookNetwork(STDPConfig(n_inputs=16, n_neurons=5, n_classes=2))
    assert net.ann_ops() == OpCounts(macs=16 * 5 + 5)


def test_session_charges_learning_for_frames_and_event_windows():
    """learn() and learn_events() return STDP's counts; charge_learning adds and prices them."""
    import pathlib

    import numpy as np

    from topspark_ros.core.events import empty_events
    from topspark_ros.core.session import ClassifierSession
    models = pathlib.Path(__file__).resolve().parents[2] / 'models'
    session = ClassifierSession.from_checkpoint(str(models / 'stdp_fmnist_n400.json'))
    frame = np.full((28, 28), 200, np.uint8)
    prediction = session.classify(frame, 'mono', 32)
    assert prediction.ops.plasticity_updates == 0
    learnt = session.learn(frame, 'mono', 32)
    assert learnt.plasticity_updates > 0 and learnt.neuron_updates > 0
    charged = session.charge_learning(prediction, learnt)
    assert charged.ops == prediction.ops + learnt
    assert charged.energy_j == pytest.approx(session.energy_model.estimate(charged.ops).compute_j)
    assert charged.energy_j > prediction.energy_j and charged.class_id == prediction.class_id
    rng = np.random.default_rng(0)
    windows = []
    for _ in range(2):
        events = empty_events(3000)
        events['x'], events['y'] = rng.integers(0, 34, 3000), rng.integers(0, 34, 3000)
        events['p'], events['t'] = rng.integers(0, 2, 3000), np.sort(rng.integers(0, 3e5, 3000))
        windows.append(events)
    per_window = session.learn_events(windows, (34, 34), 16)
    assert len(per_window) == 2 and all(ops.plasticity_updates > 0 for ops in per_window)

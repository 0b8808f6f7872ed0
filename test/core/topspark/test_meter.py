"""Tests of the energy meter (core/topspark/meter.py): windows, savings, exact figures."""

import pytest

from topspark_ros.core.energy import EnergyModel, OpCounts
from topspark_ros.core.topspark.meter import EnergyMeter, Measured


def test_add_returns_the_energy_of_one_inference(unit_energy):
    meter = EnergyMeter(unit_energy)
    energy = meter.add(OpCounts(accumulates=100, neuron_updates=10, plasticity_updates=1), 8)
    assert energy == pytest.approx(100e-12 + 10 * 2e-12 + 1 * 4e-12)  # unit preset


def test_a_window_reports_means_power_and_saving(unit_energy):
    meter = EnergyMeter(unit_energy, baseline_energy_j=400e-12, start_s=10.0)
    meter.add(OpCounts(accumulates=100), 8)    # 100 pJ
    meter.add(OpCounts(accumulates=300), 16)   # 300 pJ
    report = meter.report(12.0)
    assert (report.inference_count, report.window_inferences) == (2, 2)
    assert report.window_s == 2.0 and report.mean_timesteps == 12.0
    assert report.energy_per_inference_j == pytest.approx(200e-12)
    assert report.average_power_w == pytest.approx(400e-12 / 2.0)
    assert report.cumulative_energy_j == pytest.approx(400e-12)
    assert report.mean_ops == OpCounts(accumulates=200.0)
    assert report.saving_vs_baseline == pytest.approx(0.5)   # 1 - 200 / 400
    assert (report.preset, report.includes) == ('unit', ('arithmetic',))
    assert report.measured is None and report.memory_preset == ''
    # The next window starts where this one ended; the cumulative figures go on.
    meter.add(OpCounts(accumulates=50), 4)
    second = meter.report(17.0)
    assert second.window_s == 5.0 and second.window_inferences == 1
    assert second.inference_count == 3
    assert second.cumulative_energy_j == pytest.approx(450e-12)
    assert second.energy_per_inference_j == pytest.approx(50e-12)
    assert second.saving_vs_baseline == pytest.approx(0.875)


def test_an_empty_window_and_an_unknown_baseline_report_zeros(unit_energy):
    meter = EnergyMeter(unit_energy)
    report = meter.report(0.0)  # a zero-length window is not a division by zero
    assert report.window_s == pytest.approx(1e-9) and report.window_inferences == 0
    assert report.energy_per_inference_j == 0.0 and report.mean_timesteps == 0.0
    assert report.saving_vs_baseline == 0.0 and report.mean_ops == OpCounts()
    meter.add(OpCounts(accumulates=10), 2)
    assert meter.report(1.0).saving_vs_baseline == 0.0  # baseline 0: unknown


def test_measured_memory_and_ann_figures(unit_energy):
    memory = EnergyModel('cmos45_fp32_sram')
    meter = EnergyMeter(unit_energy, memory_model=memory, ann_ops=OpCounts(macs=1000))
    meter.add(OpCounts(accumulates=100), 8)
    meter.add(OpCounts(accumulates=300), 8)
    report = meter.report(4.0, Measured('rapl:package-0', energy_j=2.0, average_power_w=0.5))
    assert report.memory_preset == 'cmos45_fp32_sram'
    assert report.memory_energy_per_inference_j == pytest.approx(
        memory.estimate(OpCounts(accumulates=200.0)).compute_j)
    assert report.ann_macs == 1000.0
    assert report.ann_energy_per_inference_j == pytest.approx(1000 * 3e-12)  # unit: 3 pJ/MAC
    assert report.ann_memory_energy_per_inference_j == pytest.approx(
        memory.estimate(OpCounts(macs=1000)).compute_j)
    assert report.measured.source == 'rapl:package-0'
    assert report.measured_energy_per_inference_j == 1.0  # 2 J over 2 inferences


def test_a_window_whose_meter_failed_is_measured_with_the_next(unit_energy):
    """
    A failed reading at a window's end: the next reading's inferences span both windows.

    As its energy does. They were the second window's alone: twice the energy per inference
    after one failed reading (a review); so too after a window restarted by the clock.
    """
    meter = EnergyMeter(unit_energy)
    for _ in range(10):
        meter.add(OpCounts(accumulates=100), 8)
    failed = meter.report(1.0, None, measurement_failed=True)
    assert failed.measured is None and failed.measured_energy_per_inference_j == 0.0
    for _ in range(10):
        meter.add(OpCounts(accumulates=100), 8)
    both = meter.report(2.0, Measured('rapl:package-0', energy_j=20.0, average_power_w=10.0))
    assert both.window_inferences == 10  # the window's own figures stay the window's
    assert both.measured_energy_per_inference_j == pytest.approx(1.0)  # 20 J, 20 inferences
    for _ in range(4):
        meter.add(OpCounts(accumulates=100), 8)
    assert meter.report(3.0, Measured('rapl:package-0', 2.0, 2.0)) \
        .measured_energy_per_inference_j == pytest.approx(0.5)  # the carry is spent
    meter.add(OpCounts(accumulates=100), 8)
    meter.restart(3.5)  # the clock went back: the meter's window goes on over this one
    meter.add(OpCounts(accumulates=100), 8)
    assert meter.report(4.0, Measured('rapl:package-0', 4.0, 4.0)) \
        .measured_energy_per_inference_j == pytest.approx(2.0)  # 4 J, 2 inferences
    meter.add(OpCounts(accumulates=100), 8)
    meter.report(4.5, None)  # no meter (or it stopped for good): nothing carried
    meter.add(OpCounts(accumulates=100), 8)
    assert meter.report(5.0, Measured('rapl:package-0', 3.0, 3.0)) \
        .measured_energy_per_inference_j == pytest.approx(3.0)


def test_a_clock_that_goes_back_starts_a_new_window(unit_energy):
    """A replayed bag that loops: its window's power was energy / 1e-9 s (a user review)."""
    meter = EnergyMeter(unit_energy, start_s=100.0)
    meter.add(OpCounts(accumulates=100), 8)
    assert meter.report(101.0).average_power_w == pytest.approx(100e-12)
    meter.add(OpCounts(accumulates=100), 8)
    assert meter.window_start_s == 101.0
    meter.restart(40.0)  # the clock is at 40 s again
    assert meter.window_start_s == 40.0 and meter.start_s == 40.0
    meter.add(OpCounts(accumulates=300), 8)
    report = meter.report(42.0)
    assert report.window_s == 2.0 and report.average_power_w == pytest.approx(150e-12)
    assert report.inference_count == 3  # the totals go on


def test_inferences_that_learnt_are_set_against_learning_at_full_t_too(unit_energy):
    """
    With on-line learning, the energy holds the learning: so must the baseline.

    Set against inference alone at full T, learning at T=64 looked 64 % cheaper than full T
    where it is 82 % (a review). An inference without plasticity updates keeps the inference
    baseline; a window of both takes their mean; no learning baseline known: as before.
    """
    learning = OpCounts(accumulates=100, plasticity_updates=25)  # 100 + 100 pJ
    meter = EnergyMeter(unit_energy, baseline_energy_j=400e-12,
                        baseline_learning_energy_j=600e-12)
    meter.add(learning, 8)
    report = meter.report(1.0)
    assert report.baseline_energy_per_inference_j == pytest.approx(1000e-12)
    assert report.saving_vs_baseline == pytest.approx(0.8)  # 1 - 200 / 1000
    meter.add(learning, 8)
    meter.add(OpCounts(accumulates=200), 8)  # inference alone
    report = meter.report(2.0)
    assert report.baseline_energy_per_inference_j == pytest.approx(700e-12)  # 400 + 600 / 2
    assert report.saving_vs_baseline == pytest.approx(1 - 200 / 700)
    unknown = EnergyMeter(unit_energy, baseline_energy_j=400e-12)
    unknown.add(learning, 8)
    assert unknown.report(1.0).saving_vs_baseline == pytest.approx(0.5)


def test_a_learning_that_changed_no_weight_is_still_set_against_learning(unit_energy):
    """
    At small T a learning presentation often fires no neuron: no plasticity update.

    The shipped model learning from 200 test images: all 200 at T=8, 120 at T=16, 38 at T=32.

    Its energy still holds the presentation; told from its plasticity updates it was set
    against inference alone, and the saving read low (a review of on-line learning). A
    classifier says so (``Classification.learnt``); without a word the plasticity updates
    still decide.
    """
    presentation = OpCounts(accumulates=200)  # inference + a learning that changed nothing
    meter = EnergyMeter(unit_energy, baseline_energy_j=400e-12,
                        baseline_learning_energy_j=600e-12)
    meter.add(presentation, 8, learnt=True)
    report = meter.report(1.0)
    assert report.baseline_energy_per_inference_j == pytest.approx(1000e-12)
    assert report.saving_vs_baseline == pytest.approx(0.8)
    meter.add(presentation, 8, learnt=False)
    meter.add(presentation, 8)  # not said, no plasticity: inference alone
    assert meter.report(2.0).baseline_energy_per_inference_j == pytest.approx(400e-12)


def test_no_ann_figure_under_a_preset_no_ann_runs_on():
    """Under loihi the ANN was priced at Loihi's synaptic-op energy (a review): now 0, unknown."""
    meter = EnergyMeter(EnergyModel('loihi'), memory_model=EnergyModel('cmos45_fp32_sram'),
                        ann_ops=OpCounts(macs=1000.0))
    meter.add(OpCounts(accumulates=10.0), 4)
    report = meter.report(1.0)
    assert report.ann_macs == 1000.0 and report.ann_energy_per_inference_j == 0.0
    assert report.ann_memory_energy_per_inference_j == pytest.approx(1000 * 54.6e-12, rel=1e-3)

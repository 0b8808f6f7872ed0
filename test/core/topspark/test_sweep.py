"""Tests of the timestep sweep (core/topspark/sweep.py) on a hand-made model: exact figures."""

import dataclasses
import pathlib

import numpy as np
import pytest

from topspark_ros.core.energy import EnergyModel, OpCounts
from topspark_ros.core.topspark.early_exit import EarlyExit
from topspark_ros.core.topspark.fanout import InProcess
from topspark_ros.core.topspark.profile import wilson_interval
from topspark_ros.core.topspark.sweep import (cpu_model, machine_description,
                                              measure_timesteps, reference_predictions, sweep)

X = np.arange(10)  # the fake model is right on input x when x < T (conftest.py)
LABELS = X % 3
CMOS = EnergyModel('cmos45_fp32')
SHA = 'ab' * 32


def _sweep(model, labels=LABELS, grid=(4, 8, 2), **options):
    options.setdefault('timing_s', 0.0)  # each T timed once: the calls are counted below
    return sweep(model, X, labels, grid, model_path='m.json', model_sha256=SHA,
                 dataset='digits', split='test', energy_model=CMOS, batch_size=4, seed=3,
                 **options)


def test_one_entry_has_the_exact_figures(fake_model, unit_energy):
    entry = measure_timesteps(fake_model, X, LABELS, 5, energy_model=unit_energy, batch_size=4,
                              seed=3)
    assert (entry.timesteps, entry.accuracy, entry.n_samples) == (5, 0.5, 10)  # x = 0..4
    assert entry.accuracy_ci95 == wilson_interval(5, 10)
    assert entry.spikes == 9.5  # mean of T + x
    assert entry.ops.accumulates == pytest.approx(55.0)  # mean of 2 T (x + 1)
    assert entry.ops.neuron_updates == 5.0
    assert entry.energy_j == pytest.approx(55e-12 + 5 * 2e-12)  # 1 pJ and 2 pJ (unit preset)
    assert entry.latency_ms > 0.0 and entry.params is None
    assert entry.train_energy_j is None and entry.early_exit_accuracy is None
    assert [c[4] for c in fake_model.calls] == [3, 4, 5]  # batch k: seed + k


def test_labelled_sweeps_keep_the_results_by_confidence(fake_model, unit_energy):
    """
    Each T's results in bins by the predicted class's share, for calibrated scores.

    At T=5 the fake model is right on x < 5; an even x has a share of 1, an odd one 2/3:
    bin 1.0 holds 0, 2, 4, 6, 8 (3 right), bin [0.6, 0.7) 1, 3, 5, 7, 9 (2 right).
    """
    entry = measure_timesteps(fake_model, X, LABELS, 5, energy_model=unit_energy, batch_size=4,
                              seed=3, calibrate=True)
    assert entry.confidence_bins == ((0.0, 0, 0), (0.5, 0, 0), (0.6, 5, 2), (0.7, 0, 0),
                                     (0.8, 0, 0), (0.9, 0, 0), (0.95, 0, 0), (1.0, 5, 3))
    assert sum(row[2] for row in entry.confidence_bins) == entry.accuracy * len(X)
    assert entry.calibrated(1.0) == pytest.approx((3 + 2 * 0.5) / 7)
    assert measure_timesteps(fake_model, X, LABELS, 5,
                             energy_model=unit_energy).confidence_bins is None  # not asked
    assert all(e.confidence_bins is not None for e in _sweep(fake_model).entries)
    # Label-free: the bins would say how often the model agrees with itself; none are kept.
    assert all(e.confidence_bins is None for e in _sweep(fake_model, labels=None).entries)


def test_parameters_learning_step_and_early_exit(fake_model, unit_energy):
    entry = measure_timesteps(fake_model, X, LABELS, 5, energy_model=unit_energy, batch_size=4,
                              params={'gain': 2.0}, train_images=X[:3],
                              early_exit=EarlyExit(1.0, 3))
    assert entry.accuracy == 1.0 and entry.params == {'gain': 2.0}  # x < 10: all right
    assert entry.train_ops == OpCounts(plasticity_updates=5.0)
    assert entry.train_energy_j == pytest.approx(5 * 4e-12) and entry.train_latency_ms > 0.0
    assert fake_model.learnt == 0  # a copy learnt
    assert entry.early_exit_accuracy == 1.0
    assert entry.early_exit_mean_timesteps == pytest.approx(np.mean(
        np.minimum(5, np.maximum(3, X))))  # 4.1
    assert all(c[3] == {'gain': 2.0} for c in fake_model.calls)


def test_sweep_measures_every_t_and_describes_the_run(fake_model):
    seen, measured = [], []
    profile = _sweep(fake_model, progress=lambda e: seen.append(e.timesteps),
                     enhancement={'command': 'x'}, measured=measured.append)
    assert seen == [8, 4, 2] and profile.timesteps == [2, 4, 8]
    # Progress by batch of images, not only by T (a long T showed a bar that did not move).
    assert measured == [4, 4, 2] * 3
    assert [e.accuracy for e in profile.entries] == [0.2, 0.4, 0.8]
    assert [e.spikes for e in profile.entries] == [6.5, 8.5, 12.5]
    for entry in profile.entries:
        t = entry.timesteps
        ops = OpCounts(accumulates=2 * t * 5.5, neuron_updates=t)
        assert entry.energy_j == pytest.approx(CMOS.estimate(ops).compute_j)
    assert (profile.model_family, profile.model_sha256, profile.energy_preset) == (
        'fake', SHA, 'cmos45_fp32')
    assert (profile.dataset, profile.split, profile.n_samples) == ('digits', 'test', 10)
    assert profile.enhancement == {'command': 'x'} and not profile.agreement_based
    assert profile.ann_macs == 1000.0  # the model's ANN, for the energy monitor
    # Warm-up first (two inputs at T=2), then every T in descending order.
    assert fake_model.calls[0][1:3] == ([0, 1], 2)
    assert [c[2] for c in fake_model.calls[1:]] == [8] * 3 + [4] * 3 + [2] * 3


def test_enhanced_parameters_apply_at_their_t(fake_model):
    profile = _sweep(fake_model, params_for=lambda t: {'gain': 2.0} if t == 2 else None)
    assert profile.entry(2).accuracy == 0.4 and profile.entry(2).params == {'gain': 2.0}
    assert profile.entry(4).params is None and profile.entry(4).accuracy == 0.4


def test_label_free_sweep_measures_agreement(fake_model):
    assert reference_predictions(fake_model, X, 8, batch_size=4).tolist() == [
        0, 1, 2, 0, 1, 2, 0, 1, 0, 1]
    profile = _sweep(fake_model, labels=None)
    assert profile.reference_timesteps == 8 and profile.agreement_based
    # At T=4, inputs 4..7 change their prediction against T=8; at T=2, inputs 2..7.
    assert [e.accuracy for e in profile.entries] == [0.4, 0.6, 1.0]
    profile = _sweep(fake_model, labels=None, reference_timesteps=4)
    assert profile.reference_timesteps == 4 and profile.entry(8).accuracy == 0.6
    with pytest.raises(ValueError, match='label-free'):
        _sweep(fake_model, reference_timesteps=4)
    with pytest.raises(ValueError, match='positive'):
        _sweep(fake_model, grid=(4, 0))


def test_an_executor_gives_the_same_figures(fake_model):
    serial = _sweep(fake_model)
    fanned = _sweep(fake_model, executor=InProcess())
    for a, b in zip(serial.entries, fanned.entries):
        assert dataclasses.replace(a, latency_ms=0.0) == dataclasses.replace(b, latency_ms=0.0)


def test_with_an_executor_each_t_is_shown_as_it_is_done(fake_model):
    """``sweep --ray`` showed 0 % until the whole sweep was done, then 100 % (a review)."""
    events = []

    class Watched(InProcess):
        def run(self, *args, **kwargs):
            out = super().run(*args, **kwargs)
            events.append('all done')
            return out
    _sweep(fake_model, executor=Watched(), progress=lambda entry: events.append(
        entry.timesteps), measured=lambda n: events.append(f'{n} images'))
    assert events == [f'{len(X)} images', 8, f'{len(X)} images', 4, f'{len(X)} images', 2,
                      'all done']


@pytest.mark.parametrize('executor', [None, InProcess()], ids=['serial', 'executor'])
def test_the_warm_up_learns_in_the_form_the_measurement_does(fake_model, monkeypatch, executor):
    # A batch and a single frame take different paths, and compiled kernels, in the STDP
    # network: warmed with one frame, the first T's training time (a batch) included loading
    # the batch kernel (30 ms against 2 ms a call). The warm-up learns as many as it can up to
    # two, in this process and in each executor's, before any measurement.
    sizes = []
    learn = type(fake_model).learn

    def recorded(self, inputs, **options):
        sizes.append(len(inputs))
        return learn(self, inputs, **options)

    monkeypatch.setattr(type(fake_model), 'learn', recorded)
    _sweep(fake_model, train_images=X[:3], executor=executor)
    # Serial: the warm-up, then three T. With an executor each item warms its process first.
    assert sizes == ([2, 3, 3, 3] if executor is None else [2, 2, 3, 2, 3, 2, 3])
    sizes.clear()
    _sweep(fake_model, train_images=X[:1], executor=executor)
    assert set(sizes) == {1}


def test_machine_description_names_the_cpus():
    text = machine_description()
    assert 'CPUs' in text and 'torch' in text


def test_cpu_model_is_the_one_proc_cpuinfo_names():
    text = cpu_model()
    assert text and text == text.strip()
    cpuinfo = pathlib.Path('/proc/cpuinfo')
    if cpuinfo.exists():
        names = [line.split(':', 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith('model name')]
        if names:
            assert text == names[0]
    assert text in machine_description()


def test_an_input_no_neuron_answers_counts_as_wrong(unit_energy):
    """
    Count an input without output spikes as the classifier does: no class, not class 0.

    The arg-max of all-zero scores, class 0, was counted right for every silent input of
    class 0: a plain model's profile read 10 % at T=8 where the robot got 0 (a user review).
    """
    from topspark_ros.core.checkpoint import load_checkpoint
    from topspark_ros.core.topspark.sweep import measure_timesteps
    model, _ = load_checkpoint(pathlib.Path(__file__).resolve().parents[3] / 'models'
                               / 'stdp_fmnist_n400.json')
    blank = np.zeros((20, 28, 28), np.uint8)  # no input spike: no output spike
    labels = np.zeros(20, np.int64)
    entry = measure_timesteps(model, blank, labels, 8, energy_model=unit_energy)
    assert entry.accuracy == 0.0 and entry.spikes == 0.0
    assert model.infer(blank[:1], timesteps=8).predicted.tolist() == [-1]


def test_a_short_run_is_timed_again_and_the_fastest_run_counts(fake_model, unit_energy,
                                                               monkeypatch):
    """
    Timed once, a few hundred images gave 0.32 to 0.48 ms at every T in no order (a review).

    A run shorter than ``timing_s`` runs again until that much was timed (or
    ``MAX_TIMING_RUNS`` runs); the latency is the fastest run's, the figures the first run's.
    """
    import topspark_ros.core.topspark.sweep as sweep_module
    real, times = sweep_module.evaluate, iter([0.3, 0.1, 0.2, 0.05, 0.4] + [1.0] * 20)
    runs = []

    def timed(*args, **kwargs):  # the real run, with the seconds a busy machine could give
        run = real(*args, **kwargs)
        runs.append(run)
        return dataclasses.replace(run, seconds=next(times))
    monkeypatch.setattr(sweep_module, 'evaluate', timed)

    def measure(timing_s: float):
        runs.clear()
        return measure_timesteps(fake_model, X, LABELS, 5, energy_model=unit_energy,
                                 batch_size=4, seed=3, timing_s=timing_s)
    entry = measure(0.6)
    assert len(runs) == 3  # 0.3 + 0.1 + 0.2 s: 0.6 s timed
    assert entry.latency_ms == pytest.approx(1e3 * 0.1 / len(X))
    assert all(np.array_equal(r.predicted, runs[0].predicted) for r in runs)
    assert entry.accuracy == 0.5 and entry.spikes == 9.5  # the figures: as timed once
    entry = measure(100.0)  # 0.05, 0.4, then 1.0 s each: MAX_TIMING_RUNS runs at most
    assert len(runs) == sweep_module.MAX_TIMING_RUNS == 10
    assert entry.latency_ms == pytest.approx(1e3 * 0.05 / len(X))
    assert measure(0.0).latency_ms == pytest.approx(1e3 * 1.0 / len(X)) and len(runs) == 1

"""
Both model families and the classifier session on a CUDA device, against the CPU.

Skipped where torch sees no CUDA device (CI has none); run on a GPU machine with
``python -m pytest test/core/test_cuda.py``. The STDP network runs on CUDA with the dense torch
engine, which adds input currents in float64 like on the CPU (see
:mod:`topspark_ros.core.stdp.torch_engine`): spikes and the readout's evidence must equal the
numba engine's; learnt weights may differ in the last bits only, where the per-column sums of
the normalisation are reduced in another order. The converted network runs the same torch code
on either device; its float32 convolutions may round differently, so evidence is compared
with a tolerance and predictions exactly.
"""

import pathlib

import numpy as np
import pytest
from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.events import empty_events
from topspark_ros.core.events.encode import infer_events
from topspark_ros.core.session import ClassifierSession
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.topspark.early_exit import EarlyExit
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')

MODELS = pathlib.Path(__file__).resolve().parents[2] / 'models'


@pytest.fixture(scope='module')
def test_images(fashion_test):
    """Return 64 real test images."""
    return fashion_test.images[:64]


@pytest.mark.parametrize('inhibition, rule', [('populations', 'dc'), ('direct', 'pair')])
def test_stdp_learns_and_infers_on_cuda_like_the_numba_engine(test_images, inhibition, rule):
    config = STDPConfig(n_neurons=30, inhibition=inhibition, learning_rule=rule)
    cpu, gpu = DiehlCookNetwork(config), DiehlCookNetwork(config, device='cuda')
    learnt = [m.learn(test_images[:16], timesteps=100, seed=1) for m in (cpu, gpu)]
    assert learnt[0].exc_spike_counts.sum() > 0
    assert np.array_equal(learnt[0].exc_spike_counts, learnt[1].exc_spike_counts)
    np.testing.assert_allclose(gpu.weights, cpu.weights, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(gpu.theta, cpu.theta, rtol=1e-6, atol=1e-9)
    inferred = [m.infer(test_images, timesteps=100, seed=2) for m in (cpu, gpu)]
    assert np.array_equal(inferred[0].evidence, inferred[1].evidence)
    assert inferred[0].ops.totals() == inferred[1].ops.totals()


@pytest.mark.parametrize('timesteps', [350, 32])
def test_shipped_stdp_model_on_cuda(test_images, timesteps):
    cpu, _ = load_checkpoint(MODELS / 'stdp_fmnist_n400.json')
    gpu, _ = load_checkpoint(MODELS / 'stdp_fmnist_n400.json', device='cuda')
    rule = EarlyExit(margin=3.0, min_steps=8)
    for early_exit in (None, rule):
        got = [m.infer(test_images, timesteps=timesteps, seed=5, early_exit=early_exit)
               for m in (cpu, gpu)]
        assert np.array_equal(got[0].evidence, got[1].evidence)
        assert np.array_equal(got[0].predicted, got[1].predicted)
        assert np.array_equal(got[0].timesteps_used, got[1].timesteps_used)


def test_shipped_converted_frame_model_on_cuda(test_images):
    cpu, _ = load_checkpoint(MODELS / 'converted_fmnist_vgg.json')
    gpu, _ = load_checkpoint(MODELS / 'converted_fmnist_vgg.json', device='cuda')
    for timesteps in (2, 16):
        got = [m.infer(test_images, timesteps=timesteps) for m in (cpu, gpu)]
        np.testing.assert_allclose(got[1].evidence, got[0].evidence, rtol=1e-4, atol=1e-3)
        assert np.mean(got[0].predicted == got[1].predicted) >= 0.98


def test_shipped_converted_event_model_on_cuda():
    rng = np.random.default_rng(0)
    windows = []
    for _ in range(16):
        events = empty_events(3000)
        events['x'], events['y'] = rng.integers(4, 30, 3000), rng.integers(4, 30, 3000)
        events['p'] = rng.integers(0, 2, 3000)
        events['t'] = np.sort(rng.integers(0, 300_000, 3000))
        windows.append(events)
    cpu, _ = load_checkpoint(MODELS / 'converted_nmnist_synth_vgg.json')
    gpu, _ = load_checkpoint(MODELS / 'converted_nmnist_synth_vgg.json', device='cuda')
    got = [infer_events(m, windows, sensor_size=(34, 34), timesteps=4) for m in (cpu, gpu)]
    np.testing.assert_allclose(got[1].evidence, got[0].evidence, rtol=1e-4, atol=1e-3)
    assert np.array_equal(got[0].predicted, got[1].predicted)


def test_classifier_session_on_cuda(test_images):
    frame = np.zeros((480, 640, 3), np.uint8)  # a test image scaled to 476 x 476, centred
    frame[2:478, 82:558] = np.kron(test_images[0], np.ones((17, 17), np.uint8))[..., None]
    for model in ('stdp_fmnist_n400.json', 'converted_fmnist_vgg.json'):
        cpu = ClassifierSession.from_checkpoint(str(MODELS / model))
        gpu = ClassifierSession.from_checkpoint(str(MODELS / model), device='cuda')
        gpu.warm_up()
        a = cpu.classify(frame, 'rgb', 64)
        b = gpu.classify(frame, 'rgb', 64)
        assert a.class_id == b.class_id and a.class_id >= 0
        assert a.spike_count > 0 and b.timesteps_used == a.timesteps_used

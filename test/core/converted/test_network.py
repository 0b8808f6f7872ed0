"""Tests of the converted SNN: the IF step, conversion, early exit, counts, results, I/O."""

import json

import numpy as np
import pytest

from topspark_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from topspark_ros.core.converted.config import ConvertedConfig, ConvertedParams
from topspark_ros.core.converted.network import (ConvertedCounts, ConvertedNetwork, if_step,
                                                 IFParameters, IFState)
from topspark_ros.core.energy import EnergyModel
from topspark_ros.core.events.encode import EventModelError
from topspark_ros.core.inputs import EventFrames
from topspark_ros.core.session import ClassifierSession
from topspark_ros.core.topspark.early_exit import EarlyExit
from topspark_ros.core.topspark.sweep import sweep
import torch


RGB = {'height': 32, 'width': 32, 'channels': 3, 'mean': (0.5,) * 3, 'std': (0.25,) * 3}


def _images(model, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n,) + model.input_spec.shape, dtype=np.uint8)


def _step(v, current, threshold=1.0, leak=1.0, **kwargs):
    return if_step(torch.tensor(current), IFState(torch.tensor(v)),
                   IFParameters(torch.tensor(threshold), leak), **kwargs)


def test_if_step_fires_at_the_threshold_and_resets_by_subtraction():
    # v' = v + I: 1.25 and 1.0 reach theta = 1 (>=), 0.75 and 0.25 stay below, 2.5 spikes once
    # and keeps 1.5 (one spike per step; the rest waits for the next step).
    spikes, sent, state = _step([0.5, 0.5, 0.5, 0.0, 1.5], [0.75, 0.5, 0.25, 0.25, 1.0])
    assert spikes.dtype == torch.bool
    assert spikes.tolist() == [True, True, False, False, True]
    assert sent.tolist() == [1.0, 1.0, 0.0, 0.0, 1.0]  # a spike carries theta
    assert state.v.tolist() == [0.25, 0.0, 0.75, 0.25, 1.5]
    spikes, _, state = if_step(torch.zeros(5), state, IFParameters(torch.tensor(1.0)))
    assert spikes.tolist() == [False, False, False, False, True]
    assert state.v.tolist() == [0.25, 0.0, 0.75, 0.25, 0.5]


def test_if_step_leak_scales_the_old_potential():
    # beta = 0.5: v' = v + I + (beta - 1) v = [1.0 + 0.25 - 0.5, 0.5 + 0.25 - 0.25].
    spikes, sent, state = _step([1.0, 0.5], [0.25, 0.25], threshold=0.75, leak=0.5)
    assert spikes.tolist() == [True, False]
    assert sent.tolist() == [0.75, 0.0]
    assert state.v.tolist() == [0.0, 0.5]
    # Without input a leaky neuron decays and does not fire; a plain IF neuron holds.
    assert _step([0.5], [0.0], leak=0.5)[2].v.tolist() == [0.25]
    assert _step([0.5], [0.0])[2].v.tolist() == [0.5]


def test_if_step_mask_freezes_stopped_samples():
    # Sample 0 runs, sample 1 has stopped: it neither integrates nor fires, whatever v holds.
    mask = torch.tensor([[1.0], [0.0]])
    spikes, sent, state = _step([[1.5], [1.5]], [[0.25], [0.25]], leak=0.5, mask=mask)
    assert spikes.tolist() == [[True], [False]]
    assert sent.tolist() == [[1.0], [0.0]]
    assert state.v.tolist() == [[0.0], [1.5]]  # 1.5 + 0.25 - 0.75 - 1 for sample 0


def test_if_step_surrogate_has_the_same_values_and_a_triangular_gradient():
    v, current = [0.5, 0.5, 0.0, 1.5], [0.75, 0.25, 0.25, 1.0]
    plain = _step(v, current, threshold=1.0)
    current_t = torch.tensor(current, requires_grad=True)
    spikes, sent, state = if_step(current_t, IFState(torch.tensor(v)),
                                  IFParameters(torch.tensor(1.0)), surrogate=True)
    assert spikes.dtype == torch.float32
    assert spikes.tolist() == plain[0].float().tolist()
    assert sent.tolist() == plain[1].tolist() and state.v.tolist() == plain[2].v.tolist()
    spikes.sum().backward()
    # d s / d I = max(0, 1 - |v' - theta| / theta) / theta at v' = 1.25, 0.75, 0.25, 2.5.
    assert current_t.grad.tolist() == [0.75, 0.75, 0.25, 0.0]


@pytest.mark.parametrize('arch', ['vgg', 'resnet'])
def test_snn_rates_approach_ann_as_t_grows(arch):
    torch.manual_seed(0)
    config = ConvertedConfig(arch=arch, height=8, width=8, widths=(4, 8), hidden=8,
                             mu_init=1.0, seed=3)
    model = ConvertedNetwork(config)
    images = _images(model, 16, seed=1)
    ann = model.ann_logits(images)
    errors = []
    for t in (4, 32, 256):
        snn = model.infer(images, timesteps=t).evidence / t
        errors.append(float(np.abs(snn - ann).mean()))
    scale = float(np.abs(ann).mean())
    assert errors[-1] < errors[0]
    assert errors[-1] < 0.02 * scale + 1e-3, (errors, scale)


def test_timesteps_per_call_and_early_exit():
    model = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=16))
    images = _images(model, 6)
    for t in (1, 3, 7):
        assert model.infer(images, timesteps=t).timesteps_used.tolist() == [t] * 6
    full = model.infer(images, timesteps=3)
    for floor in (1, 3, 5):
        quick = model.infer(images, timesteps=10, early_exit=EarlyExit(1e-9, floor))
        assert (quick.timesteps_used >= floor).all() and (quick.timesteps_used <= 10).all()
    at_floor = model.infer(images, timesteps=10, early_exit=EarlyExit(1e-9, 3))
    assert at_floor.timesteps_used.tolist() == [3] * 6  # every input leads after the floor
    assert np.allclose(at_floor.evidence, full.evidence)
    assert np.array_equal(at_floor.ops.accumulates, full.ops.accumulates)
    never = model.infer(images, timesteps=4, early_exit=EarlyExit(1e9, 1))
    assert never.timesteps_used.tolist() == [4] * 6
    with pytest.raises(ValueError):
        model.infer(images, timesteps=0)


def test_operation_counts_by_hand():
    # 2x2 grayscale input -> one 3x3 conv channel (the centre weight 1: current = pixel)
    # -> linear 4 -> 2. Every pixel reaches all 4 conv outputs, every hidden neuron 2 outputs.
    config = ConvertedConfig(height=2, width=2, widths=(1,), hidden=0, n_classes=2,
                             mean=(0.0,), std=(1.0,))
    model = ConvertedNetwork(config)
    with torch.no_grad():
        conv = model.net.ops['conv1']
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
        conv.bias.zero_()
        model.net.thresholds[0].mu.fill_(1.0)
    image = np.array([[[255, 0], [128, 0]]], np.uint8)
    result = model.infer(image, timesteps=4, params=ConvertedParams(1.0, 0.5))
    # z = 1: v 0.5 -> fires every step (4); z = 128/255: fires at steps 1 and 3 (2).
    assert result.spike_count.tolist() == [6]
    ops = result.energy_ops(0)
    assert ops.macs == 16.0          # 4 pixels x 4 conv outputs, once
    assert ops.accumulates == 12.0   # 6 spikes x fan-out 2
    assert ops.neuron_updates == 24.0  # (4 hidden + 2 output) x 4 steps
    assert model.ann_ops().macs == 16.0 + 4 * 2
    short = model.infer(image, timesteps=1)
    assert short.spike_count.tolist() == [2] and short.energy_ops(0).neuron_updates == 6.0


def test_the_ann_counts_a_layer_after_a_pooling_once_per_pooled_unit():
    # A review: the ANN was charged one MAC per unit *before* the pooling (a spike's fan-out),
    # 4x too many for every conv after a 2x2 pool (3.5x for the shipped VGG in all).
    config = ConvertedConfig(height=4, width=4, widths=(1, 1), hidden=0, n_classes=2,
                             mean=(0.0,), std=(1.0,))
    model = ConvertedNetwork(config)
    # conv1, 3x3 'same' on 4x4: 4 corners x 4 taps + 8 edges x 6 + 4 inside x 9 = 100;
    # pool 2 -> 2x2; conv2 on 2x2: 4 outputs x 4 taps = 16; fc_out 4 x 2 = 8.
    assert model.ann_ops().macs == 100 + 16 + 8
    # The SNN's spikes still reach every unit's fan-out through the sum pooling: a spike of
    # conv1 reaches as many conv2 neurons as its pooled unit does.
    assert sum(float(m.sum()) for m in model.net.fanouts[1]) == 4 * 16
    # The analog first layer's MACs are the ANN's first layer's.
    result = model.infer(np.full((1, 4, 4), 200, np.uint8), timesteps=2)
    assert result.energy_ops(0).macs == 100


@pytest.mark.parametrize('early_exit', [None, EarlyExit(0.5, 2)])
def test_summed_bookkeeping_counts_as_the_per_step_one(early_exit):
    # Issue 16: frame input sums each neuron's spikes over the steps and counts once at the
    # end; per-bin input (the same frame at every step) keeps the per-step sums. Spikes,
    # steps, evidence and the accumulates of the hidden layers must agree.
    model = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=16))
    x = model._inputs(_images(model, 6))
    params = ConvertedParams(threshold_scale=0.5)
    with torch.no_grad():
        frame = model.run_snn(x, 9, params, early_exit=early_exit)
        bins = model.run_snn(x[:, None].expand(-1, 9, -1, -1, -1).contiguous(), 9, params,
                             early_exit=early_exit)
        events = torch.zeros(6, dtype=torch.float64)
        for t in range(9):  # the input-event accumulates only the per-bin run adds
            active = (bins[1] > t).to(torch.float32)
            events += (model._input_events(x, 9) * active).to(torch.float64)
    assert frame[2].sum() > 0
    for a, b in zip(frame[:3], bins[:3]):
        assert torch.equal(a, b)
    assert torch.equal(frame[4], bins[4])
    torch.testing.assert_close(frame[3], bins[3] - events, rtol=1e-9, atol=1e-6)


@pytest.mark.parametrize('kind', ['gray', 'rgb'])
def test_checkpoint_round_trip_dispatch_and_session(tmp_path, kind):
    config = (ConvertedConfig(widths=(4, 8), hidden=8) if kind == 'gray'
              else ConvertedConfig(arch='resnet', widths=(4, 8), **RGB))
    model = ConvertedNetwork(config, ConvertedParams(threshold_scale=0.8, v_init_frac=0.4))
    path = save_checkpoint(tmp_path / 'conv', model, info={'class_names': list('abcdefghij')})
    meta = json.loads(path.read_text())
    assert meta['family'] == 'converted' and meta['model']['config']['arch'] == config.arch
    loaded, _ = load_checkpoint(path)
    assert isinstance(loaded, ConvertedNetwork) and loaded.params == model.params
    assert loaded.config == config
    images = _images(model, 3)
    assert np.array_equal(loaded.infer(images, timesteps=3).evidence,
                          model.infer(images, timesteps=3).evidence)
    with pytest.raises(CheckpointError, match="expected 'stdp'"):
        load_checkpoint(path, family='stdp')

    session = ClassifierSession.from_checkpoint(str(path))
    session.warm_up()
    frame = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    prediction = session.classify(frame, 'bgr', timesteps=2)
    assert 0 <= prediction.class_id < 10 and prediction.class_name == 'abcdefghij'[
        prediction.class_id]
    assert prediction.timesteps_used == 2 and not prediction.early_exit
    assert prediction.ops.macs > 0 and prediction.energy_j > 0
    assert abs(float(prediction.scores.sum()) - 1.0) < 1e-5
    with pytest.raises(RuntimeError, match='on-line'):
        session.learn(frame, 'bgr', timesteps=2)


def test_energy_ratio_and_profile_sweep(tmp_path):
    model = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=8))
    images = _images(model, 8)
    labels = np.arange(8) % 10
    energy = EnergyModel('cmos45_fp32')
    profile = sweep(model, images, labels, [1, 2], model_path='m.json', model_sha256='0' * 64,
                    dataset='random', split='test', energy_model=energy, batch_size=4,
                    early_exit=EarlyExit(0.5, 1))
    assert profile.model_family == 'converted' and profile.timesteps == [1, 2]
    ann_j = energy.estimate(model.ann_ops()).compute_j
    assert 0 < profile.entry(1).energy_j < profile.entry(2).energy_j < ann_j


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
def test_runs_on_cuda():
    model = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=8), device='cuda')
    cpu = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=8))
    images = _images(model, 4)
    a = model.infer(images, timesteps=4, early_exit=EarlyExit(0.5, 2))
    b = cpu.infer(images, timesteps=4, early_exit=EarlyExit(0.5, 2))
    assert np.allclose(a.evidence, b.evidence, atol=1e-3)


def test_counts_and_result_helpers():
    counts = ConvertedCounts(spikes=np.array([3.0, 5.0]), macs=np.array([16.0, 16.0]),
                             accumulates=np.array([6.0, 10.0]),
                             neuron_updates=np.array([24.0, 24.0]))
    ops = counts.energy_ops(1)
    assert (ops.accumulates, ops.macs, ops.plasticity_updates) == (10.0, 16.0, 0.0)
    mean = counts.mean_energy_ops()
    assert (mean.accumulates, mean.macs, mean.neuron_updates) == (8.0, 16.0, 24.0)
    assert counts.totals() == {'spikes': 8.0, 'macs': 32.0, 'accumulates': 16.0,
                               'neuron_updates': 48.0}
    empty = ConvertedCounts(*(np.zeros(0),) * 4)
    assert empty.mean_energy_ops().accumulates == 0.0
    model = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=8))
    result = model.infer(_images(model, 3), timesteps=2)
    assert result.spike_count.dtype == np.int64
    assert np.array_equal(result.spike_count, result.ops.spikes.astype(np.int64))
    assert np.allclose(result.scores.sum(axis=1), 1.0)
    assert np.array_equal(result.predicted, np.argmax(result.evidence, axis=1))
    assert np.array_equal(model.readout.predict(result.evidence), result.predicted)


def test_run_time_parameters_and_refusals():
    model = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=8))
    assert model.params_for_values({'threshold_scale': 0.5}) == ConvertedParams(0.5, 0.5)
    with pytest.raises(ValueError, match='unknown converted-network parameters: theta'):
        model.params_for_values({'theta': 1.0})
    with pytest.raises(RuntimeError, match='do not learn on-line'):
        model.learn(_images(model, 1), timesteps=2)
    with pytest.raises(ValueError, match=r'images have shape \[27, 28\]'):
        model.infer(np.zeros((1, 27, 28), np.uint8), timesteps=2)
    with pytest.raises(TypeError, match='takes frames'):
        model.infer(EventFrames(np.zeros((1, 2, 28, 28))), timesteps=2)
    with pytest.raises(EventModelError, match='trained on frames'):
        model.default_event_encoding()
    # Float images in [0, 1] are rounded to uint8 levels first.
    images = _images(model, 2)
    assert np.array_equal(model.infer(images / 255.0, timesteps=2).evidence,
                          model.infer(images, timesteps=2).evidence)

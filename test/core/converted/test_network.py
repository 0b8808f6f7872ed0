"""Tests of the converted deep SNN: thresholds, conversion, early exit, counts, I/O, training."""

import json
import pickle

import numpy as np
import pytest

from topspark_ros import cli
from topspark_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from topspark_ros.core.converted import (clip_activation, ConvertedConfig, ConvertedNetwork,
                                         ConvertedParams)
from topspark_ros.core.converted.train import (ann_accuracy, calibrate_threshold_scale,
                                               snn_accuracy, train_ann)
from topspark_ros.core.data.cifar import load_cifar
from topspark_ros.core.data.idx import DatasetError
from topspark_ros.core.energy import EnergyModel
from topspark_ros.core.session import ClassifierSession
from topspark_ros.core.topspark.early_exit import EarlyExit
from topspark_ros.core.topspark.sweep import sweep
import torch


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """Run these small networks on one thread (tiny ops on a busy machine stall otherwise)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


RGB = {'height': 32, 'width': 32, 'channels': 3, 'mean': (0.5,) * 3, 'std': (0.25,) * 3}


def _images(model, n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n,) + model.input_spec.shape, dtype=np.uint8)


def test_threshold_gradient_flows():
    z = torch.tensor([-1.0, 0.5, 3.0, 5.0], requires_grad=True)
    mu = torch.tensor(2.0, requires_grad=True)
    y = clip_activation(z, mu)
    assert y.tolist() == [0.0, 0.5, 2.0, 2.0]
    y.sum().backward()
    assert mu.grad.item() == 2.0  # the two inputs above the threshold
    assert z.grad.tolist() == [0.0, 1.0, 0.0, 0.0]
    # In a network: the first layer's pre-activations exceed mu = 1 (the later ones do not,
    # so the gradient reaches the first layer's clipped units through them).
    model = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=8, mu_init=1.0))
    logits = model.net(model._inputs(_images(model, 16)))
    torch.nn.functional.cross_entropy(logits, torch.arange(16) % 10).backward()
    assert all(t.mu.grad is not None for t in model.net.thresholds)
    assert model.net.thresholds[0].mu.grad.abs().item() > 0


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


def _write(path, obj):
    with open(path, 'wb') as handle:
        pickle.dump(obj, handle, protocol=2)


def test_cifar10_and_cifar100_readers(tmp_path):
    rng = np.random.default_rng(0)
    c10 = tmp_path / 'cifar-10-batches-py'
    c10.mkdir()
    batches = []
    for i in range(1, 6):
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        batches.append(data)
        _write(c10 / f'data_batch_{i}', {b'data': data, b'labels': [i % 10, (i + 1) % 10],
                                         b'batch_label': b'training batch'})
    _write(c10 / 'test_batch', {b'data': batches[0][:1], b'labels': [9]})
    _write(c10 / 'batches.meta', {b'label_names': [f'c{i}'.encode() for i in range(10)]})
    train = load_cifar(c10, 'train')
    assert train.images.shape == (10, 3, 32, 32) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]
    # Row layout: 1024 red, 1024 green, 1024 blue values, each row-major.
    assert train.images[0, :, 0, 1].tolist() == batches[0][0, [1, 1025, 2049]].tolist()
    assert train.images[0, 2, 31, 31] == batches[0][0, 3071]
    assert train.class_names[3] == 'c3' and len(load_cifar(c10, 'test')) == 1

    c100 = tmp_path / 'cifar-100-python'
    c100.mkdir()
    data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
    for split in ('train', 'test'):
        _write(c100 / split, {b'data': data, b'fine_labels': [0, 99, 5],
                              b'coarse_labels': [0, 19, 3]})
    _write(c100 / 'meta', {b'fine_label_names': [b'f%d' % i for i in range(100)],
                           b'coarse_label_names': [b'k%d' % i for i in range(20)]})
    fine = load_cifar(c100, 'train')
    assert fine.labels.tolist() == [0, 99, 5] and len(fine.class_names) == 100
    coarse = load_cifar(c100, 'test', label='coarse')
    assert coarse.labels.tolist() == [0, 19, 3] and coarse.class_names[19] == 'k19'


def test_cifar_reader_refuses_broken_files(tmp_path):
    c10 = tmp_path / 'c10'
    c10.mkdir()
    good = {b'data': np.zeros((2, 3072), np.uint8), b'labels': [0, 1]}
    for i in range(1, 6):
        _write(c10 / f'data_batch_{i}', good)
    _write(c10 / 'batches.meta', {b'label_names': [b'a', b'b']})
    _write(c10 / 'test_batch', good)
    assert len(load_cifar(c10, 'train')) == 10
    blob = (c10 / 'data_batch_3').read_bytes()
    (c10 / 'data_batch_3').write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DatasetError, match='data_batch_3'):
        load_cifar(c10, 'train')
    (c10 / 'data_batch_3').write_bytes(pickle.dumps(print))  # a global: refused, never run
    with pytest.raises(DatasetError, match='refusing'):
        load_cifar(c10, 'train')
    _write(c10 / 'data_batch_3', {b'data': np.zeros((2, 100), np.uint8), b'labels': [0, 1]})
    with pytest.raises(DatasetError, match='3072'):
        load_cifar(c10, 'train')
    _write(c10 / 'data_batch_3', {b'data': np.zeros((2, 3072), np.uint8), b'labels': [0]})
    with pytest.raises(DatasetError, match='labels'):
        load_cifar(c10, 'train')
    _write(c10 / 'test_batch', {b'data': np.zeros((1, 3072), np.uint8), b'labels': [7]})
    with pytest.raises(DatasetError, match='outside'):
        load_cifar(c10, 'test')
    _write(c10 / 'data_batch_3', good)
    (c10 / 'data_batch_5').unlink()
    with pytest.raises(DatasetError, match='data_batch_5'):
        load_cifar(c10, 'train')
    with pytest.raises(DatasetError, match='neither'):
        load_cifar(tmp_path, 'train')
    with pytest.raises(DatasetError, match='does not exist'):
        load_cifar(tmp_path / 'missing', 'train')


def test_short_training_beats_chance(fashion_train, fashion_test):
    config = ConvertedConfig(widths=(8, 16), hidden=32)
    model = ConvertedNetwork(config)
    train_ann(model, fashion_train.images[:3000], fashion_train.labels[:3000], epochs=1,
              batch_size=64, lr=3e-3)
    images, labels = fashion_test.images[:400], fashion_test.labels[:400]
    ann = ann_accuracy(model, images, labels)
    snn = snn_accuracy(model, images, labels, timesteps=4)
    assert ann > 0.5 and snn > 0.5, (ann, snn)  # chance is 0.1
    scale, scores = calibrate_threshold_scale(model, fashion_train.images[-200:],
                                              fashion_train.labels[-200:], 1, grid=(0.5, 1.0))
    assert scale in (0.5, 1.0) and scores[scale] == max(scores.values())


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


def test_cli_train_and_eval(tmp_path, fashion_dir, capsys):
    out = tmp_path / 'conv.json'
    status = cli.main(['train', '--family', 'converted', '--data-dir', str(fashion_dir),
                       '--n-train', '300', '--epochs', '1', '--widths', '4,8', '--hidden',
                       '8', '--n-eval', '50', '--eval-timesteps', '1,2',
                       '--finetune-timesteps', '2', '--n-finetune', '64', '-q', '--json',
                       '-o', str(out)])
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['family'] == 'converted' and set(result['snn_accuracy']) == {'1', '2'}
    meta = json.loads(out.read_text())
    assert meta['info']['command'].startswith('topspark train --family converted')
    status = cli.main(['eval', '-m', str(out), '--data-dir', str(fashion_dir), '--n-eval',
                       '40', '-T', '2', '-q', '--json'])
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['n_samples'] == 40 and 0.0 <= result['accuracy'] <= 1.0
    status = cli.main(['sweep', '-m', str(out), '--data-dir', str(fashion_dir), '--grid', '1,2',
                       '--n-eval', '20', '--early-exit-margin', '1', '--early-exit-min-steps',
                       '1', '--plot', '', '-q', '--json'])
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [e['timesteps'] for e in result['entries']] == [1, 2]
    assert result['entries'][0]['train_energy_j'] is None


def test_cli_trains_an_rgb_model_on_cifar_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    directory = tmp_path / 'cifar-10-batches-py'
    directory.mkdir()
    for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
        _write(directory / name, {b'data': rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                                  b'labels': list(rng.integers(0, 10, 20))})
    _write(directory / 'batches.meta', {b'label_names': [b'n%d' % i for i in range(10)]})
    out = tmp_path / 'rgb.json'
    status = cli.main(['train', '--family', 'converted', '--dataset', 'cifar10', '--data-dir',
                       str(directory), '--arch', 'resnet', '--n-train', '100', '--epochs', '1',
                       '--widths', '4,8', '--n-eval', '10', '--eval-timesteps', '2', '-q',
                       '-o', str(out)])
    assert status == 0
    capsys.readouterr()
    model, meta = load_checkpoint(out)
    assert model.input_spec.shape == (3, 32, 32) and meta['info']['class_names'][3] == 'n3'
    assert len(model.config.mean) == 3

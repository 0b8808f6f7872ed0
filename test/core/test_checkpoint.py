"""Tests of checkpoint round trips, corruption detection and atomic saving."""

import json
import os

import numpy as np
import pytest

from topspark_ros.core import checkpoint
from topspark_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from topspark_ros.core.readout import assign_labels
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig


@pytest.fixture()
def trained(fashion_train):
    """Return a small trained model with labels, and some images."""
    images = fashion_train.images[:20]
    model = DiehlCookNetwork(STDPConfig(n_neurons=12))
    model.learn(images[:10], timesteps=40)
    counts = model.infer(images, timesteps=40).exc_spike_counts
    model.readout = assign_labels(counts, fashion_train.labels[:20], 10)
    return model, images


def _tensor_file(meta_path):
    return meta_path.parent / json.loads(meta_path.read_text())['tensors']['file']


def test_round_trip_gives_identical_outputs(tmp_path, trained):
    model, images = trained
    path = save_checkpoint(tmp_path / 'model', model, info={'timesteps': 40})
    assert path.name == 'model.json'
    loaded, meta = load_checkpoint(path)
    assert meta['family'] == 'stdp' and meta['info']['timesteps'] == 40
    assert meta['package_version'] and meta['format_version'] == checkpoint.FORMAT_VERSION
    assert np.array_equal(loaded.weights, model.weights)
    assert np.array_equal(loaded.theta, model.theta)
    a = model.infer(images, timesteps=40, seed=9)
    b = loaded.infer(images, timesteps=40, seed=9)
    assert np.array_equal(a.exc_spike_counts, b.exc_spike_counts)
    assert np.array_equal(a.predicted, b.predicted)
    assert loaded.config == model.config and loaded.params == model.params


def test_resave_replaces_and_cleans_up(tmp_path, trained):
    model, images = trained
    first = _tensor_file(save_checkpoint(tmp_path / 'm.json', model))
    model.learn(images[:2], timesteps=20)
    second = _tensor_file(save_checkpoint(tmp_path / 'm.json', model))
    assert first != second and not first.exists() and second.exists()
    assert np.array_equal(load_checkpoint(tmp_path / 'm.json')[0].weights, model.weights)


def test_crash_before_metadata_keeps_previous_checkpoint(tmp_path, trained, monkeypatch):
    model, images = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    old_weights = model.weights
    model.learn(images[:2], timesteps=20)
    calls = []
    real_replace = os.replace

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError('simulated crash')
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, 'replace', failing_replace)
    with pytest.raises(OSError, match='simulated crash'):
        save_checkpoint(path, model)
    monkeypatch.setattr(checkpoint.os, 'replace', real_replace)
    loaded, _ = load_checkpoint(path)
    assert np.array_equal(loaded.weights, old_weights)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]


def test_corrupted_truncated_and_torn_files(tmp_path, trained):
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    tensors = _tensor_file(path)
    blob = tensors.read_bytes()
    tensors.write_bytes(blob[:-7])
    with pytest.raises(CheckpointError, match='SHA-256'):
        load_checkpoint(path)
    tensors.write_bytes(blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    with pytest.raises(CheckpointError, match='SHA-256'):
        load_checkpoint(path)
    tensors.unlink()
    with pytest.raises(CheckpointError, match='unreadable'):
        load_checkpoint(path)
    path.write_text('{"format_version": 1, "family"')
    with pytest.raises(CheckpointError, match='not valid checkpoint JSON'):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint(tmp_path / 'absent.json')


def test_mismatched_metadata(tmp_path, trained):
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    original = json.loads(path.read_text())

    def rewrite(change):
        meta = json.loads(json.dumps(original))
        change(meta)
        path.write_text(json.dumps(meta))

    rewrite(lambda m: m['model']['config'].update(n_neurons=13))
    with pytest.raises(CheckpointError, match='shape'):
        load_checkpoint(path)
    rewrite(lambda m: m['model']['config'].update(bogus=1))
    with pytest.raises(CheckpointError, match='unknown STDPConfig fields'):
        load_checkpoint(path)
    rewrite(lambda m: m.update(format_version=99))
    with pytest.raises(CheckpointError, match='format version 99'):
        load_checkpoint(path)
    rewrite(lambda m: m.update(family='cnn-from-the-future'))
    with pytest.raises(CheckpointError, match='unknown model family'):
        load_checkpoint(path)
    rewrite(lambda m: m['tensors'].update(file='../escape.safetensors'))
    with pytest.raises(CheckpointError, match='bad tensor file name'):
        load_checkpoint(path)
    rewrite(lambda m: None)
    with pytest.raises(CheckpointError, match="expected 'cnn'"):
        load_checkpoint(path, family='cnn')

"""
Outputs of the shipped checkpoints on fixed inputs: the figures test_shipped_outputs compares.

``python test/support/shipped_outputs.py`` (in the environment) records them into
``test/data/shipped_outputs.json``; it was run on the code before the latency work of issue
16, so the test checks that cutting the fixed per-sample cost changed no output, and once more
when the Poisson draw changed to rounds across the inputs (issue 16: the same Bernoulli trains
in distribution, other draws; the STDP figures changed, the converted ones did not). Do not
re-record unless an output is meant to change (and say why in the commit).

Recorded per case: predictions, steps used and spike counts per sample, plus a SHA-256 of the
full spike-count matrix (STDP) or of the float64 evidence (converted), and for learning the
SHA-256 of the weights and thresholds after the samples.
"""

import hashlib
import json
from pathlib import Path
import sys

import numpy as np

from topspark_ros.core.checkpoint import load_checkpoint
from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / 'test' / 'data' / 'shipped_outputs.json'
STDP_MODEL = ROOT / 'models' / 'stdp_fmnist_n400.json'
CONVERTED_MODEL = ROOT / 'models' / 'converted_fmnist_vgg.json'
N_IMAGES = 200
STDP_TIMESTEPS = (350, 64, 16)
CONVERTED_TIMESTEPS = (4, 2)
INFER_BATCHES = (200, 1)
"""Inference in one batch of 200 and, for the first 8 images, one call per image."""
N_BATCH_1 = 8
LEARN_CASES = (
    # (name, samples, T, model): the shipped model and small fresh ones in other modes.
    ('shipped_t350', 12, 350, 'shipped'),
    ('shipped_t16', 40, 16, 'shipped'),
    ('fresh_pair_direct_t64', 30, 64, 'pair_direct'),
    ('fresh_rest_t32', 30, 32, 'rest'),
)


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _fresh(kind: str) -> DiehlCookNetwork:
    if kind == 'pair_direct':
        return DiehlCookNetwork(STDPConfig(n_neurons=100, inhibition='direct',
                                           learning_rule='pair', seed=3))
    return DiehlCookNetwork(STDPConfig(n_neurons=100, between_samples='rest', rest_ms=20.0,
                                       seed=4), DynamicsParams(theta_scale=0.5))


def test_images() -> np.ndarray:
    """Return the first :data:`N_IMAGES` Fashion-MNIST test images."""
    return load_mnist_family(find_dataset_dir('fashion-mnist', start=ROOT), 'test').images[
        :N_IMAGES]


def train_images() -> np.ndarray:
    """Return the first 100 Fashion-MNIST training images (the learning cases)."""
    return load_mnist_family(find_dataset_dir('fashion-mnist', start=ROOT), 'train').images[
        :100]


def stdp_infer(model, images: np.ndarray, timesteps: int) -> dict:
    """Return the recorded figures of STDP inference (batch 200, then batch 1 per image)."""
    result = model.infer(images, timesteps=timesteps, seed=7)
    singles = [model.infer(images[i:i + 1], timesteps=timesteps, seed=100 + i)
               for i in range(N_BATCH_1)]
    return {'predicted': result.predicted.tolist(),
            'spikes': result.evidence.sum(axis=1).tolist(),
            'counts_sha256': _sha(result.evidence.astype(np.int64)),
            'input_spikes': result.ops.input_spikes.tolist(),
            'batch1_predicted': [int(r.predicted[0]) for r in singles],
            'batch1_counts_sha256': _sha(np.concatenate(
                [r.evidence for r in singles]).astype(np.int64))}


def stdp_learn(model, images: np.ndarray, timesteps: int) -> dict:
    """Return the recorded figures of learning ``images`` one call per sample, then in one."""
    counts = [model.learn(images[i:i + 1], timesteps=timesteps, seed=200 + i).exc_spike_counts
              for i in range(len(images) // 2)]
    counts.append(model.learn(images[len(images) // 2:], timesteps=timesteps,
                              seed=999).exc_spike_counts)
    counts = np.concatenate(counts).astype(np.int64)
    return {'spikes': counts.sum(axis=1).tolist(), 'counts_sha256': _sha(counts),
            'weights_sha256': _sha(model.weights.astype(np.float32)),
            'theta_sha256': _sha(model.theta.astype(np.float64))}


def converted_infer(model, images: np.ndarray, timesteps: int) -> dict:
    """Return the recorded figures of converted-SNN inference (batch 200, then batch 1)."""
    result = model.infer(images, timesteps=timesteps)
    singles = [model.infer(images[i:i + 1], timesteps=timesteps) for i in range(N_BATCH_1)]
    return {'predicted': result.predicted.tolist(),
            'spikes': result.ops.spikes.tolist(),
            'accumulates': result.ops.accumulates.tolist(),
            'evidence': result.evidence.tolist(),
            'evidence_sha256': _sha(result.evidence.astype(np.float64)),
            'batch1_predicted': [int(r.predicted[0]) for r in singles],
            'batch1_spikes': [float(r.ops.spikes[0]) for r in singles]}


def record() -> dict:
    """Compute every recorded figure from the code as it is."""
    images = test_images()
    learn_images = train_images()
    stdp, _ = load_checkpoint(STDP_MODEL)
    converted, _ = load_checkpoint(CONVERTED_MODEL)
    out = {'n_images': N_IMAGES, 'stdp': {}, 'converted': {}, 'learn': {}}
    for t in STDP_TIMESTEPS:
        out['stdp'][str(t)] = stdp_infer(stdp, images, t)
    for t in CONVERTED_TIMESTEPS:
        out['converted'][str(t)] = converted_infer(converted, images, t)
    for name, n, t, kind in LEARN_CASES:
        model = load_checkpoint(STDP_MODEL)[0] if kind == 'shipped' else _fresh(kind)
        out['learn'][name] = stdp_learn(model, learn_images[:n], t)
    return out


if __name__ == '__main__':
    OUTPUT.write_text(json.dumps(record(), indent=None, separators=(',', ':')) + '\n')
    print(f'wrote {OUTPUT}', file=sys.stderr)

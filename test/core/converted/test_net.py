"""Tests of the convertible CNN: clipped activation, wiring per architecture, fan-out maps."""

import numpy as np
import pytest

from topspark_ros.core.converted.config import ConvertedConfig, INPUT
from topspark_ros.core.converted.net import clip_activation, ConvertibleNet, Synapse
import torch

TINY = {'height': 2, 'width': 2, 'widths': (1,), 'hidden': 0, 'n_classes': 2, 'mean': (0.0,),
        'std': (1.0,)}
"""2x2 grey input -> one 3x3 conv channel -> linear 4 -> 2."""


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
    net = ConvertibleNet(ConvertedConfig(widths=(4, 8), hidden=8, mu_init=1.0))
    images = np.random.default_rng(0).integers(0, 256, (16, 28, 28), dtype=np.uint8)
    logits = net(net.normalise(torch.from_numpy(images)))
    torch.nn.functional.cross_entropy(logits, torch.arange(16) % 10).backward()
    assert all(t.mu.grad is not None for t in net.thresholds)
    assert net.thresholds[0].mu.grad.abs().item() > 0


def test_float32_convolutions_hold_cudnn_off_tf32_for_cuda_only():
    """On Ampere and newer, cuDNN's default TF32 moved spikes and classes off the CPU's."""
    from topspark_ros.core.converted.net import float32_convolutions
    before = torch.backends.cudnn.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = True
        with float32_convolutions(torch.device('cuda', 1)):
            assert torch.backends.cudnn.allow_tf32 is False
        assert torch.backends.cudnn.allow_tf32 is True
        with float32_convolutions('cpu'):
            assert torch.backends.cudnn.allow_tf32 is True
        # Two models' blocks overlapping (two classifiers' threads): the first to leave put
        # TF32 back while the second convolved, and the last left it off (a review).
        first, second = float32_convolutions('cuda'), float32_convolutions('cuda:0')
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert torch.backends.cudnn.allow_tf32 is False
        second.__exit__(None, None, None)
        assert torch.backends.cudnn.allow_tf32 is True
    finally:
        torch.backends.cudnn.allow_tf32 = before


def test_tiny_vgg_wiring_shapes_fanouts_and_forward_by_hand():
    net = ConvertibleNet(ConvertedConfig(**TINY))
    assert net.wiring == [[Synapse(INPUT, 'conv1', 1)], [Synapse(0, 'fc_out', 1)]]
    assert net.shapes == [(1, 2, 2), (2,)]
    # A 3x3 kernel with padding 1 on a 2x2 map: every pixel reaches all 4 outputs; every
    # hidden neuron reaches both outputs.
    assert net.fanouts[0][0].tolist() == [[[4.0, 4.0], [4.0, 4.0]]]
    assert net.fanouts[1][0].tolist() == [[[2.0, 2.0], [2.0, 2.0]]]
    with torch.no_grad():
        net.ops['conv1'].weight.zero_()
        net.ops['conv1'].weight[0, 0, 1, 1] = 1.0  # current = pixel
        net.ops['conv1'].bias.zero_()
        net.ops['fc_out'].weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0],
                                                     [0.0, 0.0, 0.0, 1.0]]))
        net.ops['fc_out'].bias.copy_(torch.tensor([0.0, 0.5]))
        net.thresholds[0].mu.fill_(0.5)
        x = net.normalise(torch.tensor([[[255, 0], [0, 51]]], dtype=torch.uint8))
        assert net.mu().tolist() == [0.5]
        # clip(1.0, 0, 0.5) = 0.5 and clip(0.2, 0, 0.5) = 0.2 (+ bias 0.5).
        assert torch.allclose(net(x), torch.tensor([[0.5, 0.7]]))


def test_resnet_wiring_adds_shortcuts():
    config = ConvertedConfig(arch='resnet', height=8, width=8, widths=(4, 8), hidden=0)
    net = ConvertibleNet(config)
    assert net.wiring == [
        [Synapse(INPUT, 'stem', 1)],
        [Synapse(0, 'block1a', 1)],
        [Synapse(1, 'block1b', 1), Synapse(0, '', 1)],  # identity shortcut (4 -> 4)
        [Synapse(2, 'block2a', 2)],
        [Synapse(3, 'block2b', 1), Synapse(2, 'block2s', 2)],  # 1x1 conv shortcut (4 -> 8)
        [Synapse(4, 'fc_out', 4)],  # global average pool of the 4x4 map, then linear
    ]
    assert net.shapes[-2:] == [(8, 4, 4), (10,)]
    assert len(net.thresholds) == 5
    # The identity shortcut reaches one neuron per unit.
    assert torch.equal(net.fanouts[2][1], torch.ones(4, 8, 8))


def test_initial_weights_are_seeded_and_leave_the_global_generator_alone(monkeypatch):
    import numpy as np

    from topspark_ros.core.converted.network import ConvertedNetwork
    from topspark_ros.core.converted.train import train_ann
    reseeded = []  # a device's generators: torch.manual_seed reseeded CUDA's (a review)
    monkeypatch.setattr(torch.cuda, 'manual_seed_all', reseeded.append)
    torch.manual_seed(123)
    reseeded.clear()
    before = torch.random.get_rng_state()
    a = ConvertibleNet(ConvertedConfig(widths=(4, 8), hidden=8, seed=5))
    assert torch.equal(torch.random.get_rng_state(), before)
    train_ann(ConvertedNetwork(ConvertedConfig(height=8, width=8, widths=(4,), hidden=0)),
              np.zeros((4, 8, 8), np.uint8), np.zeros(4, np.int64), epochs=1, seed=3)
    assert torch.equal(torch.random.get_rng_state(), before) and reseeded == []
    b = ConvertibleNet(ConvertedConfig(widths=(4, 8), hidden=8, seed=5))
    c = ConvertibleNet(ConvertedConfig(widths=(4, 8), hidden=8, seed=6))
    assert torch.equal(a.ops['conv1'].weight, b.ops['conv1'].weight)
    assert not torch.equal(a.ops['conv1'].weight, c.ops['conv1'].weight)


def test_inconsistent_structures_are_refused():
    with pytest.raises(ValueError, match='2 leak factors for 3 hidden layers'):
        ConvertibleNet(ConvertedConfig(widths=(4, 8), hidden=8, leak=(0.5, 0.5)))
    conv = {'kind': 'conv', 'in': 1, 'out': 2, 'kernel': [3, 3], 'stride': [1, 1],
            'padding': [1, 1], 'dilation': [1, 1], 'groups': 1}
    wrong_size = [{'synapses': [{'source': INPUT, 'op': conv}]},
                  {'synapses': [{'source': 0, 'op': {'kind': 'linear', 'in': 100, 'out': 10}}]}]
    with pytest.raises(ValueError, match='the layers do not fit together'):
        ConvertibleNet(ConvertedConfig(arch='graph', layers=wrong_size))
    wrong_classes = [{'synapses': [{'source': INPUT, 'op': conv}]},
                     {'synapses': [{'source': 0, 'op': {'kind': 'linear', 'in': 1568,
                                                        'out': 7}}]}]
    with pytest.raises(ValueError, match=r'output layer has shape \[7\], expected \[10\]'):
        ConvertibleNet(ConvertedConfig(arch='graph', layers=wrong_classes))

r"""
Training of convertible CNNs: the ANN with trainable thresholds, then optional SNN fine-tuning.

1. **ANN training** (:func:`train_ann`): cross-entropy on the ANN logits with Adam; the
   clipping thresholds ``mu_l`` are trained with the weights and pulled down by an L2 penalty
   ``lambda_mu * sum_l mu_l^2`` (so each settles where the pre-activations really are, not at
   their maximum). The learning rate follows a cosine schedule to 0 over the epochs.
2. **Conversion** is free: the SNN uses the same weights and thresholds
   (:mod:`topspark_ros.core.converted`).
3. **Fine-tuning at the target T** (:func:`finetune_snn`, optional): the SNN itself is trained
   for ``T`` steps with back-propagation through time; the spike's derivative is the
   triangular surrogate ``max(0, 1 - |v - theta| / theta)`` and thresholds keep learning.

Inputs are ``uint8`` images ``[N, *input shape]``, labels ``int [N]``; the network normalises.
"""

import math
import time
from typing import Callable, Optional

import numpy as np

from topspark_ros.core.converted import ConvertedNetwork, ConvertedParams
import torch
import torch.nn.functional as functional


def _batches(n: int, batch_size: int, rng: np.random.Generator):
    """Yield index arrays of one shuffled epoch."""
    order = rng.permutation(n)
    for first in range(0, n, batch_size):
        yield order[first:first + batch_size]


def _cosine(optimiser, lr: float, step: int, total: int) -> None:
    for group in optimiser.param_groups:
        group['lr'] = (0.5 * lr * group['lr_factor']
                       * (1.0 + math.cos(math.pi * step / max(total, 1))))


MU_LR_FACTOR = 10.0
"""The thresholds learn this many times faster than the weights (Adam moves every parameter
by about its learning rate per step, and a threshold spans a much larger range)."""


def _optimiser(model: ConvertedNetwork, lr: float, weight_decay: float, lambda_mu: float):
    """Adam with weight decay on weights and the L2 pull ``lambda_mu`` on the thresholds."""
    net = model.net
    mus = [t.mu for t in net.thresholds]
    ids = {id(p) for p in mus}
    others = [p for p in net.parameters() if id(p) not in ids]
    return torch.optim.Adam([
        {'params': others, 'weight_decay': weight_decay, 'lr_factor': 1.0},
        {'params': mus, 'weight_decay': lambda_mu, 'lr_factor': MU_LR_FACTOR}], lr=lr)


def train_ann(model: ConvertedNetwork, images: np.ndarray, labels: np.ndarray, *,
              epochs: int = 3, batch_size: int = 128, lr: float = 2e-3,
              weight_decay: float = 1e-4, lambda_mu: float = 5e-4, seed: int = 0,
              progress: Callable[[int], None] = lambda n: None) -> dict:
    """
    Train ``model``'s ANN in place; return ``{'seconds', 'final_loss', 'mu'}``.

    ``progress(n)`` is called after each batch of ``n`` images.
    """
    net = model.net
    rng = np.random.default_rng(seed)
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    optimiser = _optimiser(model, lr, weight_decay, lambda_mu)
    labels_t = torch.as_tensor(np.asarray(labels, np.int64))
    total = epochs * math.ceil(len(images) / batch_size)
    step, loss_value = 0, float('nan')
    start = time.perf_counter()
    net.train()
    try:
        for _ in range(epochs):
            for idx in _batches(len(images), batch_size, rng):
                _cosine(optimiser, lr, step, total)
                x = model._inputs(images[idx])
                loss = functional.cross_entropy(net(x), labels_t[idx].to(model.device))
                _descend(optimiser, loss, net)
                step += 1
                loss_value = float(loss.detach())
                progress(len(idx))
    finally:
        net.eval()
        torch.random.set_rng_state(generator_state)
    return {'seconds': time.perf_counter() - start, 'final_loss': loss_value,
            'mu': [float(m) for m in net.mu().detach()]}


def _descend(optimiser, loss, net) -> None:
    """Take one optimiser step on ``loss``; keep every clipping threshold positive."""
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    with torch.no_grad():
        for t in net.thresholds:
            t.mu.clamp_(min=1e-3)


def finetune_snn(model: ConvertedNetwork, images: np.ndarray, labels: np.ndarray, *,
                 timesteps: int, epochs: int = 1, batch_size: int = 64, lr: float = 2e-4,
                 params: Optional[ConvertedParams] = None, seed: int = 0,
                 progress: Callable[[int], None] = lambda n: None) -> dict:
    """
    Fine-tune ``model`` as an SNN at ``timesteps`` with surrogate gradients (in place).

    The loss is the cross-entropy of ``evidence / T`` (the mean output). Returns
    ``{'seconds', 'final_loss', 'mu'}``.
    """
    net = model.net
    params = model.params if params is None else params
    rng = np.random.default_rng(seed)
    optimiser = _optimiser(model, lr, 0.0, 0.0)
    labels_t = torch.as_tensor(np.asarray(labels, np.int64))
    total = epochs * math.ceil(len(images) / batch_size)
    step, loss_value = 0, float('nan')
    start = time.perf_counter()
    for _ in range(epochs):
        for idx in _batches(len(images), batch_size, rng):
            _cosine(optimiser, lr, step, total)
            x = model._inputs(images[idx])
            evidence = model.run_snn(x, timesteps, params, surrogate=True)[0]
            loss = functional.cross_entropy(evidence / timesteps,
                                            labels_t[idx].to(model.device))
            _descend(optimiser, loss, net)
            step += 1
            loss_value = float(loss.detach())
            progress(len(idx))
    return {'seconds': time.perf_counter() - start, 'final_loss': loss_value,
            'mu': [float(m) for m in net.mu().detach()]}


def ann_accuracy(model: ConvertedNetwork, images: np.ndarray, labels: np.ndarray,
                 batch_size: int = 500) -> float:
    """Return the ANN's accuracy on ``images``."""
    correct = 0
    for first in range(0, len(images), batch_size):
        logits = model.ann_logits(images[first:first + batch_size])
        correct += int(np.sum(np.argmax(logits, 1) == labels[first:first + batch_size]))
    return correct / max(len(images), 1)


def snn_accuracy(model: ConvertedNetwork, images: np.ndarray, labels: np.ndarray,
                 timesteps: int, batch_size: int = 500, params=None) -> float:
    """Return the SNN's accuracy on ``images`` at ``timesteps``."""
    correct = 0
    for first in range(0, len(images), batch_size):
        result = model.infer(images[first:first + batch_size], timesteps=timesteps,
                             params=params)
        correct += int(np.sum(result.predicted == labels[first:first + batch_size]))
    return correct / max(len(images), 1)


def calibrate_threshold_scale(model: ConvertedNetwork, images: np.ndarray, labels: np.ndarray,
                              timesteps: int,
                              grid=(0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)) -> tuple:
    """
    Pick the threshold scale ``s`` that maximises SNN accuracy at ``timesteps`` on ``images``.

    Use labelled images held out from the test set (e.g. training images). Returns ``(best
    scale, {scale: accuracy})``; ties go to the scale closest to 1.
    """
    scores = {}
    for scale in grid:
        params = model.params.replace(threshold_scale=float(scale))
        scores[float(scale)] = snn_accuracy(model, images, labels, timesteps, params=params)
    best = max(scores, key=lambda s: (scores[s], -abs(s - 1.0)))
    return best, scores

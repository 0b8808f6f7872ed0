r"""
Training of convertible CNNs: data preparation, the ANN, optional SNN fine-tuning, evaluation.

1. **ANN training** (:func:`train_ann`): cross-entropy on the ANN logits with Adam; the
   clipping thresholds ``mu_l`` are trained with the weights and pulled down by an L2 penalty
   ``lambda_mu * sum_l mu_l^2`` (so each settles where the pre-activations really are, not at
   their maximum). The learning rate follows a cosine schedule to 0 over the epochs.
2. **Conversion** is free: the SNN uses the same weights and thresholds
   (:mod:`topspark_ros.core.converted.network`).
3. **Fine-tuning at the target T** (:func:`finetune_snn`, optional): the SNN itself is trained
   for ``T`` steps with back-propagation through time; the spike's derivative is the
   triangular surrogate ``max(0, 1 - |v - theta| / theta)`` and thresholds keep learning.

Inputs are ``uint8`` images ``[N, *input shape]`` (event data:
:class:`~topspark_ros.core.inputs.EventFrames`), labels ``int [N]``; the network normalises.

:func:`train` is the whole run of ``topspark train --family converted`` on plain arrays:
normalisation from the training data, a new network, the steps above, the ANN and SNN
accuracies on held-out samples, and the figures and checkpoint info of the run.

**Event data** (windows of events, a sensor size): the CNN has two input channels (OFF, ON
event counts at ``input_size``). The ANN learns from each window's count frame, the SNN takes
the window as per-bin count frames, one per step (fine-tuning and evaluation at T encode the
windows into T bins; :class:`EventInputs`, see :mod:`topspark_ros.core.events.encode` and
:mod:`topspark_ros.core.converted.network`). Normalisation: mean 0 (an empty pixel sends
nothing), the per-channel standard deviation of the training count frames.
"""

from dataclasses import dataclass
import math
import time
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from topspark_ros.core.converted.config import ConvertedConfig, ConvertedParams
from topspark_ros.core.converted.net import float32_convolutions
from topspark_ros.core.converted.network import ConvertedNetwork
from topspark_ros.core.inputs import EventFrames, Inputs
from topspark_ros.core.model import check_timesteps
from topspark_ros.core.topspark.evaluate import evaluate
import torch
import torch.nn.functional as functional

STAGES = ('train ANN', 'fine-tune SNN', 'evaluate SNN')
"""The stages :func:`train` reports progress for (the second with fine-tuning; the third with
evaluation images, one unit per evaluated T, before fine-tuning and after it)."""
NORMALISATION_SAMPLES = 10000
"""The first this many training inputs set the input normalisation."""
EVENT_CHUNK = 2000
"""Windows encoded at a time (bounds the memory of the encoder's counting array)."""


def frame_normalisation(images: np.ndarray) -> tuple:
    """
    Return the per-channel ``(mean, std)`` of ``uint8`` images, in ``[0, 1]`` units.

    ``images``: ``[N, H, W]`` (one channel) or ``[N, C, H, W]``. Each value is a list of
    ``C`` floats rounded to 4 decimals (as saved in :class:`ConvertedConfig`); a std is at
    least :data:`MIN_FRAME_STD`, one grey level (a channel constant in every image, blue 0
    on a folder of red and green objects, had std 0, and training stopped with "mean and std
    need one value per channel, std > 0"; a review).
    """
    x = images.astype(np.float64) / 255.0
    axes = (0, 1, 2) if x.ndim == 3 else (0, 2, 3)
    mean = np.atleast_1d(x.mean(axis=axes))
    std = np.atleast_1d(x.std(axis=axes))
    return [round(float(m), 4) for m in mean], [max(round(float(s), 4), MIN_FRAME_STD)
                                                for s in std]


MIN_FRAME_STD = round(1.0 / 255.0, 4)
"""The least per-channel std of the input normalisation: one grey level (0.0039)."""


def event_normalisation(frames: np.ndarray) -> tuple:
    """
    Return ``(mean, std)`` for event count frames ``float32 [N, 2, H, W]``.

    The mean is 0 (an empty pixel sends nothing); the std is the per-channel standard
    deviation of the counts, rounded to 4 decimals and at least ``1e-3``.
    """
    std = [max(round(float(v), 4), 1e-3) for v in frames.std(axis=(0, 2, 3))]
    return [0.0, 0.0], std


class EventInputs:
    """
    Encodes event windows for a converted network: count frames, or per-bin frames at T.

    Parameters
    ----------
    encoding
        the network's :class:`~topspark_ros.core.events.encode.EventEncoding` (kind
        ``'frames'``).
    sensor_size
        ``(width, height)`` of the sensor the windows come from (pixels).

    """

    def __init__(self, encoding, sensor_size: Tuple[int, int]) -> None:
        """Keep the encoding and the sensor size."""
        self.encoding = encoding
        self.sensor_size = sensor_size

    def __call__(self, windows: Sequence[np.ndarray],
                 timesteps: Optional[int] = None) -> EventFrames:
        """
        Return the windows' count frames ``[N, 2, H, W]`` (``timesteps`` None) or per-bin frames.

        With ``timesteps`` ``T``: ``[N, T, 2, H, W]``, bin ``t`` for step ``t``. Encoded
        :data:`EVENT_CHUNK` windows at a time.
        """
        from topspark_ros.core.events.encode import events_to_frames

        geometry = self.encoding.geometry(self.sensor_size)
        parts = [events_to_frames(list(windows[k:k + EVENT_CHUNK]),
                                  sensor_size=self.sensor_size, timesteps=timesteps or 1,
                                  input_size=(self.encoding.height, self.encoding.width),
                                  roi=geometry.roi)
                 for k in range(0, len(windows), EVENT_CHUNK)]
        frames = np.concatenate(parts) if parts else np.zeros(
            (0, timesteps or 1, 2, self.encoding.height, self.encoding.width), np.float32)
        return EventFrames(frames[:, 0] if timesteps is None else frames)


def frame_inputs(images: np.ndarray, timesteps: Optional[int] = None) -> np.ndarray:
    """Return the inputs of frame data at any T: the ``uint8`` images themselves."""
    return images


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


def train_ann(model: ConvertedNetwork, images: Inputs, labels: np.ndarray, *,
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
    torch.default_generator.manual_seed(seed)  # (CPU only: a device's stays; a review)
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


def finetune_snn(model: ConvertedNetwork, images: Inputs, labels: np.ndarray, *,
                 timesteps: int, epochs: int = 1, batch_size: int = 64, lr: float = 2e-4,
                 params: Optional[ConvertedParams] = None, seed: int = 0,
                 progress: Callable[[int], None] = lambda n: None) -> dict:
    """
    Fine-tune ``model`` as an SNN at ``timesteps`` with surrogate gradients (in place).

    The loss is the cross-entropy of ``evidence / T`` (the mean output). Returns
    ``{'seconds', 'final_loss', 'mu'}``.
    """
    timesteps = check_timesteps(timesteps, images)
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
            with float32_convolutions(model.device):  # (the backward pass's too)
                _descend(optimiser, loss, net)
            step += 1
            loss_value = float(loss.detach())
            progress(len(idx))
    return {'seconds': time.perf_counter() - start, 'final_loss': loss_value,
            'mu': [float(m) for m in net.mu().detach()]}


EVAL_BATCH_VALUES = 500 * 3 * 32 * 32
"""Input values a batch of the training's evaluations holds: 500 RGB 32x32 images, fewer of
larger ones (500 of 256x256 needed about 22 GB; a review: 44 MB an image at T=2)."""


def evaluation_batch(model: ConvertedNetwork, cap: int = 500) -> int:
    """Return the inputs a batch of :func:`ann_accuracy` / :func:`snn_accuracy` holds."""
    values = int(np.prod(model.input_spec.shape))
    return max(1, min(cap, EVAL_BATCH_VALUES // max(values, 1)))


def ann_accuracy(model: ConvertedNetwork, images: Inputs, labels: np.ndarray,
                 batch_size: Optional[int] = None) -> float:
    """Return the ANN's accuracy on ``images`` (``batch_size``: :func:`evaluation_batch`)."""
    batch_size = batch_size or evaluation_batch(model)
    correct = 0
    for first in range(0, len(images), batch_size):
        logits = model.ann_logits(images[first:first + batch_size])
        correct += int(np.sum(np.argmax(logits, 1) == labels[first:first + batch_size]))
    return correct / max(len(images), 1)


def snn_accuracy(model: ConvertedNetwork, images: Inputs, labels: np.ndarray,
                 timesteps: int, batch_size: Optional[int] = None, params=None) -> float:
    """
    Return the SNN's accuracy on ``images`` at ``timesteps`` (0 without images).

    ``batch_size``: :func:`evaluation_batch`.
    """
    if not len(images):
        return 0.0
    batch_size = batch_size or evaluation_batch(model)
    predicted = evaluate(model, images, timesteps=timesteps, batch_size=batch_size,
                         params=params).predicted
    return int(np.sum(predicted == labels)) / len(images)


def calibrate_threshold_scale(model: ConvertedNetwork, images: Inputs, labels: np.ndarray,
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


@dataclass(frozen=True)
class TrainData:
    """
    The samples of one training run and where they come from.

    Attributes
    ----------
    samples, labels
        training inputs: ``uint8`` frames ``[N, H, W]`` / ``[N, C, H, W]``, or (event data)
        an object array ``[N]`` of event windows; their classes ``int [N]``.
    class_names
        name of each class, indexed by label.
    name
        how the checkpoint names the data (a data set's name, or the directory read).
    eval_samples, eval_labels
        held-out inputs and classes to measure accuracies on (None: no evaluation).
    eval_split
        where the held-out inputs come from: ``'train'`` (held out of the training split)
        or ``'test'`` (recorded in the figures and the checkpoint).
    sensor_size
        event data: ``(width, height)`` of the sensor (pixels); None for frames.

    """

    samples: np.ndarray
    labels: np.ndarray
    class_names: Tuple[str, ...]
    name: str
    eval_samples: Optional[np.ndarray] = None
    eval_labels: Optional[np.ndarray] = None
    eval_split: str = 'test'
    sensor_size: Optional[Tuple[int, int]] = None


@dataclass(frozen=True)
class TrainSettings:
    """
    The choices of one training run (the options of ``topspark train --family converted``).

    Attributes
    ----------
    arch, widths, hidden
        network shape (:class:`ConvertedConfig`).
    epochs, lr, lambda_mu
        ANN training (:func:`train_ann`; Adam, cosine decay, L2 pull on the thresholds).
    finetune_timesteps
        fine-tune the SNN at this T (:func:`finetune_snn`; 0: no fine-tuning).
    finetune_epochs, n_finetune, finetune_lr
        fine-tuning epochs, training inputs used (the first ones), learning rate.
    eval_timesteps
        the T the SNN accuracy is measured at (the largest is the run's accuracy).
    seed
        seed of the initial weights, batch orders and torch's generator.
    device
        torch device.
    input_size
        event data only: side of the model input (pixels).
    roi
        event data only: the sensor region ``(x0, y0, w, h)`` the model sees (None: the
        largest centred one of the input's shape).

    """

    arch: str
    widths: Tuple[int, ...]
    hidden: int
    epochs: int
    lr: float
    lambda_mu: float
    finetune_timesteps: int
    finetune_epochs: int
    n_finetune: int
    finetune_lr: float
    eval_timesteps: Tuple[int, ...]
    seed: int
    device: str
    input_size: int = 28
    roi: Optional[Tuple[int, int, int, int]] = None


@dataclass(frozen=True)
class TrainRun:
    """
    What :func:`train` made.

    Attributes
    ----------
    model
        the trained network.
    result
        the run's figures, in report order (``topspark train --json`` prints them).
    info
        the checkpoint's ``info`` (data, accuracies, T, command).

    """

    model: ConvertedNetwork
    result: dict
    info: dict


def train(data: TrainData, settings: TrainSettings, *, command: str = '',
          progress: Callable[[str, int, int], None] = lambda stage, n, total: None,
          trained: Callable[[ConvertedNetwork, dict], None] = lambda model, info: None
          ) -> TrainRun:
    """
    Train a new converted network on ``data`` (module doc); return the :class:`TrainRun`.

    Frame data is normalised with :func:`frame_normalisation`, event data encoded with
    :class:`EventInputs` and normalised with :func:`event_normalisation` (both from the first
    :data:`NORMALISATION_SAMPLES` training inputs). With held-out inputs the ANN accuracy and
    the converted SNN accuracy at each ``eval_timesteps`` (and the fine-tuning T) are measured
    after ANN training, again after fine-tuning, and the SNN accuracy at the T the checkpoint
    records (the fine-tuning T, else the largest) is the run's ``accuracy``.

    Parameters
    ----------
    data
        training and held-out inputs.
    settings
        network shape and training choices.
    command
        the command line that ran, recorded in the checkpoint info.
    progress
        ``progress(stage, n, total)``: ``n`` more inputs of ``stage`` (one of
        :data:`STAGES`) done out of ``total``; called with ``n = 0`` when a stage starts.
    trained
        ``trained(model, info)``: called once the ANN is trained and again once it is
        fine-tuned, each time before it is evaluated, with the checkpoint ``info`` so far
        (``accuracy`` None), so a caller can keep it: an evaluation interrupted lost minutes
        of training.

    """
    samples, labels = data.samples, data.labels
    encoding = None
    if data.sensor_size is not None:
        from topspark_ros.core.events.encode import EventEncoding
        encoding = EventEncoding('frames', *data.sensor_size, settings.input_size,
                                 settings.input_size, 'channels', roi=settings.roi)
        inputs = EventInputs(encoding, data.sensor_size)
        images = inputs(samples)
        shape, channels = images.size, 2
        mean, std = event_normalisation(images.counts[:NORMALISATION_SAMPLES])
    else:
        inputs, images = frame_inputs, samples
        shape = images.shape[1:]
        channels = 1 if len(shape) == 2 else int(shape[0])
        mean, std = frame_normalisation(images[:NORMALISATION_SAMPLES])
    config = ConvertedConfig(arch=settings.arch, height=int(shape[-2]), width=int(shape[-1]),
                             channels=channels, n_classes=len(data.class_names),
                             widths=tuple(settings.widths), hidden=settings.hidden, mean=mean,
                             std=std, seed=settings.seed)
    torch.manual_seed(settings.seed)
    model = ConvertedNetwork(config, device=settings.device, event_encoding=encoding)
    total = settings.epochs * len(images)
    progress(STAGES[0], 0, total)
    ann = train_ann(model, images, labels, epochs=settings.epochs, lr=settings.lr,
                    lambda_mu=settings.lambda_mu, seed=settings.seed,
                    progress=lambda n: progress(STAGES[0], n, total))
    result = {'command': 'train', 'family': 'converted', 'arch': settings.arch,
              'n_samples': int(len(samples)), 'epochs': settings.epochs,
              'device': settings.device, 'train_seconds': ann['seconds'],
              'ann_final_loss': ann['final_loss'], 'thresholds_mu': ann['mu'],
              'finetune_timesteps': settings.finetune_timesteps, 'accuracy': None,
              'n_eval': 0}
    eval_images, eval_labels = data.eval_samples, data.eval_labels
    # The fine-tuning T among them: the T the checkpoint records (T=3 of a fine-tuning was
    # reported at T=8's accuracy, the largest evaluated; a review).
    eval_timesteps = sorted(set(settings.eval_timesteps) | (
        {settings.finetune_timesteps} if settings.finetune_timesteps else set()))
    eval_total = len(eval_timesteps)  # a bar per pass (before, after fine-tuning)

    def evaluate() -> dict:
        """Return the SNN's accuracy at every evaluation T (one progress unit each)."""
        accuracy = {}
        for t in eval_timesteps:
            accuracy[str(t)] = snn_accuracy(model, inputs(eval_images, t), eval_labels, t)
            progress(STAGES[2], 1, eval_total)
        return accuracy

    trained(model, _run_info(data, settings, result, command))  # kept before evaluating
    if eval_images is not None:
        result.update(n_eval=int(len(eval_labels)), eval_split=data.eval_split,
                      ann_accuracy=ann_accuracy(model, inputs(eval_images), eval_labels))
        start = time.perf_counter()
        progress(STAGES[2], 0, eval_total)
        result['converted_snn_accuracy'] = evaluate()
        result['eval_seconds'] = time.perf_counter() - start
        if settings.finetune_timesteps:  # its figures kept too, should fine-tuning be stopped
            trained(model, _run_info(data, settings, result, command))
    if settings.finetune_timesteps:
        n_ft = min(settings.n_finetune, len(images))
        total = settings.finetune_epochs * n_ft
        progress(STAGES[1], 0, total)
        ft = finetune_snn(model, inputs(samples[:n_ft], settings.finetune_timesteps),
                          labels[:n_ft], timesteps=settings.finetune_timesteps,
                          epochs=settings.finetune_epochs, lr=settings.finetune_lr,
                          seed=settings.seed, progress=lambda n: progress(STAGES[1], n, total))
        result.update(finetune_seconds=ft['seconds'], finetune_final_loss=ft['final_loss'],
                      thresholds_mu=ft['mu'], n_finetune=n_ft)
        if eval_images is not None:
            result['ann_accuracy_after_finetune'] = ann_accuracy(model, inputs(eval_images),
                                                                 eval_labels)
    if settings.finetune_timesteps:  # the fine-tuned network, kept before evaluating it
        trained(model, _run_info(data, settings, result, command))
    if eval_images is not None:
        # Without fine-tuning the model is the converted one: measured once (it was twice,
        # the second pass under no progress bar: 4 minutes that read as a hang; a review).
        if settings.finetune_timesteps:
            start = time.perf_counter()
            progress(STAGES[2], 0, eval_total)
            result['snn_accuracy'] = evaluate()
            result['eval_seconds'] = time.perf_counter() - start
        else:
            result['snn_accuracy'] = dict(result['converted_snn_accuracy'])
        # At the T the checkpoint records (the fine-tuning T): the largest evaluated T was
        # reported beside a checkpoint of T=2, at another accuracy than `eval` gives (a review).
        at = settings.finetune_timesteps or max(settings.eval_timesteps)
        result['accuracy'] = result['snn_accuracy'][str(at)]
        result['timesteps'] = at
    return TrainRun(model=model, result=result,
                    info=_run_info(data, settings, result, command))


def _run_info(data: TrainData, settings: TrainSettings, result: dict, command: str) -> dict:
    """
    Return the checkpoint ``info`` of a run from its ``result`` so far.

    Before fine-tuning has run (a run stopped during it keeps this), the network is the
    converted one: recorded as not fine-tuned (``finetune_timesteps`` 0, ``finetuned``
    false), with the figures measured of it; it was recorded as fine-tuned at the asked T,
    without figures (a review).
    """
    finetuned = 'finetune_seconds' in result
    snn = result.get('snn_accuracy')
    if snn is None and not finetuned:
        snn = result.get('converted_snn_accuracy')
    return {'dataset': data.name, 'class_names': list(data.class_names),
            'n_train': int(len(data.samples)), 'accuracy': result['accuracy'],
            'n_eval': result['n_eval'] if snn is not None else 0,
            'eval_split': data.eval_split,
            'ann_accuracy': result.get('ann_accuracy_after_finetune',
                                       result.get('ann_accuracy')),
            'snn_accuracy': snn,
            'finetune_timesteps': settings.finetune_timesteps if finetuned else 0,
            'finetuned': finetuned,
            'timesteps': (settings.finetune_timesteps if finetuned
                          else max(settings.eval_timesteps)),
            'seed': settings.seed,  # (with n_train: the images it learnt from, which
            # enhance leaves out of its validation images)
            'command': command}

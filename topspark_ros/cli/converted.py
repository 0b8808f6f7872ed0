"""
``topspark train --family converted``: train a CNN, convert it to an SNN, fine-tune, save.

On event data (``--dataset nmnist-synth``) the CNN has two input channels (OFF, ON event
counts at ``--input-size``): the ANN learns from each window's count frame, the SNN takes the
window as per-bin count frames, one per step (fine-tuning and evaluation at T encode the
windows into T bins; see :mod:`topspark_ros.core.events.encode` and
:mod:`topspark_ros.core.converted`). Normalisation: mean 0 (an empty pixel sends nothing), the
per-channel standard deviation of the training count frames.

Kept apart from :mod:`topspark_ros.cli.main` (which calls :func:`add_train_arguments` and
:func:`train`) so the converted family's options live in one place. The steps are in
:mod:`topspark_ros.core.converted.train`; the network in :mod:`topspark_ros.core.converted`.
"""

import argparse
import shlex
import time

from topspark_ros.cli.args import available_train, positive_int

FAMILIES = ('stdp', 'converted')
CONVERTED_EPOCHS = 2
"""ANN training epochs when ``--epochs`` is not given (``--family converted``)."""


def _timestep_list(text: str) -> list:
    """Parse comma-separated positive ints."""
    try:
        values = [int(t) for t in text.split(',') if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated integers, got {text!r}')
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f'timestep counts must be >= 1, got {text!r}')
    return values


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--family`` and the converted family's options to the ``train`` parser."""
    parser.add_argument('--family', choices=FAMILIES, default='stdp',
                        help='stdp: Diehl & Cook network learnt with STDP; converted: a CNN '
                        'with trainable clipping thresholds converted to an IF spiking '
                        'network (options below; --timesteps is then unused) '
                        '(default: %(default)s)')
    group = parser.add_argument_group('converted family (--family converted)')
    group.add_argument('--arch', choices=('vgg', 'resnet'), default='vgg',
                       help='network shape (default: %(default)s)')
    group.add_argument('--widths', type=_timestep_list, default=[16, 32, 64],
                       help='channels per stage, comma-separated (default: 16,32,64)')
    group.add_argument('--hidden', type=int, default=64,
                       help='hidden linear units, VGG only (default: %(default)s)')
    parser.add_argument('--epochs', type=positive_int,
                        help='passes over the --n-train images (STDP: shuffled anew each '
                        'pass; converted: ANN training epochs) (default: 1 for stdp, 2 for '
                        'converted)')
    group.add_argument('--lr', type=float, default=3e-3,
                       help='ANN learning rate (Adam, cosine decay) (default: %(default)s)')
    group.add_argument('--lambda-mu', type=float, default=5e-4,
                       help='L2 pull on the clipping thresholds (default: %(default)s)')
    group.add_argument('--finetune-timesteps', type=int, default=0,
                       help='fine-tune the SNN at this T with surrogate gradients '
                       '(0: no fine-tuning) (default: %(default)s)')
    group.add_argument('--finetune-epochs', type=int, default=1,
                       help='fine-tuning epochs (default: %(default)s)')
    group.add_argument('--n-finetune', type=int, default=10000,
                       help='training images used for fine-tuning (default: %(default)s)')
    group.add_argument('--finetune-lr', type=float, default=2e-4,
                       help='fine-tuning learning rate (default: %(default)s)')
    group.add_argument('--eval-timesteps', type=_timestep_list, default=[1, 2, 4, 8],
                       help='SNN timestep counts to evaluate with --n-eval (default: 1,2,4,8)')


def _normalisation(images):
    """Return per-channel ``(mean, std)`` of ``uint8`` images in [0, 1] units."""
    import numpy as np

    x = images.astype(np.float64) / 255.0
    axes = (0, 1, 2) if x.ndim == 3 else (0, 2, 3)
    mean = np.atleast_1d(x.mean(axis=axes))
    std = np.atleast_1d(x.std(axis=axes))
    return [round(float(m), 4) for m in mean], [round(float(s), 4) for s in std]


EVENT_CHUNK = 2000
"""Windows encoded at a time (bounds the memory of the encoder's counting array)."""


class _EventInputs:
    """Encodes event windows for a converted network: count frames or per-bin frames at T."""

    def __init__(self, encoding, sensor_size) -> None:
        self.encoding = encoding
        self.sensor_size = sensor_size

    def __call__(self, windows, timesteps=None):
        """Return ``[N, 2, H, W]`` (``timesteps`` None) or ``[N, T, 2, H, W]`` float32."""
        import numpy as np

        from topspark_ros.core.events.encode import events_to_frames

        geometry = self.encoding.geometry(self.sensor_size)
        parts = [events_to_frames(list(windows[k:k + EVENT_CHUNK]),
                                  sensor_size=self.sensor_size, timesteps=timesteps or 1,
                                  input_size=(self.encoding.height, self.encoding.width),
                                  roi=geometry.roi)
                 for k in range(0, len(windows), EVENT_CHUNK)]
        frames = np.concatenate(parts) if parts else np.zeros(
            (0, timesteps or 1, 2, self.encoding.height, self.encoding.width), np.float32)
        return frames[:, 0] if timesteps is None else frames


def _frame_inputs(images, timesteps=None):
    """Return frame-data inputs: the images themselves at every T."""
    return images


def train(args, load_split, progress, dataset_name) -> dict:
    """
    Run ``topspark train --family converted``; return the result dict.

    ``load_split(args, split)`` returns an :class:`~topspark_ros.core.data.idx.ImageDataset`;
    ``progress(args, total, desc)`` a progress bar; ``dataset_name(args, dataset)`` how
    the checkpoint names the data.
    """
    import torch

    from topspark_ros.core.checkpoint import save_checkpoint
    from topspark_ros.core.converted import ConvertedConfig, ConvertedNetwork
    from topspark_ros.core.converted.train import (ann_accuracy, finetune_snn, snn_accuracy,
                                                   train_ann)
    from topspark_ros.core.data.idx import split_indices

    train_set = load_split(args, 'train')
    held_out_n = args.n_eval if args.eval_split == 'train' else 0
    n_train = available_train(args, len(train_set), held_out_n)
    train_idx, held_idx = split_indices(len(train_set), [n_train, held_out_n], args.seed)
    samples, labels = train_set.images[train_idx], train_set.labels[train_idx]
    encoding = None
    if hasattr(train_set, 'sensor_size'):
        from topspark_ros.core.events.encode import EventEncoding
        encoding = EventEncoding('frames', *train_set.sensor_size, args.input_size,
                                 args.input_size, 'channels')
        inputs = _EventInputs(encoding, train_set.sensor_size)
        images = inputs(samples)
        shape, channels = images.shape[1:], 2
        mean = [0.0, 0.0]
        std = [max(round(float(v), 4), 1e-3) for v in images[:10000].std(axis=(0, 2, 3))]
    else:
        inputs, images = _frame_inputs, samples
        shape = images.shape[1:]
        channels = 1 if len(shape) == 2 else int(shape[0])
        mean, std = _normalisation(images[:10000])
    config = ConvertedConfig(arch=args.arch, height=int(shape[-2]), width=int(shape[-1]),
                             channels=channels, n_classes=len(train_set.class_names),
                             widths=tuple(args.widths), hidden=args.hidden, mean=mean,
                             std=std, seed=args.seed)
    torch.manual_seed(args.seed)
    model = ConvertedNetwork(config, device=args.device, event_encoding=encoding)
    epochs = CONVERTED_EPOCHS if args.epochs is None else args.epochs
    with progress(args, epochs * len(images), 'train ANN') as bar:
        ann = train_ann(model, images, labels, epochs=epochs, lr=args.lr,
                        lambda_mu=args.lambda_mu, seed=args.seed, progress=bar.update)
    result = {'command': 'train', 'family': 'converted', 'arch': args.arch,
              'n_samples': int(n_train), 'epochs': epochs, 'device': args.device,
              'train_seconds': ann['seconds'], 'ann_final_loss': ann['final_loss'],
              'thresholds_mu': ann['mu'], 'finetune_timesteps': args.finetune_timesteps,
              'accuracy': None, 'n_eval': 0}
    eval_images = eval_labels = None
    if args.n_eval:
        if args.eval_split == 'train':
            eval_images, eval_labels = train_set.images[held_idx], train_set.labels[held_idx]
        else:
            test_set = load_split(args, 'test')
            (idx,) = split_indices(len(test_set), [min(args.n_eval, len(test_set))], args.seed)
            eval_images, eval_labels = test_set.images[idx], test_set.labels[idx]
        result.update(n_eval=int(len(eval_labels)), eval_split=args.eval_split,
                      ann_accuracy=ann_accuracy(model, inputs(eval_images), eval_labels),
                      converted_snn_accuracy={})
        for t in args.eval_timesteps:
            result['converted_snn_accuracy'][str(t)] = snn_accuracy(
                model, inputs(eval_images, t), eval_labels, t)
    if args.finetune_timesteps:
        n_ft = min(args.n_finetune, len(images))
        with progress(args, args.finetune_epochs * n_ft, 'fine-tune SNN') as bar:
            ft = finetune_snn(model, inputs(samples[:n_ft], args.finetune_timesteps),
                              labels[:n_ft],
                              timesteps=args.finetune_timesteps, epochs=args.finetune_epochs,
                              lr=args.finetune_lr, seed=args.seed, progress=bar.update)
        result.update(finetune_seconds=ft['seconds'], finetune_final_loss=ft['final_loss'],
                      thresholds_mu=ft['mu'], n_finetune=n_ft)
        if eval_images is not None:
            result['ann_accuracy_after_finetune'] = ann_accuracy(model, inputs(eval_images),
                                                                 eval_labels)
    if eval_images is not None:
        start = time.perf_counter()
        result['snn_accuracy'] = {str(t): snn_accuracy(model, inputs(eval_images, t),
                                                       eval_labels, t)
                                  for t in args.eval_timesteps}
        result['eval_seconds'] = time.perf_counter() - start
        best = max(args.eval_timesteps)
        result['accuracy'] = result['snn_accuracy'][str(best)]
        result['timesteps'] = best
    info = {'dataset': dataset_name(args, train_set),
            'class_names': list(train_set.class_names), 'n_train': int(n_train),
            'accuracy': result['accuracy'], 'n_eval': result['n_eval'],
            'eval_split': args.eval_split,
            'ann_accuracy': result.get('ann_accuracy_after_finetune',
                                       result.get('ann_accuracy')),
            'snn_accuracy': result.get('snn_accuracy'),
            'finetune_timesteps': args.finetune_timesteps,
            'timesteps': args.finetune_timesteps or None,
            'command': 'topspark ' + ' '.join(shlex.quote(a) for a in args.argv)}
    result['checkpoint'] = str(save_checkpoint(args.output, model, info=info))
    return result

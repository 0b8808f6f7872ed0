"""
``topspark train --family converted``: train a CNN, convert it to an SNN, fine-tune, save.

The options of the converted family live here (:func:`add_train_arguments`); :func:`train`
picks the samples they name and calls :func:`topspark_ros.core.converted.train.train`, which
does the run (on event data too, ``--dataset nmnist-synth``: see that module), then saves the
checkpoint.
"""

import argparse
import os
import sys

from topspark_ros.cli.args import (available_eval, available_train, non_negative_float,
                                   non_negative_int, positive_float, positive_int, PROG,
                                   StoreGiven)
from topspark_ros.cli.common import (command_line, data_options, dataset, dataset_name,
                                     StageBars, tensor_digest)

FAMILIES = ('stdp', 'converted')
CONVERTED_EPOCHS = 2
"""ANN training epochs when ``--epochs`` is not given (``--family converted``)."""


def _positive_list(text: str, what: str) -> list:
    """Parse comma-separated positive ints (``what`` they are, for the message)."""
    try:
        values = [int(t) for t in text.split(',') if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated integers, got {text!r}')
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f'{what} must be >= 1, got {text!r}')
    return values


def _timestep_list(text: str) -> list:
    """Parse comma-separated positive timestep counts (argparse type)."""
    return _positive_list(text, 'timestep counts')


def _width_list(text: str) -> list:
    """Parse comma-separated positive channel counts (argparse type)."""
    return _positive_list(text, 'channel counts')


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
    group.add_argument('--widths', type=_width_list, default=[16, 32, 64],
                       help='channels per stage, comma-separated (default: 16,32,64)')
    group.add_argument('--hidden', type=non_negative_int, default=64, action=StoreGiven,
                       help='hidden linear units, VGG only (default: %(default)s)')
    parser.add_argument('--epochs', type=positive_int,
                        help='passes over the --n-train images (STDP: shuffled anew each '
                        'pass; converted: ANN training epochs) (default: 1 for stdp, 2 for '
                        'converted)')
    # Every value checked here, before the ANN trains: a fine-tuning option found bad after
    # it (a negative T or rate) failed the run with a checkpoint left that a rerun refused,
    # and --n-finetune -5 fine-tuned on all but 5 images (a review).
    group.add_argument('--lr', type=positive_float, default=3e-3,
                       help='ANN learning rate (Adam, cosine decay) (default: %(default)s)')
    group.add_argument('--lambda-mu', type=non_negative_float, default=5e-4,
                       help='L2 pull on the clipping thresholds (default: %(default)s)')
    group.add_argument('--finetune-timesteps', type=non_negative_int, default=0,
                       help='fine-tune the SNN at this T with surrogate gradients '
                       '(0: no fine-tuning) (default: %(default)s)')
    group.add_argument('--finetune-epochs', type=positive_int, default=1,
                       help='fine-tuning epochs (default: %(default)s)')
    group.add_argument('--n-finetune', type=positive_int, default=10000,
                       help='training images used for fine-tuning (default: %(default)s)')
    group.add_argument('--finetune-lr', type=positive_float, default=2e-4,
                       help='fine-tuning learning rate (default: %(default)s)')
    group.add_argument('--eval-timesteps', type=_timestep_list, default=[1, 2, 4, 8],
                       help='SNN timestep counts to evaluate with --n-eval (default: 1,2,4,8)')


def train(args) -> dict:
    """
    Run ``topspark train --family converted``; return the result dict.

    ``--n-train`` inputs of the training split (and, with ``--eval-split train``, ``--n-eval``
    held out of it; else up to ``--n-eval`` of the test split), drawn with ``--seed``.
    """
    from topspark_ros.core.checkpoint import save_checkpoint
    from topspark_ros.core.converted import train as converted_train
    from topspark_ros.core.data.dataset import split_indices

    train_set = dataset(args, 'train')
    held_out_n = args.n_eval if args.eval_split == 'train' else 0
    n_train = available_train(args, len(train_set), held_out_n)
    train_idx, held_idx = split_indices(len(train_set), [n_train, held_out_n], args.seed)
    eval_samples = eval_labels = None
    if args.n_eval:
        eval_set, eval_idx = train_set, held_idx
        if args.eval_split != 'train':
            eval_set = dataset(args, 'test')
            (eval_idx,) = split_indices(len(eval_set), [available_eval(args, len(eval_set))],
                                        args.seed)
        eval_samples, eval_labels = eval_set.images[eval_idx], eval_set.labels[eval_idx]
    data = converted_train.TrainData(
        samples=train_set.images[train_idx], labels=train_set.labels[train_idx],
        class_names=tuple(train_set.class_names), name=dataset_name(args, train_set),
        eval_samples=eval_samples, eval_labels=eval_labels, eval_split=args.eval_split,
        sensor_size=getattr(train_set, 'sensor_size', None))
    hidden = args.hidden
    if args.arch == 'resnet':  # (no hidden layer: --hidden 999 was taken and recorded)
        if getattr(args, 'hidden_given', False):
            print(f'{PROG}: note: --hidden not used by --arch resnet (it has no hidden linear '
                  'layer; ignored)', file=sys.stderr)
        hidden = 0
    settings = converted_train.TrainSettings(
        arch=args.arch, widths=tuple(args.widths), hidden=hidden,
        epochs=CONVERTED_EPOCHS if args.epochs is None else args.epochs, lr=args.lr,
        lambda_mu=args.lambda_mu, finetune_timesteps=args.finetune_timesteps,
        finetune_epochs=args.finetune_epochs, n_finetune=args.n_finetune,
        finetune_lr=args.finetune_lr, eval_timesteps=tuple(args.eval_timesteps),
        seed=args.seed, device=args.device, input_size=args.input_size, roi=args.roi)
    saved, saved_infos, digests = [], [], []

    def save(model, info: dict) -> str:
        """Save the checkpoint (again: with the evaluation); only our own file is replaced."""
        if saved and os.path.lexists(saved[-1]) and tensor_digest(saved[-1]) != digests[-1]:
            # (another run's, or an import's, was replaced and its tensors deleted; a review;
            # one deleted meanwhile is saved again)
            raise RuntimeError(f'{saved[-1]} was replaced while this run went on (another run '
                               "or command wrote it): left as it is; this run's model is not "
                               'saved (run it again with another -o)')
        path = str(save_checkpoint(args.output, model, info={**info, **data_options(
            args, train_set)}, replace=args.overwrite or bool(saved)))
        saved.append(path)
        saved_infos.append(info)
        digests.append(tensor_digest(path))
        return path

    try:
        # (the evaluation counts its T, not images: "1/4 [..., 1.31s/img]"; a review)
        with StageBars(args, {converted_train.STAGES[2]: 'T'}) as bars:  # saved once trained,
            # before each evaluation; again after
            run = converted_train.train(data, settings, command=command_line(args),
                                        progress=bars, trained=save)
    except KeyboardInterrupt:
        if saved:
            what = ('the converted network is kept, before fine-tuning (recorded as not '
                    'fine-tuned)' if settings.finetune_timesteps and not any(
                        info.get('finetuned') for info in saved_infos)
                    else 'the trained network is kept, not evaluated')
            print(f'{PROG}: note: {what}: {saved[-1]}', file=sys.stderr)
        raise
    run.result['checkpoint'] = save(run.model, run.info)
    return run.result

"""
``topspark train``: learn a model from a data source and save its checkpoint.

The STDP family (default) learns a Diehl & Cook network on-line (unlabelled training images),
assigns its neuron labels from a labelled subset and optionally evaluates it on held-out
images (:func:`topspark_ros.core.stdp.train.train`); with ``--params-from PROFILE`` it does all
of it with the parameters the profile enhanced for ``--timesteps``, which become the new
model's own. ``--family converted`` trains a CNN and converts it
(:mod:`topspark_ros.cli.converted`). On event data (``--dataset nmnist-synth``) the models
learn from event windows, and the checkpoint records their encoding.
"""

import sys
from typing import Optional

from topspark_ros.cli import common
from topspark_ros.cli import converted as cli_converted
from topspark_ros.cli.args import (available_train, non_negative_int, positive_float, positive_int,
                                   PROG, StoreGiven, UsageError)


def add_parser(sub, parent) -> None:
    """Add the ``train`` command to the subparsers ``sub`` (``parent``: the common options)."""
    train = sub.add_parser('train', parents=[parent], help='learn a Diehl & Cook STDP network '
                           '(--family converted: train a CNN and convert it to an SNN)',
                           description='Learn a Diehl & Cook (2015) network with online STDP, '
                           'assign labels and save a checkpoint.')
    train.add_argument('--output', '-o', required=True,
                       help='checkpoint to write (metadata .json; tensors beside it)')
    train.add_argument('--overwrite', action='store_true',
                       help='replace an existing checkpoint at --output (default: refuse, '
                       'before training)')
    train.add_argument('--n-train', type=positive_int, default=1000, action=StoreGiven,
                       help='training images learnt from, unlabelled (default: %(default)s)')
    train.add_argument('--n-label', type=positive_int,
                       help='labelled images (the first of the training images) used to '
                       'assign neuron labels (default: all training images)')
    train.add_argument('--n-eval', type=non_negative_int, default=0,
                       help='held-out images of --eval-split to evaluate on (default: none)')
    train.add_argument('--eval-split', choices=('train', 'test'), default='test',
                       help="split of the held-out images; 'train' takes images not used "
                       'for training (default: %(default)s)')
    train.add_argument('--neurons', '-N', type=positive_int, default=100,
                       help='excitatory neurons (default: %(default)s)')
    train.add_argument('--dt-ms', type=positive_float, default=1.0,
                       help='simulation step in ms (default: %(default)s)')
    train.add_argument('--learning-rule', choices=('dc', 'pair'), default='dc',
                       help='dc: Diehl & Cook triplet rule; pair: pair-based PostPre '
                       '(default: %(default)s)')
    train.add_argument('--inhibition', choices=('populations', 'direct'), default='populations',
                       help='lateral inhibition through an inhibitory layer or directly '
                       '(default: %(default)s)')
    train.add_argument('--params-from', help='timestep profile (made by `topspark enhance`) '
                       'whose parameters enhanced for --timesteps are used to learn, label and '
                       "evaluate, and become the new model's own (recorded in the checkpoint; "
                       'default: none, the standard parameters)')
    events = train.add_argument_group('event data (--dataset nmnist-synth)')
    events.add_argument('--polarity', choices=('merge', 'split', 'on', 'off'), default='merge',
                        help='STDP family: how the two event polarities map to inputs (merge: '
                        'one input per pixel; split: OFF and ON inputs per pixel) '
                        '(default: %(default)s)')
    events.add_argument('--input-size', type=positive_int, default=28,
                        help='side of the square model input the sensor is downscaled to '
                        '(default: %(default)s)')
    cli_converted.add_train_arguments(train)


def run(args) -> dict:
    """Run ``topspark train``; return the result dict."""
    common.check_output(args.output, args.overwrite, checkpoint=True)
    if args.family == 'converted':
        return cli_converted.train(args)
    import numpy as np

    from topspark_ros.core.checkpoint import save_checkpoint
    from topspark_ros.core.data.dataset import split_indices
    from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig
    from topspark_ros.core.stdp.train import train
    from topspark_ros.core.topspark.records import params_for_profile

    params, enhanced = DynamicsParams(), None
    if args.params_from:
        profile = common.profile_at(args.params_from, args.timesteps)
        enhanced = profile.params_for(args.timesteps)
        if enhanced is not None:
            params = params_for_profile(profile, args.params_from, args.timesteps)
    train_set = common.dataset(args, 'train')
    held_out_n = args.n_eval if args.eval_split == 'train' else 0
    n_train = available_train(args, len(train_set), held_out_n)
    n_label = args.n_label if args.n_label is not None else n_train
    if n_label > n_train:
        raise UsageError(f'--n-label ({n_label}) cannot exceed the training images ({n_train})')
    train_idx, held_idx = split_indices(len(train_set), [n_train, held_out_n], args.seed)
    epochs = 1 if args.epochs is None else args.epochs
    encoding = None
    if common.source(args).events:
        from topspark_ros.core.events.encode import EventEncoding
        encoding = EventEncoding('spike_trains', *train_set.sensor_size, args.input_size,
                                 args.input_size, args.polarity)
        n_inputs = encoding.n_inputs
    else:
        n_inputs = int(np.prod(train_set.images.shape[1:]))
    config = STDPConfig(n_inputs=n_inputs,
                        n_neurons=args.neurons, n_classes=len(train_set.class_names),
                        dt_ms=args.dt_ms, inhibition=args.inhibition,
                        learning_rule=args.learning_rule, seed=args.seed)
    network = DiehlCookNetwork(config, params, device=args.device, event_encoding=encoding)
    eval_images = eval_labels = None
    if args.n_eval:
        if args.eval_split == 'train':
            eval_images, eval_labels = train_set.images[held_idx], train_set.labels[held_idx]
        else:
            test_set = common.dataset(args, 'test')
            (idx,) = split_indices(len(test_set), [min(args.n_eval, len(test_set))], args.seed)
            eval_images, eval_labels = test_set.images[idx], test_set.labels[idx]
    info = {'dataset': common.dataset_name(args, train_set),
            'class_names': list(train_set.class_names), 'timesteps': args.timesteps,
            'n_train': n_train, 'epochs': epochs, 'n_label': n_label,
            'accuracy': None, 'n_eval': 0, 'eval_split': args.eval_split,
            'params_from': args.params_from, 'enhanced_params': enhanced,
            'command': common.command_line(args), **common.data_options(args, train_set)}
    saved = []

    def save_trained() -> None:  # before the evaluation: interrupting it loses no training
        path = save_checkpoint(args.output, network, info=info, replace=args.overwrite)
        saved.extend((path, _tensor_digest(path)))

    with common.StageBars(args) as bars:
        trained = train(common.for_data(network, train_set, args.output),
                        train_set.images[train_idx], train_set.labels[train_idx],
                        timesteps=args.timesteps, n_label=n_label, epochs=epochs,
                        seed=args.seed, batch_size=args.batch_size, eval_inputs=eval_images,
                        eval_labels=eval_labels, progress=bars, trained=save_trained)
    result = {'command': 'train', 'seed': args.seed, 'n_samples': n_train, 'epochs': epochs,
              'n_label': n_label,
              'timesteps': args.timesteps, 'neurons': args.neurons, 'dt_ms': args.dt_ms,
              'learning_rule': args.learning_rule, 'inhibition': args.inhibition,
              'device': args.device, 'train_seconds': trained.learn_seconds,
              **common.speed(trained.learn_seconds, trained.presentations),
              'accuracy': trained.accuracy, 'n_eval': trained.n_eval,
              'params_from': args.params_from, 'enhanced_params': enhanced}
    if trained.n_eval:
        result.update(eval_split=args.eval_split,
                      eval_latency_ms_per_sample=1e3 * trained.eval_seconds / trained.n_eval)
    result['checkpoint'] = str(saved[0])
    if trained.n_eval:  # the evaluation's figures join the checkpoint saved before it,
        info.update(accuracy=result['accuracy'], n_eval=result['n_eval'])
        if _tensor_digest(saved[0]) == saved[1]:  # unless another run replaced it meanwhile
            save_checkpoint(args.output, network, info=info)
        else:
            print(f'{PROG}: note: {saved[0]} was replaced while this run evaluated its model; '
                  'left as it is (the evaluation is in this output only)', file=sys.stderr)
    return result


def _tensor_digest(path) -> Optional[str]:
    """Return the SHA-256 of the tensors the checkpoint metadata at ``path`` names, or None."""
    from topspark_ros.core.checkpoint import CheckpointError, read_metadata
    try:
        return read_metadata(path)[0]['tensors']['sha256']
    except CheckpointError:
        return None

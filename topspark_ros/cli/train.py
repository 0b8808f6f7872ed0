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

import json
import os
from pathlib import Path
import sys

from topspark_ros.cli import common
from topspark_ros.cli import converted as cli_converted
from topspark_ros.cli.args import (available_eval, available_train, non_negative_int, parse_roi,
                                   positive_float, positive_int, PROG, StoreGiven, UsageError)


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
    train.add_argument('--resume', action='store_true',
                       help='go on from the training state an interrupted run of the same '
                       'command left beside --output (OUTPUT.training.npz: saved every '
                       '--state-every-min minutes of learning and when interrupted); the '
                       'result is that of an uninterrupted run (STDP family)')
    train.add_argument('--state-every-min', type=positive_float, default=10.0,
                       help='minutes of learning between saves of the training state '
                       '(default: %(default)s); it is removed once the checkpoint is saved')
    events = train.add_argument_group('event data (--dataset nmnist-synth)')
    events.add_argument('--polarity', choices=('merge', 'split', 'on', 'off'), default='merge',
                        help='STDP family: how the two event polarities map to inputs (merge: '
                        'one input per pixel; split: OFF and ON inputs per pixel) '
                        '(default: %(default)s)')
    events.add_argument('--input-size', type=positive_int, default=28,
                        help='side of the square model input the sensor is downscaled to '
                        '(default: %(default)s)')
    events.add_argument('--roi', type=parse_roi, metavar='X,Y,W,H',
                        help='both families: the region of the sensor the model sees, '
                        'downscaled to the input (recorded in the checkpoint; the classifier '
                        'uses it on the same sensor) (default: the largest centred region of '
                        "the input's shape: a 1280x720 sensor's middle 720x720)")
    cli_converted.add_train_arguments(train)
    _DEFAULTS.update((dest, train.get_default(dest)) for dest in STDP_ONLY + CONVERTED_ONLY)


STDP_ONLY = ('neurons', 'n_label', 'dt_ms', 'learning_rule', 'inhibition', 'params_from',
             'state_every_min', 'polarity', 'timesteps', 'batch_size')
"""Options of ``train`` the converted family does not use."""
CONVERTED_ONLY = ('arch', 'widths', 'hidden', 'lr', 'lambda_mu', 'finetune_timesteps',
                  'finetune_epochs', 'n_finetune', 'finetune_lr', 'eval_timesteps')
"""Options of ``train`` the STDP family does not use."""
_DEFAULTS: dict = {}


def _note_unused(args) -> None:
    """
    Note the options given that the family does not use (taken in silence before; a review).

    An option counts as given when its value is not the parser's default.
    """
    unused = CONVERTED_ONLY if args.family == 'stdp' else STDP_ONLY
    given = [dest for dest in unused if dest in _DEFAULTS
             and getattr(args, dest, _DEFAULTS[dest]) != _DEFAULTS[dest]]
    if given:
        flags = ', '.join('--' + dest.replace('_', '-') for dest in given)
        print(f'{PROG}: note: {flags} not used by the {args.family} family (ignored)',
              file=sys.stderr)


def run(args) -> dict:
    """Run ``topspark train``; return the result dict."""
    common.check_output(args.output, args.overwrite, checkpoint=True)
    _note_unused(args)
    data = common.source(args)
    shaping = [flag for flag, value in (('--image-size', getattr(args, 'image_size', None)),
                                        ('--color', getattr(args, 'color', None)))
               if value is not None]
    if shaping and data.kind not in ('folder', 'bag'):  # (a 28 x 28 grey model without a
        # word, after --image-size 32 --color rgb on Fashion-MNIST; a review)
        print(f'{PROG}: note: {", ".join(shaping)} shape the images of a folder or a bag; '
              f'{data.label} is read at its own size and colour (ignored)', file=sys.stderr)
    if args.roi is not None and not data.events:
        raise UsageError('--roi is a region of an event sensor: for event data only')
    state_path = training_state_path(args.output)
    if args.family == 'converted':
        if args.resume:
            raise UsageError('--resume: the converted family saves no training state')
        result = cli_converted.train(args)
        _say_a_stale_profile(Path(result['checkpoint']))  # (said for STDP only; a review)
        return result
    if args.resume and not state_path.is_file():
        raise UsageError(f'--resume: no training state at {state_path} (a run of this '
                         'command leaves one when it is interrupted while learning)')
    if not args.resume and os.path.lexists(state_path):
        raise UsageError(f'{state_path} holds the learning of an interrupted run of this '
                         'output: add --resume to go on from it, or remove it to start again')
    import numpy as np

    from topspark_ros.core.checkpoint import save_checkpoint
    from topspark_ros.core.data.dataset import split_indices
    from topspark_ros.core.stdp import DiehlCookNetwork, DynamicsParams, STDPConfig
    from topspark_ros.core.stdp.train import save_training_state, train
    from topspark_ros.core.topspark.records import params_for_profile

    params, enhanced = DynamicsParams(), None
    if args.params_from:
        profile = common.profile_at(args.params_from, args.timesteps)
        if profile.model_family != 'stdp':  # (its parameters are no STDP network's: an
            # AttributeError traceback after the data was read; a review)
            raise UsageError(f'--params-from {args.params_from}: a profile of a '
                             f'{profile.model_family} model; an STDP network is trained with '
                             "the enhanced parameters of an STDP model's profile")
        enhanced = profile.params_for(args.timesteps)
        if enhanced is not None:
            params = params_for_profile(profile, args.params_from, args.timesteps)
        else:  # (trained with the model's own values while the checkpoint named the profile)
            print(f'{PROG}: note: {args.params_from} holds no enhanced parameters at '
                  f'T={args.timesteps}: the standard values are used', file=sys.stderr)
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
                                 args.input_size, args.polarity, roi=args.roi)
        n_inputs = encoding.n_inputs
    else:
        shape = tuple(train_set.images.shape[1:])
        if len(shape) != 2 or shape[0] != shape[1]:  # (an RGB set trained a model no command
            # or node could run: '3072 inputs are not a square image'; a review)
            name, size = common.dataset_name(args, train_set), 'x'.join(map(str, shape))
            raise UsageError(f"the STDP family takes grey square images; {name}'s are {size}: "
                             'train a converted model (--family converted), or read a folder '
                             'with --color grey --image-size N')
        n_inputs = int(np.prod(shape))
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
            (idx,) = split_indices(len(test_set), [available_eval(args, len(test_set))],
                                   args.seed)
            eval_images, eval_labels = test_set.images[idx], test_set.labels[idx]
    info = {'dataset': common.dataset_name(args, train_set),
            'class_names': list(train_set.class_names), 'timesteps': args.timesteps,
            'n_train': n_train, 'epochs': epochs, 'n_label': n_label,
            'accuracy': None, 'n_eval': 0, 'eval_split': args.eval_split,
            'params_from': args.params_from, 'enhanced_params': enhanced,
            'command': common.command_line(args), **common.data_options(args, train_set)}
    settings = _resume_settings(network, params, info, train_idx)
    start = None
    if args.resume:
        start = _resumed(network, state_path, settings)
    saved = []

    def save_trained() -> None:  # before the evaluation: interrupting it loses no training
        path = save_checkpoint(args.output, network, info=info, replace=args.overwrite)
        saved.extend((path, common.tensor_digest(path)))
        state_path.unlink(missing_ok=True)  # the checkpoint holds it all now

    def save_state(position) -> None:
        save_training_state(state_path, network, position, settings)

    try:
        with common.StageBars(args) as bars:
            trained = train(common.for_data(network, train_set, args.output),
                            train_set.images[train_idx], train_set.labels[train_idx],
                            timesteps=args.timesteps, n_label=n_label, epochs=epochs,
                            seed=args.seed, batch_size=args.batch_size,
                            eval_inputs=eval_images, eval_labels=eval_labels, progress=bars,
                            trained=save_trained, start=start, save_state=save_state,
                            state_every_s=60.0 * args.state_every_min)
    except KeyboardInterrupt:  # said once the bars are closed (it was written onto one)
        if not saved and state_path.is_file():
            print(f'{PROG}: the learning so far is saved in {state_path}: run the same '
                  'command with --resume to go on', file=sys.stderr)
        raise
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
    if start is not None:
        result['resumed_at'] = {'epoch': start.epoch + 1, 'input': start.done}
    result['checkpoint'] = str(saved[0])
    _say_a_stale_profile(saved[0])
    if trained.n_eval:  # the evaluation's figures join the checkpoint saved before it,
        info.update(accuracy=result['accuracy'], n_eval=result['n_eval'])
        if common.tensor_digest(saved[0]) == saved[1]:  # unless another run replaced it meanwhile
            save_checkpoint(args.output, network, info=info)
        else:
            print(f'{PROG}: note: {saved[0]} was replaced while this run evaluated its model; '
                  'left as it is (the evaluation is in this output only)', file=sys.stderr)
    return result


def _say_a_stale_profile(checkpoint: Path) -> None:
    """
    Note when the profile beside a model just written describes the model it replaced.

    ``train --overwrite`` left the old ``X.profile.yaml`` beside the new model without a word;
    the nodes and ``eval --params-from`` refuse it later by its SHA-256 (a CLI review).
    """
    from topspark_ros.core.checkpoint import read_metadata
    from topspark_ros.core.topspark.profile import default_profile_path, load_profile

    profile_path = default_profile_path(checkpoint)
    if not profile_path.is_file():
        return
    try:
        described = load_profile(profile_path).model_sha256
        sha = read_metadata(checkpoint)[0]['tensors']['sha256']
    except (OSError, ValueError, KeyError):
        return
    if described != sha:
        print(f'{PROG}: note: {profile_path} describes the model this one replaced: run '
              f'`topspark sweep -m {checkpoint} --overwrite` to profile the new one',
              file=sys.stderr)


def training_state_path(output) -> Path:
    """Return where a training run of the checkpoint ``output`` keeps its learning state."""
    from topspark_ros.core.checkpoint import metadata_path

    meta = metadata_path(output)
    return meta.with_name(f'{meta.stem}.training.npz')


def _resume_settings(network, params, info: dict, train_idx) -> dict:
    """Return what a resumed run must share with the run it goes on from (JSON values)."""
    import dataclasses
    import hashlib

    import numpy as np

    settings = {'config': dataclasses.asdict(network.config),
                'params': dataclasses.asdict(params), 'engine': network.engine_name,
                'event_encoding': None if network.event_encoding is None
                else dataclasses.asdict(network.event_encoding),
                'train_inputs_sha256': hashlib.sha256(
                    np.ascontiguousarray(train_idx, np.int64).tobytes()).hexdigest(),
                **{k: info[k] for k in ('dataset', 'class_names', 'timesteps', 'n_train',
                                        'epochs', 'n_label', 'data', 'data_options')
                   if k in info}}
    return json.loads(json.dumps(settings))


def _difference(key: str, now, then, shown: int = 3) -> str:
    """Return how setting ``key`` differs, field by field for a mapping: 'x 400 (was 100)'."""
    if isinstance(now, dict) and isinstance(then, dict):
        fields = sorted(f for f in set(now) | set(then) if now.get(f) != then.get(f))
        text = ', '.join(f'{key}.{f} {_short(now.get(f))} (was {_short(then.get(f))})'
                         for f in fields[:shown])
        return text + (f' and {len(fields) - shown} more' if len(fields) > shown else '')
    return f'{key} {_short(now)} (was {_short(then)})'


def _short(value, most: int = 40) -> str:
    """Return ``value`` as text of at most ``most`` characters."""
    text = str(value)
    return text if len(text) <= most else text[:most - 3] + '...'


def _resumed(network, state_path: Path, settings: dict):
    """Restore the learning state at ``state_path`` into ``network``; return its position."""
    from topspark_ros.core.stdp.train import load_training_state

    arrays, position, saved = load_training_state(state_path)
    differ = sorted(k for k in set(settings) | set(saved) if settings.get(k) != saved.get(k))
    if differ:  # (named down to the field: '(config differ)' said too little; a CLI review)
        details = '; '.join(_difference(k, settings.get(k), saved.get(k)) for k in differ)
        raise UsageError(f'--resume: {state_path} is the state of a run with other settings '
                         f"({', '.join(differ)} differ: {details}); give that run's options, "
                         'or remove it to start again')
    network.restore_learning_state(arrays)
    print(f'{PROG}: resuming at pass {position.epoch + 1}, input {position.done}, from '
          f'{state_path}', file=sys.stderr)
    return position

"""
``topspark eval``: accuracy and speed of a checkpoint on a split of a data source.

Inference at ``--timesteps`` through :func:`topspark_ros.core.topspark.evaluate.evaluate` (the
batch starting at image ``i`` seeded ``--seed + 1 + i``), with the model's own parameters or
those a profile enhanced for that T (``--params-from``), and the readout's ``--vote``; the
energy per sample is the operation counts priced under ``--preset``, as ``topspark sweep``
prices them.
"""

import sys

from topspark_ros.cli import common
from topspark_ros.cli.args import positive_int, PROG


def add_parser(sub, parent) -> None:
    """Add the ``eval`` command to the subparsers ``sub`` (``parent``: the common options)."""
    parser = sub.add_parser('eval', parents=[parent], help='evaluate a checkpoint',
                            description='Measure accuracy and speed of a checkpoint.')
    parser.add_argument('--model', '-m', required=True, help='checkpoint (metadata .json)')
    parser.add_argument('--split', choices=('train', 'val', 'test'), default='test',
                        help='split to evaluate on (val: image folders and bags only) '
                        '(default: %(default)s)')
    parser.add_argument('--n-eval', type=positive_int,
                        help='images to evaluate (default: the whole split)')
    parser.add_argument('--vote', choices=('all_activity', 'cosine'), default=None,
                        help='readout vote of an STDP model (default: all_activity; a '
                        'converted model has none: its output layer gives the evidence)')
    parser.add_argument('--params-from', help='timestep profile whose parameters enhanced '
                        'for --timesteps are applied (a T the profile lacks is an error; '
                        "default: none, the model's own parameters)")
    parser.add_argument('--preset', default='cmos45_fp32',
                        help='energy preset that prices the operation counts, as sweep does '
                        '(default: %(default)s)')


def run(args) -> dict:
    """Run ``topspark eval``; return the result dict."""
    import numpy as np

    from topspark_ros.core.data.dataset import split_indices
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.topspark.evaluate import evaluate

    energy = EnergyModel(args.preset)  # an unknown preset before the model loads
    model, meta = common.load_model(args)
    if not getattr(args, 'timesteps_given', False):  # a converted model made for T=2 ran
        args.timesteps = int(meta.get('info', {}).get('timesteps') or 350)  # at 350
    common.check_data_kind(model, args)
    dataset = common.class_aligned(common.dataset(args, args.split, spec=model.input_spec),
                                   meta, args.model)
    model = common.for_data(model, dataset, args.model)
    n = len(dataset) if args.n_eval is None else min(args.n_eval, len(dataset))
    if n == len(dataset):
        idx = np.arange(n)
    else:
        (idx,) = split_indices(len(dataset), [n], args.seed)
    images, labels = dataset.images[idx], dataset.labels[idx]
    params, enhanced = None, None
    if args.params_from:
        enhanced = common.profile_at(args.params_from, args.timesteps,
                                     (args.model, meta)).params_for(args.timesteps)
        params = None if enhanced is None else model.params_for_values(enhanced)
    with common.progress(args, len(images), 'eval') as bar:
        measured = evaluate(model, images, timesteps=args.timesteps,
                            batch_size=args.batch_size, params=params, seed=args.seed + 1,
                            seed_by='sample', progress=bar.update)
    stdp = model.checkpoint_family == 'stdp'
    if args.vote and not stdp:  # (printed back, and did nothing; a review)
        print(f"{PROG}: note: --vote is of an STDP model's readout: a "
              f'{model.checkpoint_family} model has none (ignored)', file=sys.stderr)
    vote = (args.vote or 'all_activity') if stdp else None
    predicted = model.readout.predict(measured.evidence, vote or 'all_activity')
    totals = measured.op_totals()
    priced = energy.estimate(measured.mean_energy_ops())
    return {'command': 'eval', 'seed': args.seed,
            'accuracy': float(np.mean(predicted == labels)), 'n_samples': int(n),
            'timesteps': args.timesteps, 'split': args.split,
            'dataset': common.dataset_name(args, dataset),
            'vote': vote, 'device': args.device, 'model': str(args.model),
            'params_from': args.params_from, 'enhanced_params': enhanced,
            'trained_timesteps': meta.get('info', {}).get('timesteps'),
            **common.speed(measured.seconds, n), 'energy_per_sample_j': priced.compute_j,
            'energy_preset': priced.preset, 'preset_includes': ', '.join(priced.includes),
            'ops_total': totals,
            'ops_per_sample': {k: v / n for k, v in totals.items()}}

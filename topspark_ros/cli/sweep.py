"""
``topspark sweep``: the timestep profile of a checkpoint, written next to it, and its plot.

Measures the model over ``--grid`` on held-out samples of a split
(:func:`topspark_ros.core.topspark.sweep.sweep`): accuracy (or, label-free, agreement with the
model's own prediction at a reference T), latency, operations, spikes and energy per T, one
on-line learning step per T and early exit; with ``--params-from`` at the parameters a profile
enhanced for each T. An existing profile is replaced only with ``--overwrite``, and then keeps
its enhanced parameters (re-measured with them).
"""

import dataclasses
import os
import sys

from topspark_ros.cli import common
from topspark_ros.cli.args import (non_negative_float, non_negative_int, parse_grid,
                                   positive_int, PROG, ray_address, refuse_timesteps,
                                   UsageError)
from topspark_ros.core.topspark.fanout import RAY_HELP
from topspark_ros.core.topspark.sweep import MAX_TIMING_RUNS, TIMING_S


def add_parser(sub, parent) -> None:
    """Add the ``sweep`` command to the subparsers ``sub`` (``parent``: the common options)."""
    sweep = sub.add_parser('sweep', parents=[parent], help='measure a model over a grid of T',
                           description='Timestep analysis: accuracy (95% interval), latency, '
                           'operations, spikes and energy of a checkpoint at each T of a grid, '
                           'for inference and one on-line learning step; writes a timestep '
                           'profile (YAML) next to the model and a PNG plot.')
    sweep.add_argument('--model', '-m', required=True, help='checkpoint (metadata .json)')
    sweep.add_argument('--grid', default=None,
                       help='comma-separated timestep counts (default: an STDP model '
                       f'{STDP_GRID}; a converted one, whose T is 1 to 8 or so: the largest '
                       'of the T it runs at and those its training evaluated, halved down '
                       'to 1, e.g. 8,4,2,1)')
    sweep.add_argument('--split', choices=('train', 'val', 'test'), default='test',
                       help='split to measure on: a held-out one (val: image folders and bags '
                       'only), or train, with a note (default: %(default)s)')
    sweep.add_argument('--n-eval', type=positive_int, default=2000,
                       help='held-out images per T (default: %(default)s)')
    sweep.add_argument('--n-train-steps', type=non_negative_int, default=50,
                       help='training images timed per T for the learning figures, on a copy '
                       'of the model (0: skip; default: %(default)s)')
    sweep.add_argument('--preset', default=None,
                       help=f'energy preset (default: {DEFAULT_PRESET})')
    sweep.add_argument('--timing-s', type=non_negative_float, default=TIMING_S,
                       help="time each T's inference again until this many seconds were "
                       f'timed (at most {MAX_TIMING_RUNS} runs) and keep the fastest run: '
                       'one run of a few hundred images is noise (default: %(default)s)')
    sweep.add_argument('--early-exit-margin', type=non_negative_float, default=3.0,
                       help='also measure early exit with this margin: the lead of the '
                       'best class in output spikes (STDP) or summed output-layer current '
                       '(converted) (0: skip; default: %(default)s)')
    sweep.add_argument('--early-exit-min-steps', type=positive_int, default=None,
                       help='early-exit floor of steps (default: 8; 1 for a converted model, '
                       'whose T is 1 to 8)')
    sweep.add_argument('--params-from', help='profile whose enhanced parameters to apply at '
                       "each T (default: none, the model's own)")
    sweep.add_argument('--output', '-o', help='profile to write (default: '
                       '<model>.profile.yaml next to the model); an existing profile is '
                       'replaced only with --overwrite')
    sweep.add_argument('--overwrite', action='store_true',
                       help='replace an existing profile (and plot) at the output path; its '
                       'enhanced parameters are kept (re-measured, as with --params-from it) '
                       'unless --params-from names another profile')
    sweep.add_argument('--plot', help="PNG to write (default: the profile's path with .png; "
                       "'' : none)")
    sweep.add_argument('--label-free', action='store_true',
                       help="measure agreement with the model's own prediction at "
                       '--reference-timesteps instead of accuracy against labels (automatic '
                       'for unlabelled data, e.g. a bag without labels); the profile is '
                       'marked agreement-based (see the README on when to trust it)')
    sweep.add_argument('--reference-timesteps', type=positive_int,
                       help='label-free: the T whose predictions are the reference (default: '
                       'the largest T of --grid)')
    sweep.add_argument('--ray', metavar='ADDRESS', type=ray_address,
                       help=RAY_HELP + '; the T run concurrently, so their latencies share '
                       'the machines')
    sweep.add_argument('--confidence-only', action='store_true',
                       help='add the results by confidence (for calibrated vision_msgs scores) '
                       'to the existing profile at --output, measured at each of its T on the '
                       'data it was swept on (give the same --dataset, --split, --n-eval, '
                       '--seed and --batch-size); every other figure is kept. Refused where a '
                       "T's accuracy does not come out as the profile's (other data or "
                       'settings): sweep it again with --overwrite instead. The early-exit '
                       "results too, with the profile's early-exit rule or, where it records "
                       'none, --early-exit-margin and --early-exit-min-steps (accepted where '
                       "they give the profile's early-exit figures)")


DEFAULT_PRESET = 'cmos45_fp32'
"""The energy preset a sweep prices with when --preset is not given."""
STDP_GRID = '350,250,150,100,64,32,16,8'
"""The default grid of an STDP model (its full T, 350, down to 8)."""


def default_grid(meta: dict) -> str:
    """
    Return the grid a sweep of the model of ``meta`` (its checkpoint metadata) takes by default.

    A converted model runs at 1 to 8 or so timesteps: the largest of its T (``info.timesteps``)
    and those its training evaluated (``info.snn_accuracy``), else 8, halved down to 1, and
    each of those T (a model fine-tuned for T=3 was swept at 8, 4, 2, 1, and its own T was
    missing from its profile; a review). The STDP grid, from 350, swept it at T it never runs
    at (7 minutes of the shipped converted model's 2 000 images, its baseline T=350; a user
    review).
    """
    if meta.get('family') != 'converted':
        return STDP_GRID
    info = meta.get('info') or {}
    known = [info.get('timesteps'), *(info.get('snn_accuracy') or {})]
    known = [int(t) for t in known if str(t).isdigit() and int(t) >= 1]
    grid = [max(known, default=8)]
    while grid[-1] > 1:
        grid.append(grid[-1] // 2)
    return ','.join(str(x) for x in sorted(set(grid) | set(known), reverse=True))


def run(args) -> dict:
    """Run ``topspark sweep``; return the result dict."""
    refuse_timesteps(args)
    import numpy as np

    from topspark_ros.core.data.dataset import split_indices
    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.plotting import plot_profile
    from topspark_ros.core.topspark.early_exit import default_min_steps, EarlyExit
    from topspark_ros.core.topspark.profile import default_profile_path, load_profile, save_profile
    from topspark_ros.core.topspark.sweep import sweep

    preset, args.preset = args.preset, args.preset or DEFAULT_PRESET  # (given or not: below)
    energy_model = EnergyModel(args.preset)
    model, meta = common.load_model(args)
    grid = parse_grid(args.grid if args.grid is not None else default_grid(meta))  # ('': no)
    common.check_data_kind(model, args)
    # The outputs and the profile to apply first: refused before the data is read.
    enhanced = load_profile(args.params_from) if args.params_from else None
    if enhanced is not None:
        common.check_profile_of(enhanced, args.params_from, args.model, meta)
    output = args.output or str(default_profile_path(args.model))
    if not output.lower().endswith(('.yaml', '.yml')):  # (-o model.json wrote YAML there)
        raise UsageError(f'-o {output}: a timestep profile is a YAML file (.yaml), e.g. '
                         f'{default_profile_path(args.model)}'
                         + (' (a .json file is a checkpoint)' if output.endswith('.json')
                            else ''))
    common.check_output_folder(output)
    if args.split == 'train':  # (measured so without a word; a review)
        print(f'{PROG}: note: --split train measures on the images the model learnt from: its '
              'accuracies read higher than on images it never saw (test, or val for a folder '
              'or a bag)', file=sys.stderr)
    if args.confidence_only:
        return _confidence_only(args, model, meta, output, preset_given=preset is not None)
    enhanced = _keep_existing_profile(output, args, meta['tensors']['sha256'], enhanced)
    _refuse_losing_enhanced(output, args, grid, enhanced)
    plot = args.plot if args.plot is not None else str(os.path.splitext(output)[0]) + '.png'
    if plot:
        common.check_output(plot, args.overwrite, inputs=(
            output, *common.model_files(args.model, meta),
            *([args.params_from] if args.params_from else [])))
    model, dataset, idx = _held_out(args, model, meta)
    n = len(idx)
    train_images = None
    # Families trained offline (learns_online False: converted networks) have no learning step.
    if args.n_train_steps and model.learns_online:
        train = common.dataset(args, 'train', spec=model.input_spec)
        (tidx,) = split_indices(len(train), [min(args.n_train_steps, len(train))], args.seed)
        train_images = train.images[tidx]
    record = None
    if enhanced is not None:
        dropped = [t for t in enhanced.timesteps if enhanced.params_for(t) and t not in grid]
        if dropped:
            print(f'{PROG}: note: the enhanced parameters of T={dropped} are left out of the '
                  'new profile (not in --grid)', file=sys.stderr)
    if enhanced is not None and enhanced.enhancement is not None:
        rows = [row for row in enhanced.enhancement.get('timesteps') or ()
                if not isinstance(row, dict) or row.get('timesteps') in grid]
        record = {**enhanced.enhancement, 'timesteps': rows, 'measured_with_params': True}
    trained_t = (meta.get('info') or {}).get('timesteps')
    if isinstance(trained_t, int) and max(grid) < trained_t:  # savings counted from less
        print(f'{PROG}: note: the largest T of --grid, {max(grid)}, is below the T the model '
              f'runs at (T={trained_t}): the profile counts accuracy drops and savings from '
              f"T={max(grid)} (add {trained_t} to --grid to count them from the model's)",
              file=sys.stderr)
    model_meta = os.path.abspath(args.model if args.model.endswith('.json')
                                 else args.model + '.json')
    # By image, not by T: a T of 10 000 images at T=350 is minutes of a bar that did not move.
    bar = common.progress(args, len(grid) * len(idx), 'sweep')
    labels = dataset.labels[idx]
    label_free = args.label_free or len(dataset.class_names) == 0 or bool(np.any(labels < 0))
    if args.reference_timesteps is not None and not label_free:
        raise UsageError('--reference-timesteps is for label-free sweeps (--label-free)')
    executor = common.executor(args) if args.ray else None
    try:  # the bar closed before what a Ctrl-C prints (a CLI review)
        profile = sweep(
            model, dataset.images[idx], None if label_free else labels, grid,
            model_path=os.path.relpath(model_meta, os.path.dirname(os.path.abspath(output))),
            model_sha256=meta['tensors']['sha256'], dataset=common.dataset_name(args, dataset),
            split=args.split,
            energy_model=energy_model, batch_size=args.batch_size, seed=args.seed,
            params_for=(lambda t: enhanced.params_for(t)) if enhanced else (lambda t: None),
            train_images=train_images,
            early_exit=(EarlyExit(args.early_exit_margin,
                                  args.early_exit_min_steps or default_min_steps(model))
                        if args.early_exit_margin > 0 else None),
            enhancement=record, measured=bar.update,
            reference_timesteps=args.reference_timesteps if label_free else None,
            executor=executor, timing_s=args.timing_s)
    finally:
        bar.close()
        if executor is not None:
            executor.close()
    # What measuring it again takes (another --seed draws other images and spikes: 0.65
    # against 0.61 at 500 images in a review, with nothing in the profile to say which).
    profile = dataclasses.replace(profile, measurement={
        'command': common.command_line(args), 'seed': args.seed,
        'batch_size': args.batch_size, 'timing_s': args.timing_s})
    save_profile(profile, output, replace=args.overwrite)
    if plot:
        plot = common.draw_plot(lambda: plot_profile(profile, plot), plot, output)
    base = profile.baseline
    own = next((e for e in profile.entries if e.timesteps == trained_t), None)
    if own is not None and base.timesteps > trained_t and base.accuracy < own.accuracy:
        # A converted model fine-tuned at T=4, swept to 16: its drops were counted from
        # 85.9 % where it makes 92.1 %, and its savings from T=16's energy (a review).
        # (the default grid: "leave ... out of --grid" was said of a --grid never given)
        which = '--grid' if args.grid else f'the default grid ({",".join(map(str, grid))})'
        fix = (f'leave the T above {trained_t} out of --grid' if args.grid else
               f'give --grid {",".join(str(t) for t in grid if t <= trained_t)}')
        print(f'{PROG}: note: the largest T of {which}, {base.timesteps}, is above the T the '
              f'model runs at (T={trained_t}) and less accurate there ({base.accuracy:.1%} '
              f'against {own.accuracy:.1%}): the profile counts accuracy drops and savings '
              f"from T={base.timesteps} ({fix} to count them from the model's)",
              file=sys.stderr)
    return {'command': 'sweep', 'profile': output, 'plot': plot or None, 'n_samples': int(n),
            'seed': args.seed,
            'preset': args.preset, 'baseline_timesteps': base.timesteps,
            'entries': [{'timesteps': e.timesteps, 'accuracy': e.accuracy,
                         'latency_ms': e.latency_ms, 'energy_j': e.energy_j,
                         'train_energy_j': e.train_energy_j,
                         'early_exit_accuracy': e.early_exit_accuracy,
                         'early_exit_mean_timesteps': e.early_exit_mean_timesteps,
                         'params': e.params}
                        for e in profile.entries],
            'accuracy': base.accuracy, 'timesteps': base.timesteps,
            'reference_timesteps': profile.reference_timesteps}


def _held_out(args, model, meta: dict) -> tuple:
    """
    Return ``(model, dataset, indices)``: the samples a sweep with ``args`` measures.

    The split's data set with the model's classes, the model for it, and the first
    ``--n-eval`` of a ``--seed`` permutation.
    """
    from topspark_ros.core.data.dataset import split_indices

    dataset = common.class_aligned(common.dataset(args, args.split, spec=model.input_spec),
                                   meta, args.model)
    model = common.for_data(model, dataset, args.model)
    (idx,) = split_indices(len(dataset), [min(args.n_eval, len(dataset))], args.seed)
    return model, dataset, idx


def _confidence_only(args, model, meta: dict, output: str, preset_given: bool = False) -> dict:
    """
    Add each T's results by confidence to the profile at ``output`` (``--confidence-only``).

    The images are those a sweep with the same arguments measures; every T runs as the sweep's
    accuracy run did (its parameters, seeds and batches) and must give the profile's accuracy
    (:func:`~topspark_ros.core.topspark.sweep.measure_confidence_bins`), so the bins describe
    the run the profile's figures are of: a T that does not (its values enhanced after the
    sweep) gets none, with a warning. Written under the profile's lock, atomically, and only
    into the profile as it was measured (one replaced meanwhile is refused; an entry changed
    meanwhile gets no bins). An entry with early-exit figures gets its early-exit run's bins
    and rule as well, where the run with its recorded rule (an older profile: the one the
    arguments give) gives those figures
    (:func:`~topspark_ros.core.topspark.sweep.measure_early_exit_bins`).
    """
    import dataclasses

    from topspark_ros.core.topspark.early_exit import default_min_steps, EarlyExit
    from topspark_ros.core.topspark.profile import load_profile, update_profile
    from topspark_ros.core.topspark.sweep import measure_confidence_bins, measure_early_exit_bins

    given = [flag for flag, value in (('--grid', args.grid), ('--params-from', args.params_from),
                                      ('--label-free', args.label_free),
                                      ('--reference-timesteps', args.reference_timesteps),
                                      ('--ray', args.ray), ('--overwrite', args.overwrite),
                                      ('--preset', preset_given))
             if value]
    if given:
        raise UsageError(f"--confidence-only measures the profile's own T with its own "
                         f"parameters; leave out {', '.join(given)}")
    if not os.path.exists(output):
        raise UsageError(f'no profile at {output}: --confidence-only adds to a profile '
                         '`topspark sweep` made (give it with -o)')
    profile = load_profile(output)
    if profile.model_sha256 != meta['tensors']['sha256']:
        raise UsageError(f'{output} describes another model (SHA-256 '
                         f'{profile.model_sha256[:16]}...), not {args.model}')
    if profile.agreement_based:
        raise UsageError(f'{output} is label-free (agreement with T={profile.reference_timesteps}'
                         '): its results by confidence would say how often the model agrees '
                         'with itself, not how often it is right')
    model, dataset, idx = _held_out(args, model, meta)
    n = len(idx)
    if n != profile.n_samples or len(dataset.class_names) == 0:
        raise UsageError(f'{output} was measured on {profile.n_samples} labelled samples, these '
                         f'arguments give {n}{"" if dataset.class_names else " unlabelled"}: '
                         'give the --n-eval, --dataset and --split of its sweep')
    images, labels = dataset.images[idx], dataset.labels[idx]
    given_rule = (EarlyExit(args.early_exit_margin,
                            args.early_exit_min_steps or default_min_steps(model))
                  if args.early_exit_margin > 0 else None)

    def rule_for(entry):  # the rule of its early-exit figures: recorded, else the one given
        if entry.early_exit_accuracy is None:
            return None
        recorded = entry.early_exit_rule()
        return given_rule if recorded is None else EarlyExit(*recorded)
    early = sum(rule_for(e) is not None for e in profile.entries)
    bar = common.progress(args, (len(profile.entries) + early) * n, 'confidence')
    bins, early_bins, refused, early_refused = {}, {}, [], []
    try:
        for entry in reversed(profile.entries):
            rule = rule_for(entry)
            try:
                bins[entry.timesteps] = measure_confidence_bins(
                    model, images, labels, entry, batch_size=args.batch_size, seed=args.seed,
                    measured=bar.update)
            except ValueError as exc:  # this T is not the run it measured: no bins for it
                refused.append(str(exc))
                bar.update(n if rule is not None else 0)
                continue
            if rule is not None:  # and the early-exit run's, where its rule reproduces it
                try:
                    early_bins[entry.timesteps] = rule, measure_early_exit_bins(
                        model, images, labels, entry, rule, batch_size=args.batch_size,
                        seed=args.seed, measured=bar.update)
                except ValueError as exc:
                    early_refused.append(str(exc))
    finally:
        bar.close()
    if not bins:
        raise UsageError('no T came out as the profile measured it: ' + '; '.join(refused))
    for reason in refused:
        print(f'{PROG}: warning: no bins added: {reason}', file=sys.stderr)
    for reason in early_refused:
        print(f'{PROG}: warning: no early-exit bins added: {reason}', file=sys.stderr)

    def add(current):
        same = [getattr(current, key) == getattr(profile, key) for key in
                ('model_sha256', 'dataset', 'split', 'n_samples', 'reference_timesteps')]
        if not all(same):
            raise UsageError(f'{output} was replaced while its results were measured; run '
                             '--confidence-only again')
        checked = {e.timesteps: e for e in profile.entries}

        def unchanged(entry) -> bool:  # measured as checked: the same figures and values
            was = checked.get(entry.timesteps)
            keys = ('accuracy', 'n_samples', 'params', 'early_exit_accuracy',
                    'early_exit_mean_timesteps')
            return was is not None and all(getattr(entry, k) == getattr(was, k) for k in keys)

        def with_bins(entry):
            if entry.timesteps not in bins or not unchanged(entry):
                return entry
            entry = dataclasses.replace(entry, confidence_bins=bins[entry.timesteps])
            if entry.timesteps in early_bins:
                rule, rows = early_bins[entry.timesteps]
                entry = dataclasses.replace(
                    entry, early_exit_margin=float(rule.margin),
                    early_exit_min_steps=int(rule.min_steps), early_exit_confidence_bins=rows)
            return entry
        return dataclasses.replace(current, entries=tuple(map(with_bins, current.entries)))
    updated = update_profile(output, add)
    return {'command': 'sweep', 'profile': output, 'confidence_only': True,
            'n_samples': int(n), 'seed': args.seed,
            'confidence': [{'timesteps': e.timesteps, 'accuracy': e.accuracy,
                            'confidence_bins': [list(row) for row in e.confidence_bins or ()],
                            'score_at_share_1': e.calibrated(1.0),
                            'early_exit_rule': e.early_exit_rule(),
                            'early_exit_confidence_bins': [
                                list(row) for row in e.early_exit_confidence_bins or ()]}
                           for e in updated.entries]}


def _refuse_losing_enhanced(output: str, args, grid, enhanced) -> None:
    """
    Refuse to replace a profile whose enhanced parameters at some T the new grid leaves out.

    ``sweep --overwrite`` keeps the enhanced parameters the old profile holds; with a narrower
    ``--grid`` those of the T left out were dropped from the file with a note only (a CLI
    review): hours of ``enhance`` lost. Applied from another file (``--params-from`` other
    than ``-o``), they stay there: a note says so below.
    """
    if enhanced is None or not os.path.exists(output) or (
            args.params_from and not common.same_file(args.params_from, output)):
        return
    dropped = [t for t in enhanced.timesteps if enhanced.params_for(t) and t not in grid]
    if dropped:
        wider = ','.join(str(t) for t in sorted(set(grid) | set(dropped), reverse=True))
        raise UsageError(f'{output} holds enhanced parameters at T={dropped}, which --grid '
                         f'leaves out: replacing it would lose them; add them (--grid {wider}) '
                         'or write the new profile elsewhere with -o')


def _keep_existing_profile(output: str, args, model_sha256: str, enhanced):
    """
    Guard an existing profile at ``output``; return the profile whose parameters to apply.

    A sweep never destroys a profile by default: an existing file is a usage error unless
    ``--overwrite`` is given. When it is, and the file holds enhanced parameters of this model
    while ``--params-from`` names none, those parameters are carried into the new profile
    (re-measured with them) rather than dropped.
    """
    from topspark_ros.core.topspark.profile import load_profile

    if not os.path.exists(output):
        return enhanced
    if not args.overwrite:
        raise UsageError(f'{output} exists; pass --overwrite to replace it (its enhanced '
                         'parameters are kept) or -o to write elsewhere')
    if enhanced is not None:
        return enhanced
    existing = load_profile(output)
    has_params = any(existing.params_for(t) for t in existing.timesteps)
    if has_params and existing.model_sha256 == model_sha256:
        print(f'{PROG}: note: keeping the enhanced parameters of {output} (re-measured with '
              'them)', file=sys.stderr)
        return existing
    return None

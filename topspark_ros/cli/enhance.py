"""
``topspark enhance``: parameters per T, searched on the training split, written into a profile.

Runs the parameter enhancement (:func:`topspark_ros.core.topspark.enhance.enhance`) on a
validation slice of the training split for every T of ``--grid`` (each must be in the profile
``topspark sweep`` wrote), records the result in the profile
(:mod:`topspark_ros.core.topspark.records`) and plots the sensitivity analysis. Frame or event
data (an event model on its windows, as ``topspark sweep`` measures it).
Every measurement is kept as it is made (``<profile>.trials.sqlite``,
:mod:`topspark_ros.core.topspark.trials`): the same command resumes an interrupted run.
"""

import dataclasses
import os
import sys
from typing import Callable, Optional

from topspark_ros.cli import common
from topspark_ros.cli.args import (non_negative_float, non_negative_int, parse_grid, positive_int,
                                   PROG, ray_address, refuse_timesteps, UsageError)
from topspark_ros.core.topspark.fanout import RAY_HELP
from topspark_ros.core.topspark.search import DEFAULT_SAMPLER, DEFAULT_TRIAL_BATCH, SAMPLERS


def _write_profile(output: str, profile, result, record) -> None:
    """
    Write ``result`` (with ``record``) into the profile at ``output`` as it is now.

    Another run may have enhanced other T meanwhile (kept); a profile of another model now
    there is refused; one moved or deleted while this ran is written anew from ``profile``,
    the profile as it was read, with a note (the search is not lost).
    """
    from topspark_ros.core.topspark import records
    from topspark_ros.core.topspark.profile import save_profile, update_profile

    def merged(current):  # the profile as it is now: another run may have enhanced other T
        if current.model_sha256 != profile.model_sha256:
            raise UsageError(f'{output} was replaced by a profile of another model while this '
                             'ran; its values were not written')
        return records.apply_to_profile(current, result, record)

    if os.path.exists(output):
        update_profile(output, merged)
    else:
        save_profile(records.apply_to_profile(profile, result, record), output, replace=False)
        print(f'{PROG}: note: {output} was gone when its values were written; written anew '
              'from the profile as it was read', file=sys.stderr)


def _trial_store(args, output: str, model_sha256: str, grid, energy_model, data):
    """
    Open the store of this run's measurements, beside the profile (``.trials.sqlite``).

    Its context is everything the measurements depend on beyond their items: the model, the
    images (validation and scoring runs, by value), the grid and every setting; the
    measurements of other contexts in the file are left alone. ``--fresh`` forgets this
    context's.
    """
    from topspark_ros.core.topspark import trials

    path = os.path.splitext(output)[0] + '.trials.sqlite'
    # Only the settings that change a measurement: --trial-batch under the random sampler
    # (it proposes all at once) and the scoring runs' sizes without learning to score made a
    # resumed run measure everything again (a review).
    learning = len(data[2]) > 0  # (the scoring runs' images)
    settings = tuple(name for name in (
        'n_val', 'learn_samples', 'confirm_samples', 'learn_neurons', 'top_k',
        'energy_penalty', 'budget', 'learn_budget', 'batch_size', 'seed', 'sampler',
        'trial_batch')
        if not (name == 'trial_batch' and args.sampler == 'random')
        and not (name in ('learn_samples', 'confirm_samples', 'learn_neurons') and not learning))
    context = {'model_sha256': model_sha256, 'grid': sorted(grid, reverse=True),
               'preset': energy_model.preset.name,
               'data': [trials.array_digest(array) for array in data],
               **{name: getattr(args, name) for name in settings}}
    try:
        store = trials.TrialStore(path, context)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if store.replaced:
        print(f"{PROG}: note: {path} held another version's measurements: dropped",
              file=sys.stderr)
    if args.fresh:
        store.drop()
    elif store.kept:
        print(f'{PROG}: resuming: {store.kept} measurements of an interrupted run of this '
              f'enhancement are taken from {path} (--fresh measures them again)',
              file=sys.stderr)
    if store.others:
        print(f'{PROG}: note: {path} also holds {store.others} measurements of enhancements '
              'with another model, data or settings, kept for them (the same command resumes '
              'each; remove the file when none is wanted)', file=sys.stderr)
    return store


def add_parser(sub, parent) -> None:
    """Add the ``enhance`` command to the subparsers ``sub`` (``parent``: the common options)."""
    enhance = sub.add_parser(
        'enhance', parents=[parent], help='tune neuron/learning parameters per T',
        description='Parameter enhancement (TopSpark steps 2 and 3): a one-at-a-time '
        'sensitivity analysis of the neuron and learning parameters at each T of a grid, then '
        'a seeded, budgeted search per T for values that restore accuracy at little extra '
        "energy, never below the model's own accuracy at that T. Measured on a validation "
        'slice of the TRAINING split (the test split is not used); learning parameters are '
        'scored by short training runs of a small network at T. Writes the values per T into '
        'the timestep profile (measurements kept; `topspark sweep --params-from` re-measures '
        'them) and a PNG of the sensitivity analysis. See topspark_ros.core.topspark.enhance.')
    enhance.add_argument('--model', '-m', required=True, help='checkpoint (metadata .json)')
    enhance.add_argument('--grid', default=None,
                         help='comma-separated timestep counts to enhance, each in the profile '
                         f'(default: an STDP model {STDP_ENHANCE_GRID}; another, as a '
                         'converted one whose T is 1 to 8: every T of its profile below the '
                         "profile's largest)")
    enhance.add_argument('--budget', type=positive_int, default=48,
                         help='inference candidates per T (default: %(default)s)')
    enhance.add_argument('--learn-budget', type=non_negative_int, default=8,
                         help='training runs per T searching the learning parameters (0: '
                         'skip the learning parameters; default: %(default)s)')
    enhance.add_argument('--n-val', type=positive_int, default=5000,
                         help='validation images from the training split (default: '
                         '%(default)s)')
    enhance.add_argument('--learn-samples', type=positive_int, default=3000,
                         help='training images per short scoring run, disjoint from the '
                         'validation images (default: %(default)s)')
    enhance.add_argument('--confirm-samples', type=non_negative_int, default=20000,
                         help='training images per confirmation run: the best learning '
                         'candidates of the short runs are run again this long, and those runs '
                         'decide (0 or <= --learn-samples: no confirmation; default: '
                         '%(default)s)')
    enhance.add_argument('--learn-neurons', type=positive_int, default=100,
                         help='excitatory neurons of the scoring runs (default: %(default)s)')
    enhance.add_argument('--top-k', type=positive_int, default=4,
                         help='parameters searched per T and stage: those with the largest '
                         'gains in the sensitivity analysis (default: %(default)s)')
    enhance.add_argument('--energy-penalty', type=non_negative_float, default=0.02,
                         help="accuracy given up per 100%% more energy than the model's own "
                         'values at T (default: %(default)s)')
    enhance.add_argument('--preset', help="energy preset (default: the profile's)")
    enhance.add_argument('--output', '-o', help='profile to update, made by `topspark sweep` '
                         '(default: <model>.profile.yaml next to the model)')
    enhance.add_argument('--plot', help="sensitivity PNG (default: the profile's path with "
                         ".sensitivity.png, replaced at each run; '' : none); a file given "
                         'that exists is replaced only with --overwrite')
    enhance.add_argument('--overwrite', action='store_true',
                         help='replace the --plot file given if it exists')
    enhance.add_argument('--sampler', choices=SAMPLERS, default=DEFAULT_SAMPLER,
                         help='how candidates are proposed: tpe (Optuna TPE, learning from the '
                         'scores of earlier candidates) or random (the seeded random search of '
                         'earlier versions); both are seeded with --seed and the validation '
                         'data (default: %(default)s)')
    enhance.add_argument('--trial-batch', type=positive_int, default=DEFAULT_TRIAL_BATCH,
                         help='tpe: candidates proposed at once, measured in parallel with '
                         '--ray; the result depends on it, not on --ray (default: '
                         '%(default)s)')
    enhance.add_argument('--ray', metavar='ADDRESS', type=ray_address, help=RAY_HELP)
    enhance.add_argument('--fresh', action='store_true',
                         help='measure everything again: forget the measurements an '
                         'interrupted run of the same command kept (<profile>.trials.sqlite, '
                         'from which a run with the same model, data and settings resumes)')


STDP_ENHANCE_GRID = '64,32,16'
"""The T an STDP model's enhancement takes by default (the reduced T of the paper's grid)."""


def default_grid(model, profile) -> str:
    """
    Return the T ``topspark enhance`` takes without ``--grid``.

    :data:`STDP_ENHANCE_GRID` for an STDP model, else every T of ``profile`` below its largest.
    The STDP default was every family's: a converted model, profiled at 1 to 8, was refused
    with advice to sweep it at T=16 to 64, which it never runs at (a review).
    """
    if model.checkpoint_family == 'stdp':
        return STDP_ENHANCE_GRID
    below = sorted((t for t in profile.timesteps if t < max(profile.timesteps)), reverse=True)
    return ','.join(map(str, below or profile.timesteps))


def _held_out_validation(args, meta: dict, data_name: str, n: int, val_idx, exclude=()):
    """
    Return validation indices of the training split that a model did not learn from.

    A converted model fits the labels of its ``--n-train`` images, the first of the training
    split's permutation by its ``--seed``; the enhancement's validation images were the first
    of the same permutation: the very images it was fitted to (a review: +2.7 points there,
    -3.3 on the test images). An STDP model learns from the same first ``--n-train`` and
    labels its neurons with them (its validation images were all among them, with 40 000
    others unseen; a review). Where the checkpoint says which images it learnt (``n_train``,
    ``seed``: else its command's ``--seed``, else 0) on this data, the validation images are
    drawn (with ``--seed``) from the others, none of ``exclude`` (the learning runs'
    images); with too few others, ``val_idx`` stays, noted.
    """
    import re

    import numpy as np

    from topspark_ros.core.data.dataset import split_indices

    info = meta.get('info') or {}
    n_train = info.get('n_train')
    if info.get('dataset') != data_name or not isinstance(n_train, int) or n_train <= 0:
        return val_idx
    seed = info.get('seed')
    if not isinstance(seed, int):
        given = re.search(r'--seed[ =](-?\d+)', str(info.get('command') or ''))
        seed = int(given.group(1)) if given else 0
    others = None
    if n_train < n:
        _, others = split_indices(n, [n_train, n - n_train], seed)
        if len(exclude):
            others = others[~np.isin(others, np.asarray(exclude))]
    if others is None or len(others) < len(val_idx):
        print(f'{PROG}: note: {args.model} learnt from {min(n_train, n)} of the {n} training '
              f'images: its {len(val_idx)} validation images include images it was fitted to '
              '(their accuracies run above held-out ones)', file=sys.stderr)
        return val_idx
    (pick,) = split_indices(len(others), [len(val_idx)], args.seed)
    return others[pick]


def _say_what_changed(result, held_at: Callable[[int], Optional[dict]], output: str,
                      learning: frozenset = frozenset()) -> None:
    """
    Say, per T, which values replaced those the profile held, and why, on stderr.

    The profile's figures at such a T are of the values it held: a small run replaced the
    shipped T=32 values by the model's own without a word, under figures of 73.8 % that the
    own values do not reach (a review). ``held_at(T)``: the values the profile held when the
    enhancement began (a resumed run's profile already holds those of the T its interrupted
    run finished: they were left out; a review). ``learning``: the names of the learning
    knobs, which do not act at inference: a T where only they changed keeps valid inference
    figures.
    """
    changed, first = [], []
    for item in result.timesteps:
        if item.kept_held:
            print(f'{PROG}: T={item.timesteps}: the values found learn worse than the own '
                  'ones; the values the profile held are kept (they do not)', file=sys.stderr)
            continue
        held = held_at(item.timesteps)
        if held is None and item.params is not None and not set(item.params) <= learning:
            first.append(item.timesteps)  # (its figures are the own values'; said by the
            # controller alone, a review)
            continue
        if held is None or (item.params is not None and dict(item.params) == held):
            continue
        why = 'the values found learn worse than the own ones and so do these' \
            if item.learns_worse else 'beaten on the validation images'
        now = "the model's own" if item.params is None else str(dict(item.params))
        new = dict(item.params or {})
        moved = {k for k in set(held) | set(new) if held.get(k) != new.get(k)}
        if moved and moved <= learning:
            why += ('; only learning values changed, which do not act at inference: its '
                    'inference figures stand')
        print(f'{PROG}: T={item.timesteps}: the values {output} held ({held}) are replaced '
              f'by {now}: {why}', file=sys.stderr)
        if not (moved and moved <= learning):
            changed.append(item.timesteps)
    again = (f'measure them again with `topspark sweep -m MODEL --params-from {output} -o '
             f'{output} --overwrite`')
    if changed:
        print(f'{PROG}: note: the accuracies, latencies and energies of T={changed} in '
              f'{output} are still those of the values it held: {again}', file=sys.stderr)
    if first:
        print(f'{PROG}: note: the accuracies, latencies and energies of T={first} in {output} '
              f"are still those of the model's own values, not of the values found: {again}",
              file=sys.stderr)


def run(args) -> dict:
    """Run ``topspark enhance``; return the result dict."""
    refuse_timesteps(args)
    import datetime

    from topspark_ros.core.energy import EnergyModel
    from topspark_ros.core.plotting import plot_sensitivity
    from topspark_ros.core.events.encode import model_takes_events
    from topspark_ros.core.topspark import enhance, records, trials
    from topspark_ros.core.topspark.profile import default_profile_path, load_profile

    if args.grid is not None:  # (a bad grid: refused before the model is read; an empty
        parse_grid(args.grid)  # one enhanced the default grid, unsaid: a review)
    model, meta = common.load_model(args)  # the data options not given: the model's
    common.check_data_kind(model, args)
    if common.source(args).events and not model_takes_events(model):
        raise UsageError(f'{args.model} was trained on frames: its parameters are enhanced on '
                         'frame data (event data: enhance a model trained on events)')
    output = args.output or str(default_profile_path(args.model))
    if not os.path.exists(output):
        raise UsageError(f'no profile at {output}: make it first with `topspark sweep -m '
                         f'{args.model}` (enhancement writes into an existing profile)')
    profile = load_profile(output)
    if meta['tensors']['sha256'] != profile.model_sha256:  # (first: a T it lacks is moot)
        raise UsageError(f'{output} describes another model (SHA-256 '
                         f'{profile.model_sha256[:16]}..., {args.model} has '
                         f'{meta["tensors"]["sha256"][:16]}...)')
    grid = parse_grid(args.grid if args.grid is not None else default_grid(model, profile))
    missing = sorted(set(grid) - set(profile.timesteps))
    if missing:
        raise UsageError(f'{output} has no entry for T={missing} (profiled: '
                         f'{profile.timesteps}); sweep them first')
    plot = args.plot if args.plot is not None else (
        str(os.path.splitext(output)[0]) + '.sensitivity.png')
    if args.plot:  # a file of the user's: checked before the search, as sweep's
        common.check_output(args.plot, args.overwrite,
                            inputs=(output, *common.model_files(args.model, meta)))
    energy_model = EnergyModel(args.preset or profile.energy_preset)
    train = common.class_aligned(common.dataset(args, 'train', spec=model.input_spec), meta,
                                 args.model)
    model = common.for_data(model, train, args.model)  # event data: its windows encoded
    data_name = common.dataset_name(args, train)
    if profile.dataset and data_name != profile.dataset:  # (rewritten without a word; a review)
        print(f'{PROG}: note: {output} was measured on {profile.dataset}; these values are '
              f'enhanced on {data_name}: the values found replace the held ones on that data, '
              f'under figures of {profile.dataset} (sweep with --params-from on the data you '
              'deploy on)', file=sys.stderr)
    # Learning parameters are scored only for a family that learns on line (STDP).
    learn = max(args.learn_samples, args.confirm_samples) \
        if args.learn_budget and model.learns_online else 0
    if learn == 0 and args.n_val > len(train):  # (a folder of a few hundred photos)
        print(f'{PROG}: note: --n-val {args.n_val} is more than the {len(train)} training '
              f'images: scoring on all {len(train)}', file=sys.stderr)
        args.n_val = len(train)
    if args.n_val + learn > len(train):
        raise UsageError(f'--n-val + the scoring images ({args.n_val} + {learn}: the larger '
                         f'of --learn-samples and --confirm-samples) exceed the {len(train)} '
                         'training images; lower them, or --learn-budget 0 to score no '
                         'learning')
    val_idx, learn_idx = enhance.enhancement_split(len(train), args.n_val, learn, args.seed)
    # Scored on images the model did not learn from, nor the learning runs learn from.
    first_idx = val_idx
    val_idx = _held_out_validation(args, meta, data_name, len(train), val_idx,
                                   exclude=learn_idx)
    selection = None if val_idx is first_idx else (
        'n_samples drawn by split_indices with seed from the training images the model did '
        f"not learn from (all but the first {meta['info']['n_train']} of its training's "
        'permutation) and the scoring runs do not learn')
    confirm_top = 2 if learn > args.learn_samples else 0
    total = enhance.enhance_work(grid, args.n_val, budget=args.budget,
                                 learn_budget=args.learn_budget, learning=learn > 0,
                                 knobs=model.knobs, confirm_top=confirm_top)
    inner = common.executor(args)  # first: a cluster that is not there leaves no store
    try:
        store = _trial_store(args, output, meta['tensors']['sha256'], grid, energy_model, (
            train.images[val_idx], train.labels[val_idx], train.images[learn_idx],
            train.labels[learn_idx]))
    except BaseException:
        inner.close()
        raise
    executor = trials.Remembering(inner, store, dataclasses.asdict,
                                  lambda kept: enhance.Score(**kept))
    written = []  # the T whose values are in the profile

    def write(partial) -> None:  # each T as it is done: an interrupted run keeps them
        created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
        record = records.describe(partial, command=common.command_line(args),
                                  dataset=common.dataset_name(args, train), created=created,
                                  selection=selection)
        _write_profile(output, profile, partial, record)
        written[:] = [i.timesteps for i in partial.timesteps]

    held_at = {}  # T -> the values the profile held when the enhancement began
    with common.progress(args, total, 'enhance', unit='run') as bar:
        try:
            result = enhance.enhance(
                model, train.images[val_idx], train.labels[val_idx], grid,
                energy_model=energy_model, budget=args.budget, learn_budget=args.learn_budget,
                top_k=args.top_k, energy_penalty=args.energy_penalty,
                train_images=train.images[learn_idx] if learn else None,
                train_labels=train.labels[learn_idx] if learn else None,
                learn_neurons=args.learn_neurons, learn_samples=args.learn_samples,
                confirm_top=confirm_top, batch_size=args.batch_size, seed=args.seed,
                sampler=args.sampler, trial_batch=args.trial_batch, executor=executor,
                # The profile's values when the run began: it replaces them T by T.
                incumbent=lambda t: held_at.setdefault(t, store.pinned(
                    f'incumbent/{t}', lambda: profile.params_for(t))),
                progress=bar.update, finished=write)
        except KeyboardInterrupt:
            bar.close()  # first: the lines below were written onto the bar (a CLI review)
            if written:
                print(f'{PROG}: the values of T={sorted(written)} are in {output}',
                      file=sys.stderr)
            kept = store.count()
            print(f'{PROG}: {kept} measurements kept in {store.path}: the same command '
                  'resumes from them' if kept else f'{PROG}: no measurement was finished',
                  file=sys.stderr)
            raise
        else:
            kept = store.remove()  # finished: the profile holds the result
            if kept is not None:
                print(f'{PROG}: note: the measurements of this run stay in {store.path} '
                      f'({kept}); the same command takes them again (--fresh does not)',
                      file=sys.stderr)
        finally:
            store.close()  # (after remove: nothing more)
            executor.close()
        bar.total = bar.n  # the estimate is an upper bound
        bar.refresh()
    _say_what_changed(result, lambda t: held_at[t] if t in held_at else profile.params_for(t),
                      output, frozenset(k.name for k in model.knobs if k.stage == 'learning'))
    record = records.describe(result, command=common.command_line(args),
                              dataset=common.dataset_name(args, train),
                              created=datetime.datetime.now(
                                  datetime.timezone.utc).isoformat(timespec='seconds'),
                              selection=selection)
    if plot:
        title = (f'{os.path.basename(args.model)}: sensitivity on {args.n_val} validation '
                 f'images ({common.dataset_name(args, train)} train)')
        plot = common.draw_plot(lambda: plot_sensitivity(result.sensitivity, plot, title),
                                plot, output)
    return {'command': 'enhance', 'profile': output, 'plot': plot or None,
            'n_val': args.n_val, 'seed': args.seed, 'preset': energy_model.preset.name,
            'sampler': args.sampler, 'executor': executor.name,
            'ranking': record['ranking'], 'enhanced': record['timesteps'],
            'sensitivity': [{'timesteps': p.timesteps, 'knob': p.knob, 'stage': p.stage,
                             'factor': p.factor, 'value': p.value,
                             'accuracy': p.score.accuracy, 'energy_j': p.score.energy_j,
                             'spikes': p.score.spikes} for p in result.sensitivity.points]}

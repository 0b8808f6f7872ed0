"""
``topspark export`` and ``topspark import``: models to and from NIR graphs, without ROS.

``topspark export -m MODEL --format nir -o model.nir`` writes a checkpoint of either family
as a NIR graph (:mod:`topspark_ros.core.exchange.nir_export`) and prints, node by node, what
is faithful, approximate or not representable (also stored in the file); with ``--params-from
PROFILE -T T``, at the parameters the profile enhanced for that T (the reduced-T operating
point). ``--check N`` reads the file back and re-simulates it on N test images
(:mod:`topspark_ros.core.exchange.check`): prediction agreement with the model and both
accuracies. ``topspark import model.nir -o
model.json`` turns a NIR graph of an IF/LIF network into a converted-family checkpoint
(:mod:`topspark_ros.core.exchange.nir_import`) that the classifier, sweeps, profiles and the
controller use like a trained one.

The parser (:mod:`topspark_ros.cli.parser`) adds it with :func:`add_parser`;
:mod:`topspark_ros.cli.main` runs it with :func:`run`.
"""

import argparse
import math
import os
import sys

from topspark_ros.cli import common
from topspark_ros.cli.args import (non_negative_int, positive_float, positive_int, PROG,
                                   UsageError)

FORMATS = ('nir',)


def _floats(text: str) -> list:
    """Parse a comma-separated list of finite numbers (argparse type)."""
    try:
        values = [float(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected comma-separated numbers, got {text!r}')
    if not values or not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f'expected comma-separated finite numbers, got '
                                         f'{text!r}')
    return values


def _positive_floats(text: str) -> list:
    """Parse a comma-separated list of numbers above 0 (argparse type)."""
    values = _floats(text)
    if min(values) <= 0:
        raise argparse.ArgumentTypeError(f'expected numbers above 0, got {text!r}')
    return values


def add_parser(sub) -> None:
    """Add the ``export`` and ``import`` commands to the subparsers ``sub``."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument('--json', action='store_true',
                        help='print one JSON object with the results as the last line')
    shared.add_argument('--quiet', '-q', action='store_true', help='no progress bar')

    export = sub.add_parser(
        'export', parents=[shared], help='write a model as a NIR graph (neuromorphic hardware)',
        description='Export a checkpoint of either family as a NIR graph (nir.write), with a '
        'per-node report of what is faithful, approximate or not representable (printed, and '
        "stored in the file's metadata). See the README, \"Neuromorphic hardware (NIR)\".")
    export.add_argument('--model', '-m', required=True, help='checkpoint (metadata .json)')
    export.add_argument('--format', choices=FORMATS, default='nir',
                        help='graph format (default: %(default)s)')
    export.add_argument('--output', '-o', required=True,
                        help='file to write (.nir, .h5 or .hdf5: HDF5)')
    export.add_argument('--overwrite', action='store_true',
                        help='replace an existing file at --output (default: refuse)')
    export.add_argument('--pool', choices=('sum', 'avg'), default=None,
                        help='converted family: SumPool2d with 1/k^2 folded into the next '
                        'weights (Sinabs, Norse read it) or AvgPool2d (snnTorch reads it) '
                        '(default: sum)')
    export.add_argument('--check', type=non_negative_int, default=0, metavar='N',
                        help='read the file back and re-simulate it on N test images: '
                        'prediction agreement with the model and both accuracies (0: skip; '
                        'default: %(default)s)')
    export.add_argument('--data', metavar='SPEC',
                        help="data source of --check, as other commands' --data (default: the "
                        "model's data set; read, prepared and split as it was trained)")
    export.add_argument('--topic', help="--check on a bag: its topic, as other commands' "
                        "--topic (default: the model's, for its own bag)")
    export.add_argument('--labels', metavar='CSV', help='--check on a bag: its labels, as '
                        "other commands' --labels (default: the model's, for its own bag)")
    export.add_argument('--label-topic', metavar='TOPIC',
                        help="--check on a bag: its label topic, as other commands'")
    export.add_argument('--params-from', metavar='PROFILE',
                        help='timestep profile of this model: export with the parameters it '
                        'enhanced for -T (thresholds and input rate of a reduced T; without '
                        "it: the model's own, made for its full T)")
    export.add_argument('--timesteps', '-T', type=positive_int,
                        help='T of --params-from and --check (default: the T the model was '
                        'made for)')
    export.add_argument('--batch-size', type=positive_int, default=256,
                        help='images per batch of --check (default: %(default)s)')
    export.add_argument('--seed', type=non_negative_int, default=0,
                        help='seed of the Poisson input of --check (default: %(default)s)')

    imp = sub.add_parser(
        'import', parents=[shared], help='turn a NIR graph into a converted-family model',
        description='Import a NIR graph of an IF/LIF convolutional or dense network (from '
        'snnTorch, Norse, Sinabs or `topspark export`) as a converted-family checkpoint; '
        'anything it cannot represent is refused with one line naming the node.')
    imp.add_argument('file', help='NIR graph (.nir, HDF5)')
    imp.add_argument('--output', '-o', required=True, help='checkpoint to write (.json)')
    imp.add_argument('--overwrite', action='store_true',
                     help='replace an existing checkpoint at --output (default: refuse)')
    imp.add_argument('--mean', type=_floats,
                     help="input normalisation mean per channel (default: the graph's "
                     'topspark metadata, else 0)')
    imp.add_argument('--std', type=_positive_floats,
                     help="input normalisation std per channel (default: the graph's, else 1)")
    imp.add_argument('--lif-dt', type=positive_float, default=None, metavar='SECONDS',
                     help="forward-Euler step of LIF nodes (default: the graph's dt_s, which "
                     "topspark export records, else 1e-4, snnTorch's)")
    imp.add_argument('--class-names', help='comma-separated class names (default: the '
                     "graph's metadata, else none)")
    imp.add_argument('--timesteps', '-T', type=positive_int,
                     help="T recorded in the checkpoint (default: the graph's, else 8)")


def run(args) -> dict:
    """Run ``export`` or ``import`` in ``args``; return the result dict."""
    return {'export': _export, 'import': _import}[args.command](args)


def _print_report(args, report) -> None:
    """Print the fidelity report, one line per entry (not with --json: it is in the JSON)."""
    if not args.json:
        print('\n'.join(report.lines()))


def _fidelity_counts(report) -> dict:
    """
    Return ``{'fidelity_<status>': entries}``: the report's entries of each status.

    Entries, not nodes: a node has one per aspect (the STDP ``exc`` layer: its LIF, firing
    rule, refractory period, ...), and some are of the model (``<model>``: learning, early
    exit). They were ``nodes_<status>``, beside ``nodes`` of the graph: 18 entries of 11
    nodes (a review).
    """
    return {f'fidelity_{k.replace(" ", "_")}': v for k, v in report.counts().items()}


NIR_SUFFIXES = ('.nir', '.h5', '.hdf5')
"""The file names ``topspark export`` writes a graph to."""


def _export(args) -> dict:
    """Write the model as a NIR graph; optionally re-simulate it."""
    from topspark_ros.core.checkpoint import load_checkpoint, metadata_path
    from topspark_ros.core.exchange.nir_export import export_model, write_nir
    from topspark_ros.core.exchange.nir_import import read_graph

    if args.params_from and not args.timesteps:
        raise UsageError('--params-from needs -T: the T whose enhanced parameters to '
                         'export')
    if args.timesteps and not (args.params_from or args.check):  # (it did nothing; a review)
        raise UsageError(f'-T {args.timesteps} is the T of --params-from and --check: alone it '
                         "would change nothing (the graph holds the model's own parameters, "
                         'made for its full T); add --params-from PROFILE to export the '
                         'parameters enhanced for it')
    name = os.path.basename(args.output).lower()
    if not name.endswith(NIR_SUFFIXES) or name in NIR_SUFFIXES:  # (-o y.json wrote HDF5
        # there; -o .nir a hidden file named .nir: a review)
        raise UsageError(f'-o {args.output}: a NIR graph is an HDF5 file: name it '
                         f'NAME{" or NAME".join(NIR_SUFFIXES)}')
    common.check_output(args.output, args.overwrite, inputs=(metadata_path(args.model),))
    model, meta = load_checkpoint(args.model)
    # Nor the model's tensors or the profile (--overwrite replaced whatever -o named).
    common.check_output(args.output, args.overwrite, inputs=(
        *common.model_files(args.model, meta), *([args.params_from] if args.params_from else [])))
    info = meta.get('info', {})
    stdp = model.checkpoint_family == 'stdp'
    if args.pool is not None and stdp:
        print(f'{PROG}: note: --pool is of the converted family: an STDP network has no '
              'pooling, and is exported as it is', file=sys.stderr)
    data = _check_data(args, model, meta) if args.check else None
    params, enhanced = None, None
    if args.params_from:
        profile = common.profile_at(args.params_from, args.timesteps, (args.model, meta))
        enhanced = profile.params_for(args.timesteps)
        params = None if enhanced is None else model.params_for_values(enhanced)
        if enhanced is None:
            print(f'{PROG}: note: {args.params_from} has no enhanced parameters at '
                  f"T={args.timesteps}: the model's own are exported", file=sys.stderr)
        info = {**info, 'timesteps': args.timesteps}  # the T the graph's parameters are for
    graph, report = export_model(model, pool=args.pool or 'sum', params=params, info=info)
    path = write_nir(graph, args.output, overwrite=args.overwrite)
    _print_report(args, report)
    if stdp and not args.check and model.event_encoding is None:  # (--check refuses events)
        print(f"{PROG}: note: a reader of plain NIR, without the metadata 'neurons' keeps (the "
              'refractory periods, one spike per step), runs another network than this model: '
              '`--check N` measures how often it agrees (check_plain_nir_agreement)',
              file=sys.stderr)
    result = {'command': 'export', 'format': args.format, 'output': str(path),
              'family': model.checkpoint_family, 'nodes': len(graph.nodes),
              'params_from': args.params_from, 'enhanced_params': enhanced,
              **_fidelity_counts(report)}
    if args.json:
        result['fidelity'] = report.to_list()
    if data is not None:
        result.update(_check(args, model, info, read_graph(path), data, params))
    return result


def _check_data(args, model, meta: dict) -> tuple:
    """
    Return ``(source label, test split)`` of ``--check``, read before anything is written.

    The model's test split, read as ``eval`` reads it: from ``--data`` or the data the model
    records, brought to the model's input and prepared and split as it was trained.
    """
    from topspark_ros.cli.parser import build_parser
    from topspark_ros.core.exchange.check import RESIMULATORS

    if model.checkpoint_family not in RESIMULATORS:
        raise UsageError(f'--check: no NIR re-simulation for the '
                         f'{model.checkpoint_family!r} family')
    if model.event_encoding is not None:
        raise UsageError('--check re-simulates frame models; this model takes events '
                         '(export it without --check)')
    if model.readout is None:  # (after the file was written: a traceback; a review)
        raise UsageError(f'--check: {args.model} has no label assignment: it predicts no '
                         'class to compare (export it without --check)')
    data_args = build_parser().parse_args(['eval', '--model', str(args.model)])
    data_args.data, data_args.quiet, data_args.command = args.data, args.quiet, 'export'
    data_args.topic, data_args.labels = args.topic, args.labels
    data_args.label_topic = args.label_topic
    common.use_model_data(data_args, meta)
    if common.source(data_args).events:
        raise UsageError('--check takes frame data, not an event data set')
    test = common.class_aligned(common.dataset(data_args, 'test', spec=model.input_spec),
                                meta, args.model)
    common.check_frame_shape(test, model, args.model)
    return common.dataset_name(data_args, test), test


def _check(args, model, info: dict, graph, data: tuple, params) -> dict:
    """Re-simulate ``graph`` on ``args.check`` images of ``data``; return the figures."""
    from topspark_ros.core.exchange.check import resimulate

    from topspark_ros.core.data.dataset import split_indices

    label, test = data
    n = min(args.check, len(test))
    # A sample drawn with --seed, as eval's: the first N of a folder or bag are its first
    # class or two (the accuracies were of those; a review).
    (idx,) = split_indices(len(test), [n], args.seed)
    timesteps = args.timesteps or info.get('timesteps') or 8
    with common.progress(args, n, 'check') as bar:
        figures = resimulate(model, graph, test.images[idx], test.labels[idx], int(timesteps),
                             seed=args.seed, batch_size=args.batch_size, params=params,
                             progress=bar.update)
    if figures['no_class'] > 0:
        share = figures['agreement_with_a_class']
        print(f'{PROG}: note: the model gave no class (no output spiked) on '
              f"{figures['no_class']:.1%} of the images at T={timesteps}; the agreements count "
              'those where the other gave none either' + (
                  '' if share is None else f'; on the images the model gave a class it is '
                  f'{share:.1%} (check_agreement_with_a_class; check_plain_nir_... and '
                  'check_rate_input_... likewise)'), file=sys.stderr)
    return {f'check_{k}': v for k, v in figures.items()} | {'check_data': label}


def _import(args) -> dict:
    """Import a NIR graph as a converted-family checkpoint."""
    from topspark_ros.core.checkpoint import save_checkpoint
    from topspark_ros.core.exchange.nir_import import import_graph, input_channels, read_graph
    from topspark_ros.core.exchange.nir_sim import graph_metadata

    common.check_output(args.output, args.overwrite, checkpoint=True)
    graph = read_graph(args.file)
    channels = input_channels(graph)
    for option, values in (('--mean', args.mean), ('--std', args.std)):
        if values is not None and len(values) != channels:  # (blamed on the graph; a review)
            raise UsageError(f"{option}: {len(values)} values for the graph's {channels} "
                             'input channels (one per channel)')
    written = graph_metadata(graph).get('dt_s')
    if args.lif_dt is not None and written and not math.isclose(args.lif_dt, written):
        print(f'{PROG}: note: {args.file} was written for LIF steps of {written:g} s (its '
              f'metadata); --lif-dt {args.lif_dt:g} changes its leaks (leave it out to '
              'import the graph as written)', file=sys.stderr)
    model, report, info = import_graph(
        graph, mean=args.mean, std=args.std, lif_dt_s=args.lif_dt)
    if args.class_names:
        info['class_names'] = [c.strip() for c in args.class_names.split(',')]
        twice = sorted({c for c in info['class_names'] if info['class_names'].count(c) > 1})
        if twice:  # (taken: two outputs of one name; a review)
            raise UsageError(f'--class-names names {", ".join(twice)} more than once')
    if info['class_names'] and len(info['class_names']) != model.n_classes:
        given = '--class-names' if args.class_names else "the graph's metadata"
        error = UsageError if args.class_names else ValueError
        raise error(f'{given}: {len(info["class_names"])} class names for the graph\'s '
                    f'{model.n_classes} outputs')
    info['timesteps'] = args.timesteps or info.get('timesteps') or 8
    info['imported_from'] = str(args.file)
    info['command'] = 'topspark ' + ' '.join(getattr(args, 'argv', sys.argv[1:]))
    path = save_checkpoint(args.output, model, info=info, replace=args.overwrite)
    _print_report(args, report)
    result = {'command': 'import', 'input': str(args.file), 'checkpoint': str(path),
              'layers': len(model.config.layers), 'n_classes': model.n_classes,
              'input_shape': list(model.input_spec.shape), 'timesteps': info['timesteps'],
              **_fidelity_counts(report)}
    if args.json:
        result['fidelity'] = report.to_list()
    return result

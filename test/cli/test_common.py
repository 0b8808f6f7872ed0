"""Tests of what the commands share (cli/common.py, cli/args.py) and of the command table."""

from types import SimpleNamespace

import pytest

from topspark_ros.cli import common
from topspark_ros.cli.args import parse_grid, UsageError
from topspark_ros.cli.main import COMMANDS
from topspark_ros.cli.parser import build_parser

MODELS = __import__('pathlib').Path(__file__).resolve().parents[2] / 'models'


def test_parse_grid():
    assert parse_grid('350, 64,8,') == [350, 64, 8]
    with pytest.raises(UsageError, match='comma-separated integers'):
        parse_grid('64,x')
    with pytest.raises(UsageError, match='must be >= 1'):
        parse_grid('64,0')
    with pytest.raises(UsageError, match='must be >= 1'):
        parse_grid(',')
    # A T twice: enhance counted it twice in its estimate and its resume key (a review).
    with pytest.raises(UsageError, match="T=16 given twice in '16,8,16'"):
        parse_grid('16,8,16')


def test_stage_bars_open_one_bar_per_stage(monkeypatch):
    opened = []

    class Bar:
        def __init__(self, total, desc):
            self.total, self.desc, self.n, self.closed = total, desc, 0, False
            opened.append(self)

        def update(self, n):
            self.n += n

        def close(self):
            self.closed = True

    monkeypatch.setattr(common, 'progress', lambda args, total, desc, **kw: Bar(total, desc))
    with common.StageBars(SimpleNamespace(quiet=True)) as bars:
        bars('train', 0, 100)
        bars('train', 50, 100)
        bars('train', 50, 100)
        bars('label', 0, 10)
        bars('label', 10, 10)
    assert [(b.desc, b.total, b.n, b.closed) for b in opened] == [
        ('train', 100, 100, True), ('label', 10, 10, True)]


def test_profile_at_refuses_a_t_the_profile_lacks():
    path = str(MODELS / 'stdp_fmnist_n400.profile.yaml')
    assert 32 in common.profile_at(path, 32).timesteps
    with pytest.raises(UsageError, match=r'--params-from: .* has no entry for T=33 '
                       r'\(profiled: \['):
        common.profile_at(path, 33)


def test_every_command_has_a_module_that_runs_it():
    parser = build_parser()
    for name, module in COMMANDS.items():
        assert callable(module.run) and callable(module.add_parser)
        args = {'train': ['train', '-o', 'x'], 'eval': ['eval', '-m', 'x'],
                'sweep': ['sweep', '-m', 'x'], 'enhance': ['enhance', '-m', 'x'],
                'events': ['events', 'info', 'x'], 'export': ['export', '-m', 'x', '-o', 'y'],
                'import': ['import', 'x', '-o', 'y'], 'recover': ['recover', 'x']}[name]
        assert parser.parse_args(args).command == name


def test_a_folder_model_of_before_the_name_split_is_measured_on_its_own_split(tmp_path,
                                                                              capsys):
    """
    A model that records no split_by was split by order: its test split stays that one.

    A model that records it gets it; a model that records no data options (a built-in data
    set) and train get the name split; another split than the model's is noted.
    """
    folder = tmp_path / 'objects'
    folder.mkdir()

    def resolved(options, *extra):
        args = build_parser().parse_args(['eval', '-m', 'm.json', *extra])
        common.use_model_data(args, {'info': {'data': f'folder:{folder}',
                                              'data_options': options}})
        common._resolve_data_options(args)
        return args.split_by
    old = {'crop': 'center', 'invert': False, 'split_seed': 0, 'val_fraction': 0.1,
           'test_fraction': 0.2}
    assert resolved(old) == 'order'
    assert resolved({**old, 'split_by': 'name'}) == 'name'
    assert resolved({}) == 'name'
    capsys.readouterr()
    assert resolved(old, '--split-by', 'name') == 'name'
    assert 'data prepared with --split-by name (the model was trained with order)' in \
        capsys.readouterr().err
    args = build_parser().parse_args(['train', '-o', 'x', '--data', f'folder:{folder}'])
    common._resolve_data_options(args)
    assert args.split_by == 'name'


@pytest.mark.parametrize('trained, recorded, data, split_by', [
    ('bag:/b', {'split_by': 'sample'}, 'folder:/f', 'name'),
    ('bag:/b', {'split_by': 'time'}, 'folder:/f', 'name'),
    ('folder:/f', {'split_seed': 0}, 'bag:/b', 'name'),  # (order, of before: a folder's)
    ('bag:/b', {'split_by': 'time'}, 'fashion-mnist', 'name'),
    ('bag:/b', {'split_by': 'time'}, 'bag:/other', 'time'),
])
def test_a_models_split_is_taken_only_for_data_of_its_kind(trained, recorded, data, split_by):
    """
    A bag model evaluated on a folder was refused for a --split-by never given (a review).

    The model's split is taken for data of its kind only; one given for another kind is
    refused in one line.
    """
    args = build_parser().parse_args(['eval', '-m', 'm.json', '--data', data])
    common.use_model_data(args, {'info': {'data': trained, 'data_options': recorded}})
    common._resolve_data_options(args)
    assert args.split_by == split_by
    given = build_parser().parse_args(['eval', '-m', 'm.json', '--data', data,
                                       '--split-by', 'order' if 'bag' in data else 'time'])
    with pytest.raises(UsageError, match='--split-by (order|time) is for (folders|bags)'):
        common._resolve_data_options(given)


def test_time_windows_given_leave_the_models_count_windows_out(tmp_path, capsys):
    """
    Give --window-ms to a count-window model: time windows, not the recorded count.

    The recorded window_events filled the option not given and won (count windows take
    precedence), under a note that --window-ms was used (a review).
    """
    bag = tmp_path / 'ev'
    bag.mkdir()
    args = build_parser().parse_args(['eval', '-m', 'm.json', '--data', f'bag:{bag}',
                                      '--window-ms', '310'])
    args.model_data = (f'bag:{bag}', {'window_events': 1500, 'window_ms': 300.0,
                                      'window_min_events': 50})
    common._resolve_data_options(args)
    assert (args.window_ms, args.window_events, args.window_min_events) == (310.0, None, 50)
    # The note says how the model's windows were cut (another window was used without a
    # word: accuracy 0.97 -> 0.80 on windows of 300 ms for a model of 100 ms; a review).
    assert 'data prepared with --window-ms 310.0 (the model was trained with --window-events ' \
        '1500)' in capsys.readouterr().err
    args = build_parser().parse_args(['eval', '-m', 'm.json', '--data', f'bag:{bag}'])
    args.model_data = (f'bag:{bag}', {'window_events': 1500, 'window_ms': 300.0})
    common._resolve_data_options(args)
    assert (args.window_ms, args.window_events) == (300.0, 1500)  # nothing given: the model's
    args = build_parser().parse_args(['eval', '-m', 'm.json', '--data', f'bag:{bag}',
                                      '--window-ms', '300'])
    args.model_data = (f'bag:{bag}', {'window_events': None, 'window_ms': 300.0})
    common._resolve_data_options(args)
    assert 'data prepared with' not in capsys.readouterr().err  # the model's own: no note
    args = build_parser().parse_args(['eval', '-m', 'm.json', '--data', f'bag:{bag}',
                                      '--window-ms', '300', '--window-events', '500'])
    args.model_data = (f'bag:{bag}', {})
    with pytest.raises(UsageError, match='--window-ms or --window-events, not both'):
        common._resolve_data_options(args)


def test_stage_bars_count_a_stage_in_its_own_unit(capsys):
    """The converted family's evaluation counts T, and its bar said "1.31s/img" (a review)."""
    from types import SimpleNamespace

    from topspark_ros.cli.common import StageBars
    from topspark_ros.core.converted.train import STAGES

    with StageBars(SimpleNamespace(quiet=False), {STAGES[2]: 'T'}) as bars:
        bars(STAGES[0], 10, 100)
        assert bars._bar.unit == 'img'
        bars(STAGES[2], 1, 4)
        assert bars._bar.unit == 'T'


def test_classes_a_split_lacks_are_named(tmp_path, capsys):
    """A class with no sample in the split read is named: its figures say nothing of it."""
    import numpy as np
    from PIL import Image
    folder = tmp_path / 'objects'
    for name, count in (('cup', 30), ('ball', 1)):  # one ball: it stays in train
        (folder / name).mkdir(parents=True)
        for k in range(count):
            Image.fromarray(np.full((8, 8), 8 * k, np.uint8)).save(folder / name / f'{k}.png')
    args = build_parser().parse_args(['eval', '-m', 'm.json', '--data', f'folder:{folder}',
                                      '--quiet'])
    common._resolve_data_options(args)
    test = common.dataset(args, 'test')
    assert set(test.labels.tolist()) == {test.class_names.index('cup')}
    err = capsys.readouterr().err
    assert (f'note: 1 of the 2 classes has no sample in the test split of {folder} '
            "('ball'), so its figures say nothing of them; a class of too few samples to "
            'split stays in train') in err
    common.dataset(args, 'test')  # said once a command
    assert 'no sample' not in capsys.readouterr().err
    common.dataset(args, 'train')  # train lacks none
    assert 'no sample' not in capsys.readouterr().err

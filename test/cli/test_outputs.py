"""
What the ``topspark`` commands write, and what they refuse before any work (a user review).

A user's file (a model, a graph, a plot) is replaced only with ``--overwrite``; a path that
cannot be a file is refused before training; the data's classes are matched to the model's by
name; a CUDA device torch cannot use is one error line.
"""

import dataclasses
import json
import os
from pathlib import Path
import shutil
from types import SimpleNamespace

import numpy as np
from PIL import Image
import pytest

from topspark_ros.cli import common
from topspark_ros.cli.args import UsageError
from topspark_ros.cli.main import main
from topspark_ros.core.checkpoint import load_checkpoint


def _run(argv, capsys):
    """Run ``topspark`` in-process; return ``(exit code, last JSON line or None, stderr)``."""
    code = main(argv + ['--json', '--quiet'])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    return code, (json.loads(lines[-1]) if code == 0 and lines else None), captured.err


def _train(fashion_dir, out: Path, capsys, *extra):
    return _run(['train', '--data-dir', str(fashion_dir), '--n-train', '60', '--neurons', '10',
                 '-T', '20', '--n-eval', '0', '-o', str(out), *extra], capsys)


def test_train_never_replaces_a_model_unasked_and_keeps_a_copys_tensors(
        tmp_path, fashion_dir, capsys):
    model = tmp_path / 'm.json'
    code, result, err = _train(fashion_dir, model, capsys)
    assert code == 0, err
    backup = tmp_path / 'backup.json'  # a copy of the metadata, without its tensors
    shutil.copyfile(model, backup)
    before = model.read_bytes()
    code, _, err = _train(fashion_dir, model, capsys)
    assert code == 2 and 'exists; pass --overwrite' in err
    assert model.read_bytes() == before
    code, _, err = _train(fashion_dir, model, capsys, '--overwrite', '--seed', '3')
    assert code == 0, err
    assert model.read_bytes() != before
    load_checkpoint(model)
    load_checkpoint(backup)  # the tensors it names were kept: another file names them
    settings = tmp_path / 'settings.json'  # any file at the path, not only a checkpoint
    settings.write_text('{"my": "settings"}')
    assert _train(fashion_dir, settings, capsys)[0] == 2
    assert settings.read_text() == '{"my": "settings"}'


def test_a_folder_named_like_the_model_is_no_obstacle(tmp_path, fashion_dir, capsys):
    """-o mnist writes mnist.json: a folder mnist/ beside it does not stop train."""
    (tmp_path / 'mnist').mkdir()
    code, result, err = _train(fashion_dir, str(tmp_path / 'mnist'), capsys)
    assert code == 0, err
    assert result['checkpoint'] == str(tmp_path / 'mnist.json')


@pytest.mark.parametrize('name', ['dir/', 'a_file/model.json', '.'])
def test_train_refuses_an_output_that_cannot_be_a_file_before_training(tmp_path, capsys,
                                                                       fashion_dir, name):
    (tmp_path / 'dir').mkdir()
    (tmp_path / 'a_file').write_text('x')
    target = str(tmp_path) + '/' + name  # as typed: a trailing '/' kept
    code, _, err = _train(fashion_dir, target, capsys)
    assert code == 2
    assert ('not a directory' in err or 'is a file' in err), err
    assert 'train' not in err.split('error:', 1)[0]  # refused up front: no progress, no model
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a_file', 'dir']


def test_export_import_and_the_sweeps_plot_refuse_an_existing_file(tmp_path, fashion_dir,
                                                                   capsys):
    model = tmp_path / 'm.json'
    assert _train(fashion_dir, model, capsys)[0] == 0
    graph = tmp_path / 'graph.nir'
    graph.write_text('keep')
    code, _, err = _run(['export', '-m', str(model), '-o', str(graph)], capsys)
    assert code == 2 and '--overwrite' in err and graph.read_text() == 'keep'
    code, result, err = _run(['export', '-m', str(model), '-o', str(graph), '--overwrite'],
                             capsys)
    assert code == 0, err
    assert graph.read_bytes()[:8] == b'\x89HDF\r\n\x1a\n'
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith('.')) == []
    plot = tmp_path / 'mine.png'
    plot.write_bytes(b'a picture')
    sweep = ['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '--grid', '10,5',
             '--n-eval', '20', '--n-train-steps', '0', '--plot', str(plot),
             '-o', str(tmp_path / 'p.yaml')]
    code, _, err = _run(sweep, capsys)
    assert code == 2 and 'mine.png exists' in err
    assert plot.read_bytes() == b'a picture' and not (tmp_path / 'p.yaml').exists()


def test_train_says_when_the_profile_beside_the_model_is_of_another(tmp_path, fashion_dir,
                                                                    capsys):
    """``train --overwrite`` left the old model's profile beside the new one unsaid."""
    models = Path(__file__).resolve().parents[2] / 'models'
    shutil.copy(models / 'stdp_fmnist_n400.profile.yaml', tmp_path / 'm.profile.yaml')
    code, _, err = _train(fashion_dir, tmp_path / 'm.json', capsys)
    assert code == 0 and (f'{tmp_path}/m.profile.yaml describes the model this one replaced'
                          in err), err
    code, _, err = _train(fashion_dir, tmp_path / 'other.json', capsys)
    assert code == 0 and 'describes the model' not in err


def test_a_plot_named_as_the_profile_or_the_model_is_refused(tmp_path, fashion_dir, capsys):
    """
    ``sweep --plot`` given the profile's name wrote the plot over it (exit 0; a CLI review).

    With --overwrite, a plot named as the model or its tensor file replaced the model, and
    ``enhance -m MODEL`` given without ``.json`` did not compare its plot with the model.
    """
    model = tmp_path / 'm.json'
    assert _train(fashion_dir, model, capsys)[0] == 0
    kept = model.read_bytes()
    tensors = tmp_path / json.loads(kept)['tensors']['file']
    profile = tmp_path / 'p.yaml'
    sweep = ['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '--grid', '10,5',
             '--n-eval', '20', '--n-train-steps', '0', '-o', str(profile)]
    for plot, extra in ((profile, []), (model, ['--overwrite']), (tensors, ['--overwrite'])):
        code, _, err = _run(sweep + ['--plot', str(plot), *extra], capsys)
        assert code == 2 and 'is the same file as' in err, err
        assert not profile.exists() and model.read_bytes() == kept
    code, _, err = _run(sweep + ['--plot', ''], capsys)
    assert code == 0, err
    written = profile.read_bytes()
    without_suffix = str(model)[:-len('.json')]
    code, _, err = _run(['enhance', '-m', without_suffix, '--data-dir', str(fashion_dir),
                         '-o', str(profile), '--grid', '5', '--budget', '1', '--learn-budget',
                         '0', '--n-val', '20', '--plot', str(model), '--overwrite'], capsys)
    assert code == 2 and 'is the same file as' in err, err
    assert model.read_bytes() == kept and profile.read_bytes() == written


def test_import_refuses_an_existing_checkpoint(tmp_path, capsys):
    target = tmp_path / 'imported.json'
    target.write_text('{}')
    code, _, err = _run(['import', str(tmp_path / 'absent.nir'), '-o', str(target)], capsys)
    assert code == 2 and 'imported.json exists' in err and target.read_text() == '{}'


def test_import_refuses_a_class_name_given_twice(tmp_path, capsys):
    """--class-names a,a,b was taken: two outputs of one name."""
    graph = tmp_path / 'vgg.nir'
    models = Path(__file__).resolve().parents[2] / 'models'
    code, _, err = _run(['export', '-m', str(models / 'converted_fmnist_vgg.json'), '-o',
                         str(graph)], capsys)
    assert code == 0, err
    names = ','.join(['a', 'a'] + [f'c{k}' for k in range(8)])
    code, _, err = _run(['import', str(graph), '-o', str(tmp_path / 'x.json'),
                         '--class-names', names], capsys)
    assert code == 2 and '--class-names names a more than once' in err, err
    assert not (tmp_path / 'x.json').exists()


def test_import_of_what_is_not_a_nir_file_says_so_in_one_line(tmp_path, capsys):
    """A folder showed HDF5's C error: 'file read failed: time = ..., errno = 21, ...'."""
    (tmp_path / 'text.nir').write_text('hello')
    (tmp_path / 'model.json').write_text('{}')
    for given, said in (('', 'a directory, not a NIR file'),
                        ('text.nir', 'not a readable NIR graph (not an HDF5 file)'),
                        ('model.json', 'a .json is a checkpoint of this package: `topspark '
                         'export -m')):
        code, _, err = _run(['import', str(tmp_path / given), '-o', str(tmp_path / 'x.json')],
                            capsys)
        assert code == 1 and said in err, err
        assert len(err.strip().splitlines()) == 1 and 'errno' not in err


@dataclasses.dataclass(frozen=True)
class _Samples:
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple


def test_the_datas_classes_are_matched_to_the_models_by_name(capsys):
    meta = {'info': {'class_names': ['hbar', 'vbar', 'box']}}
    data = _Samples(np.zeros((4, 2, 2)), np.array([0, 1, 1, -1]), ('box', 'vbar'))
    aligned = common.class_aligned(data, meta, 'm.json')
    assert aligned.labels.tolist() == [2, 1, 1, -1]  # box -> 2, vbar -> 1; unlabelled kept
    assert aligned.class_names == ('hbar', 'vbar', 'box')
    assert aligned.labels.dtype == data.labels.dtype
    assert 'matched by name' in capsys.readouterr().err
    same = _Samples(data.images, data.labels, ('hbar', 'vbar', 'box'))
    assert common.class_aligned(same, meta, 'm.json') is same
    # Names that are only the indices are no names: an idx set read from a folder not named
    # fashion-mnist gets '0'..'9'; a digits model has them. Matched by index, as before.
    fashion = {'info': {'class_names': ['T-shirt/top', 'Trouser', 'Pullover']}}
    digits = _Samples(data.images, np.array([0, 2, 1, 1]), ('0', '1', '2'))
    assert common.class_aligned(digits, fashion, 'm.json') is digits
    assert common.class_aligned(same, {'info': {'class_names': ['0', '1', '2']}}, 'm') is same
    # A digits model and a folder of two of its digits: by name, 3 and 7 (not 0 and 1).
    ten = {'info': {'class_names': [str(i) for i in range(10)]}}
    two = _Samples(data.images[:2], np.array([0, 1]), ('3', '7'))
    assert common.class_aligned(two, ten, 'm.json').labels.tolist() == [3, 7]
    with pytest.raises(UsageError, match='thing'):  # one unknown class: not by index
        common.class_aligned(_Samples(data.images[:1], np.array([0]), ('thing',)), ten, 'm')
    assert common.class_aligned(data, {'info': {}}, 'm.json') is data  # no names: as it is
    with pytest.raises(UsageError, match=r"\['cat'\] that m.json does not know"):
        common.class_aligned(_Samples(data.images, data.labels, ('cat', 'vbar')), meta,
                             'm.json')


def _shapes(root: Path, classes, n: int) -> None:
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for k in range(n):
            image = rng.integers(0, 40, (28, 28)).astype(np.uint8)
            row = 6 + k % 16
            if name == 'hbar':
                image[row:row + 5, 3:25] = 255
            else:
                image[3:25, row:row + 5] = 255
            Image.fromarray(image).save(root / name / f'{k:03d}.png')


def test_eval_of_a_folder_with_one_of_the_models_classes_scores_it_right(tmp_path, capsys):
    both, only = tmp_path / 'both', tmp_path / 'only_vbar'
    _shapes(both, ('hbar', 'vbar'), 40)
    _shapes(only, ('vbar',), 40)
    model = tmp_path / 'shapes.json'
    code, trained, err = _run(['train', '--data', f'folder:{both}', '-o', str(model), '-N',
                               '20', '-T', '64', '--n-train', '64', '--n-eval', '0'], capsys)
    assert code == 0, err
    evaluate = ['eval', '-m', str(model), '-T', '64', '--split', 'train', '--seed', '0']
    code, on_both, err = _run(evaluate + ['--data', f'folder:{both}'], capsys)
    assert code == 0, err
    assert on_both['accuracy'] > 0.9  # bars across or along: an easy task
    code, on_one, err = _run(evaluate + ['--data', f'folder:{only}'], capsys)
    assert code == 0, err
    assert 'matched by name' in err
    assert on_one['accuracy'] > 0.9  # scored as vbar (the model's class 1), not as class 0


def test_a_cuda_device_torch_cannot_use_is_one_error_line(capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip('a CUDA device is available here')
    code = main(['eval', '-m', 'whatever.json', '--device', 'cuda'])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--device 'cuda'" in err[0] and 'cpu' in err[0]


def test_eval_refuses_the_enhanced_parameters_of_another_model(fashion_dir, capsys):
    """A profile of another model applied its parameters without a word (as export did)."""
    models = Path(__file__).resolve().parents[2] / 'models'
    code, _, err = _run(['eval', '-m', str(models / 'stdp_fmnist_n400.json'), '--data-dir',
                         str(fashion_dir), '-T', '8', '--n-eval', '10', '--params-from',
                         str(models / 'converted_fmnist_vgg.profile.yaml')], capsys)
    assert code == 2 and 'profiles another model' in err
    # A T that profile lacks: still the other model first (it said 'no entry for T=350').
    code, _, err = _run(['eval', '-m', str(models / 'stdp_fmnist_n400.json'), '--data-dir',
                         str(fashion_dir), '-T', '350', '--n-eval', '10', '--params-from',
                         str(models / 'converted_fmnist_vgg.profile.yaml')], capsys)
    assert code == 2 and 'profiles another model' in err and 'no entry' not in err
    code, _, err = _run(['enhance', '-m', str(models / 'stdp_fmnist_n400.json'), '--data-dir',
                         str(fashion_dir), '--grid', '350', '-o',
                         str(models / 'converted_fmnist_vgg.profile.yaml')], capsys)
    assert code == 2 and 'describes another model' in err and 'no entry' not in err


def test_sweep_refuses_another_models_profile_and_keeps_one_made_meanwhile(
        tmp_path, fashion_dir, capsys, monkeypatch):
    """
    A review: another model's parameters were stamped as this model's; a new file replaced.

    sweep --params-from stamped another model's parameters with this model's SHA-256 (the
    classifier then took them); a profile written at -o while it ran was replaced unasked.
    """
    import topspark_ros.core.topspark.sweep as core_sweep

    models = Path(__file__).resolve().parents[2] / 'models'
    model = tmp_path / 'm.json'
    assert _train(fashion_dir, model, capsys)[0] == 0
    out = tmp_path / 'p.yaml'
    base = ['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '--grid', '10,5',
            '--n-eval', '20', '--n-train-steps', '0', '--plot', '', '-o', str(out)]
    code, _, err = _run(base + ['--params-from', str(models / 'stdp_fmnist_n400.profile.yaml')],
                        capsys)
    assert code == 2 and 'profiles another model' in err and not out.exists()
    measure = core_sweep.sweep

    def someone_writes_meanwhile(*args, **kwargs):
        profile = measure(*args, **kwargs)
        out.write_text('mine')
        return profile
    monkeypatch.setattr(core_sweep, 'sweep', someone_writes_meanwhile)
    code, _, err = _run(base, capsys)
    assert code != 0 and 'exists' in err and out.read_text() == 'mine'


def test_sweep_says_which_enhanced_parameters_its_grid_leaves_out(tmp_path, fashion_dir,
                                                                  capsys):
    """A smaller --grid dropped enhanced values silently; the record still listed their T."""
    from topspark_ros.core.topspark.profile import load_profile, save_profile

    model = tmp_path / 'm.json'
    assert _train(fashion_dir, model, capsys)[0] == 0
    base = ['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '--n-eval', '20',
            '--n-train-steps', '0', '--plot', '']
    assert _run(base + ['--grid', '10,5', '-o', str(tmp_path / 'p.yaml')], capsys)[0] == 0
    profile = load_profile(tmp_path / 'p.yaml')
    entries = tuple(dataclasses.replace(e, params={'theta_scale': 0.5}) for e in profile.entries)
    rows = [{'timesteps': t, 'params': {'theta_scale': 0.5}} for t in (5, 10)]
    save_profile(dataclasses.replace(profile, entries=entries,
                                     enhancement={'command': 'enhance', 'timesteps': rows}),
                 tmp_path / 'p.yaml')
    code, _, err = _run(base + ['--grid', '5', '--params-from', str(tmp_path / 'p.yaml'),
                                '-o', str(tmp_path / 'q.yaml')], capsys)
    assert code == 0, err
    assert 'enhanced parameters of T=[10] are left out' in err
    swept = load_profile(tmp_path / 'q.yaml')
    assert swept.params_for(5) == {'theta_scale': 0.5}
    assert [r['timesteps'] for r in swept.enhancement['timesteps']] == [5]


def test_enhance_names_the_options_that_ask_for_too_many_images(tmp_path, fashion_dir,
                                                                capsys):
    models = Path(__file__).resolve().parents[2] / 'models'
    profile = tmp_path / 'p.yaml'
    shutil.copy(models / 'stdp_fmnist_n400.profile.yaml', profile)
    code, _, err = _run(['enhance', '-m', str(models / 'stdp_fmnist_n400.json'), '--data-dir',
                         str(fashion_dir), '--grid', '32', '--n-val', '60000',
                         '-o', str(profile)], capsys)
    assert code == 2 and '--confirm-samples' in err and '--learn-budget 0' in err


def test_train_without_t_takes_the_default_350(tmp_path, fashion_dir, capsys):
    """The eval default T changed the -T every command shares: train failed on None."""
    code, trained, err = _run(['train', '--data-dir', str(fashion_dir), '--n-train', '20',
                               '--neurons', '10', '--n-eval', '0',
                               '-o', str(tmp_path / 'm.json')], capsys)
    assert code == 0, err
    assert trained['timesteps'] == 350
    for command in ('train', 'sweep', 'enhance', 'eval'):
        with pytest.raises(SystemExit):
            main([command, '--help'])
        assert '(default: 350; eval: the T the model was made for)' in ' '.join(
            capsys.readouterr().out.split())


def test_a_model_is_measured_on_its_data_prepared_and_split_as_it_was_trained(
        tmp_path, capsys):
    """
    Train records the data, --invert, --crop and the split; eval and export take them.

    A user review: eval of a model trained with --invert scored chance without it, and one
    trained with another --split-seed scored on its training images.
    """
    dark = tmp_path / 'dark_bars'
    _shapes(dark, ('hbar', 'vbar'), 40)
    for path in dark.rglob('*.png'):  # dark bars on a light ground: --invert gives the bars
        Image.fromarray(255 - np.asarray(Image.open(path))).save(path)
    model = tmp_path / 'inverted.json'
    code, _, err = _run(['train', '--data', f'folder:{dark}', '-o', str(model), '-N', '20',
                         '-T', '64', '--n-train', '64', '--n-eval', '0', '--invert',
                         '--split-seed', '3', '--test-fraction', '0.3'], capsys)
    assert code == 0, err
    info = load_checkpoint(model)[0], json.loads(model.read_text())['info']
    assert info[1]['data'] == f'folder:{dark}'
    assert info[1]['data_options'] == {'crop': 'center', 'invert': True, 'split_seed': 3,
                                       'val_fraction': 0.1, 'test_fraction': 0.3,
                                       'split_by': 'name'}
    evaluate = ['eval', '-m', str(model), '-T', '64', '--seed', '0']
    code, as_trained, err = _run(evaluate, capsys)  # no --data: the model's, as trained
    assert code == 0, err
    assert 'data prepared with' not in err
    code, given, err = _run(evaluate + ['--data', f'folder:{dark}', '--invert', '--split-seed',
                                        '3', '--test-fraction', '0.3'], capsys)
    assert code == 0, err
    assert as_trained['dataset'] == given['dataset'] == str(dark)
    from topspark_ros.core.data.folder import folder_split
    held_out = len(folder_split(dark, 'test', test_fraction=0.3, seed=3)[1])  # (about 24)
    assert (as_trained['accuracy'], as_trained['n_samples']) == \
        (given['accuracy'], given['n_samples']) == (as_trained['accuracy'], held_out)
    assert as_trained['accuracy'] > 0.9
    code, plain, err = _run(evaluate + ['--no-invert', '--split-seed', '0'], capsys)
    assert code == 0, err
    assert 'data prepared with --invert off (the model was trained with on); --split-seed 0 ' \
        '(the model was trained with 3)' in err
    assert plain['accuracy'] < as_trained['accuracy']
    # export --check without --data reads the same test split (it named the folder bare).
    code, exported, err = _run(['export', '-m', str(model), '-o', str(tmp_path / 'g.nir'),
                                '--check', '24', '-T', '64'], capsys)
    assert code == 0, err
    assert exported['check_data'] == str(dark)
    assert exported['check_native_accuracy'] == pytest.approx(as_trained['accuracy'], abs=0.15)


def test_a_converted_model_of_own_rgb_images_is_checked_and_evaluated_as_made(tmp_path,
                                                                              capsys):
    """
    Check exports at the model's input from a folder; evaluate at the T train measured.

    A user review: --check read a 24x32 RGB model's folder as 28x28 grey and failed after
    writing the graph, and eval ran a converted model trained without fine-tuning at T=350.
    """
    rng = np.random.default_rng(0)
    for name in ('hbar', 'vbar'):
        (tmp_path / 'rgb' / name).mkdir(parents=True)
        for k in range(20):
            image = rng.integers(0, 40, (24, 32, 3)).astype(np.uint8)
            if name == 'hbar':
                image[4 + k % 14:8 + k % 14, 3:29] = 255
            else:
                image[3:21, 4 + k % 24:8 + k % 24] = 255
            Image.fromarray(image).save(tmp_path / 'rgb' / name / f'{k}.png')
    model = tmp_path / 'conv.json'
    code, _, err = _run(['train', '--family', 'converted', '--data', f'folder:{tmp_path}/rgb',
                         '--image-size', '24x32', '--epochs', '1', '--n-eval', '0', '-o',
                         str(model)], capsys)
    assert code == 0, err
    code, evaluated, err = _run(['eval', '-m', str(model)], capsys)
    assert code == 0, err
    assert evaluated['timesteps'] == evaluated['trained_timesteps'] == 8  # --eval-timesteps max
    graph = tmp_path / 'conv.nir'
    code, exported, err = _run(['export', '-m', str(model), '-o', str(graph), '--check', '8'],
                               capsys)
    assert code == 0, err
    from topspark_ros.core.data.folder import folder_split
    held_out = len(folder_split(tmp_path / 'rgb', 'test')[1])  # (about 8 of 40)
    assert exported['check_n'] == min(8, held_out) and exported['check_agreement'] == 1.0


def test_export_import_keeps_how_the_images_were_prepared(tmp_path, capsys):
    """Imported, a model trained with --crop none --invert ran center and not inverted."""
    from topspark_ros.core.checkpoint import read_metadata
    rng = np.random.default_rng(1)
    for name in ('dark', 'light'):
        (tmp_path / 'data' / name).mkdir(parents=True)
        for k in range(6):
            value = 40 if name == 'dark' else 200
            image = np.clip(rng.normal(value, 10, (12, 16)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(tmp_path / 'data' / name / f'{k}.png')
    model, graph, back = (tmp_path / n for n in ('m.json', 'm.nir', 'back.json'))
    code, _, err = _run(['train', '--family', 'converted', '--data', f'folder:{tmp_path}/data',
                         '--image-size', '12x16', '--crop', 'none', '--invert', '--epochs', '1',
                         '--n-eval', '0', '--finetune-timesteps', '0', '-o', str(model)],
                        capsys)
    assert code == 0, err
    for argv in (['export', '-m', str(model), '-o', str(graph)],
                 ['import', str(graph), '-o', str(back)]):
        code, _, err = _run(argv, capsys)
        assert code == 0, err
    original, imported = (read_metadata(path)[0]['info'] for path in (model, back))
    assert imported['data_options']['crop'] == 'none' and imported['data_options']['invert']
    assert (imported['data'], imported['data_options']) == (original['data'],
                                                            original['data_options'])


def test_train_notes_the_options_its_family_does_not_use(tmp_path, capsys):
    """--family converted took --neurons, --learning-rule, --params-from... in silence."""
    for name in ('a', 'b'):
        (tmp_path / 'data' / name).mkdir(parents=True)
    code, _, err = _run(['train', '--family', 'converted', '--data', f'folder:{tmp_path}/data',
                         '--neurons', '400', '--learning-rule', 'pair', '--image-size', '4000',
                         '-o', str(tmp_path / 'm.json')], capsys)
    assert '--neurons, --learning-rule not used by the converted family (ignored)' in err, err
    code, _, err = _run(['train', '--data', f'folder:{tmp_path}/data', '--widths', '4,8',
                         '--image-size', '4000', '-o', str(tmp_path / 'm.json')], capsys)
    assert '--widths not used by the stdp family (ignored)' in err, err


def test_a_split_read_from_the_cache_shows_its_bar_full(tmp_path, capsys):
    """From the data cache, the 'read' bar stood at 0 % (printed twice)."""
    rng = np.random.default_rng(3)
    for name in ('a', 'b'):
        (tmp_path / 'data' / name).mkdir(parents=True)
        for k in range(5):
            Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(
                tmp_path / 'data' / name / f'{k}.png')
    argv = ['train', '--data', f'folder:{tmp_path}/data', '--neurons', '4', '-T', '5',
            '--n-eval', '0', '--json']
    for k in range(2):  # the second run reads the split from the cache
        assert main(argv + ['-o', str(tmp_path / f'm{k}.json')]) == 0
        err = capsys.readouterr().err
    bars = [line for line in err.replace('\r', '\n').splitlines() if 'read train' in line]
    assert bars and '100%' in bars[-1] and 'from the cache' in bars[-1], err


def test_train_refuses_an_input_size_that_fills_the_memory(tmp_path, capsys):
    """--image-size 2000 (a camera's resolution) was taken: the machine ran out of memory."""
    for name in ('a', 'b'):
        (tmp_path / 'data' / name).mkdir(parents=True)
    code, _, err = _run(['train', '--family', 'converted', '--data', f'folder:{tmp_path}/data',
                         '--image-size', '2000', '-o', str(tmp_path / 'm.json')], capsys)
    assert code == 2 and 'at most 256 pixels a side' in err, err
    assert not (tmp_path / 'm.json').exists()


def test_train_refuses_a_folder_of_one_class(tmp_path, capsys):
    """It trained a one-class classifier that reported an accuracy of 1.0 (a user review)."""
    _shapes(tmp_path / 'one', ('vbar',), 10)
    code, _, err = _run(['train', '--data', f'folder:{tmp_path}/one', '-o',
                         str(tmp_path / 'm.json')], capsys)
    assert code == 2 and "has one class ('vbar')" in err
    assert not (tmp_path / 'm.json').exists()


def test_sweep_refuses_an_existing_profile_before_reading_the_data(tmp_path, fashion_dir,
                                                                   capsys, monkeypatch):
    """It read a 10 000-message bag (6 s, 1.1 GB) and then refused -o (a user review)."""
    model = tmp_path / 'm.json'
    assert _train(fashion_dir, model, capsys)[0] == 0
    (tmp_path / 'p.yaml').write_text('mine')

    def no_reading(*args, **kwargs):
        raise AssertionError('the data was read')
    monkeypatch.setattr(common, 'dataset', no_reading)
    code, _, err = _run(['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '-o',
                         str(tmp_path / 'p.yaml')], capsys)
    assert code == 2 and 'exists; pass --overwrite' in err
    # A profile is YAML: '-o model.json' wrote one into a .json name, a checkpoint's (a review).
    for name, said in (('m2.json', ' (a .json file is a checkpoint)'), ('p.txt', '')):
        code, _, err = _run(['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '-o',
                             str(tmp_path / name)], capsys)
        assert code == 2 and err.strip().endswith(
            f'a timestep profile is a YAML file (.yaml), e.g. {tmp_path}/m.profile.yaml{said}')
        assert not (tmp_path / name).exists()


def test_options_that_do_not_apply_are_not_recorded(tmp_path, fashion_dir, capsys):
    """
    Record only the options that applied, so the node does not invert what training did not.

    --invert on an IDX set did nothing, but was recorded: the classifier then inverted every
    frame of the model (accuracy 0.73 -> 0.12; a review of this change).
    """
    model = tmp_path / 'm.json'
    code, _, err = _train(fashion_dir, model, capsys, '--invert')
    assert code == 0 and '--invert applies to image folders and bags only' in err
    info = json.loads(model.read_text())['info']
    assert info['data'] == f'idx:{fashion_dir}' and info['data_options'] == {}


def test_a_model_made_before_the_record_uses_its_data_set_name(tmp_path, capsys):
    """
    Take a model's data set name where it records no data (one made before the record).

    export --check of an mnist-digits model without info.data checked it on Fashion-MNIST
    (a review of this change).
    """
    from topspark_ros.cli.common import use_model_data
    args = SimpleNamespace()
    use_model_data(args, {'info': {'dataset': 'mnist-digits'}})
    assert args.model_data == ('mnist-digits', {})
    use_model_data(args, {'info': {'dataset': '/home/alice/objects'}})  # a folder, bare
    assert args.model_data == (None, {})


def test_data_the_model_records_and_that_is_gone_is_said_so(tmp_path, capsys):
    """The error named a folder without saying it came from the model (a review)."""
    _shapes(tmp_path / 'objects', ('hbar', 'vbar'), 12)
    model = tmp_path / 'm.json'
    code, _, err = _run(['train', '--data', f'folder:{tmp_path}/objects', '-o', str(model),
                         '-N', '10', '-T', '20', '--n-eval', '0'], capsys)
    assert code == 0, err
    shutil.move(tmp_path / 'objects', tmp_path / 'moved')
    code, _, err = _run(['eval', '-m', str(model), '-T', '20'], capsys)
    assert code == 2 and 'the data the model was trained on, does not exist' in err
    code, _, err = _run(['eval', '-m', str(model), '-T', '20', '--data',
                         f'folder:{tmp_path}/moved'], capsys)
    assert code == 0, err


def test_train_keeps_a_checkpoint_another_run_saved_meanwhile(
        tmp_path, fashion_dir, capsys, monkeypatch):
    """
    The output is refused at the end too, not only before the training.

    A run started while the path was free replaced the checkpoint a shorter run saved there
    meanwhile, both saying they had saved (a user review).
    """
    from topspark_ros.core.stdp import train as core_train

    out = tmp_path / 'm.json'
    real = core_train.train

    def meanwhile(*args, **kwargs):  # the other run saves while this one trains
        monkeypatch.setattr(core_train, 'train', real)  # the other's training: a plain one
        assert _train(fashion_dir, out, capsys, '--seed', '7')[0] == 0
        return real(*args, **kwargs)

    monkeypatch.setattr(core_train, 'train', meanwhile)
    before = out.read_bytes() if out.exists() else None
    assert before is None
    assert main(['train', '--data-dir', str(fashion_dir), '--n-train', '60', '--neurons', '10',
                 '-T', '16', '-o', str(out), '--quiet']) == 1
    assert 'exists; not replacing it' in capsys.readouterr().err
    assert '--seed 7' in json.loads(out.read_text())['info']['command']  # the other's, kept
    named = json.loads(out.read_text())['tensors']['file']
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(['m.json', named])


def test_train_saves_the_model_before_evaluating_it(
        tmp_path, fashion_dir, capsys, monkeypatch):
    """Interrupted during its --n-eval evaluation, a finished training was lost (a review)."""
    from topspark_ros.core.stdp import train as core_train

    real, calls = core_train.evaluate, []

    def evaluate(*args, **kwargs):  # the labelling runs, the evaluation is interrupted
        calls.append(len(args[1]))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(core_train, 'evaluate', evaluate)
    out = tmp_path / 'm.json'
    argv = ['train', '--data-dir', str(fashion_dir), '--n-train', '60', '--neurons', '10',
            '-T', '16', '--n-eval', '30', '-o', str(out), '--quiet']
    assert main(argv) == 130 and calls == [60, 30]
    saved = json.loads(out.read_text())['info']
    assert saved['accuracy'] is None and saved['n_eval'] == 0
    load_checkpoint(out)  # a whole, trained model
    monkeypatch.setattr(core_train, 'evaluate', real)
    assert main(argv + ['--overwrite']) == 0
    evaluated = json.loads(out.read_text())['info']
    assert evaluated['n_eval'] == 30 and 0.0 <= evaluated['accuracy'] <= 1.0


def test_train_keeps_a_checkpoint_another_run_saved_while_it_evaluated(
        tmp_path, fashion_dir, capsys, monkeypatch):
    """Its second save, with the evaluation's figures, replaced another run's (a review)."""
    from topspark_ros.core.stdp import train as core_train

    real, calls = core_train.evaluate, []
    out = tmp_path / 'm.json'

    def evaluate(*args, **kwargs):  # during the evaluation another run saves at the path
        calls.append(1)
        if len(calls) == 2:
            monkeypatch.setattr(core_train, 'evaluate', real)
            assert _train(fashion_dir, out, capsys, '--seed', '7', '--overwrite')[0] == 0
        return real(*args, **kwargs)

    monkeypatch.setattr(core_train, 'evaluate', evaluate)
    assert main(['train', '--data-dir', str(fashion_dir), '--n-train', '60', '--neurons', '10',
                 '-T', '16', '--n-eval', '30', '-o', str(out), '--quiet']) == 0
    assert 'was replaced while this run evaluated' in capsys.readouterr().err
    kept = json.loads(out.read_text())
    assert '--seed 7' in kept['info']['command']
    assert (tmp_path / kept['tensors']['file']).exists()


def test_outputs_no_file_can_be_made_at_are_refused_before_the_work(tmp_path, fashion_dir,
                                                                    capsys, monkeypatch):
    """
    A profile under a file, a model or plot in a read-only folder: refused up front.

    `sweep -o` in a read-only folder (a robot's share/), `train -o` there, and `topspark
    demo --plot` under a file or there, ran the whole work and then failed to write it (a
    review of storage faults). (A read-only folder is one os.access says this process may not
    write in: root writes in any folder of a writable file system.)
    """
    import os

    from topspark_ros.nodes.bringup import demo as demo_main

    model = tmp_path / 'm.json'
    assert _train(fashion_dir, model, capsys)[0] == 0
    (tmp_path / 'a_file').write_text('x')
    read_only = tmp_path / 'ro'
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, 'access', lambda path, mode, **kw: os.fspath(path) != str(
        read_only) and real_access(path, mode, **kw))

    def no_reading(*args, **kwargs):
        raise AssertionError('the data was read')
    monkeypatch.setattr(common, 'dataset', no_reading)
    sweep = ['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '--plot', '', '-o']
    code, _, err = _run(sweep + [str(tmp_path / 'a_file' / 'p.yaml')], capsys)
    assert code == 2 and 'a_file is a file, not a directory' in err
    code, _, err = _run(sweep + [str(read_only / 'p.yaml')], capsys)
    assert code == 2 and 'is not a folder this process may write in' in err
    code, _, err = _train(fashion_dir, read_only / 'sub' / 'm.json', capsys)
    assert code == 2 and f'{read_only} is not a folder this process may write in' in err
    for plot in (tmp_path / 'a_file' / 'demo.png', read_only / 'demo.png'):
        with pytest.raises(SystemExit) as exited:
            demo_main(['--duration-s', '1', '--plot', str(plot)])
        assert exited.value.code == 2 and '--plot' in capsys.readouterr().err
    assert os.listdir(read_only) == []


@pytest.mark.skipif(not os.path.isdir('/proc/self'), reason='needs Linux /proc')
def test_an_output_on_a_file_system_that_makes_no_files_is_refused_before_the_work(
        tmp_path, fashion_dir, capsys, monkeypatch):
    """
    ``train -o /proc/m.json`` trained, then failed to save (a note of stop 38).

    ``os.access`` says root may write in ``/proc``; no file can be made there. The check now
    makes a file in the folder and removes it, so it is refused before the data is read.
    """
    def no_reading(*args, **kwargs):
        raise AssertionError('the data was read')
    monkeypatch.setattr(common, 'dataset', no_reading)
    code, _, err = _train(fashion_dir, Path('/proc/topspark_m.json'), capsys)
    assert code == 2, err
    assert '/proc' in err and ('no file can be made in' in err or 'may write in' in err), err
    # A writable folder is left as it was: the probe's file is gone.
    model = tmp_path / 'sub' / 'm.json'
    monkeypatch.undo()
    assert _train(fashion_dir, model, capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ['sub']
    assert not [p for p in model.parent.iterdir() if p.name.startswith('.topspark-probe')]


def test_a_plot_that_cannot_be_written_leaves_the_profile_and_says_so(tmp_path, fashion_dir,
                                                                      capsys, monkeypatch):
    """The profile was written, then the plot's full disk failed the command (a review)."""
    import errno

    from topspark_ros.core import plotting

    model = tmp_path / 'm.json'
    assert _train(fashion_dir, model, capsys)[0] == 0

    def full(profile, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, f'cannot write {path}: No space left on device')
    monkeypatch.setattr(plotting, 'plot_profile', full)
    code, out, err = _run(['sweep', '-m', str(model), '--data-dir', str(fashion_dir),
                           '--grid', '32,16', '--n-eval', '20', '--n-train-steps', '0'],
                          capsys)
    assert code == 0, err
    assert f'{tmp_path / "m.profile.yaml"} is written; its plot' in err
    assert 'No space left on device' in err
    assert out['plot'] is None
    assert (tmp_path / 'm.profile.yaml').exists()
    # Ctrl-C while it draws: interrupted, and it says that the profile is written.
    (tmp_path / 'm.profile.yaml').unlink()

    def interrupted(profile, path, *args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(plotting, 'plot_profile', interrupted)
    code = main(['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '--grid', '32',
                 '--n-eval', '20', '--n-train-steps', '0', '-q'])
    err = capsys.readouterr().err
    assert code == 130 and err.strip().splitlines()[-2:] == [
        f'topspark: {tmp_path / "m.profile.yaml"} is written; its plot '
        f'{tmp_path / "m.profile.png"} is not (interrupted while drawing it)',
        'topspark: interrupted']
    assert (tmp_path / 'm.profile.yaml').exists()


def test_what_a_ctrl_c_prints_comes_after_the_bar(tmp_path, fashion_dir, capsys, monkeypatch):
    """The last lines of enhance and sweep were printed before their bar closed (a review)."""
    from topspark_ros.core.topspark import enhance, sweep

    model = tmp_path / 'm.json'
    assert _train(fashion_dir, model, capsys)[0] == 0
    base = ['-m', str(model), '--data-dir', str(fashion_dir), '--grid', '8']
    assert main(['sweep', *base, '--n-eval', '20', '--n-train-steps', '0', '--plot', '',
                 '-q']) == 0

    def stopped(*args, progress=None, measured=None, **kwargs):
        (progress or measured)(1)
        raise KeyboardInterrupt
    monkeypatch.setattr(enhance, 'enhance', stopped)
    monkeypatch.setattr(sweep, 'sweep', stopped)
    for argv in (['enhance', *base, '--budget', '2', '--learn-budget', '0', '--n-val', '20'],
                 ['sweep', *base, '--n-eval', '20', '--n-train-steps', '0', '--plot', '',
                  '-o', str(tmp_path / 'other.yaml')]):
        capsys.readouterr()
        assert main(argv) == 130
        err = capsys.readouterr().err
        bar = err.rfind(f'{argv[0]}:')  # the bar's last drawing ('enhance: 50%|...')
        said = err.find('topspark: no measurement' if argv[0] == 'enhance'
                        else 'topspark: interrupted')
        assert 0 <= bar < said, err


def test_enhance_on_a_small_folder_scores_on_all_its_training_images(tmp_path, capsys):
    """
    --n-val beyond a folder's training split, with no learning scored: all of them, noted.

    It was refused, with a hint to give --learn-budget 0, which was given (a user review).
    """
    _shapes(tmp_path / 'bars', ('hbar', 'vbar'), 30)
    model = tmp_path / 'm.json'
    code, _, err = _run(['train', '--data', f'folder:{tmp_path}/bars', '-o', str(model), '-N',
                         '10', '-T', '32', '--n-eval', '0'], capsys)
    assert code == 0, err
    code, _, err = _run(['sweep', '-m', str(model), '--grid', '16,8', '--n-train-steps', '0',
                         '--plot', ''], capsys)
    assert code == 0, err
    code, result, err = _run(['enhance', '-m', str(model), '--grid', '8', '--budget', '2',
                              '--learn-budget', '0', '--n-val', '300', '--plot', ''], capsys)
    assert code == 0, err
    assert 'note: --n-val 300 is more than the' in err and 'scoring on all' in err


def test_enhance_says_which_held_values_it_replaced_and_that_their_figures_stay(capsys):
    """A small run replaced the shipped T=32 values without a word, under their figures."""
    from types import SimpleNamespace as Item

    from topspark_ros.cli.enhance import _say_what_changed
    held = {32: {'theta_scale': 0.7}, 16: {'theta_scale': 0.6}, 8: {'theta_scale': 0.5},
            4: {'theta_scale': 0.5, 'nu_pre': 0.001}}
    result = Item(timesteps=[
        Item(timesteps=32, params=None, learns_worse=True, kept_held=False),
        Item(timesteps=16, params={'theta_scale': 0.6}, learns_worse=True, kept_held=True),
        Item(timesteps=8, params={'theta_scale': 0.4}, learns_worse=False, kept_held=False),
        Item(timesteps=4, params={'theta_scale': 0.5, 'nu_pre': 0.002}, learns_worse=False,
             kept_held=False)])
    _say_what_changed(result, held.get, 'p.yaml', frozenset({'nu_pre', 'nu_post'}))
    err = capsys.readouterr().err
    assert "T=32: the values p.yaml held ({'theta_scale': 0.7}) are replaced by the model's " \
        'own: the values found learn worse' in err
    assert 'T=16: the values found learn worse than the own ones; the values the profile ' \
        'held are kept' in err
    assert "T=8: the values p.yaml held ({'theta_scale': 0.5}) are replaced by " \
        "{'theta_scale': 0.4}: beaten on the validation images" in err
    assert 'the accuracies, latencies and energies of T=[32, 8] in p.yaml are still those ' \
        'of the values it held' in err
    # Only a learning value changed at T=4 (a review: it was listed as stale too): said, but
    # its inference figures stand.
    assert "T=4: the values p.yaml held ({'theta_scale': 0.5, 'nu_pre': 0.001}) are replaced " \
        "by {'theta_scale': 0.5, 'nu_pre': 0.002}: beaten on the validation images; only " \
        'learning values changed, which do not act at inference' in err
    assert "the model's own values" not in err
    # A first enhancement at T (nothing held): its figures are the own values' (the
    # controller said so, enhance did not; a review); learning values alone change none.
    result = Item(timesteps=[
        Item(timesteps=64, params={'theta_scale': 0.9}, learns_worse=False, kept_held=False),
        Item(timesteps=2, params={'nu_pre': 0.002}, learns_worse=False, kept_held=False),
        Item(timesteps=1, params=None, learns_worse=False, kept_held=False)])
    _say_what_changed(result, {}.get, 'p.yaml', frozenset({'nu_pre', 'nu_post'}))
    err = capsys.readouterr().err
    assert 'the accuracies, latencies and energies of T=[64] in p.yaml are still those of the ' \
        "model's own values, not of the values found" in err and 'values it held' not in err

"""``topspark train --family converted``, then eval and sweep of the model it saved."""

import json
from pathlib import Path
import pickle

import numpy as np
import pytest

from topspark_ros import cli
from topspark_ros.core.checkpoint import load_checkpoint

MODELS = Path(__file__).resolve().parents[2] / 'models'


def _write(path, obj):
    with open(path, 'wb') as handle:
        pickle.dump(obj, handle, protocol=2)


def test_cli_train_and_eval(tmp_path, fashion_dir, capsys):
    out = tmp_path / 'conv.json'
    status = cli.main(['train', '--family', 'converted', '--data-dir', str(fashion_dir),
                       '--n-train', '300', '--epochs', '1', '--widths', '4,8', '--hidden',
                       '8', '--n-eval', '50', '--eval-timesteps', '1,2',
                       '--finetune-timesteps', '2', '--n-finetune', '64', '-q', '--json',
                       '-o', str(out)])
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['family'] == 'converted' and set(result['snn_accuracy']) == {'1', '2'}
    meta = json.loads(out.read_text())
    assert meta['info']['command'].startswith('topspark train --family converted')
    status = cli.main(['eval', '-m', str(out), '--data-dir', str(fashion_dir), '--n-eval',
                       '40', '-T', '2', '-q', '--json'])
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result['n_samples'] == 40 and 0.0 <= result['accuracy'] <= 1.0
    status = cli.main(['sweep', '-m', str(out), '--data-dir', str(fashion_dir), '--grid', '1,2',
                       '--n-eval', '20', '--early-exit-margin', '1', '--early-exit-min-steps',
                       '1', '--plot', '', '-q', '--json'])
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [e['timesteps'] for e in result['entries']] == [1, 2]
    assert result['entries'][0]['train_energy_j'] is None


def test_cli_trains_an_rgb_model_on_cifar_files(tmp_path, capsys):
    """
    A ResNet on RGB images, one channel constant (blue 0 everywhere).

    That channel's std of 0 stopped the training ('mean and std need one value per channel,
    std > 0'), and --hidden, which a ResNet has no use for, was taken and recorded (a review).
    """
    from topspark_ros.core.converted.train import MIN_FRAME_STD
    rng = np.random.default_rng(0)
    directory = tmp_path / 'cifar-10-batches-py'
    directory.mkdir()
    for name in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
        data = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
        data[:, 2048:] = 0  # blue
        _write(directory / name, {b'data': data, b'labels': list(rng.integers(0, 10, 20))})
    _write(directory / 'batches.meta', {b'label_names': [b'n%d' % i for i in range(10)]})
    out = tmp_path / 'rgb.json'
    status = cli.main(['train', '--family', 'converted', '--dataset', 'cifar10', '--data-dir',
                       str(directory), '--arch', 'resnet', '--n-train', '100', '--epochs', '1',
                       '--widths', '4,8', '--n-eval', '10', '--eval-timesteps', '2', '-q',
                       '--hidden', '999', '-o', str(out)])
    err = capsys.readouterr().err
    assert status == 0, err
    assert 'note: --hidden not used by --arch resnet' in err
    model, meta = load_checkpoint(out)
    assert model.input_spec.shape == (3, 32, 32) and meta['info']['class_names'][3] == 'n3'
    assert len(model.config.mean) == 3 and model.config.std[2] == MIN_FRAME_STD
    assert model.config.hidden == 0
    # The STDP family on them: a model of 3072 inputs that no command or node could run.
    code = cli.main(['train', '--dataset', 'cifar10', '--data-dir', str(directory),
                     '--n-train', '20', '--neurons', '10', '--n-eval', '0', '-T', '8', '-q',
                     '-o', str(tmp_path / 'stdp.json')])
    err = capsys.readouterr().err
    assert code == 2 and 'the STDP family takes grey square images; cifar10' in err, err
    assert "'s are 3x32x32" in err and not (tmp_path / 'stdp.json').exists()


def test_the_default_grid_holds_the_t_a_converted_model_runs_at() -> None:
    """A model fine-tuned for T=3 was swept at 8, 4, 2, 1: its own T missing (a review)."""
    from topspark_ros.cli.sweep import default_grid
    accuracy = {'1': 0.5, '2': 0.6, '4': 0.7, '8': 0.7}
    assert default_grid({'family': 'converted', 'info': {
        'timesteps': 3, 'snn_accuracy': accuracy}}) == '8,4,3,2,1'
    assert default_grid({'family': 'converted', 'info': {'timesteps': 2}}) == '2,1'
    assert default_grid({'family': 'stdp'}).startswith('350,')


def test_stdp_training_refuses_a_converted_models_profile(tmp_path, capsys):
    """Its enhanced values are no STDP network's: an AttributeError traceback (a review)."""
    from pathlib import Path

    profile = Path(__file__).resolve().parents[2] / 'models' / 'converted_fmnist_vgg.profile.yaml'
    status = cli.main(['train', '--params-from', str(profile), '-T', '2', '--n-train', '5',
                       '--n-eval', '5', '-o', str(tmp_path / 'x.json')])
    err = capsys.readouterr().err
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert 'a profile of a converted model' in err and not (tmp_path / 'x.json').exists()


def test_a_converted_models_sweep_measures_early_exit_by_default(tmp_path, fashion_dir,
                                                                 capsys):
    """The floor of 8 steps never let a converted model (T = 1 to 8) exit early (a review)."""
    from pathlib import Path

    model = Path(__file__).resolve().parents[2] / 'models' / 'converted_fmnist_vgg.json'
    status = cli.main(['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '--grid',
                       '2', '--n-eval', '50', '--plot', '', '-o', str(tmp_path / 'p.yaml'),
                       '-q', '--json'])
    assert status == 0
    entry = json.loads(capsys.readouterr().out.strip().splitlines()[-1])['entries'][0]
    assert entry['early_exit_mean_timesteps'] < 2


def test_a_converted_models_default_grid_is_the_t_it_runs_at(tmp_path, fashion_dir, capsys):
    """The STDP grid (350 down to 8) swept a converted model for minutes at T it never runs."""
    from pathlib import Path

    model = Path(__file__).resolve().parents[2] / 'models' / 'converted_fmnist_vgg.json'
    status = cli.main(['sweep', '-m', str(model), '--data-dir', str(fashion_dir), '--n-eval',
                       '20', '--plot', '', '-o', str(tmp_path / 'p.yaml'), '-q', '--json'])
    assert status == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [e['timesteps'] for e in result['entries']] == [1, 2, 4, 8]
    assert result['baseline_timesteps'] == 8


@pytest.mark.parametrize('finetune', [2, 0])
def test_a_trained_model_is_kept_when_its_evaluation_is_interrupted(tmp_path, fashion_dir,
                                                                    monkeypatch, capsys,
                                                                    finetune):
    """
    A Ctrl-C in the final evaluation lost the training of the converted family.

    It saved its checkpoint after that evaluation (an item of the last note); it saves before
    it now, and again with it.
    """
    from topspark_ros.core.converted import train as converted_train
    out = tmp_path / 'conv.json'
    evaluated = []

    def interrupted(*args, **kwargs):  # the final evaluation's second T
        evaluated.append(1)
        if len(evaluated) > (2 if finetune else 1):  # without fine-tuning: the one pass
            raise KeyboardInterrupt
        return 0.5
    monkeypatch.setattr(converted_train, 'snn_accuracy', interrupted)
    argv = ['train', '--family', 'converted', '--data-dir', str(fashion_dir), '--n-train', '200',
            '--epochs', '1', '--widths', '4,8', '--hidden', '8', '--n-eval', '30',
            '--eval-timesteps', '1,2', '--finetune-timesteps', str(finetune), '--n-finetune',
            '32', '-q', '-o', str(out)]
    assert cli.main(argv) != 0
    assert 'kept, not evaluated' in capsys.readouterr().err
    model, meta = load_checkpoint(out)  # trained (and fine-tuned), not evaluated
    assert meta['info']['accuracy'] is None and meta['info']['n_eval'] == 0
    assert meta['info']['finetune_timesteps'] == finetune
    assert model.infer(np.zeros((1, 28, 28), np.uint8), timesteps=2).predicted.shape == (1,)
    monkeypatch.undo()
    capsys.readouterr()
    assert cli.main(argv + ['--overwrite', '--json']) == 0  # an uninterrupted run, saved twice
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert load_checkpoint(out)[1]['info']['accuracy'] == result['accuracy'] is not None


@pytest.mark.parametrize('option, said', [
    (['--finetune-timesteps', '-1'], '--finetune-timesteps'),
    (['--finetune-timesteps', '2', '--finetune-lr', '-1'], '--finetune-lr'),
    (['--finetune-timesteps', '2', '--n-finetune', '-5'], '--n-finetune'),
    (['--finetune-timesteps', '2', '--finetune-epochs', '0'], '--finetune-epochs'),
    (['--lambda-mu', '-1'], '--lambda-mu'),
    (['--lr', '0'], '--lr'),
    (['--hidden', '-3'], '--hidden'),
    (['--widths', '0,8'], 'channel counts must be >= 1')])
def test_converted_options_are_checked_before_the_ann_trains(tmp_path, fashion_dir, capsys,
                                                             option, said):
    """
    A bad fine-tuning option failed the run after the ANN trained, a checkpoint left behind.

    A rerun was then refused ("exists"); --n-finetune -5 fine-tuned on all but 5 images and
    --finetune-epochs 0 recorded a model fine-tuned that was not (a review).
    """
    out = tmp_path / 'conv.json'
    try:
        code = cli.main(['train', '--family', 'converted', '--data-dir', str(fashion_dir),
                         '--n-train', '100', '--epochs', '1', '--widths', '4,8', '-q', '-o',
                         str(out), *option])
    except SystemExit as exited:  # (argparse's own refusals exit from the parser)
        code = exited.code
    assert code == 2 and said in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_converted_model_trained_over_its_profiled_one_says_the_profile_is_stale(
        tmp_path, fashion_dir, capsys):
    """The STDP family said so; the converted family left the old profile without a word."""
    out = tmp_path / 'conv.json'
    train = ['train', '--family', 'converted', '--data-dir', str(fashion_dir), '--n-train',
             '100', '--epochs', '1', '--widths', '4,8', '--hidden', '8', '--n-eval', '20',
             '--eval-timesteps', '1,2', '-q', '-o', str(out)]
    assert cli.main(train) == 0
    assert cli.main(['sweep', '-m', str(out), '--data-dir', str(fashion_dir), '--n-eval', '20',
                     '--plot', '', '--timing-s', '0', '-q']) == 0
    capsys.readouterr()
    assert cli.main(train + ['--seed', '1', '--overwrite']) == 0
    assert f'{tmp_path / "conv.profile.yaml"} describes the model this one replaced' in \
        capsys.readouterr().err
    # enhance's default grid is the profile's T below its largest (it was STDP's 64,32,16,
    # refused with advice to sweep a converted model at T it never runs at; a review).
    assert cli.main(['sweep', '-m', str(out), '--data-dir', str(fashion_dir), '--n-eval', '20',
                     '--plot', '', '--timing-s', '0', '-q', '--overwrite']) == 0
    capsys.readouterr()
    assert cli.main(['enhance', '-m', str(out), '--data-dir', str(fashion_dir), '--budget',
                     '2', '--n-val', '20', '--plot', '', '-q', '--json']) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row['timesteps'] for row in result['enhanced']] == [1]
    # --vote is an STDP readout's: said and ignored (it was printed back and did nothing).
    assert cli.main(['eval', '-m', str(out), '--data-dir', str(fashion_dir), '--n-eval', '20',
                     '-T', '2', '--vote', 'cosine', '-q', '--json']) == 0
    captured = capsys.readouterr()
    assert "--vote is of an STDP model's readout" in captured.err
    assert json.loads(captured.out.strip().splitlines()[-1])['vote'] is None


def test_a_converted_models_enhancement_scores_on_images_it_was_not_fitted_to(
        tmp_path, fashion_dir, fashion_train, capsys, monkeypatch):
    """
    Its validation images were the first of the permutation its training took (a review).

    A labelled fit is scored there above held-out images: the enhancement picked values that
    lost 3.3 points on the test images. Now they are drawn from the images it did not learn.
    """
    from topspark_ros.core.data.dataset import split_indices
    from topspark_ros.core.topspark import enhance as core_enhance

    out = tmp_path / 'conv.json'
    assert cli.main(['train', '--family', 'converted', '--data-dir', str(fashion_dir),
                     '--n-train', '200', '--epochs', '1', '--widths', '4,8', '--hidden', '8',
                     '--n-eval', '20', '--eval-timesteps', '1,2', '-q', '-o', str(out)]) == 0
    assert json.loads(out.read_text())['info']['seed'] == 0  # enhance's --seed too
    assert cli.main(['sweep', '-m', str(out), '--data-dir', str(fashion_dir), '--n-eval', '20',
                     '--plot', '', '--timing-s', '0', '-q']) == 0
    seen, real = [], core_enhance.enhance

    def enhanced(model, images, *args, **kwargs):
        seen.append(images)
        return real(model, images, *args, **kwargs)
    monkeypatch.setattr(core_enhance, 'enhance', enhanced)
    assert cli.main(['enhance', '-m', str(out), '--data-dir', str(fashion_dir), '--budget', '2',
                     '--n-val', '200', '--plot', '', '-q']) == 0
    (trained,) = split_indices(len(fashion_train.images), [200], 0)
    learnt = {image.tobytes() for image in fashion_train.images[trained]}
    assert len(seen[0]) == 200 and not [i for i in seen[0] if i.tobytes() in learnt]


def test_image_size_and_colour_on_a_data_set_of_its_own_size_are_said_to_be_ignored(
        tmp_path, fashion_dir, capsys):
    """Fashion-MNIST with --image-size 32 --color rgb gave a 28 x 28 grey model, silently."""
    assert cli.main(['train', '--family', 'converted', '--data-dir', str(fashion_dir),
                     '--n-train', '60', '--epochs', '1', '--widths', '4', '--hidden', '4',
                     '--n-eval', '0', '--image-size', '32', '--color', 'rgb', '-q', '-o',
                     str(tmp_path / 'm.json')]) == 0
    assert 'note: --image-size, --color shape the images of a folder or a bag' in \
        capsys.readouterr().err
    # eval took them without a word ('other commands use the model's', said only its help).
    assert cli.main(['eval', '-m', str(tmp_path / 'm.json'), '--data-dir', str(fashion_dir),
                     '--n-eval', '5', '-T', '1', '--image-size', '32', '--color', 'rgb',
                     '-q']) == 0
    assert 'note: --image-size and --color shape the input of a model train makes; eval ' \
        "brings the data to the model's own input (ignored)" in capsys.readouterr().err


def test_a_checkpoint_another_run_saves_meanwhile_is_left_as_it_is(tmp_path, fashion_dir,
                                                                   monkeypatch, capsys):
    """
    A run saved over what another run wrote at its -o meanwhile, and deleted its tensors.

    Both said they succeeded (another run, or an import; a review).
    """
    from topspark_ros.core.checkpoint import save_checkpoint
    from topspark_ros.core.converted import train as converted_train
    out = tmp_path / 'conv.json'
    other, _ = load_checkpoint(MODELS / 'converted_fmnist_vgg.json')
    real = converted_train.snn_accuracy

    def meanwhile(*args, **kwargs):  # the first evaluation: another writes -o
        if not list(tmp_path.glob('*.safetensors'))[1:]:
            save_checkpoint(out, other, info={'by': 'another run'})
        return real(*args, **kwargs)
    train = ['train', '--family', 'converted', '--data-dir', str(fashion_dir), '--n-train',
             '100', '--epochs', '1', '--widths', '4', '--hidden', '0', '--n-eval', '10',
             '--eval-timesteps', '1', '--finetune-timesteps', '0', '-q', '-o']
    monkeypatch.setattr(converted_train, 'snn_accuracy', meanwhile)
    code = cli.main(train + [str(out)])
    err = capsys.readouterr().err
    assert code == 1 and 'was replaced while this run went on' in err, err
    model, meta = load_checkpoint(out)  # the other's, whole
    assert meta['info'] == {'by': 'another run'} and model.config == other.config
    # A checkpoint deleted meanwhile is no other's: the run saves again (it failed, the model
    # saved nowhere; a review).
    deleted = tmp_path / 'deleted.json'

    def removed(*args, **kwargs):
        deleted.unlink(missing_ok=True)
        return real(*args, **kwargs)
    monkeypatch.setattr(converted_train, 'snn_accuracy', removed)
    code = cli.main(train + [str(deleted)])
    assert code == 0 and load_checkpoint(deleted)[1]['info']['n_eval'] == 10

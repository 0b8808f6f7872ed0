"""Image folders as a data source: layout, splits, file kinds, errors, and the CLI on them."""

import json
from pathlib import Path

import numpy as np
from PIL import Image
import pytest

from topspark_ros.cli.main import main
from topspark_ros.core.data.dataset import DatasetError
from topspark_ros.core.data.folder import folder_split, load_image_folder, read_image
from topspark_ros.core.data.idx import FASHION_MNIST_CLASSES
from topspark_ros.core.data.sources import DataSource, from_options, load_split, parse_data
from topspark_ros.core.preprocess import FrameSpec

MODELS = Path(__file__).resolve().parents[3] / 'models'


def _folder_name(label: int) -> str:
    return FASHION_MNIST_CLASSES[label].replace('/', '-').replace(' ', '_')


def write_fashion_folder(root: Path, dataset, indices, split: str = '') -> list:
    """Write ``dataset.images[indices]`` as PNG files, one folder per class; return the paths."""
    paths = []
    for i in indices:
        folder = root / split / _folder_name(int(dataset.labels[i]))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f'{int(i):05d}.png'
        Image.fromarray(dataset.images[i]).save(path)
        paths.append(path)
    return paths


@pytest.fixture(scope='module')
def fashion_folder(tmp_path_factory, fashion_train, fashion_test):
    """Write a Fashion-MNIST folder: train/ (1 000 images), test/ (the first 400 test images)."""
    root = tmp_path_factory.mktemp('fashion_folder')
    write_fashion_folder(root, fashion_train, range(1000), 'train')
    write_fashion_folder(root, fashion_test, range(400), 'test')
    return root


def test_given_splits_read_back_pixel_exact(fashion_folder, fashion_test):
    """PNG folders give the IDX images exactly (28 x 28 grey passes the frame path unchanged)."""
    data = load_image_folder(fashion_folder, 'test', spec=FrameSpec(28, 28, 1))
    assert len(data) == 400 and data.images.shape == (400, 28, 28)
    assert list(data.class_names) == sorted(_folder_name(k) for k in range(10))
    by_file = {int(p.stem): (img, lab) for p, img, lab in zip(data.files, data.images,
                                                              data.labels)}
    for i in (0, 57, 399):
        image, label = by_file[i]
        np.testing.assert_array_equal(image, fashion_test.images[i])
        assert data.class_names[label] == _folder_name(int(fashion_test.labels[i]))
    assert folder_split(fashion_folder, 'val')[1] == []  # no val/: an empty split


def test_the_shipped_model_scores_the_same_on_the_folder(fashion_folder, fashion_test):
    """Same images from the folder and from IDX: the same predictions, so the same accuracy."""
    from topspark_ros.core.checkpoint import load_checkpoint

    model, _ = load_checkpoint(MODELS / 'stdp_fmnist_n400.json')
    data = load_image_folder(fashion_folder, 'test', spec=model.input_spec)
    order = [int(p.stem) for p in data.files]
    from_folder = model.readout.predict(model.infer(data.images, timesteps=64,
                                                    seed=1).evidence)
    from_idx = model.readout.predict(model.infer(fashion_test.images[order], timesteps=64,
                                                 seed=1).evidence)
    np.testing.assert_array_equal(from_folder, from_idx)
    predicted = [_folder_name(int(k)) for k in from_folder]  # the model's own class order
    truth = [data.class_names[k] for k in data.labels]  # the folder's
    accuracy = np.mean([a == b for a, b in zip(predicted, truth)])
    assert accuracy > 0.6


def test_a_class_named_like_a_split_beside_other_classes_is_an_error(tmp_path, capsys):
    """toys/train/ and toys/car/: the car class was ignored and the error blamed the labels."""
    for name in ('train', 'car'):
        (tmp_path / 'toys' / name).mkdir(parents=True)
        Image.new('L', (8, 8), 100).save(tmp_path / 'toys' / name / 'a.png')
    with pytest.raises(DatasetError, match=r"mixes split folders \['train'\] with class "
                       r"folders \['car'\]"):
        folder_split(tmp_path / 'toys', 'train')
    assert main(['train', '--data', f'folder:{tmp_path / "toys"}', '-o',
                 str(tmp_path / 'm.json'), '-q']) == 1
    err = capsys.readouterr().err
    assert 'cannot be class names' in err and 'labels' not in err


def test_stratified_split_is_deterministic_and_disjoint(tmp_path):
    """Per class 20/10/70 %; the same files each time; train, val and test disjoint."""
    for name, n in (('bottle', 10), ('mug', 30)):
        (tmp_path / name).mkdir()
        for i in range(n):
            Image.new('L', (8, 6), color=i).save(tmp_path / name / f'{i}.png')
    (tmp_path / 'mug' / 'notes.txt').write_text('not an image')
    parts = {s: folder_split(tmp_path, s, seed=3, split_by='order')[1]
             for s in ('train', 'val', 'test')}
    assert [len(parts[s]) for s in ('train', 'val', 'test')] == [7 + 21, 1 + 3, 2 + 6]
    files = [f for s in parts.values() for f, _ in s]
    assert len(set(files)) == 40
    assert folder_split(tmp_path, 'test', seed=3, split_by='order')[1] == parts['test']
    assert folder_split(tmp_path, 'test', seed=4, split_by='order')[1] != parts['test']
    by_name = {s: folder_split(tmp_path, s, seed=3)[1] for s in ('train', 'val', 'test')}
    assert sorted(f for s in by_name.values() for f, _ in s) == sorted(files)
    assert folder_split(tmp_path, 'test', seed=4)[1] != by_name['test']


def test_photos_added_to_a_class_never_move_a_file_between_splits(tmp_path):
    """
    The name split: a file's split depends on its name and the seed only (a user review).

    Split by order, one photo added to a class of 300 put 25 of its 60 test photos among the
    files the model had trained on; by name, every file stays where it was, and the splits
    keep about their fractions.
    """
    import shutil

    for name, n in (('mug', 300), ('ball', 40)):
        (tmp_path / name).mkdir()
        for i in range(n):
            Image.new('L', (4, 4), color=i % 256).save(tmp_path / name / f'{i:04d}.png')
    before = {s: set(folder_split(tmp_path, s)[1]) for s in ('train', 'val', 'test')}
    order = {s: set(folder_split(tmp_path, s, split_by='order')[1]) for s in ('train', 'test')}
    sizes = {s: sum(label == 1 for _, label in before[s]) for s in before}  # (ball, mug)
    assert 40 <= sizes['test'] <= 80 and 15 <= sizes['val'] <= 45  # about 60 and 30 of 300
    for i in range(300, 330):  # 30 more photos of the mug
        shutil.copy(tmp_path / 'mug' / '0000.png', tmp_path / 'mug' / f'{i:04d}.png')
    after = {s: set(folder_split(tmp_path, s)[1]) for s in ('train', 'val', 'test')}
    for s in before:
        assert before[s] <= after[s], s  # every file where it was
    moved = set(folder_split(tmp_path, 'test', split_by='order')[1]) & order['train']
    assert len(moved) > 10  # (what the order split did: training photos now tested)
    # A class none of whose files falls in train gives one to train.
    (tmp_path / 'tiny').mkdir()
    Image.new('L', (4, 4)).save(tmp_path / 'tiny' / 'only.png')
    names = [f.name for f, label in folder_split(tmp_path, 'train', test_fraction=0.9,
                                                 val_fraction=0.09)[1] if label == 2]
    assert names == ['only.png']


def test_a_model_of_before_the_name_split_records_the_order_split():
    """
    A model whose data options record no ``split_by`` was split by order (the only split then).

    ``recorded_data`` says so, for the CLI and the image player's ``model_path`` alike; a
    model that records its split keeps it, and one that records no options (a built-in set)
    gets none.
    """
    from topspark_ros.core.data.sources import recorded_data
    from topspark_ros.nodes.image_player import model_split_options

    old = {'crop': 'center', 'invert': False, 'split_seed': 3, 'val_fraction': 0.1,
           'test_fraction': 0.2}
    assert recorded_data({'info': {'data': 'folder:/d', 'data_options': old}}) == \
        ('folder:/d', {**old, 'split_by': 'order'})
    assert recorded_data({'info': {'data_options': {**old, 'split_by': 'name'}}})[1][
        'split_by'] == 'name'
    assert recorded_data({'info': {'dataset': 'fashion-mnist'}})[1] == {}
    bag = {'split_seed': 0, 'val_fraction': 0.1, 'test_fraction': 0.2, 'topic': '/cam'}
    assert recorded_data({'info': {'data': 'bag:/b', 'data_options': bag}}) == \
        ('bag:/b', bag)  # (a bag has no split_by: none is made up for it; a review)
    assert model_split_options('') == {}


def test_every_mode_and_size_reaches_the_model_input(tmp_path):
    """RGB, RGBA, palette, 16-bit grey and JPEG files of any size become [3, 32, 32] inputs."""
    folder = tmp_path / 'things'
    folder.mkdir()
    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    Image.fromarray(rgb).save(folder / 'a.png')
    Image.fromarray(rgb).convert('RGBA').save(folder / 'b.png')
    Image.fromarray(rgb).convert('P').save(folder / 'c.png')
    Image.fromarray(rgb).save(folder / 'd.JPG', quality=95)
    Image.fromarray(np.full((10, 10), 65535, np.uint16)).save(folder / 'e.png')
    frame, layout = read_image(folder / 'e.png')
    assert (frame.dtype, layout, int(frame.max())) == (np.dtype(np.uint16), 'mono', 65535)
    data = load_image_folder(tmp_path, 'train', spec=FrameSpec(32, 32, 3), test_fraction=0,
                             val_fraction=0)
    assert data.images.shape == (5, 3, 32, 32) and not data.skipped
    for image in data.images[:4]:  # red stays red (JPEG within its error)
        assert image[0].min() > 240 and image[1:].max() < 15
    assert data.images[4].min() == 255  # full-scale 16-bit grey is white


def test_a_file_reads_as_the_camera_path_decodes_it(tmp_path):
    """Folder and CompressedImage decode alike: alpha (even 0) dropped, grey+alpha grey."""
    from types import SimpleNamespace

    from topspark_ros.conversions.image import compressed_to_array

    rng = np.random.default_rng(0)
    rgba = rng.integers(100, 250, (12, 16, 4)).astype(np.uint8)
    rgba[..., 3] = 0  # fully transparent: a driver that leaves alpha unset, or a cut-out
    Image.fromarray(rgba, 'RGBA').save(tmp_path / 'cut.png')
    Image.fromarray(rgba[..., :2], 'LA').save(tmp_path / 'la.png')
    for name in ('cut.png', 'la.png'):
        frame, layout = read_image(tmp_path / name)
        msg = SimpleNamespace(data=(tmp_path / name).read_bytes(), format='png')
        camera, camera_layout = compressed_to_array(msg)
        assert layout == camera_layout
        np.testing.assert_array_equal(frame.reshape(camera.shape), camera)
    frame, layout = read_image(tmp_path / 'cut.png')
    assert layout == 'rgba' and frame[..., :3].mean() > 100  # not composited to black


def test_a_photos_exif_orientation_is_applied(tmp_path):
    """A JPEG stored sideways with Orientation=6 reads as its viewer shows it (upright)."""
    stored = np.zeros((20, 40), np.uint8)
    stored[:, 18:22] = 255  # a vertical bar as stored; rotated 90 degrees it is horizontal
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    image.save(tmp_path / 'phone.jpg', exif=exif, quality=95)
    frame, layout = read_image(tmp_path / 'phone.jpg')
    assert layout == 'mono' and frame.shape == (40, 20)
    rows, cols = frame.mean(axis=1), frame.mean(axis=0)
    assert np.ptp(rows) > 100 and np.ptp(cols) < 30  # a horizontal bar


def test_a_float_image_is_skipped_with_a_reason_not_read_black(tmp_path):
    folder = tmp_path / 'cls'
    folder.mkdir()
    Image.new('L', (16, 16), 200).save(folder / 'good.png')
    Image.fromarray(np.full((16, 16), 0.8, np.float32), 'F').save(folder / 'float.tif')
    read = load_image_folder(tmp_path, 'train', test_fraction=0, val_fraction=0)
    assert len(read) == 1 and [p.name for p, _ in read.skipped] == ['float.tif']
    assert 'floating-point' in read.skipped[0][1]


def test_unreadable_files_are_skipped_and_counted_or_refused(tmp_path):
    """A truncated PNG and a text file named .jpg: skipped and counted, or --strict refuses."""
    folder = tmp_path / 'cls'
    folder.mkdir()
    Image.new('L', (16, 16), 200).save(folder / 'good.png')
    Image.new('L', (64, 64), 100).save(folder / 'whole.png')
    data = (folder / 'whole.png').read_bytes()
    (folder / 'cut.png').write_bytes(data[:len(data) // 2])
    (folder / 'fake.jpg').write_text('hello')
    read = load_image_folder(tmp_path, 'train', test_fraction=0, val_fraction=0)
    assert len(read) == 2 and len(read.skipped) == 2
    assert sorted(p.name for p, _ in read.skipped) == ['cut.png', 'fake.jpg']
    with pytest.raises(DatasetError, match='cut.png'):
        load_image_folder(tmp_path, 'train', test_fraction=0, val_fraction=0, strict=True)


def test_a_class_of_unreadable_files_is_an_error_not_a_class_without_images(tmp_path):
    """A user review: git-LFS pointers named .jpg trained a model whose class 'bad' had none."""
    for k in range(5):
        (tmp_path / 'good').mkdir(exist_ok=True)
        Image.new('L', (16, 16), 40 * k).save(tmp_path / 'good' / f'{k}.png')
        (tmp_path / 'bad').mkdir(exist_ok=True)
        (tmp_path / 'bad' / f'{k}.jpg').write_text('version https://git-lfs.github.com/spec/v1')
    with pytest.raises(DatasetError, match="class 'bad' has no readable image in the train "
                       r'split .* \(first of the \d+ skipped: .*bad/\d\.jpg: cannot read'):
        load_image_folder(tmp_path, 'train')
    held_out = [f for f, label in folder_split(tmp_path, 'test')[1] if label == 0]
    assert len(load_image_folder(tmp_path, 'test').skipped) == len(held_out)  # counted


def test_a_class_folders_subfolders_are_read_as_imagefolder_reads_them(tmp_path):
    """
    Images in subfolders of a class (mug/day2/), GIFs and linked folders count (a user review).

    Hidden folders are left out, a link loop ends, and a second link to a folder reads it once.
    """
    mug = tmp_path / 'data' / 'mug'
    for where in (mug, mug / 'day2', mug / 'day2' / 'evening', mug / '.thumbnails',
                  tmp_path / 'elsewhere'):
        where.mkdir(parents=True)
        Image.new('L', (8, 8), 100).save(where / 'a.png')
    Image.new('P', (8, 8), 3).save(mug / 'b.gif')
    (mug / 'day2' / 'loop').symlink_to(mug, target_is_directory=True)
    (mug / 'linked').symlink_to(tmp_path / 'elsewhere', target_is_directory=True)
    (mug / 'linked_again').symlink_to(tmp_path / 'elsewhere', target_is_directory=True)
    read = load_image_folder(tmp_path / 'data', 'train', test_fraction=0, val_fraction=0)
    assert sorted(str(p.relative_to(mug)) for p in read.files) == [
        'a.png', 'b.gif', 'day2/a.png', 'day2/evening/a.png', 'linked/a.png']
    assert not read.skipped


def test_a_link_into_other_classes_does_not_read_their_images_as_this_ones(tmp_path):
    """
    ``trouser/loop -> ..`` read the bags and sneakers as trousers too (a CLI review).

    The same photo then had two labels and sat in two splits (a test image in training).
    Split folders likewise: a link from train/mug into test/mug read test images as training.
    """
    data = tmp_path / 'data'
    for name, value in (('bag', 40), ('sneaker', 120), ('trouser', 200)):
        (data / name).mkdir(parents=True)
        for i in range(3):
            Image.new('L', (8, 8), value + i).save(data / name / f'{i}.png')
    (data / 'trouser' / 'loop').symlink_to(data, target_is_directory=True)
    (data / 'trouser' / 'self').symlink_to(data / 'trouser', target_is_directory=True)
    read = load_image_folder(data, 'train', test_fraction=0, val_fraction=0)
    assert [str(p.relative_to(data)) for p in read.files] == [
        f'{name}/{i}.png' for name in ('bag', 'sneaker', 'trouser') for i in range(3)]
    split = tmp_path / 'split'
    for part in ('train', 'test'):
        for name in ('mug', 'pen'):
            (split / part / name).mkdir(parents=True)
            Image.new('L', (8, 8), 9).save(split / part / name / f'{part}.png')
    (split / 'train' / 'mug' / 'leak').symlink_to(split / 'test' / 'mug',
                                                  target_is_directory=True)
    _, chosen = folder_split(split, 'train')
    assert sorted(str(f.relative_to(split)) for f, _ in chosen) == [
        'train/mug/train.png', 'train/pen/train.png']
    # A split folder, or a class folder, that is another by a link: said as such (it read as
    # "class 'mug' has no image"; a review).
    (split / 'val').symlink_to(split / 'train', target_is_directory=True)
    with pytest.raises(DatasetError, match='train/ and val/ of .* are the same folder .*a '
                       'photo cannot be in two splits'):
        folder_split(split, 'train')
    (data / 'pants').symlink_to(data / 'trouser', target_is_directory=True)
    with pytest.raises(DatasetError, match='pants/ and trouser/ .* a photo cannot have two'):
        folder_split(data, 'train')


def test_folder_errors_are_one_clear_line(tmp_path):
    """A missing folder, no class folder, an empty class: DatasetError naming the problem."""
    with pytest.raises(DatasetError, match='does not exist'):
        folder_split(tmp_path / 'nope', 'train')
    with pytest.raises(DatasetError, match='no class folder'):
        folder_split(tmp_path, 'train')
    (tmp_path / 'mug').mkdir()
    Image.new('L', (4, 4)).save(tmp_path / 'mug' / 'x.png')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(DatasetError, match="class 'empty' has no image"):
        folder_split(tmp_path, 'train')


@pytest.mark.parametrize('text, source', [
    ('fashion-mnist', DataSource('idx', None, 'fashion-mnist')),
    ('idx:/d', DataSource('idx', '/d')),
    ('folder:/robot/objects', DataSource('folder', '/robot/objects')),
    ('nmnist-synth', DataSource('nmnist-synth')),
    ('mnist-digits:/x', DataSource('mnist-digits', '/x')),
    ('cifar10:/c', DataSource('cifar10', '/c')),
])
def test_data_specs_parse(text, source):
    assert parse_data(text) == source


@pytest.mark.parametrize('text, message', [
    ('kitti', 'unknown data source'), ('folder', 'needs a directory'), ('idx:', 'is empty')])
def test_bad_data_specs_say_what_is_accepted(text, message):
    with pytest.raises(ValueError, match=message):
        parse_data(text)


def test_old_options_name_the_same_sources():
    assert from_options('fashion-mnist', None) == parse_data('fashion-mnist')
    assert from_options('fashion-mnist', '/d') == parse_data('idx:/d')
    assert from_options('nmnist-synth', None) == parse_data('nmnist-synth')
    with pytest.raises(DatasetError, match='no validation split'):
        load_split(parse_data('fashion-mnist'), 'val')


def _cli(argv, capsys):
    code = main(argv + ['--json', '--quiet'])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


def test_train_eval_sweep_on_a_folder(tmp_path, fashion_folder, capsys):
    """Both families train on a folder (STDP grey, converted RGB 32 x 32); eval, sweep read it."""
    data = ['--data', f'folder:{fashion_folder}']
    stdp = _cli(['train', *data, '--n-train', '1000', '--neurons', '50', '-T', '100',
                 '--n-eval', '400', '-o', str(tmp_path / 's.json')], capsys)
    assert stdp['accuracy'] > 0.4  # 10 classes: chance is 0.1
    evaluated = _cli(['eval', *data, '-m', stdp['checkpoint'], '-T', '100'], capsys)
    assert evaluated['n_samples'] == 400 and evaluated['dataset'] == str(fashion_folder)
    converted = _cli(['train', *data, '--family', 'converted', '--n-train', '1000',
                      '--epochs', '3', '--n-eval', '400', '--eval-timesteps', '4',
                      '-o', str(tmp_path / 'c.json')], capsys)
    from topspark_ros.core.checkpoint import load_checkpoint
    model, meta = load_checkpoint(converted['checkpoint'])
    assert model.input_spec == FrameSpec(32, 32, 3)
    assert meta['info']['dataset'] == str(fashion_folder)
    assert converted['accuracy'] > 0.4
    swept = _cli(['sweep', *data, '-m', converted['checkpoint'], '--grid', '4,2',
                  '--n-eval', '400', '--plot', ''], capsys)
    assert sorted(e['timesteps'] for e in swept['entries']) == [2, 4]


@pytest.mark.parametrize('second', ['mug/again.png', 'pen/same.png', 'pen/shots'])
def test_one_photo_through_two_links_from_outside_is_refused(tmp_path, second):
    """
    A photo linked into the data folder twice was read twice (a data review).

    In one class it could sit in train and test at once; in two classes it had two labels.
    A linked folder holding it counts too.
    """
    outside = tmp_path / 'photos'
    outside.mkdir()
    Image.new('L', (8, 8), 7).save(outside / 'x.png')
    data = tmp_path / 'data'
    for name in ('mug', 'pen'):
        (data / name).mkdir(parents=True)
        Image.new('L', (8, 8), 50).save(data / name / 'own.png')
    (data / 'mug' / 'x.png').symlink_to(outside / 'x.png')
    folder_split(data, 'train')  # once: read
    (data / second).symlink_to(outside / ('' if second.endswith('shots') else 'x.png'))
    with pytest.raises(DatasetError, match='are one photo'):
        folder_split(data, 'train')


def test_a_change_behind_a_linked_class_folder_reads_afresh(tmp_path, monkeypatch):
    """Class folders that are symbolic links: the cache key sees the files behind them."""
    from topspark_ros.core.data.cache import CACHE_ENV, fingerprint

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'cache'))
    real, linked = tmp_path / 'real', tmp_path / 'linked'
    linked.mkdir()
    for name, value in (('mug', 30), ('pen', 200)):
        (real / name).mkdir(parents=True)
        for i in range(5):
            Image.new('L', (20, 10), value + i).save(real / name / f'{i}.png')
        (linked / name).symlink_to(real / name, target_is_directory=True)
    (real / 'pen' / 'loop').symlink_to(real, target_is_directory=True)  # a cycle ends
    source = parse_data(f'folder:{linked}')
    first = load_split(source, 'train', test_fraction=0.2, val_fraction=0)
    for i in range(5):  # the pens become mugs, behind the link
        Image.new('L', (20, 10), 30 + i).save(real / 'pen' / f'{i}.png')
    again = load_split(source, 'train', test_fraction=0.2, val_fraction=0)
    fresh = load_split(source, 'train', test_fraction=0.2, val_fraction=0, cache=False)
    np.testing.assert_array_equal(again.images, fresh.images)
    assert not np.array_equal(again.images, first.images)
    assert sum(1 for entry in fingerprint(linked) if entry[0].startswith('pen/')) >= 5


def test_model_inputs_are_cached_and_any_change_reads_afresh(tmp_path, monkeypatch):
    """The second read of a split comes from the cache; a changed file or option does not."""
    from topspark_ros.core.data import folder as folder_module
    from topspark_ros.core.data.cache import CACHE_ENV

    monkeypatch.setenv(CACHE_ENV, str(tmp_path / 'cache'))
    root = tmp_path / 'objects'
    for name in ('mug', 'pen'):
        (root / name).mkdir(parents=True)
        for i in range(5):
            Image.new('L', (20, 10), 40 * i + (name == 'pen')).save(root / name / f'{i}.png')
    calls = []
    real = folder_module.load_image_folder
    monkeypatch.setattr(folder_module, 'load_image_folder',
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    source = parse_data(f'folder:{root}')
    first = load_split(source, 'train', test_fraction=0.2, val_fraction=0)
    again = load_split(source, 'train', test_fraction=0.2, val_fraction=0)
    assert len(calls) == 1  # the second came from the cache, identical
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert again.files == first.files and again.class_names == first.class_names
    load_split(source, 'train', test_fraction=0.2, val_fraction=0, invert=True)
    assert len(calls) == 2  # another option: another entry
    Image.new('L', (20, 10), 255).save(root / 'mug' / '0.png')  # the same name, new content
    changed = load_split(source, 'train', test_fraction=0.2, val_fraction=0)
    assert len(calls) == 3
    load_split(source, 'train', test_fraction=0.2, val_fraction=0, cache=False)
    assert len(calls) == 4
    assert not np.array_equal(changed.images, first.images)


def test_a_change_of_the_decoding_code_reads_afresh(tmp_path, monkeypatch):
    """
    Entries of an older version's decoders are not served after an upgrade.

    9bfe0dc changed how large images are reduced, with the cache's version left as it was:
    7d3957b's entries served RGBA images up to 230 grey levels off (a review). The decoders'
    source is part of the key now.
    """
    import sys

    from topspark_ros.core.data import cache

    assert {'topspark_ros.conversions.image', 'topspark_ros.core.data.folder',
            'topspark_ros.core.data.bag', 'topspark_ros.core.preprocess'} <= set(cache.DECODERS)
    module = tmp_path / 'mods' / 'my_decoder.py'
    module.parent.mkdir()
    module.write_text('SCALE = 1\n')
    monkeypatch.syspath_prepend(str(module.parent))
    monkeypatch.setattr(cache, 'DECODERS', cache.DECODERS + ('my_decoder',))
    root = tmp_path / 'objects'
    (root / 'mug').mkdir(parents=True)
    Image.new('L', (20, 10), 40).save(root / 'mug' / '0.png')
    before = cache.cache_key(root, {'split': 'train'})
    assert cache.cache_key(root, {'split': 'train'}) == before
    module.write_text('SCALE = 2\n')  # an upgrade changed the decoder
    cache.decoders_digest.cache_clear()
    sys.modules.pop('my_decoder', None)
    assert cache.cache_key(root, {'split': 'train'}) != before
    cache.decoders_digest.cache_clear()


def _classes(root: Path, names, n: int = 6) -> None:
    for name in names:
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.new('L', (8, 8), 20 * i).save(root / name / f'{i}.png')


def test_a_file_name_of_bytes_that_are_not_utf8_is_read(tmp_path):
    """One such name (unzipped from a Windows archive) stopped every command (a review)."""
    import os

    _classes(tmp_path, ('a', 'b'))
    odd = Path(os.fsdecode(bytes(tmp_path / 'a') + b'/caf\xe9.png'))
    Image.new('L', (8, 8), 200).save(odd)
    files = [f for split in ('train', 'val', 'test') for f, _ in folder_split(tmp_path, split)[1]]
    assert str(odd) in map(str, files) and len(files) == 13


def test_a_class_folder_name_of_bytes_that_are_not_utf8_is_refused_saying_so(tmp_path):
    """
    A folder named in another encoding (read with lone surrogates) is refused.

    Trained on, its model failed the classifier's configure without a reason, or skipped
    every frame of that class (a review).
    """
    import os

    _classes(tmp_path, ('bottle', 'shoe'))
    odd = Path(os.fsdecode(bytes(tmp_path) + b'/ta\xe7a'))
    _classes(odd.parent, (odd.name,))
    with pytest.raises(DatasetError, match="class name 'ta\ufffda' is not UTF-8 text"):
        folder_split(tmp_path, 'train')
    with pytest.raises(DatasetError, match='is not UTF-8 text'):  # split folders too
        folder_split(_split_folders_with(tmp_path / 'splits', odd.name), 'train')


def _split_folders_with(root: Path, name: str) -> Path:
    for split in ('train', 'test'):
        _classes(root / split, ('bottle', name))
    return root


def test_two_class_folders_one_name_composed_and_decomposed_are_refused(tmp_path):
    """A Mac's copy (NFD) beside what record wrote (NFC): one class became two (a review)."""
    import unicodedata

    _classes(tmp_path, (unicodedata.normalize('NFC', 'café'),
                        unicodedata.normalize('NFD', 'café'), 'mug'))
    with pytest.raises(DatasetError, match='are one name written two ways'):
        folder_split(tmp_path, 'train')


def test_a_class_folder_that_is_a_link_to_nothing_is_an_error_naming_it(tmp_path):
    """A link to a drive not mounted dropped its class without a word (a review)."""
    _classes(tmp_path, ('mug', 'bottle'))
    (tmp_path / 'cup').symlink_to('/media/not-mounted/cup')
    with pytest.raises(DatasetError, match='cup is a link to /media/not-mounted/cup, which '
                       'is not there'):
        folder_split(tmp_path, 'train')


def test_split_folders_in_capitals_are_not_read_as_two_classes(tmp_path):
    """Train/ and Test/ became the classes "Test" and "Train", without a word (a review)."""
    for split in ('Train', 'Test'):
        _classes(tmp_path / split, ('mug', 'bottle'))
    with pytest.raises(DatasetError, match='split folders are named train/'):
        folder_split(tmp_path, 'train')
    _classes(tmp_path / 'other', ('Test', 'mug'))  # a class that is called Test: as before
    assert len(folder_split(tmp_path / 'other', 'train')[1]) > 0


def test_files_of_other_types_in_the_class_folders_are_counted_in_a_note(tmp_path, capsys):
    """HEIC photos (an iPhone's default) were left out without a word (a review)."""
    _classes(tmp_path / 'objs', ('mug', 'bottle'), n=8)
    (tmp_path / 'objs' / 'mug' / 'IMG_0001.HEIC').write_bytes(b'heic')
    (tmp_path / 'objs' / 'bottle' / 'notes.txt').write_text('where they were taken')
    (tmp_path / 'objs' / 'bottle' / '.DS_Store').write_bytes(b'hidden: not counted')
    assert main(['train', '--data', f'folder:{tmp_path / "objs"}', '--neurons', '4', '-T', '8',
                 '--n-eval', '4', '--eval-split', 'test', '-o', str(tmp_path / 'm.json'),
                 '-q']) == 0
    err = capsys.readouterr().err
    assert err.count('ignored 2 file(s) of other types in the class folders (.heic, .txt; '
                     'first: ') == 1, err

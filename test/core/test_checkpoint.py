"""Tests of checkpoint round trips, corruption detection and atomic saving."""

import json
import os
from pathlib import Path
import signal
import subprocess
import textwrap
import time

import numpy as np
import pytest

from topspark_ros.core import checkpoint
from topspark_ros.core.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from topspark_ros.core.stdp import DiehlCookNetwork, STDPConfig
from topspark_ros.core.stdp.readout import assign_labels


@pytest.fixture()
def trained(fashion_train):
    """Return a small trained model with labels, and some images."""
    images = fashion_train.images[:20]
    model = DiehlCookNetwork(STDPConfig(n_neurons=12))
    model.learn(images[:10], timesteps=40)
    counts = model.infer(images, timesteps=40).evidence
    model.readout = assign_labels(counts, fashion_train.labels[:20], 10)
    return model, images


def _tensor_file(meta_path):
    return meta_path.parent / json.loads(meta_path.read_text())['tensors']['file']


def test_round_trip_gives_identical_outputs(tmp_path, trained):
    model, images = trained
    path = save_checkpoint(tmp_path / 'model', model, info={'timesteps': 40})
    assert path.name == 'model.json'
    loaded, meta = load_checkpoint(path)
    assert meta['family'] == 'stdp' and meta['info']['timesteps'] == 40
    assert meta['package_version'] and meta['format_version'] == checkpoint.FORMAT_VERSION
    assert np.array_equal(loaded.weights, model.weights)
    assert np.array_equal(loaded.theta, model.theta)
    a = model.infer(images, timesteps=40, seed=9)
    b = loaded.infer(images, timesteps=40, seed=9)
    assert np.array_equal(a.evidence, b.evidence)
    assert np.array_equal(a.predicted, b.predicted)
    assert loaded.config == model.config and loaded.params == model.params


def test_resave_replaces_and_cleans_up(tmp_path, trained):
    model, images = trained
    first = _tensor_file(save_checkpoint(tmp_path / 'm.json', model))
    model.learn(images[:2], timesteps=20)
    second = _tensor_file(save_checkpoint(tmp_path / 'm.json', model))
    assert first != second and not first.exists() and second.exists()
    assert np.array_equal(load_checkpoint(tmp_path / 'm.json')[0].weights, model.weights)


def test_crash_before_metadata_keeps_previous_checkpoint(tmp_path, trained, monkeypatch):
    model, images = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    old_weights = model.weights
    model.learn(images[:2], timesteps=20)
    _crash_between_renames(path, model, monkeypatch)
    loaded, _ = load_checkpoint(path)
    assert np.array_equal(loaded.weights, old_weights)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]


def test_corrupted_truncated_and_torn_files(tmp_path, trained):
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    tensors = _tensor_file(path)
    blob = tensors.read_bytes()
    tensors.write_bytes(blob[:-7])
    with pytest.raises(CheckpointError, match='truncated'):
        load_checkpoint(path)
    tensors.write_bytes(blob[:100] + bytes([blob[100] ^ 1]) + blob[101:])
    with pytest.raises(CheckpointError, match='SHA-256'):
        load_checkpoint(path)
    tensors.unlink()
    with pytest.raises(CheckpointError, match='unreadable'):
        load_checkpoint(path)
    path.write_text('{"format_version": 1, "family"')
    with pytest.raises(CheckpointError, match='not valid checkpoint JSON'):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint(tmp_path / 'absent.json')


def test_a_folder_or_another_file_given_as_a_checkpoint_says_so(tmp_path) -> None:
    """'/work/main/models.json not found' for the models folder (a review of the parameters)."""
    (tmp_path / 'notes.txt').write_text('not a model')
    with pytest.raises(CheckpointError, match=f'{tmp_path} is a folder; give the .json file'):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match='notes.txt is not a checkpoint; give the .json'):
        load_checkpoint(tmp_path / 'notes.txt')


def test_mismatched_metadata(tmp_path, trained):
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    original = json.loads(path.read_text())

    def rewrite(change):
        meta = json.loads(json.dumps(original))
        change(meta)
        path.write_text(json.dumps(meta))

    rewrite(lambda m: m['model']['config'].update(n_neurons=13))
    with pytest.raises(CheckpointError, match='shape'):
        load_checkpoint(path)
    rewrite(lambda m: m['model']['config'].update(bogus=1))
    with pytest.raises(CheckpointError, match='unknown STDPConfig fields'):
        load_checkpoint(path)
    rewrite(lambda m: m.update(format_version=99))
    with pytest.raises(CheckpointError, match='format version 99'):
        load_checkpoint(path)
    # A newer version's setting beside config and params (event_encoding was one: an event
    # model read by the code before it became a frame model, silently; a review).
    rewrite(lambda m: m['model'].update(future_setting={'kind': 'x'}))
    with pytest.raises(CheckpointError, match="'future_setting'.*newer"):
        load_checkpoint(path)
    rewrite(lambda m: m.update(family='cnn-from-the-future'))
    with pytest.raises(CheckpointError, match='unknown model family'):
        load_checkpoint(path)
    rewrite(lambda m: m['tensors'].update(file='../escape.safetensors'))
    with pytest.raises(CheckpointError, match='bad tensor file name'):
        load_checkpoint(path)
    rewrite(lambda m: None)
    with pytest.raises(CheckpointError, match="expected 'cnn'"):
        load_checkpoint(path, family='cnn')


# Hostile or damaged checkpoints (issue 11): refused with CheckpointError, before allocating.

@pytest.fixture()
def alarm():
    """Fail (TimeoutError) instead of hanging when a blocking call does not return in 5 s."""
    def expired(signum, frame):
        raise TimeoutError('blocked for 5 s')

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(5)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _replace_with(path: Path, make) -> None:
    path.unlink()
    make(path)


def test_tensor_file_of_another_kind_is_refused_without_reading(tmp_path, trained, alarm):
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    tensors = _tensor_file(path)
    _replace_with(tensors, lambda p: p.symlink_to('/dev/null'))
    with pytest.raises(CheckpointError, match='not a regular file'):
        load_checkpoint(path)
    _replace_with(tensors, os.mkfifo)  # open() of a FIFO without a writer blocks
    with pytest.raises(CheckpointError, match='not a regular file'):
        load_checkpoint(path)
    _replace_with(path, os.mkfifo)  # the metadata file too
    with pytest.raises(CheckpointError, match='not a regular file'):
        load_checkpoint(path)


def test_tensor_file_linked_to_dev_zero_is_refused_in_bounded_memory(tmp_path, trained,
                                                                     python_executable):
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    tensors = _tensor_file(path)
    tensors.unlink()
    tensors.symlink_to('/dev/zero')
    # In a child whose address space may grow by 1 GiB only: an unbounded read dies there.
    code = textwrap.dedent(f"""
        import resource, sys
        from topspark_ros.core import stdp  # noqa: F401  (imports done before the limit)
        import safetensors.numpy  # noqa: F401
        from topspark_ros.core.checkpoint import CheckpointError, read_checkpoint
        size = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + (1 << 30), resource.RLIM_INFINITY))
        try:
            read_checkpoint({str(path)!r})
        except CheckpointError as exc:
            print('refused:', exc)
        """)
    done = subprocess.run([python_executable, '-c', code], capture_output=True, text=True,
                          timeout=60)
    assert 'refused:' in done.stdout and 'not a regular file' in done.stdout, \
        done.stdout + done.stderr[-2000:]


def test_edited_converted_metadata_is_refused_before_allocating(tmp_path):
    import resource

    from topspark_ros.core.converted import ConvertedConfig, ConvertedNetwork
    path = save_checkpoint(tmp_path / 'conv', ConvertedNetwork(ConvertedConfig(widths=(4, 8),
                                                                               hidden=8)))
    meta = json.loads(path.read_text())
    meta['model']['config']['hidden'] = 100000  # 2.7 GB of layers if built
    path.write_text(json.dumps(meta))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match=r'ops\.fc1\.\w+.* implies \[100000'):
        load_checkpoint(path)
    # Refused from the metadata alone: seconds at most, even on a loaded machine (building the
    # layers took minutes and 2.7 GB).
    assert time.perf_counter() - start < 60.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # kB
    # An input no real model has is refused too (its layers would be allocated otherwise).
    meta['model']['config'].update(hidden=8, height=1 << 16, width=1 << 16)
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match='more than'):
        load_checkpoint(path)


def test_tensor_shapes_and_file_size_must_agree_with_the_metadata(tmp_path, trained):
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    original = json.loads(path.read_text())
    # Shapes edited consistently with the model metadata: the file size gives it away.
    meta = json.loads(json.dumps(original))
    meta['model']['config']['n_neurons'] = 400_000
    for name, shape in meta['tensors']['shapes'].items():
        meta['tensors']['shapes'][name] = [400_000 if n == 12 else n for n in shape]
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match='bytes of tensor data'):
        load_checkpoint(path)


@pytest.mark.parametrize('change, reason', [
    (lambda m: m.update(family=['stdp']), 'unknown model family'),
    (lambda m: m.update(family={'a': 1}), 'unknown model family'),
    (lambda m: m.update(format_version=[1]), 'format version'),
    (lambda m: m.update(tensors=[]), 'tensors is not an object'),
    (lambda m: m['tensors'].update(file=['x']), 'bad tensor file name'),
    (lambda m: m['tensors'].update(file='..'), 'bad tensor file name'),
    (lambda m: m['tensors'].update(sha256=7), 'sha256'),
    (lambda m: m['tensors'].update(shapes={'weights': 'big'}), 'shapes and dtypes'),
    (lambda m: m['tensors']['shapes'].update(weights=[-1, 12]), 'shape of'),
    (lambda m: m['tensors']['shapes'].update(weights=[1e300, 12]), 'shape of'),
    (lambda m: m['tensors']['dtypes'].update(weights='object'), 'dtype of'),
    (lambda m: m['model'].update(config=[1, 2]), 'inconsistent checkpoint'),
    (lambda m: m['model']['config'].update(n_neurons=float('inf')), 'inconsistent'),
    (lambda m: m['model'].update(config=None), 'inconsistent checkpoint'),
    (lambda m: m.clear(), 'missing'),
])
def test_metadata_of_the_wrong_types_gives_a_checkpoint_error(tmp_path, trained, change,
                                                              reason):
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=reason) as caught:
        load_checkpoint(path)
    assert '\n' not in str(caught.value)


def test_deeply_nested_or_huge_metadata_gives_a_checkpoint_error(tmp_path):
    path = tmp_path / 'm.json'
    path.write_text('[' * 100_000 + ']' * 100_000)
    with pytest.raises(CheckpointError, match='not valid checkpoint JSON'):
        load_checkpoint(path)
    path.write_text('{"format_version": 1, "info": ' + '[' * 100_000 + ']' * 100_000 + '}')
    with pytest.raises(CheckpointError, match='not valid checkpoint JSON'):
        load_checkpoint(path)
    with open(path, 'wb') as handle:
        handle.truncate(checkpoint.MAX_METADATA_BYTES + 1)  # sparse: no disk used
    with pytest.raises(CheckpointError, match='more than'):
        load_checkpoint(path)


def _save_with_tensor(path, model, name, value):
    """
    Save ``model`` with one tensor replaced (a damaged but self-consistent checkpoint).

    Written past ``save_checkpoint``, which refuses non-finite tensors itself: as a file
    damaged by another writer, or by a version that saved them, reaches a load.
    """
    import hashlib

    from safetensors.numpy import save as save_tensors

    meta_path = save_checkpoint(path, model)
    meta = json.loads(meta_path.read_text())
    tensors = {k: np.ascontiguousarray(v) for k, v in model.checkpoint_payload()[1].items()}
    tensors[name] = np.ascontiguousarray(value)
    blob = save_tensors(tensors)
    (meta_path.parent / meta['tensors']['file']).write_bytes(blob)
    meta['tensors'].update(sha256=hashlib.sha256(blob).hexdigest())
    meta['tensors']['shapes'][name] = list(tensors[name].shape)
    meta['tensors']['dtypes'][name] = str(tensors[name].dtype)
    meta_path.write_text(json.dumps(meta))
    return meta_path


def test_non_finite_weights_and_thresholds_are_refused(tmp_path, trained):
    model, _ = trained
    weights = np.full_like(model.weights, np.nan)
    path = _save_with_tensor(tmp_path / 'nan', model, 'weights', weights)
    with pytest.raises(CheckpointError, match="'weights' holds NaN or infinite"):
        load_checkpoint(path)
    theta = model.theta.copy()
    theta[3] = -np.inf
    path = _save_with_tensor(tmp_path / 'inf', model, 'theta', theta)
    with pytest.raises(CheckpointError, match="'theta' holds NaN or infinite"):
        load_checkpoint(path)


def test_converted_non_finite_threshold_is_refused(tmp_path):
    from topspark_ros.core.converted import ConvertedConfig, ConvertedNetwork
    model = ConvertedNetwork(ConvertedConfig(widths=(4, 8), hidden=8))
    path = _save_with_tensor(tmp_path / 'conv', model, 'thresholds.0.mu',
                             np.array([-np.inf], np.float32))
    with pytest.raises(CheckpointError, match="'thresholds.0.mu' holds NaN or infinite"):
        load_checkpoint(path)


@pytest.mark.parametrize('bad', [2 ** 40, 10, -2])
def test_class_assignments_outside_the_classes_are_refused(tmp_path, trained, bad):
    model, _ = trained
    assignments = np.asarray(model.readout.assignments, np.int64).copy()
    assignments[0] = bad
    path = _save_with_tensor(tmp_path / 'a', model, 'assignments', assignments)
    with pytest.raises(CheckpointError, match=r'class assignments must lie in \[-1, 10\)'):
        load_checkpoint(path)


# Orphaned temporaries of killed saves (issue 11).

def _orphans(directory: Path, names, age_s: float):
    paths = []
    for name in names:
        path = directory / name
        path.write_bytes(b'partial')
        stamp = time.time() - age_s
        os.utime(path, (stamp, stamp))
        paths.append(path)
    return paths


@pytest.mark.parametrize('when', ['save', 'load'])
def test_stale_temporaries_of_the_checkpoint_are_removed(tmp_path, trained, when):
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    stale = _orphans(tmp_path, ['.m.jsonab_d1234.tmp', '.m.0123456789abcdef.safetensorsqwe'
                                'rty12.tmp'], age_s=3600)
    fresh = _orphans(tmp_path, ['.m.jsonzzzzzzzz.tmp'], age_s=0)
    others = _orphans(tmp_path, ['.m.json.tmp', 'm.json.tmp', '.other.jsonab_d1234.tmp',
                                 '.m.jsonTOOLONG123.tmp', 'notes.tmp'], age_s=3600)
    if when == 'save':
        save_checkpoint(path, model)
    else:
        load_checkpoint(path)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in fresh + others)  # never a save in progress or a user's file


def test_a_locked_temporary_is_kept_however_old(tmp_path, trained, python_executable):
    import fcntl
    model, _ = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    (held,) = _orphans(tmp_path, ['.m.jsonheld0000.tmp'], age_s=3600)
    with open(held, 'rb') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # as a save in progress in another process holds
        code = (f'from topspark_ros.core.checkpoint import load_checkpoint; '
                f'load_checkpoint({str(path)!r})')
        subprocess.run([python_executable, '-c', code], check=True, timeout=60)
        assert held.exists()
    load_checkpoint(path)
    assert not held.exists()


def test_profile_loading_refuses_fifos_devices_and_huge_files(tmp_path, alarm):
    from topspark_ros.core.topspark.profile import load_profile, ProfileError
    fifo = tmp_path / 'p.yaml'
    os.mkfifo(fifo)
    with pytest.raises(ProfileError, match='not a regular file'):
        load_profile(fifo)
    with pytest.raises(ProfileError, match='not a regular file'):
        load_profile('/dev/zero')
    huge = tmp_path / 'huge.yaml'
    with open(huge, 'wb') as handle:
        handle.truncate(64 << 20)  # sparse
    with pytest.raises(ProfileError, match='more than'):
        load_profile(huge)


def test_stale_profile_temporaries_are_removed_on_save(tmp_path):
    from topspark_ros.core.topspark.profile import load_profile, save_profile
    source = Path(__file__).resolve().parents[2] / 'models' / 'stdp_fmnist_n400.profile.yaml'
    profile = load_profile(source)
    (stale,) = _orphans(tmp_path, ['.p.yaml.k2j4h5g1.tmp'], age_s=3600)
    (user,) = _orphans(tmp_path, ['p.yaml.tmp'], age_s=3600)
    save_profile(profile, tmp_path / 'p.yaml')
    assert not stale.exists() and user.exists()


class _Killed(BaseException):
    """The process killed: no handler runs (an OSError there is cleaned up after, on purpose)."""


def _crash_between_renames(path, model, monkeypatch):
    """Save ``model`` to ``path`` as a process killed after its tensor file's rename would."""
    real_replace = os.replace
    calls = []

    def failing_replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the metadata's rename: the tensor file is in place already
            raise _Killed('simulated crash')
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, 'replace', failing_replace)
    with pytest.raises(_Killed, match='simulated crash'):
        save_checkpoint(path, model)
    monkeypatch.setattr(checkpoint.os, 'replace', real_replace)
    (orphan,) = set(path.parent.glob('*.safetensors')) - {_tensor_file(path)}
    return orphan


def _age(path, age_s):
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))


def test_the_next_save_deletes_a_tensor_file_a_killed_save_left(tmp_path, trained,
                                                                monkeypatch):
    model, images = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    model.learn(images[:2], timesteps=20)
    orphan = _crash_between_renames(path, model, monkeypatch)
    _age(orphan, 3600)
    model.learn(images[2:4], timesteps=20)
    save_checkpoint(path, model)
    assert not orphan.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ['m.json', _tensor_file(path).name])
    assert np.array_equal(load_checkpoint(path)[0].weights, model.weights)


def test_tensor_files_that_may_be_in_use_or_a_users_are_kept(tmp_path, trained, monkeypatch):
    model, images = trained
    path = save_checkpoint(tmp_path / 'm.json', model)
    model.learn(images[:2], timesteps=20)
    fresh = _crash_between_renames(path, model, monkeypatch)  # a save in progress, maybe
    named = tmp_path / ('m.' + 'ab' * 8 + '.safetensors')  # a backup's .json names it
    named.write_bytes(b'tensors')
    (tmp_path / 'backup.json').write_text(json.dumps({'tensors': {'file': named.name}}))
    users = tmp_path / ('m.' + 'cd' * 8 + '.safetensors')  # content not of its name
    users.write_bytes(b'my own tensors')
    other = tmp_path / ('other.' + 'ef' * 8 + '.safetensors')  # another checkpoint's name
    other.write_bytes(b'x')
    for old in (named, users, other):
        _age(old, 3600)
    model.learn(images[2:4], timesteps=20)
    save_checkpoint(path, model)
    assert fresh != _tensor_file(path)
    assert all(p.exists() for p in (fresh, named, users, other))
    _age(fresh, 3600)
    save_checkpoint(path, model)
    assert not fresh.exists() and all(p.exists() for p in (named, users, other))


def test_a_checkpoint_saved_anew_while_it_is_read_is_read_again(tmp_path, trained,
                                                                monkeypatch):
    """A reader found the tensor file the metadata it had read named gone (a review)."""
    model, _ = trained
    path = tmp_path / 'w.json'
    save_checkpoint(path, model)
    first = json.loads(path.read_text())['tensors']['file']
    changed = DiehlCookNetwork(model.config, model.params, readout=model.readout)  # new weights
    real, calls = checkpoint._read_tensor_file, []

    def saved_meanwhile(tensor_path, *args):
        calls.append(tensor_path.name)
        if len(calls) == 1:  # another process saves between the two reads
            save_checkpoint(path, changed)
            (tmp_path / first).unlink()
        return real(tensor_path, *args)

    monkeypatch.setattr(checkpoint, '_read_tensor_file', saved_meanwhile)
    meta, tensors = checkpoint.read_checkpoint(path)
    assert calls[0] == first and calls[1] == meta['tensors']['file'] != first
    assert np.array_equal(tensors['weights'], changed.weights)
    # A tensor file gone without a new save is an error, as before.
    monkeypatch.setattr(checkpoint, '_read_tensor_file', real)
    (tmp_path / meta['tensors']['file']).unlink()
    with pytest.raises(CheckpointError, match='unreadable'):
        checkpoint.read_checkpoint(path)


def test_a_tensor_file_given_for_a_checkpoint_names_its_metadata_file(tmp_path) -> None:
    """model_path: x.safetensors said only that x.safetensors.json was not found (a review)."""
    model = DiehlCookNetwork(STDPConfig(n_neurons=4, seed=0))
    path = save_checkpoint(tmp_path / 'mine.json', model)
    tensors = tmp_path / json.loads(path.read_text())['tensors']['file']
    (tmp_path / 'notes.json').write_text('[1, 2]')  # other JSON beside it: passed over
    with pytest.raises(CheckpointError) as refused:
        load_checkpoint(tensors)
    assert str(refused.value).endswith(
        f'not found: {tensors.name} is the tensor file of a checkpoint; give its metadata '
        f'file, {path}')
    with pytest.raises(CheckpointError, match=r'absent.safetensors.json not found$'):
        load_checkpoint(tmp_path / 'absent.safetensors')  # no such file: nothing more to say
    (tmp_path / 'graph.nir').write_bytes(b'\x89HDF')  # a NIR graph, a profile (a review)
    with pytest.raises(CheckpointError, match=r'graph.nir is a NIR graph, not a checkpoint; '
                       r'`topspark import .*graph.nir` makes a checkpoint of it'):
        load_checkpoint(tmp_path / 'graph.nir')
    (tmp_path / 'p.profile.yaml').write_text('schema: 1\n')
    with pytest.raises(CheckpointError, match=r'is not a checkpoint \(a timestep profile\?'):
        load_checkpoint(tmp_path / 'p.profile.yaml')


def test_a_metadata_write_that_fails_leaves_no_tensor_file(tmp_path, monkeypatch) -> None:
    """A disk full at the .json kept the new tensor file, 1.3 MB of the little room left."""
    from topspark_ros.core import checkpoint as module
    model = DiehlCookNetwork(STDPConfig(n_neurons=4, seed=0))
    path = save_checkpoint(tmp_path / 'mine.json', model)
    before = sorted(p.name for p in tmp_path.iterdir())
    real = module.atomic_write

    def full(directory, prefix, data, target, **kwargs):
        if str(target).endswith('.json'):
            raise OSError(28, 'No space left on device')
        return real(directory, prefix, data, target, **kwargs)
    monkeypatch.setattr(module, 'atomic_write', full)
    other = DiehlCookNetwork(STDPConfig(n_neurons=4, seed=1))
    with pytest.raises(OSError, match='No space left'):
        save_checkpoint(path, other)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # the old one intact
    load_checkpoint(path)

"""Measurements kept as they are made (core/topspark/trials.py)."""

import numpy as np
import pytest
from topspark_ros.core.topspark.fanout import InProcess
from topspark_ros.core.topspark.trials import array_digest, Remembering, TrialStore


def _square(item, *, images, offset):
    return {'value': float(item * item + offset + images.sum())}


def _remembering(path, context=None):
    store = TrialStore(path, context or {'model': 'a'})
    return store, Remembering(InProcess(), store, dict, dict)


def test_kept_results_are_handed_back_and_only_the_rest_is_run(tmp_path) -> None:
    """A second run of the same items runs none; changed shared arrays or values run again."""
    images = np.arange(6, dtype=np.uint8).reshape(2, 3)
    store, executor = _remembering(tmp_path / 's.sqlite')
    counted = []

    def square(item, **shared):
        counted.append(item)
        return _square(item, **shared)

    progress = []
    first = executor.run(square, [1, 2, 3], shared={'images': images, 'offset': 0},
                         progress=progress.append)
    assert first == [{'value': 16.0}, {'value': 19.0}, {'value': 24.0}] and counted == [1, 2, 3]
    store.close()
    store, executor = _remembering(tmp_path / 's.sqlite')
    assert store.kept == 3 and not store.replaced
    again = executor.run(square, [3, 4, 1], shared={'images': images.copy(), 'offset': 0},
                         progress=progress.append)
    assert again == [{'value': 24.0}, {'value': 31.0}, {'value': 16.0}]
    assert counted == [1, 2, 3, 4] and executor.reused == 2 and sum(progress) == 6
    executor.run(square, [1], shared={'images': images + 1, 'offset': 0})  # other images
    executor.run(square, [1], shared={'images': images, 'offset': 1})  # another value
    assert counted == [1, 2, 3, 4, 1, 1]


def test_an_interrupted_map_keeps_what_it_finished(tmp_path) -> None:
    """Items run one at a time in this process, each kept at once: a Ctrl-C loses one."""
    store, executor = _remembering(tmp_path / 's.sqlite')

    def stops_at_three(item, **shared):
        if item == 3:
            raise KeyboardInterrupt
        return {'value': item}

    with pytest.raises(KeyboardInterrupt):
        executor.run(stops_at_three, [1, 2, 3, 4])
    assert store.count() == 2


def test_contexts_share_a_file_and_pinned_values_are_the_first(tmp_path) -> None:
    """Another model, data or settings reuses nothing; the file goes with the last context."""
    path = tmp_path / 's.sqlite'
    store, executor = _remembering(path)
    executor.run(lambda item: {'value': item}, [1, 2])
    assert store.pinned('incumbent/16', lambda: {'theta_scale': np.float64(0.5)}) == \
        {'theta_scale': 0.5}
    store.close()
    store = TrialStore(path, {'model': 'a'})
    assert store.kept == 2 and store.others == 0
    assert store.pinned('incumbent/16', lambda: None) == {'theta_scale': 0.5}
    other = TrialStore(path, {'model': 'b'})  # open at the same time
    assert other.kept == 0 and other.others == 2 and not other.replaced
    assert other.pinned('incumbent/16', lambda: None) is None
    other.put('k', {'value': 3})
    store.remove()  # a's run finished: b's measurements stay, and the file
    assert path.exists() and other.get('k') == {'value': 3} and other.count() == 1
    other.remove()
    assert list(tmp_path.iterdir()) == []


def test_a_file_an_open_store_holds_is_not_deleted(tmp_path) -> None:
    """A run that finishes leaves the file while another run has it open, even empty."""
    path = tmp_path / 's.sqlite'
    first = TrialStore(path, {'model': 'a'})
    second = TrialStore(path, {'model': 'b'})
    first.remove()
    assert path.exists()
    second.put('k', {'value': 1})
    assert TrialStore(path, {'model': 'b'}).kept == 1
    second.remove()


def test_array_digests_tell_values_shapes_and_dtypes_apart() -> None:
    """Equal arrays have one digest (whatever their layout); others another."""
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    digests = {array_digest(x) for x in (a, a.reshape(3, 2), a.astype(np.int32), a + 1)}
    assert len(digests) == 4
    assert array_digest(np.asfortranarray(a)) == array_digest(a)
    assert array_digest(np.zeros((0, 784), np.uint8)) != array_digest(np.zeros(0, np.uint8))


def test_an_event_data_set_is_told_apart_by_its_windows() -> None:
    """An object array of windows hashed its pointers: another digest every run."""
    from topspark_ros.core.topspark.search import data_key

    def windows(last_x):
        out = np.empty(2, dtype=object)
        out[0] = np.array([(1, 2, 3)], dtype=[('x', '<u2'), ('y', '<u2'), ('t', '<i8')])
        out[1] = np.array([(last_x, 2, 9)], dtype=out[0].dtype)
        return out

    assert array_digest(windows(4)) == array_digest(windows(4))
    assert array_digest(windows(4)) != array_digest(windows(5))
    assert data_key(windows(4)) == data_key(windows(4)) != data_key(windows(5))
    # Numeric arrays keep the fingerprint the searches were seeded with before.
    assert data_key(np.arange(4, dtype=np.uint8)) == 4017369932


def test_a_full_disk_is_an_os_error_naming_the_store_and_keeps_what_was_kept(
        tmp_path) -> None:
    """A measurement the disk had no room for raised sqlite3's traceback (a review)."""
    import subprocess
    import sys

    path = tmp_path / 's.sqlite'
    code = '\n'.join([  # a file size limit just above the store stands for a full disk
        'import os, resource, signal, sys',
        'from topspark_ros.core.topspark.trials import TrialStore',
        'store = TrialStore(sys.argv[1], {"model": "a"})',
        'store.put("first", {"value": 1})',
        'signal.signal(signal.SIGXFSZ, signal.SIG_IGN)',
        'size = os.path.getsize(sys.argv[1])',
        'resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))',
        'try:',
        '    store.put("second", {"value": "x" * 100_000})',
        'except OSError as exc:',
        '    print("OSError", exc)',
        'print("kept", store.count())',
    ])
    out = subprocess.run([sys.executable, '-c', code, str(path)], capture_output=True,
                         text=True, timeout=60)
    assert f'OSError cannot keep measurements in {path}' in out.stdout, out.stderr
    assert 'kept 1' in out.stdout
    assert TrialStore(path, {'model': 'a'}).kept == 1

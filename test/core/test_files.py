"""Tests of the safe file writes and reads (core/files.py) shared by checkpoints and profiles."""

import os
import time

import numpy as np
import pytest
from topspark_ros.core import files


class Refused(ValueError):
    """The error type the tests ask the readers to raise."""


def test_atomic_write_replaces_the_target_and_leaves_no_temporary(tmp_path):
    target = tmp_path / 'model.json'
    target.write_text('old')
    files.atomic_write(tmp_path, '.model.json', b'new', target)
    assert target.read_bytes() == b'new'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['model.json']
    # The umask applies, as for any file the user writes (mkstemp alone would give 0600).
    assert target.stat().st_mode & 0o777 == 0o666 & ~files.umask()


@pytest.mark.parametrize('hard_links', [True, False])
def test_atomic_write_without_replace_makes_a_new_file_only(tmp_path, monkeypatch, hard_links):
    """replace=False: a new file whole; an existing one (or a symlink) untouched, no temporary."""
    if not hard_links:  # a file system without them: the existence check, then the rename
        def no_link(*args, **kwargs):
            raise PermissionError(1, 'Operation not permitted')
        monkeypatch.setattr(os, 'link', no_link)
    target = tmp_path / 'new.bin'
    files.atomic_write(tmp_path, '.new.', b'first', target, replace=False)
    assert target.read_bytes() == b'first'
    with pytest.raises(FileExistsError, match='new.bin exists'):
        files.atomic_write(tmp_path, '.new.', b'second', target, replace=False)
    assert target.read_bytes() == b'first'
    link = tmp_path / 'link.bin'
    link.symlink_to(tmp_path / 'nowhere')
    with pytest.raises(FileExistsError):
        files.atomic_write(tmp_path, '.link.', b'x', link, replace=False)
    assert link.is_symlink() and not (tmp_path / 'nowhere').exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['link.bin', 'new.bin']


def test_read_regular_returns_the_bytes_within_the_limit(tmp_path):
    path = tmp_path / 'a'
    path.write_bytes(b'x' * 10)
    assert files.read_regular(path, 10, Refused) == b'x' * 10
    with pytest.raises(Refused, match='has 10 bytes, more than the 9 accepted'):
        files.read_regular(path, 9, Refused)


def test_a_fifo_is_refused_without_blocking_and_a_directory_is_not_read(tmp_path):
    fifo = tmp_path / 'fifo'
    os.mkfifo(fifo)
    with pytest.raises(Refused, match='is not a regular file'):
        files.read_regular(fifo, 100, Refused)
    # (fdopen refused it first, as '[Errno 21] Is a directory: 3'; a CLI review)
    with pytest.raises(Refused, match=f'{tmp_path} is not a regular file'):
        files.read_regular(tmp_path, 100, Refused)
    opened = len(os.listdir('/proc/self/fd'))
    for _ in range(5):
        with pytest.raises(Refused):
            files.read_regular(tmp_path, 100, Refused)
    assert len(os.listdir('/proc/self/fd')) == opened  # nothing left open


def test_read_at_most_prepends_what_was_read_and_stops_at_the_limit(tmp_path):
    path = tmp_path / 'a'
    path.write_bytes(b'0123456789')
    with files.open_regular(path, Refused) as (handle, info):
        head = handle.read(4)
        assert files.read_at_most(handle, path, info.st_size, Refused, head) == b'0123456789'
    with files.open_regular(path, Refused) as (handle, _):
        with pytest.raises(Refused, match='grew beyond 5 bytes'):
            files.read_at_most(handle, path, 5, Refused)


def test_only_old_unlocked_temporaries_are_removed(tmp_path):
    import re

    pattern = re.compile(r'\.m\.json\w*\.tmp')
    old = tmp_path / '.m.jsonabc.tmp'
    new = tmp_path / '.m.jsonxyz.tmp'
    other = tmp_path / 'keep.tmp'
    for path in (old, new, other):
        path.write_text('')
    stale = time.time() - files.STALE_TEMPORARY_S - 1
    os.utime(old, (stale, stale))
    os.utime(other, (stale, stale))
    held = os.open(new, os.O_RDONLY)
    try:
        assert files.lock(held, blocking=False)
        os.utime(new, (stale, stale))
        assert files.remove_stale_temporaries(tmp_path, pattern) == 1
    finally:
        os.close(held)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['.m.jsonxyz.tmp', 'keep.tmp']


def test_a_write_removes_what_a_killed_write_of_that_name_left(tmp_path):
    """Event files and NIR graphs too (only checkpoints and profiles cleaned up before)."""
    from topspark_ros.core.events import EVENT_DTYPE
    from topspark_ros.core.events.files import EventRecording, write_event_file

    stale = time.time() - files.STALE_TEMPORARY_S - 1
    orphan, fresh, other = (tmp_path / '.rec.npz.k1l2m3n4.tmp',
                            tmp_path / '.rec.npz.z9y8x7w6.tmp', tmp_path / '.b.npz.k1l2m3n4.tmp')
    for path in (orphan, fresh, other):
        path.write_bytes(b'half a recording')
    for path in (orphan, other):
        os.utime(path, (stale, stale))
    write_event_file(tmp_path / 'rec.npz', EventRecording(np.zeros(3, EVENT_DTYPE), 4, 4))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ['.b.npz.k1l2m3n4.tmp', '.rec.npz.z9y8x7w6.tmp', 'rec.npz']


def test_a_file_that_cannot_be_written_is_named_in_the_error(tmp_path):
    """The error named the hidden temporary (/proc/.foo.nir.06gz1gnx.tmp), not the file."""
    target = tmp_path / 'missing' / 'model.nir'  # no such folder: nothing can be made there
    with pytest.raises(FileNotFoundError) as caught:
        with files.written_atomically(target):
            pass
    assert f'cannot write {target}' in str(caught.value) and '.tmp' not in str(caught.value)


def test_a_full_disk_names_the_file_it_was_writing(tmp_path):
    """'[Errno 28] No space left on device' named no file (a review of storage faults)."""
    import subprocess
    import sys

    target = tmp_path / 'profile.yaml'
    code = '\n'.join([  # a file size limit of 4 kB stands for a full disk
        'import resource, signal, sys',
        'signal.signal(signal.SIGXFSZ, signal.SIG_IGN)',
        'resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))',
        'from topspark_ros.core.files import atomic_write',
        'from pathlib import Path',
        'target = Path(sys.argv[1])',
        'try:',
        '    atomic_write(target.parent, None, bytes(100_000), target)',
        'except OSError as exc:',
        '    print(exc.errno, exc)',
    ])
    out = subprocess.run([sys.executable, '-c', code, str(target)], capture_output=True,
                         text=True, timeout=60).stdout
    assert out.startswith('27 ') and f'cannot write {target}: File too large' in out, out
    assert os.listdir(tmp_path) == []  # nothing left
    # An error of the block's own that is no write failure is left as it was.
    with pytest.raises(FileNotFoundError) as caught:
        with files.written_atomically(target):
            open(tmp_path / 'an input that is not there')
    assert 'cannot write' not in str(caught.value)


@pytest.mark.parametrize('links', [True, False], ids=['hard-links', 'no-hard-links'])
def test_a_new_name_is_given_only_where_no_file_is(tmp_path, monkeypatch, links) -> None:
    """
    place_new never moves a file over another, with hard links or without (FAT, exFAT).

    Without, a check of the name and then a move replaced a sample another recorder wrote
    between the two (a review): the name is claimed exclusively first.
    """
    import errno
    if not links:
        def no_links(*args):
            raise OSError(errno.EPERM, 'Operation not permitted')
        monkeypatch.setattr(files.os, 'link', no_links)
    ours, theirs = tmp_path / '.ours.tmp', tmp_path / 'frame.png'
    ours.write_bytes(b'ours')
    theirs.write_bytes(b'theirs')  # another writer's, there first
    assert not files.place_new(str(ours), theirs)
    assert theirs.read_bytes() == b'theirs' and ours.read_bytes() == b'ours'
    assert files.place_new(str(ours), tmp_path / 'frame-1.png')
    assert (tmp_path / 'frame-1.png').read_bytes() == b'ours' and not ours.exists()
    real_replace = os.replace

    def racing_replace(src, dst):  # another writer tries the name while it is moved
        with pytest.raises(FileExistsError):
            os.close(os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        real_replace(src, dst)
    monkeypatch.setattr(files.os, 'replace', racing_replace)
    ours.write_bytes(b'again')
    assert files.place_new(str(ours), tmp_path / 'frame-2.png')
    assert (tmp_path / 'frame-2.png').read_bytes() == b'again'

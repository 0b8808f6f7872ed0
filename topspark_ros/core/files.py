"""
Safe file writes and reads shared by checkpoints, profiles and recordings.

Writes are atomic (a temporary in the target's folder, fsync, rename, directory fsync), so a
crash never leaves a torn file where a user's model or profile was; a temporary being written is
held under an exclusive ``flock`` so a cleaner can tell an orphan from a save in progress.
Reads open non-blocking and refuse anything but a regular file of bounded size.
"""

import contextlib
import errno
import os
from pathlib import Path
import re
import stat
import tempfile
import time
from typing import BinaryIO, Iterator, Optional, Tuple

try:
    import fcntl
except ImportError:  # not POSIX: temporaries are never locked, and cleaned by age only
    fcntl = None

WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
"""Errors of writing a file (a full disk, a quota, a file size limit, a read-only file
system): :func:`written_atomically` names the file it was writing in them ("[Errno 28] No
space left on device" alone said nothing of which)."""
STALE_TEMPORARY_S = 10.0
"""Age (seconds since last written) from which an unlocked save temporary is an orphan."""


def umask() -> int:
    """Return the process umask without changing it (os.umask would, racing other threads)."""
    try:
        with open('/proc/self/status') as status:
            for line in status:
                if line.startswith('Umask:'):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def atomic_write(directory: Path, prefix: str, data: bytes, target: Path, *,
                 replace: bool = True) -> None:
    """Write ``data`` to ``target`` atomically (see :func:`written_atomically`)."""
    with written_atomically(target, replace=replace, directory=directory,
                            prefix=prefix) as temporary:
        with open(temporary, 'wb') as handle:
            handle.write(data)


@contextlib.contextmanager
def written_atomically(target: Path, *, replace: bool = True,
                       directory: Optional[Path] = None, prefix: Optional[str] = None,
                       locked: bool = True) -> Iterator[Path]:
    """
    Yield a temporary path to write ``target``'s content to; then make it ``target``.

    The temporary lies in ``directory`` (default: ``target``'s folder), named ``prefix``...
    ``.tmp``, and is held under an exclusive ``flock`` while it is written (see
    :func:`remove_stale_temporaries`; ``locked`` False for a writer that locks the file
    itself, as HDF5 does). Temporaries of the same name that a killed write left are removed
    first. After the block it is flushed to disk and renamed to
    ``target``, so a crash never leaves a torn file there; if the block raises, it is deleted.
    ``replace`` False: an existing ``target`` is never replaced (``FileExistsError``), also one
    that appears meanwhile: the temporary is hard-linked to ``target``, which fails if it
    exists (where the file system has no hard links, an existence check just before the
    rename).
    """
    target = Path(target)
    directory = target.parent if directory is None else directory
    prefix = prefix or f'.{target.name}.'
    # What a killed write of the same name left (see remove_stale_temporaries).
    remove_stale_temporaries(directory, re.compile(re.escape(prefix) + r'[a-z0-9_]{8}\.tmp'))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix='.tmp')
    except OSError as exc:  # named after the file asked for, not the temporary's name
        raise type(exc)(exc.errno, f'cannot write {target}: {exc.strerror}') from exc
    try:
        if locked:
            lock(fd, blocking=True)  # held until closed: marks the temporary as in use
        # mkstemp creates 0600 files; a checkpoint gets the usual permissions (umask applies).
        os.fchmod(fd, 0o666 & ~umask())
        yield Path(tmp)
        written = os.open(tmp, os.O_RDONLY)  # the writer may have made a new file there
        try:
            os.fsync(written)
        finally:
            os.close(written)
        if replace:
            os.replace(tmp, target)
        else:
            _rename_new(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:  # which file it was
            raise type(exc)(exc.errno, f'cannot write {target}: {exc.strerror}') from exc
        raise
    finally:
        os.close(fd)


def output_folder_problem(target: os.PathLike) -> Optional[str]:
    """
    Return why a file could not be made at ``target``, or None (its folder may not exist yet).

    The first existing folder up its path must be a folder this process may write in: an
    output under a regular file, or in a read-only folder or file system, was found only when
    it was written, after the work (a review of storage faults). Root writes anywhere but on a
    read-only file system, as ``os.access`` says; so a file is made there and removed at once
    (root's ``train -o /proc/m.json`` trained, then failed to save).
    """
    path = Path(target)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f'{path}: {parent} is a file, not a directory'
    if not os.access(parent, os.W_OK | os.X_OK):
        return f'{path}: {parent} is not a folder this process may write in'
    try:
        with tempfile.TemporaryFile(dir=parent, prefix='.topspark-probe-'):
            pass
    except OSError as exc:
        return f'{path}: no file can be made in {parent} ({exc.strerror or exc})'
    return None


def _rename_new(tmp: str, target: Path) -> None:
    """Move ``tmp`` to ``target``, which must not exist (see :func:`atomic_write`)."""
    if not place_new(tmp, target):
        raise FileExistsError(f'{target} exists; not replacing it')


NO_LINK_ERRNOS = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS)
"""What ``os.link`` raises on a file system without hard links (FAT, exFAT, some network ones)."""


def place_new(tmp: str, target: os.PathLike) -> bool:
    """
    Give the whole file ``tmp`` the name ``target`` unless that exists; return whether it did.

    A hard link, atomic, then ``tmp`` removed. Without hard links (FAT, exFAT: a USB stick)
    the name is claimed by creating it exclusively, then ``tmp`` is moved over that empty file:
    never over a file of another writer (a check, then a move, replaced a sample another
    recorder wrote between the two; a review), though a reader may see the name empty for a
    moment. False (``tmp`` left) when ``target`` exists.
    """
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in NO_LINK_ERRNOS:
            raise
        try:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        os.replace(tmp, target)
        return True
    os.unlink(tmp)
    return True


def hold_lock_file(path: Path) -> Optional[int]:
    """
    Take an exclusive ``flock`` on the lock file ``path`` (made); return its descriptor.

    None when another process holds it (see :func:`open_locked`).
    """
    return open_locked(path, shared=False, blocking=False)


def open_locked(path: Path, *, shared: bool, blocking: bool) -> Optional[int]:
    """
    Open the file ``path`` (made if missing) under a ``flock``; return its descriptor.

    ``shared``: a shared lock, else an exclusive one; ``blocking`` False: None when another
    process holds a lock that excludes it. A holder may remove the file when it lets go
    (:func:`release_lock_file`); a process that opened the file before that finds, once it
    holds the lock, that the file is no longer at ``path`` and opens it anew. On a file system
    without locks (some network ones) the file is opened unlocked.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
        if fcntl is None:
            return fd
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
                        | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError:  # no locks here
            return fd
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def release_lock_file(fd: int, path: Path) -> None:
    """Remove the lock file ``path`` held on ``fd`` (:func:`hold_lock_file`), then let go."""
    try:
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            os.unlink(path)
    except OSError:
        pass
    os.close(fd)


def lock(fd: int, blocking: bool) -> bool:
    """Take an exclusive ``flock`` on ``fd``; return False if another process holds one."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks
        return True
    return True


def remove_stale_temporaries(directory: Path, pattern: 're.Pattern') -> int:
    """
    Delete the orphaned save temporaries in ``directory`` whose names match ``pattern``.

    An orphan is a regular file (not a symlink) that no process holds an exclusive lock on
    (a save holds one, see :func:`atomic_write`) and that was last written at least
    :data:`STALE_TEMPORARY_S` ago. Errors (a read-only folder, a file gone meanwhile) are
    ignored. Returns the number of files deleted.
    """
    try:
        names = [name for name in os.listdir(directory) if pattern.fullmatch(name)]
    except OSError:
        return 0
    removed = 0
    for name in names:
        path = os.path.join(directory, name)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_NOFOLLOW', 0)
                         | getattr(os, 'O_CLOEXEC', 0))
        except OSError:
            continue
        try:
            info = os.fstat(fd)
            if (stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime >= STALE_TEMPORARY_S
                    and lock(fd, blocking=False)):
                os.unlink(path)
                removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def walk_followed(root: Path) -> Iterator[Tuple[str, list]]:
    """
    Yield ``(folder, sorted file names)`` of ``root`` and every folder below it, in order.

    Symbolic links to folders are followed, each real folder once (a link loop, or a second
    link to one folder, ends there); hidden folders (``.*``) are left out. A folder that
    vanishes or cannot be read is passed over.
    """
    seen = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        try:
            real = os.stat(folder)
        except OSError:
            dirs[:] = []
            continue
        if (real.st_dev, real.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((real.st_dev, real.st_ino))
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        yield folder, sorted(files)


@contextlib.contextmanager
def open_regular(path: Path,
                 error: type = ValueError) -> Iterator[Tuple[BinaryIO, os.stat_result]]:
    """
    Open ``path`` (symlinks followed) for reading; yield ``(unbuffered handle, its fstat)``.

    Opened non-blocking, so a FIFO or device is refused without waiting on it: raises ``error``
    when it is not a regular file, ``OSError`` when it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, 'O_NOCTTY', 0)
                 | getattr(os, 'O_CLOEXEC', 0))
    try:  # checked before fdopen, which refuses a directory as '[Errno 21] Is a directory: 3'
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f'{path} is not a regular file (a device, FIFO, socket or '
                        'directory is never read)')
        handle = os.fdopen(fd, 'rb', buffering=0)
    except BaseException:
        os.close(fd)
        raise
    with handle:
        yield handle, info


def read_at_most(handle: BinaryIO, path: Path, limit: int, error: type = ValueError,
                 data: bytes = b'') -> bytes:
    """Return ``data`` + the rest of ``handle``; raise ``error`` past ``limit`` bytes in all."""
    data = bytearray(data)
    while len(data) <= limit:
        chunk = handle.read(min(limit + 1 - len(data), 1 << 26))
        if not chunk:
            break
        data += chunk
    if len(data) > limit:
        raise error(f'{path} grew beyond {limit} bytes while read')
    return bytes(data)


def read_regular(path: Path, limit: int, error: type = ValueError) -> bytes:
    """
    Return the bytes of the regular file ``path`` (symlinks followed), at most ``limit``.

    See :func:`open_regular`; raises ``error`` when it is not a regular file or is larger than
    ``limit``, ``OSError`` when it cannot be opened or read.
    """
    with open_regular(path, error) as (handle, info):
        if info.st_size > limit:
            raise error(f'{path} has {info.st_size} bytes, more than the {limit} accepted')
        return read_at_most(handle, path, limit, error)


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry change to disk (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

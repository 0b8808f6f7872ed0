"""
An enhancement's measurements kept as they are made, so an interrupted run resumes.

`topspark enhance` on a large model and data set measures for hours, and the profile is
written a T at a time: a run stopped within a T (Ctrl-C, a killed process, a reboot) lost that
T's measurements, and the sensitivity analysis of the whole grid, which comes first. Every
measurement is a pure function of its item (the candidate values, the number of images, T) and
of what the items share (the model, the images, the settings), and the searches decide from
the scores in the order they asked for them (:mod:`.fanout`): a run given the same scores asks
for the same next candidates. So :class:`Remembering`, an executor around another, keeps each
score in a :class:`TrialStore` (an SQLite file) as soon as it is measured and hands a kept
score back instead of measuring again; the same command run again goes through the finished
part at once and goes on where it stopped, with the result an uninterrupted run gives.

A store keeps each enhancement's measurements under its context (the model's SHA-256, the data,
the settings): a run reads only those of its own. The CLI forgets them when the run finished,
and deletes the file once it holds nothing.

Light on purpose (no torch): stdlib SQLite and numpy only.
"""

import contextlib
import hashlib
import json
import os
from pathlib import Path
import sqlite3
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import numpy as np

from topspark_ros.core.files import open_locked

try:
    import fcntl
except ImportError:  # not POSIX: no locks; a finished run leaves the file
    fcntl = None

FORMAT = 1
"""Version of what a store holds: a store of another format is another enhancement's."""


def update_digest(digest, array: np.ndarray) -> None:
    """
    Feed an array's dtype, shape and values to a ``hashlib`` digest.

    An object array (an event data set: one array of events per sample) feeds each of its
    arrays in turn: its own bytes are pointers, another every run.
    """
    array = np.ascontiguousarray(array)
    digest.update(f'{array.dtype.str}{array.shape}'.encode())
    if array.dtype.hasobject:
        for item in array.reshape(-1):
            update_digest(digest, np.asarray(item))
    else:
        digest.update(array.tobytes())


def array_digest(array: np.ndarray) -> str:
    """Return a hex digest of an array's dtype, shape and values (:func:`update_digest`)."""
    digest = hashlib.blake2b(digest_size=16)
    update_digest(digest, array)
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    """Make a numpy scalar JSON's (``json.dumps`` default); refuse anything else."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f'{type(value).__name__} in an item: not a plain value')


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(',', ':'), default=_plain)


class TrialStore:
    """
    The measurements of one enhancement, in an SQLite file at ``path``.

    ``context``: what the measurements depend on beyond their items and shared arrays (a
    JSON-able dict: the model's SHA-256, the settings). One file may hold the measurements of
    several contexts (two enhancements of one profile at once, with other settings; an
    interrupted run of other settings): each reads and writes only its own. :attr:`kept` is
    the number of this context's measurements found, :attr:`others` that of the others. A file
    of another :data:`FORMAT` is emptied (:attr:`replaced`). Each measurement is committed on
    its own (an SQLite transaction: a process killed while writing leaves the ones before).
    Every run holds a shared ``flock`` on the file while it is open, so :meth:`remove` deletes
    the file only when no other run has it open.
    """

    def __init__(self, path: os.PathLike, context: Mapping[str, Any]) -> None:
        """Open (or create) the store."""
        self.path = Path(path)
        self.context = hashlib.sha256(_dumps(dict(context)).encode()).hexdigest()
        self._lock = None
        try:
            self._lock = open_locked(self.path, shared=True, blocking=True)
            self._db = sqlite3.connect(self.path, timeout=60.0)
        except (OSError, sqlite3.Error) as exc:
            self._close_lock()
            raise OSError(f'{self.path}: cannot keep measurements there ({exc})') from None
        try:
            with self._db:
                self._db.execute('CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, '
                                 'value TEXT NOT NULL)')
                row = self._db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
                self.replaced = row is not None and row[0] != str(FORMAT)
                if row is None or self.replaced:
                    for table in ('results', 'pinned'):
                        self._db.execute(f'DROP TABLE IF EXISTS {table}')
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)",
                                     (str(FORMAT),))
                for table in ('results', 'pinned'):
                    self._db.execute(f'CREATE TABLE IF NOT EXISTS {table} (context TEXT, '
                                     'key TEXT, value TEXT NOT NULL, PRIMARY KEY (context, key))')
            self.kept = self.count()
            self.others = self._db.execute('SELECT COUNT(*) FROM results WHERE context != ?',
                                           (self.context,)).fetchone()[0]
        except sqlite3.OperationalError as exc:  # a full disk, a read-only one, a lock held
            self.close()
            raise OSError(f'{self.path}: cannot keep measurements there ({exc})') from None
        except sqlite3.DatabaseError as exc:
            self.close()
            raise ValueError(f'{self.path}: cannot keep measurements in it ({exc}); remove '
                             'it') from None

    def count(self) -> int:
        """Return the number of measurements of this context kept."""
        return self._db.execute('SELECT COUNT(*) FROM results WHERE context = ?',
                                (self.context,)).fetchone()[0]

    def get(self, key: str) -> Optional[Any]:
        """Return the JSON value kept under ``key``, or None."""
        row = self._db.execute('SELECT value FROM results WHERE context = ? AND key = ?',
                               (self.context, key)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        """
        Keep the JSON-able ``value`` under ``key`` (committed at once).

        A store that cannot take it (a full disk) raises OSError naming the file; what it
        kept before stays.
        """
        with self._writing():
            with self._db:
                self._db.execute('INSERT OR REPLACE INTO results VALUES (?, ?, ?)',
                                 (self.context, key, _dumps(value)))

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn SQLite's errors of a write into OSError naming the file (a full disk)."""
        try:
            yield
        except sqlite3.Error as exc:
            raise OSError(f'cannot keep measurements in {self.path} ({exc}); those kept '
                          'before stay: the same command resumes from them') from None

    def pinned(self, name: str, compute: Callable[[], Any]) -> Any:
        """
        Return the value ``compute()`` gave the first time (JSON-able), the same thereafter.

        For inputs that the run itself changes: the profile's values at a T, which the run
        replaces when it finishes that T, are the search's incumbent; a resumed run must
        start from the values the first run started from.
        """
        value = _dumps(compute())
        with self._writing():
            with self._db:
                self._db.execute('INSERT OR IGNORE INTO pinned VALUES (?, ?, ?)',
                                 (self.context, name, value))
        row = self._db.execute('SELECT value FROM pinned WHERE context = ? AND key = ?',
                               (self.context, name)).fetchone()
        return json.loads(row[0])

    def drop(self) -> None:
        """Forget this context's measurements (``--fresh``)."""
        with self._writing():
            with self._db:
                for table in ('results', 'pinned'):
                    self._db.execute(f'DELETE FROM {table} WHERE context = ?',
                                     (self.context,))
        self.kept = 0

    def close(self) -> None:
        """Close the file (kept); again, or after :meth:`remove`, nothing more."""
        self._db.close()
        self._close_lock()

    def _close_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def remove(self) -> Optional[OSError]:
        """
        Forget this context's measurements (its run finished); delete the file if empty.

        Return None, or the error that kept them (a full disk: SQLite needs room to delete);
        the store is closed either way.
        """
        try:
            self.drop()
        except OSError as exc:
            self.close()
            return exc
        left = self._db.execute('SELECT COUNT(*) FROM results').fetchone()[0]
        self._db.close()
        if not left and _no_other_holder(self._lock):
            for suffix in ('', '-journal', '-wal', '-shm'):
                try:
                    os.unlink(f'{self.path}{suffix}')
                except FileNotFoundError:
                    pass
        self._close_lock()
        return None


def _no_other_holder(fd: Optional[int]) -> bool:
    """Return whether no other run holds the file of ``fd`` (its lock made exclusive)."""
    if fd is None or fcntl is None:
        return fd is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without locks: keep the file
        return False
    return True


class Remembering:
    """
    An executor (:mod:`.fanout`) that keeps every result in a :class:`TrialStore`.

    An item whose result is kept is not run again: its result comes from the store (and
    counts as progress). The others run on ``inner``, each result kept as it comes
    (``on_result``; a Ray cluster's as each task returns: kept only when the whole map
    returned, an interrupted sensitivity analysis on Ray kept none of its measurements; a
    review). ``encode(result)`` makes a result
    JSON-able and ``decode(value)`` makes it again, equal to the result; every result is
    handed back decoded, measured now or kept (the same types either way). A result is kept
    under a digest of the function's name, the item, and what the items share: arrays by
    their values (:func:`array_digest`), plain values as they are, other objects (the model,
    the energy model) by their type only; they are the store's context.
    """

    def __init__(self, inner, store: TrialStore, encode: Callable[[Any], Any],
                 decode: Callable[[Any], Any]) -> None:
        """Run on ``inner``, keep in ``store``."""
        self._inner = inner
        self._store = store
        self._encode, self._decode = encode, decode
        self._digests = {}  # id -> (array, digest): the array held, so the id stays its own
        self.name = inner.name
        self.reused = 0
        """Results taken from the store so far."""

    def run(self, fn: Callable, items: Sequence, *,
            progress: Callable[[int], None] = lambda n: None,
            shared: Optional[Mapping[str, Any]] = None) -> list:
        """Return ``[fn(item, **shared) for item in items]``, kept results reused."""
        base = f'{fn.__module__}.{fn.__qualname__}|{_dumps(self._fingerprint(shared or {}))}|'
        keys = [hashlib.sha256((base + _dumps(item)).encode()).hexdigest() for item in items]
        out, todo = [None] * len(items), []
        for index, key in enumerate(keys):
            kept = self._store.get(key)
            if kept is None:
                todo.append(index)
            else:
                out[index] = self._decode(kept)
                self.reused += 1
                progress(1)

        def keep(position: int, result) -> None:
            index = todo[position]
            value = json.loads(_dumps(self._encode(result)))  # as a resumed run reads it
            self._store.put(keys[index], value)
            out[index] = self._decode(value)
        if todo:
            self._inner.run(fn, [items[i] for i in todo], progress=progress, shared=shared,
                            on_result=keep)
        return out

    def _fingerprint(self, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            held = self._digests.get(id(value))
            if held is None or held[0] is not value:
                held = self._digests[id(value)] = (value, array_digest(value))
            return {'array': held[1]}
        if isinstance(value, Mapping):
            return {str(k): self._fingerprint(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self._fingerprint(v) for v in value]
        if value is None or isinstance(value, (bool, int, float, str, np.generic)):
            return value
        return {'object': type(value).__qualname__}

    def close(self) -> None:
        """Close the executor it runs on (the store is the caller's)."""
        self._inner.close()

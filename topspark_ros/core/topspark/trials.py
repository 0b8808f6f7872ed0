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

A store describes one enhancement (its :attr:`TrialStore.context`: the model's SHA-256, the
data, the settings, this code's format); a store of another is emptied, never used. The CLI
removes it when the run finished.

Light on purpose (no torch): stdlib SQLite and numpy only.
"""

import hashlib
import json
import os
from pathlib import Path
import sqlite3
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

FORMAT = 1
"""Version of what a store holds: a store of another format is another enhancement's."""


def array_digest(array: np.ndarray) -> str:
    """Return a hex digest of an array's dtype, shape and values."""
    array = np.ascontiguousarray(array)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(f'{array.dtype.str}{array.shape}'.encode())
    digest.update(array.reshape(-1).view(np.uint8))  # an empty array too
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
    JSON-able dict: the model's SHA-256, the settings). A file holding another context (or
    none, or another :data:`FORMAT`) is emptied: :attr:`replaced` says so. :attr:`kept` is
    the number of measurements found. Each measurement is committed on its own (an SQLite
    transaction: a process killed while writing leaves the ones before).
    """

    def __init__(self, path: os.PathLike, context: Mapping[str, Any]) -> None:
        """Open (or create) the store; empty it when it holds another context."""
        self.path = Path(path)
        self.context = _dumps({'format': FORMAT, **dict(context)})
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0)
        except sqlite3.Error as exc:
            raise ValueError(f'{self.path}: cannot keep measurements there ({exc})') from None
        try:
            self._db.execute('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, '
                             'value TEXT NOT NULL)')
            self._db.execute('CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, '
                             'value TEXT NOT NULL)')
            row = self._db.execute("SELECT value FROM meta WHERE key = 'context'").fetchone()
            self.replaced = row is not None and row[0] != self.context
            if row is None or self.replaced:
                self._db.execute('DELETE FROM meta')
                self._db.execute('DELETE FROM results')
                self._db.execute("INSERT INTO meta VALUES ('context', ?)", (self.context,))
            self._db.commit()
            self.kept = self.count()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise ValueError(f'{self.path}: cannot keep measurements in it ({exc}); remove '
                             'it, or run with --fresh') from None

    def count(self) -> int:
        """Return the number of measurements kept."""
        return self._db.execute('SELECT COUNT(*) FROM results').fetchone()[0]

    def get(self, key: str) -> Optional[Any]:
        """Return the JSON value kept under ``key``, or None."""
        row = self._db.execute('SELECT value FROM results WHERE key = ?', (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: Any) -> None:
        """Keep the JSON-able ``value`` under ``key`` (committed at once)."""
        self._db.execute('INSERT OR REPLACE INTO results VALUES (?, ?)', (key, _dumps(value)))
        self._db.commit()

    def pinned(self, name: str, compute: Callable[[], Any]) -> Any:
        """
        Return the value ``compute()`` gave when the store was made (JSON-able).

        For inputs that the run itself changes: the profile's values at a T, which the run
        replaces when it finishes that T, are the search's incumbent; a resumed run must
        start from the values the first run started from.
        """
        key = f'pinned/{name}'
        row = self._db.execute('SELECT value FROM meta WHERE key = ?', (key,)).fetchone()
        if row is not None:
            return json.loads(row[0])
        value = compute()
        self._db.execute('INSERT INTO meta VALUES (?, ?)', (key, _dumps(value)))
        self._db.commit()
        return json.loads(_dumps(value))  # as a resumed run reads it

    def close(self) -> None:
        """Close the file (kept)."""
        self._db.close()

    def remove(self) -> None:
        """Close and delete the file (the run it served finished)."""
        self._db.close()
        for suffix in ('', '-journal', '-wal', '-shm'):
            try:
                os.unlink(f'{self.path}{suffix}')
            except FileNotFoundError:
                pass


class Remembering:
    """
    An executor (:mod:`.fanout`) that keeps every result in a :class:`TrialStore`.

    An item whose result is kept is not run again: its result comes from the store (and
    counts as progress). The others run on ``inner``: one at a time on an executor that runs
    them in this process (each kept as it is done), all at once on another (a Ray cluster
    runs them in parallel; kept when the map returns). ``encode(result)`` makes a result
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
        chunks = [[i] for i in todo] if self._inner.name == 'in-process' else [todo]
        for chunk in filter(None, chunks):
            results = self._inner.run(fn, [items[i] for i in chunk], progress=progress,
                                      shared=shared)
            for index, result in zip(chunk, results):
                value = json.loads(_dumps(self._encode(result)))  # as a resumed run reads it
                self._store.put(keys[index], value)
                out[index] = self._decode(value)
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

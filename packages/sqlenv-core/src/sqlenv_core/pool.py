"""Read-only connections shared by many environments: one per query in flight.

An environment borrows a ``Sandbox`` for the length of one step and gives it back,
so a server with hundreds of sessions holds as many SQLite connections as it runs
queries at once (plus a few idle ones per database), not one per session. Idle
connections keep their prepared-statement and schema caches warm for the next step.

Every ``acquire`` checks (one ``stat``, about 2 us) that the database file is still the
one its idle connections opened. A file deleted while the process runs would otherwise
go on being served from connections already open (POSIX keeps an unlinked file
readable) while new ones fail, so whether a step worked would depend on the pool's
state. Instead the idle connections to it are closed and the step fails with a
``DataError`` naming the file; only episodes on that database are affected, and they
work again if the file comes back. A file replaced by another one (a new inode) or
changed in place (a new size or modification time) gets fresh connections: sandboxes
open their file ``immutable``, so SQLite itself would not notice. A step already running
finishes on the file it opened.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import SandboxConfig
from .errors import DataError
from .sandbox import Sandbox

__all__ = ["SandboxPool"]

_Identity = tuple[int, int, int, int]
"""A database file as the pool knows it: device, inode, size, modification time (ns)."""


class SandboxPool:
    """Hands out sandboxes per database; thread-safe.

    Args:
        locate: maps a ``db_id`` to its SQLite file.
        config: limits every sandbox enforces.
        max_idle: idle connections kept open in all; the least recently used go first.
    """

    def __init__(
        self,
        locate: Callable[[str], Path],
        config: SandboxConfig | None = None,
        *,
        max_idle: int = 64,
    ) -> None:
        self._locate = locate
        self.config = config or SandboxConfig()
        self.max_idle = max_idle
        self._idle: OrderedDict[int, tuple[str, Sandbox]] = OrderedDict()
        self._by_db: dict[str, list[int]] = {}
        self._tables: dict[str, tuple[str, ...]] = {}
        self._files: dict[str, _Identity] = {}  # db_id -> the file's identity now
        self._opened: dict[int, _Identity] = {}  # id(sandbox) -> the file it opened
        self._paths: dict[str, tuple[Path, str]] = {}  # db_id -> (path, str(path)): one locate
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, db_id: str) -> Sandbox:
        """An idle sandbox on ``db_id``, or a new one. Give it back with ``release``.

        Raises ``DataError`` naming the file when it is missing or cannot be opened.
        """
        path, ident = self._file(db_id)
        stale: list[Sandbox] = []
        with self._lock:
            if self._files.get(db_id, ident) != ident:  # replaced: drop the old connections
                stale = self._drop_idle(db_id)
            keys = self._by_db.get(db_id)
            if keys:
                _, sandbox = self._idle.pop(keys.pop())
                return sandbox
        for old in stale:
            old.close()
        sandbox = Sandbox(path, self.config)
        with self._lock:
            self._files[db_id] = ident
            self._opened[id(sandbox)] = ident
        self._tables.setdefault(db_id, sandbox.table_names)
        return sandbox

    def _file(self, db_id: str) -> tuple[Path, _Identity]:
        """The database's path and identity; ``DataError`` (and its idle ones closed) if gone."""
        located = self._paths.get(db_id)
        if located is None:
            path = self._locate(db_id)
            located = self._paths[db_id] = (path, os.fspath(path))
        path = located[0]
        try:
            st = os.stat(located[1])  # every lease: a replaced or deleted file is noticed
        except OSError:
            self._forget(db_id)
            raise DataError(f"database file not found: {path}") from None
        return path, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _drop_idle(self, db_id: str) -> list[Sandbox]:
        """Take ``db_id``'s idle sandboxes out of the pool (call with the lock held)."""
        dropped = [self._idle.pop(key)[1] for key in self._by_db.pop(db_id, [])]
        for sandbox in dropped:
            self._opened.pop(id(sandbox), None)
        self._files.pop(db_id, None)
        self._tables.pop(db_id, None)
        return dropped

    def _forget(self, db_id: str) -> None:
        with self._lock:
            dropped = self._drop_idle(db_id)
        for sandbox in dropped:
            sandbox.close()

    def release(self, db_id: str, sandbox: Sandbox) -> None:
        evicted: list[Sandbox] = []
        with self._lock:
            key = id(sandbox)
            if self._closed or self._opened.get(key) != self._files.get(db_id):
                # the pool is closed, or the file was deleted or replaced meanwhile
                self._opened.pop(key, None)
                evicted.append(sandbox)
            else:
                self._idle[key] = (db_id, sandbox)
                self._by_db.setdefault(db_id, []).append(key)
                while len(self._idle) > self.max_idle:
                    old_key, (old_db, old) = self._idle.popitem(last=False)
                    self._by_db[old_db].remove(old_key)
                    self._opened.pop(old_key, None)
                    evicted.append(old)
        for old in evicted:
            old.close()

    @contextmanager
    def lease(self, db_id: str) -> Iterator[Sandbox]:
        sandbox = self.acquire(db_id)
        try:
            yield sandbox
        finally:
            self.release(db_id, sandbox)

    def table_names(self, db_id: str) -> tuple[str, ...]:
        """The database's tables; opens (and pools) a connection the first time.

        Raises ``DataError`` naming the file when it has gone missing.
        """
        tables = self._tables.get(db_id)
        if tables is not None:
            self._file(db_id)
        else:
            with self.lease(db_id) as sandbox:
                tables = sandbox.table_names
        return tables

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    def close(self) -> None:
        """Close every idle connection; leased ones are closed when given back."""
        with self._lock:
            self._closed = True
            idle = [sb for _, sb in self._idle.values()]
            self._idle.clear()
            self._by_db.clear()
            self._opened.clear()
        for sandbox in idle:
            sandbox.close()

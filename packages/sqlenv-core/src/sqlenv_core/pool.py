"""Read-only connections shared by many environments: one per query in flight.

An environment borrows a ``Sandbox`` for the length of one step and gives it back,
so a server with hundreds of sessions holds as many SQLite connections as it runs
queries at once (plus a few idle ones per database), not one per session. Idle
connections keep their prepared-statement and schema caches warm for the next step.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .config import SandboxConfig
from .sandbox import Sandbox

__all__ = ["SandboxPool"]


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
        self._lock = threading.Lock()
        self._closed = False

    def acquire(self, db_id: str) -> Sandbox:
        """An idle sandbox on ``db_id``, or a new one. Give it back with ``release``."""
        with self._lock:
            keys = self._by_db.get(db_id)
            if keys:
                _, sandbox = self._idle.pop(keys.pop())
                return sandbox
        sandbox = Sandbox(self._locate(db_id), self.config)
        self._tables.setdefault(db_id, sandbox.table_names)
        return sandbox

    def release(self, db_id: str, sandbox: Sandbox) -> None:
        evicted: list[Sandbox] = []
        with self._lock:
            if self._closed:
                evicted.append(sandbox)
            else:
                key = id(sandbox)
                self._idle[key] = (db_id, sandbox)
                self._by_db.setdefault(db_id, []).append(key)
                while len(self._idle) > self.max_idle:
                    old_key, (old_db, old) = self._idle.popitem(last=False)
                    self._by_db[old_db].remove(old_key)
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
        """The database's tables; opens (and pools) a connection the first time."""
        tables = self._tables.get(db_id)
        if tables is None:
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
        for sandbox in idle:
            sandbox.close()

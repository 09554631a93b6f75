"""Memos bounded by bytes: what a client sends must never grow the process without limit.

The engine remembers pure results (phi of a result, its rendering, a query's repeat key)
because RL rollouts repeat them. Their keys are what the agent sent or what its query
returned, so a count bound alone is no bound: 150 results of 1,000 cells of 7.8 KB each
once held 1.2 GiB in a memo of 256 entries per question. Every memo here has a byte
budget (the approximate size of its keys and values, from ``sys.getsizeof``) and a
per-entry ceiling; an entry over the ceiling is simply not remembered, which costs only
the recomputation the memo would have saved.

``get`` is one dict lookup (hits are the hot path); sizes are computed on insertion only,
which happens on a miss, after work that already walked the same cells.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable, Sequence
from itertools import chain
from sys import getsizeof
from typing import Any, Final, Generic, TypeVar

__all__ = ["ByteBoundedMemo", "rows_nbytes", "text_nbytes"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_ENTRY_OVERHEAD: Final = 120
"""Bytes an entry costs beyond its key and value: the ordered dict's slot and link node."""


def rows_nbytes(rows: Sequence[Sequence[Any]], nrows: int) -> int:
    """Approximate bytes held by ``nrows`` rows of cells (the cells and their tuples)."""
    size = sum(map(getsizeof, chain.from_iterable(rows)))  # C walks the cells
    ncells = sum(map(len, rows))
    return size + 8 * ncells + 56 * nrows


def text_nbytes(*texts: str) -> int:
    return sum(map(getsizeof, texts))


class ByteBoundedMemo(Generic[K, V]):
    """A first-in-first-out memo holding at most ``max_bytes`` of keys and values.

    Thread-safe: ``get`` is a single dict lookup (atomic under the GIL); ``put`` takes a
    lock. Entries leave in insertion order; a hit does not refresh an entry, which keeps
    hits free of bookkeeping (the memos here serve repeated rollouts, where FIFO and LRU
    keep about the same things). A put hashes its key once and an eviction once more:
    keys can be whole results, whose tuples Python does not cache the hash of.
    """

    __slots__ = ("_data", "_lock", "_order", "get", "max_bytes", "max_entry_bytes", "nbytes")

    def __init__(self, max_bytes: int, max_entry_bytes: int) -> None:
        if max_entry_bytes > max_bytes:
            raise ValueError("max_entry_bytes must not exceed max_bytes")
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self.nbytes = 0
        self._data: dict[K, V] = {}
        self._order: deque[tuple[K, int]] = deque()  # (key, its size), oldest first
        self._lock = threading.Lock()
        self.get = self._data.get  # the hot path: one C call, no Python frame

    def put(self, key: K, value: V, nbytes: int) -> bool:
        """Remember ``value`` under ``key`` (``nbytes``: its key and value); False if too big."""
        size = nbytes + _ENTRY_OVERHEAD
        if size > self.max_entry_bytes:
            return False
        with self._lock:
            if self._data.setdefault(key, value) is not value:
                return True  # another thread remembered it first
            self._order.append((key, size))
            self.nbytes += size
            while self.nbytes > self.max_bytes:
                old, old_size = self._order.popleft()
                self._data.pop(old, None)
                self.nbytes -= old_size
        return True

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._order.clear()
            self.nbytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

"""The slow-step threads, shared fairly: clients take turns, each session one step at a time.

A FIFO pool lets one client that opens many sessions and sends each a query that runs to
its deadline hold every thread, so everyone else's slow steps wait behind all of them.
Here the ready work is kept per client (the address the session was opened from) and per
session: a free thread serves the next client in turn, and within it the next session in
turn; a session has at most one step running, the rest of its steps wait for it. A client
with 64 sessions queued therefore delays another client's step by at most the one step
each thread is running now, not by its whole queue.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any

__all__ = ["FairExecutor"]

_Job = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]


class FairExecutor:
    """Up to ``max_workers`` threads (started on demand) running jobs round-robin.

    ``submit(client, session, fn, *args)`` returns a ``concurrent.futures.Future``
    (``asyncio.wrap_future`` works with it). Threads are daemons: at shutdown a step still
    running finishes within its deadline on its own, as with ``shutdown(wait=False)``.
    """

    def __init__(
        self,
        max_workers: int,
        *,
        thread_name_prefix: str = "worker",
        initializer: Callable[[], None] | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._prefix = thread_name_prefix
        self._initializer = initializer
        self._cond = threading.Condition()
        self._jobs: dict[Hashable, deque[_Job]] = {}  # session -> its waiting jobs
        self._sessions: dict[Hashable, deque[Hashable]] = {}  # client -> sessions ready
        self._clients: deque[Hashable] = deque()  # clients with a ready session, in turn
        self._client_of: dict[Hashable, Hashable] = {}
        self._running: set[Hashable] = set()  # sessions with a job on a thread
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._shutdown = False

    def submit(
        self, client: Hashable, session: Hashable, fn: Callable[..., Any], *args: Any
    ) -> Future[Any]:
        future: Future[Any] = Future()
        with self._cond:
            if self._shutdown:
                raise RuntimeError("cannot submit after shutdown")
            queue = self._jobs.get(session)
            if queue is None:
                queue = self._jobs[session] = deque()
                self._client_of[session] = client
            queue.append((future, fn, args))
            if len(queue) == 1 and session not in self._running:
                self._ready(client, session)
            if self._idle == 0 and len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work,
                    name=f"{self._prefix}_{len(self._threads)}",
                    daemon=True,
                )
                self._threads.append(thread)
                thread.start()
            else:
                self._cond.notify()
        return future

    def _ready(self, client: Hashable, session: Hashable) -> None:
        sessions = self._sessions.get(client)
        if sessions is None:
            sessions = self._sessions[client] = deque()
            self._clients.append(client)
        sessions.append(session)

    def _next(self) -> tuple[Hashable, _Job] | None:
        """The next job in turn, or None at shutdown (called with the lock held)."""
        while not self._clients:
            if self._shutdown:
                return None
            self._idle += 1
            self._cond.wait()
            self._idle -= 1
        client = self._clients.popleft()
        sessions = self._sessions[client]
        session = sessions.popleft()
        if sessions:
            self._clients.append(client)  # the client's turn comes again after the others
        else:
            del self._sessions[client]
        job = self._jobs[session].popleft()
        self._running.add(session)
        return session, job

    def _done(self, session: Hashable) -> None:
        with self._cond:
            self._running.discard(session)
            queue = self._jobs.get(session)
            if queue:
                self._ready(self._client_of[session], session)
                self._cond.notify()
            else:
                self._jobs.pop(session, None)
                self._client_of.pop(session, None)

    def _work(self) -> None:
        if self._initializer is not None:
            self._initializer()
        while True:
            with self._cond:
                taken = self._next()
            if taken is None:
                return
            session, (future, fn, args) = taken
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args)
                    except BaseException as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            finally:
                self._done(session)

    def shutdown(self) -> None:
        """Cancel the waiting jobs and let the threads end once their job is done."""
        with self._cond:
            self._shutdown = True
            for queue in self._jobs.values():
                for future, _fn, _args in queue:
                    future.cancel()
                queue.clear()
            self._clients.clear()
            self._sessions.clear()
            self._cond.notify_all()

    @property
    def busy(self) -> int:
        """Sessions with a job on a thread now."""
        return len(self._running)

"""The session table: one ``SQLEnvironment`` per session, a cap, an idle reaper.

A session is one episode stream. WebSocket connections own one each; HTTP clients
get one from ``POST /reset`` (header ``X-SQLEnv-Session``) and MCP clients from
``initialize``, ``openenv/session/create`` or the ``reset`` tool. All of them count
against ``max_sessions``. Every environment shares the one read-only ``Dataset``
loaded at startup and one ``SandboxPool`` of read-only connections, which a step
borrows for its own length: a session costs only its episode state, and the server
holds about as many connections as it runs queries at once.

Steps run on the event loop with a small inline budget: a QUERY that outruns it is
interrupted by the engine (``StepDeferred``, episode untouched) and re-run in a worker
thread with the full deadline. Cheap queries therefore pay no thread hand-off, and a
slow one never blocks the other sessions for more than the inline budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Literal

from sqlenv_core.checker import CheckResult
from sqlenv_core.config import EnvConfig, SandboxConfig
from sqlenv_core.dataset import Dataset
from sqlenv_core.env import INLINE_SQL_CHARS, SQLEnvironment, heavy_answer
from sqlenv_core.errors import ResetNeeded, StepDeferred
from sqlenv_core.pool import SandboxPool
from sqlenv_core.schemas import ActionType, EpisodeState, SQLAction, SQLObservation

from .checking import CheckerProcess
from .settings import ServerSettings
from .workers import FairExecutor

__all__ = ["CapacityError", "Session", "SessionKind", "SessionManager"]

_MAX_IDLE = 64
"""Idle pooled connections kept open (over all databases)."""

WORKER_NICE = 10
"""How much nicer than the event loop slow queries run (see ``_at_priority``)."""

PROGRESS_INTERVAL = 20_000
"""SQLite VM instructions between deadline checks (now also the engine's default; it was
1,000, see docs/reliability.md).

Each check is a Python callback, so a query running in a worker thread takes the GIL
for every one: at 1,000 instructions that is tens of thousands of GIL hand-offs a
second, which roughly halved the event loop's throughput and put milliseconds
on its p99 while a slow query ran. At 20,000 the checks are still well under a
millisecond apart (the inline budget and the deadline keep their precision) and the
hand-offs are rare enough not to show.
"""

log = logging.getLogger("sqlenv_server.sessions")

SessionKind = Literal["ws", "http", "mcp"]


class CapacityError(RuntimeError):
    """The session table is full, or the client's share of it is."""

    def __init__(
        self, active: int, maximum: int, idle_timeout_s: float, *, client: str | None = None
    ) -> None:
        idle = (
            f"Sessions are closed after {idle_timeout_s:g} s without an action (reset or step;"
            " reading the state does not count)."
        )
        if client is None:
            message = (
                f"Server at capacity: {active}/{maximum} sessions active. "
                f"Cannot accept new connections. {idle}"
            )
        else:
            message = (
                f"Too many sessions from your address ({client}): {active}/{maximum} open. "
                f"Close one (a close message, DELETE /session, openenv/session/close) or "
                f"wait. {idle}"
            )
        super().__init__(message)
        self.active = active
        self.maximum = maximum
        self.client = client


class Session:
    """One episode stream and its environment.

    ``lock`` serialises requests on HTTP and MCP sessions (a WebSocket handles its
    messages one at a time anyway). ``busy`` is set while a step runs in a worker
    thread: the reaper leaves such sessions alone.
    """

    __slots__ = (
        "attached",
        "busy",
        "client",
        "closed",
        "env",
        "id",
        "kind",
        "last_active",
        "lock",
        "on_expire",
    )

    def __init__(self, kind: SessionKind, env: SQLEnvironment, client: str = "") -> None:
        self.id = uuid.uuid4().hex
        self.kind: SessionKind = kind
        self.env = env
        self.client = client  # the address it was opened from (per-client cap, fair threads)
        self.lock = asyncio.Lock()
        self.last_active = time.monotonic()
        self.busy = False
        self.attached = False  # a WebSocket joined this HTTP/MCP session (?session_id=)
        self.closed = False
        self.on_expire: Callable[[str], None] | None = None

    def touch(self) -> None:
        """Count an action (reset or step): only actions keep a session from the reaper."""
        self.last_active = time.monotonic()

    def __repr__(self) -> str:
        return f"Session({self.kind}, {self.id[:8]}, closed={self.closed})"


_thread = threading.local()


def _remember_priority() -> None:
    """Initializer of the worker threads: note the thread's own starting priority."""
    _thread.base = _thread.current = None
    if sys.platform == "linux":  # elsewhere setpriority() would renice the whole process
        with contextlib.suppress(OSError):
            _thread.base = _thread.current = os.getpriority(
                os.PRIO_PROCESS, threading.get_native_id()
            )


def _at_priority(nicer: int, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` with this worker thread ``nicer`` than it started (Linux threads only).

    A query that spends its time inside SQLite runs ``WORKER_NICE`` nicer than the event
    loop: SQLite releases the GIL, so on a machine whose cores are busy the query would
    otherwise take CPU time from the loop that serves every other session (measured on 2
    cores with 64 sessions: +6 ms on their p99 and 15% of their throughput at the same
    priority, +1-2 ms and nothing at nice 10). Work that holds the GIL (an ANSWER to
    check, a long SQL text for sqlglot) runs at the loop's priority instead: a nice
    thread that holds the GIL while the scheduler keeps it waiting stalls the loop with
    it (a 940 KB ANSWER at nice 10 on a loaded machine cut bystanders to a tenth).
    """
    base = _thread.base
    if base is not None:
        wanted = min(19, base + nicer)
        if wanted != _thread.current:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), wanted)
                _thread.current = wanted
    return fn(*args)


def _holds_the_gil(action: SQLAction) -> bool:
    """Whether a deferred step's work is Python rather than SQLite (see ``_at_priority``)."""
    return action.action_type is ActionType.ANSWER


def _is_loopback(client: str) -> bool:
    """Local clients (tests, benchmarks, a trainer on the same machine) are not capped."""
    return client in ("::1", "localhost") or client.startswith(("127.", "::ffff:127."))


def _not_busy(session: Session, _future: object) -> None:
    session.busy = False


class SessionManager:
    """Creates, finds, runs and reaps sessions. One per application, made in the lifespan."""

    def __init__(self, dataset: Dataset, settings: ServerSettings) -> None:
        self.dataset = dataset
        self.settings = settings
        self.env_config = EnvConfig(
            budget=settings.budget,
            sandbox=SandboxConfig(
                timeout_s=settings.query_timeout_s, progress_interval=PROGRESS_INTERVAL
            ),
        )
        self.max_sessions = settings.max_sessions
        self.idle_timeout_s = settings.idle_timeout_s
        self._inline_s: float = settings.inline_budget_ms / 1000.0
        self.pool = SandboxPool(dataset.db_path, self.env_config.sandbox, max_idle=_MAX_IDLE)
        self._sessions: dict[str, Session] = {}
        self._per_client: dict[str, int] = {}
        self.max_per_client = settings.max_sessions_per_client
        self._executor = FairExecutor(
            settings.query_threads,
            thread_name_prefix="sqlenv-query",
            initializer=_remember_priority,
        )
        self._checker = CheckerProcess()
        self._reaper: asyncio.Task[None] | None = None
        self.reaped = 0
        self.deferred_steps = 0
        self.interrupted_steps = 0

    # ------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Start the idle reaper (call from inside the running event loop)."""
        self._checker.start()
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(
                self._reap_forever(), name="sqlenv-reaper"
            )

    async def shutdown(self) -> None:
        """Stop the reaper, close every session and the idle connections.

        A query still running in a worker thread finishes on its own (within its
        deadline) and its connection is closed when given back.
        """
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for session in list(self._sessions.values()):
            self.close(session, reason="the server is shutting down")
        self._executor.shutdown()
        self._checker.shutdown()
        self.pool.close()

    # --------------------------------------------------------------- table
    @property
    def active(self) -> int:
        return len(self._sessions)

    def open(self, kind: SessionKind, client: str = "") -> Session:
        """A new session (its environment is cheap: no database is opened before reset).

        ``client`` is the peer's address; one address may hold at most
        ``max_sessions_per_client`` sessions, loopback addresses excepted (see
        ``ServerSettings``), so that one client cannot lock the others out.
        """
        idle = self.idle_timeout_s
        if len(self._sessions) >= self.max_sessions:
            raise CapacityError(len(self._sessions), self.max_sessions, idle)
        held = self._per_client.get(client, 0)
        cap = self.max_per_client
        if cap and held >= cap and not _is_loopback(client):
            raise CapacityError(held, cap, idle, client=client or "unknown")
        session = Session(
            kind, SQLEnvironment(self.dataset, self.env_config, pool=self.pool), client
        )
        self._sessions[session.id] = session
        self._per_client[client] = held + 1
        return session

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def close(self, session: Session, reason: str | None = None) -> None:
        """Forget the session and release its databases. Idempotent.

        With ``reason`` (the reaper, shutdown) the owner is told through ``on_expire``
        so a WebSocket can send a last error frame and close its socket. A query the
        session still runs in a worker thread is interrupted, so the thread is free
        within milliseconds rather than at the query's deadline.
        """
        if session.closed:
            return
        session.closed = True
        if self._sessions.pop(session.id, None) is not None:
            left = self._per_client.get(session.client, 1) - 1
            if left > 0:
                self._per_client[session.client] = left
            else:
                self._per_client.pop(session.client, None)
        if session.busy:
            session.env.interrupt()
        session.env.close()  # cheap: the connections belong to the shared pool
        if reason is not None and session.on_expire is not None:
            try:
                session.on_expire(reason)
            except Exception:  # pragma: no cover - a callback must not break the reaper
                log.exception("on_expire callback failed for %r", session)

    # ---------------------------------------------------------------- reaper
    def reap_idle(self, now: float | None = None) -> int:
        """Close sessions idle for longer than the timeout; returns how many."""
        cutoff = (time.monotonic() if now is None else now) - self.idle_timeout_s
        expired = [s for s in self._sessions.values() if not s.busy and s.last_active < cutoff]
        for session in expired:
            idle = self.idle_timeout_s
            self.close(session, reason=f"session closed after {idle:g} s without activity")
        self.reaped += len(expired)
        return len(expired)

    async def _reap_forever(self) -> None:
        interval = min(max(self.idle_timeout_s / 4, 0.05), 5.0)
        while True:
            await asyncio.sleep(interval)
            try:
                n = self.reap_idle()
            except Exception:  # pragma: no cover - keep reaping whatever happens
                log.exception("reaper failed")
                continue
            if n:
                log.info("closed %d idle session(s); %d active", n, len(self._sessions))

    # ------------------------------------------------------------ episodes
    def reset(self, session: Session, kwargs: dict[str, Any]) -> SQLObservation:
        """Start an episode. Raises ``UnknownQuestionError`` / ``ValueError`` for bad filters."""
        session.touch()
        return session.env.reset(**kwargs)

    def finished(self, episode_id: str, question_id: str) -> bool:
        """Whether a live session has finished an episode ``episode_id`` of ``question_id``
        (the web page's oracle replay, once the page's own episode is over)."""
        return any(
            s.env.finished_episode == (episode_id, question_id) for s in self._sessions.values()
        )

    def stats(self) -> dict[str, Any]:
        """Counters for ``GET /stats``: sessions by kind, busy ones, threads, deferrals."""
        by_kind = {"ws": 0, "http": 0, "mcp": 0}
        busy = 0
        for session in self._sessions.values():
            by_kind[session.kind] += 1
            busy += session.busy
        return {
            "active_sessions": len(self._sessions),
            "max_sessions": self.max_sessions,
            "sessions_by_kind": by_kind,
            "busy_sessions": busy,
            "deferred_steps": self.deferred_steps,
            "interrupted_steps": self.interrupted_steps,
            "reaped_sessions": self.reaped,
            "idle_connections": self.pool.idle_count,
            "threads": threading.active_count(),
        }

    async def step(
        self,
        session: Session,
        action: SQLAction,
        *,
        until_gone: Callable[[], Awaitable[bool]] | None = None,
    ) -> SQLObservation:
        """Apply one action; raises ``ResetNeeded`` before the first reset.

        Runs inline; a QUERY that outruns the inline budget is re-run in a worker
        thread with the full deadline (``StepDeferred`` leaves the episode untouched).
        While the thread runs, ``until_gone`` (a WebSocket's receive) is awaited too:
        when it says the client has gone, or when this coroutine is cancelled, the
        query is interrupted, so neither the session nor the thread outlives the client
        by more than a few milliseconds.
        """
        env = session.env
        inline = self._inline_s
        extra: dict[str, Any] = {}
        if action.action_type is ActionType.ANSWER:
            verdict = await self._check_elsewhere(session, action)
            if verdict is not None:
                obs = env.step(action, inline_budget_s=inline, answer_verdict=verdict)
                session.touch()
                return obs
        elif action.action_type is ActionType.QUERY:
            sql_verdict = await self._parse_elsewhere(session, action)
            if sql_verdict is not None:
                extra["sql_verdict"] = sql_verdict
        if inline > 0 or action.action_type is not ActionType.QUERY:
            try:
                obs = env.step(action, inline_budget_s=inline, **extra)
            except StepDeferred:
                pass
            else:
                session.touch()
                return obs
        self.deferred_steps += 1
        session.busy = True
        # ``busy`` follows the thread, not this coroutine: a session whose query still
        # runs is not idle, even if the caller was cancelled meanwhile.
        nicer = 0 if _holds_the_gil(action) else WORKER_NICE
        future = self._executor.submit(
            session.client, session.id, _at_priority, nicer, partial(env.step, action, **extra)
        )
        future.add_done_callback(partial(_not_busy, session))
        waiter = asyncio.wrap_future(future)
        watcher = None if until_gone is None else asyncio.ensure_future(until_gone())
        try:
            if watcher is not None:
                await asyncio.wait((waiter, watcher), return_when=asyncio.FIRST_COMPLETED)
                # an exception from the receive means the socket is gone, too
                if (
                    watcher.done()
                    and not watcher.cancelled()
                    and (watcher.exception() is not None or watcher.result())
                ):
                    self._interrupt(session)
            obs = await waiter
        except asyncio.CancelledError:
            self._interrupt(session)
            raise
        finally:
            if watcher is not None and not watcher.done():
                watcher.cancel()
        session.touch()
        return obs

    async def _check_elsewhere(self, session: Session, action: SQLAction) -> CheckResult | None:
        """The verdict on a big ANSWER, checked in the checker process; None for the rest.

        Checking is pure Python: in a thread it would hold the GIL for up to a second
        (940 KB of answer), and on a loaded machine the event loop then waits for the
        GIL far longer than the 5-ms switch interval, because the holder itself waits
        for a core (measured: bystanders' p99 from 20 ms to 400 ms). In another process
        it costs the event loop only the pickling of the answer and the gold rows.
        """
        env = session.env
        if env.done or not env.has_episode:
            return None  # not run at all: the step is refused without a check
        question = env.question
        text = action.argument.strip()
        if not heavy_answer(text, question):
            return None
        session.busy = True
        try:
            return await self._checker.check(text, question.gold_rows, question.order_matters)
        finally:
            session.busy = False

    async def _parse_elsewhere(
        self, session: Session, action: SQLAction
    ) -> tuple[str | None, str] | None:
        """sqlglot's verdict on a long SQL text, from the checking process; None otherwise.

        sqlglot's compiled parser holds the GIL for the whole parse (0.3-0.8 s for 98,000
        characters) without the interpreter's 5-ms turns, so in a worker thread it would
        stop the event loop as surely as on it.
        """
        sql = action.argument.strip()
        if not INLINE_SQL_CHARS < len(sql) <= self.env_config.sandbox.max_sql_chars:
            return None
        if "\x00" in sql or session.env.done or not session.env.has_episode:
            return None  # refused without parsing, or not run at all
        session.busy = True
        try:
            return await self._checker.verdict(sql)
        finally:
            session.busy = False

    def _interrupt(self, session: Session) -> None:
        if session.env.interrupt():
            self.interrupted_steps += 1

    def state(self, session: Session) -> EpisodeState:
        """The episode's state; before any reset, the blank state (as OpenEnv's fresh env)."""
        try:
            return session.env.state
        except ResetNeeded:
            return EpisodeState()

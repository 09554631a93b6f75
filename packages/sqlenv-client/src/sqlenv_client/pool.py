"""Sessions that outlive a server replica, and pools of them over one or many servers.

A trainer that runs thousands of rollouts talks to several server replicas (Ray Serve,
Kubernetes: docs/scaling.md). A replica can die mid-episode; its WebSocket then breaks
and the episode's state on the server is gone. ``PooledSession`` (sync) and
``AsyncPooledSession`` keep what is needed to rebuild it: the ``reset`` arguments (the
question pinned by id) and every action applied so far. When the transport fails they
open a new session on a live endpoint, reset to the same question, replay the actions
(the engine is deterministic for a question and an action sequence) and then retry the
interrupted call. The caller sees its call succeed; the restart is counted in
``PoolStats``. When ``max_restarts`` attempts in a row fail, ``EpisodeLostError`` is
raised: an episode is restarted or reported, never silently lost.

``AsyncEnvPool`` runs many episodes over ``size`` concurrent sessions (the benchmark,
bulk evaluation); ``EnvPool`` hands out sync sessions one per rollout (the TRL adapter,
``sqlenv eval --server``). Both share one ``Endpoints`` (round robin, a failed URL rests
for ``cooldown_s``) and one ``PoolStats``.

What is retried: transport failures (``ConnectError``, ``ConnectionLostError``,
``ReplyTimeoutError``), a session the server closed (``SessionError``) and a full server
(``CapacityReachedError``, another endpoint may have room). Everything else (an invalid
action, a server-side exception) is the caller's and is raised at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from sqlenv_core.schemas import EpisodeState, SQLAction, SQLObservation

from ._base import to_action, ws_url
from .async_client import AsyncSQLEnvClient
from .client import SQLEnvClient
from .errors import (
    CapacityReachedError,
    EpisodeLostError,
    SessionError,
    TransportError,
)

__all__ = [
    "DEFAULT_MAX_RESTARTS",
    "AsyncEnvPool",
    "AsyncPooledSession",
    "Endpoints",
    "EnvPool",
    "EpisodeOutcome",
    "PoolStats",
    "PooledSession",
]

T = TypeVar("T")
R = TypeVar("R")

DEFAULT_MAX_RESTARTS = 8
"""Failed attempts in a row before an episode is given up (with ``EpisodeLostError``)."""
DEFAULT_COOLDOWN_S = 2.0
"""Seconds a URL that failed is skipped while others are available."""
BACKOFF_S = (0.05, 0.2, 0.5, 1.0, 2.0)
"""Pause before each successive attempt (the last repeats): a replica takes seconds to
be replaced, and a burst of reconnects should not hit the survivors all at once."""

RETRYABLE: tuple[type[Exception], ...] = (TransportError, SessionError, CapacityReachedError)
"""Errors after which the session is rebuilt on a live endpoint (see the module doc)."""


# --- shared bookkeeping (no I/O) ---------------------------------------------------------


class Endpoints:
    """The server URLs of a pool, handed out round robin; a URL that failed rests a while.

    Thread-safe: sync sessions in several threads share one. With a single URL (a load
    balancer or Ray Serve's proxy in front of the replicas) every pick is that URL.
    """

    def __init__(self, urls: str | Sequence[str], *, cooldown_s: float = DEFAULT_COOLDOWN_S):
        items = [urls] if isinstance(urls, str) else list(urls)
        if not items:
            raise ValueError("a pool needs at least one server URL")
        for url in items:
            ws_url(url)  # a malformed URL fails here, with the client's message
        self.urls: tuple[str, ...] = tuple(dict.fromkeys(items))
        self.cooldown_s = cooldown_s
        self._down_until: dict[str, float] = {}
        self._turn = itertools.count()
        self._lock = threading.Lock()

    def pick(self) -> str:
        """The next URL not resting; when all rest, the one whose rest ends first."""
        now = time.monotonic()
        with self._lock:
            start = next(self._turn)
            n = len(self.urls)
            for i in range(n):
                url = self.urls[(start + i) % n]
                if self._down_until.get(url, 0.0) <= now:
                    return url
            return min(self.urls, key=lambda u: self._down_until.get(u, 0.0))

    def mark_down(self, url: str) -> None:
        """``url`` just failed: skip it for ``cooldown_s`` while others are available."""
        with self._lock:
            self._down_until[url] = time.monotonic() + self.cooldown_s


@dataclass
class PoolStats:
    """Counters of a pool's sessions (thread-safe increments through ``add``).

    ``episodes_restarted`` counts episodes that needed at least one restart, ``restarts``
    every restart; ``episodes_lost`` counts episodes given up with ``EpisodeLostError``.
    """

    episodes_started: int = 0
    episodes_completed: int = 0
    episodes_restarted: int = 0
    restarts: int = 0
    episodes_lost: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name[0] != "_"}


@dataclass
class _Episode:
    """What rebuilds an episode on another server: its reset and its actions so far."""

    reset_kwargs: dict[str, Any]
    actions: list[SQLAction] = field(default_factory=list)
    restarts: int = 0
    done: bool = False


class _Resilient:
    """The I/O-free half of both pooled sessions: episode record, counting, backoff."""

    def __init__(
        self,
        endpoints: Endpoints | str | Sequence[str],
        *,
        stats: PoolStats | None = None,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
        self.endpoints = endpoints if isinstance(endpoints, Endpoints) else Endpoints(endpoints)
        self.stats = stats if stats is not None else PoolStats()
        self.max_restarts = max_restarts
        self._client_options = dict(client_options or {})
        self._episode: _Episode | None = None
        self._url: str | None = None
        self._stale = False  # the episode's server session is gone: replay before the next call
        self.closed = False
        self.episode_restarts = 0
        """Restarts of the current (or last) episode."""

    @property
    def url(self) -> str | None:
        """The URL of the current connection, if any."""
        return self._url

    def _begin(self, kwargs: dict[str, Any]) -> None:
        self._episode = _Episode(kwargs)
        self.episode_restarts = 0
        self._stale = False
        self.stats.add(episodes_started=1)

    def _record(self, action: SQLAction, obs: SQLObservation) -> None:
        episode = self._episode
        if episode is None or episode.done:
            return  # a step after the end changes nothing: the record stays bounded by the budget
        episode.actions.append(action)
        if obs.done:
            episode.done = True
            self.stats.add(episodes_completed=1)

    def _count_restart(self) -> None:
        episode = self._episode
        assert episode is not None
        self.stats.add(restarts=1, episodes_restarted=0 if episode.restarts else 1)
        episode.restarts += 1
        self.episode_restarts = episode.restarts

    def _check_replay(self, obs: SQLObservation) -> None:
        episode = self._episode
        assert episode is not None
        if obs.step_count != len(episode.actions):
            raise SessionError(
                "SESSION_ERROR",
                f"replaying the episode on {self._url} reached step {obs.step_count}, "
                f"expected {len(episode.actions)}: the servers disagree (different data?)",
            )

    def _lost(self, exc: Exception, attempts: int) -> EpisodeLostError:
        if self._episode is not None and not self._episode.done:
            self.stats.add(episodes_lost=1)
        self._episode = None
        urls = ", ".join(self.endpoints.urls)
        return EpisodeLostError(
            f"gave up after {attempts} failed attempts in a row on {urls}: {exc}", attempts
        )

    @staticmethod
    def _pause(attempt: int) -> float:
        return BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]

    @staticmethod
    def _pin(kwargs: dict[str, Any], state: EpisodeState) -> dict[str, Any]:
        """Reset arguments that name the question drawn, so a replay meets the same one."""
        pinned = {"question_id": state.question_id}
        if kwargs.get("budget") is not None:
            pinned["budget"] = kwargs["budget"]
        return pinned


class PooledSession(_Resilient):
    """A blocking episode stream that survives replica deaths (see the module doc).

    Same calls as ``SQLEnvClient``: ``reset``, ``step``, ``state``, ``describe``,
    ``sample``, ``query``, ``answer``, ``close``. Not for use from several threads at once.

    Args:
        endpoints: a URL, a list of URLs or a shared ``Endpoints``.
        stats: counters shared with a pool (a fresh one otherwise).
        max_restarts: failed attempts in a row before ``EpisodeLostError``.
        client_options: keyword arguments of ``SQLEnvClient``.
    """

    _client: SQLEnvClient | None = None

    def reset(
        self, seed: int | None = None, question_id: str | None = None, **filters: Any
    ) -> SQLObservation:
        """Start an episode (arguments as ``SQLEnvClient.reset``)."""
        kwargs = {"seed": seed, "question_id": question_id, **filters}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        self._episode = None
        obs = self._call(lambda c: c.reset(**kwargs))
        if question_id is None:  # pin the drawn question for a replay
            kwargs = self._pin(kwargs, self._call(lambda c: c.state()))
        self._begin(kwargs)
        return obs

    def step(self, action: SQLAction | Mapping[str, Any]) -> SQLObservation:
        """Apply one action; after a replica's death, on a rebuilt session."""
        act = to_action(action)
        obs = self._call(lambda c: c.step(act))
        self._record(act, obs)
        return obs

    def state(self) -> EpisodeState:
        return self._call(lambda c: c.state())

    def describe(self, table: str) -> SQLObservation:
        return self.step({"action_type": "DESCRIBE", "argument": table})

    def sample(self, table: str) -> SQLObservation:
        return self.step({"action_type": "SAMPLE", "argument": table})

    def query(self, sql: str) -> SQLObservation:
        return self.step({"action_type": "QUERY", "argument": sql})

    def answer(self, value: Any) -> SQLObservation:
        return self.step({"action_type": "ANSWER", "argument": str(value)})

    def close(self) -> None:
        """End the server session; the pooled session cannot be used afterwards."""
        self.closed = True
        self._drop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- internals ---------------------------------------------------------------------

    def _call(self, op: Callable[[SQLEnvClient], T]) -> T:
        if self.closed:
            raise RuntimeError("this pooled session is closed")
        for attempt in itertools.count():
            try:
                return op(self._ready())
            except RETRYABLE as exc:
                self._fail()
                if attempt >= self.max_restarts:
                    raise self._lost(exc, attempt + 1) from exc
                time.sleep(self._pause(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _ready(self) -> SQLEnvClient:
        """The open client; a new one (episode replayed) after a failure."""
        if self._client is not None:
            return self._client
        self._url = self.endpoints.pick()
        client = SQLEnvClient(self._url, **self._client_options)
        self._client = client
        if self._stale and self._episode is not None:
            episode = self._episode
            client.reset(**episode.reset_kwargs)
            obs = None
            for action in episode.actions:
                obs = client.step(action)
            if obs is not None:
                self._check_replay(obs)
            self._stale = False
            self._count_restart()
        return client

    def _fail(self) -> None:
        if self._url is not None:
            self.endpoints.mark_down(self._url)
        self._stale = self._episode is not None
        self._drop()

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()


class AsyncPooledSession(_Resilient):
    """The asyncio twin of ``PooledSession``: same calls, awaited; ``aclose`` for ``close``."""

    _client: AsyncSQLEnvClient | None = None

    async def reset(
        self, seed: int | None = None, question_id: str | None = None, **filters: Any
    ) -> SQLObservation:
        kwargs = {"seed": seed, "question_id": question_id, **filters}
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        self._episode = None
        obs = await self._call(lambda c: c.reset(**kwargs))
        if question_id is None:
            kwargs = self._pin(kwargs, await self._call(lambda c: c.state()))
        self._begin(kwargs)
        return obs

    async def step(self, action: SQLAction | Mapping[str, Any]) -> SQLObservation:
        act = to_action(action)
        obs = await self._call(lambda c: c.step(act))
        self._record(act, obs)
        return obs

    async def state(self) -> EpisodeState:
        return await self._call(lambda c: c.state())

    async def aclose(self) -> None:
        self.closed = True
        await self._drop()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _call(self, op: Callable[[AsyncSQLEnvClient], Awaitable[T]]) -> T:
        if self.closed:
            raise RuntimeError("this pooled session is closed")
        for attempt in itertools.count():
            try:
                return await op(await self._ready())
            except RETRYABLE as exc:
                await self._fail()
                if attempt >= self.max_restarts:
                    raise self._lost(exc, attempt + 1) from exc
                await asyncio.sleep(self._pause(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _ready(self) -> AsyncSQLEnvClient:
        if self._client is not None:
            return self._client
        self._url = self.endpoints.pick()
        client = AsyncSQLEnvClient(self._url, **self._client_options)
        self._client = client
        if self._stale and self._episode is not None:
            episode = self._episode
            await client.reset(**episode.reset_kwargs)
            obs = None
            for action in episode.actions:
                obs = await client.step(action)
            if obs is not None:
                self._check_replay(obs)
            self._stale = False
            self._count_restart()
        return client

    async def _fail(self) -> None:
        if self._url is not None:
            self.endpoints.mark_down(self._url)
        self._stale = self._episode is not None
        await self._drop()

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()


# --- pools -----------------------------------------------------------------------------


class EnvPool:
    """Sync sessions over shared endpoints and counters, one per rollout (TRL, eval).

    ::

        pool = EnvPool(["http://node-a:8000", "http://node-b:8000"], size=64)
        env = pool.session()            # a PooledSession
        obs = env.reset(question_id="dev_0001")

    Args:
        urls: one URL (a load balancer, Ray Serve's proxy) or several (one per replica).
        size: most sessions open at once (``None``: no cap); ``session()`` beyond it raises.
        max_restarts, client_options: as ``PooledSession``.
        cooldown_s: how long a failed URL is skipped.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        size: int | None = None,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if size is not None and size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.endpoints = Endpoints(urls, cooldown_s=cooldown_s)
        self.stats = PoolStats()
        self.size = size
        self._options = {"max_restarts": max_restarts, "client_options": client_options}
        self._sessions: list[PooledSession] = []
        self._lock = threading.Lock()

    def session(self) -> PooledSession:
        """A new pooled session (closed by ``close()`` if not before)."""
        with self._lock:
            self._sessions = [s for s in self._sessions if not s.closed]
            if self.size is not None and len(self._sessions) >= self.size:
                raise RuntimeError(
                    f"the pool is full: {self.size} sessions open; close one or raise size"
                )
            session = PooledSession(self.endpoints, stats=self.stats, **self._options)
            self._sessions.append(session)
            return session

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@dataclass
class EpisodeOutcome(Generic[R]):
    """One item run by ``AsyncEnvPool.run``: its result, or the error that ended it."""

    index: int
    result: R | None = None
    error: BaseException | None = None
    restarts: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


class AsyncEnvPool:
    """Runs many episodes over ``size`` concurrent pooled sessions.

    ::

        async def play(env: AsyncPooledSession, qid: str) -> float:
            obs = await env.reset(question_id=qid)
            ...
            return obs.reward

        pool = AsyncEnvPool("http://head:8000", size=64)
        outcomes = await pool.run(question_ids, play)   # one EpisodeOutcome per item, in order

    Every item gets an outcome: a result, or the error that ended it (``EpisodeLostError``
    after ``max_restarts`` failures in a row, or the ``play`` function's own exception).
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        size: int,
        max_restarts: int = DEFAULT_MAX_RESTARTS,
        cooldown_s: float = DEFAULT_COOLDOWN_S,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.endpoints = Endpoints(urls, cooldown_s=cooldown_s)
        self.stats = PoolStats()
        self.size = size
        self._options = {"max_restarts": max_restarts, "client_options": client_options}

    async def run(
        self,
        items: Iterable[T],
        play: Callable[[AsyncPooledSession, T], Awaitable[R]],
    ) -> list[EpisodeOutcome[R]]:
        """Play every item with ``play`` on one of ``size`` sessions; outcomes in item order."""
        queue: asyncio.Queue[tuple[int, T]] = asyncio.Queue()
        for pair in enumerate(items):
            queue.put_nowait(pair)
        outcomes: dict[int, EpisodeOutcome[R]] = {}

        async def worker() -> None:
            async with AsyncPooledSession(self.endpoints, stats=self.stats, **self._options) as env:
                while True:
                    try:
                        index, item = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    outcome: EpisodeOutcome[R] = EpisodeOutcome(index)
                    env.episode_restarts = 0
                    start = time.perf_counter()
                    try:
                        outcome.result = await play(env, item)
                    except Exception as exc:  # reported in the outcome, never dropped
                        outcome.error = exc
                    outcome.seconds = time.perf_counter() - start
                    outcome.restarts = env.episode_restarts
                    outcomes[index] = outcome

        n = min(self.size, queue.qsize())
        await asyncio.gather(*(worker() for _ in range(n)))
        return [outcomes[i] for i in sorted(outcomes)]

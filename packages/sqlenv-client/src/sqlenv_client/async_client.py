"""``AsyncSQLEnvClient``: the asyncio twin of ``SQLEnvClient``, on websockets' asyncio client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlenv_core.schemas import ActionType, EpisodeState, SQLAction, SQLObservation
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from . import _base, _docker
from ._base import (
    BaseClient,
    ClientState,
)
from .errors import ConnectError, ProtocolVersionError, ReplyTimeoutError, ServerError

__all__ = ["AsyncSQLEnvClient"]

T = TypeVar("T")


class AsyncSQLEnvClient(BaseClient):
    """The asyncio client: same methods as ``SQLEnvClient``, awaited; ``aclose`` for ``close``.

    ::

        async with AsyncSQLEnvClient("http://localhost:8000") as env:
            obs = await env.reset(seed=42, split="eval")
            obs = await env.describe(obs.tables[0])
            obs = await env.answer("42")

    Concurrent calls on one client are serialised; run episodes in parallel with one
    client each. If a call is cancelled mid-request the client is closed (its next
    reply could not be matched), and ``aclose()`` then releases the socket.
    The arguments are those of ``SQLEnvClient``.
    """

    def _setup_io(self) -> None:
        self._ws: ClientConnection | None = None
        self._lock = asyncio.Lock()
        self._container: _docker.DockerServer | None = None

    @classmethod
    async def from_docker_image(
        cls,
        image: str,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float = _docker.DEFAULT_DOCKER_TIMEOUT_S,
        **client_kwargs: Any,
    ) -> Self:
        """Start ``image`` in Docker, wait for ``/health``, and connect; see ``SQLEnvClient``.

        The Docker calls run in a worker thread; ``aclose()`` stops and removes the
        container.
        """
        server = await asyncio.to_thread(
            _docker.start_container, image, port=port, env=env, timeout_s=timeout_s
        )
        try:
            client = cls(server.base_url, **client_kwargs)
        except BaseException:
            await asyncio.to_thread(server.stop)
            raise
        client._container = server
        try:
            await client.connect()
        except BaseException:
            await client.aclose()
            raise
        return client

    # --- lifecycle --------------------------------------------------------------------

    async def connect(self) -> Self:
        """Open the connection now instead of on the first call. A no-op when open.

        Raises ``ConnectError`` on failure; the client then stays unopened and the
        next call tries again.
        """
        async with self._lock:
            await self._ensure_open()
        return self

    async def aclose(self) -> None:
        """End the session and close the connection (and the container, if any).

        Safe to call more than once; every later call raises ``ClientClosedError``.
        """
        self._mark_closed()
        ws, self._ws = self._ws, None
        container, self._container = self._container, None
        try:
            if ws is not None:
                with contextlib.suppress(ConnectionClosed, OSError):  # already gone
                    await ws.send(_base.encode_close())
                await ws.close()
        finally:
            if container is not None:
                await asyncio.to_thread(container.stop)

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # --- the OpenEnv calls ------------------------------------------------------------

    async def reset(
        self,
        seed: int | None = None,
        question_id: str | None = None,
        *,
        split: str | None = None,
        db_id: str | None = None,
        difficulty: str | None = None,
        episode_id: str | None = None,
        budget: int | None = None,
    ) -> SQLObservation:
        """Start an episode: the question, the table names and the step budget.

        ``question_id`` picks a question; otherwise the server draws one matching the
        filters, reproducibly for a given ``seed``. Only the arguments given are sent.
        """
        frame = _base.encode_reset(
            {
                "seed": seed,
                "question_id": question_id,
                "split": split,
                "db_id": db_id,
                "difficulty": difficulty,
                "episode_id": episode_id,
                "budget": budget,
            }
        )
        return await self._request(frame, "observation", _base.parse_observation)

    async def step(self, action: SQLAction | Mapping[str, Any]) -> SQLObservation:
        """Apply one action; a mapping is validated into an ``SQLAction`` first."""
        frame = _base.encode_step(_base.to_action(action))
        return await self._request(frame, "observation", _base.parse_observation)

    async def state(self) -> EpisodeState:
        """The episode's bookkeeping (gold answer included only once it is over)."""
        return await self._request(_base.encode_state(), "state", _base.parse_state)

    async def describe(self, table: str) -> SQLObservation:
        """``DESCRIBE table``: its columns and types."""
        return await self.step(_base.make_action(ActionType.DESCRIBE, table))

    async def sample(self, table: str) -> SQLObservation:
        """``SAMPLE table``: a few of its rows."""
        return await self.step(_base.make_action(ActionType.SAMPLE, table))

    async def query(self, sql: str) -> SQLObservation:
        """``QUERY sql``: run one read-only SELECT."""
        return await self.step(_base.make_action(ActionType.QUERY, sql))

    async def answer(self, value: Any) -> SQLObservation:
        """``ANSWER value``, which ends the episode. Non-strings are sent as JSON."""
        return await self.step(_base.make_action(ActionType.ANSWER, _base.answer_text(value)))

    # --- I/O --------------------------------------------------------------------------

    async def _ensure_open(self) -> ClientConnection:
        self._check_not_closed()
        if self._ws is not None:
            return self._ws
        try:
            ws = await connect(self._url, **self._connect_options())
        except (OSError, WebSocketException) as exc:  # TimeoutError is an OSError
            raise ConnectError(self._connect_error_message(exc), url=self._url) from exc
        try:
            self._check_protocol(ws.response.headers)
        except ProtocolVersionError:
            await ws.close()
            raise
        self._ws = ws
        self._state = ClientState.OPEN
        return ws

    async def _request(self, frame: str, expected: str, parse: Callable[[dict[str, Any]], T]) -> T:
        """Send one frame and parse its one reply.

        Any failure except a non-fatal error frame drops the socket: after it, the
        next reply could no longer be matched to its request.
        """
        async with self._lock:
            ws = await self._ensure_open()
            try:
                return parse(await self._exchange(ws, frame, expected))
            except ServerError as exc:
                if _base.closes_connection(exc):
                    await self._drop(_base.failure_reason(exc))
                raise
            except asyncio.CancelledError:
                # Do not await while being cancelled; aclose() releases the socket.
                self._mark_closed("a call was cancelled while it waited for its reply")
                raise
            except BaseException as exc:
                await self._drop(_base.failure_reason(exc))
                raise

    async def _exchange(self, ws: ClientConnection, frame: str, expected: str) -> dict[str, Any]:
        try:
            await ws.send(frame)
        except ConnectionClosed as exc:
            # The server may have said why just before closing (CAPACITY_REACHED).
            pending = await _pending_frame(ws)
            raise (_base.pending_error(pending) or self._lost_error(exc)) from exc
        try:
            async with asyncio.timeout(self._reply_timeout_s):
                raw = await ws.recv()
        except TimeoutError as exc:
            raise ReplyTimeoutError(self._timeout_message()) from exc
        except ConnectionClosed as exc:
            raise self._lost_error(exc) from exc
        return _base.decode_reply(raw, expected)

    async def _drop(self, reason: str) -> None:
        """Close the socket without ending the session politely; the client is done."""
        self._mark_closed(reason)
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()


async def _pending_frame(ws: ClientConnection) -> str | bytes | None:
    """A frame already received on a connection that has closed, if any."""
    try:
        async with asyncio.timeout(_base.PENDING_FRAME_TIMEOUT_S):
            return await ws.recv()
    except (TimeoutError, ConnectionClosed):
        return None

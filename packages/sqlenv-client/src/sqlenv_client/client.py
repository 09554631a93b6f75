"""``SQLEnvClient``: the blocking client, on websockets' sync implementation."""

from __future__ import annotations

import contextlib
import inspect
import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlenv_core.schemas import ActionType, EpisodeState, SQLAction, SQLObservation
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

from . import _base, _docker
from ._base import (
    BaseClient,
    ClientState,
)
from .errors import ConnectError, ProtocolVersionError, ReplyTimeoutError, ServerError

__all__ = ["SQLEnvClient"]

T = TypeVar("T")

# websockets 17.1 deprecates calling connect() outside a ``with`` block unless
# ``legacy=True`` is passed; older versions do not know the flag.
_CONNECT_FLAGS: dict[str, Any] = (
    {"legacy": True} if "legacy" in inspect.signature(connect).parameters else {}
)


class SQLEnvClient(BaseClient):
    """A blocking client for one SQLEnv session over the OpenEnv WebSocket.

    One client is one connection and one server-side environment. It connects on the
    first call (or on ``connect()`` / ``with``), and ``close()`` ends the session::

        with SQLEnvClient("http://localhost:8000") as env:
            obs = env.reset(seed=42, split="eval")
            obs = env.describe(obs.tables[0])
            obs = env.answer("42")

    Calls are serialised with a lock, so a client may be shared between threads,
    but one session runs one episode at a time: use one client per rollout.

    Args:
        base_url: ``http(s)://host[:port]`` of the server (``/ws`` is appended), or
            a full ``ws(s)://`` URL.
        connect_timeout_s: Limit for the TCP connection and the WebSocket handshake.
        reply_timeout_s: Limit for each reply. After a timeout the socket is dropped
            and the client is closed, because a late reply would be mistaken for the
            answer to the next request. ``None`` waits forever.
        max_message_size: Largest reply accepted, in bytes (``None``: no limit).
        compression: ``"deflate"`` to negotiate permessage-deflate. Off by default:
            replies are small and compression costs CPU per step and memory per session.
        headers: Extra HTTP headers for the handshake, e.g. ``Authorization`` for a
            private Hugging Face Space.
        ping_interval_s: Seconds between keepalive pings; ``None`` disables them
            (for tunnels that drop pings).
        ping_timeout_s: Seconds to wait for a pong before the connection is lost.
    """

    def _setup_io(self) -> None:
        self._ws: ClientConnection | None = None
        self._lock = threading.Lock()
        self._container: _docker.DockerServer | None = None

    @classmethod
    def from_docker_image(
        cls,
        image: str,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float = _docker.DEFAULT_DOCKER_TIMEOUT_S,
        **client_kwargs: Any,
    ) -> Self:
        """Start ``image`` in Docker, wait for ``/health``, and connect to it.

        The container's port 8000 is published on ``127.0.0.1:port`` (a free port if
        ``port`` is ``None``) with ``env`` as its environment; ``close()`` stops and
        removes it. Needs the extra: ``pip install "sqlenv-client[docker]"``.

        Raises:
            ImportError: The Docker SDK is not installed.
            ConnectError: The container did not become healthy within ``timeout_s``
                or exited; the message ends with its last log lines.
        """
        server = _docker.start_container(image, port=port, env=env, timeout_s=timeout_s)
        try:
            client = cls(server.base_url, **client_kwargs)
        except BaseException:
            server.stop()
            raise
        client._container = server
        try:
            client.connect()
        except BaseException:
            client.close()
            raise
        return client

    # --- lifecycle --------------------------------------------------------------------

    def connect(self) -> Self:
        """Open the connection now instead of on the first call. A no-op when open.

        Raises ``ConnectError`` on failure; the client then stays unopened and the
        next call tries again.
        """
        with self._lock:
            self._ensure_open()
        return self

    def close(self) -> None:
        """End the session and close the connection (and the container, if any).

        Safe to call more than once; every later call raises ``ClientClosedError``.
        """
        self._mark_closed()
        ws, self._ws = self._ws, None
        container, self._container = self._container, None
        try:
            if ws is not None:
                with contextlib.suppress(ConnectionClosed, OSError):  # already gone
                    ws.send(_base.encode_close())
                ws.close()
        finally:
            if container is not None:
                container.stop()

    def __enter__(self) -> Self:
        return self.connect()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- the OpenEnv calls ------------------------------------------------------------

    def reset(
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
        return self._request(frame, "observation", _base.parse_observation)

    def step(self, action: SQLAction | Mapping[str, Any]) -> SQLObservation:
        """Apply one action; a mapping is validated into an ``SQLAction`` first."""
        frame = _base.encode_step(_base.to_action(action))
        return self._request(frame, "observation", _base.parse_observation)

    def state(self) -> EpisodeState:
        """The episode's bookkeeping (gold answer included only once it is over)."""
        return self._request(_base.encode_state(), "state", _base.parse_state)

    def describe(self, table: str) -> SQLObservation:
        """``DESCRIBE table``: its columns and types."""
        return self.step(_base.make_action(ActionType.DESCRIBE, table))

    def sample(self, table: str) -> SQLObservation:
        """``SAMPLE table``: a few of its rows."""
        return self.step(_base.make_action(ActionType.SAMPLE, table))

    def query(self, sql: str) -> SQLObservation:
        """``QUERY sql``: run one read-only SELECT."""
        return self.step(_base.make_action(ActionType.QUERY, sql))

    def answer(self, value: Any) -> SQLObservation:
        """``ANSWER value``, which ends the episode. Non-strings are sent as JSON."""
        return self.step(_base.make_action(ActionType.ANSWER, _base.answer_text(value)))

    # --- I/O --------------------------------------------------------------------------

    def _ensure_open(self) -> ClientConnection:
        self._check_not_closed()
        if self._ws is not None:
            return self._ws
        try:
            ws: ClientConnection = connect(self._url, **self._connect_options(), **_CONNECT_FLAGS)
        except (OSError, WebSocketException) as exc:  # TimeoutError is an OSError
            raise ConnectError(self._connect_error_message(exc), url=self._url) from exc
        try:
            self._check_protocol(ws.response.headers)
        except ProtocolVersionError:
            ws.close()
            raise
        self._ws = ws
        self._state = ClientState.OPEN
        return ws

    def _request(self, frame: str, expected: str, parse: Callable[[dict[str, Any]], T]) -> T:
        """Send one frame and parse its one reply.

        Any failure except a non-fatal error frame drops the socket: after it, the
        next reply could no longer be matched to its request.
        """
        with self._lock:
            ws = self._ensure_open()
            try:
                return parse(self._exchange(ws, frame, expected))
            except ServerError as exc:
                if _base.closes_connection(exc):
                    self._drop(_base.failure_reason(exc))
                raise
            except BaseException as exc:
                self._drop(_base.failure_reason(exc))
                raise

    def _exchange(self, ws: ClientConnection, frame: str, expected: str) -> dict[str, Any]:
        try:
            ws.send(frame)
        except ConnectionClosed as exc:
            # The server may have said why just before closing (CAPACITY_REACHED).
            raise (_base.pending_error(_pending_frame(ws)) or self._lost_error(exc)) from exc
        try:
            raw = ws.recv(timeout=self._reply_timeout_s)
        except TimeoutError as exc:
            raise ReplyTimeoutError(self._timeout_message()) from exc
        except ConnectionClosed as exc:
            raise self._lost_error(exc) from exc
        return _base.decode_reply(raw, expected)

    def _drop(self, reason: str) -> None:
        """Close the socket without ending the session politely; the client is done."""
        self._mark_closed(reason)
        ws, self._ws = self._ws, None
        if ws is not None:
            ws.close()


def _pending_frame(ws: ClientConnection) -> str | bytes | None:
    """A frame already received on a connection that has closed, if any."""
    try:
        return ws.recv(timeout=_base.PENDING_FRAME_TIMEOUT_S)
    except (TimeoutError, ConnectionClosed):
        return None

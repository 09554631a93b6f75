"""Everything both clients share that does no I/O.

URL building, frame encoding, reply decoding, the mapping from error frames to
exceptions, and the client's configuration and lifecycle state. ``client.py`` and
``async_client.py`` only open the socket, send and receive.
"""

from __future__ import annotations

import enum
import ipaddress
import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError
from sqlenv_core.schemas import (
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    ActionType,
    EpisodeState,
    SQLAction,
    SQLObservation,
)
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .errors import (
    CapacityReachedError,
    ClientClosedError,
    ConnectionLostError,
    ExecutionError,
    InvalidActionError,
    ProtocolError,
    ProtocolVersionError,
    ServerError,
    SessionError,
)

DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0
"""Seconds to open the TCP connection and finish the WebSocket handshake."""
DEFAULT_REPLY_TIMEOUT_S: Final = 60.0
"""Seconds to wait for each reply; after that the socket is dropped."""
DEFAULT_MAX_MESSAGE_SIZE: Final = 16 * 1024 * 1024
"""Largest reply accepted, in bytes. Observations are bounded far below this."""
DEFAULT_PING_INTERVAL_S: Final = 20.0
"""Seconds between keepalive pings (websockets' default); ``None`` disables them."""
DEFAULT_PING_TIMEOUT_S: Final = 20.0
"""Seconds to wait for a pong before the connection counts as lost."""
CLOSE_TIMEOUT_S: Final = 2.0
"""Seconds to wait for the server's close frame, so dropping a stuck socket is quick."""
PENDING_FRAME_TIMEOUT_S: Final = 1.0
"""Guard for reading a frame left on a connection that is already closed (never waits)."""

CLOSING_CODES: Final = frozenset({"CAPACITY_REACHED", "FACTORY_ERROR", "SESSION_ERROR"})
"""Error codes after which the server closes the connection."""

_ERROR_CLASSES: Final[dict[str, type[ServerError]]] = {
    "CAPACITY_REACHED": CapacityReachedError,
    "FACTORY_ERROR": SessionError,
    "SESSION_ERROR": SessionError,
    "VALIDATION_ERROR": InvalidActionError,
    "EXECUTION_ERROR": ExecutionError,
}

_ENVELOPE_KEYS: Final = frozenset({"reward", "done", "metadata"})
_OBSERVATION_FIELDS: Final = frozenset(SQLObservation.model_fields) - _ENVELOPE_KEYS
_PREVIEW_CHARS: Final = 200
_MESSAGE_TOO_BIG: Final = 1009  # close code websockets sends when a reply exceeds max_size


class ClientState(enum.Enum):
    """Lifecycle of a client, as in httpx: it opens once and never reopens after closing."""

    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


# --- URLs -----------------------------------------------------------------------------


def ws_url(base_url: str) -> str:
    """The WebSocket URL for a server.

    ``http://host:8000/`` becomes ``ws://host:8000/ws`` and ``https://`` becomes
    ``wss://``; a path prefix is kept (``https://host/env`` → ``wss://host/env/ws``).
    A ``ws://`` or ``wss://`` URL is used as given, with ``/ws`` added only when it
    has no path.
    """
    url = base_url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https", "ws", "wss"} or not parts.netloc:
        raise ValueError(
            f"base_url must look like http://host:port (or https://, ws://, wss://); "
            f"got {base_url!r}"
        )
    path = parts.path.rstrip("/")
    if scheme in {"http", "https"}:
        scheme = "ws" if scheme == "http" else "wss"
        path += "/ws"
    elif not path:
        path = "/ws"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


def is_loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (``localhost``, ``127.x.x.x``, ``::1``)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- Requests -------------------------------------------------------------------------


def encode_reset(params: Mapping[str, Any]) -> str:
    """A ``reset`` frame carrying only the parameters that were given (not ``None``)."""
    data = {key: value for key, value in params.items() if value is not None}
    return json.dumps({"type": "reset", "data": data})


def encode_step(action: SQLAction) -> str:
    """A ``step`` frame: the action's fields directly under ``data`` (no wrapper)."""
    data: dict[str, Any] = {"action_type": action.action_type.value, "argument": action.argument}
    if action.metadata:
        data["metadata"] = action.metadata
    return json.dumps({"type": "step", "data": data})


def encode_state() -> str:
    """A ``state`` frame. It has no ``data`` key: OpenEnv rejects ``"data": {}`` here."""
    return json.dumps({"type": "state"})


def encode_close() -> str:
    """A ``close`` frame; the server ends the session and sends no reply."""
    return json.dumps({"type": "close"})


def to_action(action: SQLAction | Mapping[str, Any]) -> SQLAction:
    """Validate a mapping into an ``SQLAction`` (pydantic's ``ValidationError`` if invalid)."""
    return action if isinstance(action, SQLAction) else SQLAction.model_validate(action)


def make_action(action_type: ActionType, argument: str) -> SQLAction:
    return SQLAction(action_type=action_type, argument=argument)


def answer_text(value: Any) -> str:
    """The text of an ANSWER: a string as is, anything else as JSON (rows → ``[[1, "a"]]``)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


# --- Replies --------------------------------------------------------------------------


def decode_reply(raw: str | bytes, expected: str) -> dict[str, Any]:
    """The ``data`` of a reply of type ``expected``.

    Raises the matching ``ServerError`` for an ``error`` frame and ``ProtocolError``
    for anything that is not a well-formed frame of the expected type.
    """
    try:
        frame = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ProtocolError(f"reply is not valid JSON ({exc}): {_preview(raw)}") from exc
    if not isinstance(frame, dict):
        raise ProtocolError(f"reply is not a JSON object: {_preview(raw)}")
    kind = frame.get("type")
    data = frame.get("data")
    if kind == "error":
        raise server_error(data if isinstance(data, dict) else {"message": data})
    if kind != expected:
        raise ProtocolError(f"expected a {expected!r} reply, got type {kind!r}: {_preview(raw)}")
    if not isinstance(data, dict):
        raise ProtocolError(f"{expected!r} reply has no data object: {_preview(raw)}")
    return data


def server_error(data: Mapping[str, Any]) -> ServerError:
    """The exception for an ``error`` frame's data; unknown codes give a plain ``ServerError``."""
    code = str(data.get("code") or "UNKNOWN")
    message = data.get("message")
    message = str(message) if message is not None else "the server sent no message"
    return _ERROR_CLASSES.get(code, ServerError)(code, message, data)


def parse_observation(data: Mapping[str, Any]) -> SQLObservation:
    """An ``SQLObservation`` from the envelope ``{"observation", "reward", "done", "metadata"}``.

    ``reward`` is cast to ``float`` (WebSocket frames carry ints and bools raw). The
    observation's metadata is read from both places OpenEnv versions put it. Fields
    this client does not know (a newer server) are ignored.
    """
    observation = data.get("observation")
    if not isinstance(observation, dict):
        raise ProtocolError(f"observation reply has no observation object: {_preview(data)}")
    fields = {key: value for key, value in observation.items() if key in _OBSERVATION_FIELDS}
    metadata: dict[str, Any] = {}
    for source in (data.get("metadata"), observation.get("metadata")):
        if isinstance(source, dict):
            metadata.update(source)
    reward = data.get("reward", observation.get("reward"))
    if reward is not None:
        try:
            reward = float(reward)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"reward is not a number: {reward!r}") from exc
    done = data.get("done", observation.get("done", False))
    try:
        return SQLObservation.model_validate(
            {**fields, "reward": reward, "done": done, "metadata": metadata}
        )
    except ValidationError as exc:
        raise ProtocolError(f"observation does not match SQLObservation: {exc}") from exc


def parse_state(data: Mapping[str, Any]) -> EpisodeState:
    """An ``EpisodeState`` from a ``state`` reply (extra server fields are kept)."""
    try:
        return EpisodeState.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(f"state does not match EpisodeState: {exc}") from exc


def pending_error(raw: str | bytes | None) -> ServerError | None:
    """The error a server sent just before closing the connection, if ``raw`` is one."""
    if raw is None:
        return None
    try:
        frame = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(frame, dict) or frame.get("type") != "error":
        return None
    data = frame.get("data")
    return server_error(data if isinstance(data, dict) else {"message": data})


def closes_connection(exc: ServerError) -> bool:
    """Whether the server closed the connection along with this error frame."""
    return exc.code in CLOSING_CODES or isinstance(exc.__cause__, ConnectionClosed)


def failure_reason(exc: BaseException) -> str:
    """Why a client was closed, for the ``ClientClosedError`` raised on its next use."""
    return f"of an earlier error: {type(exc).__name__}: {exc}"


def _preview(value: object) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "..."


# --- Shared client configuration and lifecycle ------------------------------------------


class BaseClient:
    """Configuration and lifecycle bookkeeping shared by the sync and async clients."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float | None = DEFAULT_CONNECT_TIMEOUT_S,
        reply_timeout_s: float | None = DEFAULT_REPLY_TIMEOUT_S,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        compression: str | None = None,
        headers: Mapping[str, str] | None = None,
        ping_interval_s: float | None = DEFAULT_PING_INTERVAL_S,
        ping_timeout_s: float | None = DEFAULT_PING_TIMEOUT_S,
    ) -> None:
        self._url = ws_url(base_url)
        self._connect_timeout_s = connect_timeout_s
        self._reply_timeout_s = reply_timeout_s
        self._max_message_size = max_message_size
        self._compression = compression
        self._headers = dict(headers or {})
        self._ping_interval_s = ping_interval_s
        self._ping_timeout_s = ping_timeout_s
        self._state = ClientState.UNOPENED
        self._closed_reason: str | None = None
        self._setup_io()

    def _setup_io(self) -> None:
        """The I/O half's own state (socket, lock, container); each client defines it."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """The WebSocket URL this client talks to."""
        return self._url

    @property
    def is_closed(self) -> bool:
        """Whether the client is closed, by ``close()`` or by an error; it cannot reopen."""
        return self._state is ClientState.CLOSED

    def __repr__(self) -> str:
        return f"<{type(self).__name__} url={self._url!r} state={self._state.value}>"

    def _connect_options(self) -> dict[str, Any]:
        """Keyword arguments for websockets' ``connect`` (sync and asyncio alike)."""
        options: dict[str, Any] = {
            "open_timeout": self._connect_timeout_s,
            "close_timeout": CLOSE_TIMEOUT_S,
            "max_size": self._max_message_size,
            "compression": self._compression,
            "additional_headers": {PROTOCOL_HEADER: str(PROTOCOL_VERSION), **self._headers},
            "ping_interval": self._ping_interval_s,
            "ping_timeout": self._ping_timeout_s,
        }
        if is_loopback(self._url):
            options["proxy"] = None  # a proxy from the environment cannot reach our loopback
        return options

    def _check_not_closed(self) -> None:
        if self._state is ClientState.CLOSED:
            name = type(self).__name__
            if self._closed_reason:
                raise ClientClosedError(
                    f"this {name} was closed because {self._closed_reason}; create a new client"
                )
            raise ClientClosedError(f"this {name} is closed; create a new client")

    def _mark_closed(self, reason: str | None = None) -> None:
        if self._state is not ClientState.CLOSED:
            self._state = ClientState.CLOSED
            self._closed_reason = reason

    def _connect_error_message(self, exc: BaseException) -> str:
        """Why the connection failed, and what to do about it."""
        if isinstance(exc, TimeoutError):
            return f"timed out after {self._connect_timeout_s} s connecting to {self._url}"
        if isinstance(exc, ConnectionRefusedError):
            return (
                f"cannot connect to {self._url}: connection refused. Is an SQLEnv server "
                "running there? Start one with `sqlenv-server` (pip install "
                '"sqlenv-server[data]"), or check the host and port'
            )
        if isinstance(exc, InvalidStatus):
            status = exc.response.status_code
            path = urlsplit(self._url).path
            hint = ""
            if status in (403, 404) and path != "/ws":
                hint = (
                    f": there is no SQLEnv WebSocket at {path}. Pass the server's base URL "
                    "(http://host:port, or the prefix it is served under), not a page such "
                    "as /web/"
                )
            elif status in (403, 404):
                hint = ": is this an SQLEnv (OpenEnv) server?"
            return f"cannot connect to {self._url}: the server answered HTTP {status}{hint}"
        return f"cannot connect to {self._url}: {exc}"

    def _check_protocol(self, headers: Headers) -> None:
        """Refuse a server of another protocol version. A server that sends no version
        (an OpenEnv server that is not SQLEnv's own) is taken as it is."""
        spoken = headers.get(PROTOCOL_HEADER)
        if spoken is not None and spoken.strip() != str(PROTOCOL_VERSION):
            raise ProtocolVersionError(
                f"the server at {self._url} speaks SQLEnv protocol {spoken.strip()[:20]!r}; "
                f"this sqlenv-client speaks protocol {PROTOCOL_VERSION}. Install the "
                "sqlenv-client release that matches the server (docs/releasing.md)",
                url=self._url,
                server_protocol=spoken.strip()[:20],
            )

    def _lost_error(self, exc: ConnectionClosed) -> ConnectionLostError | ProtocolError:
        """The error for a connection that closed while the client sent or waited."""
        if exc.sent is not None and exc.sent.code == _MESSAGE_TOO_BIG:
            return ProtocolError(
                f"a reply from {self._url} exceeded max_message_size "
                f"({self._max_message_size} bytes)"
            )
        return ConnectionLostError(f"the connection to {self._url} was closed ({exc})")

    def _timeout_message(self) -> str:
        return f"no reply from {self._url} within {self._reply_timeout_s} s"

"""Every exception sqlenv-client raises, under one base::

    SQLEnvClientError
    ├── TransportError             the WebSocket could not be opened, or broke
    │   ├── ConnectError           cannot connect (refused, timed out, handshake failed,
    │   │                          container never became healthy); the client stays
    │   │                          unopened, so the next call tries again
    │   │   └── ProtocolVersionError  the server speaks another SQLEnv protocol version
    │   ├── ConnectionLostError    the server closed the connection; the client is closed
    │   └── ReplyTimeoutError      no reply in time (also a ``TimeoutError``); the client
    │                              dropped its socket and is closed
    ├── ProtocolError              a reply that is not a valid OpenEnv frame; the client
    │                              dropped its socket and is closed
    ├── ClientClosedError          the client was closed (also a ``RuntimeError``)
    ├── EpisodeLostError           a pooled session gave up restarting an episode on a
    │                              live server (``sqlenv_client.pool``)
    └── ServerError                an ``error`` frame: ``code``, ``message``, ``data``
        ├── CapacityReachedError   CAPACITY_REACHED; the server closed the connection
        ├── SessionError           FACTORY_ERROR, SESSION_ERROR; the server closed it
        ├── InvalidActionError     VALIDATION_ERROR (``errors`` lists pydantic's details)
        └── ExecutionError         EXECUTION_ERROR: ``reset`` or ``step`` raised on the server

``ServerError`` itself is raised for the other codes (``INVALID_JSON``, ``UNKNOWN_TYPE``
and any code this client does not know). Agent mistakes (bad SQL, unknown table, a
step after the end) are not errors: they come back as observations with ``error`` set.
After any error, ``client.is_closed`` says whether the client can still be used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "CapacityReachedError",
    "ClientClosedError",
    "ConnectError",
    "ConnectionLostError",
    "EpisodeLostError",
    "ExecutionError",
    "InvalidActionError",
    "ProtocolError",
    "ProtocolVersionError",
    "ReplyTimeoutError",
    "SQLEnvClientError",
    "ServerError",
    "SessionError",
    "TransportError",
]


class SQLEnvClientError(Exception):
    """Base of every error raised by sqlenv-client."""


class TransportError(SQLEnvClientError):
    """The WebSocket could not be opened, or it broke."""


class ConnectError(TransportError):
    """The client could not connect; ``url`` is the WebSocket URL it tried."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.url))


class ProtocolVersionError(ConnectError):
    """The server speaks another SQLEnv protocol version (``server_protocol``) than this
    client (``sqlenv_core.schemas.PROTOCOL_VERSION``); install a matching sqlenv-client."""

    def __init__(self, message: str, url: str, server_protocol: str) -> None:
        super().__init__(message, url)
        self.server_protocol = server_protocol

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.url, self.server_protocol))


class ConnectionLostError(TransportError):
    """The server closed the connection (restart, idle reaping, network failure)."""


class ReplyTimeoutError(TransportError, TimeoutError):
    """No reply within ``reply_timeout_s``.

    The socket is dropped rather than reused: a late reply would otherwise be taken
    as the answer to the next request.
    """


class ProtocolError(SQLEnvClientError):
    """The server sent something that is not a valid reply (bad JSON, wrong type or shape)."""


class ClientClosedError(SQLEnvClientError, RuntimeError):
    """The client was used after ``close()``, or after an error that closed it."""


class EpisodeLostError(SQLEnvClientError):
    """A pooled session could not restart an episode: every attempt in a row failed.

    ``attempts`` were made; ``__cause__`` is the last failure.
    """

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.args[0], self.attempts))


class ServerError(SQLEnvClientError):
    """The server answered with an ``error`` frame.

    ``message`` and ``code`` are the server's own; ``data`` is the whole frame
    payload, extra keys included (for example ``active_sessions``).
    """

    def __init__(self, code: str, message: str, data: Mapping[str, Any] | None = None) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.data: dict[str, Any] = dict(data or {})

    def __str__(self) -> str:
        return f"{self.message} (code: {self.code})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.code, self.message, self.data))


class CapacityReachedError(ServerError):
    """CAPACITY_REACHED: every session slot is taken; retry later with a new client."""

    @property
    def active_sessions(self) -> int | None:
        return self.data.get("active_sessions")

    @property
    def max_sessions(self) -> int | None:
        return self.data.get("max_sessions")


class SessionError(ServerError):
    """FACTORY_ERROR or SESSION_ERROR: the server could not create or keep the session."""


class InvalidActionError(ServerError):
    """VALIDATION_ERROR: the server rejected a frame or an action as invalid."""

    @property
    def errors(self) -> list[dict[str, Any]]:
        """Pydantic's error details as the server sent them (may be empty)."""
        errors = self.data.get("errors")
        return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []

    def __str__(self) -> str:
        # OpenEnv's message is a bare "Invalid message": add the details it leaves out.
        details = [d for d in map(_describe, self.errors) if d not in self.message]
        shown = "; ".join(details[:3])
        more = f" (+{len(details) - 3} more)" if len(details) > 3 else ""
        return f"{super().__str__()}: {shown}{more}" if shown else super().__str__()


class ExecutionError(ServerError):
    """EXECUTION_ERROR: the server's ``reset`` or ``step`` raised; ``message`` says why."""

    @property
    def error_type(self) -> str | None:
        """The server-side exception's name when the server sends it (``"ResetNeeded"``)."""
        value = self.data.get("error_type")
        return value if isinstance(value, str) else None


def _describe(error: Mapping[str, Any]) -> str:
    loc = error.get("loc")
    where = ".".join(str(part) for part in loc) if isinstance(loc, list | tuple) else ""
    msg = str(error.get("msg", error))
    return f"{where}: {msg}" if where else msg

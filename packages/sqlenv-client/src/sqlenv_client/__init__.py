"""Sync and async Python clients for SQLEnv servers, over the OpenEnv WebSocket protocol.

``SQLEnvClient`` blocks; ``AsyncSQLEnvClient`` is its asyncio twin. ``EnvPool`` and
``AsyncEnvPool`` run many sessions over one URL or several replicas and restart an
episode on a live replica when one dies (``sqlenv_client.pool``). All speak the
wire schemas of ``sqlenv_core.schemas``, re-exported here for convenience, and
raise the exceptions of ``sqlenv_client.errors``.
"""

import importlib.metadata as _metadata

from sqlenv_core.schemas import (
    ActionType,
    EpisodeState,
    ResultTable,
    RewardBreakdown,
    SQLAction,
    SQLObservation,
)

from ._base import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PING_INTERVAL_S,
    DEFAULT_PING_TIMEOUT_S,
    DEFAULT_REPLY_TIMEOUT_S,
)
from ._docker import DEFAULT_DOCKER_TIMEOUT_S
from .async_client import AsyncSQLEnvClient
from .client import SQLEnvClient
from .errors import (
    CapacityReachedError,
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    EpisodeLostError,
    ExecutionError,
    InvalidActionError,
    ProtocolError,
    ProtocolVersionError,
    ReplyTimeoutError,
    ServerError,
    SessionError,
    SQLEnvClientError,
    TransportError,
)
from .pool import (
    DEFAULT_MAX_RESTARTS,
    AsyncEnvPool,
    AsyncPooledSession,
    Endpoints,
    EnvPool,
    EpisodeOutcome,
    PooledSession,
    PoolStats,
)

try:
    __version__ = _metadata.version("sqlenv-client")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_DOCKER_TIMEOUT_S",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DEFAULT_MAX_RESTARTS",
    "DEFAULT_PING_INTERVAL_S",
    "DEFAULT_PING_TIMEOUT_S",
    "DEFAULT_REPLY_TIMEOUT_S",
    "ActionType",
    "AsyncEnvPool",
    "AsyncPooledSession",
    "AsyncSQLEnvClient",
    "CapacityReachedError",
    "ClientClosedError",
    "ConnectError",
    "ConnectionLostError",
    "Endpoints",
    "EnvPool",
    "EpisodeLostError",
    "EpisodeOutcome",
    "EpisodeState",
    "ExecutionError",
    "InvalidActionError",
    "PoolStats",
    "PooledSession",
    "ProtocolError",
    "ProtocolVersionError",
    "ReplyTimeoutError",
    "ResultTable",
    "RewardBreakdown",
    "SQLAction",
    "SQLEnvClient",
    "SQLEnvClientError",
    "SQLObservation",
    "ServerError",
    "SessionError",
    "TransportError",
    "__version__",
]

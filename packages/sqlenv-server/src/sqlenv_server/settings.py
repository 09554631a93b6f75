"""Server configuration: one frozen object, read from flags and environment variables.

Precedence is flag, then environment variable, then default. Every value is checked
here, before anything heavy is imported, so a typo stops the server at once with one
line that names the flag or variable (``main`` turns :class:`SettingsError` into exit
status 2).

| setting | flag | environment | default |
|---|---|---|---|
| host | ``--host`` | ``HOST`` | ``127.0.0.1`` |
| port | ``--port`` | ``PORT`` | ``8000`` |
| data directory | ``--data-dir`` | ``SQLENV_DATA_DIR`` | the bundled ``data/`` |
| session cap | ``--max-sessions`` | ``SQLENV_MAX_SESSIONS``, ``MAX_CONCURRENT_ENVS`` | 256 |
| sessions per client address (0: no cap; loopback never capped) | ``--max-sessions-per-client`` | ``SQLENV_MAX_SESSIONS_PER_CLIENT`` | 32 |
| idle timeout (s) | ``--idle-timeout`` | ``SQLENV_IDLE_TIMEOUT_S``, ``SESSION_TIMEOUT_S`` | 600 |
| query deadline (s) | ``--query-timeout`` | ``SQLENV_QUERY_TIMEOUT_S`` | 2 |
| step budget | ``--budget`` | ``SQLENV_BUDGET`` | 15 |
| inline query budget (ms) | ``--inline-budget-ms`` | ``SQLENV_INLINE_BUDGET_MS`` | 5 |
| slow-query threads | ``--query-threads`` | ``SQLENV_QUERY_THREADS`` | 8 |
| largest message or request body (bytes) | ``--max-message-bytes`` | ``SQLENV_MAX_MESSAGE_BYTES`` | 1 MiB |
| largest request head: request line and headers (bytes) | ``--max-header-bytes`` | ``SQLENV_MAX_HEADER_BYTES`` | 32 KiB |
| time to send a request head (s) | ``--header-timeout`` | ``SQLENV_HEADER_TIMEOUT_S`` | 10 |
| WebSocket compression | ``--ws-compression`` | ``SQLENV_WS_COMPRESSION`` | off |
| oracle plan for any question | ``--web-oracle`` | ``SQLENV_WEB_ORACLE`` | off |
| other origins browsers may call from | ``--allowed-origins`` | ``SQLENV_ALLOWED_ORIGINS`` | none (same origin only) |
| Host names browsers may use | ``--allowed-hosts`` | ``SQLENV_ALLOWED_HOSTS`` | loopback names when bound to loopback, else any |
| log level | ``--log-level`` | ``SQLENV_LOG_LEVEL`` | ``info`` |
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["ENV_VARS", "ServerSettings", "SettingsError", "resolve_settings"]

LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


class SettingsError(ValueError):
    """A flag or environment variable has an unusable value; the message names it."""


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything the server can be told. Build one with :func:`resolve_settings`.

    ``data_dir=None`` means the bundled data (``sqlenv_core.dataset.default_data_dir``).
    ``inline_budget_ms`` is how long a QUERY may run on the event loop before it is
    interrupted and re-run in a worker thread with the full ``query_timeout_s``
    deadline; 0 sends every QUERY to a thread.
    ``web_oracle`` opens ``/web/api/oracle/<id>`` (the gold plan) for every question;
    off, it answers only for a question whose episode the asking page has finished.
    ``allowed_origins`` and ``allowed_hosts`` guard browser requests (see ``origin.py``):
    origins (``https://example.org``, ``*``) whose pages may call this server besides its
    own, and the Host names a browser may reach it by (``example.org``, ``*.example.org``,
    ``*``); an empty ``allowed_hosts`` means the loopback names when ``host`` is a
    loopback address and any name otherwise.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path | None = None
    max_sessions: int = 256
    max_sessions_per_client: int = 32
    idle_timeout_s: float = 600.0
    query_timeout_s: float = 2.0
    budget: int = 15
    inline_budget_ms: float = 5.0
    query_threads: int = 8
    max_message_bytes: int = 1 << 20
    max_header_bytes: int = 32 << 10
    header_timeout_s: float = 10.0
    ws_compression: bool = False
    web_oracle: bool = False
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    log_level: str = "info"
    graceful_timeout_s: float = 3.0

    def __post_init__(self) -> None:
        for f in fields(self):
            check = _CHECKS.get(f.name)
            if check is not None:
                problem = check(getattr(self, f.name))
                if problem:
                    raise SettingsError(f"{f.name} {problem}, got {getattr(self, f.name)!r}")

    def with_(self, **changes: Any) -> ServerSettings:
        """A copy with some values changed (validated again)."""
        return replace(self, **changes)


def _positive_int(limit: int | None = None, low: int = 1) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"must be a whole number of at least {low}"
        if limit is not None and value > limit:
            return f"must be a whole number from 1 to {limit}"
        return None

    return check


def _positive_float(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if not math.isfinite(value) or value <= 0:
        return "must be a positive number"
    return None


def _non_negative_float(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if not math.isfinite(value) or value < 0:
        return "must be a number of at least 0"
    return None


def _origin_list(value: Any) -> str | None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        return "must be a tuple of origins"
    for origin in value:
        if origin != "*" and not (
            origin.startswith(("http://", "https://")) and "/" not in origin.split("://", 1)[1]
        ):
            return f"must hold origins such as https://example.org (scheme and host, no path), not {origin!r}"
    return None


def _host_list(value: Any) -> str | None:
    if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
        return "must be a tuple of host names"
    for host in value:
        if not host or "/" in host or "://" in host:
            return f"must hold host names such as example.org or *.example.org, not {host!r}"
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "port": _positive_int(65535),
    "max_sessions": _positive_int(),
    "max_sessions_per_client": _positive_int(low=0),
    "max_header_bytes": _positive_int(low=1024),
    "header_timeout_s": _positive_float,
    "idle_timeout_s": _positive_float,
    "query_timeout_s": _positive_float,
    "budget": _positive_int(10_000),
    "inline_budget_ms": _non_negative_float,
    "query_threads": _positive_int(1024),
    "max_message_bytes": _positive_int(low=1024),
    "log_level": lambda v: None if v in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}",
    "graceful_timeout_s": _positive_float,
    "host": lambda v: None if isinstance(v, str) and v.strip() else "must not be empty",
    "allowed_origins": lambda v: _origin_list(v),
    "allowed_hosts": lambda v: _host_list(v),
}

# setting -> (flag, environment variables); the first variable that is set wins.
ENV_VARS: dict[str, tuple[str, tuple[str, ...]]] = {
    "host": ("--host", ("HOST",)),
    "port": ("--port", ("PORT",)),
    "data_dir": ("--data-dir", ("SQLENV_DATA_DIR",)),
    "max_sessions": ("--max-sessions", ("SQLENV_MAX_SESSIONS", "MAX_CONCURRENT_ENVS")),
    "max_sessions_per_client": (
        "--max-sessions-per-client",
        ("SQLENV_MAX_SESSIONS_PER_CLIENT",),
    ),
    "idle_timeout_s": ("--idle-timeout", ("SQLENV_IDLE_TIMEOUT_S", "SESSION_TIMEOUT_S")),
    "query_timeout_s": ("--query-timeout", ("SQLENV_QUERY_TIMEOUT_S",)),
    "budget": ("--budget", ("SQLENV_BUDGET",)),
    "inline_budget_ms": ("--inline-budget-ms", ("SQLENV_INLINE_BUDGET_MS",)),
    "query_threads": ("--query-threads", ("SQLENV_QUERY_THREADS",)),
    "max_message_bytes": ("--max-message-bytes", ("SQLENV_MAX_MESSAGE_BYTES",)),
    "max_header_bytes": ("--max-header-bytes", ("SQLENV_MAX_HEADER_BYTES",)),
    "header_timeout_s": ("--header-timeout", ("SQLENV_HEADER_TIMEOUT_S",)),
    "ws_compression": ("--ws-compression", ("SQLENV_WS_COMPRESSION",)),
    "web_oracle": ("--web-oracle", ("SQLENV_WEB_ORACLE",)),
    "allowed_origins": ("--allowed-origins", ("SQLENV_ALLOWED_ORIGINS",)),
    "allowed_hosts": ("--allowed-hosts", ("SQLENV_ALLOWED_HOSTS",)),
    "log_level": ("--log-level", ("SQLENV_LOG_LEVEL",)),
    "graceful_timeout_s": ("--graceful-timeout", ("SQLENV_GRACEFUL_TIMEOUT_S",)),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse(name: str, text: str) -> Any:
    """Turn the text of a flag or variable into the setting's type (ValueError if it can't)."""
    kind = {f.name: f.type for f in fields(ServerSettings)}[name]
    text = text.strip()
    if kind == "int":
        if not text.lstrip("+-").isdigit():
            raise ValueError
        return int(text)
    if kind == "float":
        value = float(text)
        if not math.isfinite(value):
            raise ValueError
        return value
    if kind == "bool":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError
    if kind == "tuple[str, ...]":
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if kind == "Path | None":
        return Path(text) if text else None
    if name == "log_level":
        return text.lower()
    return text


def resolve_settings(
    flags: Mapping[str, str | None] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    ignore: tuple[str, ...] = (),
) -> ServerSettings:
    """Settings from ``flags`` (setting name -> raw text, None = not given) and ``environ``.

    A variable set to nothing but blanks counts as unset. Raises :class:`SettingsError`
    with one line naming the flag or variable, e.g.
    ``PORT must be a whole number from 1 to 65535, got 'abc'``. Settings named in
    ``ignore`` keep their defaults (an app served by ``uvicorn`` itself ignores
    ``HOST`` and ``PORT``: uvicorn's own flags decide).
    """
    flags = flags or {}
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, (flag, variables) in ENV_VARS.items():
        if name in ignore:
            continue
        raw: str | None = flags.get(name)
        source = flag
        if raw is None:
            for var in variables:
                # An empty variable is an unset one (`PORT=` in a compose file or a
                # `docker run -e PORT=`), as in most servers; an empty flag is still wrong.
                if environ.get(var, "").strip():
                    raw, source = environ[var], var
                    break
        if raw is None:
            continue
        try:
            value = _parse(name, raw)
            probe = _CHECKS.get(name)
            if probe is not None and probe(value):
                raise ValueError
        except ValueError:
            raise SettingsError(f"{source} {_HINTS[name]}, got {raw!r}") from None
        values[name] = value
    return ServerSettings(**values)


_HINTS = {
    "port": "must be a whole number from 1 to 65535",
    "max_sessions": "must be a whole number of at least 1",
    "max_sessions_per_client": "must be a whole number of at least 0 (0: no cap)",
    "max_header_bytes": "must be a whole number of at least 1024",
    "header_timeout_s": "must be a positive number of seconds",
    "budget": "must be a whole number from 1 to 10000",
    "query_threads": "must be a whole number from 1 to 1024",
    "max_message_bytes": "must be a whole number of at least 1024",
    "idle_timeout_s": "must be a positive number of seconds",
    "query_timeout_s": "must be a positive number of seconds",
    "graceful_timeout_s": "must be a positive number of seconds",
    "inline_budget_ms": "must be a number of milliseconds, 0 or more",
    "ws_compression": "must be one of 1, true, yes, on, 0, false, no, off",
    "web_oracle": "must be one of 1, true, yes, on, 0, false, no, off",
    "allowed_origins": "must be a comma-separated list of origins such as https://example.org, or *",
    "allowed_hosts": "must be a comma-separated list of host names such as example.org, *.example.org or *",
    "log_level": f"must be one of {', '.join(LOG_LEVELS)}",
    "host": "must not be empty",
    "data_dir": "must be a directory path",
}

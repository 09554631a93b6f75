"""Refuse browser requests that come from another site, or by a name not ours.

Any web page a person opens can make their browser talk to this server: open ``/ws``
(WebSockets are exempt from the same-origin policy) or POST ``text/plain`` JSON to
``/mcp`` (a "simple" request, sent without asking), and through DNS rebinding even read
the answers, by giving its own name the address ``127.0.0.1``. Two checks close that:

* **Origin.** A request with an ``Origin`` header (every browser WebSocket, and every
  browser POST) must come from this server's own origin (the ``Origin``'s host and port
  are the request's ``Host``, or a proxy's ``X-Forwarded-Host``), from an origin in
  ``allowed_origins``, or ``allowed_origins`` is ``*``. On a Hugging Face Space,
  ``https://$SPACE_HOST`` is allowed too, in case the proxy renames the Host.
* **Host.** A browser request (one with ``Origin`` or ``Sec-Fetch-Site``, which every
  current browser sends with every request) must name a Host in ``allowed_hosts``. Left
  empty, that is ``localhost``, ``127.0.0.1`` and ``::1`` while the server listens on a
  loopback address (a rebinding page's name is refused), and any name when it listens on
  all interfaces (the Docker image and the Space, reached by names it cannot know).

Programs (the Python client, OpenEnv's clients, curl, trainers) send neither header and
pass untouched: they are not a browser that a page can borrow. Refusals are 403 with a
``detail`` naming the setting to change; a refused WebSocket is closed before it is
accepted (the handshake gets 403). An allowed cross-origin page also gets CORS headers,
so it can read HTTP replies.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from .settings import ServerSettings

__all__ = ["OriginGuard", "allowed_hosts", "refusal"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_EXPOSED = "X-SQLEnv-Session, Mcp-Session-Id"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(settings: ServerSettings) -> tuple[str, ...]:
    """The Host patterns browser requests may name (``*`` for any)."""
    if settings.allowed_hosts:
        return settings.allowed_hosts
    return LOOPBACK_NAMES if _is_loopback(settings.host) else ("*",)


def _split_host(value: str) -> tuple[str, int | None]:
    """``example.org:8000`` -> (``example.org``, 8000); ``[::1]:80`` -> (``::1``, 80)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        name, rest = value[1:end], value[end + 1 :]
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, port = value.split(":")
    else:
        name, port = value, ""
    return name.rstrip("."), int(port) if port.isdigit() else None


def _host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    name, _ = _split_host(host)
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern == "*" or pattern.strip("[]") == name:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


def _authority(scheme: str, host: str) -> tuple[str, int]:
    name, port = _split_host(host)
    return name, port if port is not None else _DEFAULT_PORTS.get(scheme, 80)


def _same_origin(origin: str, hosts: list[str], scheme: str) -> bool:
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (a sandboxed frame, a file), or garbage
    theirs = _authority(parts.scheme, parts.netloc)
    # Behind a TLS proxy the server sees http while the page is https: compare names and
    # the ports each side states (a missing port is the scheme's default on either side).
    return any(theirs in (_authority(scheme, h), _authority(parts.scheme, h)) for h in hosts if h)


def _origin_allowed(origin: str, settings: ServerSettings) -> bool:
    allowed = settings.allowed_origins
    if "*" in allowed or origin.rstrip("/") in {o.rstrip("/") for o in allowed}:
        return True
    space = os.environ.get("SPACE_HOST")
    return bool(space) and origin.rstrip("/") == f"https://{space}"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _verdict(
    headers: dict[str, str], scheme: str, settings: ServerSettings
) -> tuple[str | None, bool]:
    """(why to refuse or None, whether an allowed request comes from another origin)."""
    origin = headers.get("origin")
    if origin is None and "sec-fetch-site" not in headers:
        return None, False  # not a browser
    host = headers.get("host", "")
    if not _host_allowed(host, allowed_hosts(settings)):
        return (
            f"Host {host!r} is not one this server answers browsers on (a page may have "
            "pointed its own name at this address); allow it with SQLENV_ALLOWED_HOSTS "
            "(--allowed-hosts)"
        ), False
    if origin is None:
        return None, False
    own = [host, headers.get("x-forwarded-host", "").split(",")[0]]
    if _same_origin(origin, own, scheme):
        return None, False
    if _origin_allowed(origin, settings):
        return None, True
    return (
        f"cross-origin request from {origin!r} refused: a page of another site may not use "
        "this server; allow its origin with SQLENV_ALLOWED_ORIGINS (--allowed-origins)"
    ), False


def _scheme(scope: Scope) -> str:
    return "https" if scope.get("scheme") in ("https", "wss") else "http"


def refusal(scope: Scope, settings: ServerSettings) -> str | None:
    """Why this request must be refused (None when it may pass)."""
    return _verdict(_headers(scope), _scheme(scope), settings)[0]


class OriginGuard:
    """ASGI middleware applying :func:`refusal` to HTTP requests and WebSocket handshakes.

    It reads the settings of the running app (``app.state.manager.settings``), so it
    works when they are resolved at startup.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = getattr(scope.get("app"), "state", None)
        manager = getattr(state, "manager", None)
        if manager is None:  # not started: nothing to guard yet
            await self.app(scope, receive, send)
            return
        settings: ServerSettings = manager.settings
        headers = _headers(scope)
        reason, cross_origin = _verdict(headers, _scheme(scope), settings)
        if reason is not None:
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
            else:
                await _forbid(send, reason)
            return
        if cross_origin and kind == "http":
            await self._cors(scope, receive, send, headers)
            return
        await self.app(scope, receive, send)

    async def _cors(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        """An allowed cross-origin request: answer preflights, add the CORS headers."""
        cors = [
            (b"access-control-allow-origin", headers["origin"].encode("latin-1")),
            (b"access-control-expose-headers", _EXPOSED.encode()),
            (b"vary", b"Origin"),
        ]
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            asked = headers.get("access-control-request-headers", "")
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        *cors,
                        (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                        (b"access-control-allow-headers", asked.encode("latin-1")),
                        (b"access-control-max-age", b"600"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


async def _forbid(send: Send, reason: str) -> None:
    body = json.dumps({"detail": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

"""Bounds on what an HTTP request may cost before any route sees it.

* ``BodyLimit`` (ASGI middleware): a body over ``max_message_bytes`` gets 413, from its
  ``Content-Length`` before anything is read, or as soon as a streamed (chunked) body
  passes the limit. A 48 MiB ``POST /step`` used to be read whole and answered 200.
* ``BoundedHttpToolsProtocol`` (uvicorn's HTTP protocol, used by ``sqlenv-server``): a
  request line and headers over ``max_header_bytes`` get 431, and a client that has not
  finished sending them within ``header_timeout_s`` gets 408 and is disconnected, so a
  slowloris client (a byte every few seconds) cannot hold connections forever.
  ``BodyLimit`` also answers 431 for a head over the limit that reached the app by
  another server (``uvicorn sqlenv_server.app:app``), after it was read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "BoundedHttpToolsProtocol", "bounded_http_protocol"]


def _head_size(scope: Scope) -> int:
    size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
    return size + sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """413 for request bodies over ``max_message_bytes``; 431 for heads over ``max_header_bytes``.

    The limits are the running server's settings (``app.state.manager``), read per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = getattr(scope["app"].state, "manager", None) if "app" in scope else None
        if scope["type"] not in ("http", "websocket") or manager is None:
            await self.app(scope, receive, send)
            return
        max_head = manager.settings.max_header_bytes
        if _head_size(scope) > max_head:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1009})
                return
            await _answer(send, 431, f"request headers over {max_head:,} bytes")
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        limit = manager.settings.max_message_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await _answer(send, 413, _too_large(limit))
                    return
        received = 0
        started = refused = False

        async def bounded_receive() -> Message:
            # Past the limit: answer 413 now and tell the route the client has gone (a
            # route's body parser turns any exception into its own 400).
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _answer(send, 413, _too_large(limit))
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 was the answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, bounded_receive, tracking_send)
        except Exception:
            if not refused:
                raise
            # the route saw the disconnect we reported (e.g. Starlette's ClientDisconnect)


def _too_large(limit: int) -> str:
    return f"request body over {limit:,} bytes (the server's max_message_bytes)"


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a dependency of the server
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_LINGER_S = 1.0
"""How long a refused connection's further bytes are read and dropped before it closes."""


if HttpToolsProtocol is not None:

    class BoundedHttpToolsProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
        """uvicorn's httptools protocol with a bound on the request head, in size and time."""

        max_head = 32 << 10
        head_timeout_s = 10.0

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = False
            self._refused = False
            self._head_bytes = 0
            self._head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_late)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if not self._refused and not self.transport.is_closing():
                self._refuse(408, "request headers not received in time")

        def _refuse(self, status: int, message: str) -> None:
            """Answer ``status``, then discard what the client still sends for a moment.

            Closing at once, with the client's bytes unread, would make the kernel reset
            the connection, and a reset can destroy the answer before the client reads it.
            """
            self._disarm()
            self._refused = True
            body = message.encode()
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
                b"content-length: %d\r\nconnection: close\r\n\r\n%s"
                % (status, _REASONS[status], len(body), body)
            )
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self.loop.call_later(_LINGER_S, self.transport.close)
            else:  # pragma: no cover - TLS transports cannot half-close
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._refused or self.transport.is_closing():
                return  # discarded: nothing is kept
            super().data_received(data)
            if self._in_head and not self._refused and not self.transport.is_closing():
                self._head_bytes += len(data)
                if self._head_bytes > self.max_head:
                    self._refuse(431, f"request headers over {self.max_head:,} bytes")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True
            self._head_bytes = 0
            self._arm()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._disarm()
            size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if size > self.max_head:
                self._refuse(431, f"request headers over {self.max_head:,} bytes")
                return
            super().on_headers_complete()

else:  # pragma: no cover
    BoundedHttpToolsProtocol = None  # type: ignore[assignment,misc]


def bounded_http_protocol(max_head: int, head_timeout_s: float) -> type | str:
    """The HTTP protocol class for ``uvicorn.Config(http=...)`` with these bounds."""
    if BoundedHttpToolsProtocol is None:  # pragma: no cover
        return "h11"
    return type(
        "SQLEnvHttpProtocol",
        (BoundedHttpToolsProtocol,),
        {"max_head": max_head, "head_timeout_s": head_timeout_s},
    )

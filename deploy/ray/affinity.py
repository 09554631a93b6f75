"""``SessionAffinityGuard``: a request for a session held by another replica gets a clear error.

Behind Ray Serve (or any balancer without session affinity) the replica that receives an
HTTP or MCP request is picked per request, so a session id opened on one replica often
reaches another. The app alone would answer "unknown or expired session"; this ASGI
wrapper answers first, in the same shapes as the app, and says why and what to do: use
the ``/ws`` WebSocket, whose episode stays on one replica for the connection's life.
Imports nothing from Ray (the replica's name is looked up only inside a replica).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["SessionAffinityGuard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SESSION_HEADER = b"x-sqlenv-session"
MCP_SESSION_HEADER = b"mcp-session-id"
_MCP_INVALID_PARAMS = -32602


def _replica_name() -> str:
    try:
        from ray import serve

        ctx = serve.get_replica_context()
    except Exception:  # no Ray, or outside a replica (tests of the guard)
        return "this replica"
    return f"replica {ctx.replica_id.unique_id} of deployment {ctx.deployment}"


def _wrong_replica(session_id: str) -> str:
    return (
        f"session {session_id!r} is not held by {_replica_name()}: it was opened on another "
        "replica, or it expired. Under Ray Serve with several replicas, HTTP and MCP "
        "sessions are not routed back to the replica that opened them. Use the /ws "
        "WebSocket, whose episode stays on one replica for the connection's life "
        "(sqlenv_client.SQLEnvClient or EnvPool), or serve a single replica."
    )


class SessionAffinityGuard:
    """ASGI wrapper: a request naming a session this replica does not hold gets a clear error.

    The FastAPI app is unchanged and does everything else; its lifespan passes through.
    Checked: ``X-SQLEnv-Session`` (HTTP), ``Mcp-Session-Id`` and ``params.session_id``
    (MCP, JSON-RPC error -32602 as the app's own), ``/ws?session_id=`` (an error frame,
    as the app's own). HTTP answers 404, as the app does for an unknown session.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def _known(self, session_id: str) -> bool:
        manager = getattr(self.app.state, "manager", None)
        return manager is None or manager.get(session_id) is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            await self._websocket(scope, receive, send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        sid = headers.get(SESSION_HEADER) or headers.get(MCP_SESSION_HEADER)
        session_id = sid.decode("latin-1") if sid else None
        path = scope.get("path", "")
        if path.rstrip("/").endswith("/mcp") and scope.get("method") == "POST":
            body, receive = await _buffer(receive)
            request_id, body_sid = _mcp_session(body)
            if (session_id or body_sid) and not self._known(body_sid or session_id or ""):
                error = {
                    "code": _MCP_INVALID_PARAMS,
                    "message": _wrong_replica(body_sid or session_id or ""),
                }
                await _json(send, 200, {"jsonrpc": "2.0", "id": request_id, "error": error})
                return
        elif session_id and not self._known(session_id):
            await _json(send, 404, {"detail": _wrong_replica(session_id)})
            return
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        session_id = next(
            (v for k, _, v in (p.partition("=") for p in query.split("&")) if k == "session_id"),
            None,
        )
        if not session_id or self._known(session_id):
            await self.app(scope, receive, send)
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        frame = {
            "type": "error",
            "data": {"code": "SESSION_ERROR", "message": _wrong_replica(session_id)},
        }
        await send({"type": "websocket.send", "text": json.dumps(frame)})
        await send({"type": "websocket.close", "code": 1000})

    def __getattr__(self, name: str) -> Any:  # Serve and tests may look at the FastAPI app
        return getattr(self.app, name)


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """Read a request body and give back a ``receive`` that replays it to the app."""
    chunks: list[bytes] = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _mcp_session(body: bytes) -> tuple[Any, str | None]:
    """The JSON-RPC id and ``params.session_id`` of an MCP request, when it has them."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None, None  # the app answers the parse error
    if not isinstance(payload, dict):
        return None, None
    params = payload.get("params")
    sid = params.get("session_id") if isinstance(params, dict) else None
    if sid is None and isinstance(params, dict) and isinstance(params.get("arguments"), dict):
        sid = params["arguments"].get("session_id")
    return payload.get("id"), sid if isinstance(sid, str) else None


async def _json(send: Send, status: int, content: dict[str, Any]) -> None:
    body = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

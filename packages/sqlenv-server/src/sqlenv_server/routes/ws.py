"""The ``/ws`` WebSocket: one session per connection, one reply per message, in order.

Messages (OpenEnv §4.2): ``reset`` (optional ``data``: seed, question_id, split, db_id,
difficulty, episode_id, budget), ``step`` (``data`` = the action fields), ``state``,
``close`` and ``mcp`` (``data`` = a JSON-RPC request, answered as ``{"type": "mcp"}``).

Every fault of a message is answered with an error frame and the session carries on:

* not JSON (or nested too deeply), or a binary frame that is not UTF-8: ``INVALID_JSON``;
* ``type`` missing or unknown: ``UNKNOWN_TYPE``;
* not an object, extra top-level keys, ``step`` without ``data``, an invalid action,
  bad reset arguments (``"seed": "abc"``), a message over ``max_message_bytes``:
  ``VALIDATION_ERROR`` with ``errors`` (pydantic's list);
* ``step`` before any ``reset``: ``EXECUTION_ERROR`` with ``error_type: "ResetNeeded"``;
* no question matches a reset's id or filters: ``EXECUTION_ERROR`` with the engine's
  message and ``error_type: "UnknownQuestionError"``;
* the episode's database cannot be opened (deleted or damaged while the server runs):
  ``EXECUTION_ERROR`` with ``error_type: "DataError"`` and a message naming the file.

While a slow QUERY runs in a worker thread the socket is still read: a client that
disconnects gets its query interrupted and its session closed at once, and a message
sent meanwhile is kept (one at most; reading then pauses) and answered after the step.

Only these end the connection (error frame, then close code 1000): ``CAPACITY_REACHED``
at connect; ``SESSION_ERROR`` for ``?session_id=`` naming an unknown session or one that
already has a WebSocket; ``SESSION_ERROR`` when the session is closed under it (idle
timeout, shutdown, ``openenv/session/close``). ``state`` before any reset returns the
blank state, as OpenEnv's fresh environment does; agent mistakes (bad SQL, unknown
table, stepping after the end) are ordinary observations with ``error`` set.

``/ws?session_id=<id>`` joins a session made by ``openenv/session/create`` (OpenEnv 0.10's
MCP clients do this) instead of opening a new one; leaving does not close it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from sqlenv_core.errors import DataError, ResetNeeded, UnknownQuestionError
from sqlenv_core.schemas import PROTOCOL_HEADER, PROTOCOL_VERSION, SQLAction

from .. import jsonsafe
from ..sessions import CapacityError, Session, SessionManager
from ..wire import (
    CAPACITY_REACHED,
    EXECUTION_ERROR,
    FACTORY_ERROR,
    INVALID_JSON,
    PROTOCOL_MISMATCH,
    SESSION_ERROR,
    UNKNOWN_TYPE,
    VALIDATION_ERROR,
    ResetRequest,
    describe_validation,
    error_frame,
    observation_frame,
    state_frame,
    validation_errors,
)
from . import mcp

__all__ = ["router"]

log = logging.getLogger("sqlenv_server.ws")

router = APIRouter()

MESSAGE_TYPES = ("reset", "step", "state", "close", "mcp")
_ENVELOPE_KEYS = frozenset({"type", "data"})
_PROTOCOL = str(PROTOCOL_VERSION).encode()
_RESET_NEEDED = 'No episode in progress: send {"type": "reset"} before "step".'
_EXAMPLE_STEP = '{"type": "step", "data": {"action_type": "QUERY", "argument": "SELECT 1"}}'


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    manager: SessionManager = websocket.app.state.manager
    await websocket.accept(headers=[(PROTOCOL_HEADER.lower().encode(), _PROTOCOL)])
    asked = websocket.headers.get(PROTOCOL_HEADER)
    if asked is not None and asked.strip() != str(PROTOCOL_VERSION):
        await _refuse(
            websocket,
            PROTOCOL_MISMATCH,
            f"this server speaks SQLEnv protocol {PROTOCOL_VERSION}, the client asked for "
            f"{asked.strip()[:20]!r}: install an sqlenv-client that speaks protocol "
            f"{PROTOCOL_VERSION} (docs/releasing.md)",
            server_protocol=PROTOCOL_VERSION,
        )
        return
    attach_to = websocket.query_params.get("session_id")
    if attach_to is not None:
        await _attach(websocket, manager, attach_to)
        return
    try:
        session = manager.open("ws", websocket.client.host if websocket.client else "")
    except CapacityError as exc:
        await _refuse(
            websocket,
            CAPACITY_REACHED,
            str(exc),
            active_sessions=exc.active,
            max_sessions=exc.maximum,
        )
        return
    except Exception:
        log.exception("could not create an environment")
        await _refuse(
            websocket,
            FACTORY_ERROR,
            "Environment factory 'SQLEnvironment' failed to create instance.",
            factory_name="SQLEnvironment",
        )
        return
    try:
        await _Connection(websocket, session, manager).serve()
    finally:
        manager.close(session)


async def _attach(websocket: WebSocket, manager: SessionManager, session_id: str) -> None:
    """Join a session made by ``openenv/session/create`` (OpenEnv 0.10's MCP clients).

    One WebSocket at a time; leaving does not close the session (its owner closes it
    with ``openenv/session/close``, or it is reaped when idle).
    """
    session = manager.get(session_id)
    if session is None or session.kind == "ws":
        await _refuse(websocket, SESSION_ERROR, f"Unknown session_id: {session_id}")
        return
    if session.attached:
        await _refuse(
            websocket, SESSION_ERROR, f"Session {session_id} already has an attached WebSocket"
        )
        return
    session.attached = True
    try:
        await _Connection(websocket, session, manager, shared=True).serve()
    finally:
        session.attached = False
        session.on_expire = None


async def _refuse(websocket: WebSocket, code: str, message: str, **extra: Any) -> None:
    try:
        await websocket.send_text(error_frame(code, message, **extra))
        await websocket.close(1000)
    except Exception:  # the client left first
        pass


class _Connection:
    """The message loop of one WebSocket and its session."""

    __slots__ = (
        "closing",
        "gone",
        "manager",
        "max_chars",
        "pending",
        "session",
        "shared",
        "websocket",
    )

    def __init__(
        self,
        websocket: WebSocket,
        session: Session,
        manager: SessionManager,
        *,
        shared: bool = False,
    ) -> None:
        self.websocket = websocket
        self.session = session
        self.manager = manager
        self.shared = shared  # HTTP MCP calls may act on the session too: take its lock
        self.max_chars = manager.settings.max_message_bytes
        self.closing: asyncio.Task[None] | None = None
        self.pending: dict[str, Any] | None = None  # read while a step ran in a thread
        self.gone = False  # the client disconnected while a step ran in a thread
        session.on_expire = self._expired

    def _expired(self, reason: str) -> None:
        """Called by the reaper or at shutdown: say why, then close the socket."""
        self.closing = asyncio.get_running_loop().create_task(
            _refuse(self.websocket, SESSION_ERROR, f"{reason}; reconnect to start a new session")
        )

    async def serve(self) -> None:
        websocket = self.websocket
        session = self.session
        while True:
            message = self.pending
            if message is None:
                message = await websocket.receive()
            else:
                self.pending = None
            if message["type"] == "websocket.disconnect" or session.closed:
                return
            text = message.get("text")
            if text is None:
                try:
                    text = (message.get("bytes") or b"").decode("utf-8")
                except UnicodeDecodeError:
                    await websocket.send_text(
                        error_frame(INVALID_JSON, "Invalid JSON: a binary frame that is not UTF-8")
                    )
                    continue
            if self.shared:
                async with session.lock:
                    reply = await self.handle(text)
            else:
                reply = await self.handle(text)
            if session.closed or self.gone:  # expired or left while a thread ran the step
                return
            try:
                if reply is None:  # {"type": "close"}
                    await websocket.close(1000)
                    return
                await websocket.send_text(reply)
            except (WebSocketDisconnect, OSError, RuntimeError):
                return  # the client left while its step ran

    async def handle(self, text: str) -> str | None:
        """The reply frame to one text message (None for ``close``)."""
        if len(text) > self.max_chars:
            limit = self.max_chars
            msg = f"Message too large: {len(text):,} characters; the limit is {limit:,}"
            return error_frame(
                VALIDATION_ERROR,
                msg,
                errors=[{"type": "too_large", "loc": [], "msg": msg}],
            )
        try:
            message = jsonsafe.loads(text)  # NaN, Infinity, 1e400: INVALID_JSON saying so
        except ValueError as exc:
            return error_frame(INVALID_JSON, f"Invalid JSON: {exc}")
        except RecursionError:  # "[[[[...": Python's parser recurses once per level
            return error_frame(INVALID_JSON, "Invalid JSON: nested too deeply")
        if type(message) is not dict:
            return _invalid(
                'a message must be a JSON object such as {"type": "state"}',
                [{"type": "dict_type", "loc": [], "msg": "Input should be an object"}],
            )
        kind = message.get("type")
        if kind not in MESSAGE_TYPES:
            known = ", ".join(MESSAGE_TYPES)
            return error_frame(
                UNKNOWN_TYPE, f"Unknown message type: {kind}. Expected one of: {known}"
            )
        if len(message) > 1 and not message.keys() <= _ENVELOPE_KEYS:
            extra = sorted(set(message) - _ENVELOPE_KEYS)
            return _invalid(
                f"unexpected key(s) {', '.join(map(repr, extra))}; a message has only "
                '"type" and "data"',
                [
                    {"type": "extra_forbidden", "loc": [k], "msg": "Extra inputs are not permitted"}
                    for k in extra
                ],
            )
        data = message.get("data")
        try:
            if kind == "step":
                return await self._step(data)
            if kind == "reset":
                return self._reset(data)
            if kind == "state":
                return state_frame(self.manager.state(self.session))
            if kind == "mcp":
                return await self._mcp(data)
            return None  # close
        except Exception as exc:  # a bug, not a client fault: say so, keep serving
            log.exception("%s message failed in %r", kind, self.session)
            return error_frame(EXECUTION_ERROR, f"{type(exc).__name__}: {exc}")

    async def _step(self, data: Any) -> str:
        if type(data) is not dict:
            problem = "missing" if data is None else "dict_type"
            return _invalid(
                f'"step" needs "data" with the action fields, e.g. {_EXAMPLE_STEP}',
                [{"type": problem, "loc": ["data"], "msg": "an object with the action fields"}],
            )
        try:
            action = SQLAction.model_validate(data)
        except ValidationError as exc:
            return error_frame(
                VALIDATION_ERROR,
                describe_validation(exc, "action"),
                errors=validation_errors(exc),
            )
        try:
            obs = await self.manager.step(self.session, action, until_gone=self._until_gone)
        except ResetNeeded:
            return error_frame(EXECUTION_ERROR, _RESET_NEEDED, error_type="ResetNeeded")
        except DataError as exc:
            return _data_error(exc, self.session)
        return observation_frame(obs)

    async def _until_gone(self) -> bool:
        """Read one message while a step runs in a thread; True once the client has gone.

        Any other message is kept in ``pending`` and answered after the step, so replies
        stay in order; the transport stops reading until it is taken.
        """
        try:
            message = await self.websocket.receive()
        except Exception:  # the socket broke under us
            self.gone = True
            return True
        if message["type"] == "websocket.disconnect":
            self.gone = True
            return True
        self.pending = message
        return False

    def _reset(self, data: Any) -> str:
        if data is None:
            data = {}
        elif type(data) is not dict:
            return _invalid(
                '"data" of a reset must be an object, e.g. {"seed": 3, "split": "eval"}',
                [{"type": "dict_type", "loc": ["data"], "msg": "Input should be an object"}],
            )
        try:
            params = ResetRequest.model_validate(data)
        except ValidationError as exc:
            return error_frame(
                VALIDATION_ERROR,
                describe_validation(exc, "reset arguments"),
                errors=validation_errors(exc),
            )
        try:
            obs = self.manager.reset(self.session, params.engine_kwargs())
        except (UnknownQuestionError, ValueError) as exc:
            return error_frame(EXECUTION_ERROR, str(exc), error_type=type(exc).__name__)
        except DataError as exc:
            return _data_error(exc, self.session)
        return observation_frame(obs)

    async def _mcp(self, data: Any) -> str:
        response = await mcp.dispatch(
            self.manager, data, bound=self.session, client=self.session.client
        )
        return jsonsafe.dumps({"type": "mcp", "data": response})


def _data_error(exc: DataError, session: Session) -> str:
    """A database of the episode is gone or damaged: say so; other episodes carry on."""
    log.warning("%r: %s", session, exc)
    return error_frame(EXECUTION_ERROR, str(exc), error_type="DataError")


def _invalid(message: str, errors: list[dict[str, Any]]) -> str:
    return error_frame(VALIDATION_ERROR, f"Invalid message: {message}", errors=errors)

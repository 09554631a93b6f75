"""``POST /mcp``: JSON-RPC 2.0 with SQLEnv's actions as MCP tools, so MCP agents can play.

Methods: ``initialize``, ``ping``, ``tools/list``, ``tools/call``,
``openenv/session/create`` and ``openenv/session/close`` (OpenEnv §3). Tools:
``reset``, ``describe``, ``sample``, ``query``, ``answer`` and ``state``.

Sessions. Each MCP session is an episode stream that takes a slot of the session
cap until it is closed or idle for longer than the idle timeout. A session is:

* created by ``initialize`` (its id comes back in the ``Mcp-Session-Id`` response
  header, the MCP Streamable-HTTP way), by ``openenv/session/create`` (in the result),
  or by a ``reset`` tool call that names no session (in the header and in the
  result's ``structuredContent.session_id``);
* named on later requests by ``params.session_id`` (OpenEnv style) or the
  ``Mcp-Session-Id`` request header;
* closed by ``openenv/session/close`` or ``DELETE /mcp`` with the header.

Over the WebSocket (``{"type": "mcp"}``) the tools act on the connection's own session.

Errors are JSON-RPC errors and the HTTP status is always 200 (202 with no body for a
notification): -32700 parse error, -32600 invalid request, -32601 unknown method,
-32602 invalid params (unknown tool or session, bad arguments, no session), -32603
internal error, -32000 capacity reached (``data: {active_sessions, max_sessions}``).
Agent mistakes (bad SQL, unknown table, stepping before reset) are tool results with
``isError: true``, which MCP hands to the model to read.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlenv_core.errors import DataError, ResetNeeded, UnknownQuestionError
from sqlenv_core.prompting import (
    TOOL_NAMES,
    ToolCallError,
    call_to_action,
    system_prompt,
    tool_result,
    user_message,
)
from sqlenv_core.prompting import TOOLS as PROMPT_TOOLS
from sqlenv_core.schemas import SQLAction, SQLObservation

from .. import __version__
from ..sessions import CapacityError, Session, SessionManager
from ..wire import ResetRequest, validation_errors

__all__ = ["MCP_SESSION_HEADER", "TOOLS", "dispatch", "router"]

log = logging.getLogger("sqlenv_server.mcp")

router = APIRouter()

MCP_SESSION_HEADER = "Mcp-Session-Id"
PROTOCOL_VERSIONS = ("2025-06-18", "2025-03-26", "2024-11-05")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000

class McpError(Exception):
    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


# ------------------------------------------------------------------------ tools
# describe, sample, query and answer are the project's one definition of the agent's
# tools (sqlenv_core.prompting: names, arguments, descriptions, result text), shared
# with the TRL adapter and the SFT data, so an MCP agent sees what a trained model saw.
class ResetArgs(ResetRequest):
    model_config = ConfigDict(extra="forbid")


class StateArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")


_EXTRA_TOOLS: dict[str, tuple[type[BaseModel], str]] = {
    "reset": (
        ResetArgs,
        "Start an episode: returns the question, the database's table names and the step "
        "budget. Pick a question with question_id, or draw one with split (GET /metadata lists them: train, eval, ...), "
        "db_id, difficulty and seed.",
    ),
    "state": (
        StateArgs,
        "The episode's bookkeeping (steps taken, reward so far); uses no step.",
    ),
}


def _tool_list() -> list[dict[str, Any]]:
    tools = []
    for name in ("reset", *TOOL_NAMES, "state"):
        if name in _EXTRA_TOOLS:
            model, description = _EXTRA_TOOLS[name]
            schema = model.model_json_schema()
            schema.pop("title", None)
            schema.pop("description", None)
        else:
            function = next(t["function"] for t in PROMPT_TOOLS if t["function"]["name"] == name)
            description, schema = function["description"], dict(function["parameters"])
        tools.append({"name": name, "description": description, "inputSchema": schema})
    return tools


_TOOL_LIST = _tool_list()
TOOLS: tuple[str, ...] = tuple(t["name"] for t in _TOOL_LIST)


def _tool_result(obs: SQLObservation, session: Session, *, reset: bool = False) -> dict[str, Any]:
    observation = obs.model_dump(mode="json", exclude={"reward", "done"})
    if reset:  # the user message of an episode, as the TRL adapter builds it
        text = user_message(obs.question, obs.db_id, obs.tables, obs.budget_remaining)
    else:
        text = tool_result(obs)
    return {
        "content": [{"type": "text", "text": text}],
        "structuredContent": {
            "observation": observation,
            "reward": obs.reward,
            "done": obs.done,
            "session_id": session.id,
        },
        "isError": bool(obs.error),
    }


def _error_result(message: str, session: Session | None) -> dict[str, Any]:
    return {
        "content": [{"type": "text", "text": f"Error: {message}"}],
        "structuredContent": {"error": message, "session_id": session.id if session else None},
        "isError": True,
    }


# --------------------------------------------------------------------- dispatch
def _session_of(manager: SessionManager, session_id: Any) -> Session:
    if not isinstance(session_id, str):
        raise McpError(INVALID_PARAMS, "session_id must be a string")
    session = manager.get(session_id)
    if session is None or session.kind == "ws":
        raise McpError(
            INVALID_PARAMS,
            f"unknown or expired session_id {session_id!r}; call initialize, "
            "openenv/session/create or the reset tool for a new one",
        )
    return session


def _open(manager: SessionManager) -> Session:
    try:
        return manager.open("mcp")
    except CapacityError as exc:
        raise McpError(
            SERVER_ERROR,
            str(exc),
            {"active_sessions": exc.active, "max_sessions": exc.maximum},
        ) from None


class _Outcome:
    """What the HTTP route needs besides the JSON-RPC response: a session header."""

    __slots__ = ("session_id",)

    def __init__(self) -> None:
        self.session_id: str | None = None


async def dispatch(
    manager: SessionManager,
    payload: Any,
    *,
    header_session: str | None = None,
    bound: Session | None = None,
    outcome: _Outcome | None = None,
) -> dict[str, Any] | None:
    """The JSON-RPC response to ``payload`` (None for a notification over HTTP).

    ``bound`` is the WebSocket's own session, used for every tool call on it.
    """
    request_id: Any = None
    try:
        if not isinstance(payload, dict):
            raise McpError(
                INVALID_REQUEST, "Invalid Request: a JSON-RPC request must be a JSON object"
            )
        candidate = payload.get("id")
        if _valid_id(candidate):
            request_id = candidate
        _check_request(payload)
        method: str = payload["method"]
        params = payload.get("params") or {}
        if not isinstance(params, dict):
            raise McpError(INVALID_PARAMS, "params must be an object")
        result = await _call(manager, method, params, header_session, bound, outcome)
    except McpError as exc:
        error: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.data is not None:
            error["data"] = exc.data
        return {"jsonrpc": "2.0", "id": request_id, "error": error}
    except Exception as exc:
        log.exception("MCP request failed")
        error = {"code": INTERNAL_ERROR, "message": f"Internal error: {type(exc).__name__}: {exc}"}
        return {"jsonrpc": "2.0", "id": request_id, "error": error}
    if "id" not in payload and bound is None:
        return None  # a notification gets no response
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def _check_request(payload: dict[str, Any]) -> None:
    extra = set(payload) - {"jsonrpc", "method", "params", "id"}
    if extra:
        raise McpError(INVALID_REQUEST, f"Invalid Request: unexpected key(s) {sorted(extra)}")
    if payload.get("jsonrpc") != "2.0":
        raise McpError(INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"')
    if not isinstance(payload.get("method"), str):
        raise McpError(INVALID_REQUEST, 'Invalid Request: "method" must be a string')
    if not _valid_id(payload.get("id")):
        raise McpError(
            INVALID_REQUEST, 'Invalid Request: "id" must be a string, an integer or null'
        )


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, str | int) and not isinstance(value, bool))


async def _call(
    manager: SessionManager,
    method: str,
    params: dict[str, Any],
    header_session: str | None,
    bound: Session | None,
    outcome: _Outcome | None,
) -> Any:
    if method == "tools/call":
        return await _tools_call(manager, params, header_session, bound, outcome)
    if method == "tools/list":
        return {"tools": _TOOL_LIST}
    if method == "initialize":
        requested = params.get("protocolVersion")
        version = requested if requested in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
        if bound is None and outcome is not None:
            session = manager.get(header_session) if header_session else None
            if session is None or session.kind == "ws":
                session = _open(manager)
            outcome.session_id = session.id
        return {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "sqlenv", "title": "SQLEnv", "version": __version__},
            "instructions": system_prompt(),
        }
    if method == "ping" or method.startswith("notifications/"):
        return {}
    if method == "openenv/session/create":
        return {"session_id": _open(manager).id}
    if method == "openenv/session/close":
        session = _session_of(manager, params.get("session_id"))
        manager.close(session, reason="the session was closed by openenv/session/close")
        return {"session_id": session.id, "closed": True}
    raise McpError(METHOD_NOT_FOUND, f"Method not found: {method}")


async def _tools_call(
    manager: SessionManager,
    params: dict[str, Any],
    header_session: str | None,
    bound: Session | None,
    outcome: _Outcome | None,
) -> dict[str, Any]:
    name = params.get("name")
    if not isinstance(name, str):
        raise McpError(INVALID_PARAMS, 'tools/call needs "name", one of: ' + ", ".join(TOOLS))
    if name not in TOOLS:
        raise McpError(INVALID_PARAMS, f"Unknown tool: {name!r}; tools are {', '.join(TOOLS)}")
    arguments = params.get("arguments") or {}
    args: BaseModel | SQLAction
    try:
        if name in _EXTRA_TOOLS:
            args = _EXTRA_TOOLS[name][0].model_validate(arguments)
        else:
            args = call_to_action(name, arguments)
    except ValidationError as exc:
        raise McpError(
            INVALID_PARAMS, f"Invalid arguments for {name}", validation_errors(exc)
        ) from None
    except ToolCallError as exc:
        raise McpError(INVALID_PARAMS, f"Invalid arguments for {name}: {exc}") from None

    created = False
    if bound is not None:
        session = bound
    else:
        session_id = params.get("session_id") or header_session
        if session_id:
            session = _session_of(manager, session_id)
        elif name == "reset":
            session, created = _open(manager), True
        else:
            raise McpError(
                INVALID_PARAMS,
                f"no session: call the reset tool first and send its session_id back "
                f"(params.session_id or the {MCP_SESSION_HEADER} header)",
            )
        if outcome is not None:
            outcome.session_id = session.id

    if bound is not None:
        return await _run_tool(manager, session, name, args, created)
    async with session.lock:
        if session.closed:
            raise McpError(INVALID_PARAMS, f"session {session.id!r} was closed")
        return await _run_tool(manager, session, name, args, created)


async def _run_tool(
    manager: SessionManager,
    session: Session,
    name: str,
    args: BaseModel | SQLAction,
    created: bool,
) -> dict[str, Any]:
    if name == "reset":
        assert isinstance(args, ResetArgs)
        try:
            obs = manager.reset(session, args.engine_kwargs())
        except (UnknownQuestionError, ValueError, DataError) as exc:
            if created:
                manager.close(session)
            return _error_result(str(exc), None if created else session)
        return _tool_result(obs, session, reset=True)
    if name == "state":
        state = manager.state(session).model_dump(mode="json")
        return {
            "content": [{"type": "text", "text": json.dumps(state, ensure_ascii=False)}],
            "structuredContent": state,
            "isError": False,
        }
    assert isinstance(args, SQLAction)
    try:
        obs = await manager.step(session, args)
    except ResetNeeded:
        return _error_result("no episode yet: call the reset tool first", session)
    except DataError as exc:  # the episode's database is gone or damaged
        return _error_result(str(exc), session)
    return _tool_result(obs, session)


# ------------------------------------------------------------------------ route
_MCP_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "jsonrpc": {"const": "2.0"},
                        "method": {"type": "string"},
                        "params": {"type": "object"},
                        "id": {"type": ["string", "integer", "null"]},
                    },
                    "required": ["jsonrpc", "method"],
                },
                "example": {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
            }
        },
    }
}


@router.post("/mcp", tags=["mcp"], openapi_extra=_MCP_BODY)
async def mcp_endpoint(
    request: Request,
    mcp_session_id: str | None = Header(default=None, alias=MCP_SESSION_HEADER),
) -> Response:
    """JSON-RPC 2.0 (MCP tools over HTTP). Always HTTP 200; errors are JSON-RPC errors."""
    manager: SessionManager = request.app.state.manager
    body = await request.body()
    if len(body) > manager.settings.max_message_bytes:
        limit = manager.settings.max_message_bytes
        error = {"code": INVALID_REQUEST, "message": f"Request too large: over {limit:,} bytes"}
        return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error})
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        error = {"code": PARSE_ERROR, "message": f"Parse error: {exc}"}
        return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error})
    if isinstance(payload, list):
        error = {"code": INVALID_REQUEST, "message": "Invalid Request: batches are not supported"}
        return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error})
    outcome = _Outcome()
    response = await dispatch(manager, payload, header_session=mcp_session_id, outcome=outcome)
    headers = {MCP_SESSION_HEADER: outcome.session_id} if outcome.session_id else None
    if response is None:
        return Response(status_code=202, headers=headers)
    return JSONResponse(response, headers=headers)


@router.delete(
    "/mcp", tags=["mcp"], responses={404: {"description": "unknown or expired session"}}
)
async def mcp_close(
    request: Request,
    mcp_session_id: str | None = Header(default=None, alias=MCP_SESSION_HEADER),
) -> JSONResponse:
    """End an MCP session (Streamable HTTP's session termination) and free its slot."""
    manager: SessionManager = request.app.state.manager
    session = manager.get(mcp_session_id) if mcp_session_id else None
    if session is None or session.kind == "ws":
        return JSONResponse({"detail": "unknown or expired session"}, status_code=404)
    manager.close(session, reason="the session was closed by DELETE /mcp")
    return JSONResponse({"session_id": session.id, "closed": True})

"""OpenEnv's HTTP routes: discovery (``/health``, ``/metadata``, ``/schema``) and simulation.

``POST /reset``, ``POST /step`` and ``GET /state`` answer OpenEnv's shapes exactly. In
addition ``/reset`` opens an HTTP session and returns its id in the ``X-SQLEnv-Session``
response header and in ``metadata.session_id``; sending that header back makes
``/step`` and ``/state`` act on the episode, so a multi-step episode works over plain
HTTP. Without the header ``/step`` is stateless as in OpenEnv: it answers a
well-formed observation whose ``error`` says how to keep an episode going.
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError, create_model
from sqlenv_core.errors import DataError, ResetNeeded, UnknownQuestionError
from sqlenv_core.schemas import EpisodeState, SQLAction, SQLObservation

from .. import __version__
from ..deps import ManagerDep
from ..jsonsafe import FiniteJSONRoute
from ..sessions import CapacityError, Session, SessionManager
from ..wire import ResetRequest, StepRequest, http_envelope, validation_errors

__all__ = ["SESSION_HEADER", "router"]

SESSION_HEADER = "X-SQLEnv-Session"

router = APIRouter(route_class=FiniteJSONRoute)  # NaN or 1e400 in a body: 422

DESCRIPTION = (
    "Text-to-SQL exploration over real Spider SQLite databases. The agent gets a question "
    "and the table names (the schema is hidden) and plays DESCRIBE table, SAMPLE table, "
    "QUERY sql (one read-only SELECT) and ANSWER value within a step budget. Reward: 1 for "
    "a correct answer (Spider execution match) plus small bounded shaping per step."
)

STATELESS_STEP_HELP = (
    "POST /step without a session is stateless (as in OpenEnv) and has no episode to act "
    f"on. Send back the {SESSION_HEADER} header that POST /reset returned to play a "
    "multi-step episode over HTTP, or use the /ws WebSocket."
)

_JSON = "application/json"

# Documentation only: the routes return pre-serialized bytes.
WireObservation = create_model(
    "WireObservation",
    __doc__="An SQLObservation without reward and done (they sit next to it).",
    **{
        name: (f.annotation, f)
        for name, f in SQLObservation.model_fields.items()
        if name not in ("reward", "done")
    },
)  # type: ignore[call-overload]


class Envelope(BaseModel):
    """OpenEnv 0.10's observation envelope."""

    observation: WireObservation  # type: ignore[valid-type]
    reward: float | None = None
    done: bool = False
    metadata: dict[str, Any] | None = Field(
        default=None, description="holds session_id for HTTP sessions; null when empty"
    )


class HealthResponse(BaseModel):
    status: str = "healthy"


class SplitInfo(BaseModel):
    name: str
    questions: int


class MetadataResponse(BaseModel):
    name: str
    description: str
    readme_content: str | None = None
    version: str
    author: str | None = None
    documentation_url: str | None = None
    splits: list[SplitInfo] = Field(
        default_factory=list, description="the data directory's splits and their sizes"
    )


class SchemaResponse(BaseModel):
    action: dict[str, Any]
    observation: dict[str, Any]
    state: dict[str, Any]
    reset_observation: dict[str, Any]


class StatsResponse(BaseModel):
    active_sessions: int = Field(description="open sessions of every kind")
    max_sessions: int
    sessions_by_kind: dict[str, int] = Field(description="ws, http and mcp")
    busy_sessions: int = Field(description="sessions whose step runs in a worker thread now")
    deferred_steps: int = Field(description="steps moved to a worker thread since start")
    interrupted_steps: int = Field(description="worker-thread steps stopped early (client gone)")
    reaped_sessions: int = Field(description="sessions closed for idleness since start")
    idle_connections: int = Field(description="pooled read-only SQLite connections")
    threads: int = Field(description="threads of the server process")


class SessionClosed(BaseModel):
    session_id: str
    closed: bool


_SESSION_DOC = f"session id from a previous POST /reset ({SESSION_HEADER} response header)"
SessionHeader = Annotated[str | None, Header(alias=SESSION_HEADER, description=_SESSION_DOC)]


def _detail(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": message, **extra}, status_code=status)


def _unknown_session(manager: SessionManager, session_id: str) -> JSONResponse:
    return _detail(
        404,
        f"unknown or expired session {session_id!r}; POST /reset to start a new episode "
        f"(sessions idle for more than {manager.idle_timeout_s:g} s are closed)",
    )


def _lookup(manager: SessionManager, session_id: str) -> Session | None:
    session = manager.get(session_id)
    if session is None or session.kind == "ws":  # a WebSocket's session is its own
        return None
    return session


def _envelope(obs: SQLObservation, session: Session | None = None) -> Response:
    headers = None
    if session is not None:
        obs.metadata["session_id"] = session.id
        headers = {SESSION_HEADER: session.id}
    return Response(http_envelope(obs), media_type=_JSON, headers=headers)


# ------------------------------------------------------------------- discovery
@router.get("/health", response_model=HealthResponse, tags=["discovery"])
async def health() -> Response:
    """Liveness: ``{"status": "healthy"}`` once the dataset is loaded."""
    return Response(b'{"status":"healthy"}', media_type=_JSON)


@router.get("/metadata", response_model=MetadataResponse, tags=["discovery"])
async def metadata(manager: ManagerDep) -> MetadataResponse:
    """Name, description and version of the environment, and its splits with their sizes."""
    ds = manager.dataset
    return MetadataResponse(
        name="SQLEnv",
        description=f"{DESCRIPTION} {len(ds):,} questions over {len(ds.db_ids)} databases.",
        version=__version__,
        author="SQLEnv contributors",
        splits=[SplitInfo(name=name, questions=n) for name, n in ds.split_sizes.items()],
    )


@router.get("/stats", response_model=StatsResponse, tags=["discovery"])
async def stats(manager: ManagerDep) -> JSONResponse:
    """Live counters: open sessions (by kind), busy ones, deferred steps, threads."""
    return JSONResponse(manager.stats())


def _data_unavailable(exc: DataError) -> JSONResponse:
    """503: the episode's database is gone or damaged (other databases still serve)."""
    return _detail(503, str(exc))


@cache
def _schemas() -> dict[str, Any]:
    observation = SQLObservation.model_json_schema()
    return {
        "action": SQLAction.model_json_schema(),
        "observation": observation,
        "state": EpisodeState.model_json_schema(),
        "reset_observation": observation,
    }


@router.get("/schema", response_model=SchemaResponse, tags=["discovery"])
async def schema() -> JSONResponse:
    """JSON Schemas of the action, the observation and the state."""
    return JSONResponse(_schemas())


# ------------------------------------------------------------------ simulation
@router.post(
    "/reset",
    response_model=Envelope,
    tags=["simulation"],
    responses={
        400: {"description": "no question matches the id or filters"},
        503: {"description": "the session table is full, or the question's database is gone"},
    },
)
async def reset(
    manager: ManagerDep,
    http_request: Request,
    request: Annotated[ResetRequest | None, Body()] = None,
    session_id: SessionHeader = None,
) -> Response:
    """Start an episode. The body is optional; every key of it is too.

    The response carries a session id (header ``X-SQLEnv-Session`` and
    ``metadata.session_id``). Send the header back to ``/step`` and ``/state`` to play
    the episode; send it to ``/reset`` to start the next episode in the same session.
    An unknown or expired id gets a new session.
    """
    params = request if request is not None else ResetRequest()
    session = _lookup(manager, session_id) if session_id else None
    created = session is None
    if session is None:
        try:
            client = http_request.client.host if http_request.client else ""
            session = manager.open("http", client)
        except CapacityError as exc:
            return JSONResponse(
                {"detail": str(exc), "active_sessions": exc.active, "max_sessions": exc.maximum},
                status_code=503,
                headers={"Retry-After": "5"},
            )
    async with session.lock:
        try:
            obs = manager.reset(session, params.engine_kwargs())
        except (UnknownQuestionError, ValueError) as exc:
            if created:
                manager.close(session)
            return _detail(400, str(exc))
        except DataError as exc:
            if created:
                manager.close(session)
            return _data_unavailable(exc)
    return _envelope(obs, session)


@router.post(
    "/step",
    response_model=Envelope,
    tags=["simulation"],
    responses={
        404: {"description": "unknown or expired session"},
        422: {"description": "invalid action (errors located relative to the action)"},
        503: {"description": "the episode's database is gone or damaged"},
    },
)
async def step(
    manager: ManagerDep, request: StepRequest, session_id: SessionHeader = None
) -> Response:
    """Apply one action, e.g. ``{"action": {"action_type": "QUERY", "argument": "SELECT 1"}}``.

    With the session header it acts on that session's episode. Without it, it is
    stateless as in OpenEnv: the observation's ``error`` explains how to play.
    """
    try:
        action = SQLAction.model_validate(request.action)
    except ValidationError as exc:
        return JSONResponse({"detail": validation_errors(exc)}, status_code=422)
    if not session_id:
        return _envelope(SQLObservation(error=STATELESS_STEP_HELP))
    session = _lookup(manager, session_id)
    if session is None:
        return _unknown_session(manager, session_id)
    async with session.lock:
        if session.closed:
            return _unknown_session(manager, session_id)
        try:
            obs = await manager.step(session, action)
        except ResetNeeded:
            obs = SQLObservation(error="no episode in this session yet: POST /reset first")
        except DataError as exc:
            return _data_unavailable(exc)
    return _envelope(obs, session)


@router.get(
    "/state",
    response_model=EpisodeState,
    tags=["simulation"],
    responses={404: {"description": "unknown or expired session"}},
)
async def state(manager: ManagerDep, session_id: SessionHeader = None) -> Response:
    """The episode's bookkeeping; gold SQL and rows appear only once it is over.

    Without the session header: the blank state of a fresh environment (OpenEnv).
    """
    if not session_id:
        return Response(EpisodeState().model_dump_json(), media_type=_JSON)
    session = _lookup(manager, session_id)
    if session is None:
        return _unknown_session(manager, session_id)
    async with session.lock:
        return Response(manager.state(session).model_dump_json(), media_type=_JSON)


@router.delete(
    "/session",
    response_model=SessionClosed,
    tags=["simulation"],
    responses={
        400: {"description": "no session header"},
        404: {"description": "unknown or expired session"},
    },
)
async def close_session(manager: ManagerDep, session_id: SessionHeader = None) -> Response:
    """Close an HTTP session now (otherwise it is closed once idle) and free its slot."""
    if not session_id:
        return _detail(400, f"send the {SESSION_HEADER} header of the session to close")
    session = _lookup(manager, session_id)
    if session is None:
        return _unknown_session(manager, session_id)
    manager.close(session, reason="the session was closed by DELETE /session")
    return JSONResponse({"session_id": session.id, "closed": True})

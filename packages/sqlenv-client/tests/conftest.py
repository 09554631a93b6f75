"""Fixtures: a scripted fake OpenEnv server, a fake Docker SDK, and the shared client cases.

The fake server speaks the WebSocket protocol of ``docs/openenv-wire-protocol.md`` §4
with a canned episode (reset gives a question and two tables; DESCRIBE, SAMPLE, QUERY
and ANSWER give canned replies). Tests script it to send error frames, delay replies,
send malformed frames or close the connection. It also answers ``GET /health``.

``CASES`` holds the behaviour both clients must share. ``test_client.py`` and
``test_async_client.py`` each provide an ``open_client`` fixture and run every case.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import pytest
from pydantic import ValidationError
from sqlenv_client import (
    CapacityReachedError,
    ClientClosedError,
    ConnectError,
    ConnectionLostError,
    EpisodeState,
    ExecutionError,
    InvalidActionError,
    ProtocolError,
    ReplyTimeoutError,
    ResultTable,
    ServerError,
    SessionError,
    SQLObservation,
)
from sqlenv_client import (
    SQLAction as ExportedSQLAction,
)
from sqlenv_core.schemas import SQLAction
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

QUESTION = "How many singers do we have?"
DB_ID = "concert_singer"
TABLES = ["singer", "concert"]
BUDGET = 10
CAPACITY_MESSAGE = "Server at capacity: 1/1 sessions active. Cannot accept new connections."

# --- the fake OpenEnv server -----------------------------------------------------------


@dataclass
class Scripted:
    """How the fake server answers the next request instead of its normal reply."""

    reply: str | None = None  # raw text to send; None: the normal reply
    delay_s: float = 0.0
    silent: bool = False  # send nothing
    close_after: bool = False  # then close the connection (code 1000)


@dataclass
class Session:
    """What the fake server saw on one connection."""

    path: str
    headers: dict[str, str]
    frames: list[Any] = field(default_factory=list)  # decoded JSON, or raw text if not JSON
    close_code: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    episode: dict[str, Any] | None = None

    def wait_ended(self, timeout: float = 5.0) -> Session:
        assert self.ended.wait(timeout), "the server still holds the connection"
        return self


class FakeServer:
    """A scripted OpenEnv server on 127.0.0.1 in a background thread."""

    question = QUESTION
    tables = TABLES

    def __init__(self, port: int = 0, *, healthy: bool = True) -> None:
        self.port = port
        self.healthy = healthy
        self.capacity_reached = False
        self.protocol: str | None = None  # the X-SQLEnv-Protocol it answers with, if any
        self.sessions: list[Session] = []
        self._script: collections.deque[Scripted] = collections.deque()
        self._live: set[ServerConnection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # control, from the test thread

    def start(self) -> FakeServer:
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(ready, failure)), name="fake-openenv"
        )
        self._thread.start()
        assert ready.wait(5), "the fake server did not start"
        if failure:
            self._thread.join()
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
            self._loop = None

    def script(
        self,
        reply: str | dict[str, Any] | None = None,
        *,
        delay_s: float = 0.0,
        silent: bool = False,
        close_after: bool = False,
    ) -> None:
        """Answer the next request this way (queued: one entry per request)."""
        text = json.dumps(reply) if isinstance(reply, dict) else reply
        self._script.append(Scripted(text, delay_s, silent, close_after))

    def script_error(self, code: str, message: str, *, close_after: bool = False, **extra: Any):
        self.script(error_frame(code, message, **extra), close_after=close_after)

    def disconnect_all(self) -> None:
        """Close every open connection now, as a restarting server would."""
        assert self._loop is not None

        async def close_all() -> None:
            await asyncio.gather(*(ws.close(1001) for ws in list(self._live)))

        # Not waited for: the close handshake needs the client's side to run too.
        asyncio.run_coroutine_threadsafe(close_all(), self._loop)

    def session(self, index: int = 0, timeout: float = 5.0) -> Session:
        deadline = time.monotonic() + timeout
        while len(self.sessions) <= index:
            assert time.monotonic() < deadline, f"no session #{index} reached the server"
            time.sleep(0.01)
        return self.sessions[index]

    # the server, on its own event loop

    async def _main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            server: Server = await serve(
                self._handle,
                "127.0.0.1",
                self.port,
                process_request=self._process_request,
                process_response=self._process_response,
            )
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stop.wait()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?")[0]
        if path == "/health":
            if self.healthy:
                return connection.respond(HTTPStatus.OK, '{"status":"healthy"}\n')
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "starting\n")
        if path != "/ws":
            return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        if self.protocol is not None and response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            response.headers["X-SQLEnv-Protocol"] = self.protocol
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        session = Session(
            ws.request.path, {k.lower(): v for k, v in ws.request.headers.raw_items()}
        )
        self.sessions.append(session)
        self._live.add(ws)
        try:
            if self.capacity_reached:
                await ws.send(
                    error_frame(
                        "CAPACITY_REACHED", CAPACITY_MESSAGE, active_sessions=1, max_sessions=1
                    )
                )
                await ws.close(1000)
                return
            async for message in ws:
                frame = _decode(message)
                session.frames.append(frame)
                if isinstance(frame, dict) and frame.get("type") == "close":
                    await ws.close(1000)
                    break
                reply, close_after = _reply(session, frame)
                if self._script:
                    scripted = self._script.popleft()
                    await asyncio.sleep(scripted.delay_s)
                    reply = None if scripted.silent else scripted.reply or reply
                    close_after = scripted.close_after
                if reply is not None:
                    await ws.send(reply)
                if close_after:
                    await ws.close(1000)
                    break
        except ConnectionClosed:
            pass
        finally:
            self._live.discard(ws)
            try:
                await ws.wait_closed()
                session.close_code = ws.protocol.close_code  # ws.close_code needs websockets 15
            finally:
                session.ended.set()


def error_frame(code: str, message: str, **extra: Any) -> str:
    return json.dumps({"type": "error", "data": {"message": message, "code": code, **extra}})


def observation_frame(
    fields: dict[str, Any], reward: Any = None, done: bool = False, metadata: Any = None
) -> str:
    data: dict[str, Any] = {"observation": fields, "reward": reward, "done": done}
    if metadata is not None:
        data["metadata"] = metadata
    return json.dumps({"type": "observation", "data": data})


def _decode(message: str | bytes) -> Any:
    try:
        return json.loads(message)
    except ValueError:
        return message


def _reply(session: Session, frame: Any) -> tuple[str | None, bool]:
    """The normal reply to one frame, and whether the server then closes."""
    if not isinstance(frame, dict):
        if isinstance(frame, str):
            return error_frame("INVALID_JSON", f"Invalid JSON: {frame[:40]}"), False
        return error_frame("SESSION_ERROR", "Message must be a JSON object"), True
    kind = frame.get("type")
    if set(frame) - {"type", "data"}:
        return _invalid([{"type": "extra_forbidden", "loc": ["extra"], "msg": "Extra inputs"}])
    if kind == "reset":
        return _reset(session, frame.get("data") or {})
    if kind == "step":
        if "data" not in frame:
            return _invalid([{"type": "missing", "loc": ["data"], "msg": "Field required"}])
        return _step(session, frame["data"])
    if kind == "state":
        if "data" in frame:
            return _invalid([{"type": "extra_forbidden", "loc": ["data"], "msg": "Extra inputs"}])
        return json.dumps({"type": "state", "data": _state(session)}), False
    return error_frame("UNKNOWN_TYPE", f"Unknown message type: {kind}"), False


def _invalid(errors: list[dict[str, Any]]) -> tuple[str, bool]:
    return error_frame("VALIDATION_ERROR", "Invalid message", errors=errors), False


def _observation(session: Session, **fields: Any) -> dict[str, Any]:
    ep = session.episode or {}
    return {
        "metadata": {},
        "question": QUESTION,
        "db_id": DB_ID,
        "tables": TABLES,
        "schema_info": "Tables: singer, concert",
        "result": "",
        "table": None,
        "error": "",
        "step_count": ep.get("step_count", 0),
        "budget_remaining": BUDGET - ep.get("step_count", 0),
        "action_history": list(ep.get("history", [])),
        "reward_breakdown": None,
        **fields,
    }


def _reset(session: Session, params: dict[str, Any]) -> tuple[str, bool]:
    session.episode = {"params": params, "step_count": 0, "history": [], "done": False}
    return observation_frame(_observation(session)), False


def _step(session: Session, data: Any) -> tuple[str, bool]:
    try:
        action = SQLAction.model_validate(data)
    except ValidationError as exc:
        return _invalid(json.loads(exc.json(include_url=False)))
    ep = session.episode
    if ep is None:
        return error_frame("EXECUTION_ERROR", "Call reset() before step()"), False
    if ep["done"]:
        obs = _observation(session, error="the episode is over; call reset()")
        return observation_frame(obs, reward=0, done=True), False
    kind, arg = action.action_type.value, action.argument
    ep["step_count"] += 1
    ep["history"].append(f"{kind} {arg}")
    reward: Any = 0
    extra: dict[str, Any] = {}
    metadata = None
    if kind in {"DESCRIBE", "SAMPLE"} and arg not in TABLES:
        extra["error"] = f"unknown table {arg!r}; tables: {', '.join(TABLES)}"
    elif kind == "DESCRIBE":
        table = {"columns": ["column", "type"], "rows": [["singer_id", "INTEGER"]], "total_rows": 1}
        extra.update(result=f"{arg}: singer_id INTEGER", table=table)
    elif kind == "SAMPLE":
        table = {"columns": ["singer_id"], "rows": [[1], [2]], "total_rows": 6}
        extra.update(result="singer_id\n1\n2", table=table)
    elif kind == "QUERY":
        table = {"columns": ["count(*)"], "rows": [[6]], "total_rows": 1}
        extra.update(result="count(*)\n6", table=table)
        reward = 0.05
    else:  # ANSWER
        correct = arg.strip() == "6"
        ep["done"] = True
        reward = 1 if correct else 0  # an int on purpose: WS frames carry rewards raw
        metadata = {"correct": correct}
        extra["metadata"] = {"correct": correct}
    obs = _observation(session, **extra)
    return observation_frame(obs, reward=reward, done=ep["done"], metadata=metadata), False


def _state(session: Session) -> dict[str, Any]:
    ep = session.episode
    if ep is None:
        return {"episode_id": None, "step_count": 0}
    params = ep["params"]
    return {
        "episode_id": params.get("episode_id", "ep-1"),
        "step_count": ep["step_count"],
        "question_id": params.get("question_id", "q-1"),
        "question": QUESTION,
        "db_id": DB_ID,
        "split": params.get("split", "train"),
        "difficulty": "easy",
        "budget": BUDGET,
        "budget_remaining": BUDGET - ep["step_count"],
        "done": ep["done"],
        "terminated": ep["done"],
        "truncated": False,
        "total_reward": 1.0 if ep["done"] else 0.0,
        "action_history": ep["history"],
        "server_note": "a field this client does not know",
    }


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[FakeServer]:
    fake = FakeServer().start()
    yield fake
    fake.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeContainer:
    """What ``containers.run`` returns: it runs a FakeServer on the published port."""

    LOGS = b"INFO: starting sqlenv-server\nERROR: data directory /app/data is empty\n"

    def __init__(self, mode: str, ports: dict[str, tuple[str, int]]) -> None:
        self.mode = mode
        self.status = "running"
        self.stopped = False
        self.removed = False
        host, port = ports["8000/tcp"]
        assert host == "127.0.0.1"
        self.server: FakeServer | None = None
        if mode in {"healthy", "unhealthy"}:
            self.server = FakeServer(port, healthy=mode == "healthy").start()

    def reload(self) -> None:
        if self.mode == "exits":
            self.status = "exited"

    def logs(self, tail: int = 10) -> bytes:
        return b"\n".join(self.LOGS.splitlines()[-tail:])

    def stop(self, timeout: int = 10) -> None:
        self.stopped = True
        self.status = "exited"
        if self.server is not None:
            self.server.stop()

    def remove(self, force: bool = False) -> None:
        self.removed = True


class FakeDocker:
    """A stand-in for the ``docker`` module: ``docker.from_env().containers.run(...)``."""

    def __init__(self) -> None:
        self.mode = "healthy"
        self.runs: list[tuple[str, dict[str, Any]]] = []
        self.containers: list[FakeContainer] = []
        self.module = types.ModuleType("docker")
        self.module.from_env = lambda: types.SimpleNamespace(  # type: ignore[attr-defined]
            containers=types.SimpleNamespace(run=self._run)
        )

    def _run(self, image: str, **kwargs: Any) -> FakeContainer:
        self.runs.append((image, kwargs))
        container = FakeContainer(self.mode, kwargs["ports"])
        self.containers.append(container)
        return container

    def cleanup(self) -> None:
        for container in self.containers:
            if container.server is not None:
                container.server.stop()


@pytest.fixture
def fake_docker(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDocker]:
    fake = FakeDocker()
    monkeypatch.setitem(sys.modules, "docker", fake.module)
    yield fake
    fake.cleanup()


# --- the cases both clients share ----------------------------------------------------
#
# Each case gets ``open_client(base_url=None, **options)``, which builds an unopened
# client (blocking calls; for the async client every coroutine is run on one event
# loop) and closes it at teardown, and the fake ``server``.

OpenClient = Callable[..., Any]
CASES: list[Callable[[OpenClient, FakeServer], None]] = []


def case(fn: Callable[[OpenClient, FakeServer], None]) -> Callable[[OpenClient, FakeServer], None]:
    CASES.append(fn)
    return fn


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        metafunc.parametrize("case", CASES, ids=[fn.__name__ for fn in CASES])


def idle(client: Any, seconds: float) -> None:
    """Let time pass with the client idle (for the async client: with its loop running)."""
    getattr(client, "idle", time.sleep)(seconds)


def _last_frame(server: FakeServer, index: int = 0) -> Any:
    return server.session(index).frames[-1]


@case
def full_episode(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    obs = client.reset(seed=7, split="eval")
    assert isinstance(obs, SQLObservation)
    assert (obs.question, obs.db_id, obs.tables) == (QUESTION, DB_ID, TABLES)
    assert (obs.done, obs.reward, obs.budget_remaining) == (False, None, BUDGET)
    obs = client.describe("singer")
    assert obs.result.startswith("singer:")
    assert obs.table == ResultTable(
        columns=["column", "type"], rows=[["singer_id", "INTEGER"]], total_rows=1
    )
    obs = client.query("SELECT count(*) FROM singer")
    assert obs.table is not None and obs.table.rows == [[6]]
    assert obs.reward == 0.05
    obs = client.answer(6)
    assert obs.done is True and obs.reward == 1.0 and type(obs.reward) is float
    assert obs.metadata == {"correct": True}
    assert obs.step_count == 3 and obs.budget_remaining == BUDGET - 3
    state = client.state()
    assert isinstance(state, EpisodeState)
    assert (state.done, state.step_count, state.split, state.total_reward) == (True, 3, "eval", 1)
    assert server.session().frames == [
        {"type": "reset", "data": {"seed": 7, "split": "eval"}},
        {"type": "step", "data": {"action_type": "DESCRIBE", "argument": "singer"}},
        {
            "type": "step",
            "data": {"action_type": "QUERY", "argument": "SELECT count(*) FROM singer"},
        },
        {"type": "step", "data": {"action_type": "ANSWER", "argument": "6"}},
        {"type": "state"},
    ]


@case
def reset_sends_only_the_arguments_given(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    client.reset()
    assert _last_frame(server) == {"type": "reset", "data": {}}
    client.reset(
        3,
        "q-9",
        split="train",
        db_id="concert_singer",
        difficulty="hard",
        episode_id="e1",
        budget=5,
    )
    assert _last_frame(server)["data"] == {
        "seed": 3,
        "question_id": "q-9",
        "split": "train",
        "db_id": "concert_singer",
        "difficulty": "hard",
        "episode_id": "e1",
        "budget": 5,
    }
    client.reset(seed=0)  # 0 is a value, not "not given"
    assert _last_frame(server)["data"] == {"seed": 0}


@case
def step_takes_an_action_or_a_mapping(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    client.reset()
    client.step(ExportedSQLAction(action_type="SAMPLE", argument="singer"))
    assert _last_frame(server)["data"] == {"action_type": "SAMPLE", "argument": "singer"}
    obs = client.step({"action_type": "describe", "argument": "concert"})  # any case
    assert _last_frame(server)["data"] == {"action_type": "DESCRIBE", "argument": "concert"}
    assert obs.error == "" and obs.step_count == 2
    client.step(SQLAction(action_type="QUERY", argument="SELECT 1", metadata={"trace": "t1"}))
    assert _last_frame(server)["data"] == {
        "action_type": "QUERY",
        "argument": "SELECT 1",
        "metadata": {"trace": "t1"},
    }


@case
def an_invalid_action_is_refused_before_sending(open_client: OpenClient, server: FakeServer):
    client = open_client()
    client.reset()
    with pytest.raises(ValidationError, match="unknown action_type"):
        client.step({"action_type": "DROP", "argument": "singer"})
    with pytest.raises(ValidationError):
        client.step({"action_type": "QUERY", "sql": "SELECT 1"})
    assert len(server.session().frames) == 1  # only the reset
    assert client.describe("singer").result  # still usable


@case
def shortcuts_send_the_four_actions(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    client.reset()
    assert client.describe("singer").table is not None
    assert client.sample("singer").table is not None
    assert client.query("SELECT 1").table is not None
    assert client.answer("6").done
    sent = [frame["data"] for frame in server.session().frames[1:]]
    assert sent == [
        {"action_type": "DESCRIBE", "argument": "singer"},
        {"action_type": "SAMPLE", "argument": "singer"},
        {"action_type": "QUERY", "argument": "SELECT 1"},
        {"action_type": "ANSWER", "argument": "6"},
    ]


@case
def answer_sends_non_strings_as_json(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    for value, text in [
        ("Paris, France", "Paris, France"),
        (6, "6"),
        (2.5, "2.5"),
        (None, "null"),
        ([["Zoë", 3], ["Ann", None]], '[["Zoë", 3], ["Ann", null]]'),
        ([1, 2], "[1, 2]"),
    ]:
        client.reset()
        obs = client.answer(value)
        assert _last_frame(server)["data"] == {"action_type": "ANSWER", "argument": text}
        assert obs.done
    with pytest.raises(TypeError):
        client.answer({1, 2})  # not JSON-serialisable


@case
def unknown_table_is_an_observation_not_an_error(open_client: OpenClient, server: FakeServer):
    client = open_client()
    client.reset()
    obs = client.describe("singers")
    assert "unknown table 'singers'" in obs.error and not obs.done


@case
def state_sends_no_data_and_keeps_extra_fields(open_client: OpenClient, server: FakeServer):
    client = open_client()
    client.reset(episode_id="run-1", question_id="q-42")
    state = client.state()
    assert _last_frame(server) == {"type": "state"}
    assert (state.episode_id, state.question_id, state.step_count) == ("run-1", "q-42", 0)
    assert state.model_extra == {"server_note": "a field this client does not know"}


@case
def reward_is_cast_to_float(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    for raw, expected in [(0, 0.0), (1, 1.0), (True, 1.0), (False, 0.0), (-0.5, -0.5)]:
        server.script(observation_frame(_observation(Session("/ws", {})), reward=raw))
        obs = client.reset()
        assert obs.reward == expected and type(obs.reward) is float
    server.script(observation_frame(_observation(Session("/ws", {})), reward=None))
    assert client.reset().reward is None


@case
def metadata_is_read_from_both_places(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    fields = _observation(Session("/ws", {}))
    del fields["metadata"]  # openenv-core 0.3: no metadata anywhere
    server.script(observation_frame(fields))
    assert client.reset().metadata == {}
    server.script(observation_frame(fields, metadata={"k": "top"}))
    assert client.reset().metadata == {"k": "top"}
    server.script(observation_frame({**fields, "metadata": {"k": "in"}}, metadata={"k": "in"}))
    assert client.reset().metadata == {"k": "in"}


@case
def unknown_observation_fields_are_ignored(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    fields = {**_observation(Session("/ws", {})), "hint": "a newer server's field"}
    server.script(observation_frame(fields))
    assert client.reset().question == QUESTION


@case
def step_before_reset_is_an_execution_error(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    with pytest.raises(ExecutionError, match=r"Call reset\(\) before step\(\)") as info:
        client.describe("singer")
    assert info.value.code == "EXECUTION_ERROR"
    assert not client.is_closed
    assert client.reset().question == QUESTION  # the session goes on, replies still paired


# One case per error code: (code, exception, extra keys, does the server close after it).
ERROR_CODES: list[tuple[str, type[ServerError], dict[str, Any], bool]] = [
    ("INVALID_JSON", ServerError, {}, False),
    ("UNKNOWN_TYPE", ServerError, {}, False),
    (
        "VALIDATION_ERROR",
        InvalidActionError,
        {"errors": [{"loc": ["argument"], "msg": "bad"}]},
        False,
    ),
    ("EXECUTION_ERROR", ExecutionError, {}, False),
    ("RESET_NEEDED", ServerError, {}, False),  # a code this client does not know
    ("CAPACITY_REACHED", CapacityReachedError, {"active_sessions": 4, "max_sessions": 4}, True),
    ("FACTORY_ERROR", SessionError, {"factory_name": "SQLEnvironment"}, True),
    ("SESSION_ERROR", SessionError, {}, True),
]


def _error_case(code: str, exc_type: type[ServerError], extra: dict[str, Any], closes: bool):
    def error_frame_is_raised(open_client: OpenClient, server: FakeServer) -> None:
        client = open_client()
        client.reset()
        message = f"the server says no ({code.lower()})"
        server.script_error(code, message, close_after=closes, **extra)
        with pytest.raises(exc_type) as info:
            client.query("SELECT 1")
        error = info.value
        assert type(error) is exc_type
        assert (error.code, error.message) == (code, message)
        assert message in str(error) and code in str(error)
        assert error.data == {"message": message, "code": code, **extra}
        assert client.is_closed is closes
        if closes:
            with pytest.raises(ClientClosedError, match=code):
                client.state()
            server.session().wait_ended()
        else:
            assert client.query("SELECT 1").table is not None

    error_frame_is_raised.__name__ = f"error_frame_{code}"
    return error_frame_is_raised


for _code, _exc, _extra, _closes in ERROR_CODES:
    case(_error_case(_code, _exc, _extra, _closes))


@case
def capacity_reached_on_connect(open_client: OpenClient, server: FakeServer) -> None:
    server.capacity_reached = True
    client = open_client()
    with pytest.raises(CapacityReachedError, match="Server at capacity") as info:
        client.reset()
    assert (info.value.active_sessions, info.value.max_sessions) == (1, 1)
    assert client.is_closed
    with pytest.raises(ClientClosedError, match="CAPACITY_REACHED"):
        client.reset()


@case
def capacity_reached_read_after_the_server_closed(open_client: OpenClient, server: FakeServer):
    # The error frame and the close arrive before the first request is even sent.
    server.capacity_reached = True
    client = open_client()
    client.connect()
    idle(client, 0.2)  # the client's side sees the error frame and the close
    server.session().wait_ended()
    with pytest.raises(CapacityReachedError, match="Server at capacity"):
        client.state()
    assert client.is_closed


@case
def invalid_json_reply_is_a_protocol_error(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    client.reset()
    server.script("{not json")
    with pytest.raises(ProtocolError, match="not valid JSON"):
        client.describe("singer")
    assert client.is_closed
    with pytest.raises(ClientClosedError, match="ProtocolError"):
        client.describe("singer")
    assert server.session().wait_ended().close_code == 1000


@case
def malformed_replies_are_protocol_errors(open_client: OpenClient, server: FakeServer) -> None:
    fields = _observation(Session("/ws", {}))
    for reply, match in [
        ("[1, 2]", "not a JSON object"),
        (json.dumps({"type": "state", "data": {}}), "expected a 'observation' reply"),
        (json.dumps({"type": "observation"}), "no data object"),
        (json.dumps({"type": "observation", "data": {"reward": 1}}), "no observation object"),
        (observation_frame({**fields, "tables": "singer"}), "does not match SQLObservation"),
        (observation_frame(fields, reward="lots"), "reward is not a number"),
    ]:
        client = open_client()
        server.script(reply)
        with pytest.raises(ProtocolError, match=match):
            client.reset()
        assert client.is_closed


@case
def reply_timeout_drops_the_socket(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client(reply_timeout_s=0.2)
    client.reset()
    server.script(delay_s=0.6)
    started = time.monotonic()
    with pytest.raises(ReplyTimeoutError, match=r"no reply from ws://127\.0\.0\.1:\d+/ws within"):
        client.describe("singer")
    assert time.monotonic() - started < 0.5  # it did not wait for the late reply
    assert client.is_closed
    with pytest.raises(ClientClosedError, match="no reply"):
        client.describe("singer")
    server.session().wait_ended()  # the socket was closed, not kept for reuse


@case
def reply_timeout_is_a_timeout_error(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client(reply_timeout_s=0.1)
    server.script(silent=True)
    with pytest.raises(TimeoutError):
        client.reset()


@case
def server_closing_without_reply_is_connection_lost(open_client: OpenClient, server: FakeServer):
    client = open_client()
    client.reset()
    server.script(silent=True, close_after=True)
    with pytest.raises(ConnectionLostError, match="was closed"):
        client.describe("singer")
    assert client.is_closed
    with pytest.raises(ClientClosedError, match="ConnectionLostError"):
        client.reset()


@case
def server_dropping_an_idle_connection_is_connection_lost(open_client: OpenClient, server):
    client = open_client()
    client.reset()
    server.disconnect_all()
    idle(client, 0.2)
    server.session().wait_ended()
    with pytest.raises(ConnectionLostError):
        client.describe("singer")
    assert client.is_closed


@case
def reply_over_max_message_size_is_a_protocol_error(open_client: OpenClient, server):
    client = open_client(max_message_size=2_000)
    client.reset()
    server.script(observation_frame(_observation(Session("/ws", {}), result="x" * 5_000)))
    with pytest.raises(ProtocolError, match="max_message_size"):
        client.describe("singer")
    assert client.is_closed


@case
def connection_refused_is_a_connect_error(open_client: OpenClient, server: FakeServer) -> None:
    port = free_port()
    client = open_client(f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectError, match=f"ws://127.0.0.1:{port}/ws") as info:
        client.reset()
    assert info.value.url == f"ws://127.0.0.1:{port}/ws"
    assert not client.is_closed  # nothing was opened: the next call tries again
    with pytest.raises(ConnectError):
        client.connect()


@case
def connect_timeout_is_a_connect_error(open_client: OpenClient, server: FakeServer) -> None:
    with socket.socket() as sock:  # accepts TCP connections, never answers the handshake
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        client = open_client(f"http://127.0.0.1:{sock.getsockname()[1]}", connect_timeout_s=0.3)
        started = time.monotonic()
        with pytest.raises(ConnectError, match=r"timed out after 0\.3 s connecting to ws://"):
            client.connect()
        assert time.monotonic() - started < 2
        assert not client.is_closed


@case
def rejected_handshake_is_a_connect_error(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client(f"ws://127.0.0.1:{server.port}/not-here")
    with pytest.raises(ConnectError, match=r"not-here.*404"):
        client.connect()


@case
def connect_error_then_success(open_client: OpenClient, server: FakeServer) -> None:
    # A client created before its server is up works once the server answers.
    port = free_port()
    client = open_client(f"http://127.0.0.1:{port}")
    with pytest.raises(ConnectError):
        client.connect()
    late = FakeServer(port).start()
    try:
        assert client.reset().question == QUESTION
    finally:
        client.close()
        late.stop()


@case
def connect_is_lazy_and_idempotent(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    time.sleep(0.05)
    assert server.sessions == []
    assert client.connect() is not None
    client.connect()
    client.reset()
    assert len(server.sessions) == 1


@case
def close_ends_the_session_and_forbids_reuse(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    client.reset()
    client.close()
    session = server.session().wait_ended()
    assert session.frames[-1] == {"type": "close"}
    assert session.close_code == 1000
    assert client.is_closed
    client.close()  # idempotent
    for call in (client.reset, client.state, client.connect, lambda: client.describe("singer")):
        with pytest.raises(ClientClosedError, match="is closed; create a new client"):
            call()
    with pytest.raises(RuntimeError):  # ClientClosedError is a RuntimeError
        client.reset()


@case
def closing_an_unopened_client_opens_nothing(open_client: OpenClient, server: FakeServer) -> None:
    client = open_client()
    client.close()
    with pytest.raises(ClientClosedError):
        client.reset()
    time.sleep(0.05)
    assert server.sessions == []


@case
def compression_is_off_by_default(open_client: OpenClient, server: FakeServer) -> None:
    open_client().connect()
    assert "sec-websocket-extensions" not in server.session(0).headers
    client = open_client(compression="deflate")
    client.connect()
    assert "permessage-deflate" in server.session(1).headers["sec-websocket-extensions"]
    assert client.reset().question == QUESTION


@case
def headers_are_sent_with_the_handshake(open_client: OpenClient, server: FakeServer) -> None:
    open_client(headers={"Authorization": "Bearer hf_token"}).connect()
    assert server.session().headers["authorization"] == "Bearer hf_token"


@case
def a_proxy_in_the_environment_is_not_used_for_loopback(open_client: OpenClient, server):
    mp = pytest.MonkeyPatch()
    try:  # a proxy that refuses every connection
        mp.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
        mp.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
        mp.delenv("NO_PROXY", raising=False)
        mp.delenv("no_proxy", raising=False)
        assert open_client().reset().question == QUESTION
    finally:
        mp.undo()


@case
def base_url_forms_reach_the_ws_route(open_client: OpenClient, server: FakeServer) -> None:
    port = server.port
    for url in (
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{port}/",
        f"ws://127.0.0.1:{port}",
        f"ws://127.0.0.1:{port}/ws",
    ):
        client = open_client(url)
        assert client.url == f"ws://127.0.0.1:{port}/ws"
        assert client.reset().question == QUESTION
    assert [s.path for s in server.sessions] == ["/ws"] * 4

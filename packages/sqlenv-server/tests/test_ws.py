"""WebSocket contract tests: raw frames, every error path, capacity, reaping.

After each error the test checks that the same connection still plays, which is the
promise: a bad message gets an error frame and the session carries on.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

ENVELOPE_KEYS = {"observation", "reward", "done"}


def send(ws: Any, message: Any) -> dict[str, Any]:
    ws.send_text(message if isinstance(message, str) else json.dumps(message))
    return json.loads(ws.receive_text())


def reset(ws: Any, **data: Any) -> dict[str, Any]:
    frame = send(ws, {"type": "reset", "data": data})
    assert frame["type"] == "observation", frame
    return frame["data"]


def step(ws: Any, action_type: str, argument: str = "") -> dict[str, Any]:
    frame = send(ws, {"type": "step", "data": {"action_type": action_type, "argument": argument}})
    assert frame["type"] == "observation", frame
    return frame["data"]


def error(frame: dict[str, Any], code: str) -> dict[str, Any]:
    assert frame["type"] == "error", frame
    assert frame["data"]["code"] == code, frame
    assert isinstance(frame["data"]["message"], str) and frame["data"]["message"]
    return frame["data"]


def still_plays(ws: Any) -> None:
    data = reset(ws, question_id="t_count")
    assert data["observation"]["question"] == "How many customers are there?"
    assert step(ws, "QUERY", "SELECT count(*) FROM customer")["observation"]["table"]["rows"] == [
        [3]
    ]


def closed_with_1000(ws: Any) -> None:
    message = ws.receive()
    assert message["type"] == "websocket.close" and message.get("code", 1000) == 1000


# ------------------------------------------------------------------ happy path
def test_episode_frames(client: Any) -> None:
    with client.websocket_connect("/ws") as ws:
        data = reset(ws, question_id="t_count")
        assert set(data) == ENVELOPE_KEYS  # metadata only when non-empty (0.10 WS)
        assert data["reward"] is None and data["done"] is False
        obs = data["observation"]
        assert obs["metadata"] == {} and "reward" not in obs and "done" not in obs
        assert obs["tables"] == ["customer", "orders"] and obs["budget_remaining"] == 15

        data = step(ws, "describe", "CUSTOMER")  # type and table name in any case
        assert "Table customer" in data["observation"]["result"]
        assert data["reward"] == pytest.approx(0.01)

        state = send(ws, {"type": "state"})
        assert state["type"] == "state"
        assert state["data"]["question_id"] == "t_count" and state["data"]["step_count"] == 1
        assert state["data"]["gold_sql"] is None

        data = step(ws, "ANSWER", "3")
        assert data["done"] is True and data["reward"] == pytest.approx(1.0)
        state = send(ws, {"type": "state"})["data"]
        assert state["correct"] is True and state["gold_rows"] == [[3]]

        # step after done: an observation with error, the episode unchanged
        data = step(ws, "QUERY", "SELECT 1")
        assert data["done"] is True and "over" in data["observation"]["error"]
        assert data["observation"]["step_count"] == 2

        ws.send_text(json.dumps({"type": "close"}))
        closed_with_1000(ws)


def test_reset_arguments(client: Any) -> None:
    with client.websocket_connect("/ws") as ws:
        a = reset(ws, seed=3, split="train")["observation"]["question"]
        b = reset(ws, seed=3, split="train", unknown_key="ignored")["observation"]["question"]
        assert a == b
        data = reset(ws, db_id="zoo", difficulty="medium", budget=4, episode_id="ep-1")
        assert data["observation"]["question"] == "Which keepers look after a lion?"
        assert data["observation"]["budget_remaining"] == 4
        assert send(ws, {"type": "state"})["data"]["episode_id"] == "ep-1"
        assert send(ws, {"type": "reset"})["type"] == "observation"  # data is optional


def test_budget_runs_out(client: Any) -> None:
    with client.websocket_connect("/ws") as ws:
        reset(ws, question_id="t_count", budget=2)
        assert step(ws, "SAMPLE", "customer")["done"] is False
        data = step(ws, "SAMPLE", "orders")
        assert data["done"] is True and "Budget exhausted" in data["observation"]["result"]
        assert send(ws, {"type": "state"})["data"]["truncated"] is True


# ----------------------------------------------------------------- error paths
def test_invalid_json(client: Any) -> None:
    with client.websocket_connect("/ws") as ws:
        data = error(send(ws, "{not json"), "INVALID_JSON")
        assert data["message"].startswith("Invalid JSON:")
        ws.send_bytes(b"\xff\xfe")
        error(json.loads(ws.receive_text()), "INVALID_JSON")
        still_plays(ws)


def test_binary_frames_with_json_are_accepted(client: Any) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_bytes(json.dumps({"type": "reset", "data": {"question_id": "t_count"}}).encode())
        assert json.loads(ws.receive_text())["type"] == "observation"


@pytest.mark.parametrize("message", [{"type": "dance"}, {"data": {}}, {"type": None}])
def test_unknown_type(client: Any, message: dict[str, Any]) -> None:
    with client.websocket_connect("/ws") as ws:
        data = error(send(ws, message), "UNKNOWN_TYPE")
        assert data["message"].startswith("Unknown message type:")
        assert "reset, step, state, close" in data["message"]
        still_plays(ws)


@pytest.mark.parametrize(
    "message",
    [
        [1, 2],
        "3",
        {"type": "step"},
        {"type": "step", "data": "QUERY SELECT 1"},
        {"type": "step", "action": {"action_type": "QUERY"}},
        {"type": "reset", "data": [1]},
    ],
)
def test_malformed_messages(client: Any, message: Any) -> None:
    with client.websocket_connect("/ws") as ws:
        reset(ws, question_id="t_count")
        data = error(send(ws, message), "VALIDATION_ERROR")
        assert data["message"].startswith("Invalid message:")
        assert isinstance(data["errors"], list) and data["errors"]
        still_plays(ws)


@pytest.mark.parametrize(
    ("action", "needle"),
    [
        ({"action_type": "SELECT", "argument": "x"}, "DESCRIBE, SAMPLE, QUERY, ANSWER"),
        ({"argument": "x"}, "action_type"),
        ({"action_type": "QUERY", "sql": "SELECT 1"}, "sql"),
        ({"action_type": "QUERY", "argument": 5}, "argument"),
    ],
)
def test_invalid_action(client: Any, action: dict[str, Any], needle: str) -> None:
    with client.websocket_connect("/ws") as ws:
        reset(ws, question_id="t_count")
        data = error(send(ws, {"type": "step", "data": action}), "VALIDATION_ERROR")
        assert data["message"].startswith("Invalid action:") and needle in data["message"]
        assert data["errors"][0]["loc"]
        # the episode did not move
        assert send(ws, {"type": "state"})["data"]["step_count"] == 0
        still_plays(ws)


@pytest.mark.parametrize(
    "data",
    [{"seed": "abc"}, {"seed": -1}, {"budget": 0}, {"question_id": 5}, {"episode_id": "x" * 300}],
)
def test_reset_with_wrong_types(client: Any, data: dict[str, Any]) -> None:
    with client.websocket_connect("/ws") as ws:
        frame = error(send(ws, {"type": "reset", "data": data}), "VALIDATION_ERROR")
        assert frame["message"].startswith("Invalid reset arguments:")
        still_plays(ws)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"question_id": "nope"}, "unknown question_id 'nope'"),
        ({"split": "test"}, "splits are eval, train"),
        ({"db_id": "shop", "difficulty": "extra"}, "no question matches"),
    ],
)
def test_reset_without_a_match(client: Any, data: dict[str, Any], needle: str) -> None:
    with client.websocket_connect("/ws") as ws:
        frame = error(send(ws, {"type": "reset", "data": data}), "EXECUTION_ERROR")
        assert needle in frame["message"]
        still_plays(ws)


def test_step_before_reset(client: Any) -> None:
    with client.websocket_connect("/ws") as ws:
        data = error(
            send(ws, {"type": "step", "data": {"action_type": "QUERY", "argument": "SELECT 1"}}),
            "EXECUTION_ERROR",
        )
        assert data["error_type"] == "ResetNeeded" and "reset" in data["message"]
        # state before reset: the blank state, as OpenEnv's fresh environment
        state = send(ws, {"type": "state"})
        assert state["type"] == "state" and state["data"]["episode_id"] is None
        still_plays(ws)


def test_oversized_message(make_client: Any) -> None:
    client = make_client(max_message_bytes=4096)
    with client.websocket_connect("/ws") as ws:
        reset(ws, question_id="t_count")
        big = {
            "type": "step",
            "data": {"action_type": "QUERY", "argument": "SELECT 1" + " " * 5000},
        }
        data = error(send(ws, big), "VALIDATION_ERROR")
        assert "too large" in data["message"] and "4,096" in data["message"]
        still_plays(ws)


def test_agent_mistakes_are_observations(client: Any) -> None:
    with client.websocket_connect("/ws") as ws:
        reset(ws, question_id="t_count")
        assert "read-only" in step(ws, "QUERY", "DELETE FROM customer")["observation"]["error"]
        assert "no such table" in step(ws, "SAMPLE", "nope")["observation"]["error"]
        assert "syntax error" in step(ws, "QUERY", "SELEC 1")["observation"]["error"]
        assert step(ws, "QUERY", "SELECT count(*) FROM customer")["observation"]["error"] == ""


# -------------------------------------------------------------- session limits
def test_capacity_reached(make_client: Any) -> None:
    client = make_client(max_sessions=2)
    with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
        reset(a, question_id="t_count")
        reset(b, question_id="e_lions")
        with client.websocket_connect("/ws") as c:
            data = error(json.loads(c.receive_text()), "CAPACITY_REACHED")
            assert data["active_sessions"] == 2 and data["max_sessions"] == 2
            assert data["message"].startswith(  # OpenEnv's words, then when slots free up
                "Server at capacity: 2/2 sessions active. Cannot accept new connections. "
                "Sessions are closed after 600 s without an action"
            )
            closed_with_1000(c)
        # HTTP sessions share the cap
        assert client.post("/reset", json={}).status_code == 503
        still_plays(a)
    # closing the sockets freed both slots
    with client.websocket_connect("/ws") as d:
        still_plays(d)


def test_idle_session_is_reaped_and_told(make_client: Any) -> None:
    client = make_client(idle_timeout_s=0.2)
    manager = client.app.state.manager
    with client.websocket_connect("/ws") as ws:
        reset(ws, question_id="t_count")
        deadline = time.monotonic() + 5
        while manager.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert manager.active == 0
        data = error(json.loads(ws.receive_text()), "SESSION_ERROR")
        assert "without activity" in data["message"]
        closed_with_1000(ws)
    with client.websocket_connect("/ws") as ws:  # the server carries on
        still_plays(ws)


def test_attach_to_an_mcp_session(client: Any) -> None:
    """OpenEnv 0.10's MCP clients create a session over HTTP, then join it with /ws."""
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create", "params": {}}
    session = client.post("/mcp", json=rpc).json()["result"]["session_id"]
    with client.websocket_connect(f"/ws?session_id={session}") as ws:
        reset(ws, question_id="t_count")
        # a second WebSocket may not join the same session
        with client.websocket_connect(f"/ws?session_id={session}") as other:
            data = error(json.loads(other.receive_text()), "SESSION_ERROR")
            assert "already has an attached WebSocket" in data["message"]
            closed_with_1000(other)
        # HTTP MCP calls act on the same episode
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "query", "session_id": session,
                           "arguments": {"sql": "SELECT count(*) FROM customer"}}}  # fmt: skip
        result = client.post("/mcp", json=call).json()["result"]
        assert result["structuredContent"]["observation"]["step_count"] == 1
        assert step(ws, "ANSWER", "3")["observation"]["step_count"] == 2
        ws.send_text(json.dumps({"type": "close"}))
        closed_with_1000(ws)
    # leaving did not close the session: join again, then close it under the socket
    with client.websocket_connect(f"/ws?session_id={session}") as ws:
        assert send(ws, {"type": "state"})["data"]["step_count"] == 2
        rpc = {"jsonrpc": "2.0", "id": 3, "method": "openenv/session/close",
               "params": {"session_id": session}}  # fmt: skip
        assert client.post("/mcp", json=rpc).json()["result"]["closed"] is True
        data = error(json.loads(ws.receive_text()), "SESSION_ERROR")
        assert "openenv/session/close" in data["message"]
        closed_with_1000(ws)


def test_attach_to_an_unknown_session_is_refused(client: Any) -> None:
    with client.websocket_connect("/ws?session_id=abc") as ws:
        data = error(json.loads(ws.receive_text()), "SESSION_ERROR")
        assert data["message"] == "Unknown session_id: abc"
        closed_with_1000(ws)


def test_mcp_over_websocket(client: Any) -> None:
    with client.websocket_connect("/ws") as ws:
        request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        frame = send(ws, {"type": "mcp", "data": request})
        assert frame["type"] == "mcp" and frame["data"]["id"] == 1
        assert "reset" not in [t["name"] for t in frame["data"]["result"]["tools"]]
        reset(ws, question_id="t_count")
        # the tools act on this connection's session
        request = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "query", "arguments": {"sql": "SELECT count(*) FROM customer"}}}  # fmt: skip
        result = send(ws, {"type": "mcp", "data": request})["data"]["result"]
        assert result["structuredContent"]["observation"]["table"]["rows"] == [[3]]
        assert send(ws, {"type": "state"})["data"]["step_count"] == 1


# ------------------------------------------------------------------ protocol version
def test_the_handshake_says_which_protocol_the_server_speaks(client: Any) -> None:
    from sqlenv_core.schemas import PROTOCOL_HEADER, PROTOCOL_VERSION

    with client.websocket_connect("/ws", headers={PROTOCOL_HEADER: "1"}) as ws:
        headers = {bytes(k).decode().lower(): bytes(v).decode() for k, v in ws.extra_headers}
        assert headers[PROTOCOL_HEADER.lower()] == str(PROTOCOL_VERSION)
        still_plays(ws)


def test_a_client_of_another_protocol_is_refused_with_what_to_do(client: Any) -> None:
    with client.websocket_connect("/ws", headers={"X-SQLEnv-Protocol": "7"}) as ws:
        data = error(json.loads(ws.receive_text()), "PROTOCOL_MISMATCH")
        assert data["message"] == (
            "this server speaks SQLEnv protocol 1, the client asked for '7': install an "
            "sqlenv-client that speaks protocol 1 (docs/releasing.md)"
        )
        assert data["server_protocol"] == 1
        closed_with_1000(ws)

"""The Ray deployment's guard: a session this replica does not hold gets an error naming /ws.

The guard wraps the real app (no Ray needed); an id from "another replica" is one this
app never issued.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from affinity import SessionAffinityGuard
from fastapi.testclient import TestClient
from sqlenv_server.app import create_app

OTHER = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(SessionAffinityGuard(create_app())) as c:
        yield c


def test_http_session_on_this_replica_plays_through(client: TestClient) -> None:
    reset = client.post("/reset", json={"split": "eval", "seed": 1})
    sid = reset.headers["X-SQLEnv-Session"]
    step = client.post(
        "/step",
        json={
            "action": {
                "action_type": "DESCRIBE",
                "argument": reset.json()["observation"]["tables"][0],
            }
        },
        headers={"X-SQLEnv-Session": sid},
    )
    assert step.status_code == 200 and step.json()["observation"]["step_count"] == 1


def test_http_session_of_another_replica_gets_an_error_naming_ws(client: TestClient) -> None:
    step = client.post(
        "/step",
        json={"action": {"action_type": "DESCRIBE", "argument": "singer"}},
        headers={"X-SQLEnv-Session": OTHER},
    )
    assert step.status_code == 404
    detail = step.json()["detail"]
    assert OTHER in detail and "/ws" in detail and "another replica" in detail
    state = client.get("/state", headers={"X-SQLEnv-Session": OTHER})
    assert state.status_code == 404 and "/ws" in state.json()["detail"]


def test_mcp_session_of_another_replica_gets_a_json_rpc_error_naming_ws(client: TestClient) -> None:
    call = {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "describe", "arguments": {"table": "singer"}, "session_id": OTHER},
    }
    for headers in ({}, {"Mcp-Session-Id": OTHER}):
        body = dict(
            call,
            params={k: v for k, v in call["params"].items() if k != "session_id" or not headers},
        )
        reply = client.post("/mcp", json=body, headers=headers).json()
        assert reply["id"] == 7 and reply["error"]["code"] == -32602
        assert "/ws" in reply["error"]["message"] and OTHER in reply["error"]["message"]


def test_mcp_without_a_session_and_with_its_own_session_pass_through(client: TestClient) -> None:
    listed = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).json()
    assert {t["name"] for t in listed["result"]["tools"]} >= {"describe", "query"}
    # the harness resets over HTTP on this replica; the agent's MCP calls name that session
    reset = client.post("/reset", json={"split": "eval"})
    sid = reset.headers["X-SQLEnv-Session"]
    table = reset.json()["observation"]["tables"][0]
    described = client.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "describe", "arguments": {"table": table}},
        },
        headers={"Mcp-Session-Id": sid},
    ).json()
    assert "error" not in described, described
    assert described["result"]["isError"] is False, described


def test_websocket_attach_to_a_session_of_another_replica_is_refused_naming_ws(
    client: TestClient,
) -> None:
    with client.websocket_connect(f"/ws?session_id={OTHER}") as ws:
        frame = ws.receive_json()
    assert frame["type"] == "error" and frame["data"]["code"] == "SESSION_ERROR"
    assert "/ws" in frame["data"]["message"]


def test_a_plain_websocket_episode_passes_through(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "reset", "data": {"split": "eval", "seed": 3}})
        assert ws.receive_json()["type"] == "observation"

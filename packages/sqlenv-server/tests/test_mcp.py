"""``POST /mcp``: JSON-RPC 2.0 shapes, the tools, MCP sessions and every error."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlenv_core.prompting import AGENT_FIELDS
from sqlenv_server.routes.mcp import MCP_SESSION_HEADER


def rpc(client: Any, method: str, params: Any = None, *, id: Any = 1, headers: Any = None) -> Any:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
    if params is not None:
        body["params"] = params
    response = client.post("/mcp", json=body, headers=headers or {})
    assert response.status_code == 200, response.text
    return response


def call(client: Any, name: str, arguments: dict[str, Any], **params: Any) -> dict[str, Any]:
    body = rpc(client, "tools/call", {"name": name, "arguments": arguments, **params}).json()
    assert "result" in body, body
    return body["result"]


def rpc_error(response: Any, code: int) -> dict[str, Any]:
    body = response.json()
    assert body["jsonrpc"] == "2.0" and "result" not in body, body
    assert body["error"]["code"] == code, body
    return body["error"]


def test_empty_body_is_invalid_request(client: Any) -> None:
    # what `openenv validate --url` sends
    response = client.post("/mcp", json={})
    assert response.status_code == 200
    assert response.json()["jsonrpc"] == "2.0"
    rpc_error(response, -32600)


def test_tools_list(client: Any) -> None:
    tools = rpc(client, "tools/list", {}).json()["result"]["tools"]
    names = [t["name"] for t in tools]
    # the agent's four actions only: no reset (the question is the harness's), no state
    assert names == ["describe", "sample", "query", "answer"]
    for tool in tools:
        assert tool["description"] and tool["inputSchema"]["type"] == "object"
    query = next(t for t in tools if t["name"] == "query")
    assert query["inputSchema"]["required"] == ["sql"]


def test_initialize_gives_a_session(client: Any) -> None:
    response = rpc(client, "initialize", {"protocolVersion": "2025-03-26", "capabilities": {}})
    result = response.json()["result"]
    assert result["protocolVersion"] == "2025-03-26"
    assert "tools" in result["capabilities"] and result["serverInfo"]["name"] == "sqlenv"
    session = response.headers[MCP_SESSION_HEADER]
    headers = {MCP_SESSION_HEADER: session}
    # the initialized notification: 202, no body
    note = client.post(
        "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers
    )
    assert note.status_code == 202 and note.content == b""
    with client.websocket_connect(f"/ws?session_id={session}") as ws:  # the harness
        ws.send_text(json.dumps({"type": "reset", "data": {"question_id": "t_count"}}))
        assert json.loads(ws.receive_text())["type"] == "observation"
        body = rpc(client, "tools/call", {"name": "answer", "arguments": {"value": 3}},
                   headers=headers).json()  # fmt: skip
        result = body["result"]
        assert result["isError"] is False and result["structuredContent"]["done"] is True
        assert result["content"][0]["text"] == "Answer submitted.\n(episode over)"
        ws.send_text(json.dumps({"type": "state"}))
        assert json.loads(ws.receive_text())["data"]["correct"] is True
    assert client.delete("/mcp", headers=headers).json() == {"session_id": session, "closed": True}
    assert client.delete("/mcp", headers=headers).status_code == 404


def test_episode_in_an_http_session(client: Any) -> None:
    """The harness resets over HTTP; the agent's MCP client sends that session id."""
    reset = client.post("/reset", json={"question_id": "t_totals"})
    session = reset.headers["X-SQLEnv-Session"]
    result = call(client, "describe", {"table": "orders"}, session_id=session)
    assert "customer_id" in result["content"][0]["text"] and result["isError"] is False
    result = call(client, "sample", {"table": "customer"}, session_id=session)
    assert "Ada" in result["content"][0]["text"]
    sql = "SELECT c.name, sum(o.amount) FROM customer c JOIN orders o ON o.customer_id = c.id GROUP BY c.name"
    result = call(client, "query", {"sql": sql}, session_id=session)
    observation = result["structuredContent"]["observation"]
    assert sorted(observation["table"]["rows"]) == [["Ada", 15.0], ["Bob", 7.25], ["Cy", 1.0]]
    assert set(observation) == set(AGENT_FIELDS)  # no reward, breakdown or history
    result = call(client, "answer", {"value": observation["table"]["rows"]}, session_id=session)
    assert (
        result["structuredContent"]["done"] is True and "reward" not in result["structuredContent"]
    )
    state = client.get("/state", headers={"X-SQLEnv-Session": session}).json()
    assert state["correct"] is True and state["step_count"] == 4
    assert client.delete("/session", headers={"X-SQLEnv-Session": session}).status_code == 200


def test_agent_mistakes_are_tool_errors(client: Any) -> None:
    session = rpc(client, "openenv/session/create", {}).json()["result"]["session_id"]
    result = call(client, "query", {"sql": "SELECT 1"}, session_id=session)
    assert result["isError"] is True and "harness" in result["content"][0]["text"]
    with client.websocket_connect(f"/ws?session_id={session}") as ws:
        ws.send_text(json.dumps({"type": "reset", "data": {"question_id": "t_count"}}))
        ws.receive_text()
        result = call(client, "query", {"sql": "DROP TABLE customer"}, session_id=session)
        assert result["isError"] is True and "read-only" in result["content"][0]["text"]


@pytest.mark.parametrize(
    ("params", "code", "needle"),
    [
        ({"arguments": {}}, -32602, "name"),
        ({"name": "fly", "arguments": {}}, -32602, "Unknown tool"),
        ({"name": "query", "arguments": {"query": "SELECT 1"}}, -32602, "Invalid arguments"),
        ({"name": "query", "arguments": {"sql": "SELECT 1"}}, -32602, "no session"),
        (
            {"name": "query", "arguments": {"sql": "SELECT 1"}, "session_id": "nope"},
            -32602,
            "unknown",
        ),
        ({"name": "reset", "arguments": {"question_id": "t_count"}}, -32602, "Unknown tool"),
        ({"name": "state", "arguments": {}}, -32602, "Unknown tool"),
    ],
)
def test_tools_call_errors(client: Any, params: dict[str, Any], code: int, needle: str) -> None:
    error = rpc_error(rpc(client, "tools/call", params), code)
    assert needle in error["message"]


def test_protocol_errors(client: Any) -> None:
    parse = client.post("/mcp", content=b"{oops", headers={"Content-Type": "application/json"})
    assert parse.status_code == 200
    rpc_error(parse, -32700)
    rpc_error(rpc(client, "no/such/method", {}), -32601)
    rpc_error(client.post("/mcp", json=[{"jsonrpc": "2.0", "id": 1, "method": "ping"}]), -32600)
    rpc_error(client.post("/mcp", json={"jsonrpc": "1.0", "id": 1, "method": "ping"}), -32600)
    rpc_error(
        client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping", "x": 1}), -32600
    )
    rpc_error(rpc(client, "tools/list", [1]), -32602)
    assert rpc(client, "ping", {}, id="abc").json() == {"jsonrpc": "2.0", "id": "abc", "result": {}}


def test_capacity_is_a_server_error(make_client: Any) -> None:
    client = make_client(max_sessions=1)
    rpc(client, "openenv/session/create", {})
    error = rpc_error(rpc(client, "openenv/session/create", {}), -32000)
    assert error["data"] == {"active_sessions": 1, "max_sessions": 1}
    error = rpc_error(rpc(client, "initialize", {}), -32000)
    assert "capacity" in error["message"]

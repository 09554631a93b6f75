"""``POST /mcp``: JSON-RPC 2.0 shapes, the tools, MCP sessions and every error."""

from __future__ import annotations

from typing import Any

import pytest
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
    assert names == ["reset", "describe", "sample", "query", "answer", "state"]
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
    body = rpc(client, "tools/call", {"name": "reset", "arguments": {"question_id": "t_count"}},
               headers=headers).json()  # fmt: skip
    assert body["result"]["structuredContent"]["session_id"] == session
    body = rpc(client, "tools/call", {"name": "answer", "arguments": {"value": 3}},
               headers=headers).json()  # fmt: skip
    result = body["result"]
    assert result["isError"] is False and result["structuredContent"]["done"] is True
    assert "Correct." in result["content"][0]["text"]
    assert client.delete("/mcp", headers=headers).json() == {"session_id": session, "closed": True}
    assert client.delete("/mcp", headers=headers).status_code == 404


def test_episode_with_session_id_params(client: Any) -> None:
    result = call(client, "reset", {"question_id": "t_totals"})
    session = result["structuredContent"]["session_id"]
    assert "Total order amount" in result["content"][0]["text"]
    assert "customer, orders" in result["content"][0]["text"]
    result = call(client, "describe", {"table": "orders"}, session_id=session)
    assert "customer_id" in result["content"][0]["text"] and result["isError"] is False
    result = call(client, "sample", {"table": "customer"}, session_id=session)
    assert "Ada" in result["content"][0]["text"]
    sql = "SELECT c.name, sum(o.amount) FROM customer c JOIN orders o ON o.customer_id = c.id GROUP BY c.name"
    result = call(client, "query", {"sql": sql}, session_id=session)
    rows = result["structuredContent"]["observation"]["table"]["rows"]
    assert sorted(rows) == [["Ada", 15.0], ["Bob", 7.25], ["Cy", 1.0]]
    result = call(client, "answer", {"value": rows}, session_id=session)
    assert result["structuredContent"]["done"] is True and result["structuredContent"]["reward"] == 1.0
    state = call(client, "state", {}, session_id=session)["structuredContent"]
    assert state["correct"] is True and state["step_count"] == 4
    closed = rpc(client, "openenv/session/close", {"session_id": session}).json()["result"]
    assert closed == {"session_id": session, "closed": True}


def test_agent_mistakes_are_tool_errors(client: Any) -> None:
    session = rpc(client, "openenv/session/create", {}).json()["result"]["session_id"]
    result = call(client, "query", {"sql": "SELECT 1"}, session_id=session)
    assert result["isError"] is True and "reset" in result["content"][0]["text"]
    call(client, "reset", {"question_id": "t_count"}, session_id=session)
    result = call(client, "query", {"sql": "DROP TABLE customer"}, session_id=session)
    assert result["isError"] is True and "read-only" in result["content"][0]["text"]
    result = call(client, "reset", {"question_id": "nope"}, session_id=session)
    assert result["isError"] is True and "nope" in result["content"][0]["text"]


@pytest.mark.parametrize(
    ("params", "code", "needle"),
    [
        ({"arguments": {}}, -32602, "name"),
        ({"name": "fly", "arguments": {}}, -32602, "Unknown tool"),
        ({"name": "query", "arguments": {"query": "SELECT 1"}}, -32602, "Invalid arguments"),
        ({"name": "query", "arguments": {"sql": "SELECT 1"}}, -32602, "no session"),
        ({"name": "query", "arguments": {"sql": "SELECT 1"}, "session_id": "nope"}, -32602, "unknown"),
        ({"name": "reset", "arguments": {"seed": "abc"}}, -32602, "Invalid arguments"),
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
    rpc_error(client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping", "x": 1}), -32600)
    rpc_error(rpc(client, "tools/list", [1]), -32602)
    assert rpc(client, "ping", {}, id="abc").json() == {"jsonrpc": "2.0", "id": "abc", "result": {}}


def test_capacity_is_a_server_error(make_client: Any) -> None:
    client = make_client(max_sessions=1)
    rpc(client, "openenv/session/create", {})
    error = rpc_error(rpc(client, "openenv/session/create", {}), -32000)
    assert error["data"] == {"active_sessions": 1, "max_sessions": 1}
    error = rpc_error(rpc(client, "tools/call", {"name": "reset", "arguments": {}}), -32000)
    assert "capacity" in error["message"]

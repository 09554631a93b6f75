"""Finding 10: NaN, Infinity or 1e400 in a request gave HTTP 500 (pydantic's error quoted
the value and Starlette could not serialise it), and WebSocket error frames carried a
bare ``NaN``, which is not JSON. Now: 422 (HTTP), a parse error (MCP) or an
``INVALID_JSON`` frame (WebSocket), each saying what was wrong, and every frame parses
as strict JSON.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e400"]


def strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"not JSON: {name} in {text[:200]}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("number", BAD_NUMBERS)
def test_http_answers_422_with_a_clear_message(client: Any, number: str) -> None:
    for path, body in (
        ("/reset", f'{{"seed": {number}}}'),
        ("/reset", f'{{"budget": {number}}}'),
        (
            "/step",
            f'{{"action": {{"action_type": "QUERY", "argument": "SELECT 1"}}, "timeout_s": {number}}}',
        ),
        ("/step", f'{{"action": {{"action_type": {number}}}}}'),
    ):
        reply = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert reply.status_code == 422, (path, body, reply.text)
        message = strict(reply.text)["detail"][0]["msg"]
        assert "finite" in message, message


@pytest.mark.parametrize("number", BAD_NUMBERS)
def test_websocket_frames_are_always_json(client: Any, number: str) -> None:
    with client.websocket_connect("/ws") as ws:
        for message in (
            f'{{"type": "reset", "data": {{"seed": {number}}}}}',
            f'{{"type": "step", "data": {{"action_type": {number}}}}}',
            f'{{"type": "mcp", "data": {{"jsonrpc": "2.0", "id": {number}, "method": "ping"}}}}',
        ):
            ws.send_text(message)
            frame = strict(ws.receive_text())
            assert frame["type"] == "error" and frame["data"]["code"] == "INVALID_JSON"
            assert "finite" in frame["data"]["message"]
        ws.send_text('{"type": "reset", "data": {"question_id": "s_count"}}')
        assert strict(ws.receive_text())["type"] == "observation"  # the session carries on
        ws.send_text(
            '{"type": "step", "data": {"action_type": "QUERY", "argument": "SELECT 1e999"}}'
        )
        frame = strict(ws.receive_text())  # SQLite's +Inf comes back as null, not Infinity
        assert frame["data"]["observation"]["table"]["rows"] == [[None]]


def test_mcp_reports_a_parse_error(client: Any) -> None:
    body = '{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": NaN}}'
    reply = client.post("/mcp", content=body, headers={"Content-Type": "application/json"})
    error = strict(reply.text)["error"]
    assert error["code"] == -32700 and "finite" in error["message"]

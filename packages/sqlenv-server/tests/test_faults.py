"""Faults the server must survive: a client vanishing mid-query, a database file that
disappears while the server runs, and what ``GET /stats`` reports meanwhile.

(Process-level versions on real data — SIGTERM under load, damaged databases at
startup, hostile SQL, fuzzing, a soak — are in ``tests/reliability/`` at the root.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

from sqlenv_server.app import create_app
from sqlenv_server.settings import ServerSettings
from websockets.asyncio.client import ClientConnection, connect

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from fastapi.testclient import TestClient

SLOW_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c JOIN number ON number.n = c.x % 200"
)


def _stats(http_get: Any, base: str) -> dict[str, Any]:
    status, body = http_get(f"{base}/stats")
    assert status == 200
    return json.loads(body)


def _wait_for(predicate: Any, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached")
        time.sleep(0.01)
    return time.monotonic() - start


async def _ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return json.loads(await asyncio.wait_for(ws.recv(), timeout=30))


def test_stats_counts_sessions_by_kind(client: Any) -> None:
    assert client.get("/health").json() == {"status": "healthy"}  # unchanged for OpenEnv
    stats = client.get("/stats").json()
    assert stats["active_sessions"] == 0 and stats["max_sessions"] == 256
    assert stats["busy_sessions"] == 0 and stats["threads"] >= 1
    client.post("/reset", json={"question_id": "t_count"})
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "state"}))
        ws.receive_text()
        stats = client.get("/stats").json()
        assert stats["active_sessions"] == 2
        assert stats["sessions_by_kind"] == {"ws": 1, "http": 1, "mcp": 0}
    assert client.get("/stats").json()["sessions_by_kind"]["ws"] == 0


def test_a_client_vanishing_mid_query_frees_its_session_and_thread(
    start_server: Any, http_get: Any
) -> None:
    """The query would run 10 s; the socket is dropped after 0.3 s. The session must go
    at once and the worker thread be free within a second, not at the deadline."""
    server = start_server("--query-timeout", "10")
    base = _stats(http_get, server.base)

    async def vanish() -> None:
        ws = await connect(server.ws_url)
        frame = await _ask(ws, {"type": "reset", "data": {"question_id": "n_00"}})
        assert frame["type"] == "observation"
        await ws.send(json.dumps({"type": "step", "data": {"action_type": "QUERY", "argument": SLOW_SQL}}))
        await asyncio.sleep(0.3)
        assert _stats(http_get, server.base)["busy_sessions"] == 1
        ws.transport.abort()  # no close frame: the client just disappears (RST)

    asyncio.run(vanish())
    took = _wait_for(lambda: _stats(http_get, server.base)["active_sessions"] == 0)
    assert took < 1.0
    _wait_for(lambda: _stats(http_get, server.base)["busy_sessions"] == 0, timeout=1.0)
    stats = _stats(http_get, server.base)
    assert stats["interrupted_steps"] == 1
    assert stats["threads"] <= base["threads"] + 1  # the worker stays pooled, idle

    async def next_client() -> None:  # the worker thread is free for the next slow query
        async with connect(server.ws_url) as ws:
            await _ask(ws, {"type": "reset", "data": {"question_id": "n_00"}})
            start = time.monotonic()
            frame = await _ask(ws, {"type": "step", "data": {"action_type": "QUERY", "argument": "SELECT count(*) FROM number"}})
            assert frame["data"]["observation"]["table"]["rows"] == [[200]]
            assert time.monotonic() - start < 1.0

    asyncio.run(next_client())


def test_a_message_sent_during_a_slow_step_is_answered_after_it(start_server: Any) -> None:
    server = start_server("--query-timeout", "0.5")

    async def main() -> None:
        async with connect(server.ws_url) as ws:
            await _ask(ws, {"type": "reset", "data": {"question_id": "n_03"}})
            await ws.send(json.dumps({"type": "step", "data": {"action_type": "QUERY", "argument": SLOW_SQL}}))
            await ws.send(json.dumps({"type": "state"}))
            await ws.send(json.dumps({"type": "step", "data": {"action_type": "ANSWER", "argument": "16"}}))
            first = json.loads(await ws.recv())
            assert "deadline" in first["data"]["observation"]["error"]
            second = json.loads(await ws.recv())
            assert second["type"] == "state" and second["data"]["step_count"] == 1
            third = json.loads(await ws.recv())
            assert third["data"]["reward"] == 1.0 and third["data"]["done"] is True

    asyncio.run(main())


def test_a_database_deleted_while_running_fails_only_its_episodes(
    tiny_data_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_data_dir, data)
    shop = data / "databases" / "shop" / "shop.sqlite"
    app = create_app(ServerSettings(data_dir=data))
    with TestClient(app) as client, client.websocket_connect("/ws") as zoo_ws:
        zoo_ws.send_text(json.dumps({"type": "reset", "data": {"question_id": "e_lions"}}))
        assert json.loads(zoo_ws.receive_text())["type"] == "observation"
        with client.websocket_connect("/ws") as shop_ws:
            shop_ws.send_text(json.dumps({"type": "reset", "data": {"question_id": "t_count"}}))
            assert json.loads(shop_ws.receive_text())["type"] == "observation"
            status = client.post("/reset", json={"question_id": "t_names"})
            http_session = status.headers["X-SQLEnv-Session"]
            shop.rename(shop.with_suffix(".gone"))

            query = {"action_type": "QUERY", "argument": "SELECT count(*) FROM customer"}
            shop_ws.send_text(json.dumps({"type": "step", "data": query}))
            frame = json.loads(shop_ws.receive_text())
            assert frame["type"] == "error" and frame["data"]["code"] == "EXECUTION_ERROR"
            assert frame["data"]["error_type"] == "DataError"
            assert f"database file not found: {shop}" in frame["data"]["message"]
            shop_ws.send_text(json.dumps({"type": "reset", "data": {"question_id": "t_count"}}))
            assert json.loads(shop_ws.receive_text())["data"]["error_type"] == "DataError"

            reply = client.post("/step", json={"action": query}, headers={"X-SQLEnv-Session": http_session})
            assert reply.status_code == 503 and str(shop) in reply.json()["detail"]
            reply = client.post("/reset", json={"question_id": "t_count"})
            assert reply.status_code == 503 and str(shop) in reply.json()["detail"]
            mcp = client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                            "params": {"name": "query", "session_id": http_session,
                                                       "arguments": {"sql": "SELECT 1"}}})  # fmt: skip
            result = mcp.json()["result"]
            assert result["isError"] is True and str(shop) in result["content"][0]["text"]

            # the other database's episode carries on
            zoo_ws.send_text(json.dumps({"type": "step", "data": {"action_type": "ANSWER", "argument": "2"}}))
            frame = json.loads(zoo_ws.receive_text())
            assert frame["data"]["reward"] == 1.0
            shop.with_suffix(".gone").rename(shop)  # back: its episodes work again
            shop_ws.send_text(json.dumps({"type": "step", "data": query}))
            frame = json.loads(shop_ws.receive_text())
            assert frame["data"]["observation"]["table"]["rows"] == [[3]]
        with contextlib.suppress(Exception):
            zoo_ws.close()

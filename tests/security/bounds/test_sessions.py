"""Finding 6: 256 session/create calls locked everyone else out for the 600-s idle
timeout, and sessions were kept alive without actions. Now: a per-address cap (loopback
exempt), idleness counted on actions (reset, step) only, both said in the error."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient
from sqlenv_server.app import create_app
from sqlenv_server.settings import ServerSettings


def _create(client: TestClient) -> dict:
    body = {"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create", "params": {}}
    return client.post("/mcp", json=body).json()


def test_one_address_cannot_take_every_session() -> None:
    app = create_app(ServerSettings(max_sessions=16, max_sessions_per_client=4))
    with TestClient(app, client=("203.0.113.7", 5000)) as attacker:
        ids = [_create(attacker)["result"]["session_id"] for _ in range(4)]
        refused = _create(attacker)["error"]
        assert refused["code"] == -32000
        assert "Too many sessions from your address (203.0.113.7): 4/4" in refused["message"]
        assert "without an action (reset or step" in refused["message"]
        other = TestClient(app, client=("198.51.100.9", 5000))  # same app, started above
        assert "result" in _create(other)
        assert other.post("/reset", json={"split": "eval"}).status_code == 200
        # closing one frees a slot for the same address
        close = {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "openenv/session/close",
            "params": {"session_id": ids[0]},
        }
        assert attacker.post("/mcp", json=close).json()["result"]["closed"]
        assert "result" in _create(attacker)


def test_loopback_clients_are_not_capped() -> None:
    app = create_app(ServerSettings(max_sessions=16, max_sessions_per_client=2))
    with TestClient(app, client=("127.0.0.1", 5000)) as local:
        assert all("result" in _create(local) for _ in range(6))


def test_only_actions_keep_a_session_alive() -> None:
    app = create_app(ServerSettings(idle_timeout_s=600))
    with TestClient(app, client=("203.0.113.8", 5000)) as client:
        manager = app.state.manager
        sid = client.post("/reset", json={"split": "eval"}).headers["X-SQLEnv-Session"]
        created = _create(client)["result"]["session_id"]
        session, bare = manager.get(sid), manager.get(created)
        session.last_active -= 700
        bare.last_active -= 700
        # reading the state, attaching a WebSocket, stepping a session without an episode
        assert client.get("/state", headers={"X-SQLEnv-Session": sid}).status_code == 200
        with client.websocket_connect(f"/ws?session_id={created}") as ws:
            ws.send_json({"type": "step", "data": {"action_type": "QUERY", "argument": "SELECT 1"}})
            assert ws.receive_json()["type"] == "error"
        assert manager.reap_idle(time.monotonic()) == 2
        assert client.get("/state", headers={"X-SQLEnv-Session": sid}).status_code == 404

"""Finding 11: no Origin or Host check, so any web page could open ``/ws`` or POST
``text/plain`` JSON to ``/mcp`` through its visitor's browser, and a page whose name
resolves to 127.0.0.1 (DNS rebinding) could read the replies too. Browser requests now
need this server's own origin (or one allowed by ``SQLENV_ALLOWED_ORIGINS``) and a Host
it answers browsers on (``SQLENV_ALLOWED_HOSTS``); programs, which send no ``Origin``,
pass as before.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

MCP_LIST = '{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'
LOCAL = {"Host": "127.0.0.1:8000"}


def post_mcp(client: Any, headers: dict[str, str]) -> Any:
    return client.post("/mcp", content=MCP_LIST, headers={"Content-Type": "text/plain", **headers})


def test_programs_without_origin_still_work(client: Any) -> None:
    assert post_mcp(client, {}).json()["result"]["tools"]
    with client.websocket_connect("/ws") as ws:
        ws.send_text('{"type": "state"}')
        assert '"type":"state"' in ws.receive_text()


def test_a_page_of_another_site_is_refused(client: Any) -> None:
    evil = {**LOCAL, "Origin": "https://evil.example"}
    reply = post_mcp(client, evil)
    assert reply.status_code == 403 and "SQLENV_ALLOWED_ORIGINS" in reply.json()["detail"]
    reply = client.post("/reset", json={}, headers=evil)
    assert reply.status_code == 403
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/ws", headers=evil),
    ):
        pass
    assert refused.value.code == 1008
    # sandboxed frames and files send Origin: null
    assert post_mcp(client, {**LOCAL, "Origin": "null"}).status_code == 403


def test_dns_rebinding_is_refused_by_host(client: Any) -> None:
    """The page's own name now points at 127.0.0.1: same origin, but not our Host."""
    rebound = {"Host": "evil.example:8000", "Origin": "http://evil.example:8000"}
    assert post_mcp(client, rebound).status_code == 403
    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws", headers=rebound):
        pass
    # a same-origin GET carries no Origin, but a browser says Sec-Fetch-Site
    reply = client.get(
        "/web/api/questions", headers={"Host": "evil.example:8000", "Sec-Fetch-Site": "same-origin"}
    )
    assert reply.status_code == 403 and "SQLENV_ALLOWED_HOSTS" in reply.json()["detail"]


def test_the_page_itself_works_same_origin(client: Any) -> None:
    own = {**LOCAL, "Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"}
    assert post_mcp(client, own).status_code == 200
    assert client.get("/web/api/questions", headers=own).status_code == 200
    with client.websocket_connect("/ws", headers=own) as ws:
        ws.send_text('{"type": "state"}')
        assert '"type":"state"' in ws.receive_text()
    localhost = {"Host": "localhost:8000", "Origin": "http://localhost:8000"}
    assert post_mcp(client, localhost).status_code == 200


def test_settings_allow_other_origins_and_hosts(make_client: Any) -> None:
    client = make_client(
        allowed_origins=("https://notebook.example",), allowed_hosts=("*.hf.space", "localhost")
    )
    friend = {"Host": "localhost:8000", "Origin": "https://notebook.example"}
    reply = post_mcp(client, friend)
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "https://notebook.example"
    preflight = client.options(
        "/reset",
        headers={**friend, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"},
    )  # fmt: skip
    assert preflight.status_code == 204
    space = {"Host": "sqlenv-sql-env.hf.space", "Origin": "https://sqlenv-sql-env.hf.space"}
    assert post_mcp(client, space).status_code == 200
    assert post_mcp(client, {**space, "Host": "127.0.0.1:8000"}).status_code == 403


def test_a_server_on_all_interfaces_answers_any_host(make_client: Any) -> None:
    """The Docker image and the Space listen on 0.0.0.0 and are reached by names they
    cannot know; the Origin check still applies."""
    client = make_client(host="0.0.0.0")
    space = {"Host": "sqlenv-sql-env.hf.space", "Origin": "https://sqlenv-sql-env.hf.space"}
    assert post_mcp(client, space).status_code == 200
    assert post_mcp(client, {**space, "Origin": "https://evil.example"}).status_code == 403


def test_the_settings_are_read_and_checked() -> None:
    from sqlenv_server.settings import SettingsError, resolve_settings

    settings = resolve_settings(
        environ={
            "SQLENV_ALLOWED_ORIGINS": "https://a.example, https://b.example:8443",
            "SQLENV_ALLOWED_HOSTS": "*.hf.space,localhost",
            "SQLENV_WEB_ORACLE": "1",
        }
    )
    assert settings.allowed_origins == ("https://a.example", "https://b.example:8443")
    assert settings.allowed_hosts == ("*.hf.space", "localhost")
    assert settings.web_oracle is True
    for variable, value in (
        ("SQLENV_ALLOWED_ORIGINS", "evil.example"),  # no scheme
        ("SQLENV_ALLOWED_ORIGINS", "https://a.example/path"),
        ("SQLENV_ALLOWED_HOSTS", "https://a.example"),
        ("SQLENV_WEB_ORACLE", "maybe"),
    ):
        with pytest.raises(SettingsError, match=variable):
            resolve_settings(environ={variable: value})
    flags = resolve_settings({"allowed_hosts": "example.org", "web_oracle": "1"}, environ={})
    assert flags.allowed_hosts == ("example.org",) and flags.web_oracle is True


def test_the_space_origin_is_allowed_when_the_proxy_renames_the_host(
    make_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPACE_HOST", "sqlenv-sql-env.hf.space")
    client = make_client(host="0.0.0.0")
    proxied = {"Host": "10.0.0.7:8000", "Origin": "https://sqlenv-sql-env.hf.space"}
    assert post_mcp(client, proxied).status_code == 200
    assert post_mcp(client, {**proxied, "Origin": "https://other.hf.space"}).status_code == 403


def test_a_real_server_refuses_the_handshake(data_dir: Path) -> None:
    """Through uvicorn: a refused WebSocket never opens (HTTP 403 at the handshake)."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "sqlenv_server", "--port", str(port),
               "--data-dir", str(data_dir), "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"ws://127.0.0.1:{port}/ws"
        deadline = time.monotonic() + 30
        while True:
            try:
                with connect(url, open_timeout=2) as ws:  # a program: no Origin
                    ws.send('{"type": "state"}')
                    assert json.loads(ws.recv(timeout=5))["type"] == "state"
                break
            except (OSError, InvalidStatus):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers={"Origin": "https://evil.example"}, open_timeout=5)
        assert refused.value.response.status_code == 403
        with connect(url, additional_headers={"Origin": f"http://127.0.0.1:{port}"}) as ws:
            ws.send('{"type": "state"}')
            assert json.loads(ws.recv(timeout=5))["type"] == "state"
    finally:
        server.terminate()
        server.wait(timeout=15)

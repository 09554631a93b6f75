"""The real server process: startup time, configuration errors, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

SLOW_SQL = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def run_main(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sqlenv_server", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_healthy_quickly_and_prints_the_page_address(start_server: Any, http_get: Any) -> None:
    server = start_server()
    elapsed = server.wait_healthy()
    # A liveness bound, not a performance test: the 1 s start goal is measured by
    # benchmarks/bench_server.py, and a loaded shared machine can take longer.
    assert elapsed < 15.0, f"healthy after {elapsed:.2f} s"
    status, body = http_get(f"{server.base}/metadata")
    assert status == 200 and json.loads(body)["name"] == "SQLEnv"
    deadline = time.monotonic() + 5
    while "play in the browser" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    banner = f"SQLEnv server on {server.base} — play in the browser at {server.base}/web/"
    assert banner in server.log()


def test_sigterm_with_open_sessions_exits_cleanly(start_server: Any, http_post: Any) -> None:
    server = start_server()

    async def hold_sessions() -> float:
        sockets = [await connect(server.ws_url) for _ in range(5)]
        for ws in sockets:
            await ws.send(json.dumps({"type": "reset", "data": {"question_id": "t_count"}}))
            assert json.loads(await ws.recv())["type"] == "observation"
        status, _ = http_post(f"{server.base}/reset", {})  # an HTTP session too
        assert status == 200
        # and one session in the middle of a query that runs to its 2 s deadline
        await sockets[0].send(
            json.dumps({"type": "step", "data": {"action_type": "QUERY", "argument": SLOW_SQL}})
        )
        await asyncio.sleep(0.3)
        started = time.monotonic()
        server.proc.terminate()  # SIGTERM
        for ws in sockets:  # each socket is closed by the server
            with pytest.raises(Exception):  # noqa: B017 - ConnectionClosed of some kind
                await asyncio.wait_for(ws.recv(), timeout=5)
        return started

    started = asyncio.run(hold_sessions())
    code = server.proc.wait(timeout=5)
    assert code == 0, server.log()
    assert time.monotonic() - started < 5
    assert "Traceback" not in server.log()


@pytest.mark.parametrize(
    ("value", "needle"),
    [("abc", "'abc'"), ("0", "'0'"), ("-1", "'-1'"), ("70000", "'70000'")],
)
def test_bad_port_stops_with_a_clear_message(tiny_data_dir: Path, value: str, needle: str) -> None:
    result = run_main("--data-dir", str(tiny_data_dir), env={"PORT": value})
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.count("\n") == 0, line
    assert line.startswith("sqlenv-server: error: PORT must be a whole number from 1 to 65535")
    assert needle in line


def test_an_empty_port_variable_means_the_default(tiny_data_dir: Path) -> None:
    """``PORT=`` is unset (a compose file's empty value), not an error: the server goes on
    to listen on 8000 (here taken by a socket of ours, which proves the default was used)."""
    import socket

    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", 8000))
        except OSError:
            pytest.skip("port 8000 is in use on this machine; cannot pin the default")
        taken.listen()
        result = run_main("--data-dir", str(tiny_data_dir), env={"PORT": ""})
    assert result.returncode == 2, result.stderr
    assert "cannot listen on 127.0.0.1:8000" in result.stderr


def test_a_port_in_use_is_one_clear_line_and_no_banner(tiny_data_dir: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_main("--data-dir", str(tiny_data_dir), "--port", str(port))
    assert result.returncode == 2
    assert result.stdout == ""  # no "SQLEnv server on ..." for a server that never ran
    assert result.stderr.strip() == (
        f"sqlenv-server: error: cannot listen on 127.0.0.1:{port}: address already in use: "
        "is another server running there? Stop it, or choose another port with --port or PORT"
    )


def test_sigterm_on_an_idle_server_exits_at_once_with_0(start_server: Any) -> None:
    """No interpreter teardown after uvicorn's shutdown (``_exit_now``): the stop is
    uvicorn's signal tick plus the lifespan, about 0.2 s here (0.4 s before); the bound is
    for liveness on a loaded machine, not a performance goal."""
    server = start_server()
    started = time.monotonic()
    server.proc.terminate()
    assert server.proc.wait(timeout=10) == 0, server.log()
    assert time.monotonic() - started < 5
    assert "Traceback" not in server.log()


def test_bad_flag_names_the_flag(tiny_data_dir: Path) -> None:
    result = run_main("--data-dir", str(tiny_data_dir), "--max-sessions", "many")
    assert result.returncode == 2
    assert "--max-sessions must be a whole number of at least 1, got 'many'" in result.stderr
    result = run_main("--data-dir", str(tiny_data_dir), env={"SQLENV_IDLE_TIMEOUT_S": "-5"})
    assert result.returncode == 2 and "SQLENV_IDLE_TIMEOUT_S must be a positive" in result.stderr


def test_missing_or_empty_data_dir_stops_with_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run_main("--data-dir", str(missing))
    assert result.returncode == 2
    assert str(missing) in result.stderr and "Traceback" not in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_main(env={"SQLENV_DATA_DIR": str(empty)})
    assert result.returncode == 2
    assert str(empty) in result.stderr and "Traceback" not in result.stderr


def test_uvicorn_can_serve_the_module_level_app(
    start_server: Any, tiny_data_dir: Path, http_post: Any
) -> None:
    """``uvicorn sqlenv_server.app:app`` (what deploy/openenv.yaml names) reads its
    settings from the environment; host and port are uvicorn's, so a stray PORT is
    ignored."""
    env = {"SQLENV_DATA_DIR": str(tiny_data_dir), "SQLENV_BUDGET": "7", "PORT": "abc"}
    server = start_server(env=env, uvicorn=True)
    status, body = http_post(f"{server.base}/reset", {"question_id": "t_count"})
    assert status == 200 and body["observation"]["budget_remaining"] == 7

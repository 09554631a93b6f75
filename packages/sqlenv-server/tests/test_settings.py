"""Settings from flags and environment, and the inline/deferred step paths they tune."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlenv_server.sessions import WORKER_NICE
from sqlenv_server.settings import ServerSettings, SettingsError, resolve_settings


def test_defaults() -> None:
    s = resolve_settings({}, {})
    assert (s.host, s.port, s.max_sessions, s.budget) == ("127.0.0.1", 8000, 256, 15)
    assert s.data_dir is None and s.idle_timeout_s == 600 and s.query_timeout_s == 2
    assert s.ws_compression is False and s.log_level == "info"


def test_flags_beat_environment() -> None:
    env = {"PORT": "9000", "HOST": "0.0.0.0", "SQLENV_MAX_SESSIONS": "8", "SQLENV_BUDGET": "20"}
    s = resolve_settings({"port": "9100", "budget": None}, env)
    assert s.port == 9100 and s.host == "0.0.0.0" and s.max_sessions == 8 and s.budget == 20


def test_environment_names_and_aliases(tmp_path: Path) -> None:
    env = {
        "SQLENV_DATA_DIR": str(tmp_path),
        "MAX_CONCURRENT_ENVS": "32",  # OpenEnv's conventional name
        "SESSION_TIMEOUT_S": "1200",
        "SQLENV_QUERY_TIMEOUT_S": "0.5",
        "SQLENV_INLINE_BUDGET_MS": "0",
        "SQLENV_WS_COMPRESSION": "yes",
        "SQLENV_LOG_LEVEL": "DEBUG",
    }
    s = resolve_settings({}, env)
    assert s.data_dir == tmp_path and s.max_sessions == 32 and s.idle_timeout_s == 1200
    assert s.query_timeout_s == 0.5 and s.inline_budget_ms == 0
    assert s.ws_compression is True and s.log_level == "debug"
    assert resolve_settings({}, {**env, "SQLENV_MAX_SESSIONS": "4"}).max_sessions == 4


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({}, {"PORT": "abc"}, "PORT must be a whole number from 1 to 65535, got 'abc'"),
        ({}, {"PORT": "0"}, "PORT must be a whole number from 1 to 65535, got '0'"),
        ({}, {"PORT": "-1"}, "PORT must be a whole number from 1 to 65535, got '-1'"),
        ({}, {"PORT": "80.5"}, "PORT must be"),
        ({"port": "x"}, {}, "--port must be a whole number"),
        (
            {},
            {"SQLENV_MAX_SESSIONS": "0"},
            "SQLENV_MAX_SESSIONS must be a whole number of at least 1",
        ),
        ({}, {"SQLENV_IDLE_TIMEOUT_S": "nan"}, "SQLENV_IDLE_TIMEOUT_S must be a positive"),
        ({}, {"SQLENV_QUERY_TIMEOUT_S": "0"}, "SQLENV_QUERY_TIMEOUT_S must be a positive"),
        ({"budget": "0"}, {}, "--budget must be a whole number from 1"),
        ({}, {"SQLENV_WS_COMPRESSION": "maybe"}, "SQLENV_WS_COMPRESSION must be one of"),
        ({}, {"SQLENV_LOG_LEVEL": "loud"}, "SQLENV_LOG_LEVEL must be one of"),
        ({"host": "  "}, {}, "--host must not be empty"),
        ({}, {"SQLENV_MAX_MESSAGE_BYTES": "10"}, "at least 1024"),
    ],
)
def test_bad_values_name_their_source(
    flags: dict[str, str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError) as info:
        resolve_settings(flags, env)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("blank", ["", "  "])
def test_an_empty_variable_counts_as_unset(blank: str) -> None:
    s = resolve_settings({}, {"PORT": blank, "HOST": blank, "SQLENV_BUDGET": blank})
    assert (s.port, s.host, s.budget) == (8000, "127.0.0.1", 15)


def test_ignore_keeps_defaults() -> None:
    s = resolve_settings({}, {"PORT": "abc", "HOST": ""}, ignore=("host", "port"))
    assert s.port == 8000


def test_direct_construction_is_checked() -> None:
    with pytest.raises(SettingsError, match="port"):
        ServerSettings(port=0)
    assert ServerSettings().with_(port=1234).port == 1234


# -------------------------------------------------------- inline and deferred steps
MEDIUM_SQL = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) "
    "SELECT count(*) FROM c"
)


def _query(ws: Any, sql: str) -> dict[str, Any]:
    ws.send_text(json.dumps({"type": "step", "data": {"action_type": "QUERY", "argument": sql}}))
    return json.loads(ws.receive_text())["data"]["observation"]


@pytest.mark.parametrize("inline_ms", [0.5, 0])
def test_queries_past_the_inline_budget_run_in_a_thread(make_client: Any, inline_ms: float) -> None:
    client = make_client(inline_budget_ms=inline_ms)
    manager = client.app.state.manager
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "reset", "data": {"question_id": "n_00"}}))
        ws.receive_text()
        obs = _query(ws, MEDIUM_SQL)
        assert obs["table"]["rows"] == [[300000]] and obs["step_count"] == 1
        assert manager.deferred_steps == 1
        obs = _query(ws, "SELECT square FROM number WHERE n = 3")
        assert obs["table"]["rows"] == [[9]] and obs["step_count"] == 2
        # with a budget the cheap query stayed on the loop; without one it did not
        assert manager.deferred_steps == (1 if inline_ms else 2)
        # DESCRIBE, SAMPLE and ANSWER always run inline
        ws.send_text(
            json.dumps({"type": "step", "data": {"action_type": "SAMPLE", "argument": "number"}})
        )
        ws.receive_text()
        assert manager.deferred_steps == (1 if inline_ms else 2)


def test_query_deadline_applies_in_the_thread(make_client: Any) -> None:
    client = make_client(query_timeout_s=0.3, inline_budget_ms=1)
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "reset", "data": {"question_id": "n_00"}}))
        ws.receive_text()
        forever = (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
        )
        obs = _query(ws, forever)
        assert "0.3 s deadline" in obs["error"] and obs["step_count"] == 1
        assert client.app.state.manager.deferred_steps == 1


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread niceness is Linux's")
def test_slow_query_threads_run_at_a_lower_priority(make_client: Any) -> None:
    client = make_client(inline_budget_ms=0)
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "reset", "data": {"question_id": "n_00"}}))
        ws.receive_text()
        _query(ws, "SELECT 1")
    workers = [t for t in threading.enumerate() if t.name.startswith("sqlenv-query")]
    assert workers
    loop_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    for thread in workers:
        assert thread.native_id is not None
        nice = os.getpriority(os.PRIO_PROCESS, thread.native_id)
        assert nice == min(19, loop_nice + WORKER_NICE)

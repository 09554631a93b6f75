"""HTTP contract tests: raw JSON against OpenEnv 0.10's shapes, plus HTTP sessions."""

from __future__ import annotations

from typing import Any

from sqlenv_server.routes.http import SESSION_HEADER

ENVELOPE_KEYS = {"observation", "reward", "done", "metadata"}


def _reset(client: Any, **body: Any) -> tuple[dict[str, Any], str]:
    response = client.post("/reset", json=body)
    assert response.status_code == 200, response.text
    return response.json(), response.headers[SESSION_HEADER]


def _step(client: Any, session: str | None, action_type: str, argument: str = "") -> Any:
    headers = {SESSION_HEADER: session} if session else {}
    action = {"action_type": action_type, "argument": argument}
    return client.post("/step", json={"action": action}, headers=headers)


# ------------------------------------------------------------------- discovery
def test_health(client: Any) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_metadata(client: Any) -> None:
    body = client.get("/metadata").json()
    assert body["name"] == "SQLEnv"
    assert isinstance(body["description"], str) and "questions" in body["description"]
    assert set(body) == {
        "name",
        "description",
        "readme_content",
        "version",
        "author",
        "documentation_url",
        "splits",
    }
    assert body["splits"] == [{"name": "eval", "questions": 2}, {"name": "train", "questions": 43}]


def test_schema(client: Any) -> None:
    body = client.get("/schema").json()
    assert set(body) == {"action", "observation", "state", "reset_observation"}
    assert body["action"]["additionalProperties"] is False
    assert {"action_type", "argument", "metadata"} <= set(body["action"]["properties"])
    assert {"question", "result", "error", "reward", "done"} <= set(
        body["observation"]["properties"]
    )
    assert "gold_sql" in body["state"]["properties"]


def test_openapi_and_docs(client: Any) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["version"] == "1.0.0"  # the OpenEnv HTTP API version
    assert {"/reset", "/step", "/state", "/health", "/metadata", "/schema", "/mcp"} <= set(
        spec["paths"]
    )
    assert client.get("/docs").status_code == 200


# ----------------------------------------------------------------------- reset
def test_reset_envelope_and_session(client: Any) -> None:
    body, session = _reset(client, question_id="t_count")
    assert set(body) == ENVELOPE_KEYS
    assert body["reward"] is None and body["done"] is False
    obs = body["observation"]
    assert "reward" not in obs and "done" not in obs
    assert obs["question"] == "How many customers are there?"
    assert obs["tables"] == ["customer", "orders"]
    assert obs["budget_remaining"] == 15
    assert body["metadata"] == {"session_id": session} == obs["metadata"]


def test_reset_without_body_and_with_empty_body(client: Any) -> None:
    assert client.post("/reset").status_code == 200
    assert client.post("/reset", json={}).status_code == 200


def test_reset_is_reproducible_with_seed(client: Any) -> None:
    a, _ = _reset(client, seed=7, split="train")
    b, _ = _reset(client, seed=7, split="train")
    assert a["observation"]["question"] == b["observation"]["question"]


def test_reset_ignores_unknown_keys(client: Any) -> None:
    body, _ = _reset(client, question_id="e_lions", task_id="whatever")
    assert body["observation"]["db_id"] == "zoo"


def test_reset_validation_errors_are_422(client: Any) -> None:
    response = client.post("/reset", json={"seed": "abc"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "seed"]
    assert client.post("/reset", json={"seed": -1}).status_code == 422
    assert client.post("/reset", json={"budget": 0}).status_code == 422


def test_reset_unknown_question_is_400_and_frees_the_slot(make_client: Any) -> None:
    client = make_client(max_sessions=1)
    for _ in range(3):
        response = client.post("/reset", json={"question_id": "nope"})
        assert response.status_code == 400
        assert "nope" in response.json()["detail"]
    response = client.post("/reset", json={"split": "train", "difficulty": "impossible"})
    assert response.status_code == 400
    assert "difficulties are" in response.json()["detail"]
    _reset(client)  # the failed resets left the one slot free


# ------------------------------------------------------------------------ step
def test_http_session_plays_a_whole_episode(client: Any) -> None:
    _, session = _reset(client, question_id="t_count")
    r = _step(client, session, "DESCRIBE", "customer")
    assert r.status_code == 200 and r.headers[SESSION_HEADER] == session
    body = r.json()
    assert set(body) == ENVELOPE_KEYS
    assert "Table customer" in body["observation"]["result"]
    assert isinstance(body["reward"], float) and body["done"] is False
    assert body["metadata"] == {"session_id": session}
    body = _step(client, session, "QUERY", "SELECT count(*) FROM customer").json()
    assert body["observation"]["table"]["rows"] == [[3]]
    body = _step(client, session, "ANSWER", "3").json()
    assert body["done"] is True and body["reward"] >= 1.0
    state = client.get("/state", headers={SESSION_HEADER: session}).json()
    assert state["step_count"] == 3 and state["correct"] is True
    assert state["gold_sql"] == "SELECT count(*) FROM customer"
    # stepping after the end: an observation with error, not an HTTP error
    body = _step(client, session, "QUERY", "SELECT 1").json()
    assert body["done"] is True and "over" in body["observation"]["error"]
    # the same session starts the next episode
    again = client.post(
        "/reset", json={"question_id": "e_lions"}, headers={SESSION_HEADER: session}
    )
    assert again.headers[SESSION_HEADER] == session
    assert client.get("/state", headers={SESSION_HEADER: session}).json()["step_count"] == 0


def test_agent_mistakes_are_observations(client: Any) -> None:
    _, session = _reset(client, question_id="t_count")
    body = _step(client, session, "QUERY", "DROP TABLE customer").json()
    assert "read-only" in body["observation"]["error"]
    body = _step(client, session, "DESCRIBE", "nope").json()
    assert "no such table" in body["observation"]["error"]
    body = _step(client, session, "QUERY", "").json()
    assert "QUERY needs" in body["observation"]["error"]


def test_stateless_step_without_session_is_a_clear_observation(client: Any) -> None:
    r = _step(client, None, "QUERY", "SELECT 1")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == ENVELOPE_KEYS
    assert SESSION_HEADER in body["observation"]["error"]
    assert body["done"] is False and body["metadata"] is None


def test_step_errors(client: Any) -> None:
    missing = client.post("/step", json={})
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body", "action"]
    extra = client.post("/step", json={"action": {"action_type": "QUERY", "sql": "x"}})
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["loc"] == ["sql"]
    bad_type = client.post("/step", json={"action": {"action_type": "SELECT"}})
    assert bad_type.status_code == 422
    assert "DESCRIBE" in bad_type.json()["detail"][0]["msg"]
    invalid_json = client.post(
        "/step", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert invalid_json.status_code == 422
    unknown = _step(client, "no-such-session", "QUERY", "SELECT 1")
    assert unknown.status_code == 404
    assert "POST /reset" in unknown.json()["detail"]
    # the server carries on
    _, session = _reset(client, question_id="t_count")
    assert _step(client, session, "QUERY", "SELECT 1").status_code == 200


def test_state_without_session_is_blank(client: Any) -> None:
    body = client.get("/state").json()
    assert body["episode_id"] is None and body["step_count"] == 0
    assert client.get("/state", headers={SESSION_HEADER: "nope"}).status_code == 404


def test_state_hides_gold_until_done(client: Any) -> None:
    _, session = _reset(client, question_id="t_count")
    state = client.get("/state", headers={SESSION_HEADER: session}).json()
    assert state["question_id"] == "t_count" and state["gold_sql"] is None


def test_capacity_and_closing_http_sessions(make_client: Any) -> None:
    client = make_client(max_sessions=2)
    _, first = _reset(client)
    _reset(client)
    full = client.post("/reset", json={})
    assert full.status_code == 503
    assert full.json()["max_sessions"] == 2 and "capacity" in full.json()["detail"]
    closed = client.delete("/session", headers={SESSION_HEADER: first})
    assert closed.json() == {"session_id": first, "closed": True}
    assert client.delete("/session", headers={SESSION_HEADER: first}).status_code == 404
    assert _step(client, first, "QUERY", "SELECT 1").status_code == 404
    _reset(client)  # the slot is free again


def test_idle_http_sessions_are_reaped(make_client: Any) -> None:
    client = make_client(idle_timeout_s=0.1)
    _, session = _reset(client)
    manager = client.app.state.manager
    assert manager.reap_idle(now=manager.get(session).last_active + 1) == 1
    assert _step(client, session, "QUERY", "SELECT 1").status_code == 404
    assert manager.active == 0

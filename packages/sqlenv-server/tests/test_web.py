"""The web page's mount, redirects and JSON endpoints (the page itself: test_web_browser.py)."""

from __future__ import annotations

import json
from typing import Any

from sqlenv_server.routes.http import SESSION_HEADER


def test_root_redirects_to_the_page(client: Any) -> None:
    for path in ("/", "/web"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 307 and response.headers["location"] == "/web/"
    page = client.get("/web/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


def test_questions_listing(client: Any) -> None:
    body = client.get("/web/api/questions").json()
    assert body["total"] == 45 and len(body["questions"]) == 45
    assert body["db_ids"] == ["numbers", "shop", "zoo"]
    first = next(q for q in body["questions"] if q["id"] == "t_count")
    assert first == {
        "id": "t_count",
        "question": "How many customers are there?",
        "db_id": "shop",
        "difficulty": "easy",
        "split": "train",
    }
    eval_only = client.get("/web/api/questions", params={"split": "eval"}).json()
    assert [q["id"] for q in eval_only["questions"]] == ["e_lions", "e_keepers"]
    assert eval_only["db_ids"] == ["zoo"]
    page = client.get(
        "/web/api/questions", params={"split": "train", "db_id": "numbers", "limit": 5, "offset": 5}
    ).json()
    assert [q["id"] for q in page["questions"]] == ["n_05", "n_06", "n_07", "n_08", "n_09"]
    assert page["total"] == 40
    medium = client.get("/web/api/questions", params={"difficulty": "medium"}).json()
    assert {q["id"] for q in medium["questions"]} == {"t_totals", "e_keepers"}
    none = client.get("/web/api/questions", params={"db_id": "nope"}).json()
    assert none["questions"] == [] and none["total"] == 0
    assert body["splits"] == ["eval", "train"]
    unknown = client.get("/web/api/questions", params={"split": "test"})
    assert unknown.status_code == 422 and "splits are eval, train" in unknown.text
    assert "gold_sql" not in json.dumps(body)


def test_oracle_plan_solves_its_question(make_client: Any) -> None:
    client = make_client(web_oracle=True)  # judges' replays: open for every question
    assert client.get("/web/api/settings").json() == {"oracle_open": True, "budget": 15}
    plan = client.get("/web/api/oracle/t_totals").json()
    assert [a["action_type"] for a in plan] == ["DESCRIBE", "DESCRIBE", "QUERY", "ANSWER"]
    assert plan[0] == {"action_type": "DESCRIBE", "argument": "customer"}
    session = client.post("/reset", json={"question_id": "t_totals"}).headers[SESSION_HEADER]
    for action in plan:
        body = client.post("/step", json={"action": action}, headers={SESSION_HEADER: session})
        last = body.json()
    assert last["done"] is True and last["observation"]["result"] == "Correct."
    response = client.get("/web/api/oracle/nope")
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_oracle_plan_only_after_the_episode_by_default(client: Any) -> None:
    assert client.get("/web/api/settings").json() == {"oracle_open": False, "budget": 15}
    closed = client.get("/web/api/oracle/t_count")
    assert closed.status_code == 403 and "SQLENV_WEB_ORACLE" in closed.json()["detail"]
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "reset", "data": {"question_id": "t_count"}}))
        ws.receive_text()
        ws.send_text(json.dumps({"type": "state"}))
        episode = json.loads(ws.receive_text())["data"]["episode_id"]
        url = f"/web/api/oracle/t_count?episode_id={episode}"
        assert client.get(url).status_code == 403  # not over yet
        step = {"type": "step", "data": {"action_type": "ANSWER", "argument": "0"}}
        ws.send_text(json.dumps(step))
        ws.receive_text()
        plan = client.get(url).json()
        assert plan[-1] == {"action_type": "ANSWER", "argument": "3"}
        # that episode opens its own question only
        assert client.get(f"/web/api/oracle/t_names?episode_id={episode}").status_code == 403
    assert client.get(url).status_code == 403  # the session is gone


def test_oracle_plan_fits_the_budget(make_client: Any) -> None:
    client = make_client(budget=3, web_oracle=True)
    plan = client.get("/web/api/oracle/t_totals").json()
    assert [a["action_type"] for a in plan] == ["DESCRIBE", "QUERY", "ANSWER"]

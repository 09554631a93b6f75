"""Finding 2: ``/web/api/oracle/<id>`` handed anyone the gold plan (gold SQL and answer),
unauthenticated, on the port that serves agents; ``/web/api/questions`` maps a question's
text to its id. Now the plan is given only for a question whose episode has finished in
a live session (named by its episode id), or for every question when the server runs
with ``SQLENV_WEB_ORACLE=1``.
"""

from __future__ import annotations

import json
from typing import Any


def question_id_of(client: Any, text: str) -> str:
    listing = client.get("/web/api/questions", params={"limit": 100}).json()["questions"]
    return next(q["id"] for q in listing if q["question"] == text)


def test_the_oracle_is_closed_by_default(client: Any) -> None:
    qid = question_id_of(client, "How many customers are there?")
    reply = client.get(f"/web/api/oracle/{qid}")
    assert reply.status_code == 403
    assert "count(*)" not in reply.text and "SQLENV_WEB_ORACLE" in reply.json()["detail"]
    # a made-up or unfinished episode id opens nothing
    assert client.get(f"/web/api/oracle/{qid}?episode_id=guess").status_code == 403
    with client.websocket_connect("/ws") as ws:
        ws.send_text(json.dumps({"type": "reset", "data": {"question_id": qid}}))
        ws.receive_text()
        ws.send_text(json.dumps({"type": "state"}))
        episode = json.loads(ws.receive_text())["data"]["episode_id"]
        assert client.get(f"/web/api/oracle/{qid}?episode_id={episode}").status_code == 403
        # an episode of another question opens nothing either
        other = question_id_of(client, "Total order amount of each customer name.")
        ws.send_text(
            json.dumps({"type": "step", "data": {"action_type": "ANSWER", "argument": "1"}})
        )
        ws.receive_text()
        assert client.get(f"/web/api/oracle/{other}?episode_id={episode}").status_code == 403
        # its own finished question: the plan (the state frame holds the gold by now anyway)
        plan = client.get(f"/web/api/oracle/{qid}?episode_id={episode}").json()
        assert plan[-1] == {"action_type": "ANSWER", "argument": "6"}


def test_the_setting_opens_the_oracle_for_judges(make_client: Any) -> None:
    client = make_client(web_oracle=True)
    plan = client.get("/web/api/oracle/s_count").json()
    assert plan[-2] == {"action_type": "QUERY", "argument": "SELECT count(*) FROM customer"}

"""Findings 1 and 3: what the policy reads (MCP tool results, the TRL adapter's text)
holds neither the gold nor its reward, and no tool lets it choose the question.

The exploit these guard against: over MCP, answer wrongly, call ``state`` for
``gold_sql`` and ``gold_rows``, ``reset`` to the same question and answer it for 1.0;
or probe ``SELECT 6`` and read the progress reward, which measures closeness to the
gold rows (docs/reward.md), to learn the answer without ever being told.
"""

from __future__ import annotations

import json
from typing import Any

from sqlenv_client.trl import SQLEnvTool
from sqlenv_core.dataset import load_dataset
from sqlenv_core.env import SQLEnvironment

GOLD_SQL = "SELECT count(*) FROM customer"  # s_count: the gold is 6


def rpc(client: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    reply = client.post("/mcp", json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def tool(client: Any, session: str, name: str, **arguments: Any) -> dict[str, Any]:
    reply = rpc(client, "tools/call", {"name": name, "arguments": arguments, "session_id": session})
    assert "result" in reply, reply
    return reply["result"]


def assert_no_leak(result: dict[str, Any]) -> None:
    """Nothing of the gold, the reward or the verdict, in the text or the structure."""
    text = json.dumps(result).casefold()
    for needle in ("reward", "gold", "correct", GOLD_SQL.casefold(), "metadata"):
        assert needle not in text, (needle, result)


def test_mcp_has_no_tool_to_pick_the_question_or_read_the_state(client: Any) -> None:
    tools = [t["name"] for t in rpc(client, "tools/list", {})["result"]["tools"]]
    assert tools == ["describe", "sample", "query", "answer"]
    session = rpc(client, "openenv/session/create", {})["result"]["session_id"]
    for name, arguments in (("reset", {"question_id": "s_count", "budget": 10_000}), ("state", {})):
        reply = rpc(
            client, "tools/call", {"name": name, "arguments": arguments, "session_id": session}
        )
        assert reply["error"]["code"] == -32602 and "Unknown tool" in reply["error"]["message"]


def test_mcp_results_hold_no_gold_and_no_reward(client: Any) -> None:
    session = rpc(client, "openenv/session/create", {})["result"]["session_id"]
    with client.websocket_connect(f"/ws?session_id={session}") as harness:
        harness.send_text(json.dumps({"type": "reset", "data": {"question_id": "s_count"}}))
        assert json.loads(harness.receive_text())["type"] == "observation"

        results = [
            tool(client, session, "describe", table="customer"),
            tool(client, session, "query", sql="SELECT 6"),  # the progress probe
            tool(client, session, "query", sql="SELECT 5"),
            tool(client, session, "answer", value="5"),  # wrong
            tool(client, session, "query", sql="SELECT 1"),  # after the end
        ]
        for result in results:
            assert_no_leak(result)
        probe = results[1]["structuredContent"]["observation"]
        assert probe["table"]["rows"] == [[6]]  # the rows, and nothing that ranks them
        assert results[3]["content"][0]["text"] == "Answer submitted.\n(episode over)"
        assert results[3]["structuredContent"]["observation"]["result"] == "Answer submitted."

        # the harness still reads the reward and, once over, the gold
        harness.send_text(json.dumps({"type": "state"}))
        state = json.loads(harness.receive_text())["data"]
        assert state["correct"] is False and state["gold_sql"] == GOLD_SQL


def test_trl_adapter_text_holds_no_gold_and_no_reward(data_dir: Any) -> None:
    env = SQLEnvironment(load_dataset(data_dir))
    agent = SQLEnvTool(env)
    agent.reset(question_id="s_count")
    texts = [
        agent.query("SELECT 6"),
        agent.query("SELECT 5"),
        agent.answer("5"),
    ]
    for text in texts:
        lowered = text.casefold()
        assert "reward" not in lowered and "correct" not in lowered, text
        assert GOLD_SQL.casefold() not in lowered, text
    assert texts[-1] == "Answer submitted.\n(episode over)"
    assert agent.correct is False  # the trainer still knows, through the harness

"""The ``openai`` policy against a scripted OpenAI-compatible endpoint (standard library only)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlenv_client.policies import OpenAIPolicy, make_hf_policy, make_openai_policy
from sqlenv_core.evaluation import evaluate
from sqlenv_core.prompting import system_prompt

from .test_trl_adapter import build_data


class Endpoint:
    """Answers each POST with the next scripted assistant message, and records requests."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                message = endpoint.replies.pop(0) if endpoint.replies else {"content": "I give up."}
                data = json.dumps({"choices": [{"message": {"role": "assistant", **message}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def call(name, arguments, i=0):
    return {"id": f"c{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}


@pytest.fixture
def env(tmp_path: Path):
    from sqlenv_core.dataset import load_dataset
    from sqlenv_core.env import SQLEnvironment

    with SQLEnvironment(load_dataset(build_data(tmp_path / "data"))) as e:
        yield e


def test_openai_policy_plays_with_native_and_text_tool_calls(env):
    endpoint = Endpoint(
        [
            {"content": "", "tool_calls": [call("describe", {"table": "customer"})]},
            # a server without a tool parser: the call is in the text
            {"content": '<tool_call>\n{"name": "query", "arguments": {"sql": "SELECT count(*) FROM customer"}}\n</tool_call>'},
            {"content": None, "tool_calls": [call("answer", {"value": 3})]},
        ]
    )
    try:
        policy = OpenAIPolicy(endpoint.url, "served-model", api_key="k")
        report = evaluate(env, policy, env.dataset.select(split="eval"))
    finally:
        endpoint.close()
    assert report.success_rate == 1.0 and report.tool_call_parse_rate == 1.0
    first, second, third = endpoint.requests
    assert first["path"] == "/v1/chat/completions" and first["auth"] == "Bearer k"
    assert first["model"] == "served-model" and first["temperature"] == 0.0
    assert first["messages"][0] == {"role": "system", "content": system_prompt()}
    assert first["messages"][1]["content"].startswith("How many customers?\n\nDatabase: shop")
    assert [t["function"]["name"] for t in first["tools"]] == ["describe", "sample", "query", "answer"]
    assert all("return" not in t["function"] for t in first["tools"])
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["tool_call_id"] == "c0"
    assert tool_message["content"].startswith("Table customer (3 rows)")
    assert third["messages"][-1]["content"].startswith("count(*)\n3\n(1 row)")


def test_a_turn_without_a_tool_call_ends_the_episode_unanswered(env):
    endpoint = Endpoint(
        [
            {"content": "", "tool_calls": [call("describe", {"tbl": "customer"})]},  # invalid: no step used
            {"content": "The answer is 3."},
        ]
    )
    try:
        report = evaluate(env, OpenAIPolicy(endpoint.url, "m"), env.dataset.select(split="eval"))
    finally:
        endpoint.close()
    assert report.success_rate == 0.0 and report.episodes[0].steps == 0 and report.errors == 0
    assert report.tool_call_parse_rate == 0.0
    error = endpoint.requests[1]["messages"][-1]
    assert error["role"] == "tool" and "needs the argument 'table'" in error["content"]


def test_factories_check_their_options():
    with pytest.raises(ValueError, match="--base-url and --model"):
        make_openai_policy(model="m")
    with pytest.raises(ValueError, match="--model is required"):
        make_hf_policy()
    assert make_openai_policy(base_url="http://x/v1/", model="m", budget=3).url == "http://x/v1/chat/completions"

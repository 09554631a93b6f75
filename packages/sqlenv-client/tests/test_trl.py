"""The adapter and the ``hf`` policy with real TRL, transformers and torch (the ``trl`` extra).

Skipped unless the training dependencies are installed (``uv sync --group train``;
``.ci/run`` does). Everything is offline: a tokenizer trained in process and a tiny
random Qwen3 (``sqlenv_client.hf.tiny_qwen3``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from unittest import mock

import pytest

pytest.importorskip("torch", reason="needs the trl extra: uv sync --group train")
pytest.importorskip("trl", reason="needs the trl extra: uv sync --group train")
transformers = pytest.importorskip(
    "transformers", reason="needs the trl extra: uv sync --group train"
)

import torch  # noqa: E402
from sqlenv_client.hf import tiny_qwen3  # noqa: E402
from sqlenv_client.policies import HFPolicy  # noqa: E402
from sqlenv_client.trl import SQLEnvTool, make_train_dataset  # noqa: E402
from sqlenv_core.prompting import TOOLS, user_message  # noqa: E402
from transformers.utils import get_json_schema  # noqa: E402

from .test_trl_adapter import FakeEnv, build_data  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning"
)


@pytest.fixture(scope="module")
def tiny():
    return tiny_qwen3(["How many customers?", "SELECT count(*) FROM customer"])


@pytest.fixture
def dataset(tmp_path: Path):
    from sqlenv_core.dataset import load_dataset

    return load_dataset(build_data(tmp_path / "data"))


def test_tool_schemas_are_pinned():
    """TRL builds the tool schemas from the methods; they are prompting.TOOLS exactly."""
    tool = SQLEnvTool(FakeEnv())
    schemas = [get_json_schema(getattr(tool, t["function"]["name"])) for t in TOOLS]
    assert schemas == TOOLS
    assert TOOLS[2] == {
        "type": "function",
        "function": {
            "name": "query",
            "description": "Run one read-only SQL SELECT on the database and show its result rows.",
            "parameters": {
                "type": "object",
                "properties": {
                    "sql": {"type": "string", "description": "A single SQLite SELECT statement."}
                },
                "required": ["sql"],
            },
            "return": {"type": "string"},
        },
    }


def test_training_and_evaluation_render_the_same_prompt(tiny, dataset):
    """The prompt TRL renders (row + reset suffix, tools from the methods) is the eval prompt."""
    _, tok = tiny
    from sqlenv_core.env import SQLEnvironment

    env = SQLEnvironment(dataset)
    tool = SQLEnvTool(env, budget=6)
    row = make_train_dataset(dataset.select(split="train"))[0]
    suffix = tool.reset(**row)
    trl_prompt = [
        *row["prompt"][:-1],
        {**row["prompt"][-1], "content": row["prompt"][-1]["content"] + suffix},
    ]
    methods = [getattr(tool, t["function"]["name"]) for t in TOOLS]
    trl_text = tok.apply_chat_template(
        trl_prompt, tools=methods, tokenize=False, add_generation_prompt=True, enable_thinking=False
    )
    obs = env.reset(question_id=row["question_id"], budget=6)
    policy = HFPolicy(*tiny, max_new_tokens=4)
    policy.begin(obs, row["question_id"])
    assert tok.decode(policy._prompt_ids) == trl_text
    assert user_message(obs.question, obs.db_id, obs.tables, 6) in trl_text


# --- a GRPO step with scripted tool calls -----------------------------------------------

SCRIPTS = {
    "good": [
        '<tool_call>\n{"name": "describe", "arguments": {"table": "customer"}}\n</tool_call>',
        '<tool_call>\n{"name": "query", "arguments": {"sql": "SELECT count(*) FROM customer"}}\n</tool_call>',
        '<tool_call>\n{"name": "answer", "arguments": {"value": "3"}}\n</tool_call>',
        "Done.",
    ],
    "wrong": [
        '<tool_call>\n{"name": "answer", "arguments": {"value": "7"}}\n</tool_call>',
        "Done.",
    ],
    "silent": ["I do not know."],
    "bad_then_right": [
        '<tool_call>\n{"name": "describe", "arguments": {"tbl": "customer"}}\n</tool_call>',
        '<tool_call>\n{"name": "answer", "arguments": {"value": 3}}\n</tool_call>',
        '<tool_call>\n{"name": "query", "arguments": {"sql": "SELECT 1"}}\n</tool_call>',  # after the end
        "Done.",
    ],
}


def scripted_generate(tok, order):
    """A ``generate`` that writes each rollout's scripted turn; the rollout is known by
    its first turn, the turn by the number of tool responses in the context."""
    calls = {"n": 0}

    def generate(input_ids, attention_mask=None, **kwargs):
        rows = []
        for i, ids in enumerate(input_ids.tolist()):
            text = tok.decode([t for t in ids if t != tok.pad_token_id])
            turn = text.count("<tool_response>")
            if calls["n"] == 0:
                name = order[i]
            else:
                name = next(n for n, s in SCRIPTS.items() if s[0] in text)
            script = SCRIPTS[name]
            reply = script[min(turn, len(script) - 1)]
            rows.append(ids + tok.encode(reply) + [tok.eos_token_id])
        calls["n"] += 1
        width = max(map(len, rows))
        return torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows])

    return generate


def grpo_step(tiny, dataset, factory, output_dir, on_turn=None):
    """One GRPO step with the scripted rollouts; the rewards TRL computed and the tools.

    ``on_turn(n)`` runs before the n-th generation (0: before any tool call)."""
    from sqlenv_client.training import grpo_trainer

    model, tok = tiny
    trainer = grpo_trainer(
        model,
        tok,
        make_train_dataset(dataset.select(split="train")),
        factory,
        budget=5,
        output_dir=output_dir,
        max_steps=1,
        num_generations=4,
        max_completion_length=400,
        learning_rate=1e-3,
    )
    seen = []
    original = trainer._calculate_rewards

    def spy(*args, **kwargs):
        rewards = original(*args, **kwargs)
        seen.append((rewards.clone(), list(trainer.environments)))
        return rewards

    generate = scripted_generate(tok, list(SCRIPTS))
    turns = {"n": 0}

    def generate_turn(*args, **kwargs):
        if on_turn is not None:
            on_turn(turns["n"])
        turns["n"] += 1
        return generate(*args, **kwargs)

    with (
        mock.patch.object(trainer.model, "generate", generate_turn),
        mock.patch.object(trainer, "_calculate_rewards", spy),
    ):
        trainer.train()
    ((rewards, envs),) = seen
    return trainer, rewards, envs


def test_a_grpo_step_scores_rollouts_with_the_environments_returns(tiny, dataset, tmp_path):
    from sqlenv_core.env import SQLEnvironment

    factory = SQLEnvTool.factory(lambda: SQLEnvironment(dataset), budget=5)
    trainer, rewards, envs = grpo_step(tiny, dataset, factory, tmp_path / "grpo")
    order = list(SCRIPTS)
    assert trainer.reward_func_names == ["ToolUsePenalty", "SQLEnvTool"]
    penalties, received = rewards[:, 0].tolist(), rewards[:, 1].tolist()  # received: get_reward
    returns = [e._env.state.total_reward if e.question_id else 0.0 for e in envs]
    assert received == pytest.approx(returns)
    by_script = dict(zip(order, envs, strict=True))
    assert by_script["good"].correct and by_script["bad_then_right"].correct
    assert by_script["wrong"].correct is False and by_script["silent"].done is False
    # the call with a wrong argument name failed in TRL (a TypeError) and used no step
    assert by_script["bad_then_right"].steps == 1
    assert received[order.index("good")] > 1 and received[order.index("silent")] == 0
    # the training-only penalty: one failed call, and no answer from the silent rollout
    expected = {"good": 0.0, "wrong": 0.0, "silent": -0.1, "bad_then_right": -0.05}
    assert penalties == pytest.approx([expected[name] for name in order])
    logged = trainer.state.log_history[0]
    assert logged["rewards/SQLEnvTool/mean"] == pytest.approx(sum(returns) / 4)
    assert logged["tools/call_frequency"] > 0 and logged["tools/failure_frequency"] > 0


def _server(data_dir: Path, log: Path):
    """``python -m sqlenv_server`` on a free port (the workspace run has the server)."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "sqlenv_server", "--data-dir", str(data_dir)]
    cmd += ["--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1)
            return proc, url
        except OSError:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"server not healthy: {log.read_text()}")


def test_a_grpo_step_through_the_pool_scores_like_in_process_when_a_server_dies(
    tiny, dataset, tmp_path
):
    """Two real servers behind an ``EnvPool``; one is killed after the rollouts' first
    tool calls. TRL's rewards are those of the in-process run, and the interrupted
    episodes were replayed on the live server and counted."""
    pytest.importorskip("sqlenv_server", reason="needs the server package (workspace run)")
    import signal

    from sqlenv_client import EnvPool
    from sqlenv_core.env import SQLEnvironment

    local = SQLEnvTool.factory(lambda: SQLEnvironment(dataset), budget=5)
    _, expected, local_envs = grpo_step(tiny, dataset, local, tmp_path / "local")

    data_dir = tmp_path / "data"  # the dataset fixture's directory
    a, a_url = _server(data_dir, tmp_path / "a.log")
    b, b_url = _server(data_dir, tmp_path / "b.log")
    try:
        pool = EnvPool([a_url, b_url], size=8)

        def kill_a(turn: int) -> None:
            if turn == 1:  # after the first tool calls: episodes are under way on both
                a.send_signal(signal.SIGKILL)

        factory = SQLEnvTool.factory(pool=pool, budget=5)
        _, rewards, envs = grpo_step(tiny, dataset, factory, tmp_path / "pool", kill_a)
        assert a.wait(5) == -signal.SIGKILL
    finally:
        for proc in (a, b):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
    assert rewards.flatten().tolist() == pytest.approx(expected.flatten().tolist())
    assert [e.correct for e in envs] == [e.correct for e in local_envs]
    assert [e.steps for e in envs] == [e.steps for e in local_envs]
    stats = pool.stats.as_dict()
    assert stats["episodes_started"] == 4 and stats["episodes_lost"] == 0
    assert stats["episodes_restarted"] >= 1, stats
    pool.close()


def test_hf_policy_replays_the_trl_rollout(tiny, dataset):
    """The eval policy parses and executes the scripted turns as TRL did, and counts them."""
    from sqlenv_core.env import SQLEnvironment
    from sqlenv_core.evaluation import evaluate

    model, tok = tiny
    env = SQLEnvironment(dataset)
    results = {}
    for name in SCRIPTS:
        policy = HFPolicy(model, tok, max_new_tokens=8, budget=5)
        with mock.patch.object(model, "generate", scripted_generate(tok, [name])):
            report = evaluate(env, policy, dataset.select(split="train"))
        results[name] = (report.success_rate, report.episodes[0].steps, policy.tool_call_counts())
    assert results["good"] == (1.0, 3, (3, 3))
    assert results["wrong"] == (0.0, 1, (1, 1))
    assert results["silent"] == (0.0, 0, (0, 1))
    assert results["bad_then_right"] == (1.0, 1, (1, 2))


def test_eval_cli_runs_a_saved_model(tiny, tmp_path, capsys):
    from sqlenv_core.cli import main

    model, tok = tiny
    model.save_pretrained(tmp_path / "model")
    tok.save_pretrained(tmp_path / "model")
    data = build_data(tmp_path / "data")
    argv = ["--data-dir", str(data), "eval", "--policy", "hf", "--model", str(tmp_path / "model")]
    assert main([*argv, "--max-new-tokens", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy"] == "hf" and report["n"] == 1
    assert report["tool_call_parse_rate"] == 0.0  # a random model makes no tool call

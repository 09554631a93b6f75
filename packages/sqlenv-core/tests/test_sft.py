"""Warm-up data: oracle trajectories as tool-calling chats."""

from __future__ import annotations

import json
from pathlib import Path

from sqlenv_core.cli import main
from sqlenv_core.prompting import FINAL_MESSAGE, TOOLS, system_prompt, user_message
from sqlenv_core.sft import SFTOptions, build_trajectory, iter_trajectories


def _calls(trajectory):
    return [
        (m["tool_calls"][0]["function"]["name"], m["tool_calls"][0]["function"]["arguments"])
        for m in trajectory["messages"]
        if m.get("tool_calls")
    ]


def test_a_trajectory_is_a_chat_that_ends_in_a_correct_answer(tiny_env):
    q = tiny_env.dataset.get("t_totals")
    t = build_trajectory(tiny_env, q, SFTOptions(p_skip=0, p_sample=0, p_distractor=0))
    assert t is not None and t["tools"] == TOOLS and t["question_id"] == "t_totals"
    messages = t["messages"]
    assert messages[0] == {"role": "system", "content": system_prompt()}
    assert messages[1]["content"] == user_message(q.question, "shop", ["customer", "orders"], 15)
    calls = _calls(t)
    assert [name for name, _ in calls] == ["describe", "describe", "query", "answer"]
    assert calls[2][1] == {"sql": q.gold_sql}
    roles = [m["role"] for m in messages[2:]]
    assert roles == ["assistant", "tool"] * 4 + ["assistant"]
    assert messages[-2]["content"] == "Answer submitted.\n(episode over)"  # no verdict
    assert messages[-1] == {"role": "assistant", "content": FINAL_MESSAGE}
    # each tool message is what the engine returned, with the steps left
    assert messages[3]["name"] == "describe" and messages[3]["content"].endswith("(14 steps left)")
    assert tiny_env.state.correct


def test_plans_vary_by_seed(tiny_env):
    q = tiny_env.dataset.get("t_totals")
    plans = {
        tuple(name for name, _ in _calls(build_trajectory(tiny_env, q, SFTOptions(seed=s))))
        for s in range(40)
    }
    assert len(plans) >= 3
    assert any(p.count("describe") < 2 for p in plans)  # not every trajectory describes every table
    assert all(p[-2:] == ("query", "answer") for p in plans)


def test_long_answers_are_left_out(tiny_env):
    questions = list(tiny_env.dataset)
    assert len(list(iter_trajectories(tiny_env, questions, SFTOptions(max_answer_chars=3)))) < len(
        list(iter_trajectories(tiny_env, questions))
    )


def test_sft_data_command(tiny_data_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / "sft.jsonl"
    argv = ["--data-dir", str(tiny_data_dir), "sft-data", "--split", "train", "--out", str(out)]
    assert main(argv) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and {r["question_id"] for r in rows} == {"t_count", "t_names", "t_totals"}
    assert "wrote 3 trajectories" in capsys.readouterr().out
    assert main([*argv, "--limit", "1"]) == 0
    assert len(out.read_text().splitlines()) == 1
    assert main([*argv, "--difficulty", "medium"]) == 0
    assert [json.loads(x)["question_id"] for x in out.read_text().splitlines()] == ["t_totals"]

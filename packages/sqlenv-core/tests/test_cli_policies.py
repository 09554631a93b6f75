"""Policies found through the ``sqlenv.policies`` entry points, and the model-policy report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlenv_core import cli
from sqlenv_core.evaluation import evaluate, sample_questions
from sqlenv_core.schemas import SQLAction


class ScriptedModel:
    """A stand-in for a model policy: one unparsable turn, then the right answer."""

    name = "scripted"

    def __init__(self, **options):
        self.options = options
        self.turns = self.parsed = 0

    def begin(self, observation, question_id):
        self.question_id = question_id
        self.step = 0

    def act(self, observation):
        self.turns += 1
        self.step += 1
        if self.question_id == "e_keepers":
            return None  # stops calling tools: the episode ends unanswered
        if self.step == 1:
            return SQLAction(action_type="QUERY", argument="SELECT count(*) FROM animal WHERE species = 'lion'")
        self.parsed += 1
        return SQLAction(action_type="ANSWER", argument="2")

    def tool_call_counts(self):
        return self.parsed, self.turns


class FakeEntryPoint:
    def __init__(self, name, target):
        self.name, self._target = name, target

    def load(self):
        if isinstance(self._target, Exception):
            raise self._target
        return self._target


@pytest.fixture
def policies(monkeypatch):
    found = {}
    monkeypatch.setattr(cli, "_discovered_policies", lambda: found)
    return found


def test_a_discovered_policy_gets_the_model_options(tiny_data_dir: Path, policies, capsys, tmp_path):
    made = []

    def factory(**options):
        made.append(ScriptedModel(**options))
        return made[-1]

    policies["scripted"] = FakeEntryPoint("scripted", factory)
    out = tmp_path / "report.json"
    argv = ["--data-dir", str(tiny_data_dir), "--budget", "7", "eval", "--policy", "scripted"]
    argv += ["--model", "m", "--base-url", "http://x/v1", "--max-new-tokens", "9", "--json", "--out", str(out)]
    assert cli.main(argv) == 0
    assert made[0].options == {
        "seed": 0,
        "budget": 7,
        "model": "m",
        "base_url": "http://x/v1",
        "max_new_tokens": 9,
    }
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 2 and report["success_rate"] == 0.5
    assert report["tool_call_parse_rate"] == pytest.approx(1 / 3)
    full = json.loads(out.read_text())
    assert {e["question_id"]: e["steps"] for e in full["episodes"]} == {"e_lions": 2, "e_keepers": 0}


def test_missing_model_policies_say_how_to_install_them(tiny_data_dir: Path, policies, capsys):
    assert cli.main(["--data-dir", str(tiny_data_dir), "eval", "--policy", "hf"]) == 2
    err = capsys.readouterr().err
    assert "unknown policy 'hf'" in err and 'pip install "sqlenv-client[trl]"' in err
    assert "available: oracle, random" in err
    policies["hf"] = FakeEntryPoint("hf", ImportError("No module named 'torch'", name="torch"))
    assert cli.main(["--data-dir", str(tiny_data_dir), "eval", "--policy", "hf"]) == 2
    assert 'sqlenv-client[trl]' in capsys.readouterr().err


def test_factory_errors_are_reported(tiny_data_dir: Path, policies, capsys):
    def factory(**options):
        raise ValueError("--model is required")

    policies["hf"] = FakeEntryPoint("hf", factory)
    assert cli.main(["--data-dir", str(tiny_data_dir), "eval", "--policy", "hf"]) == 2
    assert "policy 'hf': --model is required" in capsys.readouterr().err


def test_builtin_policies_report_no_parse_rate(tiny_env):
    from sqlenv_core.policies import OraclePolicy

    report = evaluate(tiny_env, OraclePolicy(tiny_env.dataset), tiny_env.dataset.select(split="eval"))
    assert report.tool_call_parse_rate is None and report.success_rate == 1.0


def test_sample_questions_is_fixed_and_bounded(tiny_env):
    questions = tiny_env.dataset.select(split="train")
    assert sample_questions(questions, None) == list(questions)
    assert sample_questions(questions, 10) == list(questions)
    two = sample_questions(questions, 2, seed=3)
    assert len(two) == 2 and two == sample_questions(questions, 2, seed=3)


class RecordingEnv:
    """Stands in for sqlenv-client's pooled session: an in-process engine, recorded."""

    def __init__(self, urls, data_dir):
        from sqlenv_core.dataset import load_dataset
        from sqlenv_core.env import SQLEnvironment

        self.urls = urls
        self.env = SQLEnvironment(load_dataset(data_dir))
        self.resets = []
        self.closed = False

    def reset(self, **kwargs):
        self.resets.append(kwargs)
        return self.env.reset(**kwargs)

    def step(self, action):
        return self.env.step(action)

    def state(self):
        return self.env.state

    def close(self):
        self.closed = True


def test_eval_server_plays_through_the_remote_entry_point(tiny_data_dir: Path, monkeypatch, capsys):
    made = []

    def factory(urls):
        made.append(RecordingEnv(urls, tiny_data_dir))
        return made[-1]

    found = {cli.REMOTE_GROUP: [FakeEntryPoint("pool", factory)]}
    monkeypatch.setattr(cli, "entry_points", lambda group: found.get(group, []))
    argv = ["--data-dir", str(tiny_data_dir), "--budget", "6", "eval", "--policy", "oracle"]
    argv += ["--server", "http://a:8000", "--server", "http://b:8000", "--json"]
    assert cli.main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["success_rate"] == 1.0
    (env,) = made
    assert env.urls == ["http://a:8000", "http://b:8000"] and env.closed
    assert len(env.resets) == report["n"] and all(r["budget"] == 6 for r in env.resets)


def test_eval_server_without_sqlenv_client_says_what_to_install(
    tiny_data_dir: Path, monkeypatch, capsys
):
    monkeypatch.setattr(cli, "entry_points", lambda group: [])
    argv = ["--data-dir", str(tiny_data_dir), "eval", "--policy", "oracle"]
    argv += ["--server", "http://a:1"]
    assert cli.main(argv) == 2
    assert "--server needs sqlenv-client: pip install sqlenv-client" in capsys.readouterr().err

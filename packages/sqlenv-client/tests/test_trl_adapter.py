"""``SQLEnvTool``, the TRL ``environment_factory`` adapter, without TRL or torch.

It drives a fake environment, an in-process engine over a tiny temp database, and
(through ``SQLEnvClient``) the scripted fake server of ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import inspect
import sqlite3
from pathlib import Path

import pytest
from sqlenv_client.trl import SQLEnvTool, ToolUsePenalty, episode_return
from sqlenv_core.prompting import EPISODE_OVER, TOOL_NAMES, question_suffix, training_row
from sqlenv_core.schemas import RewardBreakdown, SQLObservation


def build_data(root: Path) -> Path:
    """One database, two questions, in the layout ``load_dataset`` reads."""
    from sqlenv_core.dataset import Question, dump_questions

    db = root / "databases" / "shop" / "shop.sqlite"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT);"
            "INSERT INTO customer VALUES (1, 'Ada'), (2, 'Bob'), (3, 'Cy');"
        )
    conn.close()
    (root / "questions").mkdir()
    common = {
        "source": "train_spider",
        "db_id": "shop",
        "gold_columns": ["count(*)"],
        "order_matters": False,
        "answer_shape": "scalar",
        "tables": ["customer"],
        "difficulty": "easy",
    }
    train = Question(
        id="t1",
        split="train",
        question="How many customers?",
        gold_sql="SELECT count(*) FROM customer",
        gold_rows=[[3]],
        **common,
    )
    dev = Question(**{**train.model_dump(), "id": "e1", "split": "eval", "source": "dev"})
    dump_questions([train], root / "questions" / "train.jsonl")
    dump_questions([dev], root / "questions" / "eval.jsonl")
    return root


@pytest.fixture
def engine(tmp_path: Path):
    from sqlenv_core.dataset import load_dataset
    from sqlenv_core.env import SQLEnvironment

    dataset = load_dataset(build_data(tmp_path / "data"))
    made = []

    def make():
        made.append(SQLEnvironment(dataset))
        return made[-1]

    yield make
    for env in made:
        env.close()


class FakeEnv:
    def __init__(self):
        self.resets, self.actions = [], []
        self.done_after: int | None = None  # end the episode after this many steps (budget spent)

    def reset(self, seed=None, question_id=None, **kw):
        self.resets.append({"question_id": question_id, **kw})
        return SQLObservation(
            question="Q?", db_id="db", tables=["a", "b"], budget_remaining=kw.get("budget", 15)
        )

    def step(self, action):
        self.actions.append(action)
        done = action.action_type == "ANSWER" or len(self.actions) == self.done_after
        return SQLObservation(
            result="ok",
            reward=0.5 if done else 0.01,
            done=done,
            step_count=len(self.actions),
            budget_remaining=3,
            reward_breakdown=RewardBreakdown.of(terminal=0.49 if done else 0.0, operational=0.01),
        )


def test_public_methods_are_exactly_the_tools():
    """TRL turns every public method except reset and get_reward into a tool."""
    public = {
        name
        for name, _ in inspect.getmembers(SQLEnvTool, predicate=inspect.isfunction)
        if not name.startswith("_")
    }
    assert public - {"reset", "get_reward", "factory"} == set(TOOL_NAMES)
    # factory is a classmethod: TRL lists functions of the class, and a bound classmethod is not one
    assert not inspect.isfunction(inspect.getattr_static(SQLEnvTool, "factory"))
    for name in TOOL_NAMES:
        method = getattr(SQLEnvTool, name)
        assert "Args:" in method.__doc__
        assert all(
            p.annotation == "str"
            for n, p in inspect.signature(method).parameters.items()
            if n != "self"
        )


def test_reset_is_routed_by_question_id_with_the_shared_budget():
    fake = FakeEnv()
    tool = SQLEnvTool.factory(lambda: fake, budget=4)()
    suffix = tool.reset(question_id="q7", question="ignored text", prompt=[], db_id="db")
    assert fake.resets == [{"question_id": "q7", "budget": 4}]
    assert suffix == question_suffix("db", ["a", "b"], 4)
    with pytest.raises(ValueError, match="question_id"):
        tool.reset(question="How many?")


def test_tools_step_and_the_return_is_the_sum_of_step_rewards():
    fake = FakeEnv()
    tool = SQLEnvTool(fake)
    tool.reset(question_id="q")
    assert tool.describe("a") == "ok\n(3 steps left)"
    tool.query("SELECT 1")
    assert tool.answer("42") == "Answer submitted.\n(episode over)"  # never the verdict
    assert [a.action_type for a in fake.actions] == ["DESCRIBE", "QUERY", "ANSWER"]
    assert tool.get_reward() == pytest.approx(0.52) and tool.done and tool.correct
    assert episode_return([tool]) == [tool.get_reward()]
    # after the end, calls are no-ops that say so
    assert tool.sample("a") == EPISODE_OVER and len(fake.actions) == 3
    tool.reset(question_id="q2")
    assert tool.reward == 0 and not tool.done and tool.correct is None


def test_invalid_arguments_raise_for_trl_and_use_no_step():
    fake = FakeEnv()
    tool = SQLEnvTool(fake)
    tool.reset(question_id="q")
    with pytest.raises(ValueError, match="must be a string"):
        tool.query(sql=5)
    assert (
        tool.answer(value=7) == "Answer submitted.\n(episode over)"
    )  # answers may be numbers: sent as JSON
    assert fake.actions[-1].argument == "7" and tool.invalid_calls == 1


def test_in_process_engine_episode(engine):
    tool = SQLEnvTool(engine, budget=5)
    question = {
        "id": "t1",
        "question": "How many customers?",
        "db_id": "shop",
        "difficulty": "easy",
    }
    row = training_row(type("Q", (), question)())
    assert tool.reset(**row) == "\n\nDatabase: shop\nTables: customer\nBudget: 5 steps"
    assert "name: TEXT" in tool.describe("customer")
    assert tool.sample("nope").startswith("Error: ")  # an agent mistake: it uses a step
    tool.query("SELECT count(*) FROM customer")
    assert tool.answer("3") == "Answer submitted.\n(episode over)"  # no verdict
    state = tool._env.state
    assert tool.correct and tool.get_reward() == pytest.approx(state.total_reward)
    assert tool.steps == state.step_count == 4


def test_budget_exhaustion_ends_the_episode_unanswered(engine):
    tool = SQLEnvTool(engine, budget=2)
    tool.reset(question_id="t1")
    tool.describe("customer")
    assert tool.describe("customer").endswith("(episode over)")
    assert tool.done and tool.correct is False
    assert tool.query("SELECT 1") == EPISODE_OVER


def test_default_mode_drives_a_server_through_the_client(server):
    tool = SQLEnvTool.factory(base_url=server.url, budget=10)()
    try:
        assert tool.reset(question_id="q1").startswith(
            "\n\nDatabase: concert_singer\nTables: singer, concert"
        )
        reset = server.session().frames[0]
        assert reset["type"] == "reset" and reset["data"]["question_id"] == "q1"
        assert reset["data"]["budget"] == 10
        assert tool.describe("singer").startswith("singer: singer_id INTEGER")
        tool.query("SELECT count(*) FROM singer")
        tool.answer("6")
        assert tool.done and tool.get_reward() == pytest.approx(1.05)
    finally:
        tool._close()


def test_pool_mode_takes_a_pooled_session_per_instance(server):
    from sqlenv_client import EnvPool

    with EnvPool(server.url, size=2) as pool:
        factory = SQLEnvTool.factory(pool=pool, budget=10)
        tool, other = factory(), factory()
        tool.reset(question_id="q1")
        other.reset(question_id="q2")
        tool.answer("6")
        assert tool.done and tool.get_reward() == pytest.approx(1.0)
        assert pool.stats.episodes_started == 2 and pool.stats.episodes_completed == 1
        with pytest.raises(RuntimeError, match="the pool is full"):
            factory()
        with pytest.raises(ValueError, match="give pool alone"):
            SQLEnvTool(pool=pool, base_url=server.url)


def _tool_messages(n: int) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": ""}] + [{"role": "tool", "content": "x"}] * n


def test_tool_use_penalty_ranks_failing_rollouts_below_answering_ones():
    """A group whose returns are all 0 still differs in failed calls and answers."""
    penalty = ToolUsePenalty(failed_call=0.05, max_failed=2, unanswered=0.1)

    def rollout(calls: list[tuple[str, dict]], failed_in_trl: int) -> SQLEnvTool:
        tool = SQLEnvTool(FakeEnv())
        tool.reset(question_id="q")
        for name, kwargs in calls:
            with contextlib.suppress(ValueError):
                getattr(tool, name)(**kwargs)
        tool._trl_messages = _tool_messages(len(calls) + failed_in_trl)
        return tool

    answered = rollout([("describe", {"table": "a"}), ("answer", {"value": "1"})], 0)
    one_bad = rollout([("answer", {"value": "1"})], 1)  # e.g. answer(table=...) rejected by TRL
    rejected = rollout([("query", {"sql": 5})], 0)  # reached the tool, which raised
    silent = rollout([], 0)
    many_bad = rollout([], 5)
    envs = [answered, one_bad, rejected, silent, many_bad]
    got = penalty([e._trl_messages for e in envs], envs)
    assert got == pytest.approx([0.0, -0.05, -0.15, -0.1, -0.2])
    assert answered.answered and not rejected.answered
    assert [penalty.failed_calls(e._trl_messages, e) for e in envs] == [0, 1, 1, 0, 5]
    # a plain-text completion (no tool messages) still counts the calls the tool rejected
    assert penalty.failed_calls("prose", rejected) == 1


def test_tool_use_penalty_never_pays_for_stopping():
    with pytest.raises(ValueError, match="unanswered"):
        ToolUsePenalty(failed_call=0.2, unanswered=0.1)
    with pytest.raises(ValueError, match=">= 0"):
        ToolUsePenalty(failed_call=-1)


def test_budget_spent_is_not_an_answer():
    fake = FakeEnv()
    tool = SQLEnvTool(fake)
    tool.reset(question_id="q")
    fake.done_after = 1
    tool.describe("a")
    assert tool.done and not tool.answered

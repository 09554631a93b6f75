from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlenv_core.config import EnvConfig
from sqlenv_core.dataset import load_dataset
from sqlenv_core.env import SQLEnvironment
from sqlenv_core.errors import ResetNeeded, UnknownQuestionError
from sqlenv_core.schemas import SQLAction, SQLObservation


def act(env: SQLEnvironment, kind: str, argument: str) -> SQLObservation:
    return env.step(SQLAction(action_type=kind, argument=argument))


def test_reset_shows_question_tables_and_budget_but_hides_schema(tiny_env):
    obs = tiny_env.reset(question_id="t_totals")
    assert obs.question == "Total order amount of each customer name."
    assert obs.tables == ["customer", "orders"]
    assert obs.budget_remaining == 15 and obs.step_count == 0
    assert obs.schema_info == "Tables: customer, orders"
    assert "customer_id" not in obs.model_dump_json()  # columns stay hidden until DESCRIBE
    assert obs.done is False and obs.reward is None


def test_same_seed_same_question_and_filters(tiny_env):
    picks = {tiny_env.reset(seed=s).question for s in range(20)}
    assert len(picks) > 1, "seeds should spread over the train questions"
    for seed in range(10):
        first = tiny_env.reset(seed=seed).question
        assert tiny_env.reset(seed=seed).question == first
    # default split is train; eval is only drawn when asked
    assert {tiny_env.reset(seed=s).db_id for s in range(20)} == {"shop"}
    assert {tiny_env.reset(seed=s, split="eval").db_id for s in range(5)} == {"zoo"}
    assert tiny_env.reset(seed=1, db_id="zoo").db_id == "zoo"
    for seed in range(10):
        tiny_env.reset(seed=seed, difficulty="medium")
        assert tiny_env.state.difficulty == "medium"


def test_unknown_filters_raise_clear_errors(tiny_env):
    with pytest.raises(UnknownQuestionError, match="unknown question_id 'nope'"):
        tiny_env.reset(question_id="nope")
    with pytest.raises(UnknownQuestionError, match="splits are eval, train"):
        tiny_env.reset(split="test")
    with pytest.raises(UnknownQuestionError, match="databases are available"):
        tiny_env.reset(db_id="atlantis")


def test_describe_reveals_columns_keys_and_row_count(tiny_env):
    tiny_env.reset(question_id="t_totals")
    obs = act(tiny_env, "DESCRIBE", "ORDERS")
    assert obs.error == ""
    assert "Table orders (4 rows)" in obs.result
    assert "customer_id: INTEGER, references customer.id" in obs.result
    assert "id: INTEGER, primary key" in obs.result
    assert obs.table is not None and [r[0] for r in obs.table.rows] == [
        "id",
        "customer_id",
        "amount",
    ]
    assert (
        "orders(id INTEGER PK, customer_id INTEGER -> customer.id, amount REAL)" in obs.schema_info
    )
    assert obs.step_count == 1 and obs.budget_remaining == 14


def test_table_names_match_case_insensitively_and_with_spaces(tiny_env):
    tiny_env.reset(question_id="e_keepers")
    obs = act(tiny_env, "describe", "animal keeper")
    assert obs.error == "" and "Table Animal Keeper (2 rows)" in obs.result
    obs = act(tiny_env, "SAMPLE", '"Animal Keeper"')
    assert obs.error == "" and obs.table is not None and len(obs.table.rows) == 2


def test_unknown_table_lists_the_tables(tiny_env):
    tiny_env.reset(question_id="t_count")
    obs = act(tiny_env, "DESCRIBE", "clients")
    assert "clients" in obs.error and "customer" in obs.error and "orders" in obs.error
    assert obs.step_count == 1 and obs.reward is not None and obs.reward < 0


def test_sample_and_query_render_text_and_rows(tiny_env):
    tiny_env.reset(question_id="t_names")
    obs = act(tiny_env, "SAMPLE", "customer")
    assert obs.result.startswith("Sample of customer:\nid | name | city")
    assert "3 | Cy | NULL" in obs.result
    obs = act(tiny_env, "QUERY", "SELECT name FROM customer ORDER BY name")
    assert obs.result == "name\nAda\nBob\nCy\n(3 rows)"
    assert obs.table is not None and obs.table.rows == [["Ada"], ["Bob"], ["Cy"]]


def test_repeated_results_render_the_same_and_keep_their_types(tiny_env):
    """Small results' renderings are remembered; equal values of other types (3, 3.0)
    and other column names must not share one."""
    first = []
    for _ in range(2):
        tiny_env.reset(question_id="t_names")
        first.append(
            [
                act(tiny_env, "QUERY", sql).result
                for sql in ("SELECT 3 AS n", "SELECT 3.0 AS n", "SELECT 3 AS m", "SELECT '3' AS n")
            ]
        )
    assert first[0] == first[1]
    assert first[0] == ["n\n3\n(1 row)", "n\n3.0\n(1 row)", "m\n3\n(1 row)", "n\n3\n(1 row)"]
    tiny_env.reset(question_id="t_names")
    obs = act(tiny_env, "QUERY", "SELECT 3.0 AS n")
    assert (
        obs.table is not None and obs.table.rows == [[3.0]] and type(obs.table.rows[0][0]) is float
    )


def test_long_results_say_how_much_is_shown(tiny_data_dir: Path):
    env = SQLEnvironment(load_dataset(tiny_data_dir), EnvConfig(display_rows=2, result_rows=3))
    env.reset(question_id="t_count")
    obs = act(env, "QUERY", "SELECT a.id, b.id FROM orders a, orders b")
    assert obs.result.endswith("(showing 2 of 16 rows)")
    assert obs.table is not None and len(obs.table.rows) == 3 and obs.table.total_rows == 16
    assert obs.table.truncated


def test_writes_are_rejected_as_an_error_observation(tiny_env, tiny_data_dir: Path):
    db = tiny_data_dir / "databases" / "shop" / "shop.sqlite"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    tiny_env.reset(question_id="t_count")
    for sql in [
        "DELETE FROM customer",
        "DROP TABLE orders",
        "SELECT 1; DELETE FROM customer",
        "ATTACH 'x.db' AS x",
        "PRAGMA writable_schema=1",
    ]:
        obs = act(tiny_env, "QUERY", sql)
        assert obs.error, sql
        assert obs.done is False
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_sql_errors_help_the_agent(tiny_env):
    tiny_env.reset(question_id="t_count")
    obs = act(tiny_env, "QUERY", "SELECT nme FROM customer")
    assert "no such column: nme" in obs.error


def test_correct_answer_ends_with_terminal_reward(tiny_env):
    tiny_env.reset(question_id="t_count")
    obs = act(tiny_env, "ANSWER", "3")
    assert obs.done and obs.result == "Correct."
    assert obs.reward_breakdown is not None and obs.reward_breakdown.terminal == 1.0
    state = tiny_env.state
    assert state.terminated and not state.truncated and state.correct is True
    assert state.gold_sql == "SELECT count(*) FROM customer" and state.gold_rows == [[3]]


def test_wrong_answer_gets_no_terminal_reward(tiny_env):
    tiny_env.reset(question_id="t_names")
    obs = act(tiny_env, "ANSWER", "Cy, Bob, Ada")
    assert obs.done and obs.result.startswith("Incorrect")
    assert obs.reward == 0.0 and tiny_env.state.correct is False


def test_gold_is_hidden_from_state_until_the_end(tiny_env):
    tiny_env.reset(question_id="t_count")
    act(tiny_env, "DESCRIBE", "customer")
    state = tiny_env.state
    assert state.gold_sql is None and state.gold_rows is None and state.correct is None


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"action_type": "DROP", "argument": "x"}, "unknown action_type 'DROP'"),
        ({"action_type": "QUERY"}, "QUERY needs a SQL SELECT statement"),
        ({"action_type": "DESCRIBE", "argument": "   "}, "DESCRIBE needs a table name"),
        ({"action_type": "ANSWER", "argument": ""}, "ANSWER needs a value"),
        ({"action_type": "QUERY", "argument": "SELECT 1", "sql": "x"}, "invalid action"),
        ({"argument": "x"}, "action_type: Field required"),
    ],
)
def test_malformed_actions_change_nothing(tiny_env, action, message):
    tiny_env.reset(question_id="t_count")
    act(tiny_env, "DESCRIBE", "customer")
    before = tiny_env.state
    obs = tiny_env.step(action)
    assert message in obs.error
    assert obs.reward == 0.0 and obs.done is False
    assert tiny_env.state == before


def test_step_after_the_end_changes_nothing(tiny_env):
    tiny_env.reset(question_id="t_count")
    act(tiny_env, "ANSWER", "3")
    before = tiny_env.state
    obs = act(tiny_env, "QUERY", "SELECT 1")
    assert obs.done and "episode is over" in obs.error
    assert tiny_env.state == before


def test_step_before_reset_raises():
    env = SQLEnvironment.__new__(SQLEnvironment)
    env._episode = None
    with pytest.raises(ResetNeeded):
        env.step(SQLAction(action_type="QUERY", argument="SELECT 1"))
    with pytest.raises(ResetNeeded):
        _ = env.state


def test_budget_runs_out_and_truncates(tiny_data_dir: Path):
    env = SQLEnvironment(load_dataset(tiny_data_dir), EnvConfig(budget=3))
    env.reset(question_id="t_count")
    act(env, "DESCRIBE", "customer")
    act(env, "QUERY", "SELECT 1")
    obs = act(env, "SAMPLE", "orders")
    assert obs.done and obs.budget_remaining == 0 and "Budget exhausted" in obs.result
    state = env.state
    assert state.truncated and not state.terminated and state.correct is None
    # per-episode override
    obs = env.reset(question_id="t_count", budget=7)
    assert obs.budget_remaining == 7


def test_history_and_reward_breakdown_add_up(tiny_env):
    tiny_env.reset(question_id="t_totals")
    rewards = []
    for kind, arg in [
        ("DESCRIBE", "customer"),
        ("DESCRIBE", "orders"),
        (
            "QUERY",
            "SELECT c.name, sum(o.amount) FROM customer c JOIN orders o "
            "ON o.customer_id = c.id GROUP BY c.name",
        ),
        ("ANSWER", '[["Ada", 15.0], ["Bob", 7.25], ["Cy", 1.0]]'),
    ]:
        obs = act(tiny_env, kind, arg)
        assert obs.reward_breakdown is not None
        b = obs.reward_breakdown
        assert obs.reward == pytest.approx(b.operational + b.progress + b.terminal)
        rewards.append(obs.reward)
    state = tiny_env.state
    assert state.correct is True
    assert state.total_reward == pytest.approx(sum(rewards))
    assert state.reward_by_layer.progress == pytest.approx(0.15)
    assert (
        len(obs.action_history) == 4 and obs.action_history[0] == "DESCRIBE customer -> 3 columns"
    )


def test_repeating_an_action_is_penalised(tiny_env):
    tiny_env.reset(question_id="t_count")
    first = act(tiny_env, "QUERY", "SELECT count(*) FROM customer")
    again = act(tiny_env, "QUERY", "SELECT  count(*) FROM customer;")
    assert again.reward is not None and first.reward is not None
    assert again.reward_breakdown is not None and again.reward_breakdown.operational < 0
    assert again.reward < first.reward


def test_close_then_reset_reopens(tiny_env):
    tiny_env.reset(question_id="t_count")
    tiny_env.close()
    obs = tiny_env.reset(question_id="e_lions")
    assert act(tiny_env, "QUERY", "SELECT count(*) FROM animal").error == ""
    assert obs.db_id == "zoo"


# ------------------------------------------------- fast paths: same results as the slow ones


def test_observations_are_what_validation_builds(tiny_data_dir: Path):
    """The engine builds observations without re-validating its own values (``_typed``):
    each one must equal, field by field and in ``model_fields_set``, what pydantic's
    validation builds from the same data, on every kind of step."""
    env = SQLEnvironment(load_dataset(tiny_data_dir), EnvConfig(budget=6))
    seen = [env.reset(question_id="t_totals")]
    for kind, argument in [
        ("DESCRIBE", "orders"),
        ("SAMPLE", "customer"),
        ("QUERY", "SELECT name, amount FROM customer JOIN orders ON customer.id = customer_id"),
        ("QUERY", "SELECT nope FROM orders"),  # an SQL error
        ("DESCRIBE", "atlantis"),  # an unknown table
        ("QUERY", ""),  # rejected: nothing counted
        ("QUERY", "SELECT 1"),
        ("QUERY", "SELECT 2"),  # the last step of the budget
        ("ANSWER", "1"),  # after the end
    ]:
        seen.append(act(env, kind, argument))
    env.reset(question_id="t_totals")
    seen.append(act(env, "ANSWER", "none"))
    assert [o.done for o in seen[-3:]] == [True, True, True]
    for obs in seen:
        validated = SQLObservation.model_validate(obs.model_dump())
        assert validated == obs
        assert validated.model_dump_json() == obs.model_dump_json()
        assert obs.model_fields_set == SQLObservation(**dict(obs)).model_fields_set - {"metadata"}
        if obs.table is not None:
            assert type(obs.table.rows) is list and all(type(r) is list for r in obs.table.rows)
    # every observation owns its lists: changing one changes nothing else
    first_query = seen[3]
    first_query.action_history.append("tampered")
    first_query.tables.append("tampered")
    later = seen[4]
    assert "tampered" not in later.action_history and "tampered" not in later.tables
    assert "tampered" not in env.state.action_history


def test_reward_breakdowns_are_shared_values(tiny_env):
    from pydantic import ValidationError
    from sqlenv_core.schemas import RewardBreakdown

    a = RewardBreakdown.of(0.01, 0.1)
    assert RewardBreakdown.of(0.01, 0.1) is a
    assert a.total == pytest.approx(0.11)
    with pytest.raises(ValidationError, match="frozen"):
        a.operational = 5.0  # type: ignore[misc]
    tiny_env.reset(question_id="t_totals")
    obs = act(tiny_env, "QUERY", "SELECT 1")
    assert obs.reward_breakdown is not None and obs.reward == obs.reward_breakdown.total


def test_an_episode_keeps_one_connection_of_its_own_pool(tiny_data_dir: Path):
    """Without a shared pool the episode's sandbox is leased once, at its first step,
    and given back at the next reset or ``close``; ``interrupt`` still only reaches a
    step that is running."""
    env = SQLEnvironment(load_dataset(tiny_data_dir))
    env.reset(question_id="t_totals")
    act(env, "QUERY", "SELECT 1")
    pool = env._own_pool
    assert pool is not None and pool.idle_count == 0  # held by the episode
    held = env._held
    act(env, "DESCRIBE", "orders")
    assert env._held is held  # the same sandbox for every step
    assert env.interrupt() is False  # between steps there is nothing to stop
    assert act(env, "QUERY", "SELECT count(*) FROM orders").table.rows == [[4]]  # not interrupted
    env.reset(seed=0, split="eval")  # another database: the first goes back to the pool
    assert pool.idle_count == 2 and env._held is None  # and one read the new tables
    env.close()
    assert env._held is None and env._own_pool is None


def test_a_file_deleted_mid_episode_is_reported_at_the_next_reset(tiny_data_dir: Path):
    """An environment with its own pool reads the file it opened until the episode ends
    (a server's shared pool notices at the next step; see pool.py)."""
    env = SQLEnvironment(load_dataset(tiny_data_dir))
    env.reset(question_id="t_totals")
    act(env, "DESCRIBE", "orders")
    path = env.dataset.db_path("shop")
    moved = path.with_name("moved.sqlite")
    path.rename(moved)
    try:
        assert act(env, "QUERY", "SELECT count(*) FROM orders").table.rows == [[4]]
        from sqlenv_core.errors import DataError

        with pytest.raises(DataError, match="database file not found"):
            env.reset(question_id="t_totals")
    finally:
        moved.rename(path)
    assert env.reset(question_id="t_totals").db_id == "shop"
    env.close()

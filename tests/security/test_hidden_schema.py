"""Finding 13: QUERY on ``sqlite_master`` or a PRAGMA function showed every table's
columns in one step, around the hidden schema that DESCRIBE reveals one table per step;
and the PRAGMA function's refusal said "got UPDATE". Both are refused now, with a message
pointing to DESCRIBE; DESCRIBE itself still works.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlenv_core.dataset import load_dataset
from sqlenv_core.env import SQLEnvironment


@pytest.fixture
def env(data_dir: Path) -> SQLEnvironment:
    environment = SQLEnvironment(load_dataset(data_dir))
    environment.reset(question_id="s_count")
    return environment


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT sql FROM sqlite_master",
        "SELECT name, sql FROM main.sqlite_master WHERE type = 'table'",
        "SELECT sql FROM SQLITE_SCHEMA",
        "SELECT count(*) FROM sqlite_master",
        "SELECT * FROM pragma_table_info('customer')",
        "SELECT name FROM pragma_table_info('orders')",
        "SELECT * FROM pragma_foreign_key_list('orders')",
        "SELECT * FROM pragma_table_list",
        "SELECT name FROM customer WHERE EXISTS (SELECT 1 FROM sqlite_master)",
    ],
)
def test_schema_reads_are_refused(env: SQLEnvironment, sql: str) -> None:
    obs = env.step({"action_type": "QUERY", "argument": sql})
    assert obs.error.startswith("the schema is hidden"), obs.error
    assert "DESCRIBE" in obs.error and "UPDATE" not in obs.error
    assert "amount" not in obs.result + obs.error  # no column of orders leaked
    assert obs.step_count == 1  # a refused query still costs its step


def test_describe_still_shows_the_columns(env: SQLEnvironment) -> None:
    obs = env.step({"action_type": "DESCRIBE", "argument": "orders"})
    assert not obs.error and "amount" in obs.result
    obs = env.step({"action_type": "QUERY", "argument": "SELECT count(*) FROM orders"})
    assert obs.table is not None and obs.table.rows == [[4]]

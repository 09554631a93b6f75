"""Security regression tests (issue 11): what an agent, a remote client or a web page
can reach. Each test here was written against the server as it was, failed there, and
passes with the fix; docs/security.md says what each one guards.

Fixtures: a tiny data directory of its own (never the bundled ``data/``), apps on it
through FastAPI's test client, and a client factory taking server settings. Resource
bound tests live in ``bounds/`` beside this file.
"""

from __future__ import annotations

import sqlite3
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlenv_core.dataset import Question, dump_questions
from sqlenv_server.app import create_app
from sqlenv_server.settings import ServerSettings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # starlette: httpx rather than httpx2
    from fastapi.testclient import TestClient

SHOP_SQL = """
CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id),
    amount REAL);
INSERT INTO customer VALUES (1, 'Ada', 'London'), (2, 'Bob', 'Paris'), (3, 'Cy', NULL),
    (4, 'Dee', 'Rome'), (5, 'Eve', 'Oslo'), (6, 'Fay', 'Lima');
INSERT INTO orders VALUES (1, 1, 10.5), (2, 1, 4.5), (3, 2, 7.25), (4, 3, 1.0);
"""

# (id, split, question, gold SQL, order matters, shape, tables, difficulty)
QUESTIONS = [
    ("s_count", "train", "How many customers are there?", "SELECT count(*) FROM customer",
     False, "scalar", ["customer"], "easy"),
    ("s_totals", "eval", "Total order amount of each customer name.",
     "SELECT c.name, sum(o.amount) FROM customer c JOIN orders o ON o.customer_id = c.id "
     "GROUP BY c.name", False, "table", ["customer", "orders"], "medium"),
]  # fmt: skip


def build_data(root: Path) -> Path:
    """One small database and its questions, with gold rows from SQLite itself."""
    db = root / "databases" / "shop" / "shop.sqlite"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.executescript(SHOP_SQL)
    conn.close()
    (root / "questions").mkdir()
    by_split: dict[str, list[Question]] = {"train": [], "eval": []}
    conn = sqlite3.connect(db)
    for qid, split, text, sql, order, shape, tables, level in QUESTIONS:
        cur = conn.execute(sql)
        columns = [d[0] for d in cur.description]
        rows = [list(r) for r in cur.fetchall()]
        by_split[split].append(
            Question(id=qid, split=split, source="dev" if split == "eval" else "train_spider",
                     db_id="shop", question=text, gold_sql=sql, gold_columns=columns,
                     gold_rows=rows, order_matters=order, answer_shape=shape, tables=tables,
                     difficulty=level)
        )  # fmt: skip
    conn.close()
    for split, questions in by_split.items():
        dump_questions(questions, root / "questions" / f"{split}.jsonl")
    return root


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_data(tmp_path_factory.mktemp("security") / "data")


@pytest.fixture
def make_client(data_dir: Path) -> Iterator[Callable[..., Any]]:
    """``make_client(**settings)``: a started app on the tiny data, closed after the test."""
    with ExitStack() as stack:

        def make(**overrides: Any) -> Any:
            app = create_app(ServerSettings(data_dir=data_dir, **overrides))
            return stack.enter_context(TestClient(app))

        yield make


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    return make_client()

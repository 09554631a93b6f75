"""Fixtures: a tiny data directory built in a temp dir, never the bundled data/."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import settings
from sqlenv_core.dataset import Question, dump_questions, load_dataset
from sqlenv_core.env import SQLEnvironment

# Property tests check correctness, not speed: no per-example deadline, so a loaded
# shared machine cannot turn them red (speed is measured in benchmarks/).
settings.register_profile("sqlenv", deadline=None)
settings.load_profile("sqlenv")

SHOP_SQL = """
CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customer(id), amount REAL);
INSERT INTO customer VALUES (1, 'Ada', 'London'), (2, 'Bob', 'Paris'), (3, 'Cy', NULL);
INSERT INTO orders VALUES (1, 1, 10.5), (2, 1, 4.5), (3, 2, 7.25), (4, 3, 1.0);
"""
ZOO_SQL = """
CREATE TABLE "Animal Keeper" (id INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE animal (id INTEGER PRIMARY KEY, name TEXT, species TEXT, keeper_id INTEGER
    REFERENCES "Animal Keeper"(id));
INSERT INTO "Animal Keeper" VALUES (1, 'Kim'), (2, 'Lee');
INSERT INTO animal VALUES (1, 'Leo', 'lion', 1), (2, 'Zed', 'zebra', 2), (3, 'Lia', 'lion', 1);
"""

# (id, split, db, question, sql, order_matters, shape, tables, difficulty)
QUESTIONS = [
    (
        "t_count",
        "train",
        "shop",
        "How many customers are there?",
        "SELECT count(*) FROM customer",
        False,
        "scalar",
        ["customer"],
        "easy",
    ),
    (
        "t_names",
        "train",
        "shop",
        "List customer names alphabetically.",
        "SELECT name FROM customer ORDER BY name",
        True,
        "list",
        ["customer"],
        "easy",
    ),
    (
        "t_totals",
        "train",
        "shop",
        "Total order amount of each customer name.",
        "SELECT c.name, sum(o.amount) FROM customer c JOIN orders o ON o.customer_id = c.id GROUP BY c.name",
        False,
        "table",
        ["customer", "orders"],
        "medium",
    ),
    (
        "e_lions",
        "eval",
        "zoo",
        "How many lions are there?",
        "SELECT count(*) FROM animal WHERE species = 'lion'",
        False,
        "scalar",
        ["animal"],
        "easy",
    ),
    (
        "e_keepers",
        "eval",
        "zoo",
        "Which keepers look after a lion?",
        "SELECT DISTINCT k.name FROM \"Animal Keeper\" k JOIN animal a ON a.keeper_id = k.id WHERE a.species = 'lion'",
        False,
        "list",
        ["Animal Keeper", "animal"],
        "medium",
    ),
]


def build_tiny_data(root: Path) -> Path:
    """Write two tiny databases and five questions with their gold results."""
    scripts = {"shop": SHOP_SQL, "zoo": ZOO_SQL}
    for db_id, script in scripts.items():
        path = root / "databases" / db_id / f"{db_id}.sqlite"
        path.parent.mkdir(parents=True)
        with sqlite3.connect(path) as conn:
            conn.executescript(script)
        conn.close()
    (root / "questions").mkdir(parents=True)
    by_split: dict[str, list[Question]] = {"train": [], "eval": []}
    for qid, split, db_id, text, sql, order, shape, tables, level in QUESTIONS:
        conn = sqlite3.connect(root / "databases" / db_id / f"{db_id}.sqlite")
        cur = conn.execute(sql)
        columns = [d[0] for d in cur.description]
        rows = [list(r) for r in cur.fetchall()]
        conn.close()
        by_split[split].append(
            Question(
                id=qid,
                split=split,
                source="dev" if split == "eval" else "train_spider",
                db_id=db_id,
                question=text,
                gold_sql=sql,
                gold_columns=columns,
                gold_rows=rows,
                order_matters=order,
                answer_shape=shape,
                tables=tables,
                difficulty=level,
            )
        )
    for split, questions in by_split.items():
        dump_questions(questions, root / "questions" / f"{split}.jsonl")
    return root


@pytest.fixture
def tiny_data_dir(tmp_path: Path) -> Path:
    return build_tiny_data(tmp_path / "data")


@pytest.fixture
def tiny_env(tiny_data_dir: Path):
    env = SQLEnvironment(load_dataset(tiny_data_dir), seed=0)
    yield env
    env.close()

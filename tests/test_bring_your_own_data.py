"""Issue 12's acceptance: a dataset in each of the three formats, with bad entries and a
missing database, builds with ``sqlenv data build`` into one directory that the server
(``sqlenv-server --data-dir``), ``sqlenv eval`` and the TRL adapter use unchanged."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlenv_client import SQLEnvClient
from sqlenv_client.trl import SQLEnvTool
from sqlenv_core import cli
from sqlenv_core.checker import format_answer
from sqlenv_core.dataset import load_dataset
from sqlenv_core.prompting import training_row

LIBRARY = """
CREATE TABLE author (id INTEGER PRIMARY KEY, name TEXT, born INTEGER);
CREATE TABLE book (id INTEGER PRIMARY KEY, author_id INTEGER REFERENCES author(id),
                   title TEXT, pages INTEGER);
INSERT INTO author VALUES (1, 'Austen', 1775), (2, 'Tolstoy', 1828), (3, 'Woolf', 1882);
INSERT INTO book VALUES (1, 1, 'Emma', 474), (2, 1, 'Persuasion', 249),
                        (3, 2, 'War and Peace', 1225), (4, 3, 'Orlando', 333);
"""
GOOD = [
    ("How many books are there?", "SELECT count(*) FROM book"),
    ("Titles of books with over 300 pages, longest first.",
     "SELECT title FROM book WHERE pages > 300 ORDER BY pages DESC"),
    ("Each author's number of books.",
     "SELECT a.name, count(*) FROM author a JOIN book b ON b.author_id = a.id GROUP BY a.name"),
]  # fmt: skip
BAD = [
    ("library", "A broken gold.", "SELECT pagez FROM book"),
    ("library", "An empty answer.", "SELECT title FROM book WHERE pages > 5000"),
    ("atlas", "On a missing database.", "SELECT 1"),
]


def write_sources(root: Path) -> dict[str, Path]:
    db = root / "dbs" / "library" / "library.sqlite"
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.executescript(LIBRARY)
    conn.close()
    rows = [("library", q, sql) for q, sql in GOOD] + BAD
    spider = [{"db_id": d, "question": q, "query": s} for d, q, s in rows]
    bird = [
        {"question_id": i, "db_id": d, "question": q, "SQL": s, "difficulty": "moderate",
         "evidence": "long books have more than 300 pages" if "300" in q else ""}
        for i, (d, q, s) in enumerate(rows)
    ]  # fmt: skip
    jsonl = [json.dumps({"id": f"own-{i}", "db_id": d, "question": q, "gold_sql": s})
             for i, (d, q, s) in enumerate(rows)]  # fmt: skip
    (root / "spider.json").write_text(json.dumps(spider))
    (root / "bird.json").write_text(json.dumps(bird))
    (root / "own.jsonl").write_text("\n".join([*jsonl, "not json"]) + "\n")
    return {
        "spider": root / "spider.json",
        "bird": root / "bird.json",
        "jsonl": root / "own.jsonl",
        "dbs": root / "dbs",
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("byod")
    src = write_sources(root)
    out = root / "data"
    for fmt, split in (("spider", "sp"), ("bird", "bird-dev"), ("jsonl", "mine")):
        argv = ["data", "build", "--format", fmt, "--questions", str(src[fmt]), "--quiet"]
        argv += ["--databases", str(src["dbs"]), "--out", str(out), "--split", split]
        assert cli.main(argv) == 0
    return out


def test_every_format_keeps_the_good_and_excludes_the_bad(data_dir: Path) -> None:
    ds = load_dataset(data_dir)
    assert ds.split_sizes == {"sp": 3, "bird-dev": 3, "mine": 3}
    reasons: dict[str, list[str]] = {}
    for line in (data_dir / "questions" / "excluded.jsonl").read_text().splitlines():
        record = json.loads(line)
        reasons.setdefault(record["split"], []).append(record["reason"])
    assert reasons["sp"] == ["gold_error", "empty_result", "missing_database"]
    assert reasons["bird-dev"] == ["gold_error", "empty_result", "missing_database"]
    assert reasons["mine"] == ["gold_error", "empty_result", "missing_database", "invalid_record"]
    assert [p.name for p in (data_dir / "databases").iterdir()] == ["library"]


@pytest.mark.parametrize("split", ["sp", "bird-dev", "mine"])
def test_sqlenv_eval_uses_the_directory(data_dir: Path, split: str, capsys: Any) -> None:
    for policy, expected in (("oracle", 1.0), ("random", None)):
        argv = ["eval", "--data-dir", str(data_dir), "--split", split, "--policy", policy]
        assert cli.main([*argv, "--seed", "1", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["n"] == 3 and list(report["by_split"]) == [split]
        if expected is not None:
            assert report["success_rate"] == expected


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path_factory.mktemp("log") / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlenv_server", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "SQLENV_LOG_LEVEL": "warning"},
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, "the server exited"
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/health", timeout=1) as response,
            ):
                if response.status == 200:
                    break
            assert time.monotonic() < deadline, "the server did not become healthy"
            time.sleep(0.05)
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_the_server_serves_the_directory(server: str) -> None:
    with urllib.request.urlopen(f"{server}/metadata", timeout=5) as response:
        metadata = json.load(response)
    assert metadata["splits"] == [
        {"name": "sp", "questions": 3},
        {"name": "bird-dev", "questions": 3},
        {"name": "mine", "questions": 3},
    ]
    with SQLEnvClient(server) as env:
        obs = env.reset(seed=3, split="mine")
        assert obs.db_id == "library" and obs.tables == ["author", "book"]
        assert env.state().split == "mine"
        obs = env.query("SELECT count(*) FROM book")
        assert obs.table is not None and obs.table.rows == [[4]]


def test_the_trl_adapter_plays_a_bird_question_with_its_evidence(
    server: str, data_dir: Path
) -> None:
    ds = load_dataset(data_dir)
    question = next(q for q in ds.select(split="bird-dev") if q.evidence)
    row = training_row(question)
    assert row["prompt"][1]["content"].endswith("Evidence: long books have more than 300 pages")
    tool = SQLEnvTool(base_url=server, budget=5)
    try:
        suffix = tool.reset(**{k: v for k, v in row.items() if k != "prompt"})
        assert "Tables: author, book" in suffix
        assert "Orlando" in tool.sample("book")
        tool.query(question.gold_sql)
        tool.answer(format_answer(question.gold_rows))
        assert tool.done and tool.correct and tool.get_reward() > 0.9
    finally:
        tool._close()

"""Faults the engine must survive: interrupted queries, damaged or vanishing database
files, and built-in functions that SQLite cannot interrupt midway.

(The cross-package versions — hostile SQL on real databases, a real server — are in
``tests/reliability/`` at the repository root.)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlenv_core.config import SandboxConfig
from sqlenv_core.dataset import check_database_file, load_dataset
from sqlenv_core.env import SQLEnvironment
from sqlenv_core.errors import (
    DataError,
    QueryInterruptedError,
    QueryRejectedError,
    QueryTimeoutError,
    SandboxError,
)
from sqlenv_core.pool import SandboxPool
from sqlenv_core.sandbox import LIKE_PATTERN_LIMIT, Sandbox

RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "n.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE t (n INTEGER, s TEXT);"
            "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 100)"
            " INSERT INTO t SELECT n, 'v' || n FROM c;"
        )
    conn.close()
    return path


def _later(delay: float, fn: object) -> threading.Timer:
    timer = threading.Timer(delay, fn)  # type: ignore[arg-type]
    timer.start()
    return timer


# --------------------------------------------------------------------------- interrupt


def test_interrupt_from_another_thread_stops_a_query_at_once(db: Path) -> None:
    with Sandbox(db, SandboxConfig(timeout_s=10)) as sandbox:
        timer = _later(0.1, sandbox.interrupt)
        start = time.monotonic()
        with pytest.raises(QueryInterruptedError, match="interrupted"):
            sandbox.execute(RUNAWAY)
        elapsed = time.monotonic() - start
        timer.join()
        assert 0.09 <= elapsed < 0.5
        # not a timeout (a server must not defer it), and the sandbox carries on
        assert not isinstance(QueryInterruptedError("x"), QueryTimeoutError)
        assert sandbox.execute("SELECT count(*) FROM t").rows == [[100]]
        with pytest.raises(QueryTimeoutError):
            sandbox.execute(RUNAWAY, timeout_s=0.05)


def test_an_interrupt_before_the_query_starts_stops_it_and_is_then_forgotten(db: Path) -> None:
    with Sandbox(db, SandboxConfig(timeout_s=10)) as sandbox:
        sandbox.interrupt()
        start = time.monotonic()
        with pytest.raises(QueryInterruptedError):
            sandbox.execute(RUNAWAY)
        assert time.monotonic() - start < 0.5
        assert sandbox.execute("SELECT 1").rows == [[1]]
        sandbox.interrupt()
        sandbox.clear_interrupt()  # what an environment does before lending it on
        with pytest.raises(QueryTimeoutError):
            sandbox.execute(RUNAWAY, timeout_s=0.1)
    Sandbox(db).interrupt()  # harmless on an idle or closed sandbox


def _numbers_env(tmp_path: Path, db: Path, timeout_s: float = 10.0) -> SQLEnvironment:
    from sqlenv_core.config import EnvConfig
    from sqlenv_core.dataset import Question, dump_questions

    root = tmp_path / "data"
    (root / "databases" / "n").mkdir(parents=True)
    shutil.copy(db, root / "databases" / "n" / "n.sqlite")
    (root / "questions").mkdir()
    q = Question(
        id="q1", split="train", source="train_spider", db_id="n", question="How many?",
        gold_sql="SELECT count(*) FROM t", gold_columns=["count(*)"], gold_rows=[[100]],
        order_matters=False, answer_shape="scalar", tables=["t"], difficulty="easy",
    )  # fmt: skip
    dump_questions([q], root / "questions" / "train.jsonl")
    dump_questions([], root / "questions" / "eval.jsonl")
    config = EnvConfig(sandbox=SandboxConfig(timeout_s=timeout_s))
    return SQLEnvironment(load_dataset(root), config)


def test_environment_interrupt_stops_the_running_step_only(tmp_path: Path, db: Path) -> None:
    env = _numbers_env(tmp_path, db)
    env.reset(question_id="q1")
    assert env.interrupt() is False  # no step running: nothing to do
    result: list[object] = []
    worker = threading.Thread(
        target=lambda: result.append(env.step({"action_type": "QUERY", "argument": RUNAWAY}))
    )
    start = time.monotonic()
    worker.start()
    while not env.interrupt():  # until the step holds its connection
        time.sleep(0.005)
    worker.join(5)
    assert time.monotonic() - start < 1.0
    obs = result[0]
    assert "interrupted" in obs.error  # type: ignore[attr-defined]
    # the pooled connection it used carries no interrupt to the next step
    obs = env.step({"action_type": "QUERY", "argument": "SELECT count(*) FROM t"})
    assert obs.error == "" and obs.table.rows == [[100]]  # type: ignore[union-attr]
    env.close()


# --------------------------------------------------------------------------- files


def test_check_database_file_names_each_fault(tmp_path: Path, db: Path) -> None:
    assert check_database_file(db) is None
    assert check_database_file(tmp_path / "nope.sqlite") == "is missing"
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    assert check_database_file(empty) == "is empty"
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(8192))
    assert check_database_file(garbage) == "is not an SQLite database (bad header)"
    data = db.read_bytes()
    half = tmp_path / "half.sqlite"
    half.write_bytes(data[: len(data) // 2 + 100])
    assert "is truncated" in (check_database_file(half) or "")
    pages = tmp_path / "pages.sqlite"
    pages.write_bytes(data[:4096])  # whole pages, fewer than the header says
    assert "is truncated" in (check_database_file(pages) or "")
    tiny = tmp_path / "tiny.sqlite"
    tiny.write_bytes(data[:50])
    assert "truncated" in (check_database_file(tiny) or "")


@pytest.mark.parametrize("fault", ["missing", "empty", "garbage", "truncated"])
def test_load_dataset_names_a_bad_database_file(tmp_path: Path, db: Path, fault: str) -> None:
    env = _numbers_env(tmp_path, db)
    env.close()
    path = tmp_path / "data" / "databases" / "n" / "n.sqlite"
    if fault == "missing":
        path.unlink()
    elif fault == "empty":
        path.write_bytes(b"")
    elif fault == "garbage":
        path.write_bytes(b"not a database at all" * 100)
    else:
        path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match=str(path)):
        load_dataset(tmp_path / "data")


def test_damage_past_the_header_is_reported_on_first_use(tmp_path: Path, db: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    data = bytearray(db.read_bytes())
    data[100:4096] = os.urandom(4096 - 100)  # the schema page, behind a sound header
    bad.write_bytes(bytes(data))
    assert check_database_file(bad) is None
    with pytest.raises(DataError, match=f"cannot read database {bad}"):
        Sandbox(bad)


def test_a_database_deleted_while_running_fails_clearly_then_recovers(
    tmp_path: Path, db: Path
) -> None:
    path = tmp_path / "live.sqlite"
    shutil.copy(db, path)
    other = tmp_path / "other.sqlite"
    shutil.copy(db, other)
    files = {"live": path, "other": other}
    pool = SandboxPool(files.__getitem__)
    with pool.lease("live") as sandbox:
        assert sandbox.execute("SELECT count(*) FROM t").rows == [[100]]
    with pool.lease("other"):
        pass
    assert pool.idle_count == 2
    moved = tmp_path / "moved.sqlite"
    path.rename(moved)
    # the idle connection would still read the renamed file: the pool refuses it instead
    with pytest.raises(DataError, match=f"database file not found: {path}"):
        pool.acquire("live")
    with pytest.raises(DataError, match=str(path)):
        pool.table_names("live")
    assert pool.idle_count == 1  # its idle connection was closed; "other" is untouched
    with pool.lease("other") as sandbox:
        assert sandbox.execute("SELECT count(*) FROM t").rows == [[100]]
    moved.rename(path)  # the file comes back: so does the database
    with pool.lease("live") as sandbox:
        assert sandbox.execute("SELECT max(n) FROM t").rows == [[100]]
    pool.close()


def test_a_replaced_database_file_gets_fresh_connections(tmp_path: Path, db: Path) -> None:
    path = tmp_path / "live.sqlite"
    shutil.copy(db, path)
    pool = SandboxPool(lambda _: path)
    with pool.lease("live") as held:  # leased while the file is replaced
        new = tmp_path / "new.sqlite"
        with sqlite3.connect(new) as conn:
            conn.execute("CREATE TABLE t (n INTEGER, s TEXT)")
        conn.close()
        os.replace(new, path)
        assert held.execute("SELECT count(*) FROM t").rows == [[100]]  # finishes on the old
    with pool.lease("live") as sandbox:
        assert sandbox is not held
        assert sandbox.execute("SELECT count(*) FROM t").rows == [[0]]
    assert pool.idle_count == 1
    pool.close()


def test_a_database_changed_in_place_gets_fresh_connections(tmp_path: Path, db: Path) -> None:
    """Sandboxes open their file ``immutable`` (SQLite checks nothing between statements),
    so the pool's identity of a file includes its size and modification time: a file
    rewritten in place (same inode) is not read through connections opened before."""
    path = tmp_path / "live.sqlite"
    shutil.copy(db, path)
    pool = SandboxPool(lambda _: path)
    with pool.lease("live") as old:
        assert old.execute("SELECT count(*) FROM t").rows == [[100]]
    inode = path.stat().st_ino
    new = tmp_path / "new.sqlite"
    with sqlite3.connect(new) as conn:
        conn.execute("CREATE TABLE t (n INTEGER, s TEXT)")
        conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, "x" * 50) for i in range(700)])
    conn.close()
    path.write_bytes(new.read_bytes())  # same file, new contents
    assert path.stat().st_ino == inode
    with pool.lease("live") as sandbox:
        assert sandbox is not old
        assert sandbox.execute("SELECT count(*) FROM t").rows == [[700]]
    assert pool.idle_count == 1
    pool.close()


# --------------------------------------------------------------- uninterruptible built-ins


@pytest.mark.parametrize(
    "sql", ["SELECT printf('%.*c', 2000000000, 'x')", "SELECT format('%d', 1)"]
)
def test_printf_and_format_are_denied(db: Path, sql: str) -> None:
    with Sandbox(db) as sandbox, pytest.raises(QueryRejectedError, match=r"is not allowed; use"):
        sandbox.execute(sql)


def test_like_patterns_are_bounded(db: Path) -> None:
    long = "x" * (LIKE_PATTERN_LIMIT + 1)
    with Sandbox(db) as sandbox:
        assert sandbox.execute("SELECT count(*) FROM t WHERE s LIKE 'v1%'").rows == [[12]]
        with pytest.raises(SandboxError, match="LIKE or GLOB pattern too complex"):
            sandbox.execute(f"SELECT 'a' LIKE '%{long}'")


@pytest.mark.parametrize(
    "sql",
    [
        # each is one uninterruptible call, quadratic in its arguments' lengths
        "SELECT length(trim({a}, {c} || 'a'))",
        "SELECT instr({a}, {half} || 'b')",
        "SELECT length(replace({a}, {half} || 'b', ''))",
        "SELECT {a} LIKE '%' || substr({a}, 1, 61) || 'b%'",
    ],
)
def test_worst_single_calls_stay_short_at_the_default_length_limit(db: Path, sql: str) -> None:
    cells = SandboxConfig().max_cell_bytes
    a = f"replace(hex(zeroblob({cells // 2 - 1})), '0', 'a')"
    sql = sql.format(
        a=a,
        half=f"replace(hex(zeroblob({cells // 4})), '0', 'a')",
        c=f"replace(hex(zeroblob({cells // 24 - 2})), '0', 'c')",
    )
    with Sandbox(db) as sandbox:
        start = time.monotonic()
        sandbox.execute(sql)
        # a few ms each on a 2-core machine; at the old 1 MB limit trim took 11 s
        assert time.monotonic() - start < 0.25


@pytest.mark.parametrize(
    "expr",
    [
        "instr('hello world', 'o')", "instr('hello', '')", "instr('', 'a')", "instr(NULL, 'a')",
        "instr('abc', NULL)", "instr(12345, 34)", "instr(x'00ff10', x'10')", "instr('héllo', 'l')",
        "instr(1.5, '.')", "replace('a-b-c', '-', '+')", "replace('abc', '', 'x')",
        "replace(123, 2, 9)", "replace(NULL, 'a', 'b')", "replace('a', NULL, 'b')",
        "replace('aaa', 'a', NULL)", "replace(2.0, '.', ',')", "replace(1e20, '+', '')",
        "typeof(replace(7, '', 'x'))", "trim('xxhixx', 'x')", "ltrim('xxhixx', 'x')",
        "rtrim('xxhixx', 'x')", "trim('abcba', 'ab')", "trim('  hi  ')", "trim(NULL, 'a')",
        "trim('a', NULL)", "trim(10100, 1)", "rtrim(1.50, '0')", "ltrim('ééa', 'é')",
        "trim('hi', '')", "instr(-0.5, '-')", "replace(1/3.0, '3', '')",
    ],
)  # fmt: skip
def test_linear_string_functions_answer_as_sqlite_does(db: Path, expr: str) -> None:
    plain = sqlite3.connect(":memory:")
    expected = plain.execute(f"SELECT {expr}").fetchall()
    plain.close()
    with Sandbox(db) as sandbox:
        rows = sandbox.execute(f"SELECT {expr}").rows
    assert rows == [[v if type(v) is not bytes else f"x'{v.hex()}'" for v in expected[0]]]


def test_a_long_run_of_expensive_calls_stops_at_the_deadline(db: Path) -> None:
    """SQLite checks its deadline only on loop jumps: a few hundred trims on one row ran
    for minutes at the old 1 MB limit; now each call checks the deadline (and is linear)."""
    a = "replace(hex(zeroblob(4000)), '0', 'a')"
    calls = " + ".join(f"length(trim(a, c || '{i}')) + instr(a, b || '{i}')" for i in range(30))
    sql = f"WITH s(a, b, c) AS (SELECT {a}, substr({a}, 1, 4000) || 'x', 'cc' || 'a') SELECT {calls} AS x FROM s"
    with Sandbox(db, SandboxConfig(timeout_s=0.01)) as sandbox:
        start = time.monotonic()
        with contextlib.suppress(QueryTimeoutError):
            sandbox.execute(sql)
        assert time.monotonic() - start < 0.2
        huge = "SELECT " + ", ".join(f"abs(-{i}) AS c{i}" for i in range(1500))
        with pytest.raises(SandboxError, match=r"too complex \(it compiles to more than 1,024"):
            sandbox.execute(huge)


def test_a_corrupt_page_ends_the_episode_as_the_environments_fault(tiny_data_dir: Path) -> None:
    """SQLite's "database disk image is malformed" used to come back as the agent's SQL
    error, with its -0.01, at every step, and no file named."""
    env = SQLEnvironment(load_dataset(tiny_data_dir), seed=0)
    env.reset(question_id="t_count")
    path = tiny_data_dir / "databases" / "shop" / "shop.sqlite"
    data = bytearray(path.read_bytes())
    data[4096:8192] = b"\xff" * 4096  # customer's page, its header too (always detected)
    path.write_bytes(bytes(data))
    with pytest.raises(DataError) as exc:
        env.step({"action_type": "QUERY", "argument": "SELECT name FROM customer"})
    assert str(exc.value).startswith(f"database file {path} is damaged (")
    assert "a fault of the environment, not of the agent's SQL" in str(exc.value)
    assert str(exc.value).endswith("; the episode was ended")
    state = env.state
    assert state.done and state.truncated and not state.terminated
    assert state.step_count == 0  # the step is not the agent's
    assert state.total_reward == 0.0  # and nothing was charged to it
    after = env.step({"action_type": "DESCRIBE", "argument": "customer"})
    assert after.error == "the episode is over; call reset() to start a new one"
    env.close()


def test_sandbox_names_the_damaged_file_for_describe_and_sample_too(
    tmp_path: Path, db: Path
) -> None:
    bad = tmp_path / "bad.sqlite"
    data = bytearray(db.read_bytes())
    data[4096:8192] = b"\xff" * 4096
    bad.write_bytes(bytes(data))
    sandbox = Sandbox(bad)
    with pytest.raises(DataError, match=f"database file {bad} is damaged"):
        sandbox.sample("t", 3)
    with pytest.raises(DataError, match=f"database file {bad} is damaged"):
        sandbox.execute("SELECT count(*) FROM t WHERE s = 'x'")
    sandbox.close()

"""The read-only sandbox: every safety layer on its own, bounds, DESCRIBE/SAMPLE, errors.

All tests use a tiny database built in a temp dir; the module-scoped fixture checks on
teardown that the file's sha256 never changed, whatever the tests threw at it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlenv_core.sandbox as sandbox_module
import sqlenv_core.sqlcheck as sqlcheck_module
from sqlenv_core.config import SandboxConfig
from sqlenv_core.errors import (
    DataError,
    QueryRejectedError,
    QueryTimeoutError,
    SandboxError,
)
from sqlenv_core.sandbox import (
    ColumnInfo,
    ForeignKey,
    QueryOutcome,
    Sandbox,
    TableSchema,
    check_sql,
    render_blob,
)

ZOO_SQL = """
CREATE TABLE "Animal Keeper" (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE animal (
    id INTEGER PRIMARY KEY,
    name TEXT,
    species VARCHAR(20) NOT NULL,
    keeper_id INTEGER REFERENCES "Animal Keeper"(id),
    photo BLOB
);
CREATE TABLE visit (
    animal_id INTEGER,
    day TEXT,
    keeper INTEGER,
    note,
    PRIMARY KEY (animal_id, day),
    FOREIGN KEY (animal_id) REFERENCES animal(id),
    FOREIGN KEY (keeper) REFERENCES "Animal Keeper"
);
CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, msg TEXT);
CREATE TABLE numbers (n INTEGER);
INSERT INTO "Animal Keeper" VALUES (1, 'Kim'), (2, 'Lee');
INSERT INTO animal VALUES
    (1, 'Leo', 'lion', 1, x'00ff10'),
    (2, 'Zed', 'zebra', 2, NULL),
    (3, NULL, 'lion', 1, zeroblob(100));
INSERT INTO visit VALUES
    (1, '2024-01-01', 1, NULL), (1, '2024-01-02', 2, 'ok'), (2, '2024-01-01', 2, NULL);
INSERT INTO log (msg) VALUES ('created');
WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000)
INSERT INTO numbers SELECT n FROM c;
"""
TABLES = ("Animal Keeper", "animal", "visit", "log", "numbers")
RUNAWAY = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.executescript(ZOO_SQL)
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def zoo_db_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A tiny database shared by the module; its bytes must never change."""
    path = _build(tmp_path_factory.mktemp("sandbox") / "zoo.sqlite")
    digest = _sha256(path)
    yield path
    assert _sha256(path) == digest, "the sandbox modified the database file"
    assert sorted(p.name for p in path.parent.iterdir()) == ["zoo.sqlite"]


@pytest.fixture
def zoo(zoo_db_path: Path) -> Iterator[Sandbox]:
    with Sandbox(zoo_db_path) as sandbox:
        yield sandbox


def _with(zoo_db_path: Path, **limits: float) -> Sandbox:
    return Sandbox(zoo_db_path, SandboxConfig(**limits))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- accepted


@pytest.mark.parametrize(
    ("sql", "rows"),
    [
        ("SELECT name FROM animal WHERE id = 1", [["Leo"]]),
        ("select NAME from ANIMAL where ID = 1", [["Leo"]]),
        ("SELECT name FROM animal WHERE id = 1;", [["Leo"]]),
        ("SELECT name FROM animal WHERE id = 1;;\n", [["Leo"]]),
        ("SELECT name FROM animal WHERE id = 1; -- trailing comment", [["Leo"]]),
        ("-- lead comment\nSELECT /* inline */ name FROM animal WHERE id = 1", [["Leo"]]),
        ("WITH l AS (SELECT * FROM animal WHERE species = 'lion') SELECT count(*) FROM l", [[2]]),
        (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3)"
            " SELECT x FROM c",
            [[1], [2], [3]],
        ),
        ("SELECT 1 UNION SELECT 2 ORDER BY 1", [[1], [2]]),
        ("SELECT species FROM animal INTERSECT SELECT 'lion'", [["lion"]]),
        ("SELECT species FROM animal EXCEPT SELECT 'lion'", [["zebra"]]),
        ("VALUES (1, 'a'), (2, 'b')", [[1, "a"], [2, "b"]]),
        ("SELECT * FROM (SELECT count(*) AS n FROM visit) AS s", [[3]]),
        (
            'SELECT name FROM "Animal Keeper" WHERE id IN '
            "(SELECT keeper_id FROM animal WHERE species = 'zebra')",
            [["Lee"]],
        ),
        (
            "SELECT T1.name, count(*) FROM animal AS T1 JOIN visit AS T2"
            " ON T1.id = T2.animal_id GROUP BY T1.id ORDER BY count(*) DESC LIMIT 1",
            [["Leo", 2]],
        ),
        (
            "SELECT name, rank() OVER (ORDER BY id DESC) FROM animal WHERE id < 3",
            [["Zed", 1], ["Leo", 2]],
        ),
        ("SELECT CAST(7 AS unsigned big int)", [[7]]),  # sqlglot cannot parse this; SQLite can
        ("SELECT upper(name) || '!' FROM animal WHERE name GLOB 'L*'", [["LEO!"]]),
    ],
)
def test_read_only_queries_run(zoo: Sandbox, sql: str, rows: list[list[object]]) -> None:
    check_sql(sql)
    outcome = zoo.execute(sql)
    assert outcome.rows == rows
    assert outcome.total_rows == len(rows)
    assert outcome.total_is_lower_bound is False
    assert outcome.elapsed_s >= 0


def test_parenthesised_select_passes_the_check_and_sqlite_judges_it(zoo: Sandbox) -> None:
    check_sql("(SELECT 42)")  # a query to sqlglot; SQLite's grammar has no bare parentheses
    with pytest.raises(SandboxError, match=r'SQL error: near "\(": syntax error'):
        zoo.execute("(SELECT 42)")


def test_outcome_has_column_names_and_is_json_serialisable(zoo: Sandbox) -> None:
    outcome = zoo.execute("SELECT id, name AS who, photo, 1.5 FROM animal ORDER BY id")
    assert isinstance(outcome, QueryOutcome)
    assert outcome.columns == ["id", "who", "photo", "1.5"]
    assert all(type(row) is list for row in outcome.rows)
    json.dumps(dataclasses.asdict(outcome))


# --------------------------------------------------------------------------- rejected

WRITES = [
    ("INSERT INTO animal VALUES (9, 'x', 'y', NULL, NULL)", "got INSERT"),
    ("insert into animal(id, species) values (9, 'y')", "got INSERT"),
    ("/* hi */ InSeRt/**/INTO animal(id, species) VALUES (9, 'y')", "got INSERT"),
    ("INSERT OR REPLACE INTO animal(id, species) VALUES (1, 'y')", "got INSERT"),
    ("REPLACE INTO animal(id, species) VALUES (1, 'y')", "got REPLACE"),
    ("UPDATE animal SET name = 'x'", "got UPDATE"),
    ("-- just a comment\ndelete FROM animal", "got DELETE"),
    ("WITH x AS (SELECT 1) DELETE FROM animal", "got DELETE"),
    ("WITH x AS (SELECT 1) INSERT INTO numbers SELECT * FROM x", "got INSERT"),
    ("WITH x AS (SELECT 1) UPDATE animal SET name = 'x'", "got UPDATE"),
    ("CREATE TABLE t (x)", "got CREATE"),
    ("CREATE TEMP VIEW v AS SELECT 1", "got CREATE"),
    ("CREATE INDEX i ON animal(name)", "got CREATE"),
    ("DROP TABLE animal", "got DROP"),
    ("ALTER TABLE animal ADD COLUMN x", "got ALTER"),
    ("ATTACH DATABASE ':memory:' AS other", "got ATTACH"),
    ("attach '/tmp/evil.db' as evil", "got ATTACH"),
    ("DETACH other", "got DETACH"),
    ("PRAGMA query_only = OFF", "got PRAGMA"),
    ("pragma writable_schema=ON", "got PRAGMA"),
    ("PRAGMA table_info(animal)", "got PRAGMA"),
    ("VACUUM", "got VACUUM"),
    ("VACUUM INTO '/tmp/copy.db'", "got VACUUM"),
    ("REINDEX", "got REINDEX"),
    ("ANALYZE", "got ANALYZE"),
    ("BEGIN", "got BEGIN"),
    ("COMMIT", "got COMMIT"),
    ("SAVEPOINT a", "got SAVEPOINT"),
    ("EXPLAIN SELECT 1", "got EXPLAIN"),
]


@pytest.mark.parametrize(("sql", "kind"), WRITES)
def test_non_queries_are_rejected_before_running(zoo: Sandbox, sql: str, kind: str) -> None:
    with pytest.raises(
        QueryRejectedError, match="only a single read-only SELECT is allowed"
    ) as err:
        check_sql(sql)
    assert kind in str(err.value)
    with pytest.raises(QueryRejectedError, match=kind):
        zoo.execute(sql)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 1; DROP TABLE animal", "only one statement per QUERY; got 2"),
        ("SELECT 1; SELECT 2;", "only one statement per QUERY; got 2"),
        ("select 1;\n/* x */ select 2; select 3", "only one statement per QUERY; got 3"),
        ("", "empty query"),
        ("  ;  ", "empty query"),
        ("-- nothing but a comment", "empty query"),
        ("SELECT 1\x00; DROP TABLE animal", "NUL character"),
    ],
)
def test_malformed_requests_are_rejected(zoo: Sandbox, sql: str, message: str) -> None:
    with pytest.raises(QueryRejectedError, match=message):
        check_sql(sql)
    with pytest.raises(QueryRejectedError, match=message):
        zoo.execute(sql)


def test_overlong_sql_is_rejected_before_parsing(
    zoo_db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed an over-long query")

    monkeypatch.setattr(sqlcheck_module.sqlglot, "parse", must_not_parse)
    with pytest.raises(QueryRejectedError, match=r"too long \(101 characters; the limit is 100\)"):
        check_sql("SELECT " + "1" * 94, max_chars=100)
    with (
        _with(zoo_db_path, max_sql_chars=50) as small,
        pytest.raises(QueryRejectedError, match="the limit is 50"),
    ):
        small.execute("SELECT " + " + ".join(["1"] * 20))


def test_load_extension_and_file_functions_are_denied(zoo: Sandbox) -> None:
    check_sql("SELECT load_extension('/tmp/evil.so')")  # a SELECT to sqlglot ...
    for sql in (
        "SELECT load_extension('/tmp/evil.so')",  # ... but the authorizer refuses it
        "SELECT LOAD_EXTENSION('/tmp/evil.so', 'init')",
        "SELECT name FROM animal WHERE load_extension('x') IS NULL",
    ):
        with pytest.raises(QueryRejectedError, match=r"the function \w+\(\) is not allowed"):
            zoo.execute(sql)
    assert zoo.execute("SELECT count(*) FROM animal").rows == [[3]]


def test_sql_sqlglot_cannot_parse_still_faces_the_authorizer(zoo: Sandbox) -> None:
    sql = "INSERT INTO numbers SELECT CAST(1 AS unsigned big int)"
    check_sql(sql)  # sqlglot raises ParseError, so the check defers to SQLite
    with pytest.raises(QueryRejectedError, match="got INSERT"):
        zoo.execute(sql)


def test_deeply_nested_sql_does_not_crash_the_check(zoo: Sandbox) -> None:
    sql = "SELECT " + "(" * 600 + "1" + ")" * 600  # recursion error inside sqlglot
    check_sql(sql)
    with pytest.raises(SandboxError, match="SQL error: parser stack overflow"):
        zoo.execute(sql)


def test_lone_surrogate_is_rejected_not_crashing(zoo: Sandbox) -> None:
    with pytest.raises(QueryRejectedError, match="not valid Unicode"):
        zoo.execute("SELECT '\ud800'")


def test_verdicts_are_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real_parse = sqlcheck_module.sqlglot.parse

    def counting_parse(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return real_parse(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlcheck_module.sqlglot, "parse", counting_parse)
    sql = f"SELECT {time.time_ns()} AS cache_probe"
    bad = f"DELETE FROM animal WHERE id = {time.time_ns()}"
    for _ in range(5):
        check_sql(sql)
        with pytest.raises(QueryRejectedError):
            check_sql(bad)  # rejections are cached too
    assert calls == 2


# --------------------------------------------------------------------------- layers below the check


@pytest.fixture
def unchecked(zoo: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox with the static check switched off, to test the layers below it."""
    monkeypatch.setattr(sandbox_module, "_checked", lambda sql, max_chars, verdict=None: sql)
    return zoo


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO animal VALUES (9, 'x', 'y', NULL, NULL)",
        "UPDATE animal SET name = 'x'",
        "DELETE FROM animal",
        "WITH x AS (SELECT 1) DELETE FROM animal",
        "REPLACE INTO animal(id, species) VALUES (1, 'y')",
        "CREATE TABLE t (x)",
        "CREATE TEMP TABLE t (x)",
        "CREATE TEMP VIEW v AS SELECT 1",
        "DROP TABLE animal",
        "ALTER TABLE animal RENAME TO beast",
        "ATTACH DATABASE ':memory:' AS other",
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
        "PRAGMA journal_mode = WAL",
        "PRAGMA table_info(animal)",
        "BEGIN IMMEDIATE",
        "SAVEPOINT a",
        "VACUUM",
        "ANALYZE",
        "REINDEX",
        "SELECT load_extension('/tmp/evil.so')",
        "SELECT * FROM pragma_table_info('animal')",
    ],
)
def test_authorizer_refuses_what_the_check_would_have(unchecked: Sandbox, sql: str) -> None:
    with pytest.raises(
        QueryRejectedError,
        match=r"(only a single read-only SELECT is|not) allowed|the schema is hidden",
    ):
        unchecked.execute(sql)
    assert unchecked.execute("SELECT count(*) FROM animal").rows == [[3]]


def test_python_refuses_a_second_statement_without_the_check(unchecked: Sandbox) -> None:
    with pytest.raises(QueryRejectedError, match="only one statement per QUERY"):
        unchecked.execute("SELECT 1; DELETE FROM animal")


def test_read_only_file_refuses_writes_without_authorizer_or_query_only(zoo: Sandbox) -> None:
    conn = zoo._conn
    assert conn is not None
    conn.set_authorizer(None)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("INSERT INTO log (msg) VALUES ('query_only stops this')")
    conn.execute("PRAGMA query_only = OFF")
    with pytest.raises(sqlite3.OperationalError, match="readonly database"):
        conn.execute("INSERT INTO log (msg) VALUES ('mode=ro stops this')")
    with pytest.raises(sqlite3.OperationalError, match="too many attached databases"):
        conn.execute("ATTACH DATABASE ':memory:' AS other")


# --------------------------------------------------------------------------- deadline


def test_runaway_recursive_cte_stops_at_the_deadline(zoo: Sandbox) -> None:
    start = time.monotonic()
    with pytest.raises(QueryTimeoutError, match=r"exceeded the 0\.2 s deadline") as err:
        zoo.execute(RUNAWAY, timeout_s=0.2)
    elapsed = time.monotonic() - start
    assert 0.2 <= elapsed <= 0.3
    assert "add a LIMIT" in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__
    # the connection is fully usable afterwards, also for the very same SQL
    assert zoo.execute("SELECT count(*) FROM animal").rows == [[3]]
    bounded = RUNAWAY.replace("FROM c)", "FROM c WHERE x < 10)")
    assert zoo.execute(bounded).rows == [[10]]
    with pytest.raises(QueryTimeoutError):
        zoo.execute(RUNAWAY, timeout_s=0.05)
    assert zoo.execute("SELECT name FROM animal WHERE id = 2").rows == [["Zed"]]


def test_configured_deadline_applies_by_default(zoo_db_path: Path) -> None:
    with _with(zoo_db_path, timeout_s=0.1) as quick:
        start = time.monotonic()
        with pytest.raises(QueryTimeoutError, match=r"the 0\.1 s deadline"):
            quick.execute("SELECT count(*) FROM numbers a, numbers b, numbers c")  # 1e9 rows
        assert time.monotonic() - start < 0.2
        assert quick.execute("SELECT count(*) FROM numbers").rows == [[1000]]


def test_deadline_also_covers_fetching(zoo: Sandbox) -> None:
    # The first row arrives at once; finding the next ones is what runs away.
    sql = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c)"
        " SELECT x FROM c WHERE x = 1 OR x > 1e15"
    )
    start = time.monotonic()
    with pytest.raises(QueryTimeoutError):
        zoo.execute(sql, timeout_s=0.1)
    assert time.monotonic() - start < 0.2
    assert zoo.execute("SELECT 1").rows == [[1]]


def test_timeout_in_a_worker_thread_leaves_the_sandbox_usable(zoo: Sandbox) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            zoo.execute(RUNAWAY, timeout_s=0.1)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5)
    assert len(errors) == 1 and isinstance(errors[0], QueryTimeoutError)
    assert zoo.execute("SELECT count(*) FROM visit").rows == [[3]]


# --------------------------------------------------------------------------- size bounds


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT randomblob(2e9)",
        "SELECT zeroblob(2000000000)",
        "SELECT length(randomblob(2000000))",
        "SELECT group_concat(hex(zeroblob(1000))) FROM numbers",
        "SELECT replace(hex(zeroblob(600000)), '0', 'ab')",
    ],
)
def test_huge_values_fail_fast(zoo: Sandbox, sql: str) -> None:
    start = time.monotonic()
    with pytest.raises(SandboxError, match=r"string or blob too big \(values are limited"):
        zoo.execute(sql)
    assert time.monotonic() - start < 0.1


def test_row_cap_reports_a_lower_bound_only_when_more_rows_exist(zoo_db_path: Path) -> None:
    with _with(zoo_db_path, max_fetch_rows=10) as capped:
        many = capped.execute("SELECT n FROM numbers ORDER BY n")
        assert many.rows == [[n] for n in range(1, 11)]
        assert (many.total_rows, many.total_is_lower_bound) == (10, True)
        exact = capped.execute("SELECT n FROM numbers ORDER BY n LIMIT 10")
        assert (len(exact.rows), exact.total_rows, exact.total_is_lower_bound) == (10, 10, False)
        fewer = capped.execute("SELECT n FROM numbers LIMIT 9")
        assert (len(fewer.rows), fewer.total_rows, fewer.total_is_lower_bound) == (9, 9, False)
        empty = capped.execute("SELECT n FROM numbers WHERE n < 0")
        assert (empty.rows, empty.total_rows, empty.total_is_lower_bound) == ([], 0, False)


def test_row_cap_spanning_several_batches(zoo_db_path: Path) -> None:
    with _with(zoo_db_path, max_fetch_rows=700) as capped:
        many = capped.execute("SELECT n, n * 2 FROM numbers ORDER BY n")
        assert len(many.rows) == 700 and many.rows[-1] == [700, 1400]
        assert (many.total_rows, many.total_is_lower_bound) == (700, True)
        exact = capped.execute("SELECT n FROM numbers LIMIT 700")
        assert (exact.total_rows, exact.total_is_lower_bound) == (700, False)
    with Sandbox(zoo_db_path) as roomy:
        everything = roomy.execute("SELECT n, 'row ' || n FROM numbers ORDER BY n")
        assert everything.rows[999] == [1000, "row 1000"]
        assert (everything.total_rows, everything.total_is_lower_bound) == (1000, False)


def test_byte_cap_stops_fetching_and_stays_honest(zoo_db_path: Path) -> None:
    wide = "SELECT replace(hex(zeroblob(100)), '0', 'x') FROM numbers"  # ~208 bytes per row
    with _with(zoo_db_path, max_result_bytes=1024) as capped:
        more = capped.execute(wide)
        assert len(more.rows) == 5  # the fifth row crosses 1024 bytes and is kept
        assert more.total_rows >= 5 and more.total_is_lower_bound is True
        last = capped.execute(wide + " LIMIT 5")
        assert (len(last.rows), last.total_rows, last.total_is_lower_bound) == (5, 5, False)
        seen = capped.execute(wide + " LIMIT 7")  # all 7 fetched in one batch, 5 kept
        assert (len(seen.rows), seen.total_rows, seen.total_is_lower_bound) == (5, 7, False)
        full_batch = capped.execute(wide + " LIMIT 256")  # a full batch: peek says no more
        assert (len(full_batch.rows), full_batch.total_rows) == (5, 256)
        assert full_batch.total_is_lower_bound is False


# --------------------------------------------------------------------------- blobs


def test_blobs_render_as_hex_literals(zoo: Sandbox) -> None:
    rows = zoo.execute("SELECT photo FROM animal ORDER BY id").rows
    assert rows[0] == ["x'00ff10'"]
    assert rows[1] == [None]
    assert rows[2] == ["x'" + "00" * 64 + "…'(100 bytes)"]
    assert zoo.execute("SELECT x'ABcd', zeroblob(0)").rows == [["x'abcd'", "x''"]]
    assert render_blob(bytes(range(64))) == "x'" + bytes(range(64)).hex() + "'"
    assert render_blob(b"\x00\xff" * 512) == "x'" + "00ff" * 32 + "…'(1024 bytes)"


# --------------------------------------------------------------------------- tables


def test_table_names_are_user_tables_in_schema_order(zoo: Sandbox) -> None:
    assert zoo.table_names == TABLES  # sqlite_sequence (from AUTOINCREMENT) excluded


@pytest.mark.parametrize(
    ("name", "real"),
    [
        ("animal", "animal"),
        ("ANIMAL", "animal"),
        ("  Animal\n", "animal"),
        ('"animal"', "animal"),
        ("`animal`", "animal"),
        ("[animal]", "animal"),
        ("'animal'", "animal"),
        ("animal;", "animal"),
        ("animal keeper", "Animal Keeper"),
        ('"Animal Keeper"', "Animal Keeper"),
        ("[ANIMAL KEEPER]", "Animal Keeper"),
    ],
)
def test_resolve_table_is_forgiving(zoo: Sandbox, name: str, real: str) -> None:
    assert zoo.resolve_table(name) == real


def test_unknown_table_lists_the_tables(zoo: Sandbox) -> None:
    with pytest.raises(SandboxError) as err:
        zoo.resolve_table("animals")
    message = str(err.value)
    assert "no such table: 'animals'" in message
    assert all(name in message for name in TABLES)
    with pytest.raises(SandboxError, match="Animal Keeper, animal, visit"):
        zoo.describe("keepers")


def test_describe(zoo: Sandbox) -> None:
    animal = zoo.describe("ANIMAL")
    assert animal == TableSchema(
        name="animal",
        columns=[
            ColumnInfo("id", "INTEGER", primary_key=True, not_null=False),
            ColumnInfo("name", "TEXT", primary_key=False, not_null=False),
            ColumnInfo("species", "VARCHAR(20)", primary_key=False, not_null=True),
            ColumnInfo("keeper_id", "INTEGER", primary_key=False, not_null=False),
            ColumnInfo("photo", "BLOB", primary_key=False, not_null=False),
        ],
        foreign_keys=[ForeignKey("keeper_id", "Animal Keeper", "id")],
        row_count=3,
    )
    visit = zoo.describe("visit")
    assert [(c.name, c.type, c.primary_key) for c in visit.columns] == [
        ("animal_id", "INTEGER", True),
        ("day", "TEXT", True),
        ("keeper", "INTEGER", False),
        ("note", "", False),
    ]
    assert visit.foreign_keys == [
        ForeignKey("animal_id", "animal", "id"),
        ForeignKey("keeper", "Animal Keeper", "id"),  # implicit: the referenced primary key
    ]
    assert visit.row_count == 3
    keeper = zoo.describe('"animal keeper"')
    assert keeper.name == "Animal Keeper" and keeper.row_count == 2
    assert keeper.columns[1] == ColumnInfo("name", "TEXT", primary_key=False, not_null=True)
    assert zoo.describe("numbers").row_count == 1000
    assert zoo.describe("animal") is animal  # cached
    json.dumps(dataclasses.asdict(animal))


def test_describe_does_not_open_pragmas_to_the_agent(zoo: Sandbox) -> None:
    zoo.describe("animal")
    for sql in ("PRAGMA table_info(animal)", 'PRAGMA table_info("animal")'):
        with pytest.raises(QueryRejectedError):
            zoo.execute(sql)


def test_sample(zoo: Sandbox) -> None:
    sample = zoo.sample("animal keeper", 5)
    assert sample.columns == ["id", "name"]
    assert sample.rows == [[1, "Kim"], [2, "Lee"]]
    assert (sample.total_rows, sample.total_is_lower_bound) == (2, False)
    two = zoo.sample("Animal", 2)
    assert two.rows == [[1, "Leo", "lion", 1, "x'00ff10'"], [2, "Zed", "zebra", 2, None]]
    assert zoo.sample("numbers", 0).rows == []
    with pytest.raises(SandboxError, match="no such table"):
        zoo.sample("nope", 3)


# --------------------------------------------------------------------------- errors and lifecycle


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT foo FROM animal", r"^SQL error: no such column: foo$"),
        ("SELECT * FROM animals", r"^SQL error: no such table: animals; tables are: Animal Keeper"),
        ("SELECT FROM animal WHERE", r"^SQL error: "),
        ("SELECT nosuchfunc(1)", r"^SQL error: no such function: nosuchfunc$"),
        ("SELECT ?", r"^SQL error: Incorrect number of bindings"),
    ],
)
def test_sqlite_errors_are_agent_friendly(zoo: Sandbox, sql: str, message: str) -> None:
    with pytest.raises(SandboxError, match=message) as err:
        zoo.execute(sql)
    assert type(err.value) is SandboxError
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_close_is_idempotent_and_final(zoo_db_path: Path) -> None:
    sandbox = Sandbox(zoo_db_path)
    with sandbox as same:
        assert same is sandbox
        assert sandbox.execute("SELECT 1").rows == [[1]]
    sandbox.close()
    sandbox.close()
    with pytest.raises(SandboxError, match="closed"):
        sandbox.execute("SELECT 1")
    assert "closed" in repr(sandbox)


def test_missing_or_corrupt_database_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        Sandbox(tmp_path / "missing.sqlite")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataError, match=r"junk\.sqlite"):
        Sandbox(junk)


def test_odd_path_characters_are_quoted(tmp_path: Path) -> None:
    path = _build(tmp_path / "dir with ?mode=rw&x#y%20" / "zoo db.sqlite")
    with Sandbox(path) as odd:
        assert odd.execute("SELECT count(*) FROM animal").rows == [[3]]
        with pytest.raises(SandboxError):
            odd.execute("INSERT INTO log (msg) VALUES ('x')")


def test_sqlglot_loads_at_the_first_verdict_not_at_import() -> None:
    """sqlglot costs about 0.1 s to import: a server start should not pay it."""
    import subprocess
    import sys

    code = (
        "import sys, sqlenv_core.env, sqlenv_core.pool;"
        "assert 'sqlglot' not in sys.modules, 'imported at start';"
        "from sqlenv_core.sandbox import check_sql; check_sql('SELECT 1');"
        "assert 'sqlglot' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_statements_sqlglot_does_not_model_are_refused_without_a_word_on_stderr() -> None:
    """EXPLAIN and REPLACE parse as sqlglot Commands, which it used to announce on stderr
    (the agent's SQL included) on every such query."""
    import subprocess
    import sys

    script = (
        "from sqlenv_core.sqlcheck import verdict\n"
        "for sql in ('EXPLAIN SELECT 1', 'REPLACE INTO t VALUES (1)', 'VACUUM'):\n"
        "    print(verdict(sql)[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        "only a single read-only SELECT is allowed; got EXPLAIN",
        "only a single read-only SELECT is allowed; got REPLACE",
        "only a single read-only SELECT is allowed; got VACUUM",
    ]

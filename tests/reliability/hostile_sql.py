"""The hostile-SQL corpus: what each entry attacks and the outcome it must get.

Outcome classes (``classify``):

* ``rejected`` — refused before running (not one read-only query, too long, NUL,
  denied function): ``QueryRejectedError``;
* ``error`` — SQLite (or the sandbox) stopped it with a clear error: too big, too
  complex, no such table, invalid UTF-8...;
* ``bounded-result`` — it ran and returned a result within the row/byte caps;
* ``timeout`` — the deadline stopped it.

Placeholders: ``{big}`` is the largest table of the episode's database, ``{t2}`` the
second largest, ``{path}`` its file. ``python tests/reliability/hostile_sql.py`` runs the
corpus through the engine on copies of the three largest databases and prints the
table recorded in ``docs/reliability.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

REJECTION_PREFIXES = (
    "query is too long",
    "query contains a NUL",
    "only one statement",
    "only a single read-only SELECT",
    "the function ",
    "empty query",
    "the query is not valid Unicode",
    "the argument is not valid Unicode",
    "the schema is hidden",
)

BIG_TABLES = {
    "flight_4": ("routes", "airports"),
    "formula_1": ("driverStandings", "results"),
    "sakila_1": ("payment", "rental"),
}


def classify(error: str) -> str:
    """The outcome class of an observation's ``error`` ('' = it ran)."""
    if not error:
        return "bounded-result"
    if "deadline" in error:
        return "timeout"
    if error.startswith(REJECTION_PREFIXES):
        return "rejected"
    return "error"


@dataclass(frozen=True)
class Hostile:
    id: str
    sql: str
    attacks: str
    expect: str  # rejected | error | bounded-result | timeout
    action: str = "QUERY"

    def render(self, big: str, t2: str, path: str = "/tmp/x.db") -> str:
        return self.sql.replace("{big}", big).replace("{t2}", t2).replace("{path}", path)


_A = "replace(hex(zeroblob({n})), '0', 'a')"


def _a(n: int) -> str:
    return _A.replace("{n}", str(n))


CORPUS: tuple[Hostile, ...] = (
    # ------------------------------------------------------------ writes and DDL, disguised
    Hostile("delete", "DELETE FROM {big}", "write", "rejected"),
    Hostile("delete-lower", "delete from {big} where 1", "write, lower case", "rejected"),
    Hostile("delete-mixed-comments", "DeLeTe/**/FROM/**/{big}", "write, case and comments", "rejected"),
    Hostile("drop-comment", "/* harmless */ DROP TABLE {big}", "DDL behind a comment", "rejected"),
    Hostile("update-line-comment", "-- just a select\nUPDATE {big} SET rowid = rowid", "write behind a line comment", "rejected"),
    Hostile("insert-default", "INSERT INTO {big} DEFAULT VALUES", "write", "rejected"),
    Hostile("insert-select", "INSERT INTO {big} SELECT * FROM {big}", "write", "rejected"),
    Hostile("replace-into", "REPLACE INTO {big} SELECT * FROM {big}", "write (REPLACE)", "rejected"),
    Hostile("upsert", "INSERT INTO {big} SELECT * FROM {big} WHERE 1 ON CONFLICT DO NOTHING", "write (upsert)", "rejected"),
    Hostile("delete-returning", "DELETE FROM {big} RETURNING *", "write that returns rows", "rejected"),
    Hostile("cte-delete", "WITH x AS (SELECT 1) DELETE FROM {big}", "write wrapped in a CTE", "rejected"),
    Hostile("cte-insert", "WITH x AS (SELECT * FROM {big}) INSERT INTO {big} SELECT * FROM x", "write wrapped in a CTE", "rejected"),
    Hostile("cte-update", "WITH RECURSIVE r(n) AS (SELECT 1) UPDATE {big} SET rowid = rowid", "write wrapped in a recursive CTE", "rejected"),
    Hostile("two-statements", "SELECT 1; DROP TABLE {big}", "a second statement", "rejected"),
    Hostile("two-selects", "SELECT 1; SELECT 2", "a second statement", "rejected"),
    Hostile("stacked-transaction", "BEGIN; DELETE FROM {big}; COMMIT", "a transaction", "rejected"),
    Hostile("begin-immediate", "BEGIN IMMEDIATE", "a write lock", "rejected"),
    Hostile("savepoint", "SAVEPOINT s1", "a transaction", "rejected"),
    Hostile("create-table", "CREATE TABLE evil (x)", "DDL", "rejected"),
    Hostile("create-temp-as", "CREATE TEMP TABLE evil AS SELECT * FROM {big}", "temp DDL (memory)", "rejected"),
    Hostile("create-view", "CREATE VIEW v AS SELECT 1", "DDL", "rejected"),
    Hostile("create-trigger", "CREATE TRIGGER t AFTER INSERT ON {big} BEGIN SELECT 1; END", "DDL", "rejected"),
    Hostile("create-index", "CREATE INDEX i ON {big}(rowid)", "DDL", "rejected"),
    Hostile("alter-rename", "ALTER TABLE {big} RENAME TO gone", "DDL", "rejected"),
    Hostile("alter-add", "ALTER TABLE {big} ADD COLUMN evil INTEGER", "DDL", "rejected"),
    Hostile("vacuum", "VACUUM", "rewrite the file", "rejected"),
    Hostile("vacuum-into", "VACUUM INTO '{path}.copy'", "write a new file", "rejected"),
    Hostile("reindex", "REINDEX", "write", "rejected"),
    Hostile("analyze", "ANALYZE", "write statistics", "rejected"),
    Hostile("explain-delete", "EXPLAIN DELETE FROM {big}", "EXPLAIN wrapper", "rejected"),
    Hostile("select-then-comment", "SELECT count(*) FROM {big}; -- ; DELETE FROM {big}", "a write in a trailing comment", "bounded-result"),
    Hostile("fullwidth-delete", "ＤＥＬＥＴＥ FROM {big}", "homoglyph keyword", "error"),
    # ------------------------------------------------------------ ATTACH, PRAGMA, extensions
    Hostile("attach-memory", "ATTACH DATABASE ':memory:' AS m", "ATTACH", "rejected"),
    Hostile("attach-file", "ATTACH '{path}.evil' AS e", "ATTACH a new file", "rejected"),
    Hostile("attach-rwc-uri", "ATTACH 'file:{path}?mode=rwc' AS w", "ATTACH the file writable", "rejected"),
    Hostile("detach", "DETACH main", "DETACH", "rejected"),
    Hostile("pragma-query-only", "PRAGMA query_only = OFF", "switch read-only off", "rejected"),
    Hostile("pragma-writable-schema", "PRAGMA writable_schema = ON", "schema corruption", "rejected"),
    Hostile("pragma-journal", "PRAGMA journal_mode = WAL", "write -wal/-shm files", "rejected"),
    Hostile("pragma-table-info", "PRAGMA table_info({big})", "PRAGMA outside DESCRIBE", "rejected"),
    Hostile("pragma-function", "SELECT * FROM pragma_table_info('{big}')", "table-valued PRAGMA", "rejected"),
    Hostile("load-extension", "SELECT load_extension('/tmp/evil.so')", "load_extension", "rejected"),
    Hostile("load-extension-entry", "SELECT LOAD_EXTENSION('libc.so.6', 'system')", "load_extension, upper case", "rejected"),
    Hostile("load-extension-quoted", 'SELECT "load_extension"(\'x\')', "load_extension, quoted name", "rejected"),
    Hostile("readfile", "SELECT readfile('/etc/passwd')", "file read (not even defined)", "error"),
    Hostile("writefile", "SELECT writefile('{path}.x', 'y')", "file write (not even defined)", "error"),
    Hostile("fts3-tokenizer", "SELECT fts3_tokenizer('simple')", "pointer leak", "rejected"),
    Hostile("sqlite-master", "SELECT * FROM sqlite_master", "schema read (the schema is hidden)", "rejected"),
    # ------------------------------------------------------------ runaway recursion
    Hostile("recursive-count", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c", "never-ending recursive CTE", "timeout"),
    Hostile("recursive-rows", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", "endless rows", "bounded-result"),
    Hostile("recursive-sparse", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c WHERE x = 1 OR x > 1e15", "first row fast, then endless fetch", "timeout"),
    Hostile("recursive-doubling", "WITH RECURSIVE c(s) AS (SELECT 'x' UNION ALL SELECT s || s FROM c) SELECT length(s) FROM c", "exponential string growth", "error"),
    Hostile("recursive-join", "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c, {big} LIMIT 1e12) SELECT count(*) FROM c", "recursion fanned out by a table", "timeout"),
    # ------------------------------------------------------------ cartesian products
    Hostile("cartesian-3", "SELECT count(*) FROM {big} a, {big} b, {big} c", "cartesian product of the largest table", "timeout"),
    Hostile("cartesian-rows", "SELECT * FROM {big} a, {t2} b", "cartesian product, all rows", "bounded-result"),
    Hostile("cartesian-sorted", "SELECT * FROM {big} a, {big} b ORDER BY random() LIMIT 1", "sorting a cartesian product", "timeout"),
    Hostile("cartesian-distinct", "SELECT count(DISTINCT a.rowid || '-' || b.rowid) FROM {big} a, {big} b", "DISTINCT over a cartesian product (temp b-tree)", "timeout"),
    Hostile("cartesian-group", "SELECT a.rowid, count(*) FROM {big} a, {big} b GROUP BY a.rowid ORDER BY 2 DESC", "GROUP BY over a cartesian product", "timeout"),
    Hostile("cartesian-window", "SELECT a.rowid, row_number() OVER (ORDER BY random()) FROM {big} a, {big} b LIMIT 5", "window over a cartesian product", "timeout"),
    Hostile("cartesian-like", "SELECT count(*) FROM {big} a JOIN {big} b ON CAST(a.rowid AS TEXT) LIKE '%' || b.rowid || '%'", "LIKE join", "timeout"),
    Hostile("group-concat-cartesian", "SELECT group_concat(a.rowid) FROM {big} a, {big} b", "string over the length limit, built slowly", "timeout"),
    Hostile("correlated-subquery", "SELECT (SELECT count(*) FROM {big} b WHERE b.rowid > a.rowid) FROM {big} a ORDER BY 1 DESC LIMIT 1", "quadratic correlated subquery", "timeout"),
    Hostile("sixty-four-joins", "SELECT count(*) FROM " + ", ".join(f"{{big}} t{i}" for i in range(65)), "more tables than a join allows", "error"),
    # ------------------------------------------------------------ huge values
    Hostile("randomblob-1e9", "SELECT randomblob(1e9)", "huge blob", "error"),
    Hostile("zeroblob-max", "SELECT zeroblob(2147483647)", "huge blob", "error"),
    Hostile("randomblob-per-row", "SELECT randomblob(8000) FROM {big}", "a large blob per row (byte cap)", "bounded-result"),
    Hostile("wide-row", "SELECT " + ", ".join(f"hex(randomblob(4000)) AS c{i}" for i in range(150)), "one 1.2 MB row of maximal cells", "bounded-result"),
    Hostile("hex-doubling", "SELECT replace(hex(zeroblob(600000)), '0', 'ab')", "value over the length limit", "error"),
    Hostile("printf-width", "SELECT printf('%.*c', 2000000000, 'x')", "uninterruptible printf loop (10 s before)", "rejected"),
    Hostile("format-width", "SELECT format('%*d', 2000000000, 1)", "printf under its other name", "rejected"),
    Hostile("recursive-blobs", "WITH RECURSIVE r(s) AS (SELECT randomblob(8000) UNION ALL SELECT randomblob(8000) FROM r) SELECT s FROM r", "endless large rows", "bounded-result"),
    # ------------------------------------------------------------ uninterruptible built-ins
    Hostile("like-quadratic", f"SELECT {_a(4000)} LIKE '%' || substr({_a(100)}, 1, 60) || 'b%'", "LIKE cost = value x pattern", "bounded-result"),
    Hostile("like-long-pattern", f"SELECT 'a' LIKE {_a(2000)}", "LIKE pattern over the limit", "error"),
    Hostile("glob-quadratic", f"SELECT {_a(4000)} GLOB '*' || substr({_a(100)}, 1, 60) || 'b*'", "GLOB cost = value x pattern", "bounded-result"),
    Hostile("instr-quadratic", f"SELECT instr({_a(4000)}, {_a(2000)} || 'b')", "instr cost = value x needle (5 s before)", "bounded-result"),
    Hostile("replace-quadratic", f"SELECT length(replace({_a(4000)}, {_a(2000)} || 'b', ''))", "replace cost = value x pattern", "bounded-result"),
    Hostile("trim-quadratic", f"SELECT length(trim({_a(4000)}, replace(hex(zeroblob(300)), '0', 'c') || 'a'))", "trim cost = value x set (11 s before)", "bounded-result"),
    Hostile("trim-run", f"WITH s(a) AS (SELECT {_a(4000)}) SELECT " + " + ".join(f"length(trim(a, 'cc{i}a'))" for i in range(100)) + " AS x FROM s", "a straight run of 100 expensive calls", "bounded-result"),
    Hostile("instr-run", f"WITH s(a, b) AS (SELECT {_a(4000)}, {_a(2000)}) SELECT " + ", ".join(f"instr(a, b || '{i}b') AS c{i}" for i in range(120)) + " FROM s", "a straight run of 120 worst-case instr calls", "bounded-result"),
    Hostile("like-run", f"WITH s(a) AS (SELECT {_a(4000)}) SELECT " + ", ".join(f"a LIKE '%{'a' * 58}{i:03d}b%' AS c{i}" for i in range(200)) + " FROM s", "a straight run of 200 worst-case LIKEs (the residual; see the docs)", "bounded-result"),
    Hostile("program-too-long", "SELECT " + ", ".join(f"abs(-{i}) AS c{i}" for i in range(1500)), "more VM instructions than allowed", "error"),
    # ------------------------------------------------------------ deep nesting, huge SQL
    Hostile("nested-parens", "SELECT " + "(" * 2000 + "1" + ")" * 2000, "2000 nested parentheses (sqlglot recursion)", "error"),
    Hostile("nested-functions", "SELECT " + "abs(" * 900 + "1" + ")" * 900, "900 nested calls", "error"),
    Hostile("nested-subqueries", "SELECT * FROM " + "(SELECT * FROM " * 120 + "{big}" + ")" * 120 + " LIMIT 1", "120 nested subqueries", "error"),
    Hostile("long-sum", "SELECT " + "+".join("1" for _ in range(20000)), "a 40,000-term expression", "error"),
    Hostile("long-in-list", "SELECT count(*) FROM {big} WHERE rowid IN (" + ",".join(str(i) for i in range(15000)) + ")", "a 15,000-item IN list (too many VM instructions)", "error"),
    Hostile("compound-501", " UNION ".join(f"SELECT {i}" for i in range(501)), "too many compound terms", "error"),
    Hostile("columns-2001", "SELECT " + ", ".join("1" for _ in range(2001)), "too many columns", "error"),
    Hostile("megabyte-literal", "SELECT '" + "a" * 1_000_000 + "'", "a megabyte of SQL", "rejected"),
    Hostile("megabyte-comment", "SELECT 1 -- " + "x" * 1_000_000, "a megabyte comment", "rejected"),
    Hostile("just-under-limit", "SELECT length('" + "a" * 8000 + "')" + " " * 91_000, "99,000 characters, mostly padding", "bounded-result"),
    Hostile("empty", "   ;  ;", "no statement at all", "rejected"),
    # ------------------------------------------------------------ NUL bytes, odd Unicode
    Hostile("nul-then-drop", "SELECT 1\x00; DROP TABLE {big}", "NUL byte truncation", "rejected"),
    Hostile("nul-in-literal", "SELECT '\x00'", "NUL byte in a literal", "rejected"),
    Hostile("lone-surrogate", "SELECT '\ud800'", "unencodable text", "rejected"),
    Hostile("char-zero", "SELECT char(0) || 'after'", "a NUL produced by SQLite", "bounded-result"),
    Hostile("invalid-utf8", "SELECT CAST(x'ff' AS TEXT)", "invalid UTF-8 from SQLite", "error"),
    Hostile("surrogate-codepoint", "SELECT char(55296)", "a surrogate code point from SQLite", "error"),
    Hostile("bom-prefix", "\ufeffSELECT 1", "byte-order mark", "bounded-result"),
    Hostile("zero-width-table", "SELECT * FROM {big}\u200b", "zero-width space in a name", "error"),
    Hostile("rtl-override", "SELECT '\u202edrow' AS \"\u202ex\"", "right-to-left override", "bounded-result"),
    Hostile("emoji-combining", "SELECT '🙂\u0301' || 'é' AS \"名前\"", "emoji, combining marks, CJK name", "bounded-result"),
    Hostile("nbsp-keyword", "SELECT\u00a01", "no-break space between tokens", "error"),
    # ------------------------------------------------------------ DESCRIBE / SAMPLE arguments
    Hostile("describe-injection", '{big}"); DROP TABLE {big}; --', "SQL in a table name", "error", action="DESCRIBE"),
    Hostile("sample-injection", "{big} LIMIT 1e9; DELETE FROM {big}", "SQL in a table name", "error", action="SAMPLE"),
    Hostile("describe-huge-name", "x" * 200_000, "a 200 kB table name", "error", action="DESCRIBE"),
    Hostile("describe-nul", "{big}\x00", "NUL in a table name", "error", action="DESCRIBE"),
)


def corpus_summary() -> dict[str, dict[str, int]]:
    """Counts by outcome class and by what is attacked (the first word of each section)."""
    by_expect: dict[str, int] = {}
    for item in CORPUS:
        by_expect[item.expect] = by_expect.get(item.expect, 0) + 1
    return {"by_expect": by_expect}


def main() -> None:  # pragma: no cover - the full report for docs/reliability.md
    import argparse
    import tempfile
    import time
    from pathlib import Path

    import machine  # benchmarks/machine.py (on sys.path: see the end of this file)
    from sqlenv_core.config import EnvConfig, SandboxConfig
    from sqlenv_core.dataset import load_dataset
    from sqlenv_core.env import SQLEnvironment
    from support import LARGEST_DBS, db_digests, make_data_copy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=0.5, help="query deadline (s)")
    parser.add_argument(
        "--out",
        type=Path,
        help="also write the results here (benchmarks/results/hostile_sql.json is what the "
        "README and docs/reliability.md quote)",
    )
    args = parser.parse_args()
    started = machine.describe()
    with tempfile.TemporaryDirectory() as tmp:
        data = make_data_copy(Path(tmp))
        before = db_digests(data)
        env = SQLEnvironment(
            load_dataset(data), EnvConfig(budget=10_000, sandbox=SandboxConfig(timeout_s=args.timeout))
        )
        worst: dict[str, float] = {}
        mismatches = []
        for db_id in LARGEST_DBS:
            env.reset(db_id=db_id, seed=0)
            big, t2 = BIG_TABLES[db_id]
            for item in CORPUS:
                start = time.monotonic()
                obs = env.step({"action_type": item.action, "argument": item.render(big, t2, str(data / "x"))})
                elapsed = time.monotonic() - start
                got = classify(obs.error)
                worst[item.id] = max(worst.get(item.id, 0.0), elapsed)
                if got != item.expect:
                    mismatches.append((db_id, item.id, item.expect, got, obs.error[:100]))
        env.close()
        same = db_digests(data) == before
    counts: dict[str, int] = {}
    for item in CORPUS:
        counts[item.expect] = counts.get(item.expect, 0) + 1
    print(f"{len(CORPUS)} queries x {len(LARGEST_DBS)} databases, deadline {args.timeout} s")
    print("by outcome:", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print(f"databases byte-identical afterwards: {same}")
    slowest = sorted(worst.items(), key=lambda kv: -kv[1])[:8]
    print("slowest (s):", ", ".join(f"{k} {v:.3f}" for k, v in slowest))
    print(f"mismatches: {mismatches or 'none'}")
    if args.out is not None:
        results = {
            "entries": len(CORPUS),
            "databases": list(LARGEST_DBS),
            "deadline_s": args.timeout,
            "by_outcome": dict(sorted(counts.items())),
            "databases_byte_identical": same,
            "slowest_s": {k: round(v, 3) for k, v in slowest},
            "mismatches": [list(m) for m in mismatches],
        }
        machine.record(args.out, "hostile_sql", results, started)


if __name__ == "__main__":  # pragma: no cover
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.path.insert(1, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    main()

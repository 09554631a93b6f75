"""A read-only, time- and size-bounded SQLite sandbox for agent-written SQL.

An agent's SQL is untrusted, so several independent layers keep it harmless:

1. **Read-only file.** The database is opened with ``mode=ro`` and ``PRAGMA query_only``;
   SQLite itself refuses to write, whatever reaches it. It is also opened ``immutable``:
   the bundled databases are read-only media, so SQLite skips the file locking and
   change check it otherwise does around every statement (about 4 us of a 15 us query).
   A file replaced or modified while the process runs is noticed by the pool instead
   (its identity includes size and modification time; see ``pool.py``).
2. **Static check** (:func:`check_sql`). The text is bounded in length, must be free
   of NUL bytes and must parse (with sqlglot) as exactly one query: SELECT, a set
   operation, VALUES or a CTE ending in one of these. Its verdicts are cached, because an
   RL loop sends the same SQL over and over.
3. **Authorizer.** SQLite asks :func:`_make_authorizer` about every operation while it
   prepares a statement; only reading, selecting, recursive CTEs and functions (minus a
   denylist) pass. This is the real guard: sqlglot only has to be right about what it
   *accepts* being a query, and SQL it cannot parse is left for SQLite and the
   authorizer to judge instead of being rejected (sqlglot does not know every SQLite
   construct, and every Spider gold query must run).
4. **Deadline.** A progress handler interrupts SQLite once the per-query deadline passes,
   during execution *and* while rows are being fetched. The clock starts before the
   static check, so parsing long SQL counts against the deadline too.
   :meth:`Sandbox.interrupt` stops a query early from another thread (a server whose
   client has gone).
5. **Size limits.** SQLite's own length limit caps every value (``randomblob(1e9)`` fails
   at once), and fetching stops at ``max_fetch_rows`` rows or ``max_result_bytes``
   (approximate) bytes, reporting honestly whether more rows exist.
6. **No unbounded stretch between deadline checks.** SQLite checks the deadline only on
   loop jumps, so neither one built-in call nor a straight run of them can be stopped
   midway. Calls whose cost is not bounded by the length limit are denied
   (``printf``/``format``: a width of 2e9 loops for 10 s), ``trim(x, chars)`` is a linear
   Python function that checks the deadline, the other quadratic ones (``instr``,
   ``replace``, ``LIKE``, ``GLOB``) are kept short by the 8 KiB length limit and a 64-byte
   LIKE/GLOB pattern limit, and a statement may compile to at most 1,024 instructions,
   which bounds a straight run (about 0.15 s at worst; see ``docs/reliability.md``).

Per-query overhead is kept close to raw ``sqlite3`` (one cached check, one lock, two
clock reads, a pass over the fetched cells), since the RL loop runs many small queries.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from time import monotonic
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

from sqlenv_core.config import SandboxConfig
from sqlenv_core.errors import (
    DataError,
    QueryInterruptedError,
    QueryRejectedError,
    QueryTimeoutError,
    SandboxError,
)
from sqlenv_core.schemas import Cell

__all__ = [
    "ColumnInfo",
    "ForeignKey",
    "QueryOutcome",
    "Sandbox",
    "TableSchema",
    "check_sql",
    "render_blob",
]


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class QueryOutcome:
    """What one query returned, bounded so that any query is safe to hold and serialise.

    Not frozen: a frozen dataclass sets each field through ``object.__setattr__``,
    which made building one cost 0.6 us against 0.16 us, on every step.

    ``rows`` holds at most ``max_fetch_rows`` rows and stops soon after their approximate
    size passes ``max_result_bytes`` (the row that crosses the limit is kept).
    ``total_rows`` counts the rows SQLite produced before fetching stopped (it can exceed
    ``len(rows)`` when the byte limit cut a batch short), and ``total_is_lower_bound``
    is True only when more rows are known to exist (or, rarely, when the deadline ran out
    while checking whether they do), so a caller can say "at least N rows".
    """

    columns: list[str]
    rows: list[list[Cell]]
    total_rows: int
    total_is_lower_bound: bool
    elapsed_s: float


_first = itemgetter(0)


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One column as declared: ``type`` is the declared type text ('' when none)."""

    name: str
    type: str
    primary_key: bool
    not_null: bool


@dataclass(frozen=True, slots=True)
class ForeignKey:
    """``column`` of this table references ``ref_table.ref_column``."""

    column: str
    ref_table: str
    ref_column: str


@dataclass(frozen=True, slots=True)
class TableSchema:
    """What DESCRIBE shows: columns in declaration order, foreign keys and the row count."""

    name: str
    columns: list[ColumnInfo]
    foreign_keys: list[ForeignKey]
    row_count: int


# --------------------------------------------------------------------------- static check

_CACHE_MAX_CHARS: Final = 1024
"""Longer SQL is checked without caching (Spider's longest gold query has 577
characters), so the 4,096 verdicts hold at most about 4 MiB of ASCII text, 17 MiB of
4-byte characters."""


def _verdict(sql: str) -> tuple[str | None, str]:
    """``(error, sql_to_run)`` from :func:`sqlenv_core.sqlcheck.verdict`.

    Imported on first use: sqlglot takes about 0.1 s to import, which every process
    start (a server's start-to-healthy time) would otherwise pay before any query.
    """
    from .sqlcheck import verdict

    return verdict(sql)


_cached_verdict = lru_cache(maxsize=4096)(_verdict)


def _checked(sql: str, max_chars: int, verdict: tuple[str | None, str] | None = None) -> str:
    """Run :func:`check_sql` (or take its ``verdict``) and return the text for SQLite."""
    if len(sql) > max_chars:
        raise QueryRejectedError(
            f"query is too long ({len(sql)} characters; the limit is {max_chars})"
        )
    if "\x00" in sql:
        raise QueryRejectedError("query contains a NUL character")
    if verdict is not None:
        error, to_run = verdict
    elif len(sql) <= _CACHE_MAX_CHARS:
        error, to_run = _cached_verdict(sql)
    else:
        error, to_run = _verdict(sql)
    if error is not None:
        raise QueryRejectedError(error)
    return to_run


def check_sql(sql: str, max_chars: int = 100_000) -> None:
    """Raise :class:`QueryRejectedError` unless ``sql`` is one read-only query.

    Length and NUL bytes are checked before parsing (both are cheap and parsing either
    would be wasted work). Verdicts are cached in an LRU cache of 4096 SQL texts: the RL
    loop repeats queries a lot, and a cache hit costs well under a microsecond against
    tens to hundreds of microseconds for a parse. SQL that sqlglot cannot parse passes
    (see the module docstring): SQLite and the authorizer still stand behind this check.
    """
    _checked(sql, max_chars)


# --------------------------------------------------------------------------- authorizer

_OK: Final = sqlite3.SQLITE_OK
_DENY: Final = sqlite3.SQLITE_DENY
_FUNCTION: Final = sqlite3.SQLITE_FUNCTION
_PRAGMA: Final = sqlite3.SQLITE_PRAGMA
_ALLOWED_ACTIONS: Final = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE}
)
_DENIED_FUNCTIONS: Final = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "printf", "format"}
)
"""``printf``/``format`` loop over their width and precision (``printf('%.*c', 2e9, 'x')``
runs for seconds in one uninterruptible call); no Spider query uses them."""
_DENIED_HINTS: Final = {
    "printf": "; use round(x, 2) or || to format values",
    "format": "; use round(x, 2) or || to format values",
}

LIKE_PATTERN_LIMIT: Final = 64
"""Longest LIKE/GLOB pattern in bytes (SQLite's default is 50,000). Matching costs up to
value length x pattern length in one uninterruptible call; Spider's longest is 23."""

PROGRAM_OPS_LIMIT: Final = 1024
"""Most VM instructions a statement may compile to (SQLite's default is 250 million).
SQLite checks its deadline only on loop jumps, so a long straight run of expensive
expressions (a thousand LIKEs on one row) is uninterruptible; this bounds the run.
Spider's largest gold query compiles to 128 instructions."""
_INTERNAL_PRAGMAS: Final = frozenset({"table_info", "foreign_key_list"})
_READ: Final = sqlite3.SQLITE_READ
SCHEMA_HIDDEN: Final = (
    "the schema is hidden: {what} cannot be queried; use DESCRIBE table to see a table's "
    "columns (one step per table)"
)
"""Why agent SQL may not read SQLite's own tables (``sqlite_master``, ``sqlite_schema``,
``sqlite_stat1``, ...) or call the PRAGMA functions (``pragma_table_info``): one query
would show every table's columns, which DESCRIBE shows one table per step. The hidden
schema is what the task measures (docs/security.md)."""

# Authorizer action codes share integers with result codes, so name them explicitly.
_ACTION_NAMES: Final[dict[int, str]] = {
    getattr(sqlite3, f"SQLITE_{name.replace(' ', '_')}"): name
    for name in (
        "CREATE INDEX", "CREATE TABLE", "CREATE TEMP INDEX", "CREATE TEMP TABLE",
        "CREATE TEMP TRIGGER", "CREATE TEMP VIEW", "CREATE TRIGGER", "CREATE VIEW",
        "DELETE", "DROP INDEX", "DROP TABLE", "DROP TEMP INDEX", "DROP TEMP TABLE",
        "DROP TEMP TRIGGER", "DROP TEMP VIEW", "DROP TRIGGER", "DROP VIEW", "INSERT",
        "PRAGMA", "TRANSACTION", "UPDATE", "ATTACH", "DETACH", "ALTER TABLE", "REINDEX",
        "ANALYZE", "CREATE VTABLE", "DROP VTABLE", "SAVEPOINT",
    )
}  # fmt: skip


class _State:
    """Mutable state shared with SQLite's callbacks.

    The callbacks close over this small object rather than the :class:`Sandbox`, so a
    dropped sandbox is freed (and its connection closed) without waiting for the GC.
    """

    __slots__ = ("deadline", "denied", "internal", "interrupted", "ran", "timed_out")

    def __init__(self) -> None:
        self.deadline = float("inf")
        self.ran = False  # the progress handler ran: the statement compiled and is executing
        self.denied: str | None = None
        self.internal = False
        self.interrupted = False  # set by Sandbox.interrupt(), from any thread
        self.timed_out = False


def _make_authorizer(state: _State) -> Any:
    """SQLite's authorizer: allow reading, deny everything else.

    It runs only when a statement is prepared; Python's statement cache skips that for
    repeated SQL, so it costs nothing on repeats. ``state.internal`` lets the sandbox's
    own DESCRIBE use ``PRAGMA table_info`` / ``foreign_key_list``.
    """

    def authorize(
        action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None
    ) -> int:
        own_table = arg1 is not None and arg1[:7].lower() == "sqlite_" and not state.internal
        if action in _ALLOWED_ACTIONS:
            if own_table and action == _READ:
                state.denied = SCHEMA_HIDDEN.format(what=arg1)
                return _DENY
            return _OK
        if action == _FUNCTION:
            if arg2 is not None and arg2.lower() in _DENIED_FUNCTIONS:
                hint = _DENIED_HINTS.get(arg2.lower(), "")
                state.denied = f"the function {arg2}() is not allowed{hint}"
                return _DENY
            return _OK
        if action == _PRAGMA:
            if state.internal and arg1 in _INTERNAL_PRAGMAS:
                return _OK
            state.denied = SCHEMA_HIDDEN.format(what=f"pragma_{arg1}() (PRAGMA {arg1})")
            return _DENY
        if own_table:
            # Preparing a PRAGMA function (pragma_table_info(...)) first asks to UPDATE
            # sqlite_master (its eponymous table); SQL that writes sqlite_master never gets
            # here, sqlglot refuses it. Used to read "got UPDATE".
            state.denied = SCHEMA_HIDDEN.format(
                what="a PRAGMA function such as pragma_table_info()"
            )
            return _DENY
        name = _ACTION_NAMES.get(action, f"operation {action}")
        state.denied = f"only a single read-only SELECT is allowed; got {name}"
        return _DENY

    return authorize


class _Stopped(Exception):
    """Raised inside a SQL function when the deadline has passed or on interrupt."""


def _sql_text(value: Any) -> str:
    """``value`` as SQLite's string functions see it (``1e20`` -> ``'1.0e+20'``)."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if kind is float:
        if value in (_INF, -_INF):
            return "Inf" if value > 0 else "-Inf"
        mantissa, e, exponent = f"{value:.15g}".partition("e")  # SQLite's "%!.15g"
        if "." not in mantissa and mantissa.lstrip("-").isdigit():
            mantissa += ".0"
        return mantissa + (f"e{exponent}" if e else "")
    return bytes(value).decode("utf-8", "replace")


def _make_functions(state: _State) -> dict[tuple[str, int], Any]:
    """Linear-time, deadline-aware versions of two-argument ``trim``/``ltrim``/``rtrim``.

    SQLite's cost (length of the value) x (characters in the set) in one call that
    nothing can interrupt: 40 such calls on one 16 KB row took 2.3 s against a 0.2 s
    deadline, and at the 8 KiB limit one call still takes 8 ms. Python's ``strip`` over
    the set's distinct characters is linear, and each call first checks the deadline,
    so a run of them stops on time. Results equal SQLite's. (``instr`` and ``replace``
    are quadratic too, but memcmp-fast: 0.3 ms a call at 8 KiB, and the instruction
    limit bounds a run of them to about 60 ms, so they keep SQLite's C speed, 6-12x
    faster than a Python callback per row.)
    """

    def check() -> None:
        if state.interrupted:
            raise _Stopped
        if monotonic() > state.deadline:
            state.timed_out = True
            raise _Stopped

    def stripper(method: str) -> Any:
        def strip(text: Any, chars: Any) -> str | None:
            check()
            if text is None or chars is None:
                return None
            unique = "".join(dict.fromkeys(_sql_text(chars)))  # each char once: linear
            return getattr(_sql_text(text), method)(unique)  # type: ignore[no-any-return]

        return strip

    return {
        ("trim", 2): stripper("strip"),
        ("ltrim", 2): stripper("lstrip"),
        ("rtrim", 2): stripper("rstrip"),
    }


def _make_progress_handler(state: _State) -> Any:
    """Interrupts SQLite (by returning True) once the deadline has passed or on request."""

    def progress() -> bool:
        state.ran = True
        if state.interrupted:
            return True
        if monotonic() > state.deadline:
            state.timed_out = True
            return True
        return False

    return progress


# --------------------------------------------------------------------------- helpers

_BLOB_PREVIEW_BYTES: Final = 64
_INF: Final = float("inf")


def render_blob(value: bytes) -> str:
    """A BLOB as SQL-literal text, ``x'00ff'``; longer than 64 bytes: ``x'00ff…'(1024 bytes)``."""
    if len(value) <= _BLOB_PREVIEW_BYTES:
        return f"x'{value.hex()}'"
    return f"x'{value[:_BLOB_PREVIEW_BYTES].hex()}…'({len(value)} bytes)"


def _render_row(row: tuple[Any, ...]) -> list[Cell]:
    return [render_blob(v) if type(v) is bytes else v for v in row]


def _shorten(text: str, limit: int = 100) -> str:
    """``text`` cut to ``limit`` characters (with an ellipsis): messages quote agent input."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_QUOTE_PAIRS: Final = {'"': '"', "`": "`", "[": "]", "'": "'"}


def _unquote(name: str) -> str:
    name = name.strip()
    while len(name) >= 2 and _QUOTE_PAIRS.get(name[0]) == name[-1]:
        name = name[1:-1].strip()
    return name


def _batch_size(batch: list[tuple[Any, ...]]) -> tuple[int, bool]:
    """Approximate bytes (string/blob lengths + 8 per cell) and whether there is a blob."""
    size = 0
    blob = False
    for v in chain.from_iterable(batch):
        t = type(v)
        if t is str:
            size += len(v)
        elif t is bytes:
            size += len(v)
            blob = True
    if batch:
        size += 8 * len(batch) * len(batch[0])
    return size, blob


def _row_size(row: tuple[Any, ...]) -> int:
    size = 8 * len(row)
    for v in row:
        if type(v) is str or type(v) is bytes:
            size += len(v)
    return size


# --------------------------------------------------------------------------- sandbox

_BATCH_CELLS: Final = 256
"""Cells per fetchmany(): enough to make the per-batch cost negligible, few enough that
a batch of maximal values stays bounded (256 x ``max_cell_bytes``, 2 MiB by default, and
only for deliberately huge values: Spider's largest cell is 213 bytes)."""


_DAMAGED_CODES: Final = frozenset(
    {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN}
)
"""SQLite's primary result codes for a file that cannot be read as a sound database."""


def _damaged(error: Exception) -> bool:
    """Whether ``error`` says the database file is damaged or unreadable, rather than
    that the SQL was wrong (which is the agent's to fix)."""
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and (code & 0xFF) in _DAMAGED_CODES


class Sandbox:
    """One read-only SQLite database, safe to hand agent-written SQL.

    Not for concurrent use by several threads at once: calls are serialised by a lock
    (a query re-run in a worker thread simply makes the next call wait). Use as a context
    manager or call :meth:`close`.
    """

    __slots__ = (
        "_cell_cost",
        "_conn",
        "_lock",
        "_lower_names",
        "_max_bytes",
        "_max_rows",
        "_max_sql_chars",
        "_path",
        "_schemas",
        "_state",
        "_timeout_s",
        "config",
        "table_names",
    )

    def __init__(self, db_path: str | Path, config: SandboxConfig | None = None) -> None:
        self.config = config if config is not None else SandboxConfig()
        cfg = self.config
        self._path = Path(db_path)
        if not self._path.is_file():
            raise DataError(f"database file not found: {self._path}")
        self._timeout_s = cfg.timeout_s
        self._max_rows = cfg.max_fetch_rows
        self._max_bytes = cfg.max_result_bytes
        self._cell_cost = cfg.max_cell_bytes + 8  # the most one cell adds to _batch_size
        self._max_sql_chars = cfg.max_sql_chars
        self._lock = threading.Lock()
        self._schemas: dict[str, TableSchema] = {}
        self._state = _State()

        self._conn: sqlite3.Connection | None = None
        conn = self._connect(cached_statements=256)
        self._state.internal = True  # the sandbox's own read of sqlite_master
        try:
            names = conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND substr(name, 1, 7) <> 'sqlite_' ORDER BY rowid"
            ).fetchall()
        except sqlite3.Error as error:
            conn.close()
            raise DataError(f"cannot read database {self._path}: {error}") from None
        finally:
            self._state.internal = False
        self._conn = conn
        self.table_names: tuple[str, ...] = tuple(row[0] for row in names)
        self._lower_names = {name.lower(): name for name in reversed(self.table_names)}

    def _connect(self, cached_statements: int) -> sqlite3.Connection:
        """A read-only connection with every limit, the authorizer and the deadline check.

        SQLite's temporary storage (sorters, materialised subqueries) is kept in memory,
        under the process-wide ``max_sqlite_heap_bytes``, instead of in files without any
        bound: an ORDER BY over a cross join wrote 480 MiB to /var/tmp in 2 s.
        """
        cfg = self.config
        uri = f"file:{quote(str(self._path.resolve()))}?mode=ro&immutable=1"
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=cached_statements,
            )
        except sqlite3.Error as error:
            raise DataError(f"cannot open database {self._path}: {error}") from None
        try:
            conn.execute("PRAGMA query_only=ON")
            conn.execute("PRAGMA temp_store=MEMORY")
            heap = cfg.max_sqlite_heap_bytes
            conn.execute(f"PRAGMA hard_heap_limit={heap}")
            conn.execute(f"PRAGMA soft_heap_limit={heap // 2}")  # caches shrink first
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, cfg.max_cell_bytes)
            conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, max(cfg.max_sql_chars * 4, 1024))
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            conn.setlimit(sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH, LIKE_PATTERN_LIMIT)
            conn.setlimit(sqlite3.SQLITE_LIMIT_VDBE_OP, PROGRAM_OPS_LIMIT)
            for (name, nargs), function in _make_functions(self._state).items():
                conn.create_function(name, nargs, function, deterministic=True)
            conn.set_authorizer(_make_authorizer(self._state))
            conn.set_progress_handler(_make_progress_handler(self._state), cfg.progress_interval)
        except sqlite3.Error as error:
            conn.close()
            raise DataError(f"cannot read database {self._path}: {error}") from None
        return conn

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the connection; calling it again does nothing."""
        conn = self._conn
        if conn is None:
            return
        with self._lock:
            self._conn = None
            conn.set_progress_handler(None, 0)
            conn.set_authorizer(None)
            conn.close()

    def interrupt(self) -> None:
        """Stop the query running now, or else the next one to start; any thread may call it.

        The query fails with :class:`QueryInterruptedError` within a few VM instructions
        (``conn.interrupt()`` plus the progress handler, which also catches a query that
        had not started yet). The flag is cleared when that query ends; the sandbox stays
        usable. Callers that lend the sandbox on (a pool) use :meth:`clear_interrupt`.
        """
        conn = self._conn
        self._state.interrupted = True
        if conn is not None:
            conn.interrupt()

    def clear_interrupt(self) -> None:
        """Forget an :meth:`interrupt` that came after the last query ended."""
        self._state.interrupted = False

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"Sandbox({str(self._path)!r}, {len(self.table_names)} tables, {state})"

    # ----------------------------------------------------------------- tables

    def resolve_table(self, name: str) -> str:
        """The real name of table ``name``, matched case-insensitively.

        Surrounding whitespace, quotes, backticks, brackets and a trailing semicolon are
        tolerated because agents add them. Unknown names raise :class:`SandboxError`
        listing the tables, so the agent can correct itself.
        """
        found = self._lower_names.get(name.lower())
        if found is not None:
            return found
        cleaned = _unquote(name)
        found = self._lower_names.get(cleaned.lower())
        if found is None and cleaned.endswith(";"):
            found = self._lower_names.get(_unquote(cleaned.rstrip("; \t\r\n")).lower())
        if found is None:
            shown = _shorten(name.strip())
            raise SandboxError(f"no such table: {shown!r}; {self._tables_hint()}")
        return found

    def _tables_hint(self) -> str:
        return "tables are: " + ", ".join(self.table_names) if self.table_names else "no tables"

    def describe(self, table: str) -> TableSchema:
        """Columns (declared type, primary key, NOT NULL), foreign keys and row count.

        Cached per table. The PRAGMAs run through the same connection with the
        authorizer's ``internal`` flag raised, which admits only these PRAGMAs.
        """
        name = self.resolve_table(table)
        cached = self._schemas.get(name)
        if cached is not None:
            return cached
        quoted = _quote_ident(name)
        info = self._internal(f"PRAGMA table_info({quoted})")
        fk_rows = self._internal(f"PRAGMA foreign_key_list({quoted})")
        columns = [
            ColumnInfo(
                name=row[1], type=row[2] or "", primary_key=row[5] > 0, not_null=bool(row[3])
            )
            for row in info
        ]
        # foreign_key_list numbers constraints newest-first; sort back to declaration order.
        foreign_keys = [
            ForeignKey(column=row[3], ref_table=ref_table, ref_column=ref_column)
            for row in sorted(fk_rows, key=lambda r: (-r[0], r[1]))
            for ref_table, ref_column in [self._fk_target(row[2], row[4], row[1])]
        ]
        outcome = self._run(f"SELECT count(*) FROM {quoted}", self._timeout_s)
        schema = TableSchema(
            name=name,
            columns=columns,
            foreign_keys=foreign_keys,
            row_count=int(outcome.rows[0][0]),  # type: ignore[arg-type]
        )
        self._schemas[name] = schema
        return schema

    def _fk_target(self, ref_table: str, ref_column: str | None, seq: int) -> tuple[str, str]:
        """The referenced table's real name and column (its primary key when implicit)."""
        real = self._lower_names.get(ref_table.lower())
        if real is None:  # dangling reference (Spider has a few): report it as declared
            return ref_table, ref_column or ""
        if ref_column is None:
            info = self._internal(f"PRAGMA table_info({_quote_ident(real)})")
            pks = sorted((row for row in info if row[5]), key=lambda row: row[5])
            ref_column = pks[seq][1] if seq < len(pks) else ""
        return real, ref_column

    def _internal(self, sql: str) -> list[tuple[Any, ...]]:
        """Run one of the sandbox's own PRAGMAs (never agent SQL)."""
        state = self._state
        with self._lock:
            conn = self._open_conn()
            state.internal = True
            try:
                return conn.execute(sql).fetchall()
            except sqlite3.Error as error:
                if _damaged(error):
                    raise self._damaged_error(error) from None
                raise SandboxError(f"SQL error: {error}") from None
            finally:
                state.internal = False
                state.denied = None

    def sample(self, table: str, n: int) -> QueryOutcome:
        """The first ``n`` rows of ``table`` (``SELECT * ... LIMIT n``), bounded like a query."""
        name = self.resolve_table(table)
        limit = max(0, int(n))
        return self._run(f"SELECT * FROM {_quote_ident(name)} LIMIT {limit}", self._timeout_s)

    # ----------------------------------------------------------------- queries

    def execute(
        self,
        sql: str,
        timeout_s: float | None = None,
        verdict: tuple[str | None, str] | None = None,
    ) -> QueryOutcome:
        """Check and run agent SQL; ``timeout_s`` overrides the configured deadline.

        ``verdict`` is :func:`sqlenv_core.sqlcheck.verdict` of ``sql``, computed by the
        caller elsewhere (a server parses long SQL in another process, where sqlglot
        cannot hold this one's GIL); the length and NUL checks still run here.

        Raises :class:`QueryRejectedError` (not a single read-only query),
        :class:`QueryTimeoutError` (deadline passed; the sandbox stays usable) or
        :class:`SandboxError` (any SQLite error, worded for the agent).
        """
        timeout = self._timeout_s if timeout_s is None else timeout_s
        start = monotonic()  # the static check of long SQL counts against the deadline
        to_run = _checked(sql, self._max_sql_chars, verdict)
        return self._run(to_run, timeout, start)

    def _open_conn(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise SandboxError("the sandbox is closed")
        return conn

    def _run(self, sql: str, timeout_s: float, start: float | None = None) -> QueryOutcome:
        state = self._state
        with self._lock:
            conn = self._open_conn()
            temporary = None
            if start is None:
                start = monotonic()
            state.deadline = start + timeout_s
            state.ran = False
            cursor = None
            try:
                if len(sql) > _CACHE_MAX_CHARS:
                    # Python's statement cache keeps each SQL text and SQLite's copy of it
                    # (256 texts of 100,000 characters held 74 MiB per connection): long
                    # SQL runs on a connection of its own, closed afterwards
                    conn = temporary = self._connect(cached_statements=0)
                cursor = conn.execute(sql)
                columns = list(map(_first, cursor.description or ()))
                ncols = len(columns) or 1
                # Fast path: the whole result arrives in the first batch and is small.
                want = min(_BATCH_CELLS // ncols or 1, self._max_rows + 1)
                batch = cursor.fetchmany(want)
                total = len(batch)
                if want * ncols * self._cell_cost <= self._max_bytes:
                    # no batch this small can pass the byte cap (cells are bounded by
                    # SQLite's length limit): only look for blobs, at C speed
                    size, blob = 0, bytes in map(type, chain.from_iterable(batch))
                else:
                    size, blob = _batch_size(batch)
                if total < want and size <= self._max_bytes:
                    more = False
                    rows = [_render_row(r) for r in batch] if blob else list(map(list, batch))
                else:
                    rows, total, more = self._fetch_rest(cursor, batch, want, size, blob)
            except (sqlite3.Error, sqlite3.Warning) as error:
                raise self._translate(error, timeout_s) from None
            except MemoryError:  # a program over PROGRAM_OPS_LIMIT, or over the heap limit
                raise self._memory_error() from None
            except UnicodeEncodeError:  # a lone surrogate, e.g. from JSON "\ud800"
                raise QueryRejectedError("the query is not valid Unicode text") from None
            finally:
                state.deadline = _INF
                state.timed_out = False
                state.interrupted = False
                if cursor is not None:
                    cursor.close()
                if temporary is not None:
                    temporary.set_progress_handler(None, 0)
                    temporary.set_authorizer(None)
                    temporary.close()
            elapsed = monotonic() - start
        return QueryOutcome(columns, rows, total, more, elapsed)

    def _memory_error(self) -> SandboxError:
        """Which limit a ``MemoryError`` from SQLite means, worded for the agent.

        SQLite reports both a program over ``PROGRAM_OPS_LIMIT`` (while compiling) and an
        allocation over the heap limit (a sort or grouping of a huge intermediate result,
        while running) as "out of memory". The progress handler only runs once a
        statement executes, and filling megabytes takes far more than the
        ``progress_interval`` instructions between its calls: it tells them apart.
        """
        if not self._state.ran:
            return SandboxError(
                f"SQL error: the query is too complex (it compiles to more than"
                f" {PROGRAM_OPS_LIMIT:,} operations); simplify it"
            )
        limit = self.config.max_sqlite_heap_bytes >> 20
        return SandboxError(
            f"SQL error: the query needs more than the {limit} MiB of working memory that"
            " queries share (sorting or grouping a huge intermediate result, e.g. a cross"
            " join); filter or join on a key first, or add a LIMIT"
        )

    def _fetch_rest(
        self,
        cursor: sqlite3.Cursor,
        batch: list[tuple[Any, ...]],
        step: int,
        size: int,
        blob: bool,
    ) -> tuple[list[list[Cell]], int, bool]:
        """Go on fetching within the row and byte caps after a first ``batch`` of ``step`` rows.

        Returns ``(rows, total_rows, more_rows_exist)``. Rows are fetched ``step`` at a
        time so that only one batch beyond the caps is ever held.
        """
        max_rows = self._max_rows
        max_bytes = self._max_bytes
        limit = max_rows + 1  # one extra row tells whether the row cap cut the result
        kept: list[tuple[Any, ...]] = []
        used = 0
        seen = 0
        want = step
        exhausted = False
        while True:
            n = len(batch)
            seen += n
            if used + size > max_bytes:  # keep rows up to the one that crosses the cap
                for i, row in enumerate(batch):
                    used += _row_size(row)
                    if used > max_bytes:
                        kept.extend(batch[: i + 1])
                        break
                exhausted = n < want
                break
            kept.extend(batch)
            used += size
            if n < want:
                exhausted = True
                break
            if seen >= limit:
                break
            want = min(step, limit - seen)
            batch = cursor.fetchmany(want)
            size, has_blob = _batch_size(batch)
            blob = blob or has_blob
        if seen > max_rows:
            total, more = max_rows, True
            del kept[max_rows:]
        elif exhausted:
            total, more = seen, False
        else:
            total, more = seen, self._peek(cursor)
        rows = [_render_row(r) for r in kept] if blob else list(map(list, kept))
        return rows, total, more

    def _damaged_error(self, error: Exception) -> DataError:
        return DataError(
            f"database file {self._path} is damaged ({_shorten(str(error), 200)}): a fault "
            "of the environment, not of the agent's SQL; restore the file (its sha256 is in "
            "the data directory's manifest.json) or rebuild the data"
        )

    def _peek(self, cursor: sqlite3.Cursor) -> bool:
        """Whether the cursor has another row; True if the deadline ends the search."""
        try:
            return cursor.fetchone() is not None
        except sqlite3.OperationalError:
            if self._state.timed_out:
                return True
            raise

    def _translate(self, error: Exception, timeout_s: float) -> SandboxError | DataError:
        """Turn a sqlite3 exception into an agent-readable :class:`SandboxError`, or a
        :class:`DataError` naming the file when the database itself is damaged."""
        if _damaged(error):
            return self._damaged_error(error)
        state = self._state
        message = _shorten(str(error), 300)  # SQLite quotes tokens of the SQL, any length
        if state.interrupted and not state.timed_out:
            return QueryInterruptedError("the query was interrupted before it finished")
        if state.timed_out:
            return QueryTimeoutError(
                f"query exceeded the {timeout_s:g} s deadline and was stopped;"
                " simplify it or add a LIMIT"
            )
        if state.denied is not None:
            denied, state.denied = state.denied, None
            return QueryRejectedError(denied)
        if message.startswith("You can only execute one statement"):
            return QueryRejectedError("only one statement per QUERY")
        if message.startswith("not authorized"):
            return QueryRejectedError(f"only a single read-only SELECT is allowed ({message})")
        if message.startswith("no such table"):
            return SandboxError(f"SQL error: {message}; {self._tables_hint()}")
        if message == "string or blob too big":
            limit = self.config.max_cell_bytes
            return SandboxError(
                f"SQL error: string or blob too big (values are limited to {limit} bytes)"
            )
        return SandboxError(f"SQL error: {message}")
